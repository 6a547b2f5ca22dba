"""The training folder: its lock and the checks made before a run writes into it (which checkpoint a run
resumes from, the best val mIoU reached so far)."""

from __future__ import annotations

import contextlib
import json
import math
import shutil
from collections.abc import Iterator
from pathlib import Path

from bench.common.atomic import check_writable, exclusive
from bench.sources import keras_checkpoint as ckpt
from bench.training.cluster import read_tf_config
from bench.training.strategy import chief_of
from data.errors import UserError

BEST_CHECKPOINT = "best.keras"


def is_chief() -> bool:
    """Whether this process is the one that writes (the only one without `TF_CONFIG`, else chief/worker 0)."""
    try:
        return chief_of(read_tf_config())
    except UserError:
        return True  # a malformed TF_CONFIG is reported when the strategy is made


@contextlib.contextmanager
def training_folder(out: Path) -> Iterator[None]:
    """Hold the training folder's lock (`OUT/.train.lock`, the holder's pid inside) while the block runs.

    Two runs into one folder would interleave their checkpoints and log rows; the second one is refused at
    once, naming the first. `--out` is checked to be writable before anything else, and a folder this call
    created is removed again when the run fails before writing anything into it. Workers other than the
    chief write nothing into `--out`: no check, no lock.
    """
    if not is_chief():
        yield
        return
    check_writable(out, "--out", folder=True)
    created = not out.exists()
    out.mkdir(parents=True, exist_ok=True)
    with exclusive(out / "train", f"training folder {out}"):  # refused: nothing here is ours
        try:
            yield
        except BaseException:
            if created and all(p.name == ".train.lock" for p in out.iterdir()):
                shutil.rmtree(out, ignore_errors=True)
            raise


def resume_point(
    out: Path, model: str, preset: str | None, options: dict | None, resume: bool
) -> tuple[Path | None, dict]:
    """The checkpoint to continue from (None for a fresh run) and its metadata; refuses to clobber."""
    existing = ckpt.list_checkpoints(out)
    if not resume:
        if existing:
            raise UserError(
                f"{out} already holds checkpoints ({existing[-1].name}): pass --resume to "
                f"continue that run or choose another --out"
            )
        return None, {}
    if not existing:
        raise UserError(f"--resume: {out} holds no ckpt-*.keras checkpoint; drop --resume to start a new run")
    meta = ckpt.read_metadata(existing[-1])
    recorded = (meta.get("model"), meta.get("preset"), meta.get("options") or {})
    # Compare as JSON sees them: tuples come back from the checkpoint as lists.
    if (
        model != recorded[0]
        or (preset is not None and preset != recorded[1])
        or (options and json.loads(json.dumps(options)) != recorded[2])
    ):
        raise UserError(
            f"--resume: {existing[-1]} was trained as model={recorded[0]} preset={recorded[1]} "
            f"options={recorded[2]}; resume with those or choose another --out"
        )
    return existing[-1], meta


def best_so_far(out: Path, start: int) -> float:
    """Val mIoU of `OUT/best.keras` when it was reached at or before the resumed step (else -inf)."""
    path = out / BEST_CHECKPOINT
    if not path.is_file():
        return -math.inf
    meta = ckpt.read_metadata(path)
    if int(meta.get("val_step", start + 1)) > start or meta.get("val_miou") is None:
        return -math.inf
    return float(meta["val_miou"])
