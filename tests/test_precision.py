"""models/precision.py: bf16 builds compute in bfloat16 with float32 weights and float32 logits."""

from __future__ import annotations

import numpy as np
import pytest

keras = pytest.importorskip("keras")
from models.batchnorm_folding import fold_batchnorm  # noqa: E402
from models.precision import precision_scope  # noqa: E402
from models.registry import build  # noqa: E402
from tests.keras_helpers import model_precision  # noqa: E402


def test_the_scope_restores_the_global_policy_even_when_building_fails():
    with pytest.raises(RuntimeError), precision_scope("bf16"):
        assert keras.mixed_precision.global_policy().name == "mixed_bfloat16"
        raise RuntimeError("a builder failed")
    assert keras.mixed_precision.global_policy().name == "float32"


def test_an_unknown_precision_is_a_user_error():
    from data.errors import UserError

    with pytest.raises(UserError, match="fp32, bf16"), precision_scope("fp16"):
        pass


@pytest.mark.parametrize("name", ["pspnet", "fcn", "pspnet-seed"])
def test_registry_models_in_bf16_compute_in_bfloat16_and_return_float32_logits(name):
    with precision_scope("fp32"):
        reference = build(name, preset="tiny")
    with precision_scope("bf16"):
        model = build(name, preset="tiny")
    model.set_weights(reference.get_weights())  # float32 variables either way: the same weights load
    assert model_precision(reference) == "fp32" and model_precision(model) == "bf16"
    image = np.random.default_rng(0).normal(size=(1, 48, 96, 3)).astype("float32")
    logits = model(image, training=False)
    assert logits.dtype == "float32" and logits.shape == (1, 48, 96, 19)
    folded = fold_batchnorm(model)  # folding keeps the policy and the float32 output
    assert model_precision(folded) == "bf16" and folded(image).dtype == "float32"
    expected = reference(image, training=False).numpy()
    assert np.abs(logits.numpy() - expected).max() < 0.1 * np.abs(expected).max()
