"""`bench perf train`: training images/s with 1 and N replicas, and the step against mmsegmentation's.

May import: bench, data, models.
"""
