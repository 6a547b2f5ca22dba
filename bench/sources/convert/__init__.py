"""Published PyTorch checkpoints into ours: the converter (converter.py), `bench convert` (command.py), a
torch-free `.pth` reader (torch_reader.py, unpickler.py), source layouts (mmseg.py; espnet.py and
espnetv2.py, matched by name through torch_layers.py) and the published checkpoints' facts (published.py).

May import: bench.common, bench.sources, bench.report, data, models.
"""
