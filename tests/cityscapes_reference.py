"""Test helpers around cityscapesScripts' own file discovery and name parsing (the oracle's side of the
layout tests); its evaluation itself is `bench.evaluation.reference`."""

from __future__ import annotations

import contextlib
import copy
import glob
import io
import os
from collections.abc import Sequence

from bench.evaluation.reference import ReferenceEvaluationError, reference_module


def ground_truth_files(root: str | os.PathLike, split: str) -> list[str]:
    """The GT files cityscapesScripts' evaluation finds under `root`: its own `groundTruthSearch` glob
    (`gtFine/val/*/*_gtFine_labelIds.png` below its dataset path), moved to `root` and `split`."""
    module = reference_module()
    top, _val, *rest = os.path.relpath(module.args.groundTruthSearch, module.args.cityscapesPath).split(
        os.sep
    )
    return sorted(glob.glob(os.path.join(root, top, split, *rest)))


def file_key(path: str | os.PathLike) -> str:
    """`{city}_{seq}_{frame}` as cityscapesScripts' getCsFileInfo reads a file name (its printError exits:
    a `ReferenceEvaluationError` here)."""
    from cityscapesscripts.helpers.csHelpers import getCsFileInfo

    printed = io.StringIO()
    try:
        with contextlib.redirect_stdout(printed):
            info = getCsFileInfo(str(path))
    except SystemExit:
        raise ReferenceEvaluationError(printed.getvalue().strip() or "cityscapesScripts exited") from None
    return f"{info.city}_{info.sequenceNb}_{info.frameNb}"


def find_predictions(ground_truths: Sequence[str | os.PathLike], pred_dir: str | os.PathLike) -> list[str]:
    """The prediction cityscapesScripts' getPrediction pairs with each GT file (fnmatch over an os.walk)."""
    module = reference_module()
    args = copy.copy(module.args)
    args.predictionPath, args.predictionWalk = str(pred_dir), None
    printed = io.StringIO()
    try:
        with contextlib.redirect_stdout(printed):
            return [module.getPrediction(args, str(g)) for g in ground_truths]
    except SystemExit:
        raise ReferenceEvaluationError(printed.getvalue().strip() or "cityscapesScripts exited") from None
