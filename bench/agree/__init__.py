"""`bench agree`: the same frames through two models (any sources and runtimes): arg-max agreement, logits
deltas, each one's scores against the ground truth and its speed; and the README's model zoo table.

May import: bench.common, bench.arguments, bench.evaluation, bench.inference, bench.report, bench.sources,
data, models.
"""
