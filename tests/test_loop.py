"""The prediction loop and its sinks: any forward callable (no Keras model needed, as a LiteRT source has
none), every sink reset once, fed every frame in order with train IDs and logits, and evaluated once."""

from __future__ import annotations

import numpy as np
import pytest

tf = pytest.importorskip("tensorflow")
from bench.evaluation.streaming import StreamingEvaluator  # noqa: E402
from bench.inference.loop import predict_frames  # noqa: E402
from bench.sources.opener import OpenedModel  # noqa: E402
from data.cityscapes import list_samples  # noqa: E402
from data.errors import UserError  # noqa: E402
from models.inference_modes import InferenceSettings  # noqa: E402

CLASSES = 19


class Recorder:
    """A sink that keeps what it was given."""

    def __init__(self):
        self.calls = []

    def reset(self):
        self.calls.append("reset")
        self.frames = []

    def process(self, sample, train_ids, logits):
        self.frames.append((sample.key, train_ids, logits))

    def evaluate(self):
        self.calls.append("evaluate")
        return len(self.frames)


def column_logits(images):
    """Logits that pick class (x // 8) % 19 at column x: a known answer for any frame."""
    _, h, w, _ = images.shape
    cls = (np.arange(w) // 8) % CLASSES
    logits = np.zeros((1, h, w, CLASSES), np.float32)
    logits[0, :, np.arange(w), cls] = 1.0
    return logits


def test_a_forward_callable_feeds_every_sink_every_frame_in_order(tiny_dataset):
    samples = list_samples(tiny_dataset, "val", require_images=True)
    first, second = Recorder(), Recorder()
    model = OpenedModel(None, {"checkpoint": "columns"}, forward=column_logits)
    predicted = predict_frames(model, samples, InferenceSettings(flip=False), [first, second], progress=False)
    assert predicted.results == (3, 3)
    for sink in (first, second):
        assert sink.calls == ["reset", "evaluate"]
        assert [key for key, _, _ in sink.frames] == [s.key for s in samples]
    expected = (np.arange(128) // 8) % CLASSES
    for _, train_ids, logits in first.frames:
        assert train_ids.dtype == np.uint8 and train_ids.shape == (64, 128)
        assert (train_ids == expected).all()
        assert logits.dtype == np.float32 and logits.shape == (64, 128, CLASSES)
    stats = predicted.stats
    assert stats["n_images"] == 3 and stats["checkpoint"] == "columns" and stats["mode"] == "whole"
    assert stats["input_size"] == "64x128" and stats["folded_bn"] is False


def test_an_argmax_only_model_gives_sinks_no_logits_and_scores_like_its_logits(tiny_dataset):
    samples = list_samples(tiny_dataset, "val", require_images=True)

    def argmax_only(images):
        return np.argmax(column_logits(images), axis=-1)

    results, seen = {}, Recorder()
    for name, model in (
        ("logits", OpenedModel(None, forward=column_logits)),
        ("argmax", OpenedModel(None, forward=argmax_only, outputs="train_ids")),
    ):
        with StreamingEvaluator() as evaluator:
            sinks = [evaluator, seen] if name == "argmax" else [evaluator]
            results[name] = predict_frames(model, samples, sinks=sinks, progress=False).results[0]
    assert all(logits is None for _, _, logits in seen.frames)
    np.testing.assert_array_equal(results["argmax"].confusion, results["logits"].confusion)
    with pytest.raises(UserError, match="only its arg-max"):
        predict_frames(
            OpenedModel(None, forward=argmax_only, outputs="train_ids"),
            samples,
            InferenceSettings(flip=True),
            progress=False,
        )
