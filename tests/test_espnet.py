"""ESPNet / ESPNetv2: the converter reads any depth and width from the tensors, names what does not fit, and
the PyTorch-geometry layers compute what PyTorch does. No shared files needed (test_espnet_parity.py uses
the real weights)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from data.errors import UserError

pytest.importorskip("tensorflow")


def randomised(model, seed: int = 0):
    """`model` with every weight random (BatchNorm variances positive), so that a wrong mapping shows."""
    rng = np.random.default_rng(seed)
    for layer in model.layers:
        values = []
        for weight in layer.weights:
            shape = tuple(weight.shape)
            if weight.name == "moving_variance":
                values.append(rng.uniform(0.5, 1.5, shape))
            elif weight.name in ("gamma", "alpha"):
                values.append(
                    rng.uniform(0.5, 1.5, shape) if weight.name == "gamma" else rng.uniform(0, 0.5, shape)
                )
            else:
                values.append(rng.normal(0, 0.3, shape))
        if values:
            layer.set_weights([v.astype("float32") for v in values])
    return model


def round_trip(name: str, file_name: str, image_size=(64, 128), **options):
    """(options read back, outputs of our model and of its conversion from its own PyTorch state dict)."""
    from bench.sources.convert import converter, torch_layers
    from models import registry

    model = randomised(registry.build(name, **options))
    state = torch_layers.state_dict(model)
    converted, metadata = converter.build_converted(state, file_name)
    image = np.random.default_rng(1).normal(size=(1, *image_size, 3)).astype("float32")
    return metadata, np.asarray(model(image)), np.asarray(converted(image))


def test_convert_reads_espnet_depths_that_no_shared_file_has():
    metadata, ours, converted = round_trip("espnet", "espnet_p_3_q_5.pth", p=3, q=5)
    assert metadata["model"] == "espnet" and metadata["options"] == {"p": 3, "q": 5, "background": True}
    assert metadata["num_classes"] == 19 and metadata["source"]["format"] == "espnet"
    assert ours.shape == (1, 64, 128, 19)
    np.testing.assert_array_equal(converted, ours)


@pytest.mark.parametrize(
    ("options", "read_back"),
    [
        ({"s": 1.0, "blocks": (2, 3)}, {"s": 1.0, "blocks": [2, 3]}),
        (
            {"channels": (16, 48, 96, 192), "blocks": (1, 2)},
            {"channels": [16, 48, 96, 192], "blocks": [1, 2]},
        ),
    ],
)
def test_convert_reads_espnetv2_widths_that_no_shared_file_has(options, read_back):
    metadata, ours, converted = round_trip("espnetv2", "espnetv2_custom_city_256x128.pth", **options)
    assert metadata["options"] == {**read_back, "decoder_base": 16, "background": True}
    assert metadata["input"]["size"] == [128, 256]  # the WIDTHxHEIGHT of EdgeNets' file names
    np.testing.assert_array_equal(converted, ours)


def test_a_network_without_the_background_channel_converts_with_its_own_classes():
    metadata, ours, converted = round_trip("espnet", "espnet.pth", num_classes=19, background=False)
    assert metadata["num_classes"] == 19 and metadata["options"]["background"] is False
    np.testing.assert_array_equal(converted, ours)


def test_the_logits_drop_only_the_background_channel():
    import keras

    from models import registry

    model = randomised(registry.build("espnetv2", s=0.5, blocks=(1, 1)))
    both = keras.Model(model.input, [model.get_layer("logits").input, model.output])
    network, logits = both(np.random.default_rng(2).normal(size=(1, 64, 64, 3)).astype("float32"))
    assert network.shape[-1] == 20 and logits.shape[-1] == 19
    np.testing.assert_array_equal(np.asarray(logits), np.asarray(network)[..., :19])


@pytest.fixture(scope="module")
def espnet_state():
    from bench.sources.convert import torch_layers
    from models import registry

    return torch_layers.state_dict(registry.build("espnet", p=1, q=1))


def test_a_missing_tensor_is_named(espnet_state):
    from bench.sources.convert import converter

    state = dict(espnet_state)
    del state["encoder.level3.0.d8.conv.weight"]
    with pytest.raises(UserError, match=r"x\.pth lacks the tensor encoder\.level3\.0\.d8\.conv\.weight"):
        converter.build_converted(state, "x.pth")


def test_a_misshaped_tensor_is_named_with_both_shapes(espnet_state):
    from bench.sources.convert import converter

    state = dict(espnet_state)
    state["level3_C.conv.weight"] = np.zeros((20, 130, 1, 1), np.float32)
    with pytest.raises(
        UserError, match=r"level3_C\.conv\.weight has shape \(20, 130, 1, 1\).*\(20, 131, 1, 1\)"
    ):
        converter.build_converted(state, "x.pth")


def test_a_tensor_the_architecture_has_no_place_for_is_refused(espnet_state):
    from bench.sources.convert import converter

    state = {**espnet_state, "decoder.extra.weight": np.zeros(3, np.float32)}
    with pytest.raises(UserError, match=r"1 tensor\(s\) .* no place for: decoder\.extra\.weight"):
        converter.build_converted(state, "x.pth")


def test_espnetv2_leaves_out_only_the_prelu_its_strided_eesp_never_applies():
    from bench.sources.convert import converter, torch_layers
    from models import registry

    state = torch_layers.state_dict(registry.build("espnetv2", s=0.5, blocks=(1, 1)))
    unapplied = {f"base_net.level{i}_0.eesp.module_act.weight": np.zeros(8, np.float32) for i in (2, 3, 4)}
    _, metadata = converter.build_converted({**state, **unapplied}, "v2.pth")
    assert metadata["source"]["tensors"] == len(state)
    with pytest.raises(UserError, match=r"base_net\.level3\.0\.module_act\.extra"):
        converter.build_converted({**state, "base_net.level3.0.module_act.extra": np.zeros(1)}, "v2.pth")


def test_detection_tells_the_three_sources_apart(espnet_state):
    from bench.sources.convert import converter, torch_layers
    from models import registry

    v2 = torch_layers.state_dict(registry.build("espnetv2", s=0.5, blocks=(1, 1)))
    assert converter.detect_source(espnet_state, "a.pth").NAME == "espnet"
    assert converter.detect_source(v2, "b.pth").NAME == "espnetv2"
    with pytest.raises(UserError, match="is not a espnetv2 state dict: its keys are in the espnet layout"):
        converter.detect_source(espnet_state, "a.pth", "espnetv2")
    with pytest.raises(UserError, match="in the espnetv2 layout: pass --source espnetv2"):
        converter.detect_source(v2, "b.pth", "espnet")  # `convert --source espnet` on an ESPNetv2 file


def pytorch_adaptive_pool(x: np.ndarray, rows: int, cols: int) -> np.ndarray:
    """F.adaptive_avg_pool2d's definition, written out: bin i covers floor(i*L/n) <= p < ceil((i+1)*L/n)."""
    height, width = x.shape[1:3]
    out = np.zeros((x.shape[0], rows, cols, x.shape[3]))
    for i in range(rows):
        for j in range(cols):
            y0, y1 = i * height // rows, math.ceil((i + 1) * height / rows)
            x0, x1 = j * width // cols, math.ceil((j + 1) * width / cols)
            out[:, i, j] = x[:, y0:y1, x0:x1].mean(axis=(1, 2))
    return out


