# ruff: noqa: E501  (the case tables read best one case per line)
"""Bad inputs and faults for `evaluate`, `compare`, `readme`, `models`, `perf eval` and `data.synthetic`.

Each case builds its inputs in a fresh folder, runs the command in-process (`bench.cli.main`, or the
synthetic generator's `main`) and checks what a user sees: the exit code (2 for bad input, 0 where the
input is odd but valid), a message that names the file or option, no traceback, and, when the command
fails, a folder unchanged byte for byte (nothing created, half-written, changed or lost). Permission cases
must bind the command: as root (whom chmod does not stop) they run in a subprocess without the capabilities
that override file permissions.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from bench.cli import main as bench_main
from bench.evaluation.pool import available_cores
from bench.report.results import append_row, row_from_result
from data.labels import TRAIN_TO_COLOR, name2label, to_train_ids
from data.synthetic.dataset import main as synthetic_main
from tests.cityscapes_files import H, W, evaluation_result, random_scene, write_gt, write_png, write_pred
from tests.filesystems import full_file_system

REPO = Path(__file__).resolve().parents[1]
KEYS = ("frankfurt_000000_000019", "lindau_000001_000019")
README = "# project\n\n## Results\n\n<!-- results:begin -->\nold section\n<!-- results:end -->\n\nfooter\n"
ROOT = os.geteuid() == 0
SETPRIV = shutil.which("setpriv")


# ---------------------------------------------------------------- inputs
def scenes() -> list[tuple[np.ndarray, np.ndarray]]:
    rng = np.random.default_rng(5)
    return [random_scene(rng, n_instances=8) for _ in KEYS]


SCENES = scenes()


@functools.cache
def result(seed: int):
    """A real EvaluationResult (the evaluator on random scenes), made once per seed."""
    return evaluation_result(seed)


def eval_data(folder: Path, *, images: bool = True) -> tuple[Path, Path]:
    """Two GT frames under folder/gt (Cityscapes layout) and exact label-ID predictions under folder/pred."""
    for key, (labels, instances) in zip(KEYS, SCENES, strict=True):
        write_gt(folder / "gt", key, labels, instances)
        write_pred(folder / "pred", key, labels)
    if not images:
        shutil.rmtree(folder / "gt" / "leftImg8bit")
    return folder / "gt", folder / "pred"


def gt_file(folder: Path, key: str = KEYS[0], kind: str = "labelIds") -> Path:
    return folder / "gt" / "gtFine" / "val" / key.split("_")[0] / f"{key}_gtFine_{kind}.png"


def pred_file(folder: Path, key: str = KEYS[0]) -> Path:
    return folder / "pred" / f"{key}_leftImg8bit.png"


def evaluate_argv(folder: Path, *extra: str, workers: str = "1") -> list[str]:
    return [
        "evaluate",
        "--gt",
        str(folder / "gt"),
        "--pred",
        str(folder / "pred"),
        "--workers",
        workers,
        *extra,
    ]


def results_csv(folder: Path, name: str = "results.csv") -> Path:
    """Two good result rows (pspnet, fcn), written as `bench run` writes them."""
    path = folder / "results" / name
    for seed, model in enumerate(("pspnet", "fcn")):
        row = row_from_result(
            result(seed), model=model, dataset="synthetic-v1", dataset_kind="synthetic", split="val",
            commit="c", date="2026-01-01T00:00:00Z",
        )  # fmt: skip
        append_row(path, row)
    return path


def readme_project(folder: Path) -> tuple[Path, Path]:
    (folder / "README.md").write_text(README)
    return folder / "README.md", results_csv(folder)


def readme_argv(folder: Path, *extra: str) -> list[str]:
    return ["readme", "--readme", str(folder / "README.md"), *extra]


def edit_csv(path: Path, line: int, edit: Callable[[list[str]], list[str]]) -> None:
    """Rewrite one line (1-based, header = 1) of a CSV with `edit` applied to its comma-split cells."""
    lines = path.read_text().splitlines()
    lines[line - 1] = ",".join(edit(lines[line - 1].split(",")))
    path.write_text("\n".join(lines) + "\n")


def set_cell(path: Path, column: str, value: str, line: int = 2) -> None:
    header = path.read_text().splitlines()[0].split(",")
    index = header.index(column)
    edit_csv(path, line, lambda cells: cells[:index] + [value] + cells[index + 1 :])


def put(path: Path, data: str | bytes) -> Path:
    """Write text or bytes to `path` (its folder made) and return the path."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data.encode() if isinstance(data, str) else data)
    return path


def cityscapes_json(folder: Path, data: object, name: str = "result.json") -> Path:
    path = folder / name
    path.write_text(json.dumps(data))
    return path


def good_json() -> dict:
    """What `bench evaluate --json` writes (NaN as null)."""
    with tempfile.TemporaryDirectory() as tmp:
        return json.loads(result(1).write_json(Path(tmp) / "r.json").read_text())


# ---------------------------------------------------------------- running a case
@dataclass
class Case:
    id: str
    setup: Callable[[Path], list[str]]  # builds the inputs in the folder; returns the command line
    expect: str  # regex that stdout + stderr must match
    code: int = 2
    command: str = "bench"  # or "synthetic"
    check: Callable[[Path], None] | None = None  # for exit 0: the outputs are right
    unprivileged: bool = False  # file permissions must bind the command (root: without its override)


