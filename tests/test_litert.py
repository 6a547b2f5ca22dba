"""LiteRT (.tflite) model source: windows, quantisation, arg-max outputs and label space, on tiny models
converted here from Keras (no shared files needed) and on the shared int8 TF DeepLab when present.

The tiny models are per-pixel (1x1 convolutions only), so a correct tiling of any frame gives exactly what
the same Keras network computes on the whole frame at once: any misplaced, mis-cropped or mis-averaged
window changes the numbers.
"""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from bench.sources.litert_runtime import LiteRTModel, is_litert, open_litert
from bench.sources.windows import nearest_centre as _nearest_centre
from data.errors import UserError
from data.normalization import InputSpec
from tests.shared_files import shared_file
from tests.tiny_litert import INPUT, convert, per_pixel

SPEC = InputSpec(mean=(127.5, 127.5, 127.5), std=(63.75, 63.75, 63.75))  # 0..255 -> -2..2
DEEPLAB = "weights/deeplab_mobilenet_edgetpu_slim_cityscapes_quant.tflite"
DEEPLAB_URL = (
    "download https://github.com/google-coral/test_data/raw/104342d2d3480b3e66203073dac24f4e2dbb4c41/"
    "deeplab_mobilenet_edgetpu_slim_cityscapes_quant.tflite into ../shared/weights/"
)
FRAME = "fixtures/real-frame/leftImg8bit/val/frankfurt/frankfurt_000000_000294_leftImg8bit.png"
SAMPLE_GT = "fixtures/cityscapes-sample/gtFine/val/frankfurt/frankfurt_000000_000294_gtFine_labelIds.png"


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """Converted .tflite files (float, int8 with uint8 / int8 input, arg-max, dynamic size) and a Keras
    network with the same weights that takes any frame size, for the reference outputs."""
    from bench.common.tensorflow_import import import_tensorflow

    tf = import_tensorflow()
    import keras

    folder = tmp_path_factory.mktemp("litert")

    def save(name, model, input=None):
        return convert(tf, model, folder / f"{name}.tflite", quantised_input=input)

    fixed = per_pixel(keras, tf, INPUT, 19)
    coarse = keras.Sequential([fixed, keras.layers.AveragePooling2D(2)])  # output at half the input size
    anywhere = per_pixel(keras, tf, None, 19)
    anywhere.set_weights(fixed.get_weights())
    background = per_pixel(keras, tf, INPUT, 20, seed=2)
    kernel, bias, classifier, class_bias = background.get_weights()
    class_bias[19] += 0.6  # background wins on about 15% of the pixels
    background.set_weights([kernel, bias, classifier, class_bias])
    anywhere20 = per_pixel(keras, tf, None, 20, seed=2)
    anywhere20.set_weights(background.get_weights())
    argmax21 = per_pixel(keras, tf, INPUT, 21, argmax=True, seed=1)
    anywhere21 = per_pixel(keras, tf, None, 21, seed=1)
    anywhere21.set_weights(argmax21.get_weights())
    return {
        "float": save("float", fixed),
        "uint8": save("uint8", fixed, input=tf.uint8),
        "int8": save("int8", fixed, input=tf.int8),
        "argmax": save("argmax", argmax21),
        "background": save("background", background),
        "reference20": lambda x: np.asarray(anywhere20(_normalized(x)[None]))[0],
        "dynamic": save("dynamic", anywhere),
        "two_outputs": save("two", keras.Model(fixed.input, [fixed.output, fixed.output])),
        "coarse": save("coarse", coarse),
        "coarse_argmax": save(
            "coarse_argmax", keras.Sequential([coarse, keras.layers.Lambda(lambda t: tf.argmax(t, -1))])
        ),
        "coarse_reference": lambda x: coarse(_normalized(x)[None]),
        "seven": save("seven", per_pixel(keras, tf, INPUT, 7)),
        "reference": lambda x: np.asarray(anywhere(_normalized(x)[None]))[0],
        "reference21": lambda x: np.asarray(anywhere21(_normalized(x)[None]))[0],
    }


