"""The robustness sweep: every unit (corruption, severity) of the plan, predicted and scored, resumably.

Per process: worker processes make the corrupted frames (bench/robustness/frames.py) a bounded number ahead
of the model; the model predicts them R at a time on its local replicas (bench/robustness/replicas.py); a
scoring thread adds each frame to its unit's sums (the loop's sink, bench/evaluation/streaming.py); a
finished unit's sums are written whole into the output folder (bench/robustness/state.py), its lock released.

Across processes (`TF_CONFIG`, the variable tf.distribute's multi-worker setups read): the cluster's tasks
(chief first, then workers, in their listed order) each take every N-th unit, then any unit nobody holds.
The per-unit sums are combined through the shared output folder, not through collectives: units are
independent, so workers never wait for each other, a lost worker costs only its unfinished units (another
worker, or a restart, takes them over), and the numbers do not depend on how many workers there were or
who computed which unit (each unit is computed whole, frames in order, by one process). The chief writes
the report once every unit is there; the addresses in TF_CONFIG are not used (no servers are started).
"""

from __future__ import annotations

import contextlib
import dataclasses
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.evaluation.gt_cache import AUTO
from bench.robustness import plan
from bench.robustness.frames import FrameTask, frames
from bench.robustness.state import SweepFolder
from data.cityscapes import Sample
from data.corruptions import CLEAN, seed_for
from data.errors import UserError
from models.inference_modes import DEFAULT_SETTINGS, InferenceSettings

POLL_S = 2.0
"""How often a worker with nothing left to claim looks whether the other workers' units are done."""


@dataclass(frozen=True)
class SweepSettings:
    """How a sweep runs (what its numbers depend on goes into the manifest; the rest only its speed)."""

    split: str = "val"
    corruptions: tuple[str, ...] | None = None  # None: all 16
    severities: tuple[int, ...] | None = None  # None: every severity of each corruption
    limit: int | None = None  # the first N frames
    seed: int = 0
    workers: int | None = None  # corruption processes (default: the cores)
    ahead: int = 8  # frames made but not yet predicted
    save_corrupted: str | None = None
    cpu_replicas: int | None = None
    inference: InferenceSettings = DEFAULT_SETTINGS
    progress: bool = True
    gt_cache: Any = AUTO  # where decoded ground truth is kept (bench/evaluation/gt_cache.py; None: none)

    def identity(self) -> dict:
        """The inference settings the numbers depend on (in the manifest)."""
        return dataclasses.asdict(self.inference)


@dataclass(frozen=True)
class Item:
    """A frame of a unit on its way through the pool."""

    unit: plan.Unit
    sample: Sample
    task: FrameTask


@dataclass
class Place:
    """This process's place in the cluster: task `index` of `count`."""

    index: int = 0
    count: int = 1

    @property
    def is_chief(self) -> bool:
        return self.index == 0


def cluster_place() -> Place:
    """From `TF_CONFIG` (chief first, then workers in their listed order); one process without it."""
    from bench.training.strategy import read_tf_config

    config = read_tf_config()
    if not config:
        return Place()
    cluster, task = config["cluster"], config["task"]
    members = [(kind, i) for kind in ("chief", "worker") for i in range(len(cluster.get(kind, [])))]
    me = (task["type"], int(task["index"]))
    if me not in members:
        raise UserError(f"TF_CONFIG task {me[0]} {me[1]}: a robustness sweep runs on chief and worker tasks")
    return Place(members.index(me), len(members))


@dataclass(frozen=True)
class Prepared:
    """A sweep ready to run: its frames, units and opened output folder."""

    samples: list[Sample]
    units: list[plan.Unit]
    folder: SweepFolder


def prepare(model, dataset, out, settings: SweepSettings) -> Prepared:
    """Plan the sweep of `model` (a `ReplicaModel`) and open its folder (`out`, default
    `RUNS_DIR/robustness-{manifest digest}`, so the same command finds the same folder again); refuses a
    folder of another sweep."""
    from bench.common.paths import RUNS_DIR
    from data.cityscapes import list_samples
    from data.corruptions import package_version

    if settings.limit is not None and settings.limit < 1:
        raise UserError(f"--limit {settings.limit} must be at least 1")
    samples = list_samples(dataset.root, settings.split, require_images=True)[: settings.limit]
    units = plan.units(settings.corruptions, settings.severities)
    manifest = plan.manifest(
        checkpoint_sha256=model.sha256 or "",
        dataset=dataset.name,
        split=settings.split,
        frames=[s.key for s in samples],
        frames_sha256=plan.frames_digest(samples),
        unit_list=units,
        seed=settings.seed,
        package=f"imagecorruptions-imaug=={package_version()}",
        settings=settings.identity(),
    )
    out = out if out is not None else RUNS_DIR / f"robustness-{plan.digest(manifest)[:12]}"
    return Prepared(samples, units, SweepFolder(out, manifest).open())


