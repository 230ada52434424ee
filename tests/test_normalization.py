"""keras_resnet.normalization: the one reading of `preprocessing` and of training-set statistics."""

import numpy as np
import pytest
import tensorflow as tf

from keras_resnet import data, normalization


def test_caffe_normalisation_matches_keras_applications_preprocess_input():
    import keras

    images = np.random.default_rng(0).uniform(0, 255, (2, 5, 4, 3)).astype(np.float32)
    reference = keras.applications.resnet.preprocess_input(images.copy())
    mean, std, reverse = normalization.preprocessing_constants("caffe", (5, 4))
    np.testing.assert_allclose(normalization.standardize(images, mean, std, reverse), reference, atol=1e-4)
    normalize = data.normalizer(data.IMAGENET_MEAN, channel_order="bgr")
    np.testing.assert_allclose(normalize(tf.constant(images)).numpy(), reference, atol=1e-4)
    tf_mode = keras.applications.resnet_v2.preprocess_input(images.copy())
    np.testing.assert_allclose(
        normalization.standardize(images, *normalization.preprocessing_constants("tf", (5, 4))), tf_mode, atol=1e-6
    )


def test_one_normalisation_serves_tf_data_keras_models_and_the_on_device_augmentation():
    import keras

    from keras_resnet.data import augment

    rng = np.random.default_rng(1)
    images = rng.integers(0, 256, (3, 8, 8, 3)).astype(np.float32)
    pixel_mean = rng.uniform(0, 255, (8, 8, 3)).astype(np.float32)
    expected = (images - pixel_mean) / 255.0
    in_tf_data = tf.data.Dataset.from_tensors(images).map(data.normalizer(pixel_mean, 255.0)).get_single_element()
    np.testing.assert_allclose(in_tf_data, expected, atol=1e-6)
    inputs = keras.Input((8, 8, 3))
    model = keras.Model(
        inputs, normalization.standardize(inputs, *normalization.normalization_constants(pixel_mean, 255.0))
    )
    np.testing.assert_allclose(model.predict(images, verbose=0), expected, atol=1e-6)
    layer = augment.Augmentation("cifar", image_size=8, mean=pixel_mean, std=255.0)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(layer(images, training=False)), expected, atol=1e-6)


@pytest.mark.parametrize(
    "arguments, message",
    [
        ({"mean": (1.0, 2.0)}, r"mean must have shape \(3,\) or \(height, width, 3\); received shape \(2,\)"),
        ({"mean": (1.0, 2.0, 3.0), "std": (1.0, 2.0)}, r"std must broadcast to the mean's shape \(3,\)"),
        ({"mean": (1.0, 2.0, 3.0), "std": (1.0, 0.0, 1.0)}, r"std must be positive; received \(1.0, 0.0, 1.0\)"),
        (
            {"mean": (1.0, 2.0, 3.0), "channel_order": "grb"},
            "channel_order must be one of 'rgb', 'bgr'; received 'grb'",
        ),
        (
            {"mean": np.zeros((4, 4, 3)), "image_size": (8, 8)},
            r"mean must have shape \(3,\) or \(8, 8, 3\) \(per pixel at the image size\); received shape \(4, 4, 3\)",
        ),
    ],
)
def test_normalisation_constants_refuse_what_cannot_normalise(arguments, message):
    with pytest.raises(ValueError, match=message):
        normalization.normalization_constants(**arguments)


def test_pixel_statistics_of_batches_match_numpy_and_check_their_shape():
    images = np.random.default_rng(3).integers(0, 256, (10, 4, 5, 3)).astype(np.uint8)
    statistics = normalization.pixel_statistics([(images[:3], None), images[3:]], image_size=(4, 5))
    pixels = images.reshape(-1, 3).astype(np.float64)
    np.testing.assert_allclose(statistics["pixel_mean"], images.mean(axis=0), rtol=1e-6)
    np.testing.assert_allclose(statistics["channel_mean"], pixels.mean(axis=0), rtol=1e-6)
    np.testing.assert_allclose(statistics["channel_std"], pixels.std(axis=0), rtol=1e-5)
    assert normalization.pixel_statistics([]) is None
    message = r"images must be batches of shape \(count, height, width, 3\); received \(10, 4, 5, 3\)"
    with pytest.raises(ValueError, match=message):
        normalization.pixel_statistics([images], image_size=(5, 4))
