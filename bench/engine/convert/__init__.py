"""Published checkpoints into ours: the converter (converter.py), `bench convert` (command.py), a torch-free
`.pth` reader (torch_reader.py), source layouts (mmseg.py; espnet.py and espnetv2.py, matched by
name through torch_layers.py) and the published weights' table (published.py)."""
