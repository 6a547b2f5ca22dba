"""`bench convert`: the torch-free .pth reader, the mmseg layout, and parity with mmsegmentation's logits.

The fixtures under tests/fixtures/mmseg/ were written by mmsegmentation 1.2.2 and torch themselves
(`make parity-fixtures`, see their manifest.json): a reduced-width PSPNet R-18-D8 built by mmseg's own
ResNetV1c/PSPHead in torch's zip and legacy formats, one frame and mmseg's logits for it, and small files of
every storage type. No torch is needed here.
"""

from __future__ import annotations

import json
import os
import pickle
import shutil
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from bench.cli import main
from bench.sources.convert import published, torch_reader
from bench.sources.convert.unpickler import UnsafeCheckpointError
from data.errors import UserError

FIXTURES = Path(__file__).parent / "fixtures" / "mmseg"
FORMATS = ("zip", "legacy")
MIN_AGREEMENT = 0.999
MAX_LOGIT_ERROR = 1e-3


def fixture(fmt: str) -> Path:
    return FIXTURES / f"pspnet_r18-d8-w8_{fmt}.pth"


class CreatesFile:
    """What an attacker pickles: unpickling it calls os.system, which would create `marker`."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def hostile_files(tmp_path: Path) -> tuple[Path, list[Path]]:
    """The marker path and .pth files in every shape a hostile payload can take."""
    marker = tmp_path / "pwned"
    payload = pickle.dumps({"state_dict": {"w": CreatesFile(marker)}}, protocol=2)
    plain = tmp_path / "plain.pth"
    plain.write_bytes(payload)
    legacy = tmp_path / "legacy.pth"  # a valid legacy header, then the payload as the object pickle
    legacy.write_bytes(
        pickle.dumps(torch_reader.LEGACY_MAGIC, protocol=2)
        + pickle.dumps(torch_reader.LEGACY_PROTOCOL, protocol=2)
        + pickle.dumps({"protocol_version": 1001, "little_endian": True}, protocol=2)
        + payload
    )
    archive = tmp_path / "zipped.pth"
    with zipfile.ZipFile(archive, "w") as z:
        z.writestr("archive/data.pkl", payload)
        z.writestr("archive/version", "3\n")
    return marker, [plain, legacy, archive]


def test_hostile_pickle_is_refused_without_running_its_code(tmp_path):
    marker, files = hostile_files(tmp_path)
    for path in files:
        with pytest.raises(UnsafeCheckpointError, match=r"global (posix|os)\.system") as err:
            torch_reader.read_state_dict(path)
        assert str(path) in str(err.value)
    assert not marker.exists()


def test_bench_convert_refuses_a_hostile_file_with_exit_2(tmp_path, capsys):
    marker, files = hostile_files(tmp_path)
    out = tmp_path / "out.keras"
    assert main(["convert", str(files[2]), "--out", str(out)]) == 2
    assert "system" in capsys.readouterr().err
    assert not marker.exists() and not out.exists()


def test_pickle_cannot_modify_the_allowed_globals(tmp_path):
    """BUILD on an allowed global would set attributes on our functions for every later load."""
    from bench.sources.convert import unpickler

    defaults = unpickler._rebuild_tensor_v2.__defaults__
    payloads = {  # GLOBAL, then BUILD with (no dict state, slot state {...})
        "torch._utils._rebuild_tensor_v2": b"ctorch._utils\n_rebuild_tensor_v2\n"
        b"(N}X\x0c\x00\x00\x00__defaults__(K\x01tstb.",
        "torch.FloatStorage": b"ctorch\nFloatStorage\n}X\x04\x00\x00\x00nameX\x03\x00\x00\x00Badsb.",
    }
    for name, payload in payloads.items():
        path = tmp_path / "build.pth"
        path.write_bytes(b"\x80\x02" + payload)
        with pytest.raises(UnsafeCheckpointError, match=f"modifies {name}"):
            torch_reader.load(path)
    assert unpickler._rebuild_tensor_v2.__defaults__ == defaults
    assert unpickler.ALLOWED_GLOBALS[("torch", "FloatStorage")].name == "FloatStorage"


@pytest.mark.parametrize("fmt", FORMATS)
def test_reader_gives_every_storage_type_and_view_as_torch_wrote_it(fmt):
    state, meta = torch_reader.read_state_dict(FIXTURES / f"dtypes_{fmt}.pth")
    expected = np.load(FIXTURES / "dtypes_expected.npz")
    assert sorted(state) == sorted(expected.files)
    for key in expected.files:
        assert state[key].dtype == expected[key].dtype, key
        np.testing.assert_array_equal(state[key], expected[key], err_msg=key)
    assert state["bfloat16"].dtype == np.float32
    assert meta["CLASSES"] == ("road", "sidewalk") and meta["iter"] == 80000


def test_zip_and_legacy_files_hold_the_same_tensors():
    (a, meta_a), (b, meta_b) = (torch_reader.read_state_dict(fixture(f)) for f in FORMATS)
    assert sorted(a) == sorted(b) and len(a) > 100
    for key in a:
        np.testing.assert_array_equal(a[key], b[key], err_msg=key)
    assert meta_a == meta_b and meta_a["mmseg_version"] == "1.2.2"


def test_zip_folder_name_and_module_prefix_do_not_matter(tmp_path):
    renamed = tmp_path / "renamed.pth"
    with zipfile.ZipFile(fixture("zip")) as src, zipfile.ZipFile(renamed, "w") as dst:
        for info in src.infolist():
            dst.writestr("some_other_folder/" + info.filename.split("/", 1)[1], src.read(info))
    state, _ = torch_reader.read_state_dict(renamed)
    original, _ = torch_reader.read_state_dict(fixture("zip"))
    assert sorted(state) == sorted(original)


def test_truncated_file_is_a_user_error(tmp_path):
    cut = tmp_path / "cut.pth"
    cut.write_bytes(fixture("legacy").read_bytes()[:-1000])
    with pytest.raises(UserError, match="truncated"):
        torch_reader.read_state_dict(cut)
    cut.write_bytes(b"not a checkpoint at all")
    with pytest.raises(UserError, match="not a PyTorch checkpoint"):
        torch_reader.read_state_dict(cut)


# ---- conversion (TensorFlow from here on)


def _state():
    return torch_reader.read_state_dict(fixture("zip"))[0]


def test_architecture_is_read_from_keys_and_shapes():
    from bench.sources.convert import mmseg

    options, num_classes, has_aux = mmseg.architecture(_state(), file_name="pspnet_r18-d8-w8_zip.pth")
    assert num_classes == 19 and has_aux
    assert options["depth"] == 18 and options["width"] == 8 / 64 and options["stem_channels"] == 16
    assert (options["ppm_channels"], options["head_channels"], options["aux_channels"]) == (16, 16, 8)
    assert options["stride_on"] == "3x3" and options["contract_dilation"] and not options["conv_bias"]
    assert options["bn_epsilon"] == 1e-5 and options["align_corners"] is False


@pytest.mark.parametrize(
    "change, message",
    [
        (
            lambda s: s.pop("backbone.layer2.0.bn1.running_var"),
            "lacks the tensor backbone.layer2.0.bn1.running_var",
        ),
        (
            lambda s: s.__setitem__("decode_head.extra.weight", np.zeros(3, np.float32)),
            "decode_head.extra.weight",
        ),
        (
            lambda s: s.__setitem__("backbone.layer3.1.conv2.weight", np.zeros((32, 32, 1, 1), np.float32)),
            r"backbone.layer3.1.conv2.weight has shape \(32, 32, 1, 1\).*needs \(32, 32, 3, 3\)",
        ),
        (lambda s: s.pop("decode_head.psp_modules.0.1.conv.weight"), "no known layout for keys"),
    ],
    ids=["missing", "extra", "misshaped", "unknown-layout"],
)
def test_missing_extra_or_misshaped_tensor_is_an_error_naming_its_key(change, message):
    pytest.importorskip("tensorflow")
    from bench.sources.convert.converter import build_converted

    state = _state()
    change(state)
    with pytest.raises(UserError, match=message):
        build_converted(state, "x-d8.pth")


def test_num_batches_tracked_is_ignored_and_aux_head_optional():
    pytest.importorskip("tensorflow")
    from bench.sources.convert.converter import build_converted

    state = {k: v for k, v in _state().items() if not k.startswith("auxiliary_head.")}
    assert any(k.endswith("num_batches_tracked") for k in state)
    model, metadata = build_converted(state, "x-d8.pth")
    assert metadata["aux_head"] is False and "aux_head_conv" not in [layer.name for layer in model.layers]
    counted = sum(1 for k in state if not k.endswith("num_batches_tracked"))
    assert metadata["source"]["tensors"] == counted


def frame_dataset(root: Path) -> Path:
    """A one-frame Cityscapes layout holding the fixture frame (the label is a placeholder)."""
    key = "frankfurt_000000_000019"
    image = root / "leftImg8bit" / "val" / "frankfurt" / f"{key}_leftImg8bit.png"
    label = root / "gtFine" / "val" / "frankfurt" / f"{key}_gtFine_labelIds.png"
    image.parent.mkdir(parents=True)
    label.parent.mkdir(parents=True)
    shutil.copy(FIXTURES / "frame_leftImg8bit.png", image)
    Image.fromarray(np.zeros(Image.open(image).size[::-1], np.uint8)).save(label)
    return root


@pytest.mark.parametrize("fmt", FORMATS)
def test_converted_checkpoint_predicts_mmseg_logits(fmt, tmp_path):
    """Parity with mmsegmentation's own model through `bench convert` and `bench predict` (whole image)."""
    pytest.importorskip("tensorflow")
    from bench.sources import keras_checkpoint as ckpt

    out = tmp_path / "converted.keras"
    assert main(["convert", str(fixture(fmt)), "--out", str(out)]) == 0
    metadata = ckpt.read_metadata(out)
    assert metadata["source"]["format"] == "mmseg" and metadata["source"]["sha256"] == published.sha256(
        fixture(fmt)
    )
    assert metadata["input"] == {
        "mean": [123.675, 116.28, 103.53],
        "std": [58.395, 57.12, 57.375],
        "channel_order": "RGB",
        "value_range": 255.0,
    }
    assert metadata["protocol"]["mode"] == "whole"
    dataset = frame_dataset(tmp_path / "data")
    logits_dir = tmp_path / "logits"
    args = ["predict", "--checkpoint", str(out), "--dataset", str(dataset), "--out", str(tmp_path / "pred")]
    assert main([*args, "--save-logits", str(logits_dir), "--no-progress"]) == 0
    ours = np.load(logits_dir / "frankfurt_000000_000019_logits.npy")
    expected = np.load(FIXTURES / "expected_logits.npy")
    assert ours.shape == expected.shape == (104, 200, 19)
    assert np.mean(ours.argmax(-1) == expected.argmax(-1)) >= MIN_AGREEMENT
    assert np.max(np.abs(ours - expected)) <= MAX_LOGIT_ERROR
    assert len(np.unique(expected.argmax(-1))) >= 10  # a sharp test: many classes, not a constant map


