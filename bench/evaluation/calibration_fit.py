"""Scores from exact calibration totals: ECE, MCE, NLL, Brier, and the temperature fit on the grid.

The fit (`fit`, `refine`): NLL(beta) is convex in beta = 1/T (a log-sum-exp of linear functions, minus a
linear term), and the totals hold its exact value at every grid beta. The fitted temperature is the grid
point of least NLL, so ECE and NLL after it are exact; the continuous minimiser lies between its two grid
neighbours (`temperatureBracket`), the parabola through the three points estimates it
(`temperatureRefined`), and `nllGridGap` bounds from above, by convexity (a convex function lies above the
extensions of its secants), how much lower than the grid's the NLL can be anywhere in between.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from fractions import Fraction

import numpy as np

from bench.evaluation.calibration import N_BINS, CalibrationTotals


def ece_mce(count, correct, confidence, pixels: int) -> tuple[float, float]:
    """ECE = sum_b |correct_b - confidence_b| / N (exact until the final division) and MCE."""
    if pixels == 0:
        return math.nan, math.nan
    gaps = [abs(Fraction(int(h)) - Fraction(f)) for h, f in zip(correct, confidence, strict=True)]
    mce = max((gap / int(n) for gap, n in zip(gaps, count, strict=True) if n), default=Fraction(0))
    return float(sum(gaps, Fraction(0)) / pixels), float(mce)


@dataclass
class CalibrationResult:
    """Calibration scores of a split; `available` is False when any frame came without logits."""

    available: bool
    pixels: int = 0
    ece: float = math.nan
    mce: float = math.nan
    nll: float = math.nan
    brier: float = math.nan
    temperature: float = math.nan
    temperature_source: str = ""  # "fit" (on this split: optimistic) or "given" (fitted elsewhere)
    ece_t: float = math.nan
    nll_t: float = math.nan
    details: dict = field(default_factory=dict)  # bins, grid, bracket, refined T, bound
    n_images: int = 0
    seconds: float = 0.0

    def to_dict(self) -> dict[str, object]:
        """The JSON section (NaN kept; the writers turn it into null)."""
        if not self.available:
            return {"available": False, "reason": "no logits (arg-max-only predictions or PNG files)"}
        return {
            "available": True,
            "pixels": self.pixels,
            "ece": self.ece,
            "mce": self.mce,
            "nll": self.nll,
            "brier": self.brier,
            "temperature": self.temperature,
            "temperatureSource": self.temperature_source,
            "eceAfterTemperature": self.ece_t,
            "nllAfterTemperature": self.nll_t,
            "nBins": N_BINS,
            "nImages": self.n_images,
            **self.details,
        }

    def columns(self) -> dict[str, object]:
        """results.csv columns: ECE and MCE in percent, NLL in nats, Brier in [0, 2]; none if unavailable."""
        if not self.available:
            return {}
        return {
            "ece": self.ece * 100.0,
            "mce": self.mce * 100.0,
            "nll": self.nll,
            "brier": self.brier,
            "temperature": self.temperature,
            "temperature_source": self.temperature_source,
            "ece_t": self.ece_t * 100.0,
            "nll_t": self.nll_t,
        }


def bin_table(count, correct, confidence) -> list[dict[str, float]]:
    """Per slot: its range, pixel count, accuracy and mean confidence (NaN when empty)."""
    rows = []
    for k, (n, h, f) in enumerate(zip(count, correct, confidence, strict=True)):
        n = int(n)
        rows.append(
            {
                "low": k / N_BINS if k < N_BINS else 1.0,
                "high": (k + 1) / N_BINS if k < N_BINS else 1.0,
                "count": n,
                "accuracy": int(h) / n if n else math.nan,
                "confidence": float(Fraction(f) / n) if n else math.nan,
            }
        )
    return rows


def fit(totals: CalibrationTotals, *, given: float | None = None) -> CalibrationResult:
    """Scores from exact totals. `given`: the temperature the totals' single beta came from (apply mode);
    None: the totals hold the fit grid, and its temperature of least NLL is the fitted one (no grid at
    all: scores at T = 1 only, no temperature)."""
    if totals.missing or totals.pixels == 0:
        return CalibrationResult(False, n_images=totals.frames)
    n = totals.pixels
    ece, mce = ece_mce(totals.count, totals.correct, totals.confidence, n)
    if not totals.betas:
        return CalibrationResult(
            True,
            pixels=n,
            ece=ece,
            mce=mce,
            nll=float(totals.nll / n),
            brier=float(totals.brier / n),
            details={"bins": bin_table(totals.count, totals.correct, totals.confidence)},
            n_images=totals.frames,
        )
    f = [float(v / n) for v in totals.t_nll]
    betas = [float(b) for b in totals.betas]
    j = int(np.argmin(f))
    ece_t, _ = ece_mce(totals.t_count[j], totals.t_correct[j], totals.t_confidence[j], n)
    details: dict[str, object] = {
        "bins": bin_table(totals.count, totals.correct, totals.confidence),
        "binsAfterTemperature": bin_table(totals.t_count[j], totals.t_correct[j], totals.t_confidence[j]),
    }
    if given is None:
        details.update(refine(betas, f, j))
        details["grid"] = [{"temperature": 1 / b, "nll": v} for b, v in zip(betas, f, strict=True)]
    return CalibrationResult(
        True,
        pixels=n,
        ece=ece,
        mce=mce,
        nll=float(totals.nll / n),
        brier=float(totals.brier / n),
        temperature=float(given) if given is not None else 1.0 / betas[j],
        temperature_source="given" if given is not None else "fit",
        ece_t=ece_t,
        nll_t=f[j],
        details=details,
        n_images=totals.frames,
    )


def _line(x0: float, f0: float, x1: float, f1: float):
    slope = (f1 - f0) / (x1 - x0)
    return lambda x: f0 + slope * (x - x0), slope


def _lowest_of_max(falling, rising, lo: float, hi: float) -> float:
    """min over [lo, hi] of max(falling(x), rising(x)), two lines (line, slope), either may be None."""
    if falling is None:
        return rising[0](lo) if rising[1] >= 0 else rising[0](hi)
    if rising is None:
        return falling[0](hi) if falling[1] <= 0 else falling[0](lo)
    (fl, sl), (fr, sr) = falling, rising
    if sl >= sr:  # not crossing inside: the max is lowest at an end
        return min(max(fl(lo), fr(lo)), max(fl(hi), fr(hi)))
    x = min(max((fr(0.0) - fl(0.0)) / (sl - sr), lo), hi)
    return max(fl(x), fr(x))


def refine(betas: list[float], f: list[float], j: int) -> dict[str, object]:
    """Around the grid minimum j of the convex NLL(beta): the bracket of the continuous minimiser
    [beta_{j-1}, beta_{j+1}], the parabola's vertex through the three points (`temperatureRefined`), and a
    certified bound `nllGridGap` >= f[j] - min NLL (a convex function lies above the extensions of its
    secants); NaN when the minimum is at the grid's end (the optimum may lie beyond it)."""
    k = len(betas)
    if j == 0 or j == k - 1:
        return {"temperatureRefined": math.nan, "nllGridGap": math.nan, "temperatureAtGridEdge": True}
    (x0, x1, x2), (f0, f1, f2) = betas[j - 1 : j + 2], f[j - 1 : j + 2]
    denominator = (x1 - x0) * (f1 - f2) - (x1 - x2) * (f1 - f0)
    vertex = (
        x1 - 0.5 * ((x1 - x0) ** 2 * (f1 - f2) - (x1 - x2) ** 2 * (f1 - f0)) / denominator
        if denominator
        else x1
    )
    # left cell [x0, x1]: above the secant (j-2, j-1) carried right and the secant (j, j+1) carried left;
    # right cell [x1, x2]: above the secant (j-1, j) carried right and the secant (j+1, j+2) carried left
    outer_left = _line(betas[j - 2], f[j - 2], x0, f0) if j >= 2 else None
    outer_right = _line(x2, f2, betas[j + 2], f[j + 2]) if j + 2 < k else None
    lower = min(
        _lowest_of_max(outer_left, _line(x1, f1, x2, f2), x0, x1),
        _lowest_of_max(_line(x0, f0, x1, f1), outer_right, x1, x2),
    )
    gap = max(0.0, f1 - lower)
    return {
        "temperatureRefined": 1.0 / vertex,
        "temperatureBracket": [1.0 / x2, 1.0 / x0],
        "nllGridGap": gap,
        "temperatureAtGridEdge": False,
    }