def snapshot(folder: Path) -> dict[str, tuple]:
    """Every entry under folder: type, size, mode and content hash (files), or the link target."""
    state = {}
    for path in sorted(folder.rglob("*")):
        rel = str(path.relative_to(folder))
        if path.is_symlink():
            state[rel] = ("link", os.readlink(path))
        elif path.is_dir():
            state[rel] = ("dir", path.stat().st_mode)
        else:
            st = path.stat()
            try:
                digest = hashlib.sha1(path.read_bytes()).hexdigest()
            except OSError:
                digest = None
            state[rel] = ("file", st.st_size, st.st_mode, digest)
    return state


def run_in_process(case: Case, argv: list[str], capsys) -> tuple[int, str]:
    entry = synthetic_main if case.command == "synthetic" else bench_main
    try:
        code = entry(argv)
    except SystemExit as exc:  # argparse: usage and "error: ..." on stderr
        code = exc.code
    out, err = capsys.readouterr()
    return code, out + err


def run_without_file_permission_override(case: Case, argv: list[str], folder: Path) -> tuple[int, str]:
    """Root, but without the capabilities that let it ignore file permissions: chmod binds it as any user."""
    module = "data.synthetic" if case.command == "synthetic" else "bench"
    done = subprocess.run(
        [SETPRIV, "--bounding-set=-dac_override,-dac_read_search", sys.executable, "-m", module, *argv],
        cwd=folder,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        capture_output=True,
        text=True,
        timeout=120,
    )
    return done.returncode, done.stdout + done.stderr


@pytest.fixture
def case_folder(tmp_path: Path) -> Iterator[Path]:
    yield tmp_path
    for path in [tmp_path, *tmp_path.rglob("*")]:  # undo chmod 000 so that the folder can be removed
        with contextlib.suppress(OSError):
            if not path.is_symlink():
                path.chmod(0o755 if path.is_dir() else 0o644)


def check_case(case: Case, folder: Path, capsys, monkeypatch) -> str:
    # setenv first: delenv of an unset variable records nothing to undo, and a case that sets it (the
    # gt-env-points-nowhere case) would leak it into every later test of this process
    monkeypatch.setenv("CITYSCAPES_DATASET", "")
    monkeypatch.delenv("CITYSCAPES_DATASET")
    monkeypatch.chdir(folder)
    argv = case.setup(folder)
    before = snapshot(folder)
    if case.unprivileged and ROOT:
        if SETPRIV is None:
            pytest.skip("running as root without setpriv: file permissions cannot bind the command")
        code, text = run_without_file_permission_override(case, argv, folder)
    else:
        code, text = run_in_process(case, argv, capsys)
    assert "Traceback" not in text, text
    assert code == case.code, text
    assert re.search(case.expect, text), (case.expect, text)
    if case.code != 0:
        assert snapshot(folder) == before, "a failed command changed its folder"
    if case.check is not None:
        case.check(folder)
    return text


# ---------------------------------------------------------------- evaluate: ground truth
def _save(path: Path, array: np.ndarray, **kw) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array, **kw).save(path)


def _truncate(path: Path, keep: float = 0.5) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * keep)])


def _replace_with_dir(path: Path) -> None:
    path.unlink()
    path.mkdir()


def _dangling(path: Path) -> None:
    path.unlink()
    path.symlink_to(path.with_name("nowhere.png"))


def _loop(path: Path) -> None:
    path.unlink()
    path.symlink_to(path)


def _ev(prepare: Callable[[Path], object], *extra: str, images: bool = True, workers: str = "1"):
    def setup(folder: Path) -> list[str]:
        eval_data(folder, images=images)
        prepare(folder)
        return evaluate_argv(folder, *extra, workers=workers)

    return setup


def _extra_gt(folder: Path, folder_name: str, key: str) -> None:
    labels, instances = SCENES[0]
    gt = folder / "gt" / "gtFine" / "val" / folder_name
    write_png(gt / f"{key}_gtFine_labelIds.png", labels)
    write_png(gt / f"{key}_gtFine_instanceIds.png", instances)


def _env_points_nowhere(folder: Path) -> list[str]:
    """$CITYSCAPES_DATASET names a folder that is gone (check_case's monkeypatch restores the variable)."""
    os.environ["CITYSCAPES_DATASET"] = str(folder / "gone")
    return ["evaluate", "--pred", str(folder)]


def _scores(expected_images: int):
    def check(folder: Path) -> None:
        data = json.loads((folder / "r.json").read_text())
        assert data["nImages"] == expected_images and data["averageScoreClasses"] == 1.0

    return check


