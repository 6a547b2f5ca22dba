"""Model registry and builders: shapes at any input size, PSPNet geometry, ImageNet transfer, save/load."""

from __future__ import annotations

import math
import sys
import textwrap

import keras
import numpy as np
import pytest
import tensorflow as tf

from models import registry
from models.backbones import dilated_resnet
from models.flops import count_flops
from models.imagenet import ImageNetWeightsError, transfer_weights
from models.layers import AdaptiveAveragePooling

BUILTINS = ("pspnet", "pspnet-seed", "fcn")
SIZES = [(64, 64), (48, 96), (97, 203)]  # square, 1:2, odd


def images(height: int, width: int, batch: int = 1, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=(batch, height, width, 3)).astype("float32")


@pytest.fixture(scope="module")
def tiny_models() -> dict[str, keras.Model]:
    return {name: registry.build(name, preset="tiny") for name in BUILTINS}


def test_registry_lists_the_builtin_models_with_their_options():
    assert set(BUILTINS) <= set(registry.available())
    options = registry.get("pspnet").options()
    assert options["depth"] == 50 and options["bins"] == (1, 2, 3, 6) and options["weights"] is None
    assert {"cpu", "tiny"} <= set(registry.get("pspnet").presets)


def test_unknown_option_is_a_registry_error():
    with pytest.raises(registry.RegistryError, match="does not take"):
        registry.build("pspnet", preset="tiny", no_such_option=1)


@pytest.mark.parametrize("name", BUILTINS)
@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_logits_have_input_resolution_and_num_classes(tiny_models, name, size):
    out = tiny_models[name](images(*size, batch=2), training=False)
    assert tuple(out.shape) == (2, *size, 19)
    assert np.isfinite(out.numpy()).all()


@pytest.mark.parametrize("name", BUILTINS)
def test_unknown_input_size_works_inside_a_traced_function(tiny_models, name):
    forward = tf.function(tiny_models[name], input_signature=[tf.TensorSpec([None, None, None, 3])])
    for size in [(33, 47), (64, 128)]:
        assert tuple(forward(images(*size)).shape) == (1, *size, 19)


def test_num_classes_sets_the_logit_channels():
    model = registry.build("fcn", num_classes=7, preset="tiny")
    assert model(images(32, 40)).shape[-1] == 7


@pytest.mark.parametrize("name", ["pspnet", "fcn"])
def test_aux_head_gives_a_dict_of_main_and_auxiliary_logits(name):
    model = registry.build(name, preset="tiny", aux_head=True)
    out = model(images(40, 72, batch=2), training=True)
    assert set(out) == {"logits", "aux"}
    assert tuple(out["logits"].shape) == tuple(out["aux"].shape) == (2, 40, 72, 19)


def test_lightweight_pspnet_with_aux_head_returns_logits_alone():
    out = registry.build("pspnet-seed", preset="tiny", aux_head=True)(images(24, 40))
    assert set(out) == {"logits"} and tuple(out["logits"].shape) == (1, 24, 40, 19)


def reference_adaptive_pool(x: np.ndarray, bins: int) -> np.ndarray:
    """PyTorch AdaptiveAvgPool2d by its definition, one bin at a time."""
    _, h, w, _ = x.shape
    out = np.zeros((x.shape[0], bins, bins, x.shape[3]), dtype=np.float64)
    for i in range(bins):
        for j in range(bins):
            rows = slice(math.floor(i * h / bins), math.ceil((i + 1) * h / bins))
            cols = slice(math.floor(j * w / bins), math.ceil((j + 1) * w / bins))
            out[:, i, j] = x[:, rows, cols].mean(axis=(1, 2))
    return out


@pytest.mark.parametrize("bins", [1, 2, 3, 6, 8])
@pytest.mark.parametrize("size", [(12, 12), (7, 10), (4, 5), (97, 203)], ids=lambda s: f"{s[0]}x{s[1]}")
def test_adaptive_pooling_matches_pytorch_bins_for_any_size(bins, size):
    x = np.random.default_rng(bins).normal(size=(2, *size, 3)).astype("float32")
    got = AdaptiveAveragePooling(bins)(x).numpy()
    np.testing.assert_allclose(got, reference_adaptive_pool(x, bins), rtol=1e-5, atol=1e-5)


