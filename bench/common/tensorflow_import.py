"""Import TensorFlow without its start-up chatter, keeping every error it prints.

TensorFlow 2.21 logs through absl before absl's logging is initialised; those lines ("WARNING: All log
messages before absl::InitializeLog() is called are written to STDERR", "I0000 ... port.cc:153] oneDNN
custom operations are on ...") ignore `TF_CPP_MIN_LOG_LEVEL` and go straight to file descriptor 2, once per
shared library that logs. `import_tensorflow` captures descriptor 2 during the import and writes back every
line except log lines below `TF_CPP_MIN_LOG_LEVEL` (0 all, 1 hides INFO, 2 also WARNING, 3 also ERROR,
as TensorFlow defines it), so the variable means again what it says.

Training processes (`training=True`) start TensorFlow with oneDNN off unless `TF_ENABLE_ONEDNN_OPTS` is
set: with oneDNN on (TensorFlow's default on CPUs with AVX512), the pinned TensorFlow 2.21 corrupts the
heap in a convolution's weight gradient (one 1x1 stride-2 convolution, 8 -> 16 channels, on a (1, 16, 16,
8) input, three times: "double free or corruption", SIGABRT; ResNet's downsampling convolutions are of
that kind), which killed `bench train` silently and may corrupt numbers where it does not. Inference keeps
oneDNN (the bf16 speed-ups come from it); `TF_ENABLE_ONEDNN_OPTS=1` brings it back for training.
"""

from __future__ import annotations

import os
import re
import sys
import tempfile
from types import ModuleType

# glog/absl line prefix: severity letter, MMDD, time, thread id, file:line]
# (before absl is initialised the time reads 00:00:<epoch seconds>)
_LOG_LINE = re.compile(r"^([IWEF])\d{4} \d\d:\d\d:\d+\.\d+\s+\d+\s+\S+:\d+\]")
# what Python itself prints to stderr: a traceback or a warning ("file.py:12: UserWarning: ...")
_PYTHON_LINE = re.compile(r"^(Traceback|\S.*:\d+: \w*(Warning|Error)\b)")
_ABSL_BANNER = "All log messages before absl::InitializeLog() is called are written to STDERR"
_SEVERITY = {"I": 0, "W": 1, "E": 2, "F": 3}


def min_log_level() -> int:
    """`TF_CPP_MIN_LOG_LEVEL` as TensorFlow reads it (0 when unset or not a number)."""
    try:
        return int(os.environ.get("TF_CPP_MIN_LOG_LEVEL", "0"))
    except ValueError:
        return 0


def filter_lines(text: str, level: int) -> str:
    """The lines of `text` (what TensorFlow printed at import) that should reach the user under `level`.

    A log message may run over several lines; the lines after a hidden log line go with it, up to the next
    log line or anything Python printed (a warning, a traceback), which is always shown.
    """
    kept, hiding = [], False
    for line in text.splitlines(keepends=True):
        match = _LOG_LINE.match(line)
        if _ABSL_BANNER in line:
            hiding = level >= 1
        elif match is not None:
            hiding = _SEVERITY[match[1]] < level and match[1] != "F"
        elif _PYTHON_LINE.match(line):
            hiding = False
        if not hiding:
            kept.append(line)
    return "".join(kept)


ONEDNN_VARIABLE = "TF_ENABLE_ONEDNN_OPTS"


def import_tensorflow(*, training: bool = False) -> ModuleType:
    """`import tensorflow`, with its start-up log lines filtered as the module docstring says; for a
    process that trains, with oneDNN off unless the user chose (see the module docstring)."""
    if "tensorflow" in sys.modules:
        return sys.modules["tensorflow"]
    if training:
        os.environ.setdefault(ONEDNN_VARIABLE, "0")
    level = min_log_level()
    if level < 1:
        import tensorflow

        return tensorflow
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with tempfile.TemporaryFile() as capture:
            os.dup2(capture.fileno(), 2)
            try:
                import tensorflow
            finally:
                sys.stderr.flush()
                os.dup2(saved, 2)
                capture.seek(0)
                kept = filter_lines(capture.read().decode("utf-8", errors="replace"), level)
                if kept:
                    sys.stderr.write(kept)
                    sys.stderr.flush()
    finally:
        os.close(saved)
    return tensorflow
