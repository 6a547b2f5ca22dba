"""Published checkpoints into ours: `bench convert` (command.py), a torch-free `.pth` reader
(torch_reader.py), source layouts (mmseg.py) and the table of published weights (published.py)."""
