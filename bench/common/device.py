"""Where a figure was measured: the device, its thread count and the TensorFlow version.

A published images/s means little without the device, precision, batch and resolution it came from
(mmsegmentation issues #3133 and #1458 ask exactly that), so every result row and speed benchmark records
these. Only the standard library and TensorFlow's own queries; nothing here changes any setting.
"""

from __future__ import annotations

import os
import platform
import subprocess
from functools import lru_cache


@lru_cache(maxsize=1)
def cpu_model() -> str:
    """The CPU's marketing name ("AMD EPYC 9654 96-Core Processor"), or the architecture when unknown."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    if platform.system() == "Darwin":
        try:
            out = subprocess.run(
                ["sysctl", "-n", "machdep.cpu.brand_string"], capture_output=True, text=True, timeout=5
            )
            if out.returncode == 0 and out.stdout.strip():
                return out.stdout.strip()
        except (OSError, subprocess.SubprocessError):
            pass
    return platform.processor() or platform.machine() or "unknown CPU"


def cpu_count() -> int:
    """Cores this process may run on (the affinity mask, which a container or taskset narrows)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # macOS
        return os.cpu_count() or 1


def gpu_names() -> list[str]:
    """Names of the GPUs TensorFlow sees ([] on a CPU-only machine)."""
    import tensorflow as tf

    names = []
    for gpu in tf.config.list_physical_devices("GPU"):
        details = tf.config.experimental.get_device_details(gpu)
        names.append(str(details.get("device_name") or gpu.name))
    return names


def device_label() -> str:
    """ "CPU: <model name>" or "GPU: <count>x <name>" (several kinds of GPU: each listed)."""
    gpus = gpu_names()
    if not gpus:
        return f"CPU: {cpu_model()}"
    counts: dict[str, int] = {}
    for name in gpus:
        counts[name] = counts.get(name, 0) + 1
    return "GPU: " + ", ".join(f"{n}x {name}" for name, n in counts.items())


def tf_threads() -> int:
    """TensorFlow's intra-op thread count: the configured value, else the cores it defaults to."""
    import tensorflow as tf

    return tf.config.threading.get_intra_op_parallelism_threads() or cpu_count()


def environment() -> dict[str, object]:
    """`device`, `threads` and `tensorflow` for a result row or a benchmark's header line."""
    import tensorflow as tf

    return {"device": device_label(), "threads": tf_threads(), "tensorflow": tf.__version__}
