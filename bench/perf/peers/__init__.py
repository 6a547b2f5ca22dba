"""Scripts run by the parity venv's interpreter (torch, mmsegmentation) as children of a benchmark, never
imported by the project: mmsegmentation's own PSPNet forward pass and training step.

May import: nothing of the project (they run in another venv).
"""
