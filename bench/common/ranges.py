"""The one check of a number against the range its arithmetic can take, for options and settings alike.

A `Range` is an argparse `type` (its error says the range; `str(range)` goes into the option's help) and a
checker for values that come from elsewhere (`check(value, "--stride")` raises UserError). NaN, infinities
and text fail the same way, so a senseless number never reaches the maths.
"""

from __future__ import annotations

import argparse
import math
from dataclasses import dataclass

from data.errors import UserError


@dataclass(frozen=True)
class Range:
    """Numbers of `kind` (int or float) from `low` to `high`; `low_open`: `low` itself excluded."""

    kind: type = int
    low: float | None = None
    high: float | None = None
    low_open: bool = False
    unit: str = ""

    def _fmt(self, value: float) -> str:
        return f"{int(value):,}" if self.kind is int else f"{value:g}"

    def __str__(self) -> str:
        noun = "an integer" if self.kind is int else "a number"
        unit = f" {self.unit}" if self.unit else ""
        if self.low is not None and self.high is not None:
            below = "above" if self.low_open else "from"
            to = "and at most" if self.low_open else "to"
            return f"{noun} {below} {self._fmt(self.low)} {to} {self._fmt(self.high)}{unit}"
        if self.low is not None:
            return f"{noun} {'above' if self.low_open else 'of at least'} {self._fmt(self.low)}{unit}"
        if self.high is not None:
            return f"{noun} of at most {self._fmt(self.high)}{unit}"
        return noun

    def parse(self, text: str) -> float | int:
        """`text` as a number in range; ValueError (with the range) otherwise."""
        try:
            value = self.kind(text.strip()) if isinstance(text, str) else self.kind(text)
        except (TypeError, ValueError, OverflowError):
            raise ValueError(f"'{text}' is not {self}") from None
        if self.kind is int and isinstance(text, float) and text != value:
            raise ValueError(f"'{text}' is not {self}")
        if not self.contains(value):
            raise ValueError(f"{text} is out of range: give {self}")
        return value

    def contains(self, value: float) -> bool:
        if isinstance(value, float) and not math.isfinite(value):
            return False
        if self.low is not None and (value <= self.low if self.low_open else value < self.low):
            return False
        return self.high is None or value <= self.high

    def check(self, value, what: str):
        """`value` when in range, else a UserError naming `what` (the option or setting) and the range."""
        try:
            return self.parse(value)
        except ValueError as exc:
            raise UserError(f"{what}: {exc}") from None

    def __call__(self, text: str):
        """As an argparse type: argparse prefixes the option's name to the message."""
        try:
            return self.parse(text)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None

    @property
    def __name__(self) -> str:  # argparse names a failing type by its __name__
        return "number"


def positive_int(high: int, unit: str = "") -> Range:
    """1 .. `high`: counts of frames, steps, repeats, workers."""
    return Range(int, 1, high, unit=unit)


SEED = Range(int, 0, 2**32 - 1)
"""Random seeds: NumPy's and TensorFlow's generators take unsigned 32-bit seeds."""
