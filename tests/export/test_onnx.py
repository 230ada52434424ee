"""Tests of keras_resnet.export.onnx: ONNX files run by ONNX Runtime."""

import os
import re
import textwrap

import keras
import numpy as np
import pytest

pytest.importorskip("tensorflow")
pytest.importorskip(
    "tf2onnx", reason="tf2onnx (Keras' ONNX converter on TensorFlow) is not installed: pip install -e '.[test]'"
)
onnx = pytest.importorskip("onnx")
onnxruntime = pytest.importorskip("onnxruntime", reason="onnxruntime is not installed: pip install -e '.[test]'")

from export_helpers import NO_TENSORFLOW, TOLERANCE, classifier, reference, run_consumer, uint8_images  # noqa: E402

import keras_resnet as kr  # noqa: E402

PIXEL_MEAN = uint8_images((32, 32, 3), seed=30).astype(np.float32)


@pytest.fixture(scope="module")
def model():
    return classifier()


@pytest.fixture(scope="module")
def exported(model, tmp_path_factory):
    path = tmp_path_factory.mktemp("onnx") / "resnet20.onnx"
    kr.export.export(model, path, format="onnx", preprocessing="caffe")
    return path


@pytest.mark.parametrize("batch", [1, 5])
def test_onnx_runtime_runs_uint8_images_of_any_batch_like_keras(model, exported, batch):
    session = onnxruntime.InferenceSession(str(exported), providers=["CPUExecutionProvider"])
    (source,), (target,) = session.get_inputs(), session.get_outputs()
    assert (source.name, source.type, source.shape[1:]) == ("images", "tensor(uint8)", [32, 32, 3])
    assert isinstance(source.shape[0], str), "the batch dimension must be dynamic"
    assert (target.name, target.type) == ("probabilities", "tensor(float)")
    images = uint8_images((batch, 32, 32, 3), seed=batch)
    outputs = session.run(None, {"images": images})[0]
    np.testing.assert_allclose(outputs, reference(model, images, mode="caffe"), atol=TOLERANCE)


def test_the_file_declares_opset_17_or_later_and_passes_the_onnx_checker(exported):
    graph = onnx.load(str(exported))
    onnx.checker.check_model(graph, full_check=True)
    assert {entry.domain: entry.version for entry in graph.opset_import}[""] >= 17


def test_per_pixel_mean_and_logits_are_served_as_probabilities(model, tmp_path):
    logits_model = kr.ResNet20(input_shape=(32, 32, 3), classes=10, classifier_activation=None)
    logits_model.set_weights(model.get_weights())
    kr.export.export(
        logits_model,
        tmp_path / "model.onnx",
        format="onnx",
        from_logits=True,
        opset=18,
        preprocessing={"mean": PIXEL_MEAN, "std": 255.0},
    )
    images = uint8_images((3, 32, 32, 3), seed=31)
    session = onnxruntime.InferenceSession(str(tmp_path / "model.onnx"), providers=["CPUExecutionProvider"])
    expected = model.predict((images - PIXEL_MEAN) / 255.0, verbose=0)
    np.testing.assert_allclose(session.run(None, {"images": images})[0], expected, atol=TOLERANCE)


@pytest.mark.parametrize("policy", ["mixed_bfloat16", "mixed_float16"])
def test_a_mixed_precision_model_is_exported_computing_in_float32(model, tmp_path, policy):
    previous = keras.config.dtype_policy()
    keras.mixed_precision.set_global_policy(policy)
    try:
        mixed = kr.ResNet20(input_shape=(32, 32, 3), classes=10)
    finally:
        keras.mixed_precision.set_global_policy(previous)
    mixed.set_weights(model.get_weights())
    kr.export.export(mixed, tmp_path / "model.onnx", preprocessing="caffe")
    assert mixed.get_layer("conv1_conv").compute_dtype != "float32", "the exported model itself is left as it was"
    session = onnxruntime.InferenceSession(str(tmp_path / "model.onnx"), providers=["CPUExecutionProvider"])
    images = uint8_images((2, 32, 32, 3), seed=32)
    np.testing.assert_allclose(
        session.run(None, {"images": images})[0], reference(model, images, mode="caffe"), atol=TOLERANCE
    )


@pytest.mark.parametrize("opset", [13, "17", True])
def test_an_opset_before_17_is_refused(tmp_path, opset):
    with pytest.raises(ValueError, match=re.escape(f"opset must be an integer of at least 17; received {opset!r}")):
        tiny = kr.ResNet(
            {"block": "basic", "depths": (1,), "widths": (4,), "stem": "cifar"}, classes=3, input_shape=(8, 8, 3)
        )
        kr.export.export(tiny, tmp_path / "model.onnx", format="onnx", opset=opset)
    assert os.listdir(tmp_path) == []


CONSUMER = NO_TENSORFLOW + textwrap.dedent(
    """
    import numpy as np
    import onnxruntime

    path, work = sys.argv[1:]
    session = onnxruntime.InferenceSession(path, providers=["CPUExecutionProvider"])
    np.save(f"{work}/outputs.npy", session.run(["probabilities"], {"images": np.load(f"{work}/images.npy")})[0])
    """
)


def test_a_consumer_without_tensorflow_or_keras_resnet_runs_the_file(model, exported, tmp_path):
    images = uint8_images((3, 32, 32, 3), seed=32)
    np.save(tmp_path / "images.npy", images)
    run_consumer(CONSUMER, exported, tmp_path, cwd=tmp_path)
    np.testing.assert_allclose(
        np.load(tmp_path / "outputs.npy"), reference(model, images, mode="caffe"), atol=TOLERANCE
    )
