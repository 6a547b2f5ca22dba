"""Where the project keeps things: each location defined once, relative to the checkout."""

from __future__ import annotations

from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[2]  # bench/common/paths.py -> the checkout
README = PROJECT_ROOT / "README.md"
RESULTS_DIR = PROJECT_ROOT / "results"
RESULTS_CSV = RESULTS_DIR / "results.csv"
REFERENCE_DIR = RESULTS_DIR / "reference"
RUNS_DIR = RESULTS_DIR / "runs"
CHECKPOINT_ROOT = PROJECT_ROOT / "checkpoints"
SYNTHETIC_ROOT = PROJECT_ROOT / "data" / "generated" / "synthetic"
CONVERTED_ROOT = CHECKPOINT_ROOT / "converted"  # `bench run --checkpoint X.pth`: conversions by content hash
