"""Bad input: a message that names the file and the fix, a non-zero exit, and no result file written."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from bench.cli import main
from tests.cityscapes_files import H, W, lid, write_gt, write_pred

KEYS = ("aachen_000000_000019", "bochum_000000_000020")


@pytest.fixture
def dataset(tmp_path: Path) -> tuple[Path, Path]:
    """Two GT frames (road and a car instance) and correct label-ID predictions for both."""
    labels = np.full((H, W), lid("road"), np.uint8)
    instances = labels.astype(np.uint16)
    labels[10:30, 10:50] = lid("car")
    instances[10:30, 10:50] = lid("car") * 1000
    for key in KEYS:
        write_gt(tmp_path / "gt", key, labels, instances)
        write_pred(tmp_path / "pred", key, labels)
    return tmp_path / "gt", tmp_path / "pred"


def run_cli(tmp_path: Path, gt: Path, pred: Path, *extra: str) -> tuple[int, Path]:
    out = tmp_path / "result.json"
    code = main(
        ["evaluate", "--gt", str(gt), "--pred", str(pred), "--json", str(out), "--workers", "1", *extra]
    )
    return code, out


def assert_fails(capsys, tmp_path: Path, gt: Path, pred: Path, *needles: str, extra: tuple[str, ...] = ()):
    code, out = run_cli(tmp_path, gt, pred, *extra)
    err = capsys.readouterr().err
    assert code != 0
    assert not out.exists()
    for needle in needles:
        assert needle in err, (needle, err)
    return err


def pred_file(pred: Path, key: str = KEYS[0]) -> Path:
    return pred / f"{key}_leftImg8bit.png"


def test_valid_input_succeeds_and_writes_json(capsys, tmp_path, dataset):
    code, out = run_cli(tmp_path, *dataset)
    assert code == 0 and out.exists()
    assert "road" in capsys.readouterr().out


def test_gt_image_without_prediction(capsys, tmp_path, dataset):
    gt, pred = dataset
    pred_file(pred, KEYS[1]).unlink()
    assert_fails(
        capsys, tmp_path, gt, pred, "no prediction", f"{KEYS[1]}_gtFine_labelIds.png", f"{KEYS[1]}*.png"
    )


def test_two_predictions_for_one_gt_image(capsys, tmp_path, dataset):
    gt, pred = dataset
    (pred / "copy").mkdir()
    (pred / "copy" / f"{KEYS[0]}_pred.png").write_bytes(pred_file(pred).read_bytes())
    assert_fails(capsys, tmp_path, gt, pred, "2 predictions", f"{KEYS[0]}_gtFine_labelIds.png", "exactly one")


def test_prediction_size_differs_from_gt(capsys, tmp_path, dataset):
    gt, pred = dataset
    Image.fromarray(np.full((H // 2, W // 2), lid("road"), np.uint8)).save(pred_file(pred))
    assert_fails(capsys, tmp_path, gt, pred, str(pred_file(pred)), f"{W // 2}x{H // 2}", "full resolution")


def test_file_that_is_not_a_png(capsys, tmp_path, dataset):
    gt, pred = dataset
    Image.fromarray(np.full((H, W), lid("road"), np.uint8)).save(pred_file(pred), format="JPEG")
    assert_fails(capsys, tmp_path, gt, pred, str(pred_file(pred)), "not a PNG")


def test_truncated_png(capsys, tmp_path, dataset):
    gt, pred = dataset
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 34, (H, W)).astype(np.uint8)).save(pred_file(pred))
    data = pred_file(pred).read_bytes()
    pred_file(pred).write_bytes(data[: len(data) // 2])
    assert_fails(capsys, tmp_path, gt, pred, str(pred_file(pred)), "truncated or corrupt")


def test_rgb_colour_prediction(capsys, tmp_path, dataset):
    gt, pred = dataset
    Image.fromarray(np.zeros((H, W, 3), np.uint8)).save(pred_file(pred))
    assert_fails(capsys, tmp_path, gt, pred, str(pred_file(pred)), "3 channels", "single-channel")


def test_label_id_prediction_with_value_34_or_more_names_the_value(capsys, tmp_path, dataset):
    gt, pred = dataset
    array = np.full((H, W), lid("road"), np.uint8)
    array[5, 5] = 40
    Image.fromarray(array).save(pred_file(pred, KEYS[1]))
    assert_fails(capsys, tmp_path, gt, pred, str(pred_file(pred, KEYS[1])), "value 40", "label ID")


def test_train_id_void_255_in_label_mode_suggests_pred_ids_train(capsys, tmp_path, dataset):
    gt, pred = dataset
    array = np.zeros((H, W), np.uint8)
    array[:4] = 255
    Image.fromarray(array).save(pred_file(pred))
    assert_fails(capsys, tmp_path, gt, pred, "value 255", "--pred-ids train")


def test_value_outside_train_ids_in_train_mode(capsys, tmp_path, dataset):
    gt, pred = dataset
    Image.fromarray(np.full((H, W), 25, np.uint8)).save(pred_file(pred))
    assert_fails(
        capsys,
        tmp_path,
        gt,
        pred,
        str(pred_file(pred)),
        "value 25",
        "no train ID",
        extra=("--pred-ids", "train"),
    )


def test_empty_split(capsys, tmp_path, dataset):
    gt, pred = dataset
    code, out = run_cli(tmp_path, gt, pred, "--split", "train")
    err = capsys.readouterr().err
    assert code != 0 and not out.exists()
    assert "split 'train' is empty" in err and "val" in err


def test_missing_gt_root_names_the_environment_variable(capsys, tmp_path, dataset, monkeypatch):
    monkeypatch.delenv("CITYSCAPES_DATASET", raising=False)
    code = main(["evaluate", "--pred", str(dataset[1])])
    assert code != 0 and "CITYSCAPES_DATASET" in capsys.readouterr().err


def test_gt_root_falls_back_to_environment_variable(capsys, tmp_path, dataset, monkeypatch):
    monkeypatch.setenv("CITYSCAPES_DATASET", str(dataset[0]))
    assert main(["evaluate", "--pred", str(dataset[1]), "--workers", "1"]) == 0
    assert "2 images" in capsys.readouterr().out


def test_error_in_a_worker_process_reaches_the_cli(capsys, tmp_path, dataset):
    gt, pred = dataset
    Image.fromarray(np.zeros((H, W, 3), np.uint8)).save(pred_file(pred, KEYS[1]))
    code = main(
        [
            "evaluate",
            "--gt",
            str(gt),
            "--pred",
            str(pred),
            "--workers",
            "2",
            "--json",
            str(tmp_path / "r.json"),
        ]
    )
    assert code != 0 and not (tmp_path / "r.json").exists()
    assert str(pred_file(pred, KEYS[1])) in capsys.readouterr().err


@pytest.mark.parametrize(
    "target, needle",
    [
        ("/etc/hostname/x.json", "/etc/hostname is a file, not a folder"),
        ("{tmp}", "is a folder: give a file name"),
        ("{tmp}/" + "j" * 251 + ".json", "the file system allows 255"),
    ],
)
def test_unwritable_json_is_refused_before_any_image_is_scored(capsys, tmp_path, dataset, target, needle):
    """The output is checked first: a corrupt prediction is never reached, no minutes are lost."""
    gt, pred = dataset
    pred_file(pred).write_bytes(b"not a png")
    target = target.format(tmp=tmp_path)
    code = main(["evaluate", "--gt", str(gt), "--pred", str(pred), "--json", target, "--workers", "1"])
    err = capsys.readouterr().err
    assert code == 2 and f"--json file {target}" in err and needle in err
    assert "not a PNG" not in err


def test_json_name_of_245_bytes_is_written(capsys, tmp_path, dataset):
    out = tmp_path / ("s" * 240 + ".json")
    assert main(["evaluate", "--gt", str(dataset[0]), "--pred", str(dataset[1]), "--json", str(out)]) == 0
    assert out.is_file() and sorted(p.name for p in tmp_path.iterdir()) == sorted(["gt", "pred", out.name])
