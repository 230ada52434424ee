"""In-model preprocessing: raw images in, the same numbers as the reference preprocessing out."""

import doctest
import re

import keras
import numpy as np
import pytest

import keras_resnet as kr
from keras_resnet.export import cifar_preprocessing
from keras_resnet.models import layers, preprocessing

RESNET8 = {"block": "basic", "depths": (1, 1, 1), "widths": (8, 16, 32), "stem": "cifar", "shortcut": "A"}
TINY_IMAGENET = {"block": "basic", "depths": (1, 1, 1, 1), "widths": (8, 8, 16, 16)}


def _raw(count, height, width, seed=0):
    return np.random.default_rng(seed).integers(0, 256, size=(count, height, width, 3)).astype("uint8")


def _twin(kwargs, **preprocessing_kwargs):
    """The same network without and with in-model preprocessing, sharing weights."""
    plain = kr.ResNet(include_top=False, **kwargs)
    inside = kr.ResNet(include_top=False, include_preprocessing=True, **kwargs, **preprocessing_kwargs)
    inside.set_weights(plain.get_weights())
    return plain, inside


def test_module_docstring_examples_run():
    for module in (preprocessing, layers):
        assert doctest.testmod(module).failed == 0


@pytest.mark.parametrize(
    "preact, reference", [(False, keras.applications.resnet), (True, keras.applications.resnet_v2)]
)
def test_imagenet_defaults_match_keras_applications_preprocess_input(preact, reference):
    plain, inside = _twin(dict(architecture=TINY_IMAGENET, preact=preact, input_shape=(64, 64, 3)))
    x = _raw(2, 64, 64)
    expected = plain.predict(reference.preprocess_input(x.astype("float32")), verbose=0)
    np.testing.assert_allclose(inside.predict(x, verbose=0), expected, rtol=1e-4, atol=1e-4)
    # float 0-255 images are the same input as uint8 ones.
    np.testing.assert_allclose(inside.predict(x.astype("float32"), verbose=0), expected, rtol=1e-4, atol=1e-4)


def test_any_image_size_is_centre_cropped_and_resized_like_keras_resizing():
    plain, inside = _twin(dict(architecture=TINY_IMAGENET, input_shape=(64, 64, 3)))
    assert inside.input_shape == (None, None, None, 3)
    wide = _raw(2, 80, 120).astype("float32")
    resized = keras.layers.Resizing(64, 64, crop_to_aspect_ratio=True)(wide)
    expected = plain.predict(keras.applications.resnet.preprocess_input(np.array(resized)), verbose=0)
    np.testing.assert_allclose(inside.predict(wide, verbose=0), expected, rtol=1e-4, atol=1e-4)


def test_cifar_statistics_adapted_from_images_subtract_the_per_pixel_mean():
    images = _raw(16, 32, 32, seed=1)
    plain, inside = _twin(dict(architecture=RESNET8, input_shape=(32, 32, 3)), preprocessing=images)
    x = _raw(2, 32, 32, seed=2)
    pixel_mean = images.astype("float64").mean(axis=0)
    expected = plain.predict(((x - pixel_mean) / 255.0).astype("float32"), verbose=0)
    np.testing.assert_allclose(inside.predict(x, verbose=0), expected, rtol=1e-4, atol=1e-4)
    # Batches (an iterable, e.g. a tf.data.Dataset of (images, labels)) give the same statistics.
    batches = [(images[:8], np.zeros(8)), (images[8:], np.zeros(8))]
    _, from_batches = _twin(dict(architecture=RESNET8, input_shape=(32, 32, 3)), preprocessing=batches)
    from_batches.set_weights(inside.get_weights())
    np.testing.assert_allclose(from_batches.predict(x, verbose=0), inside.predict(x, verbose=0), rtol=1e-5)


def test_cifar_per_channel_statistics_and_the_default_scale():
    statistics = {"channel_mean": np.array([125.3, 123.0, 113.9]), "channel_std": np.array([63.0, 62.1, 66.7])}
    plain, inside = _twin(
        dict(architecture=RESNET8, input_shape=(32, 32, 3)), preprocessing=cifar_preprocessing(statistics, "channel")
    )
    x = _raw(2, 32, 32)
    expected = plain.predict(
        ((x - statistics["channel_mean"]) / statistics["channel_std"]).astype("float32"), verbose=0
    )
    np.testing.assert_allclose(inside.predict(x, verbose=0), expected, rtol=1e-4, atol=1e-4)
    plain, default = _twin(dict(architecture=RESNET8, input_shape=(32, 32, 3)))
    expected = plain.predict((x / 255.0).astype("float32"), verbose=0)
    np.testing.assert_allclose(default.predict(x, verbose=0), expected, rtol=1e-4, atol=1e-4)


