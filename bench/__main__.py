import os

# TensorFlow's C++ start-up chatter (CPU feature notes) is noise for a CLI user; errors still show.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from bench.cli import main  # noqa: E402

raise SystemExit(main())
