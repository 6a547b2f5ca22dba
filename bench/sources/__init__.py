"""Every way a model comes in, one module per source (Keras checkpoints, PyTorch `.pth` converted by
`convert/`, LiteRT files, ONNX files on ONNX Runtime or OpenVINO and OpenVINO IR with their recipes,
published weights by name with their download), and `open_checkpoint`, which
chooses among them (opener.py: `SOURCES`); `bench models`, `bench weights`, `bench convert`.

May import: bench.common, bench.arguments, bench.report, data, models.
"""
