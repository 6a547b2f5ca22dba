"""report.html and results/index.html: written by `bench evaluate --out` and `bench run`, rebuilt by
`bench report`, opened in headless Chromium (no console error, no request leaving the folder, numbers equal
to the run JSON, every image loaded, a screenshot), and fast enough for 500 frames."""

from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path

import numpy as np
import pytest

from bench.cli import main
from bench.report.index_page import write_index
from tests.cityscapes_files import noisy_prediction, random_scene, write_frame, write_pred
from tests.headless_chromium import chromium_or_skip, open_page

SCREENSHOTS = os.environ.get("REPORT_SCREENSHOTS")  # also keep the screenshots here (to look at them)


def json_value(data: dict, key: str):
    """The run JSON's value that a page cell's data-key names."""
    head, _, rest = key.partition(".")
    if head in ("frame", "city"):
        name, _, field = rest.rpartition(".")
        listing = data["frames" if head == "frame" else "cities"]
        return next(e for e in listing if e[head if head == "city" else "frame"] == name)[field]
    value = data
    for part in key.split("."):
        value = value[part]
    return value


@pytest.fixture(scope="module")
def evaluated(tmp_path_factory):
    """`bench evaluate --out` on 5 random 64x128 frames of two cities (images included)."""
    base = tmp_path_factory.mktemp("report")
    rng = np.random.default_rng(4)
    for i in range(5):
        labels, instances = random_scene(rng, n_instances=12)
        key = f"{['bochum', 'ulm'][i % 2]}_{i:06d}_000019"
        image = rng.integers(0, 255, (*labels.shape, 3), dtype=np.uint8)
        write_frame(base / "gt", key, labels, image=image, instances=instances)
        write_pred(base / "pred", key, noisy_prediction(rng, labels, error_rate=0.1 + 0.15 * i))
    out = base / "results" / "runs" / "eval"
    args = ["evaluate", "--gt", str(base / "gt"), "--pred", str(base / "pred"), "--out", str(out)]
    assert main([*args, "--workers", "1", "--no-gt-cache", "--worst", "2"]) == 0
    return out


def check_in_browser(run_dir: Path, tmp_path: Path, name: str) -> dict:
    shot = tmp_path / f"{name}.png"
    page = open_page(run_dir / "report.html", shot)
    assert page["errors"] == []
    inside = run_dir.resolve().as_uri() + "/"
    assert page["requests"] and all(url.startswith(inside) for url in page["requests"]), page["requests"]
    assert page["failed"] == []
    assert page["images"] and all(done and width > 0 for _, done, width in page["images"]), page["images"]
    data = json.loads((run_dir / "result.json").read_text())
    row = json.loads((run_dir / "row.json").read_text()) if (run_dir / "row.json").is_file() else {}
    checked = 0
    for key, value, text in page["cells"]:
        want = row.get(key[4:]) if key.startswith("row.") else json_value(data, key)
        if want is None:
            assert value == "" and text == "–", key
            continue
        assert float(value) == pytest.approx(float(want), rel=1e-12), key
        if not key.startswith("row."):
            assert text == f"{100 * float(want):.2f}", key
        checked += 1
    assert checked > 40
    with open(shot, "rb") as f:
        assert f.read(8) == b"\x89PNG\r\n\x1a\n"
    if SCREENSHOTS:
        Path(SCREENSHOTS).mkdir(parents=True, exist_ok=True)
        shutil.copy(shot, Path(SCREENSHOTS) / shot.name)
    return page


def test_evaluate_out_writes_frames_and_a_report_that_chromium_shows_exactly(evaluated, tmp_path, capsys):
    chromium_or_skip()
    assert {"result.json", "frames.csv", "report.html", "confusion.png"} <= {
        p.name for p in evaluated.iterdir()
    }
    page = check_in_browser(evaluated, tmp_path, "evaluate-report")
    links = [href for href in page["links"] if href.startswith("report/")]
    assert len(links) == 5 * 4 and all((evaluated / href).is_file() for href in links)  # full-size pictures
    keys = {k for k, _, _ in page["cells"]}
    assert {"measures.fwIoU", "city.ulm.miou", "measures.perClass.road.dice"} <= keys


def test_evaluate_prints_the_worst_frames(evaluated, capsys):
    frames = json.loads((evaluated / "result.json").read_text())["frames"]
    worst = min(frames, key=lambda f: f["miou"])
    lines = (evaluated / "frames.csv").read_text().splitlines()
    assert len(lines) == 6 and worst["frame"] in "".join(lines)