def _task(sample: Sample, unit: plan.Unit, settings: SweepSettings) -> FrameTask:
    save = None
    if settings.save_corrupted and unit.corruption != CLEAN:
        save = str(
            Path(settings.save_corrupted)
            / unit.corruption
            / str(unit.severity)
            / sample.city
            / f"{sample.key}_leftImg8bit.png"
        )
    seed = seed_for(sample.key, unit.corruption, unit.severity, settings.seed)
    return FrameTask(str(sample.image), unit.corruption, unit.severity, seed, save)


def run_sweep(model, sweep: Prepared, settings: SweepSettings, place: Place | None = None) -> dict:
    """Compute every unit of `sweep` not yet in its folder (this process's share first); return figures:
    {"units": computed here, "frames", "seconds", "frames_per_s", "waiting_s" (the model idle, waiting for
    corrupted frames), "workers", and where the model ran}."""
    from bench.common.progress import progress_bar
    from bench.evaluation.pool import cap_workers, interrupt_note
    from bench.evaluation.streaming import StreamingEvaluator

    place = place or cluster_place()
    samples, folder = sweep.samples, sweep.folder
    todo = [u for u in plan.share(sweep.units, place.index, place.count) if not folder.is_done(u)]
    workers = cap_workers(settings.workers)[0]
    bar = progress_bar(len(todo) * len(samples), desc="robustness", unit="img", enabled=settings.progress)
    scores = StreamingEvaluator(gt_cache=settings.gt_cache)  # the loop's scoring sink, a unit at a time
    figures = {"units": 0, "frames": 0, "seconds": 0.0, "waiting_s": 0.0}

    def note() -> str:
        saved = sum(folder.is_done(u) for u in sweep.units)
        return (
            f"interrupted: {saved} of {len(sweep.units)} units saved in {folder.out}; run the same command "
            f"again to continue from them"
        )

    try:
        with interrupt_note(note):
            while todo:
                began = time.perf_counter()
                done, count, waited = _one_pass(
                    todo, samples, folder, model, scores, settings, workers, bar, place
                )
                figures["units"] += done
                figures["frames"] += count
                figures["waiting_s"] += waited
                figures["seconds"] += time.perf_counter() - began
                todo = [u for u in todo if not folder.is_done(u)]
                if todo and not done:
                    time.sleep(POLL_S)  # the rest is being computed by other workers
    except KeyboardInterrupt:
        raise KeyboardInterrupt(note()) from None
    finally:
        scores.close()
        bar.close()
    seconds = figures["seconds"]
    figures["frames_per_s"] = round(figures["frames"] / seconds, 3) if figures["frames"] else None
    figures["waiting_s"] = round(figures["waiting_s"], 3)
    return {**figures, "seconds": round(seconds, 3), "workers": workers, **model.describe()}


def _one_pass(todo, samples, folder, model, scores, settings, workers, bar, place) -> tuple[int, int, float]:
    """Claim and compute the units of `todo` that nobody holds; (units finished, frames predicted, seconds
    the model waited for corrupted frames after the first)."""
    claims: dict[plan.Unit, contextlib.ExitStack] = {}

    def items():
        for unit in todo:
            stack = contextlib.ExitStack()
            if not stack.enter_context(folder.claim(unit)):
                stack.close()
                continue
            claims[unit] = stack
            for sample in samples:
                yield Item(unit, sample, _task(sample, unit, settings))

    current: plan.Unit | None = None
    unit_began = 0.0
    finished = predicted = 0
    waited = 0.0

    def finish() -> None:
        nonlocal finished
        totals = scores.totals()
        seconds = time.perf_counter() - unit_began
        folder.save(current, totals, {"seconds": round(seconds, 3), "worker": place.index})
        claims.pop(current).close()
        finished += 1

    def predict(batch: list) -> None:
        nonlocal current, unit_began, predicted
        results = model.predict([frame for _, frame in batch])
        for (item, _), (train_ids, logits) in zip(batch, results, strict=True):
            if item.unit != current:
                if current is not None:
                    finish()
                current, unit_began = item.unit, time.perf_counter()
                scores.reset()
            scores.process(item.sample, train_ids, logits)
            predicted += 1
            bar.update(1)

    stream = frames(items(), workers, settings.ahead)
    try:
        batch: list = []
        while True:
            asked = time.perf_counter()
            got = next(stream, None)
            if predicted or batch:  # not the first frame, which waits for the workers to start
                waited += time.perf_counter() - asked
            if got is None:
                break
            item, frame = got
            if batch and frame.shape != batch[0][1].shape:
                predict(batch)
                batch = []
            batch.append((item, frame))
            if len(batch) == model.replicas:
                predict(batch)
                batch = []
        if batch:
            predict(batch)
        if current is not None:
            finish()
    finally:
        stream.close()  # ends the corruption workers now, not when garbage is collected
        for stack in claims.values():
            stack.close()
    return finished, predicted, waited


def load_results(sweep: Prepared) -> dict:
    """{unit: EvaluationResult} of a finished sweep, from its unit files."""
    return {unit: sweep.folder.load(unit)[0].result() for unit in sweep.units}
