"""The model registry (registry.py) and the Keras builders it names: PSPNet, FCN, ESPNet, ESPNetv2, their
backbones, heads and blocks, inference modes, precision, BatchNorm folding, FLOP counts.

May import: data.
"""