def _normalized(image: np.ndarray) -> np.ndarray:
    return ((image.astype(np.float32) - np.float32(127.5)) / np.float32(63.75)).astype(np.float32)


def _frame(height: int, width: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)


@pytest.mark.parametrize("size", [(50, 77), (24, 32), (10, 13), (30, 20)])
def test_slid_windows_give_the_logits_of_the_whole_frame(tiny, size):
    model = open_litert(tiny["float"], input_spec=SPEC)
    frame = _frame(*size)
    train_ids, logits = model.frame_outputs(frame)
    expected = tiny["reference"](frame)
    assert logits.shape == (*size, 19) and logits.dtype == np.float32
    np.testing.assert_allclose(logits, expected, rtol=1e-5, atol=1e-5)
    assert train_ids.dtype == np.uint8
    np.testing.assert_array_equal(train_ids, np.argmax(expected, axis=-1))


def test_coarse_outputs_are_resized_to_the_window_as_tensorflow_resizes(tiny):
    """Logits at half resolution come back bilinearly (half-pixel centres), an arg-max by nearest pixel."""
    import tensorflow as tf

    frame = _frame(*INPUT, seed=4)
    coarse = tiny["coarse_reference"](frame)
    train_ids, logits = open_litert(tiny["coarse"], input_spec=SPEC).frame_outputs(frame)
    expected = tf.image.resize(coarse, INPUT, method="bilinear")[0].numpy()
    np.testing.assert_allclose(logits, expected, rtol=1e-5, atol=1e-5)
    nearest = tf.image.resize(tf.argmax(coarse, -1)[..., None], INPUT, method="nearest")[0, ..., 0]
    labels, none = open_litert(tiny["coarse_argmax"], input_spec=SPEC).frame_outputs(frame)
    assert none is None
    np.testing.assert_array_equal(labels, nearest.numpy())


def test_metadata_says_runtime_input_and_output(tiny):
    meta = open_litert(tiny["float"], input_spec=SPEC, threads=1).metadata
    assert meta["runtime"] == "litert" and meta["runtime_version"]
    assert (meta["input_size"], meta["input_dtype"], meta["input_quantization"]) == ("24x32", "float32", None)
    assert meta["input_recipe"] == SPEC.to_dict()
    assert (meta["output"], meta["label_space"], meta["stride"], meta["threads"]) == (
        "logits",
        "train IDs 0-18",
        "16x22",
        1,
    )


@pytest.mark.parametrize("kind", ["uint8", "int8"])
def test_quantised_input_and_output_follow_the_models_scale_and_zero_point(tiny, kind):
    model = open_litert(tiny[kind], input_spec=SPEC)
    assert model.input_dtype == np.dtype(kind) and model.input_quantization is not None
    assert model.output_quantization is not None and model.output_kind == "logits"
    frame = _frame(40, 50, seed=2)
    train_ids, logits = model.frame_outputs(frame)
    expected = tiny["reference"](frame)
    # int8 weights and activations: a few output steps of error, never a wrong scale or offset
    assert np.abs(logits - expected).max() < 3 * model.output_quantization[0]  # measured 1.5
    assert (train_ids == np.argmax(expected, axis=-1)).mean() > 0.97  # measured 0.99


def test_quantised_input_without_a_recipe_gets_the_pixel_bytes(tiny):
    """No InputSpec: uint8 inputs read the pixels as they are, int8 inputs the pixels - 128."""
    frame = _frame(4, 5)
    assert np.array_equal(open_litert(tiny["uint8"]).model_input(frame), frame)
    shifted = open_litert(tiny["int8"]).model_input(frame)
    assert shifted.dtype == np.int8 and np.array_equal(shifted.astype(int), frame.astype(int) - 128)


