"""Cityscapes pixel-level evaluation, identical to cityscapesScripts and much faster (no TensorFlow here).

`scoring` holds the maths, `accumulator` the running totals, `png` the decoding, `matching` the file
pairing, `pool` the worker processes, `evaluator` the driver, `reference` the isolated cityscapesScripts
yardstick and `command` the CLI. Beyond mIoU: `boundary` (Boundary IoU), `calibration` and
`calibration_fit` (ECE, NLL, Brier, temperature), and `sinks`, their prediction-loop sinks.
"""

from bench.evaluation.accumulator import Accumulator
from bench.evaluation.evaluator import evaluate, evaluate_pairs
from bench.evaluation.matching import match_predictions
from bench.evaluation.png import read_png
from bench.evaluation.pool import map_images
from bench.evaluation.scoring import AVG_CLASS_SIZE, PRED_ID_MODES, EvaluationResult, ImageStats, score_image

__all__ = [
    "Accumulator",
    "AVG_CLASS_SIZE",
    "PRED_ID_MODES",
    "EvaluationResult",
    "ImageStats",
    "evaluate",
    "evaluate_pairs",
    "map_images",
    "match_predictions",
    "read_png",
    "score_image",
]
