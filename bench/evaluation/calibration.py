"""Calibration of a model's confidences from its logits: ECE, MCE, NLL, Brier and a fitted temperature.

Exact, streaming and mergeable: every valid pixel of every frame counts (void ground truth left out), each
frame is reduced to a few hundred sums (`FrameSums`, float64 and int64 from float32 softmax), and the split's
totals are kept as exact rationals (`fractions.Fraction`), so the sums of two halves of a split add up to
the sums of the whole, bit for bit, in any order.

- ECE (top-1, 15 equal-width bins as torchmetrics bins them: bin k holds confidences in [k/15, (k+1)/15),
  and a confidence of exactly 1.0, frequent in float32, has a bin of its own):
  sum over bins of |correct_b - confidence_b| / N. MCE: the largest |accuracy_b - confidence_b| of a
  non-empty bin. NLL: mean of -log p(gt). Brier: mean of sum_k (p_k - [k = gt])^2 (the multi-class Brier
  score, in [0, 2]). The top-1 class is the loop's arg-max (`train_ids`), its confidence its probability.
- Temperature: T minimising the NLL of softmax(z / T) on the split. A frame cannot be visited twice (nor
  its logits kept), so the exact NLL(beta), beta = 1/T, is summed at a fixed grid of betas (`GRID`), with
  the ECE bins at each; `calibration_fit` picks the grid point of least NLL (the reported temperature, ECE
  and NLL after it exact there) and, NLL being convex in beta, brackets the continuous minimiser and
  certifies how much lower than the grid's the NLL can get between grid points.
  One exp per pixel and class gives F = exp((z - max z) / 4); every E^beta of the grid, T = 1 included, is
  a product of powers of F (within about 4 ulp of exp, 3e-7 relative), so a grid point costs no exp.
- Fitting and scoring T on the same split is optimistic (the temperature has seen the labels it is scored
  on): a temperature fitted on another split is scored exactly with `betas=(1/T,)`.

No TensorFlow here; numpy releases the GIL in these loops, so a sink thread runs beside the model.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from fractions import Fraction

import numpy as np

from bench.common.ranges import Range
from data.errors import UserError
from data.labels import IGNORE_ID, NUM_CLASSES

N_BINS = 15
_N_SLOTS = N_BINS + 1  # the last slot holds confidences of exactly 1.0 (torchmetrics' extra bin)

GRID: tuple[Fraction, ...] = tuple(Fraction(k, 4) for k in (1, 2, 3, 4, 5, 6, 8))
"""Inverse temperatures beta = 1/T of the fit: T = 4, 2, 1.33, 1, 0.8, 0.67, 0.5. Multiples of 1/4, so one
exp gives F = exp((z - max z) / 4) and every E^beta, E^1 included, is a product of powers of F; each point
costs a product, a sum over classes, a log and the ECE bins per pixel (see `bench perf metrics`)."""

TEMPERATURE = Range(float, 0.01, 100)
"""Temperatures the sums can take: beyond, every confidence is 1/19 or 1 to float32 precision (and 1/T
overflows for T near 1e-308); no fitted temperature of a segmentation model is within 10x of the ends."""

BLOCK_PIXELS = 8192
"""Pixels per block: the block's few (pixels x classes) float32 buffers stay in the CPU cache."""


# --- one frame -------------------------------------------------------------------------------------------
@dataclass
class FrameSums:
    """What frames add to the totals: pixel count, ECE bins and loss sums at T = 1 and at each `betas`."""

    betas: tuple[Fraction, ...]
    pixels: int = 0
    count: np.ndarray = field(default_factory=lambda: np.zeros(_N_SLOTS, np.int64))
    correct: np.ndarray = field(default_factory=lambda: np.zeros(_N_SLOTS, np.int64))
    confidence: np.ndarray = field(default_factory=lambda: np.zeros(_N_SLOTS))
    nll: float = 0.0
    brier: float = 0.0
    t_count: np.ndarray = None  # (len(betas), slots) ECE bins after each temperature
    t_correct: np.ndarray = None
    t_confidence: np.ndarray = None
    t_nll: np.ndarray = None  # NLL sum at each beta

    def __post_init__(self) -> None:
        k = len(self.betas)
        for name, dtype in (("t_count", np.int64), ("t_correct", np.int64), ("t_confidence", np.float64)):
            if getattr(self, name) is None:
                setattr(self, name, np.zeros((k, _N_SLOTS), dtype))
        if self.t_nll is None:
            self.t_nll = np.zeros(k)


