"""keras_resnet.data.transforms: resizing and centre cropping, shared by the pipelines, evaluation and export."""

import numpy as np
import pytest
import tensorflow as tf

from keras_resnet import data
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
