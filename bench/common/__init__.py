"""Helpers every room of bench/ uses: atomic writes and locks, path checks, the project's folders, the
dataset a command runs on, NaN-tolerant numbers, markdown of scores, progress bars, the device of a figure,
TensorFlow's quiet import.

May import: data.
"""
