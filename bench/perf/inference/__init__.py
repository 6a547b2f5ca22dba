"""`bench perf loop` and `bench perf backends`: the prediction loop against the bare forward pass, stage by
stage, and one model run every way this machine offers, each one's speed and faithfulness.

May import: bench, data, models.
"""
