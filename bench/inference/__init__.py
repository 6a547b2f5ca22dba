"""The prediction loop (loop.py: a model, frames, settings and sinks), its output sinks (label-ID, colour
and logits files) and `bench predict`.

May import: bench.common, bench.arguments, bench.evaluation, bench.sources, data, models.
"""