def test_bench_report_rebuilds_the_same_page_and_the_index_sorts_by_miou(evaluated, tmp_path):
    before = (evaluated / "report.html").read_bytes()
    (evaluated / "report.html").unlink()
    other = evaluated.parent / "other"
    shutil.copytree(evaluated, other)
    data = json.loads((other / "result.json").read_text())
    data["averageScoreClasses"] = 0.01
    (other / "result.json").write_text(json.dumps(data))
    assert main(["report", str(evaluated), str(other)]) == 0
    assert (evaluated / "report.html").read_bytes() == before
    index = evaluated.parent.parent / "index.html"
    assert index.is_file()
    chromium_or_skip()
    order = "JSON.stringify(Array.from(document.querySelectorAll('tbody tr')).map(r => r.cells[6].dataset.v))"
    click = "document.querySelector('th[data-sort=mIoU]').click();" + order
    page = open_page(index, tmp_path / "index.png", script=click)
    assert page["errors"] == [] and all(u.startswith(index.parent.as_uri()) for u in page["requests"])
    values = [float(v) for v in page["script"]]
    assert values == sorted(values) and values[0] == 0.01


def test_bench_report_names_a_folder_without_result_json(tmp_path, capsys):
    assert main(["report", str(tmp_path)]) == 2
    assert "result.json" in capsys.readouterr().err


def test_a_report_of_500_frames_lists_the_worst_and_every_frame(tmp_path, capsys):
    """What `bench perf report` times (its 2 s target is a benchmark's ratio, not this test's)."""
    from bench.perf.reporting.report import write_made_up_run

    write_made_up_run(tmp_path, 500, size=(256, 512))
    page = (tmp_path / "report.html").read_text()
    assert len((tmp_path / "frames.csv").read_text().splitlines()) == 501
    thumbnails = set(re.findall(r'src="(report/[^"]+_thumb\.(?:png|jpg))"', page))
    assert len(thumbnails) == 6 * 4  # image | GT | prediction | error map of the 6 worst frames
    assert all((tmp_path / src).is_file() for src in thumbnails)
    assert main(["perf", "report", "--frames", "3"]) == 0
    assert "report of 3 frames" in capsys.readouterr().out


def test_index_lists_runs_newest_first(tmp_path):
    runs = tmp_path / "runs"
    for name, date, miou in (("a", "2026-01-01", 0.5), ("b", "2026-02-01", 0.4)):
        (runs / name).mkdir(parents=True)
        (runs / name / "result.json").write_text(json.dumps({"averageScoreClasses": miou, "nImages": 1}))
        (runs / name / "row.json").write_text(json.dumps({"date": date, "model": name}))
    text = write_index(runs).read_text()
    assert text.index(">b<") < text.index(">a<") and "50.00" in text and "40.00" in text


def test_frame_pictures_use_the_cityscapes_palette_and_mark_errors(tmp_path):
    from PIL import Image

    from bench.report.frame_images import write_frame_images
    from data.labels import TRAIN_TO_COLOR
    from tests.cityscapes_files import lid

    gt = np.full((4, 8), lid("road"), dtype=np.uint8)
    gt[:, 6:] = lid("unlabeled")  # ignored
    pred = np.zeros((4, 8), dtype=np.uint8)  # road everywhere (train id 0) ...
    pred[0, 0] = 2  # ... but one building pixel
    pred[1, 1] = 255  # and one void prediction
    files = write_frame_images(tmp_path, "k", None, gt, pred)
    assert set(files) == {"gt", "pred", "error"}
    rgb = {
        kind: np.asarray(Image.open(tmp_path.parent / files[kind]["full"]).convert("RGB")) for kind in files
    }
    assert tuple(rgb["gt"][0, 7]) == (0, 0, 0) and tuple(rgb["gt"][0, 0]) == tuple(TRAIN_TO_COLOR[0])
    err = rgb["error"]
    assert tuple(err[0, 0]) == tuple(TRAIN_TO_COLOR[2]) and tuple(err[1, 1]) == (0, 255, 255)
    assert tuple(err[2, 2]) == (235, 235, 235) and tuple(err[0, 7]) == (0, 0, 0)


def test_evaluate_out_refuses_a_folder_that_holds_a_run(evaluated, capsys):
    args = ["evaluate", "--gt", str(evaluated), "--pred", str(evaluated), "--out", str(evaluated)]
    assert main(args) == 2
    assert "already holds a run" in capsys.readouterr().err
