"""cityscapesScripts' own evaluation, run in isolation: the yardstick for tests and `bench perf eval`.

Its `evaluateImgLists` reads settings from a module-global `args`, prints, writes JSON and calls `sys.exit`
on errors, and uses `np.in1d` (gone in numpy 2.4). Here it runs on a private copy of `args` (quiet, no JSON
file), with an `np.in1d` shim installed only for the call, and a `SystemExit` from its `printError` becomes a
`ReferenceEvaluationError` carrying the printed message.
"""

from __future__ import annotations

import contextlib
import copy
import io
import os
from collections.abc import Iterator, Sequence

import numpy as np

SCORE_KEYS = (
    "classScores",
    "classInstScores",
    "categoryScores",
    "categoryInstScores",
    "averageScoreClasses",
    "averageScoreInstClasses",
    "averageScoreCategories",
    "averageScoreInstCategories",
)


class ReferenceEvaluationError(RuntimeError):
    """cityscapesScripts stopped with printError (its message is the exception's message)."""


@contextlib.contextmanager
def _in1d_shim() -> Iterator[None]:
    """np.in1d for the duration of the call only (numpy >= 2.4 removed it; isin(...).ravel() is the same)."""
    had = hasattr(np, "in1d")
    if not had:
        np.in1d = lambda ar1, ar2, assume_unique=False, invert=False: np.isin(  # type: ignore[attr-defined]
            ar1, ar2, assume_unique=assume_unique, invert=invert
        ).ravel()
    try:
        yield
    finally:
        if not had:
            del np.in1d


def reference_module():
    """The cityscapesScripts evaluation module (its import runs global setup, harmless but not free)."""
    from cityscapesscripts.evaluation import evalPixelLevelSemanticLabeling

    return evalPixelLevelSemanticLabeling


def evaluate_img_lists(
    predictions: Sequence[str | os.PathLike],
    ground_truths: Sequence[str | os.PathLike],
) -> dict[str, object]:
    """cityscapesScripts' evaluateImgLists on these pairs; returns its result dict (with NaN floats)."""
    module = reference_module()
    args = copy.copy(module.args)
    args.quiet = True
    args.JSONOutput = False
    args.evalInstLevelScore = True
    args.evalPixelAccuracy = False
    args.colorized = False
    args.bold = args.nocol = ""
    args.evalLabels = []
    printed = io.StringIO()
    try:
        with _in1d_shim(), contextlib.redirect_stdout(printed):
            return module.evaluateImgLists(
                [str(p) for p in predictions], [str(g) for g in ground_truths], args
            )
    except SystemExit:
        raise ReferenceEvaluationError(printed.getvalue().strip() or "cityscapesScripts exited") from None


def score_dict(result: dict[str, object]) -> dict[str, object]:
    """Only the score keys of a cityscapesScripts result dict."""
    return {key: result[key] for key in SCORE_KEYS}
