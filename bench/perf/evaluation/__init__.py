"""`bench perf eval` and `bench perf metrics`: the evaluator against cityscapesScripts, and what calibration
and Boundary IoU cost per frame.

May import: bench, data, models.
"""