def test_predict_accepts_a_pth_and_caches_the_conversion(tmp_path, monkeypatch, capsys):
    pytest.importorskip("tensorflow")
    from bench.sources.convert import converter
    from bench.sources.opener import open_checkpoint

    monkeypatch.setattr(converter, "CONVERTED_ROOT", tmp_path / "converted")
    opened = open_checkpoint(fixture("legacy"))
    first = Path(opened.metadata["checkpoint"])
    assert first.parent == tmp_path / "converted" and first.suffix == ".keras"
    assert opened.sha256 == published.sha256(fixture("legacy"))  # the published file's hash
    assert (
        opened.metadata["source"]["format"] == "mmseg"
        and opened.input_spec.to_dict() == opened.metadata["input"]
    )
    assert Path(open_checkpoint(fixture("legacy")).metadata["checkpoint"]) == first
    assert "cached" in capsys.readouterr().out


def test_published_checkpoints_carry_url_config_and_both_protocols():
    entries = {c.file_name: c for c in published.checkpoints()}
    r50 = entries["pspnet_r50-d8_512x1024_80k_cityscapes_20200606_112131-2376f12b.pth"]
    assert r50.url.startswith("https://download.openmmlab.com/mmsegmentation/v0.5/pspnet/")
    assert r50.config == "configs/pspnet/pspnet_r50-d8_4xb2-80k_cityscapes-512x1024.py"
    assert r50.miou == {"whole": 78.55, "multiscale+flip": 79.79}
    assert len(entries) == 5 and all(len(c.references) == 2 for c in entries.values())
    assert published.recognise("renamed.pth", "2376f12b" + "0" * 56).file_name == r50.file_name
    assert published.recognise(r50.file_name, "f" * 64).file_name == r50.file_name
    assert published.recognise("mine.pth", "f" * 64) is None
    assert published.test_mode("whole", False, (1.0,)) == "whole"
    assert published.test_mode("multiscale", True, published.MULTISCALE_SCALES) == "multiscale+flip"
    assert published.test_mode("slide", False, (1.0,)) is None