def test_pyramid_pools_to_1_2_3_6_bins(tiny_models):
    model = tiny_models["pspnet"]
    pools = [layer for layer in model.layers if isinstance(layer, AdaptiveAveragePooling)]
    assert [p.bins for p in pools] == [1, 2, 3, 6]
    probe = keras.Model(model.input, [p.output for p in pools])
    for pooled, bins in zip(probe(images(97, 203)), (1, 2, 3, 6), strict=True):
        assert tuple(pooled.shape[1:3]) == (bins, bins)


@pytest.mark.parametrize("depth", [18, pytest.param(50, marks=pytest.mark.slow)])
def test_backbone_has_output_stride_8_with_dilations_2_and_4(depth):
    backbone = dilated_resnet(depth=depth, width=0.125)
    assert tuple(backbone(images(64, 96)).shape[1:3]) == (8, 12)
    assert tuple(backbone(images(97, 203)).shape[1:3]) == (13, 26)  # ceil(97/8), ceil(203/8)
    for stage, dilation in (("conv4_", 2), ("conv5_", 4)):
        convs = [
            layer
            for layer in backbone.layers
            if layer.name.startswith(stage) and isinstance(layer, keras.layers.Conv2D)
        ]
        assert convs and all(c.strides == (1, 1) for c in convs)
        assert {c.dilation_rate for c in convs if c.kernel_size == (3, 3)} == {(dilation, dilation)}


def test_output_stride_16_dilates_only_the_last_stage():
    backbone = dilated_resnet(depth=18, width=0.125, output_stride=16)
    assert tuple(backbone(images(64, 96)).shape[1:3]) == (4, 6)
    rates = {
        layer.dilation_rate
        for layer in backbone.layers
        if layer.name.startswith("conv5_")
        and isinstance(layer, keras.layers.Conv2D)
        and layer.kernel_size == (3, 3)
    }
    assert rates == {(2, 2)}


@pytest.fixture(scope="module")
def resnet50_pair():
    """A randomly initialised keras.applications ResNet50 and our classic-stem dilated ResNet-50."""
    source = keras.applications.ResNet50(weights=None, include_top=False, input_shape=(None, None, 3))
    target = dilated_resnet(depth=50, stem_type="classic")
    return source, target


@pytest.mark.slow
def test_classic_stem_resnet50_has_the_parameter_count_of_keras_applications(resnet50_pair):
    source, target = resnet50_pair
    assert target.count_params() == source.count_params() == 23_587_712


@pytest.mark.slow
def test_imagenet_transfer_copies_every_backbone_kernel(resnet50_pair):
    source, target = resnet50_pair
    copied = transfer_weights(source, target)
    assert len(copied) == len([layer for layer in source.layers if layer.weights])
    for name in copied:
        for mine, theirs in zip(
            target.get_layer(name).get_weights(), source.get_layer(name).get_weights(), strict=True
        ):
            np.testing.assert_array_equal(mine, theirs)
    # and the dilated network still sees the same stem: identical stage-2 features
    probe = images(64, 64)
    got = keras.Model(target.input, target.get_layer("conv3_block4_out").output)(probe)
    want = keras.Model(source.input, source.get_layer("conv3_block4_out").output)(probe)
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4)


@pytest.mark.slow
def test_imagenet_weights_offline_raise_a_clear_error(monkeypatch, tmp_path):
    import keras.src.applications.resnet as resnet

    def offline(*args, **kwargs):
        raise Exception("URL fetch failure: [Errno -3] Temporary failure in name resolution")

    monkeypatch.setattr(resnet.file_utils, "get_file", offline)
    with pytest.raises(ImageNetWeightsError, match="internet.*weights=None"):
        registry.build("fcn", stem="classic", depth=50, weights="imagenet", head_channels=8, aux_channels=8)


def test_imagenet_weights_need_the_classic_stem():
    with pytest.raises(ImageNetWeightsError, match="stem='classic'"):
        registry.build("pspnet", preset="tiny", weights="imagenet")


def test_save_and_load_round_trip_gives_identical_outputs(tmp_path):
    model = registry.build("pspnet", preset="tiny", aux_head=True)
    x = images(37, 53)
    path = tmp_path / "model.keras"
    model.save(path)
    loaded = keras.saving.load_model(path)
    before, after = model(x, training=False), loaded(x, training=False)
    for key in ("logits", "aux"):
        np.testing.assert_array_equal(before[key].numpy(), after[key].numpy())