def check_channels_first_preprocessing_matches_channels_last():
    x = _raw(2, 32, 32)
    images = _raw(8, 32, 32, seed=3)
    keras.config.set_image_data_format("channels_last")
    last = kr.ResNet(RESNET8, input_shape=(32, 32, 3), include_preprocessing=True, preprocessing=images)
    keras.config.set_image_data_format("channels_first")
    first = kr.ResNet(RESNET8, input_shape=(3, 32, 32), include_preprocessing=True, preprocessing=images)
    assert first.input_shape == (None, 3, None, None)
    first.set_weights(last.get_weights())
    np.testing.assert_allclose(
        first.predict(x.transpose(0, 3, 1, 2), verbose=0), last.predict(x, verbose=0), rtol=1e-4, atol=1e-4
    )


def test_preprocessing_model_round_trips_through_a_keras_archive(tmp_path):
    model = kr.ResNet50(include_preprocessing=True, include_top=False, pooling="avg", input_shape=(64, 64, 3))
    model.save(tmp_path / "model.keras")
    loaded = keras.models.load_model(tmp_path / "model.keras")
    x = _raw(2, 70, 90)
    np.testing.assert_allclose(loaded.predict(x, verbose=0), model.predict(x, verbose=0), rtol=1e-5, atol=1e-5)
    assert [layer.name for layer in loaded.layers][:4] == [
        model.layers[0].name,
        "preprocessing_resize",
        "preprocessing_normalize",
        "preprocessing_bgr",
    ]


def test_reverse_channels_layer_serializes_and_handles_channels_first():
    layer = layers.ReverseChannels(data_format="channels_first", name="bgr")
    clone = layers.ReverseChannels.from_config(layer.get_config())
    x = np.arange(12, dtype="float32").reshape(1, 3, 2, 2)
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(clone(x)), x[:, ::-1])


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(include_preprocessing="yes"), "include_preprocessing must be one of True, False; received 'yes'"),
        (
            dict(preprocessing="caffe"),
            "preprocessing applies only with include_preprocessing=True; received preprocessing='caffe'",
        ),
        (
            dict(include_preprocessing=True, preprocessing="torch"),
            "preprocessing must be one of 'caffe', 'tf', None or a dict",
        ),
        (
            dict(include_preprocessing=True, preprocessing=np.zeros((4, 28, 28, 3))),
            "training images of shape (count, 32, 32, 3) to adapt from",
        ),
        (
            dict(include_preprocessing=True, preprocessing=np.zeros((0, 32, 32, 3))),
            "preprocessing images to adapt from must hold at least one image; received none",
        ),
        (
            dict(include_preprocessing=True, preprocessing={"mean": [1.0, 2.0]}),
            "preprocessing['mean'] must have shape (3,) or (32, 32, 3)",
        ),
    ],
)
def test_bad_preprocessing_arguments_name_argument_value_and_allowed(kwargs, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        kr.ResNet20(**kwargs)


@pytest.mark.parametrize("include_preprocessing", [False, True])
def test_exported_savedmodel_and_litert_compute_what_the_model_computes(include_preprocessing, tmp_path):
    tf = pytest.importorskip("tensorflow")
    model = kr.ResNet(
        TINY_IMAGENET,
        input_shape=(64, 64, 3),
        classes=5,
        classifier_activation=None,
        include_preprocessing=include_preprocessing,
    )
    shape = (2, 80, 70, 3) if include_preprocessing else (2, 64, 64, 3)
    x = np.random.default_rng(0).integers(0, 256, shape).astype("float32")
    expected = model.predict(x, verbose=0)
    model.export(
        tmp_path / "saved",
        format="tf_saved_model",
        verbose=False,
        input_signature=[keras.InputSpec(shape=shape, dtype="float32")],
    )
    saved = tf.saved_model.load(str(tmp_path / "saved"))
    np.testing.assert_allclose(np.asarray(saved.serve(x)), expected, rtol=1e-4, atol=1e-4)
    litert = pytest.importorskip("ai_edge_litert.interpreter")
    interpreter = litert.Interpreter(
        model_content=tf.lite.TFLiteConverter.from_saved_model(str(tmp_path / "saved")).convert()
    )
    interpreter.allocate_tensors()
    interpreter.set_tensor(interpreter.get_input_details()[0]["index"], x)
    interpreter.invoke()
    actual = interpreter.get_tensor(interpreter.get_output_details()[0]["index"])
    np.testing.assert_allclose(actual, expected, rtol=1e-4, atol=1e-4)
