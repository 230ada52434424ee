"""keras_resnet.data.transforms: normalising, resizing and centre cropping, shared by pipelines and export."""

import numpy as np
import pytest
import tensorflow as tf

from keras_resnet import data, normalization
from keras_resnet.data import transforms


def test_resize_shorter_side_and_centre_crop_shapes():
    assert data.resize_shorter_side(tf.zeros((375, 500, 3)), 256).shape == (256, 341, 3)
    assert data.resize_shorter_side(tf.zeros((500, 375, 3)), 480).shape == (640, 480, 3)
    assert data.center_crop(tf.zeros((256, 341, 3)), 224).shape == (224, 224, 3)
    assert data.center_crop(tf.zeros((8, 6, 3)), np.int64(6)).shape == (6, 6, 3)  # numpy integers are sizes too
    assert data.resize_shorter_side(tf.zeros((8, 6, 3)), tf.constant(3)).shape == (4, 3, 3)
    # Shrinking a checkerboard 3 times is antialiased to nearly flat grey (plain bilinear would alias it).
    checkerboard = (np.indices((48, 48)).sum(axis=0) % 2 * 255).astype(np.float32)[..., None]
    shrunk = data.resize_shorter_side(checkerboard, 16).numpy()
    assert shrunk.shape == (16, 16, 1) and shrunk[2:-2, 2:-2].std() < 10 and abs(shrunk.mean() - 127.5) < 5


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


def test_center_crop_takes_rectangles_and_batches_and_matches_slicing():
    batch = np.arange(2 * 7 * 10 * 3, dtype=np.float32).reshape(2, 7, 10, 3)
    np.testing.assert_array_equal(data.center_crop(tf.constant(batch), (3, 4)), batch[:, 2:5, 3:7])
    np.testing.assert_array_equal(data.center_crop(tf.constant(batch[0]), 5), batch[0, 1:6, 2:7])
    tensor_sides = (tf.constant(4), tf.constant(6))
    np.testing.assert_array_equal(data.center_crop(tf.constant(batch), tensor_sides), batch[:, 1:5, 2:8])
    with pytest.raises(ValueError, match=r"size must be at most the image's \(height, width\) \(7, 10\) .* \(8, 4\)"):
        data.center_crop(tf.constant(batch), (8, 4))


def test_resize_is_antialiased_bilinear_both_ways_and_keeps_an_image_of_that_size():
    image = tf.constant(np.random.default_rng(2).uniform(0, 255, (12, 9, 3)), tf.float32)
    for size in ((4, 3), (30, 20), (12, 4)):
        reference = tf.image.resize(image, size, antialias=True)
        np.testing.assert_allclose(transforms.resize(image, size), reference, atol=1e-3)
    np.testing.assert_array_equal(transforms.resize(image[None], (12, 9)), image[None].numpy())
