"""Datasets: the Cityscapes layout (cityscapes.py), the label table (labels.py), input recipes
(normalization.py), the input pipeline, the Cityscapes-C corruptions and the embedded synthetic set.

May import: data.
"""
