"""Cityscapes pixel-level evaluation, identical to cityscapesScripts and much faster (no TensorFlow here):
scoring maths, PNG decoding, matching, worker pool, GT cache, calibration, Boundary IoU, `bench evaluate`.

May import: bench.common, bench.arguments, data.
"""

from bench.evaluation.accumulator import Accumulator
from bench.evaluation.evaluator import evaluate, evaluate_pairs
from bench.evaluation.matching import match_predictions
from bench.evaluation.png import read_png
from bench.evaluation.pool import map_images
from bench.evaluation.scores import EvaluationResult
from bench.evaluation.scoring import AVG_CLASS_SIZE, PRED_ID_MODES, ImageStats, score_image

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
