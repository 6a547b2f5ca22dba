import os
import sys

# TensorFlow's C++ start-up chatter (CPU feature notes) is noise for a CLI user; errors still show.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

if os.environ.get("TF_CONFIG") and sys.argv[1:2] == ["train"]:
    # A worker of a multi-worker job holds SIGTERM before any thread exists: its wait for the peers can
    # only see a SIGTERM that no thread took to TensorFlow's handler (bench/training/peers.py).
    from bench.training.peers import hold_termination

    hold_termination()

from bench.cli import main  # noqa: E402

raise SystemExit(main())
