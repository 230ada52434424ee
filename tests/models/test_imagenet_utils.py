import json
import re

import keras
import numpy as np
import pytest

import keras_resnet as kr
from keras_resnet import imagenet


@pytest.mark.parametrize("data_format", ["channels_last", "channels_first"])
def test_preprocess_input_matches_keras_applications(data_format):
    shape = (2, 5, 6, 3) if data_format == "channels_last" else (2, 3, 5, 6)
    x = np.random.default_rng(0).uniform(0, 255, shape).astype("float32")
    np.testing.assert_allclose(
        kr.preprocess_input(x, data_format=data_format),
        keras.applications.resnet.preprocess_input(x.copy(), data_format=data_format),
        rtol=1e-6,
    )
    np.testing.assert_allclose(
        kr.preprocess_input_v2(x, data_format=data_format),
        keras.applications.resnet_v2.preprocess_input(x.copy(), data_format=data_format),
        rtol=1e-6,
    )


@pytest.mark.parametrize("mode", ["caffe", "tf"])
def test_preprocess_input_leaves_its_input_alone(mode):
    # keras.applications works in place on float arrays; this library hands it a copy.
    x = np.random.default_rng(1).uniform(0, 255, (2, 4, 4, 3))
    original = x.copy()
    out = kr.preprocess_input(x, mode=mode)
    np.testing.assert_array_equal(x, original)
    assert out.dtype == np.float32


@pytest.mark.parametrize("mode", ["caffe", "tf"])
def test_preprocess_input_of_one_channels_first_image_tensor_matches_the_array(mode):
    image = np.random.default_rng(2).uniform(0, 255, (3, 5, 6)).astype("float32")
    tensor = kr.preprocess_input(keras.ops.convert_to_tensor(image), data_format="channels_first", mode=mode)
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(tensor),
        kr.preprocess_input(image, data_format="channels_first", mode=mode),
        rtol=1e-6,
    )
    assert tuple(tensor.shape) == (3, 5, 6)


def test_preprocess_input_works_on_tensors_inside_a_model():
    inputs = keras.Input((4, 4, 3))
    model = keras.Model(inputs, kr.preprocess_input(inputs))
    x = np.full((1, 4, 4, 3), 100.0, "float32")
    np.testing.assert_allclose(
        model.predict(x, verbose=0)[0, 0, 0], [100 - 103.939, 100 - 116.779, 100 - 123.68], rtol=1e-5
    )


def test_preprocess_input_rejects_unknown_mode():
    with pytest.raises(ValueError, match=re.escape("mode must be one of 'caffe', 'tf'; received 'torch'")):
        kr.preprocess_input(np.zeros((1, 2, 2, 3)), mode="torch")


def test_decode_predictions_uses_the_keras_class_index(tmp_path, monkeypatch):
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    (tmp_path / "models").mkdir()
    index = {str(i): [f"n{i:08d}", f"class_{i}"] for i in range(1000)}
    (tmp_path / "models" / "imagenet_class_index.json").write_text(json.dumps(index))
    preds = np.zeros((2, 1000), "float32")
    preds[0, [7, 3, 999]] = [0.5, 0.3, 0.2]
    preds[1, 42] = 1.0
    decoded = kr.decode_predictions(preds, top=3)
    assert [(c, n) for c, n, _ in decoded[0]] == [
        ("n00000007", "class_7"),
        ("n00000003", "class_3"),
        ("n00000999", "class_999"),
    ]
    assert decoded[0][0][2] == pytest.approx(0.5)
    assert decoded[1][0][:2] == ("n00000042", "class_42")


def test_decode_predictions_errors(tmp_path, monkeypatch):
    with pytest.raises(ValueError, match=re.escape("shape (samples, 1000); received shape (2, 10)")):
        kr.decode_predictions(np.zeros((2, 10)))
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    with pytest.raises(OSError, match="imagenet_class_index.json"):
        kr.decode_predictions(np.zeros((1, 1000)))


def test_the_imagenet_mean_is_the_one_keras_applications_subtracts():
    subtracted = -keras.applications.resnet.preprocess_input(np.zeros((1, 1, 1, 3), np.float32))[0, 0, 0]
    np.testing.assert_allclose(subtracted, imagenet.BGR_MEAN, atol=1e-4)
    assert imagenet.IMAGENET_MEAN[::-1] == imagenet.BGR_MEAN


def test_scaled_sizes_keep_the_papers_ratios():
    paper = imagenet.scaled_sizes(imagenet.CROP_SIZE)
    assert paper == (imagenet.SCALE_RANGE, imagenet.RESIZE_SIZE) == ((256, 480), 256)
    assert imagenet.scaled_sizes(112) == ((128, 240), 128)
    with pytest.raises(ValueError, match="image_size must be a positive integer; received 0"):
        imagenet.scaled_sizes(0)
