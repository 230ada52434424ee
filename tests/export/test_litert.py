"""Tests of keras_resnet.export.litert: float32 and int8 LiteRT files, run by the LiteRT interpreter."""

import os
import re
import textwrap

import numpy as np
import pytest

tf = pytest.importorskip("tensorflow")
interpreter_module = pytest.importorskip(
    "ai_edge_litert.interpreter",
    reason="ai-edge-litert (the LiteRT runtime) is not installed: pip install -e '.[test]'",
)

from export_helpers import NO_TENSORFLOW, TOLERANCE, classifier, reference, run_consumer, uint8_images  # noqa: E402

import keras_resnet as kr  # noqa: E402
from keras_resnet import data  # noqa: E402

# int8 calibration images: the library's own source type, as a training run would pass its training source.
CALIBRATION = uint8_images((64, 32, 32, 3), seed=20)


@pytest.fixture(scope="module")
def model():
    return classifier()


@pytest.fixture(scope="module")
def exported(model, tmp_path_factory):
    folder = tmp_path_factory.mktemp("litert")
    kr.export.export(model, folder / "float.tflite", format="litert", preprocessing="caffe")
    kr.export.export(
        model,
        folder / "int8.tflite",
        format="litert",
        preprocessing="caffe",
        quantization="int8",
        representative_data=data.array_source(CALIBRATION, np.zeros(64, np.int32)),
    )
    return folder


def run(path, images):
    """Runs a LiteRT file on a batch of uint8 images; returns its dequantized output and the interpreter."""
    interpreter = interpreter_module.Interpreter(str(path))
    source, target = interpreter.get_input_details()[0], interpreter.get_output_details()[0]
    interpreter.resize_tensor_input(source["index"], images.shape)
    interpreter.allocate_tensors()
    interpreter.set_tensor(source["index"], images)
    interpreter.invoke()
    scores = interpreter.get_tensor(target["index"])
    scale, zero_point = target["quantization"]
    return ((scores.astype(np.float32) - zero_point) * scale if scale else scores), interpreter


@pytest.mark.parametrize("batch", [1, 5])
def test_float_file_takes_uint8_images_of_any_batch_and_matches_keras(model, exported, batch):
    images = uint8_images((batch, 32, 32, 3), seed=batch)
    outputs, interpreter = run(exported / "float.tflite", images)
    source = interpreter.get_input_details()[0]
    assert source["dtype"] == np.uint8 and source["shape_signature"].tolist() == [-1, 32, 32, 3]
    assert interpreter.get_output_details()[0]["dtype"] == np.float32
    np.testing.assert_allclose(outputs, reference(model, images, mode="caffe"), atol=TOLERANCE)


def test_int8_file_is_full_integer_with_uint8_ends_and_close_to_float(model, exported):
    images = uint8_images((16, 32, 32, 3), seed=21)
    outputs, interpreter = run(exported / "int8.tflite", images)
    source, target = interpreter.get_input_details()[0], interpreter.get_output_details()[0]
    assert interpreter.get_signature_list() == {"serving_default": {"inputs": ["images"], "outputs": ["probabilities"]}}
    assert source["dtype"] == np.uint8 and target["dtype"] == np.uint8
    # 0-255 calibration pixels: the uint8 input is the pixel value itself (scale 1, zero point 0).
    assert source["quantization"] == (1.0, 0)
    floats = {detail["name"] for detail in interpreter.get_tensor_details() if detail["dtype"] == np.float32}
    assert not floats, f"float32 tensors left in the int8 file: {sorted(floats)[:5]}"
    expected = reference(model, images, mode="caffe")
    np.testing.assert_allclose(outputs, expected, atol=0.03)
    assert os.path.getsize(exported / "int8.tflite") < 0.4 * os.path.getsize(exported / "float.tflite")


