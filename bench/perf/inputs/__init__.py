"""`bench perf pipeline` and `bench perf corruptions`: whether the input pipeline keeps the model busy, and
what each Cityscapes-C corruption costs.

May import: bench, data, models.
"""