_LANES = 8
"""Copies of every bin, taken by turns, for the weighted bincount: runs of one bin (a confident region) then
add to 8 accumulators instead of waiting on one (5x faster)."""


def _bins(confidence: np.ndarray, correct: np.ndarray, lanes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per row of `confidence` (rows, pixels) and slot: (count, correct count) as (rows, slots, 2) and the
    confidence sum as (rows, slots). Slot k < 15 holds [k/15, (k+1)/15), slot 15 exactly 1.0, as
    torchmetrics bins; the edges are k/15 up to float32 rounding (floor of the float32 product 15 c), as
    torchmetrics' are (float32 `linspace`). `lanes`: i % _LANES for each pixel i (int32)."""
    rows = len(confidence)
    slot = np.multiply(confidence, np.float32(N_BINS)).astype(np.int32)
    slot += (np.arange(rows, dtype=np.int32) * _N_SLOTS)[:, None]
    keyed = slot * 2
    keyed += correct
    both = np.bincount(keyed.ravel(), minlength=2 * _N_SLOTS * rows).reshape(rows, _N_SLOTS, 2)
    slot *= _LANES
    slot += lanes
    conf = np.bincount(slot.ravel(), weights=confidence.ravel(), minlength=_N_SLOTS * rows * _LANES)
    return both, conf.reshape(rows, _N_SLOTS, _LANES).sum(axis=2)


def _log_sums(values: np.ndarray, scratch: np.ndarray) -> np.ndarray:
    """sum(log(values), axis=1) in float64 for values in [1, classes]: products of 32 values (below 1e41)
    by halving, then one log per product; 32x fewer logs than pixels, relative error below 1e-14."""
    rows, n = values.shape
    width = -(-n // 32) * 32
    work = scratch[:, :width]
    work[:, :n] = values
    work[:, n:] = 1.0
    length = width
    for _ in range(5):  # width is 32 m: 16 m, 8 m, ..., m products of 32 values each
        length //= 2
        np.multiply(work[:, :length], work[:, length : 2 * length], out=work[:, :length])
    return np.log(work[:, :length]).sum(axis=1)


MAX_STEPS = 8
"""At most this many steps of 1/MAX_STEPS between grid betas: E^1 = F^8 from F = exp(d / 8) is within
about 8 ulp (5e-7 relative) of exp(d); finer grids or other temperatures take an exp of their own."""


def _power_plan(steps: list[int]) -> list[tuple[int, int, int]]:
    """Products that give F^k for every k in `steps` from F^1: (k, a, b) with F^k = F^a F^b, in order.

    A power no two known ones add up to (F^4 from F^1 alone, T = 0.25) is built from its halves first."""
    have, plan = {1}, []

    def build(k: int) -> None:
        if k in have:
            return
        a = next((a for a in sorted(have, reverse=True) if (k - a) in have), None)
        if a is None:
            a = k // 2
            build(a)
            build(k - a)
        plan.append((k, a, k - a))
        have.add(k)

    for k in sorted(set(steps)):
        build(k)
    return plan


def frame_sums(
    logits: np.ndarray,
    gt: np.ndarray,
    pred: np.ndarray,
    *,
    betas: tuple[Fraction, ...] = GRID,
    block: int = BLOCK_PIXELS,
) -> FrameSums:
    """The calibration sums of one frame: logits (H, W, C) float32, gt and pred (H, W) train IDs, `pred`
    the arg-max of `logits` (what the prediction loop hands its sinks).

    `betas`: inverse temperatures to sum the NLL and the ECE bins at, besides T = 1. With u = 1 / (the
    least common denominator of 1 and the betas) at most 1/MAX_STEPS, one exp gives F = exp(u d) (d = z -
    max z) and every power, T = 1 included, is a product of powers (no exp per temperature); otherwise
    each beta and T = 1 take an exp of their own.
    """
    if logits.ndim != 3 or logits.shape[:2] != gt.shape or pred.shape != gt.shape:
        raise UserError(
            f"calibration needs logits (H, W, classes) and label maps of the same H, W: got "
            f"{logits.shape}, {gt.shape} and {pred.shape}"
        )
    classes = logits.shape[2]
    if classes != NUM_CLASSES:
        raise UserError(f"calibration needs {NUM_CLASSES} logits per pixel (train-ID order), not {classes}")
    betas = tuple(Fraction(b) for b in betas)
    if any(b <= 0 for b in betas):
        raise UserError("temperatures must be positive and finite (inverse temperatures beta > 0)")
    z_all = np.ascontiguousarray(logits, dtype=np.float32).reshape(-1, classes)
    g_all, p_all = gt.reshape(-1), pred.reshape(-1)
    steps = math.lcm(1, *(b.denominator for b in betas))
    chained = steps <= MAX_STEPS
    need = [steps, *(int(b * steps) for b in betas)] if chained else []
    plan = _power_plan(need)
    out = FrameSums(betas)
    ones = np.ones(classes, np.float32)
    rows = np.arange(block, dtype=np.intp) * classes
    d_buf = np.empty((block, classes), np.float32)
    buffers = {k: np.empty((block, classes), np.float32) for k in [1, *(k for k, _, _ in plan)]}
    t_buf = np.empty((block, classes), np.float32)
    others = [b for b in dict.fromkeys(betas) if b != 1]  # row 0: T = 1, row 1 + i: others[i]
    row_of = [0 if b == 1 else 1 + others.index(b) for b in betas]
    n_rows = 1 + len(others)
    sums_buf = np.empty((n_rows, block), np.float32)
    log_buf = np.empty((n_rows, -(-block // 32) * 32))
    lanes = np.arange(block, dtype=np.int32) % _LANES
    where = [int(b * steps) for b in others] if chained else []
    scale = np.array([1.0, *(float(b) for b in others)])
    square_row = 1 + others.index(Fraction(2)) if Fraction(2) in others else None
    counts = np.zeros((n_rows, _N_SLOTS, 2), np.int64)
    confidence = np.zeros((n_rows, _N_SLOTS))
    log_sums, d_gt_total, brier = np.zeros(n_rows), 0.0, 0.0
    for start in range(0, len(g_all), block):
        g = g_all[start : start + block]
        valid = g != IGNORE_ID
        if valid.all():
            z, p = z_all[start : start + block], p_all[start : start + block]
        else:
            keep = np.flatnonzero(valid)
            if not len(keep):
                continue
            keep += start
            z, g, p = z_all[keep], g_all[keep], p_all[keep]
        n = len(g)
        d = d_buf[:n]
        np.subtract(z, z.ravel().take(rows[:n] + p)[:, None], out=d)  # <= 0, and 0 at the arg-max
        sums = sums_buf[:, :n]
        if chained:
            powers = {1: buffers[1][:n]}
            if steps == 1:
                np.exp(d, out=powers[1])
            else:
                np.multiply(d, np.float32(1.0 / steps), out=powers[1])
                np.exp(powers[1], out=powers[1])
            for k, a, b in plan:
                powers[k] = np.multiply(powers[a], powers[b], out=buffers[k][:n])
            e = powers[steps]
            for j, k in enumerate(where):
                np.matmul(powers[k], ones, out=sums[1 + j])
        else:
            e = np.exp(d, out=buffers[1][:n])
            for j, b in enumerate(others):
                np.multiply(d, np.float32(b), out=t_buf[:n])
                np.exp(t_buf[:n], out=t_buf[:n])
                np.matmul(t_buf[:n], ones, out=sums[1 + j])
        np.matmul(e, ones, out=sums[0])  # softmax denominators; the arg-max's probability is 1 / s
        d_gt = d.ravel().take(rows[:n] + g).astype(np.float64)
        d_gt_total += float(d_gt.sum())
        log_sums += _log_sums(sums, log_buf)
        both, conf = _bins(np.reciprocal(sums), p == g, lanes[:n])
        counts += both
        confidence += conf
        out.pixels += n
        s64 = sums[0].astype(np.float64)
        if square_row is None:
            square = (np.multiply(e, e, out=t_buf[:n]) @ ones).astype(np.float64)
        else:
            square = sums[square_row].astype(np.float64)  # sum_k E_k^2
        brier += float(np.sum(square / (s64 * s64)) - 2.0 * np.sum(np.exp(d_gt) / s64) + n)
    nll = log_sums - scale * d_gt_total  # NLL(beta) = sum log s_beta - beta sum (z_gt - max z)
    out.count, out.correct, out.confidence = counts[0].sum(axis=1), counts[0, :, 1], confidence[0]
    out.t_count, out.t_correct = counts[row_of].sum(axis=2), counts[row_of, :, 1]
    out.t_confidence, out.nll, out.brier, out.t_nll = confidence[row_of], float(nll[0]), brier, nll[row_of]
    return out


# --- exact totals ----------------------------------------------------------------------------------------
def _exact(values) -> np.ndarray:
    """Floats as exact rationals (object array), so that sums do not depend on their order."""
    array = np.asarray(values, dtype=np.float64)
    return np.array([Fraction(v) for v in array.ravel().tolist()], dtype=object).reshape(array.shape)


_ARRAYS = ("count", "correct", "confidence", "t_count", "t_correct", "t_confidence", "t_nll")


@dataclass(eq=False)
class CalibrationTotals:
    """Exact sums over the frames added so far; `+` merges two (e.g. two halves of a split)."""

    betas: tuple[Fraction, ...]
    frames: int = 0
    missing: int = 0  # frames that came without logits
    pixels: int = 0
    nll: Fraction = Fraction(0)
    brier: Fraction = Fraction(0)
    count: np.ndarray = None
    correct: np.ndarray = None
    confidence: np.ndarray = None
    t_count: np.ndarray = None
    t_correct: np.ndarray = None
    t_confidence: np.ndarray = None
    t_nll: np.ndarray = None

    def __post_init__(self) -> None:
        self.betas = tuple(Fraction(b) for b in self.betas)
        k = len(self.betas)
        if self.count is None:
            self.count = np.zeros(_N_SLOTS, np.int64)
            self.correct = np.zeros(_N_SLOTS, np.int64)
            self.confidence = _exact(np.zeros(_N_SLOTS))
            self.t_count = np.zeros((k, _N_SLOTS), np.int64)
            self.t_correct = np.zeros((k, _N_SLOTS), np.int64)
            self.t_confidence = _exact(np.zeros((k, _N_SLOTS)))
            self.t_nll = _exact(np.zeros(k))

    def add(self, sums: FrameSums | None) -> None:
        """Add one frame's sums (None: the frame had no logits)."""
        self.frames += 1
        if sums is None:
            self.missing += 1
            return
        if tuple(sums.betas) != self.betas:
            raise ValueError("frame sums were taken at other temperatures than these totals")
        self.pixels += sums.pixels
        self.nll += Fraction(sums.nll)
        self.brier += Fraction(sums.brier)
        for name in _ARRAYS:
            value = getattr(sums, name)
            setattr(self, name, getattr(self, name) + (value if value.dtype == np.int64 else _exact(value)))

    def __add__(self, other: CalibrationTotals) -> CalibrationTotals:
        if other.betas != self.betas:
            raise ValueError("cannot merge calibration totals taken at different temperatures")
        return CalibrationTotals(
            self.betas,
            self.frames + other.frames,
            self.missing + other.missing,
            self.pixels + other.pixels,
            self.nll + other.nll,
            self.brier + other.brier,
            *(getattr(self, n) + getattr(other, n) for n in _ARRAYS),
        )

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, CalibrationTotals):
            return NotImplemented
        keys = ("betas", "frames", "missing", "pixels", "nll", "brier")
        return all(getattr(self, k) == getattr(other, k) for k in keys) and all(
            np.array_equal(getattr(self, n), getattr(other, n)) for n in _ARRAYS
        )