def test_frames_may_come_as_pixel_values_of_any_dtype_and_with_another_stride(tiny):
    """What a decoder without normalisation hands on (float32 0..255) gives what the uint8 frame gives."""
    model = open_litert(tiny["argmax"], input_spec=SPEC)
    frame = _frame(50, 77, seed=6)
    expected = model.frame_outputs(frame)[0]
    np.testing.assert_array_equal(model.frame_outputs(frame.astype(np.float32))[0], expected)
    np.testing.assert_array_equal(model.frame_outputs(frame, stride=(24, 32))[0], expected)  # per-pixel model
    np.testing.assert_array_equal(model.frame_outputs(frame + np.float32(0.4))[0], expected)  # rounded
    with pytest.raises(UserError, match="not pixel values 0..255"):
        model.frame_outputs(frame.astype(np.float32) - 128)  # a normalised frame
    with pytest.raises(UserError, match="must be positive"):
        model.frame_outputs(frame, stride=(0, 5))


def test_argmax_output_is_detected_and_values_past_the_train_ids_become_void(tiny):
    model = open_litert(tiny["argmax"], input_spec=SPEC)
    assert model.metadata["output"] == "argmax"
    frame = _frame(50, 77, seed=3)
    train_ids, logits = model.frame_outputs(frame)
    assert logits is None
    expected = np.argmax(tiny["reference21"](frame), axis=-1)
    assert {19, 20} & set(np.unique(expected))  # the case is exercised
    np.testing.assert_array_equal(train_ids, np.where(expected < 19, expected, 255))


def test_a_20th_background_channel_is_left_out_of_the_arg_max(tiny):
    """ESPNet-style models: channels 0-18 are the train IDs, 19 a background class cityscapesScripts
    would count as a miss; the arg-max is over the train IDs and the logits handed on are theirs."""
    model = open_litert(tiny["background"], input_spec=SPEC)
    assert "background" in model.metadata["label_space"]
    frame = _frame(50, 77, seed=5)
    train_ids, logits = model.frame_outputs(frame)
    expected = tiny["reference20"](frame)
    assert (np.argmax(expected, axis=-1) == 19).any()  # the case is exercised
    np.testing.assert_allclose(logits, expected[..., :19], rtol=1e-5, atol=1e-5)
    np.testing.assert_array_equal(train_ids, np.argmax(expected[..., :19], axis=-1))


