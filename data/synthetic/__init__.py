"""The embedded synthetic dataset: deterministic street scenes in the exact Cityscapes layout and formats.

`scene` lays out labelled polygons, `render` draws the RGB image from them, `dataset` writes the dataset.
"""

from data.synthetic.dataset import CITIES, MANIFEST, generate, main, read_manifest

__all__ = ["CITIES", "MANIFEST", "generate", "main", "read_manifest"]