def test_int8_calibrates_from_a_tf_data_pipeline_as_from_the_images_resized(model, tmp_path):
    """(images, labels) batches of 40x40 images calibrate as the same images resized to 32x32 one by one."""
    logits_model = kr.ResNet20(input_shape=(32, 32, 3), classes=10, classifier_activation=None)
    logits_model.set_weights(model.get_weights())
    large = uint8_images((24, 40, 40, 3), seed=22)
    resized = tf.image.resize(large.astype(np.float32), (32, 32), antialias=True).numpy()
    sources = {
        "pipeline": tf.data.Dataset.from_tensor_slices((large, np.zeros(24))).batch(8),
        "resized": list(np.clip(resized, 0, 255)),
    }
    images = uint8_images((8, 32, 32, 3), seed=23)
    outputs = {}
    for name, representative_data in sources.items():
        kr.export.export(
            logits_model,
            tmp_path / f"{name}.tflite",
            format="litert",
            preprocessing="tf",
            from_logits=True,
            quantization="int8",
            representative_data=representative_data,
        )
        outputs[name] = run(tmp_path / f"{name}.tflite", images)[0]
    np.testing.assert_array_equal(outputs["pipeline"], outputs["resized"])
    # The softmax is inside: probabilities, though the model outputs logits.
    np.testing.assert_allclose(outputs["pipeline"].sum(axis=1), 1.0, atol=0.05)


def test_int8_input_is_the_pixel_value_whatever_the_calibration_range(model, tmp_path):
    dark = CALIBRATION // 4  # pixels 0-63: calibrated alone, uint8 63 would mean pixel 255
    kr.export.export(
        model, tmp_path / "dark.tflite", preprocessing="caffe", quantization="int8", representative_data=list(dark)
    )
    outputs, interpreter = run(tmp_path / "dark.tflite", dark[:8])
    assert interpreter.get_input_details()[0]["quantization"] == (1.0, 0)
    np.testing.assert_allclose(outputs, reference(model, dark[:8], mode="caffe"), atol=0.05)


@pytest.mark.parametrize(
    "options, message",
    [
        ({"quantization": "int8"}, "representative_data must be given with quantization='int8'"),
        (
            {"representative_data": CALIBRATION},
            "representative_data goes with quantization='int8' only; received "
            "representative data with quantization=None",
        ),
        ({"quantization": "float16"}, "quantization must be one of None, 'int8'; received 'float16'"),
        (
            {"quantization": "int8", "representative_data": []},
            "representative_data must yield at least one image; received an empty collection",
        ),
        (
            {"quantization": "int8", "representative_data": [np.zeros((32, 32))]},
            "representative_data must yield RGB images (height, width, 3) or batches of them, alone or as "
            "(images, labels); received an element of shape (32, 32)",
        ),
        (
            {"quantization": "int8", "representative_data": [np.full((2, 32, 32, 3), -1.5, np.float32)]},
            "representative_data must hold RGB pixels in [0, 255] before preprocessing (e.g. the training source, "
            "not the normalised batches of its pipeline); received values in [-1.5, -1.5]",
        ),
        (
            {"quantization": "int8", "representative_data": [CALIBRATION[:4] / 255.0]},
            "representative_data must hold RGB pixels on the 0-255 scale, as served images are; received images "
            "whose largest value is 1 (scaled to [0, 1]? multiply them by 255)",
        ),
    ],
    ids=[
        "int8-without-data",
        "data-without-int8",
        "float16",
        "empty-data",
        "grey-data",
        "normalised-data",
        "unit-scale-data",
    ],
)
def test_bad_quantization_arguments_are_refused_and_nothing_is_written(tmp_path, options, message):
    tiny = kr.ResNet(
        {"block": "basic", "depths": (1,), "widths": (4,), "stem": "cifar"}, classes=3, input_shape=(32, 32, 3)
    )
    with pytest.raises(ValueError, match=re.escape(message)):
        kr.export.export(tiny, tmp_path / "model.tflite", format="litert", **options)
    assert os.listdir(tmp_path) == []


CONSUMER = NO_TENSORFLOW + textwrap.dedent(
    """
    import numpy as np
    from ai_edge_litert.interpreter import Interpreter

    path, work = sys.argv[1:]
    images = np.load(f"{work}/images.npy")
    interpreter = Interpreter(path)
    runner = interpreter.get_signature_runner()
    outputs = runner(images=images)["probabilities"]
    np.save(f"{work}/outputs.npy", outputs)
    print("tensorflow imported:", any(name.split(".")[0] == "tensorflow" and module
                                      for name, module in sys.modules.items()))
    """
)


def test_a_consumer_without_tensorflow_or_keras_resnet_runs_the_file(model, exported, tmp_path):
    images = uint8_images((3, 32, 32, 3), seed=24)
    np.save(tmp_path / "images.npy", images)
    output = run_consumer(CONSUMER, exported / "float.tflite", tmp_path, cwd=tmp_path)
    assert "tensorflow imported: False" in output
    np.testing.assert_allclose(
        np.load(tmp_path / "outputs.npy"), reference(model, images, mode="caffe"), atol=TOLERANCE
    )