def test_dynamic_input_size_runs_the_whole_frame(tiny):
    model = open_litert(tiny["dynamic"], input_spec=SPEC)
    assert model.input_size is None and model.metadata["input_size"] == "dynamic"
    for size in ((37, 61), (20, 24)):  # a second size re-allocates the interpreter
        frame = _frame(*size)
        logits = model.frame_outputs(frame)[1]
        np.testing.assert_allclose(logits, tiny["reference"](frame), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize(
    "length, window, stride", [(50, 24, 16), (77, 32, 22), (1024, 513, 343), (2048, 513, 513), (10, 24, 16)]
)
def test_each_pixel_takes_the_covering_window_with_the_nearest_centre(length, window, stride):
    from models.inference_modes import slide_windows

    windows = slide_windows(length, window, stride)
    chosen = _nearest_centre(length, [s for s, _ in windows], window)
    centres = np.array([(s + e - 1) / 2 for s, e in windows])
    for position, index in enumerate(chosen):
        start, end = windows[index]
        assert start <= position < end
        assert abs(position - centres[index]) == np.abs(position - centres).min()


def test_unusable_files_are_clear_errors(tiny, tmp_path):
    not_model = tmp_path / "notes.tflite"
    not_model.write_text("hello, not a flatbuffer")
    truncated = tmp_path / "half.tflite"
    truncated.write_bytes(tiny["float"].read_bytes()[: tiny["float"].stat().st_size // 2])
    assert not is_litert(not_model) and is_litert(tiny["float"])
    cases = {
        tmp_path / "missing.tflite": "does not exist",
        not_model: "not a LiteRT",
        truncated: "cannot load",
        tiny["two_outputs"]: "2 output",
        tiny["seven"]: "cannot be mapped",
    }
    for path, message in cases.items():
        with pytest.raises(UserError, match=message):
            LiteRTModel(path)


def test_shared_deeplab_predicts_the_real_frame():
    """The int8 TF DeepLab EdgeTPU-slim on the real 1024x2048 frame: read as uint8 513x513 arg-max of train
    IDs, windows placed where their raw outputs say, and close to the frame's real ground truth."""
    from PIL import Image

    from bench.evaluation.png import read_png
    from data.labels import to_train_ids

    path = shared_file(DEEPLAB, DEEPLAB_URL)
    frame = read_png(shared_file(FRAME, "copy the real-frame fixture into ../shared/fixtures/"))
    model = open_litert(path)
    meta = model.metadata
    assert (meta["input_size"], meta["input_dtype"], meta["output"]) == ("513x513", "uint8", "argmax")
    assert meta["input_quantization"] == "scale 0.0078125, zero point 128"  # (x - 128) / 128
    train_ids, logits = model.frame_outputs(frame)
    assert logits is None and train_ids.shape == (1024, 2048) and train_ids.max() <= 18
    # the top-left pixels are nearest to the first window's centre: its raw output, unchanged
    first = model.invoke(np.ascontiguousarray(frame[None, :513, :513]))
    np.testing.assert_array_equal(train_ids[:256, :256], first[:256, :256])
    # the same frame's ground truth (8x smaller, cityscapes-sample): most valid pixels right
    gt = to_train_ids(read_png(shared_file(SAMPLE_GT, "copy the cityscapes-sample fixture into ../shared/")))
    small = np.asarray(Image.fromarray(train_ids).resize(gt.shape[::-1], Image.NEAREST))
    valid = gt != 255
    assert (small[valid] == gt[valid]).mean() > 0.95  # measured 0.971


def test_predicting_with_litert_leaves_tensorflow_unimported(tiny):
    code = (
        "import sys\nimport numpy as np\nfrom bench.sources.litert_runtime import open_litert\n"
        f"model = open_litert({str(tiny['float'])!r})\n"
        "model.frame_outputs(np.zeros((30, 40, 3), np.uint8)); model.metadata\n"
        "print('tensorflow' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip().splitlines()[-1] == "False"


def test_stride_reaches_the_windows_a_litert_model_slides_itself(tiny):
    """`--stride` in `--mode whole` is the step of the model's own windows; the coarse model's outputs
    depend on where its windows lie, so a stride that did not arrive would give the default's numbers."""
    from bench.inference.loop import frame_predictor
    from bench.sources.opener import open_checkpoint
    from models.inference_modes import InferenceSettings

    frame = _frame(50, 77, seed=8)
    opened = open_checkpoint(str(tiny["coarse"]))
    image = frame.astype(np.float32)[None]
    own = LiteRTModel(tiny["coarse"])
    _, default = frame_predictor(opened)(image)
    _, strided = frame_predictor(opened, InferenceSettings(stride=(9, 11)))(image)
    np.testing.assert_array_equal(default, own.frame_outputs(frame)[1])
    np.testing.assert_array_equal(strided, own.frame_outputs(frame, stride=(9, 11))[1])
    assert not np.array_equal(strided, default)


def test_stride_without_windows_to_step_is_refused(tiny):
    from bench.inference.loop import frame_predictor
    from bench.sources.opener import open_checkpoint
    from models.inference_modes import InferenceSettings

    with pytest.raises(UserError, match=r"--stride 9x11 applies to --mode slide"):
        frame_predictor(open_checkpoint(str(tiny["dynamic"])), InferenceSettings(stride=(9, 11)))