def test_manifest_says_how_the_fixtures_were_made():
    manifest = json.loads((FIXTURES / "manifest.json").read_text())
    assert manifest["mmsegmentation"] == "1.2.2"
    assert set(manifest["checkpoints"].values()) == {fixture(f).name for f in FORMATS}


@pytest.mark.slow
def test_bench_run_with_a_published_pth_writes_a_row_naming_its_reference(tiny_dataset, tmp_path, capsys):
    """`bench run --checkpoint X.pth`: converted on the fly (once), predicted, scored; the row names the
    reference row of the published checkpoint (recognised here by its published file name), and the
    README and `bench compare` put it beside that reference."""
    pytest.importorskip("tensorflow")
    from bench.report import results
    from bench.run import run_benchmark

    name = "pspnet_r18-d8_512x1024_80k_cityscapes_20201225_021458-09ffa746.pth"
    pth = tmp_path / name
    shutil.copy(fixture("legacy"), pth)
    readme = tmp_path / "README.md"
    readme.write_text("# demo\n\n<!-- results:begin -->\n<!-- results:end -->\n")
    csv_path = tmp_path / "results" / "results.csv"
    kwargs = dict(
        dataset=str(tiny_dataset),
        checkpoint=str(pth),
        readme=readme,
        results_csv=csv_path,
        runs_dir=tmp_path / "results" / "runs",
        checkpoint_root=tmp_path / "checkpoints",
        workers=1,
        progress=False,
    )
    report = run_benchmark("pspnet", **kwargs)
    converted = sorted((tmp_path / "checkpoints" / "converted").glob("*.keras"))
    assert len(converted) == 1
    reference = "pspnet_r18-d8_4xb2-80k_cityscapes-512x1024/ss"
    assert report.row["reference"] == reference
    assert report.row["notes"] == f"published checkpoint {name}"
    assert report.row["preset"] == "" and "width=0.125" in report.row["options"]
    run_benchmark("pspnet", **kwargs)  # the conversion is cached
    assert "cached" in capsys.readouterr().out
    assert sorted((tmp_path / "checkpoints" / "converted").glob("*.keras")) == converted
    frame = results.read_rows(csv_path)
    assert list(frame["reference"]) == [reference, reference]
    assert list(frame["scope"]) == ["partial", "partial"]  # a tiny folder: kept in results.csv only
    assert "74.87" not in readme.read_text()
    from bench.report.readme import update_readme

    frame["scope"] = "full"  # as a run over the whole val split would record it
    frame.to_csv(csv_path, index=False)
    update_readme(readme, csv_path)
    text = readme.read_text()
    assert "beside the reference row they reproduce" in text and "74.87" in text
    assert main(["compare", str(csv_path)]) == 0
    out = capsys.readouterr().out
    assert "PSPNet R-18-D8 (mmseg, 512x1024, 80k iters) (val, single-scale" in out and "74.9" in out


