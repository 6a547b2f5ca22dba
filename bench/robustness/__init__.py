"""The Cityscapes-C robustness benchmark: corrupted frames made on the fly, scored per (corruption,
severity), resumable, over tf.distribute replicas; `bench robustness`.

May import: bench.common, bench.arguments, bench.evaluation, bench.inference, bench.report, bench.sources,
bench.training, data, models.
"""