def test_adaptive_pooling_to_sizes_that_do_not_divide_uses_pytorchs_bins():
    from models.espnet_blocks import AdaptivePool

    x = np.random.default_rng(3).normal(size=(2, 32, 48, 4)).astype("float32")
    reference = np.zeros((2, 5, 7, 1), "float32")
    np.testing.assert_allclose(AdaptivePool()([x, reference]), pytorch_adaptive_pool(x, 5, 7), atol=1e-6)
    # ESPNetv2's 1.5x branch pools back from 48x72 to 32x48: overlapping bins
    up = np.random.default_rng(4).normal(size=(1, 48, 72, 2)).astype("float32")
    np.testing.assert_allclose(
        AdaptivePool()([up, x[:1, :, :, :2]]), pytorch_adaptive_pool(up, 32, 48), atol=1e-6
    )
    # ESPNetv2's 0.1x branch: ceil(64 * 0.1) = 7 rows, ceil(30 * 0.1) = 3 columns raised to the minimum 5
    assert AdaptivePool(0.1, 5)(np.zeros((1, 64, 30, 1), "float32")).shape == (1, 7, 5, 1)


def test_average_pooling_counts_the_padded_zeros_as_pytorch_does():
    import keras

    from models.espnet_blocks import avg_pool_counting_padding

    inputs = keras.Input((5, 6, 1))
    pool = keras.Model(inputs, avg_pool_counting_padding(inputs, "pool"))
    out = np.asarray(pool(np.ones((1, 5, 6, 1), "float32")))[0, ..., 0]
    assert out.shape == (3, 3)
    assert out[0, 0] == pytest.approx(4 / 9) and out[1, 1] == pytest.approx(1.0)


