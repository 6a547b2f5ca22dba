"""`bench generalize`: a Cityscapes-trained model on ACDC (per condition), Dark Zurich, Foggy Cityscapes (per
fog density) and BDD100K, scored by the exact evaluator, one resumable table beside Cityscapes val.

May import: bench.common, bench.arguments, bench.evaluation, bench.robustness, data, models.
"""
