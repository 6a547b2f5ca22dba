"""The oneDNN heap corruption of TensorFlow 2.21 (issue 17) does not reach a training process.

The minimal trigger: the weight gradient of one 1x1 stride-2 convolution, 8 -> 16 channels, on a
(1, 16, 16, 8) input, three times in one process. With oneDNN on (TensorFlow's default on CPUs with
AVX512) it died with SIGABRT ("double free or corruption"); training processes import TensorFlow through
`import_tensorflow(training=True)`, which starts it with oneDNN off. Each run is a fresh interpreter (the
setting is read once, when TensorFlow loads), with glibc's heap checks on so that a corruption aborts
instead of passing unseen, and the gradient is compared with numpy's.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from bench.common.tensorflow_import import ONEDNN_VARIABLE

TRIGGER = textwrap.dedent(
    """
    import sys
    import numpy as np
    from bench.common.tensorflow_import import import_tensorflow

    tf = import_tensorflow(training=True)
    rng = np.random.default_rng(0)
    x = rng.normal(size=(1, 16, 16, 8)).astype(np.float32)
    w = tf.Variable(rng.normal(size=(1, 1, 8, 16)).astype(np.float32))
    for _ in range(3):
        with tf.GradientTape() as tape:
            y = tf.nn.conv2d(tf.constant(x), w, strides=2, padding="VALID")
            loss = tf.reduce_sum(y * y)
        grad = tape.gradient(loss, w).numpy()
    np.save(sys.argv[1], grad)
    """
)


def expected_gradient() -> np.ndarray:
    """d/dw sum((x[:, ::2, ::2] @ w)^2) = 2 x_s^T (x_s @ w), in float64."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(1, 16, 16, 8))
    w = rng.normal(size=(1, 1, 8, 16))
    xs = x[:, ::2, ::2, :].reshape(-1, 8)
    return (2.0 * xs.T @ (xs @ w[0, 0]))[None, None].astype(np.float32)


def run_trigger(tmp_path, env_update: dict[str, str]) -> tuple[subprocess.CompletedProcess, np.ndarray]:
    out = tmp_path / "grad.npy"
    env = {k: v for k, v in os.environ.items() if k != ONEDNN_VARIABLE}
    env |= {"TF_CPP_MIN_LOG_LEVEL": "2", "MALLOC_CHECK_": "3", "GLIBC_TUNABLES": "glibc.malloc.check=3"}
    env |= env_update
    done = subprocess.run(
        [sys.executable, "-c", TRIGGER, str(out)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    return done, (np.load(out) if out.exists() else None)


@pytest.mark.parametrize("run", range(3))
def test_training_import_runs_the_minimal_trigger_to_the_right_gradient(tmp_path, run):
    done, grad = run_trigger(tmp_path, {})
    assert done.returncode == 0, f"died with {done.returncode}: {done.stderr[-2000:]}"
    np.testing.assert_allclose(grad, expected_gradient(), rtol=1e-5, atol=1e-3)


def test_training_import_turns_onednn_off_unless_the_user_chose():
    code = (
        "import os\nfrom bench.common.tensorflow_import import import_tensorflow\n"
        "import_tensorflow(training=True)\nprint(os.environ['TF_ENABLE_ONEDNN_OPTS'])"
    )
    env = {k: v for k, v in os.environ.items() if k != ONEDNN_VARIABLE} | {"TF_CPP_MIN_LOG_LEVEL": "2"}
    for chosen, expected in ((None, "0"), ("1", "1")):
        run_env = env if chosen is None else env | {ONEDNN_VARIABLE: chosen}
        done = subprocess.run(
            [sys.executable, "-c", code], env=run_env, capture_output=True, text=True, timeout=120
        )
        assert done.returncode == 0, done.stderr[-2000:]
        assert done.stdout.split()[-1] == expected