def test_row_naming_a_reference_is_compared_and_shown_beside_it(tmp_path, capsys):
    """No TensorFlow: a result row whose `reference` is a row id; compare and README pick that row."""
    from bench.report import references
    from bench.report.readme import update_readme
    from bench.report.results import append_row, row_from_result
    from tests.cityscapes_files import evaluation_result

    reference = "pspnet_r101-d8_4xb2-40k_cityscapes-512x1024/ss"
    assert references.select(reference)["miou"] == 78.34
    with pytest.raises(UserError, match="no row with that id"):
        references.select("pspnet_r101-d8/nope")
    csv_path = tmp_path / "results.csv"
    common = dict(model="pspnet", dataset="cityscapes", dataset_kind="real", split="val", commit="x")
    append_row(
        csv_path,
        row_from_result(
            evaluation_result(1),
            preset="mmseg-r101",
            reference_id=reference,
            identity={"scope": "full"},  # a whole split: the README shows only those
            **common,
        ),
    )
    assert main(["compare", str(csv_path)]) == 0
    out = capsys.readouterr().out
    assert "reference: PSPNet R-101-D8 (mmseg, 512x1024, 40k iters) (val, single-scale" in out
    readme = tmp_path / "README.md"
    readme.write_text("<!-- results:begin -->\n<!-- results:end -->\n")
    update_readme(readme, csv_path)
    text = readme.read_text()
    assert "beside the reference row they reproduce" in text
    assert "PSPNet R-101-D8 (mmseg, 512x1024, 40k iters), single-scale; trained on fine | 78.34 |" in text


# Trainable parameters of mmsegmentation 1.2.2's own PSPNet (MODELS.build of its Cityscapes configs,
# auxiliary head included), counted in .venv-parity; BatchNorm statistics are buffers there, not counted.
@pytest.mark.parametrize(
    "preset, count",
    [
        ("mmseg-r18", 12_790_086),
        pytest.param("mmseg", 48_975_494, marks=pytest.mark.slow),
        pytest.param("mmseg-r101", 67_967_622, marks=pytest.mark.slow),
    ],
)
def test_mmseg_presets_have_the_parameter_count_of_mmsegmentations_model(preset, count):
    pytest.importorskip("tensorflow")
    from models import registry

    model = registry.build("pspnet", preset=preset, aux_head=True)
    assert sum(int(np.prod(w.shape)) for w in model.trainable_weights) == count
