"""Calibration and Boundary IoU as sinks of the prediction loop, beside the streaming IoU evaluator.

The sink contract (detectron2's evaluator shape): `reset()`, `process(sample, train_ids, logits)` once per
frame in split order (train IDs (H, W) uint8 at the GT's resolution, logits (H, W, C) float32 in train-ID
order or None for arg-max-only models), `evaluate()` for the split's result. Each sink reads its frame's
ground truth (`sample.label_ids`) and does its numpy work in a thread of its own while the model computes
the next frame (numpy releases the GIL); results are added in `process` order, and a frame's error
surfaces at a later call. A sink keeps a reference to the arrays it was given until it has used them.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from typing import Any

import numpy as np

from bench.evaluation import boundary as boundary_maths
from bench.evaluation import calibration as calibration_maths
from bench.evaluation import calibration_fit
from bench.evaluation.png import read_png
from bench.evaluation.threaded import ThreadedSink
from data.cityscapes import Sample
from data.errors import UserError
from data.labels import to_train_ids
from data.layouts import Frame


def read_gt_train_ids(sample: Sample) -> np.ndarray:
    """A frame's ground truth as train IDs (255 void): from the GT cache's entry when the scoring filled
    it already (bench/evaluation/gt_cache.py), else from its *_gtFine_labelIds.png."""
    from bench.evaluation.gt_cache import default_gt_cache

    if isinstance(sample, Frame):  # ACDC, BDD100K, ...: labels in their own encoding, no cache
        from bench.evaluation.train_ids import read_ground_truth

        return to_train_ids(read_ground_truth(sample.labels, sample.encoding).labels)
    cache = default_gt_cache()
    labels = cache.labels(sample.label_ids, sample.instance_ids) if cache else None
    return to_train_ids(read_png(sample.label_ids, "ground truth") if labels is None else labels)


def _labels_path(sample):
    return sample.labels if isinstance(sample, Frame) else sample.label_ids


def _check_shape(sample: Sample, gt: np.ndarray, train_ids: np.ndarray) -> None:
    if train_ids.shape != gt.shape:
        raise UserError(
            f"prediction of {sample.key} is {train_ids.shape[1]}x{train_ids.shape[0]} but its ground truth "
            f"{_labels_path(sample)} is {gt.shape[1]}x{gt.shape[0]}: predict at full resolution"
        )


def _boundary_frame(sample: Sample, train_ids: np.ndarray, ratio: float) -> boundary_maths.BoundaryCounts:
    gt = read_gt_train_ids(sample)
    _check_shape(sample, gt, train_ids)
    return boundary_maths.boundary_counts(gt, train_ids, ratio=ratio)


class BoundarySink(ThreadedSink):
    """Boundary IoU per class over the frames processed since `reset` (needs only the label maps)."""

    needs_logits = False

    def __init__(self, *, ratio: float = boundary_maths.DILATION_RATIO, max_pending: int = 4) -> None:
        boundary_maths.band_width((1, 1), ratio)  # a bad ratio fails now, not at the first frame
        super().__init__(max_pending=max_pending, name="boundary")
        self.ratio = ratio
        self.reset()

    def reset(self) -> None:
        self._clear()
        self._counts = boundary_maths.empty_counts()
        self._frames = 0

    def process(self, sample: Sample, train_ids: np.ndarray, logits: np.ndarray | None = None) -> None:
        self._submit(_boundary_frame, sample, train_ids, self.ratio)

    def _add(self, value: boundary_maths.BoundaryCounts) -> None:
        self._counts += value
        self._frames += 1

    def evaluate(self) -> boundary_maths.BoundaryResult:
        self._drain()
        return boundary_maths.BoundaryResult(self._counts, self.ratio, self._frames, self._busy)


def _calibration_frame(sample, train_ids, logits, betas) -> calibration_maths.FrameSums:
    gt = read_gt_train_ids(sample)
    _check_shape(sample, gt, train_ids)
    return calibration_maths.frame_sums(logits, gt, train_ids, betas=betas)


class CalibrationSink(ThreadedSink):
    """ECE, MCE, NLL, Brier and the temperature over the frames processed since `reset`.

    `temperature=None` fits T on these frames (optimistic: scored on the split it was fitted on);
    a number applies that T (fitted on another split) and scores ECE and NLL after it exactly. A frame
    without logits (arg-max-only models) makes the whole result unavailable: no calibration columns.
    Two frames' logits at most wait for the thread (`max_pending`): 150 MB each at 1024x2048.
    """

    needs_logits = True

    def __init__(self, *, temperature: float | None = None, max_pending: int = 2) -> None:
        if temperature is not None:
            temperature = calibration_maths.TEMPERATURE.check(temperature, "--temperature")
        super().__init__(max_pending=max_pending, name="calibration")
        self.temperature = temperature
        self.betas = calibration_maths.GRID if temperature is None else (Fraction(1.0 / temperature),)
        self.reset()

    def reset(self) -> None:
        self._clear()
        self.totals = calibration_maths.CalibrationTotals(self.betas)

    def process(self, sample: Sample, train_ids: np.ndarray, logits: np.ndarray | None) -> None:
        if logits is None:
            self._submit(lambda: None)
        else:
            self._submit(_calibration_frame, sample, train_ids, logits, self.betas)

    def _add(self, value: calibration_maths.FrameSums | None) -> None:
        self.totals.add(value)

    def evaluate(self) -> calibration_fit.CalibrationResult:
        self._drain()
        result = calibration_fit.fit(self.totals, given=self.temperature)
        result.seconds = self._busy
        return result


@dataclass(frozen=True)
class QualitySettings:
    """Which quality sinks a scored run adds beside its IoU evaluator: Boundary IoU (band ratio; None: off)
    and calibration (`temperature`: apply one fitted on another split instead of fitting on this one)."""

    boundary_ratio: float | None = boundary_maths.DILATION_RATIO
    calibration: bool = True
    temperature: float | None = None

    def sinks(self) -> list[ThreadedSink]:
        """Fresh sinks (each with its worker thread: use them as context managers, or `close()` them)."""
        sinks: list[ThreadedSink] = []
        if self.boundary_ratio is not None:
            sinks.append(BoundarySink(ratio=self.boundary_ratio))
        if self.calibration:
            sinks.append(CalibrationSink(temperature=self.temperature))
        return sinks


DEFAULT_QUALITY = QualitySettings()
NO_QUALITY = QualitySettings(boundary_ratio=None, calibration=False)


def with_quality(result, sink_results) -> Any:
    """The evaluator's `EvaluationResult` carrying the quality sinks' results (`boundary`, `calibration`)."""
    import dataclasses

    extra: dict[str, Any] = {}
    for value in sink_results:
        if isinstance(value, boundary_maths.BoundaryResult):
            extra["boundary"] = value
        elif isinstance(value, calibration_fit.CalibrationResult):
            extra["calibration"] = value
    return dataclasses.replace(result, **extra)


def add_quality_arguments(parser) -> None:
    """The flags of the quality sinks, for the commands that score while they predict (run, predict)."""
    parser.add_argument("--no-boundary", action="store_true", help="do not score Boundary IoU")
    parser.add_argument(
        "--boundary-ratio",
        type=boundary_maths.RATIO,
        default=boundary_maths.DILATION_RATIO,
        metavar="RATIO",
        help=f"Boundary IoU band width as a fraction of the image diagonal "
        f"(default {boundary_maths.DILATION_RATIO:g}, the authors' for Cityscapes; {boundary_maths.RATIO})",
    )
    parser.add_argument(
        "--no-calibration",
        action="store_true",
        help="do not score calibration (ECE, NLL, Brier, temperature)",
    )
    parser.add_argument(
        "--temperature",
        type=calibration_maths.TEMPERATURE,
        default=None,
        metavar="T",
        help="apply this temperature (fitted on another split, e.g. the `temperature` of a run on train) "
        "instead of fitting one on the scored split, which is optimistic "
        f"({calibration_maths.TEMPERATURE})",
    )


def quality_settings(args) -> QualitySettings:
    """The `QualitySettings` the flags of `add_quality_arguments` ask for (checked now, before any work)."""
    settings = QualitySettings(
        boundary_ratio=None if args.no_boundary else args.boundary_ratio,
        calibration=not args.no_calibration,
        temperature=args.temperature,
    )
    for sink in settings.sinks():  # a bad ratio or temperature fails here, not after the predictions
        sink.close()
    return settings
