"""Everything `bench train` runs: recipes, the training loop and step, losses, logs, the training folder,
tf.distribute strategies and peers, validation during training, the checkpoint `bench run` trains.

May import: bench.common, bench.arguments, bench.evaluation, bench.inference, bench.report, bench.sources,
data, models.
"""
