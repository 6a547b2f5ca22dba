"""`bench perf model` and `bench perf precision`: a model's forward pass, per mode and precision, in the
field's language, and against mmsegmentation's own (through peers/).

May import: bench, data, models.
"""
