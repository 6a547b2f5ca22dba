"""`bench export`: our checkpoints as ONNX, OpenVINO IR and LiteRT files, each with its recipe and checked
against its source on one frame.

May import: bench.common, bench.arguments, bench.inference, bench.sources, data, models.
"""