GT_CASES = [
    Case("gt-root-missing", lambda f: evaluate_argv(f) + ["--gt", str(f / "nope")], r"nope does not exist"),
    Case("gt-root-is-a-file", _ev(lambda f: (f / "afile").write_text("x"), "--gt", "afile"), r"afile is not a folder"),
    Case("gt-root-empty-folder", _ev(lambda f: (f / "empty").mkdir(), "--gt", "empty"), r"empty has no gtFine/"),
    Case("gt-no-root-no-env", lambda f: ["evaluate", "--pred", str(f)], r"CITYSCAPES_DATASET"),
    Case("gt-env-points-nowhere", _env_points_nowhere, r"gone does not exist.*CITYSCAPES_DATASET"),
    Case("gt-split-empty", _ev(lambda f: None, "--split", "train"), r"split 'train' is empty.*splits present: val"),
    Case("gt-split-bogus", _ev(lambda f: None, "--split", "vall"), r"split 'vall' is empty"),
    Case("gt-split-blank", _ev(lambda f: None, "--split", ""), r"split '' is not a folder name"),
    Case("gt-split-path", _ev(lambda f: None, "--split", "../gtFine/val"), r"is not a folder name"),
    Case("gt-split-test-without-labels", _ev(lambda f: (f / "gt" / "gtFine" / "test" / "berlin").mkdir(parents=True), "--split", "test"), r"split 'test' is empty"),
    Case("gt-instance-file-missing", _ev(lambda f: gt_file(f, kind="instanceIds").unlink()), r"cannot read instance ground truth .*frankfurt_000000_000019_gtFine_instanceIds.png"),
    Case("gt-labels-truncated", _ev(lambda f: _truncate(gt_file(f))), r"ground truth .*frankfurt_000000_000019_gtFine_labelIds.png is truncated or corrupt"),
    Case("gt-labels-not-png", _ev(lambda f: gt_file(f).write_text("labels")), r"labelIds.png is not a PNG"),
    Case("gt-labels-empty-file", _ev(lambda f: gt_file(f).write_bytes(b"")), r"labelIds.png is not a PNG"),
    Case("gt-labels-rgb", _ev(lambda f: _save(gt_file(f), np.zeros((H, W, 3), np.uint8))), r"labelIds.png is not an 8-bit single-channel"),
    Case("gt-labels-16-bit", _ev(lambda f: _save(gt_file(f), SCENES[0][0].astype(np.uint16))), r"labelIds.png is not an 8-bit single-channel"),
    Case("gt-labels-value-200", _ev(lambda f: _save(gt_file(f), np.full((H, W), 200, np.uint8))), r"labelIds.png has value 200, which is no label ID"),
    Case("gt-instances-other-size", _ev(lambda f: _save(gt_file(f, kind="instanceIds"), np.zeros((H, W // 2), np.uint16))), r"instance file .*instanceIds.png is \(64, 64\)"),
    Case("gt-instances-rgb", _ev(lambda f: _save(gt_file(f, kind="instanceIds"), np.zeros((H, W, 3), np.uint8))), r"instance file .*instanceIds.png"),
    Case("gt-labels-a-folder", _ev(lambda f: _replace_with_dir(gt_file(f))), r"cannot read ground truth .*labelIds.png: Is a directory"),
    Case("gt-labels-dangling-link", _ev(lambda f: _dangling(gt_file(f))), r"cannot read ground truth .*labelIds.png: No such file"),
    Case("gt-labels-link-loop", _ev(lambda f: _loop(gt_file(f))), r"cannot read ground truth .*labelIds.png: Too many levels"),
    Case("gt-name-unparseable", _ev(lambda f: _extra_gt(f, "my_city", "my_city_000000_000019")), r"cannot parse the file name .*my_city_000000_000019_gtFine_labelIds.png"),
    Case("gt-name-two-parts", _ev(lambda f: _extra_gt(f, "ulm", "ulm_000000")), r"cannot parse the file name .*ulm_000000_gtFine_labelIds.png"),
    Case("gt-two-files-one-name", _ev(lambda f: _extra_gt(f, "copy", KEYS[0])), r"two ground-truth files are named frankfurt_000000_000019_gtFine_labelIds.png"),
    Case("gt-image-without-gt", _ev(lambda f: write_png(f / "gt/leftImg8bit/val/ulm/ulm_000000_000019_leftImg8bit.png", np.zeros((H, W, 3), np.uint8))), r"ulm_000000_000019_leftImg8bit.png has no ground truth"),
    Case("gt-city-lindau2-is-scored", _ev(lambda f: (_extra_gt(f, "lindau2", "lindau2_000000_000019"), write_pred(f / "pred", "lindau2_000000_000019", SCENES[0][0])), "--json", "r.json"), r"3 images", code=0, check=_scores(3)),
    Case("gt-only-root-is-enough", _ev(lambda f: None, "--json", "r.json", images=False), r"2 images", code=0, check=_scores(2)),
    Case("gt-hidden-copy-ignored", _ev(lambda f: write_png(gt_file(f).with_name("._" + gt_file(f).name), SCENES[0][0]), "--json", "r.json"), r"2 images", code=0, check=_scores(2)),
    Case("gt-instances-8-bit-are-read", _ev(lambda f: _save(gt_file(f, kind="instanceIds"), SCENES[0][0]), "--json", "r.json"), r"2 images", code=0),
    Case("gt-city-folder-unreadable", _ev(lambda f: (f / "gt/gtFine/val/lindau").chmod(0)), r"cannot read the folder .*gtFine/val/lindau", unprivileged=True),
    Case("gt-labels-unreadable", _ev(lambda f: gt_file(f).chmod(0)), r"cannot read ground truth .*labelIds.png: Permission denied", unprivileged=True),
]  # fmt: skip


# ---------------------------------------------------------------- evaluate: predictions
def _pred_image(folder: Path, array: np.ndarray, key: str = KEYS[0], **kw) -> None:
    _save(pred_file(folder, key), array, **kw)


def _palette_prediction(folder: Path) -> None:
    image = Image.fromarray(SCENES[0][0], mode="L").convert("P")
    image.putpalette([v for i in range(256) for v in (i, i, i)])
    image.save(pred_file(folder))


def _colour_prediction(folder: Path) -> None:
    _pred_image(folder, TRAIN_TO_COLOR[to_train_ids(SCENES[0][0])])


def _train_ids_as_label_ids(folder: Path) -> None:
    """What a model writes when it saves its argmax (train IDs 0..18, a class everywhere) as the official format."""
    for key, (labels, _) in zip(KEYS, SCENES, strict=True):
        train = to_train_ids(labels)
        train[train == 255] = 0
        _pred_image(folder, train, key)


def _extra_prediction(folder: Path, name: str, array: np.ndarray | None = None) -> None:
    write_png(folder / "pred" / name, SCENES[0][0] if array is None else array)


def _nest_prediction(folder: Path) -> None:
    (folder / "pred" / "a" / "b").mkdir(parents=True)
    pred_file(folder).rename(folder / "pred" / "a" / "b" / pred_file(folder).name)


ROAD = name2label["road"].id
PRED_CASES = [
    Case("pred-folder-missing", _ev(lambda f: None, "--pred", "nope"), r"prediction folder nope does not exist"),
    Case("pred-folder-is-a-file", _ev(lambda f: (f / "afile").write_text("x"), "--pred", "afile"), r"prediction folder afile is not a folder"),
    Case("pred-folder-empty", _ev(lambda f: [p.unlink() for p in (f / "pred").iterdir()]), r"2 of 2 ground-truth images have no prediction"),
    Case("pred-one-missing", _ev(lambda f: pred_file(f, KEYS[1]).unlink()), r"1 of 2 .*lindau_000001_000019_gtFine_labelIds.png.*lindau_000001_000019\*\.png"),
    Case("pred-two-for-one-gt", _ev(lambda f: _extra_prediction(f, "sub/frankfurt_000000_000019_x.png")), r"has 2 predictions"),
    Case("pred-upper-case-suffix", _ev(lambda f: pred_file(f).rename(pred_file(f).with_suffix(".PNG"))), r"1 of 2 .*no prediction"),
    Case("pred-other-size", _ev(lambda f: _pred_image(f, np.full((H // 2, W // 2), ROAD, np.uint8))), r"prediction .*frankfurt_000000_000019_leftImg8bit.png is 64x32 .*full resolution"),
    Case("pred-transposed", _ev(lambda f: _pred_image(f, np.full((W, H), ROAD, np.uint8))), r"is 64x128 but its ground truth .* is 128x64"),
    Case("pred-rgb", _ev(lambda f: _pred_image(f, np.zeros((H, W, 3), np.uint8))), r"frankfurt_000000_000019_leftImg8bit.png has 3 channels"),
    Case("pred-rgba", _ev(lambda f: _pred_image(f, np.zeros((H, W, 4), np.uint8))), r"has 4 channels"),
    Case("pred-grey-alpha", _ev(lambda f: Image.fromarray(np.zeros((H, W, 2), np.uint8), mode="LA").save(pred_file(f))), r"has 2 channels"),
    Case("pred-colourised", _ev(_colour_prediction), r"has 3 channels \(a colour image\?\)"),
    Case("pred-truncated", _ev(lambda f: _truncate(pred_file(f), 0.6)), r"leftImg8bit.png is truncated or corrupt"),
    Case("pred-signature-only", _ev(lambda f: pred_file(f).write_bytes(b"\x89PNG\r\n\x1a\n")), r"truncated or corrupt"),
    Case("pred-jpeg-named-png", _ev(lambda f: Image.fromarray(SCENES[0][0]).save(pred_file(f), format="JPEG")), r"leftImg8bit.png is not a PNG"),
    Case("pred-empty-file", _ev(lambda f: pred_file(f).write_bytes(b"")), r"is not a PNG"),
    Case("pred-text-file", _ev(lambda f: pred_file(f).write_text("road everywhere")), r"is not a PNG"),
    Case("pred-value-34", _ev(lambda f: _pred_image(f, np.full((H, W), 34, np.uint8))), r"has value 34, which is no Cityscapes label ID"),
    Case("pred-value-200", _ev(lambda f: _pred_image(f, np.full((H, W), 200, np.uint8))), r"has value 200"),
    Case("pred-value-255-label-mode", _ev(lambda f: _pred_image(f, np.full((H, W), 255, np.uint8))), r"value 255.*--pred-ids train"),
    Case("pred-16-bit-value-300", _ev(lambda f: _pred_image(f, np.full((H, W), 300, np.uint16))), r"has value 300"),
    Case("pred-label-ids-in-train-mode", _ev(lambda f: None, "--pred-ids", "train"), r"has value \d+, which is no train ID"),
    Case("pred-a-folder", _ev(lambda f: _replace_with_dir(pred_file(f))), r"1 of 2 .*no prediction"),
    Case("pred-dangling-link", _ev(lambda f: _dangling(pred_file(f))), r"cannot read prediction .*: No such file"),
    Case("pred-16-bit-label-ids-are-read", _ev(lambda f: _pred_image(f, SCENES[0][0].astype(np.uint16)), "--json", "r.json"), r"2 images", code=0, check=_scores(2)),
    Case("pred-palette-indices-are-read", _ev(_palette_prediction, "--json", "r.json"), r"2 images", code=0, check=_scores(2)),
    Case("pred-nested-folders-are-searched", _ev(_nest_prediction, "--json", "r.json"), r"2 images", code=0, check=_scores(2)),
    Case("pred-unrelated-files-ignored", _ev(lambda f: (put(f / "pred" / "notes.txt", "x"), _extra_prediction(f, "berlin_000000_000019.png")), "--json", "r.json"), r"2 images", code=0, check=_scores(2)),
    Case("pred-train-ids-as-label-ids-refused", _ev(_train_ids_as_label_ids), r"error: .*ignores \(0-6, 9, 10, 14-16, 18, all below 19\).*look like train IDs.*--pred-ids train.*--pred-ids label to score them", code=2),
    Case("pred-train-ids-scored-as-label-ids-when-asked", _ev(_train_ids_as_label_ids, "--pred-ids", "label"), r"WARNING: .*look like train IDs", code=0),
    Case("pred-error-in-a-worker", _ev(lambda f: _pred_image(f, np.zeros((H, W, 3), np.uint8), KEYS[1]), workers="2"), r"lindau_000001_000019_leftImg8bit.png has 3 channels"),
    Case("pred-file-unreadable", _ev(lambda f: pred_file(f).chmod(0)), r"cannot read prediction .*: Permission denied", unprivileged=True),
    Case("pred-folder-unreadable", _ev(lambda f: (f / "pred" / "deep").mkdir() or (f / "pred" / "deep").chmod(0)), r"cannot read the prediction folder .*deep: Permission denied", unprivileged=True),
]  # fmt: skip


# ---------------------------------------------------------------- evaluate: options and outputs
LONG_OK = "r" * 240 + ".json"  # 245 bytes: the temp name beside it used to pass the 255-byte limit
TOO_LONG = "r" * 251 + ".json"


def _long_name_written(folder: Path) -> None:
    assert json.loads((folder / LONG_OK).read_text())["nImages"] == 2
    assert [p.name for p in folder.iterdir() if p.name.endswith(".tmp")] == []


def _capped(folder: Path) -> None:
    assert (folder / "r.json").is_file()


OPTION_CASES = [
    Case("workers-zero", _ev(lambda f: None, workers="0"), r"--workers must be at least 1, not 0"),
    Case("workers-negative", _ev(lambda f: None, workers="-3"), r"--workers must be at least 1"),
    Case("workers-not-a-number", _ev(lambda f: None, workers="many"), r"argument --workers: invalid int value: 'many'"),
    Case("workers-more-than-cores", _ev(lambda f: None, "--json", "r.json", workers="40"), rf"note: --workers 40 capped at {available_cores()}", code=0, check=_capped),
    Case("pred-ids-bogus", _ev(lambda f: None, "--pred-ids", "colour"), r"argument --pred-ids: invalid choice: 'colour'"),
    Case("unknown-option", _ev(lambda f: None, "--gt-root", "x"), r"unrecognized arguments: --gt-root"),
    Case("pred-option-missing", lambda f: ["evaluate", "--gt", str(f)], r"the following arguments are required: --pred"),
    Case("json-under-a-file", _ev(lambda f: None, "--json", "/etc/hostname/x"), r"--json file /etc/hostname/x cannot be written: /etc/hostname is a file"),
    Case("json-under-a-local-file", _ev(lambda f: (f / "afile").write_text("x"), "--json", "afile/r.json"), r"afile is a file, not a folder"),
    Case("json-is-a-folder", _ev(lambda f: (f / "out").mkdir(), "--json", "out"), r"--json file out is a folder"),
    Case("json-name-too-long", _ev(lambda f: None, "--json", TOO_LONG), r"is 256 bytes long, the file system allows 255"),
    Case("json-dangling-folder-link", _ev(lambda f: (f / "out").symlink_to(f / "gone"), "--json", "out/r.json"), r"out is a broken symbolic link"),
    Case("json-245-byte-name-is-written", _ev(lambda f: None, "--json", LONG_OK), r"wrote", code=0, check=_long_name_written),
    Case("json-in-a-new-folder-is-written", _ev(lambda f: None, "--json", "new/deeper/r.json"), r"wrote", code=0, check=lambda f: (f / "new/deeper/r.json").is_file()),
    Case("json-folder-read-only", _ev(lambda f: (f / "ro").mkdir() or (f / "ro").chmod(0o555), "--json", "ro/r.json"), r"--json file ro/r.json: cannot write in ro \(Permission denied\)", unprivileged=True),
]  # fmt: skip


# ---------------------------------------------------------------- compare
def _cmp(prepare: Callable[[Path], object], *extra: str):
    def setup(folder: Path) -> list[str]:
        source = prepare(folder)
        return ["compare", str(source), *extra]

    return setup


def _csv_with(edit: Callable[[Path], None]):
    def prepare(folder: Path) -> Path:
        path = results_csv(folder)
        edit(path)
        return path

    return prepare


def _reference_dir(folder: Path, edit: Callable[[Path], None]) -> str:
    refs = folder / "refs"
    shutil.copytree(REPO / "results" / "reference", refs)
    edit(refs / "pspnet-paper-test.csv")
    return str(refs)


def _with_refs(edit: Callable[[Path], None]):
    def setup(folder: Path) -> list[str]:
        path = results_csv(folder)
        return ["compare", str(path), "--reference-dir", _reference_dir(folder, edit)]

    return setup


def _append_bytes(path: Path, data: bytes) -> None:
    with open(path, "ab") as f:
        f.write(data)


COMPARE_CASES = [
    Case("compare-source-missing", _cmp(lambda f: f / "results.csv"), r"results.csv does not exist"),
    Case("compare-typo-in-source", _cmp(lambda f: results_csv(f).with_name("resluts.csv")), r"resluts.csv does not exist"),
    Case("compare-empty-folder", _cmp(lambda f: (f / "run").mkdir() or f / "run"), r"run folder .*run has neither row.json nor result.json"),
    Case("compare-csv-invalid-utf8", _cmp(_csv_with(lambda p: _append_bytes(p, b"pspnet,\xff\xfe,broken\n"))), r"results.csv is not UTF-8 text \(line 4"),
    Case("compare-csv-latin1-text", _cmp(_csv_with(lambda p: p.write_bytes(p.read_bytes().replace(b"synthetic-v1", b"synth\xe9tique", 1)))), r"is not UTF-8 text \(line 2"),
    Case("compare-csv-short-row", _cmp(_csv_with(lambda p: edit_csv(p, 3, lambda c: c[:10]))), r"results.csv line 3 has 10 of the header's \d+ fields"),
    Case("compare-csv-long-row", _cmp(_csv_with(lambda p: edit_csv(p, 2, lambda c: c + ["extra"]))), r"results.csv line 2 has more fields than the header"),
    Case("compare-csv-score-not-a-number", _cmp(_csv_with(lambda p: set_cell(p, "road", "n/a", 3))), r"results.csv line 3: column road is 'n/a', not a percentage"),
    Case("compare-csv-score-over-100", _cmp(_csv_with(lambda p: set_cell(p, "miou", "150"))), r"line 2: column miou is '150', not a percentage"),
    Case("compare-csv-score-negative", _cmp(_csv_with(lambda p: set_cell(p, "sky", "-3"))), r"column sky is '-3'"),
    Case("compare-csv-score-infinite", _cmp(_csv_with(lambda p: set_cell(p, "car", "inf"))), r"column car is 'inf'"),
    Case("compare-csv-speed-not-a-number", _cmp(_csv_with(lambda p: set_cell(p, "images_per_s", "fast"))), r"column images_per_s is 'fast', not a non-negative number"),
    Case("compare-csv-nul-byte", _cmp(_csv_with(lambda p: _append_bytes(p, b"pspnet,\x00\n"))), r"results.csv line \d+ (is not valid CSV|has)"),
    Case("compare-csv-header-only", _cmp(lambda f: put(f / "r.csv", "model,dataset\n")), r"r.csv has no result rows yet"),
    Case("compare-csv-empty-file", _cmp(lambda f: put(f / "r.csv", b"")), r"r.csv has no result rows yet"),
    Case("compare-csv-not-results", _cmp(lambda f: put(f / "r.csv", "a,b\n1,2\n")), r"r.csv is not a results file"),
    Case("compare-png-as-source", _cmp(lambda f: write_png(f / "plot.png", np.zeros((4, 4), np.uint8))), r"plot.png is not UTF-8 text"),
    Case("compare-json-a-list", _cmp(lambda f: cityscapes_json(f, [good_json()])), r"result.json holds a JSON list, not an object"),
    Case("compare-json-a-number", _cmp(lambda f: cityscapes_json(f, 42)), r"holds a JSON int"),
    Case("compare-json-string-score", _cmp(lambda f: cityscapes_json(f, {**good_json(), "classScores": {**good_json()["classScores"], "road": "high"}})), r"classScores.road is 'high', not a number in 0..1"),
    Case("compare-json-score-above-1", _cmp(lambda f: cityscapes_json(f, {**good_json(), "averageScoreClasses": 31.4})), r"averageScoreClasses is 31.4"),
    Case("compare-json-bool-score", _cmp(lambda f: cityscapes_json(f, {**good_json(), "averageScoreCategories": True})), r"averageScoreCategories is True"),
    Case("compare-json-scores-a-list", _cmp(lambda f: cityscapes_json(f, {"classScores": [0.5]})), r"neither a result row nor cityscapesScripts JSON"),
    Case("compare-json-syntax-error", _cmp(lambda f: put(f / "r.json", '{"classScores": ')), r"cannot read .*r.json as JSON"),
    Case("compare-json-invalid-utf8", _cmp(lambda f: put(f / "r.json", b'{"model": "\xff"}')), r"cannot read .*r.json as JSON"),
    Case("compare-json-empty", _cmp(lambda f: put(f / "r.json", b"")), r"cannot read .*r.json as JSON"),
    Case("compare-row-json-string-miou", _cmp(lambda f: cityscapes_json(f, {"model": "pspnet", "miou": "31.4"}, "row.json")), r"row.json: miou is '31.4'"),
    Case("compare-run-folder-bad-json", _cmp(lambda f: put(f / "run" / "result.json", "[]").parent), r"run/result.json holds a JSON list"),
    Case("compare-reference-unknown", _cmp(results_csv, "--reference", "pspnet-paper"), r"unknown reference 'pspnet-paper'.*available: pspnet-paper-test"),
    Case("compare-reference-row-out-of-range", _cmp(results_csv, "--reference-row", "9"), r"--reference-row 9 is out of range"),
    Case("compare-row-out-of-range", _cmp(results_csv, "--row", "5"), r"has 2 row\(s\); --row 5 is out of range"),
    Case("compare-row-not-a-number", _cmp(results_csv, "--row", "last"), r"argument --row: invalid int value"),
    Case("compare-model-absent", _cmp(results_csv, "--model", "unet"), r"no row of model 'unet'.*models present: fcn, pspnet"),
    Case("compare-row-and-model", _cmp(results_csv, "--row", "0", "--model", "fcn"), r"not allowed with argument"),
    Case("compare-reference-invalid-utf8", _with_refs(lambda p: _append_bytes(p, b"\xff\n")), r"reference table .*pspnet-paper-test.csv is not UTF-8"),
    Case("compare-reference-short-row", _with_refs(lambda p: _append_bytes(p, b"PSPNet,test\n")), r"pspnet-paper-test.csv line \d+ has 2 fields"),
    Case("compare-reference-not-a-number", _with_refs(lambda p: p.write_text(p.read_text().replace(",98.6", ",high", 1))), r"pspnet-paper-test.csv row 1 .*road is 'high"),
    Case("compare-reference-lacks-columns", _with_refs(lambda p: p.write_text("method,split\nx,test\n")), r"lacks column\(s\) protocol"),
    Case("compare-csv-unreadable", _cmp(_csv_with(lambda p: p.chmod(0))), r"cannot read results file .*results.csv: Permission denied", unprivileged=True),
]  # fmt: skip


# ---------------------------------------------------------------- readme
def _rd(prepare: Callable[[Path], object], *extra: str):
    def setup(folder: Path) -> list[str]:
        readme_project(folder)
        prepare(folder)
        return readme_argv(folder, "--results", str(folder / "results" / "results.csv"), *extra)

    return setup


def _readme_untouched(folder: Path) -> None:
    assert (folder / "README.md").read_text() == README


README_CASES = [
    Case("readme-results-typo", lambda f: readme_project(f) and readme_argv(f, "--results", str(f / "results" / "resluts.csv")), r"results file .*resluts.csv does not exist", check=_readme_untouched),
    Case("readme-results-a-folder", lambda f: readme_project(f) and readme_argv(f, "--results", str(f / "results")), r"results file .*results is not a file", check=_readme_untouched),
    Case("readme-results-invalid-utf8", _rd(lambda f: _append_bytes(f / "results/results.csv", b"\xe9t\xe9\n")), r"results.csv is not UTF-8 text \(line 4", check=_readme_untouched),
    Case("readme-results-short-row", _rd(lambda f: edit_csv(f / "results/results.csv", 2, lambda c: c[:3])), r"results.csv line 2 has 3 of the header's", check=_readme_untouched),
    Case("readme-results-bad-score", _rd(lambda f: set_cell(f / "results/results.csv", "miou", "31,4".replace(",", ";"))), r"line 2: column miou is '31;4'", check=_readme_untouched),
    Case("readme-missing", lambda f: readme_argv(f), r"README .*README.md does not exist"),
    Case("readme-a-folder", lambda f: (f / "README.md").mkdir() or readme_argv(f), r"README .*README.md is not a file"),
    Case("readme-under-a-file", lambda f: ["readme", "--readme", "/etc/hostname/README.md"], r"does not exist"),
    Case("readme-invalid-utf8", _rd(lambda f: (f / "README.md").write_bytes(README.encode() + b"\xff")), r"README .*README.md is not UTF-8 text"),
    Case("readme-no-markers", _rd(lambda f: (f / "README.md").write_text("# project\n")), r"must contain the marker lines .* exactly once each \(found 0 and 0\)"),
    Case("readme-markers-reversed", _rd(lambda f: (f / "README.md").write_text("<!-- results:end -->\n<!-- results:begin -->\n")), r"comes before"),
    Case("readme-plot-under-a-file", _rd(lambda f: None, "--plot", "/etc/hostname/plot.png"), r"bar plot /etc/hostname/plot.png cannot be written: /etc/hostname is a file", check=_readme_untouched),
    Case("readme-plot-a-folder", _rd(lambda f: (f / "plots").mkdir(), "--plot", "plots"), r"bar plot plots is a folder", check=_readme_untouched),
    Case("readme-plot-name-too-long", _rd(lambda f: None, "--plot", "p" * 252 + ".png"), r"the file system allows 255", check=_readme_untouched),
    Case("readme-reference-unknown", _rd(lambda f: None, "--reference", "nope"), r"unknown reference 'nope'", check=_readme_untouched),
    Case("readme-read-only-folder", _rd(lambda f: f.chmod(0o555)), r"README .*README.md: cannot write in .* \(Permission denied\)", unprivileged=True, check=_readme_untouched),
]  # fmt: skip


# ---------------------------------------------------------------- models
MODEL_CASES = [
    Case("models-unknown-name", lambda f: ["models", "--no-params", "pspnet50"], r"unknown model 'pspnet50': choose one of (\w[\w-]*, )*pspnet, pspnet-seed"),
    Case("models-plugin-module-missing", lambda f: ["models", "--no-params", "nosuchpkg.mod:build"], r"cannot import plugin module 'nosuchpkg.mod'"),
    Case("models-plugin-function-missing", lambda f: ["models", "--no-params", "models.pspnet:nope"], r"module 'models.pspnet' has no function 'nope'"),
    Case("models-plugin-not-callable", lambda f: ["models", "--no-params", "models.pspnet:PRESETS"], r"has no function 'PRESETS'"),
    Case("models-option-not-key-value", lambda f: ["models", "--no-params", "-o", "depth"], r"model option 'depth' is not key=value"),
    Case("models-option-empty-key", lambda f: ["models", "--no-params", "-o", "=3"], r"model option '=3' is not key=value"),
    Case("models-option-unknown", lambda f: ["models", "--no-params", "pspnet", "-o", "layers=3"], r"model 'pspnet' does not take these options \['layers'\]"),
    Case("models-flops-bad-size", lambda f: ["models", "pspnet", "--flops", "big"], r"argument --flops: 'big' is not a size"),
    Case("models-num-classes-not-a-number", lambda f: ["models", "--num-classes", "nineteen"], r"argument --num-classes: invalid int value"),
    Case("models-listing-of-a-plugin", lambda f: ["models", "--no-params", "models.fcn:build"], r"models.fcn:build: Dilated-ResNet FCN", code=0),
]  # fmt: skip


# ---------------------------------------------------------------- data.synthetic
def _syn(*args: str, prepare: Callable[[Path], object] = lambda f: None):
    def setup(folder: Path) -> list[str]:
        prepare(folder)
        return ["--train", "0", "--val", "1", "--size", "32x64", "--workers", "1", "--quiet", *args]

    return setup


SYNTHETIC_CASES = [
    Case("synthetic-out-missing", _syn(), r"the following arguments are required: --out", command="synthetic"),
    Case("synthetic-out-under-a-file", _syn("--out", "/etc/hostname/ds"), r"cannot write the dataset to /etc/hostname/ds: /etc/hostname is a file", command="synthetic"),
    Case("synthetic-out-under-a-local-file", _syn("--out", "afile/ds", prepare=lambda f: (f / "afile").write_text("x")), r"afile is a file, not a folder", command="synthetic"),
    Case("synthetic-out-is-a-file", _syn("--out", "afile", prepare=lambda f: (f / "afile").write_text("x")), r"afile exists and is not a synthetic dataset", command="synthetic"),
    Case("synthetic-out-other-folder", _syn("--out", "mine", prepare=lambda f: (f / "mine").mkdir() or (f / "mine" / "keep.txt").write_text("x")), r"mine exists and is not a synthetic dataset", command="synthetic"),
    Case("synthetic-out-name-too-long", _syn("--out", "d" * 256), r"cannot write the dataset to d+: File name too long", command="synthetic"),
    Case("synthetic-size-text", _syn("--out", "ds", "--size", "big"), r"argument --size: 'big' is not a size", command="synthetic"),
    Case("synthetic-size-too-small", _syn("--out", "ds", "--size", "8x8"), r"--size must be at least 32x64", command="synthetic"),
    Case("synthetic-size-negative", _syn("--out", "ds", "--size=-32x64"), r"argument --size: '-32x64' is not a size", command="synthetic"),
    Case("synthetic-count-negative", _syn("--out", "ds", "--val", "-1"), r"expected a non-negative integer, got '-1'", command="synthetic"),
    Case("synthetic-count-text", _syn("--out", "ds", "--train", "ten"), r"expected a non-negative integer, got 'ten'", command="synthetic"),
    Case("synthetic-nothing-to-make", _syn("--out", "ds", "--val", "0"), r"nothing to generate", command="synthetic"),
    Case("synthetic-seed-negative", _syn("--out", "ds", "--seed", "-5"), r"expected a non-negative integer, got '-5'", command="synthetic"),
    Case("synthetic-workers-negative", _syn("--out", "ds", "--workers", "-2"), r"expected a non-negative integer", command="synthetic"),
    Case("synthetic-folder-read-only", _syn("--out", "ro/ds", prepare=lambda f: (f / "ro").mkdir() or (f / "ro").chmod(0o555)), r"cannot write the dataset to ro/ds: Permission denied", command="synthetic", unprivileged=True),
]  # fmt: skip


# ---------------------------------------------------------------- perf eval (inputs checked before timing)
PERF_CASES = [
    Case("perf-eval-size-text", lambda f: ["perf", "eval", "--size", "huge"], r"'huge' is not a size"),
    Case("perf-eval-size-zero", lambda f: ["perf", "eval", "--size", "0x0"], r"'0x0' is not a size"),
    Case("perf-eval-size-too-small", lambda f: ["perf", "eval", "--size", "8x8", "--n", "1"], r"--size 8x8 is too small"),
    Case("perf-eval-n-zero", lambda f: ["perf", "eval", "--n", "0"], r"--n must be at least 1 frame, not 0"),
    Case("perf-eval-n-text", lambda f: ["perf", "eval", "--n", "all"], r"argument --n: invalid int value"),
    Case("perf-eval-workers-zero", lambda f: ["perf", "eval", "--workers", "0"], r"--workers must be at least 1, not 0"),
    Case("perf-eval-out-under-a-file", lambda f: ["perf", "eval", "--n", "1", "--out", "/etc/hostname/perf"], r"--out folder /etc/hostname/perf cannot be written: /etc/hostname is a file"),
    Case("perf-eval-out-is-a-file", lambda f: put(f / "afile", "x") and ["perf", "eval", "--n", "1", "--out", "afile"], r"--out folder afile is a file, not a folder"),
    Case("perf-eval-data-missing", lambda f: ["perf", "eval", "--n", "1", "--data", str(f / "nope")], r"nope does not exist"),
    Case("perf-eval-data-empty-split", lambda f: eval_data(f) and ["perf", "eval", "--n", "1", "--data", str(f / "gt"), "--split", "train"], r"split 'train' is empty"),
    Case("perf-eval-unknown-target", lambda f: ["perf", "evaluate"], r"invalid choice: 'evaluate'"),
]  # fmt: skip

ALL_CASES = (
    GT_CASES
    + PRED_CASES
    + OPTION_CASES
    + COMPARE_CASES
    + README_CASES
    + MODEL_CASES
    + SYNTHETIC_CASES
    + PERF_CASES
)


def test_case_names_are_unique():
    names = [c.id for c in ALL_CASES]
    assert len(names) == len(set(names))
    assert len(names) >= 110


@pytest.mark.parametrize("case", ALL_CASES, ids=[c.id for c in ALL_CASES])
def test_bad_input(case: Case, case_folder: Path, capsys, monkeypatch):
    check_case(case, case_folder, capsys, monkeypatch)


# ---------------------------------------------------------------- faults that need more than a command line
def test_json_on_a_full_disk_fails_before_evaluating(case_folder, capsys, monkeypatch):
    with full_file_system(case_folder / "full") as full:
        case = Case("json-full-disk", _ev(lambda f: None, "--json", str(full / "r.json")), r"no space left")
        check_case(case, case_folder, capsys, monkeypatch)


def test_synthetic_dataset_on_a_full_disk_leaves_no_half_made_dataset(case_folder, capsys, monkeypatch):
    with full_file_system(case_folder / "full") as full:
        case = Case(
            "synthetic-full-disk",
            _syn("--out", str(full / "ds")),
            r"cannot write the dataset to .*ds: No space left",
            command="synthetic",
        )
        check_case(case, case_folder, capsys, monkeypatch)
        assert sorted(p.name for p in full.iterdir()) == ["filler"]