def test_plugin_given_as_module_function_builds(tmp_path, monkeypatch):
    (tmp_path / "my_plugin_model.py").write_text(
        textwrap.dedent('''
        import keras

        def build(num_classes=19, input_shape=(None, None, 3), *, aux_head=False, channels=4):
            """A one-layer plugin model."""
            inputs = keras.Input(input_shape)
            hidden = keras.layers.Conv2D(channels, 3, padding="same")(inputs)
            return keras.Model(inputs, keras.layers.Conv2D(num_classes, 1)(hidden))
        ''')
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "my_plugin_model", raising=False)
    model = registry.build("my_plugin_model:build", num_classes=5, channels=2)
    assert tuple(model(images(10, 12)).shape) == (1, 10, 12, 5)
    assert registry.get("my_plugin_model:build").options() == {"aux_head": False, "channels": 4}
    with pytest.raises(registry.RegistryError, match="no function"):
        registry.get("my_plugin_model:missing")


def test_flop_count_follows_the_convolution_formula():
    inputs = keras.Input((None, None, 3))
    x = keras.layers.Conv2D(8, 3, strides=2, padding="same")(inputs)
    x = keras.layers.Conv2D(4, 1)(x)
    model = keras.Model(inputs, x)
    assert count_flops(model, 32, 48) == 2 * 16 * 24 * (9 * 3 * 8 + 8 * 4)


def test_models_command_lists_entries_with_parameter_counts(capsys):
    from bench.cli import main

    assert main(["models", "pspnet-seed"]) == 0
    out = capsys.readouterr().out
    expected = registry.build("pspnet-seed", preset="tiny").count_params()
    assert "pspnet-seed:" in out and "preset tiny" in out and f"{expected:,d} params" in out


def test_models_listing_without_parameters_imports_no_tensorflow():
    """`bench models --no-params` lists names, options and presets from the registry alone (no build)."""
    import subprocess
    import sys

    code = (
        "import sys\nfrom bench.cli import main\ncode = main(['models', '--no-params'])\n"
        "print(code, 'tensorflow' in sys.modules, 'keras' in sys.modules)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    *listing, last = done.stdout.strip().splitlines()
    assert last == "0 False False", done.stderr
    for name in registry.available():
        assert any(line.startswith(f"{name}: ") for line in listing), name
    assert sum(line.startswith("  preset tiny") for line in listing) == len(registry.available())


def test_folding_batchnorm_keeps_inference_outputs():
    from models.batchnorm_folding import fold_batchnorm

    model = registry.build("pspnet", preset="tiny")
    rng = np.random.default_rng(1)
    for layer in model.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            gamma, beta, mean, var = layer.get_weights()
            layer.set_weights(
                [
                    rng.uniform(0.5, 1.5, gamma.shape),
                    rng.normal(size=beta.shape),
                    rng.normal(size=mean.shape),
                    rng.uniform(0.5, 2.0, var.shape),
                ]
            )
    folded = fold_batchnorm(model)
    assert not any(isinstance(layer, keras.layers.BatchNormalization) for layer in folded.layers)
    x = images(45, 70)
    np.testing.assert_allclose(folded(x).numpy(), model(x, training=False).numpy(), rtol=1e-3, atol=1e-3)


def test_bench_models_lists_parameter_counts_in_seconds_without_tensorflow():
    import subprocess
    import sys
    import time

    code = "import sys\nfrom bench.cli import main\nmain(['models'])\nprint('tensorflow' in sys.modules)"
    began = time.perf_counter()
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert time.perf_counter() - began < 10  # 0.6 s on an idle 2-core CPU; building them took 38 s
    assert out.strip().splitlines()[-1] == "False"
    assert "preset cpu           825,899 params" in out


@pytest.mark.parametrize("preset", ["tiny", "cpu"])
def test_stored_parameter_counts_are_those_of_the_built_models(preset):
    """models/parameter_counts.json, read by `bench models`, equals what the builders make (rewrite it
    with every model built when a builder changes)."""
    from bench.sources.models_listing import stored_counts
    from models import registry

    for name, counts in stored_counts().items():
        if preset in registry.get(name).presets:
            assert registry.build(name, num_classes=19, preset=preset).count_params() == counts[preset], name
