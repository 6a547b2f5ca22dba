"""Speed benchmarks that print measured figures and ratios (`bench perf ...`, `make gpu-check`): timing
tools here, one folder per thing measured, the peers that run in another venv in peers/.

May import: bench, data, models.
"""
