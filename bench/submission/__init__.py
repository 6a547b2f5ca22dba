"""Cityscapes test-server submissions: predict a split into the zip the server accepts (writer.py), and
check any zip (check.py); `bench submit`.

May import: bench.common, bench.arguments, bench.evaluation, bench.inference, bench.sources, data, models.
"""
