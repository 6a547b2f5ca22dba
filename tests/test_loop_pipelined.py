"""The pipelined prediction loop (prefetch, arg-max in the traced forward pass, sinks in their own thread,
`--batch`) gives every sink exactly what the plain frame-by-frame loop gives it, and every score is equal."""

from __future__ import annotations

import time

import numpy as np
import pytest

tf = pytest.importorskip("tensorflow")
from bench.evaluation.sinks import BoundarySink, CalibrationSink  # noqa: E402
from bench.evaluation.streaming import StreamingEvaluator  # noqa: E402
from bench.inference.loop import predict_frames  # noqa: E402
from bench.sources.opener import OpenedModel  # noqa: E402
from data.cityscapes import list_samples  # noqa: E402
from data.errors import UserError  # noqa: E402
from data.synthetic import generate  # noqa: E402
from models.inference_modes import InferenceSettings  # noqa: E402
from tests.tiny_model import tiny  # noqa: E402


class Recorder:
    """A sink that keeps every frame it was given (and, slow, sleeps a little on some frames)."""

    def __init__(self, needs_logits=True, slow=False):
        self.needs_logits = needs_logits
        self.slow = slow

    def reset(self):
        self.frames = []

    def process(self, sample, train_ids, logits):
        if self.slow and len(self.frames) % 2 == 0:
            time.sleep(0.05)
        self.frames.append((sample.key, train_ids.copy(), None if logits is None else logits.copy()))

    def evaluate(self):
        return len(self.frames)


@pytest.fixture(scope="module")
def model():
    keras = tiny()
    rng = np.random.default_rng(0)
    for weight in keras.weights:  # kernels random (a map of many classes), BatchNorm as built
        if "kernel" in weight.path:
            weight.assign(rng.normal(0, 0.5, weight.shape).astype("float32"))
    return OpenedModel(keras, {"checkpoint": "tiny"}, jit=False)


@pytest.fixture(scope="module")
def mixed_samples(tiny_dataset, tmp_path_factory):
    """The 3 val frames at 64x128, then 2 at 32x64, then the first again: sizes change mid-split."""
    small = generate(tmp_path_factory.mktemp("small") / "s", train=0, val=2, test=0, size=(32, 64), seed=1)
    big = list_samples(tiny_dataset, "val", require_images=True)
    return [*big, *list_samples(small, "val", require_images=True), big[0]]


def _scored(model, samples, settings, pipelined):
    recorder = Recorder()
    with StreamingEvaluator() as scores, CalibrationSink() as calibration, BoundarySink() as boundary:
        predicted = predict_frames(
            model,
            samples,
            settings,
            [scores, calibration, boundary, recorder],
            progress=False,
            pipelined=pipelined,
        )
    return predicted, recorder


def _same_scores(a, b):
    (sa, ca, ba, _), (sb, cb, bb, _) = a.results, b.results
    assert (sa.confusion == sb.confusion).all() and sa.n_images == sb.n_images
    assert sa.class_scores == pytest.approx(sb.class_scores, nan_ok=True, rel=0, abs=0)
    assert sa.class_inst_scores == pytest.approx(sb.class_inst_scores, nan_ok=True, rel=0, abs=0)
    fields = ("ece", "nll", "brier", "temperature", "pixels")
    assert [getattr(ca, f) for f in fields] == [getattr(cb, f) for f in fields]
    assert (ba.counts.intersection == bb.counts.intersection).all()
    assert (ba.counts.union == bb.counts.union).all()


@pytest.mark.parametrize("batch", [1, 2])
def test_pipelined_and_batched_loop_equals_the_plain_loop_frame_by_frame(model, mixed_samples, batch):
    plain, seen_plain = _scored(model, mixed_samples, InferenceSettings(), pipelined=False)
    fast, seen_fast = _scored(model, mixed_samples, InferenceSettings(batch=batch), pipelined=True)
    assert [k for k, _, _ in seen_fast.frames] == [s.key for s in mixed_samples]
    for (_, ids_a, logits_a), (_, ids_b, logits_b) in zip(seen_plain.frames, seen_fast.frames, strict=True):
        assert ids_a.dtype == ids_b.dtype == np.uint8
        assert (ids_a == ids_b).all()
        if batch == 1:
            assert (logits_a == logits_b).all()
        else:  # another batch size may pick other kernels: the logits agree to rounding, the arg-max exactly
            np.testing.assert_allclose(logits_a, logits_b, rtol=1e-5, atol=1e-5)
    _same_scores(plain, fast)
    assert fast.stats["batch"] == batch and fast.stats["input_size"] == "32x64 64x128"
    assert seen_plain.frames[0][1].any()  # a model that predicts more than one class


def test_logits_stay_on_the_device_when_no_sink_needs_them(model, tiny_dataset):
    samples = list_samples(tiny_dataset, "val", require_images=True)
    lean, full = Recorder(needs_logits=False), Recorder(needs_logits=True)
    predict_frames(model, samples, sinks=[lean], progress=False)
    predict_frames(model, samples, sinks=[full], progress=False, pipelined=False)
    assert all(logits is None for _, _, logits in lean.frames)
    for (_, ids, _), (_, expected, logits) in zip(lean.frames, full.frames, strict=True):
        assert (ids == expected).all() and (ids == np.argmax(logits, axis=-1)).all()


def test_a_slow_sink_sees_every_frame_in_order_and_its_error_reaches_the_caller(model, mixed_samples):
    slow = Recorder(slow=True)
    predict_frames(model, mixed_samples, InferenceSettings(batch=2), [slow], progress=False)
    assert [k for k, _, _ in slow.frames] == [s.key for s in mixed_samples]

    class Broken(Recorder):
        def process(self, sample, train_ids, logits):
            raise UserError(f"cannot write {sample.key}")

    with pytest.raises(UserError, match="cannot write"):
        predict_frames(model, mixed_samples, sinks=[Broken()], progress=False)


def test_bad_batches_are_refused_before_any_work(tiny_dataset):
    samples = list_samples(tiny_dataset, "val", require_images=True)
    with pytest.raises(UserError, match="--batch 0"):
        InferenceSettings(batch=0)
    with pytest.raises(UserError, match="--mode whole without --flip"):
        InferenceSettings(batch=2, flip=True)
    zeros = lambda x: np.zeros((1, 64, 128, 19), np.float32)  # noqa: E731
    callable_only = OpenedModel(None, {"checkpoint": "file.tflite"}, forward=zeros)
    with pytest.raises(UserError, match="file.tflite is not one"):
        predict_frames(callable_only, samples, InferenceSettings(batch=2), progress=False)