def test_a_strided_dilated_convolution_samples_pytorchs_positions():
    import keras

    from models.espnet_blocks import conv

    inputs = keras.Input((None, None, 2))
    model = keras.Model(inputs, conv(inputs, 2, 3, "dw", stride=2, dilation=3, groups=2))
    x = np.random.default_rng(5).normal(size=(1, 11, 14, 2)).astype("float32")
    kernel = model.get_layer("dw").get_weights()[0]  # (3, 3, 2, 1)
    padded = np.pad(x, ((0, 0), (3, 3), (3, 3), (0, 0)))
    expected = np.zeros((1, 6, 7, 2))
    for i in range(6):
        for j in range(7):  # PyTorch: out[i, j] = sum over a, b of padded[2i + 3a, 2j + 3b] * kernel[a, b]
            window = padded[0, 2 * i : 2 * i + 7 : 3, 2 * j : 2 * j + 7 : 3]
            expected[0, i, j] = np.sum(window * kernel[..., 0], axis=(0, 1))
    assert model(x).shape == (1, 6, 7, 2)  # ceil(11 / 2), ceil(14 / 2), as PyTorch's padding=3 gives
    np.testing.assert_allclose(model(x), expected, atol=1e-6)


def test_channel_shuffle_interleaves_the_groups():
    from models.espnet_blocks import ChannelShuffle

    x = np.arange(6, dtype="float32").reshape(1, 1, 1, 6)
    np.testing.assert_array_equal(np.asarray(ChannelShuffle(3)(x)).ravel(), [0, 2, 4, 1, 3, 5])


def test_espnet_takes_sides_that_are_not_multiples_of_8_by_padding_and_cropping():
    from models import registry

    model = randomised(registry.build("espnet", preset="tiny"))
    image = np.random.default_rng(7).normal(size=(1, 30, 45, 3)).astype("float32")
    padded = np.pad(image, ((0, 0), (0, 2), (0, 3), (0, 0)))  # to 32x48, zeros at the bottom and right
    np.testing.assert_array_equal(np.asarray(model(image)), np.asarray(model(padded))[:, :30, :45])


@pytest.mark.parametrize("name", ["espnet", "espnetv2"])
def test_folding_batchnorm_rebuilds_the_espnets_from_their_config(name):
    from models import registry
    from models.batchnorm_folding import fold_batchnorm

    model = randomised(registry.build(name, preset="tiny"))
    image = np.random.default_rng(8).normal(size=(1, 32, 64, 3)).astype("float32")
    folded = fold_batchnorm(model)
    assert len(folded.layers) < len(model.layers)
    expected = np.asarray(model(image))
    # random weights grow activations into the thousands: compare relative to the output's scale
    assert np.max(np.abs(np.asarray(folded(image)) - expected)) <= 1e-5 * np.max(np.abs(expected))
