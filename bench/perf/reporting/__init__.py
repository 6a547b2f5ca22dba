"""`bench perf report`: how long a run's report page takes to write for many frames.

May import: bench, data, models.
"""
