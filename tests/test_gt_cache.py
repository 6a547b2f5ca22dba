"""The ground-truth cache: warm evaluations read no GT PNG and give the uncached numbers bit for bit; a
changed, replaced or racily rewritten GT file is read again; a corrupt entry is rebuilt, never used.
(That the uncached numbers are cityscapesScripts' own, cold and warm, is tests/test_evaluate.py.)"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from bench.cli import main
from bench.evaluation import evaluate, gt_cache
from bench.evaluation.gt_cache import ENV_VAR, GTCache, default_gt_cache
from bench.evaluation.runs import GroundTruthRuns
from bench.evaluation.scoring import score_image
from data.errors import UserError
from tests.cityscapes_files import lid, noisy_prediction, random_scene, write_gt, write_pred


@pytest.fixture()
def frames(tmp_path):
    """Three frames of random scenes with instances and their noisy predictions as PNGs."""
    rng = np.random.default_rng(21)
    for i in range(3):
        key = f"ulm_000000_{i:06d}"
        labels, instances = random_scene(rng, n_instances=30)
        write_gt(tmp_path / "gt", key, labels, instances)
        write_pred(tmp_path / "pred", key, noisy_prediction(rng, labels))
    return tmp_path / "gt", tmp_path / "pred", GTCache(tmp_path / "cache")


def same(a, b) -> bool:
    return repr(a.to_cityscapes_dict()) == repr(b.to_cityscapes_dict()) and np.array_equal(
        a.confusion, b.confusion
    )


def no_gt_decoding(monkeypatch) -> None:
    def refuse(*_args, **_kwargs):
        raise AssertionError("a warm evaluation decoded a ground-truth PNG")

    monkeypatch.setattr(gt_cache, "decode_png", refuse)


def labels_file(gt: Path, index: int = 0) -> Path:
    return sorted(gt.rglob("*_gtFine_labelIds.png"))[index]


def rewrite_uncompressed(path: Path, array: np.ndarray) -> None:
    """Write `array` as an uncompressed PNG: its size depends only on its shape, so two contents of the
    same shape give files of the same size."""
    Image.fromarray(array).save(path, compress_level=0)


def test_warm_evaluation_reads_no_ground_truth_png_and_equals_the_uncached_one(frames, monkeypatch):
    gt, pred, cache = frames
    uncached = evaluate(gt, "val", pred, workers=1, gt_cache=None)
    cold = evaluate(gt, "val", pred, workers=1, gt_cache=cache)
    assert len(cache.entries()) == 3
    no_gt_decoding(monkeypatch)
    warm = evaluate(gt, "val", pred, workers=1, gt_cache=cache)
    assert same(cold, uncached) and same(warm, uncached)
    with pytest.raises(AssertionError, match="decoded a ground-truth PNG"):
        evaluate(gt, "val", pred, workers=1, gt_cache=GTCache(cache.root.with_name("empty")))


def test_ground_truth_runs_score_like_the_three_arrays_on_any_shape():
    rng = np.random.default_rng(3)
    labels, instances = random_scene(rng, n_instances=40)
    shapes = [labels, labels[:1], labels[:, :1], labels[:1, :1], np.full_like(labels, lid("road"))]
    for gt in shapes:
        inst = instances[: gt.shape[0], : gt.shape[1]] if gt is not shapes[-1] else gt.astype(np.uint16)
        runs = GroundTruthRuns.from_arrays(gt, inst)
        restored = runs.to_arrays()
        assert np.array_equal(restored[0], gt) and np.array_equal(restored[1], inst)
        for pred in (noisy_prediction(rng, gt, 0.5), gt, np.zeros_like(gt)):
            want, got = score_image(gt, inst, pred), runs.score(pred)
            for field in ("confusion", "instance_ids", "instance_sizes", "instance_hits", "category_hits"):
                assert np.array_equal(getattr(got, field), getattr(want, field)), field


def test_a_value_map_applied_run_by_run_equals_mapping_the_image_first():
    from data.labels import TRAIN_TO_LABEL

    rng = np.random.default_rng(8)
    labels, instances = random_scene(rng, n_instances=40)
    runs = GroundTruthRuns.from_arrays(labels, instances)
    train = rng.integers(0, 19, labels.shape).astype(np.uint8)
    train[rng.random(labels.shape) < 0.05] = 255  # void
    train[:3, :5] = 200  # no train ID: to_label_ids maps it as it maps any value
    want = score_image(labels, instances, TRAIN_TO_LABEL[train])
    got = runs.score(train, value_map=TRAIN_TO_LABEL)
    for field in ("confusion", "instance_ids", "instance_sizes", "instance_hits", "category_hits"):
        assert np.array_equal(getattr(got, field), getattr(want, field)), field


def test_a_changed_ground_truth_file_is_read_again(frames):
    gt, pred, cache = frames
    before = evaluate(gt, "val", pred, workers=1, gt_cache=cache)
    path = labels_file(gt)
    labels = np.array(Image.open(path))
    labels[labels == lid("road")] = lid("sidewalk")
    Image.fromarray(labels).save(path)
    after = evaluate(gt, "val", pred, workers=1, gt_cache=cache)
    assert same(after, evaluate(gt, "val", pred, workers=1, gt_cache=None))
    assert not same(after, before)


def test_a_replaced_file_of_the_same_size_and_times_is_read_again(frames):
    """`cp -p` of another version, a restored backup: size and mtime alike, a new inode and change time."""
    gt, pred, cache = frames
    path = labels_file(gt)
    labels = np.array(Image.open(path))
    rewrite_uncompressed(path, labels)
    evaluate(gt, "val", pred, workers=1, gt_cache=cache)
    old = path.stat()
    labels[labels == lid("road")] = lid("sidewalk")
    rewrite_uncompressed(path.with_name("new.png"), labels)
    os.replace(path.with_name("new.png"), path)
    os.utime(path, ns=(old.st_atime_ns, old.st_mtime_ns))
    assert path.stat().st_size == old.st_size and path.stat().st_mtime_ns == old.st_mtime_ns
    after = evaluate(gt, "val", pred, workers=1, gt_cache=cache)
    assert same(after, evaluate(gt, "val", pred, workers=1, gt_cache=None))


def test_a_rewrite_within_the_same_clock_tick_is_caught_by_the_content_hash(frames, monkeypatch):
    """A file rewritten in place within one timestamp tick keeps all its stat fields; an entry written that
    close to the file's last change is checked against the file's bytes. (Here the tick is faked by leaving
    the change time, inode and device out of the signature and putting the mtime back.)"""
    gt, pred, cache = frames
    real_signature = gt_cache._signature

    def coarse(labels, instances):
        values = real_signature(labels, instances)
        return None if values is None else tuple(v if i % 5 < 2 else 0 for i, v in enumerate(values))

    monkeypatch.setattr(gt_cache, "_signature", coarse)
    path = labels_file(gt)
    labels = np.array(Image.open(path))
    rewrite_uncompressed(path, labels)
    before = evaluate(gt, "val", pred, workers=1, gt_cache=cache)
    old = path.stat()
    labels[labels == lid("road")] = lid("sidewalk")
    rewrite_uncompressed(path, labels)  # in place: same inode
    os.utime(path, ns=(old.st_atime_ns, old.st_mtime_ns))
    fresh = evaluate(gt, "val", pred, workers=1, gt_cache=None)
    assert not same(fresh, before)
    monkeypatch.setattr(gt_cache, "RACY_SECONDS", -1e9)  # without the content check, the stale entry is used
    assert same(evaluate(gt, "val", pred, workers=1, gt_cache=cache), before)
    monkeypatch.setattr(gt_cache, "RACY_SECONDS", 2.0)
    assert same(evaluate(gt, "val", pred, workers=1, gt_cache=cache), fresh)


@pytest.mark.parametrize("damage", ["truncated", "flipped byte", "empty", "another frame's entry", "garbage"])
def test_a_corrupt_or_foreign_entry_is_rebuilt_and_never_used(frames, damage):
    gt, pred, cache = frames
    uncached = evaluate(gt, "val", pred, workers=1, gt_cache=None)
    evaluate(gt, "val", pred, workers=1, gt_cache=cache)
    entries = cache.entries()
    first, other = entries[0], entries[1]
    data = first.read_bytes()
    broken = {
        "truncated": data[: len(data) // 2],
        "flipped byte": data[:-20] + bytes([data[-20] ^ 0x01]) + data[-19:],  # a label id of the last runs
        "empty": b"",
        "another frame's entry": other.read_bytes(),
        "garbage": os.urandom(len(data)),
    }[damage]
    first.write_bytes(broken)
    assert same(evaluate(gt, "val", pred, workers=1, gt_cache=cache), uncached)
    assert first.read_bytes() != broken  # rebuilt in place
    assert same(evaluate(gt, "val", pred, workers=1, gt_cache=cache), uncached)


def test_ground_truth_that_fails_the_checks_is_never_stored(tmp_path):
    labels = np.full((16, 32), lid("road"), np.uint8)
    labels[0, 0] = 200  # no label id
    write_gt(tmp_path / "gt", "ulm_000000_000019", labels)
    write_pred(tmp_path / "pred", "ulm_000000_000019", np.full((16, 32), lid("road"), np.uint8))
    cache = GTCache(tmp_path / "cache")
    for _ in range(2):
        with pytest.raises(UserError, match="has value 200, which is no label ID"):
            evaluate(tmp_path / "gt", "val", tmp_path / "pred", workers=1, gt_cache=cache)
    assert cache.entries() == []


def test_the_cache_folder_follows_the_environment(tmp_path, monkeypatch):
    home = tmp_path / "home"
    monkeypatch.setenv("HOME", str(home))
    assert default_gt_cache({}) == GTCache(home / ".cache" / "cityscapes-bench" / "gt")
    assert (
        default_gt_cache({"XDG_CACHE_HOME": "relative"}).root == home / ".cache" / "cityscapes-bench" / "gt"
    )
    assert default_gt_cache({"XDG_CACHE_HOME": "/x"}).root == Path("/x/cityscapes-bench/gt")
    assert default_gt_cache({ENV_VAR: str(tmp_path / "c"), "XDG_CACHE_HOME": "/x"}).root == tmp_path / "c"
    assert default_gt_cache({ENV_VAR: "off"}) is None and default_gt_cache({ENV_VAR: "OFF "}) is None


def test_clear_deletes_the_entries_and_nothing_else(frames):
    gt, pred, cache = frames
    evaluate(gt, "val", pred, workers=1, gt_cache=cache)
    (cache.root / "notes.txt").write_text("mine")
    (cache.root / f".x{gt_cache.SUFFIX}.abc.tmp").write_bytes(b"half")  # left by a killed writer
    assert cache.clear()[0] == 4
    assert [p.name for p in cache.root.iterdir()] == ["notes.txt"]
    assert GTCache(cache.root / "missing").clear() == (0, 0)


def test_evaluate_cli_options_and_the_cache_command(frames, capsys, monkeypatch):
    gt, pred, cache = frames
    base = ["evaluate", "--gt", str(gt), "--pred", str(pred), "--workers", "1"]
    assert main([*base, "--gt-cache", str(cache.root)]) == 0
    assert len(cache.entries()) == 3
    assert main(["cache", "info", "--gt-cache", str(cache.root)]) == 0
    assert f"{cache.root}: 3 entries" in capsys.readouterr().out
    assert main(["cache", "clear", "--gt-cache", str(cache.root)]) == 0
    assert "removed 3 entries" in capsys.readouterr().out and cache.entries() == []
    other = GTCache(cache.root.with_name("env-cache"))
    monkeypatch.setenv(ENV_VAR, str(other.root))
    assert main([*base, "--no-gt-cache"]) == 0
    assert other.entries() == []
    assert main(base) == 0
    assert len(other.entries()) == 3
    blocker = cache.root.with_name("a-file")
    blocker.write_text("")
    assert main([*base, "--gt-cache", str(blocker)]) == 2
    assert "--gt-cache folder" in capsys.readouterr().err


def test_label_readers_get_the_labels_from_a_valid_entry_and_nothing_otherwise(frames, monkeypatch):
    gt, pred, cache = frames
    path = labels_file(gt)
    instances = path.with_name(path.name.replace("labelIds", "instanceIds"))
    assert cache.labels(path, instances) is None  # no entry: the caller decodes
    evaluate(gt, "val", pred, workers=1, gt_cache=cache)
    no_gt_decoding(monkeypatch)
    assert np.array_equal(cache.labels(path, instances), np.array(Image.open(path)))
