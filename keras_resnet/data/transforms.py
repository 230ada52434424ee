"""Resizing, centre cropping and AlexNet's lighting noise, shared by the pipelines, evaluation and export; they run
on TensorFlow tensors whatever the Keras backend."""

from __future__ import annotations

from typing import Any

import numpy as np

from keras_resnet._validation import check_int as _check_int
from keras_resnet._validation import is_int
from keras_resnet.imagenet import LIGHTING_EIGENVALUES, LIGHTING_EIGENVECTORS


def _check_size(name, value):
    _check_int(name, value)
    return int(value)


def resize(images: Any, size: Any) -> Any:
    """Resizes an image `(height, width, channels)` or a batch to `size` `(new_height, new_width)` (bilinear).

    Antialiased only when a side shrinks (it changes nothing when enlarging). Returns a float32 tensor.
    """
    import tensorflow as tf

    new_shape = tf.cast(tf.stack(size), tf.int32)
    shape = tf.shape(images)[-3:-1]
    return tf.cond(
        tf.reduce_any(new_shape < shape),
        lambda: tf.image.resize(images, new_shape, antialias=True),
        lambda: tf.image.resize(images, new_shape),
    )


def resize_shorter_side(image: Any, size: Any) -> Any:
    """Resizes an image so that its shorter side is `size` pixels, keeping its aspect ratio (`resize`).

    Args:
        image: tensor `(height, width, channels)`, any real dtype.
        size: positive int or int32 scalar tensor; the longer side becomes `round(longer * size / shorter)`.

    Returns a float32 tensor.

    Example:

    >>> resize_shorter_side(np.zeros((375, 500, 3)), 256).shape
    TensorShape([256, 341, 3])
    """
    import tensorflow as tf

    if not tf.is_tensor(size):
        size = _check_size("size", size)
    shape = tf.cast(tf.shape(image)[:2], tf.float32)
    scale = tf.cast(size, tf.float32) / tf.reduce_min(shape)
    return resize(image, tf.unstack(tf.cast(tf.round(shape * scale), tf.int32)))


def center_crop(image: Any, size: Any) -> Any:
    """Crops the central `size` square (or `(height, width)` rectangle) of an image or a batch, keeping its dtype.

    The crop starts at row `(height - crop height) // 2` and column `(width - crop width) // 2`.

    Args:
        image: tensor `(height, width, channels)` or `(batch, height, width, channels)`.
        size: positive int, or `(height, width)` of ints or int32 scalar tensors; at most the image's sides.

    Example:

    >>> center_crop(np.zeros((256, 341, 3), np.uint8), 224).shape
    TensorShape([224, 224, 3])
    """
    import tensorflow as tf

    square = not isinstance(size, (tuple, list))
    sizes = (size, size) if square else tuple(size)
    sizes = tuple(side if tf.is_tensor(side) else _check_size("size", side) for side in sizes)
    shape = tf.TensorShape(image.shape if hasattr(image, "shape") else np.shape(image))
    known = tuple(shape[-3:-1]) if shape.rank else (None, None)
    too_large = [not tf.is_tensor(side) and limit is not None and side > limit for side, limit in zip(sizes, known)]
    if any(too_large):
        limit = (
            f"the image's shorter side ({min(s for s in known if s is not None)})"
            if square
            else (f"the image's (height, width) {known}")
        )
        raise ValueError(f"size must be at most {limit} for an image of shape {tuple(shape)}; received {size!r}")
    height, width = sizes
    dynamic = tf.shape(image)
    return tf.image.crop_to_bounding_box(image, (dynamic[-3] - height) // 2, (dynamic[-2] - width) // 2, height, width)


def check_scales(size_name: str, size: int, scale_range: Any = None, resize_size: int | None = None) -> None:
    """Checks an ImageNet-style augmentation's sizes: `size <= min <= max` of `scale_range`, `resize_size >= size`."""
    _check_int(size_name, size)
    if scale_range is not None and not (
        isinstance(scale_range, (tuple, list))
        and len(scale_range) == 2
        and all(map(is_int, scale_range))
        and size <= scale_range[0] <= scale_range[1]
    ):
        raise ValueError(
            f"scale_range must be (min, max) integers with {size_name} ({size}) <= min <= max; received {scale_range!r}"
        )
    if resize_size is not None:
        _check_int("resize_size", resize_size, size, context=f" ({size_name})")


def _lighting(image, std, seed):
    """Adds AlexNet's PCA lighting noise: one random RGB shift along the ImageNet colour eigenvectors."""
    import tensorflow as tf

    alpha = tf.random.stateless_normal([3], seed, stddev=std)
    shift = tf.linalg.matvec(tf.constant(LIGHTING_EIGENVECTORS), alpha * tf.constant(LIGHTING_EIGENVALUES))
    return image + 255.0 * shift
