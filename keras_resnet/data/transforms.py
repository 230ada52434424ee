"""Image operations of the pipelines: normalising, resizing, centre cropping and AlexNet's lighting noise.

The one implementation of each, shared by the tf.data pipelines, evaluation, on-device augmentation and
export. The resizing and cropping ops run on TensorFlow tensors whatever the Keras backend (TensorFlow is
imported inside them); `standardize` is plain arithmetic and runs on any tensor.
"""

import numpy as np

from keras_resnet._validation import check_int as _check_int
from keras_resnet.imagenet import LIGHTING_EIGENVALUES, LIGHTING_EIGENVECTORS


def _check_size(name, value):
    """A positive integer size, numpy integers accepted, as a Python int."""
    _check_int(name, value)
    return int(value)


def resize(images, size):
    """Resizes an image or a batch to `size` (bilinear), antialiased when shrinking; unchanged at that size.

    Antialiasing only changes shrinking, and without it bilinear enlarging runs about 3 times faster, so it is
    applied only when a side shrinks.

    Args:
        images: tensor of shape `(height, width, channels)` or `(batch, height, width, channels)`.
        size: `(new_height, new_width)`, ints or int32 scalar tensors.

    Returns:
        A float32 tensor of the new size.

    Example:

    ```python
    keras_resnet.data.transforms.resize(tf.zeros((375, 500, 3)), (256, 341)).shape  # (256, 341, 3)
    ```
    """
    import tensorflow as tf

    new_shape = tf.cast(tf.stack(size), tf.int32)
    shape = tf.shape(images)[-3:-1]
    return tf.cond(
        tf.reduce_any(new_shape < shape),
        lambda: tf.image.resize(images, new_shape, antialias=True),
        lambda: tf.image.resize(images, new_shape),
    )


def resize_shorter_side(image, size):
    """Resizes an image so that its shorter side is `size` pixels, keeping its aspect ratio.

    The longer side becomes `round(longer * size / shorter)`. Bilinear resampling, antialiased when shrinking
    (`resize`); an image whose shorter side is already `size` comes back unchanged.

    Args:
        image: tensor of shape `(height, width, channels)`, any real dtype.
        size: positive int or int32 scalar tensor, the new length of the shorter side.

    Returns:
        A float32 tensor of shape `(new_height, new_width, channels)`.

    Raises:
        ValueError: `size` is not a positive integer (a bool, float, zero or negative).

    Example:

    ```python
    keras_resnet.data.resize_shorter_side(tf.zeros((375, 500, 3)), 256).shape  # (256, 341, 3)
    ```
    """
    import tensorflow as tf

    if not tf.is_tensor(size):  # a tensor's value is known only at run time
        size = _check_size("size", size)
    shape = tf.cast(tf.shape(image)[:2], tf.float32)
    scale = tf.cast(size, tf.float32) / tf.reduce_min(shape)
    return resize(image, tf.unstack(tf.cast(tf.round(shape * scale), tf.int32)))


def center_crop(image, size):
    """Crops the central `size` x `size` square (or `(height, width)` rectangle) of an image or a batch.

    The crop starts at row `(height - crop height) // 2` and column `(width - crop width) // 2`.

    Args:
        image: tensor of shape `(height, width, channels)` or `(batch, height, width, channels)`, both sides
            at least the crop's.
        size: positive int, or `(height, width)` of positive ints or int32 scalar tensors, the crop's size.

    Returns:
        A tensor of shape `(..., crop height, crop width, channels)`, same dtype as `image`.

    Raises:
        ValueError: a side is not a positive integer, or exceeds that side of an image whose shape is known.

    Example:

    ```python
    keras_resnet.data.center_crop(tf.zeros((256, 341, 3)), 224).shape  # (224, 224, 3)
    ```
    """
    import tensorflow as tf

    square = not isinstance(size, (tuple, list))
    sizes = (size, size) if square else tuple(size)
    # Sides given as tensors are known only at run time; the others are checked against the static shape.
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


def _lighting(image, std, seed):
    """Adds AlexNet's PCA lighting noise: one random RGB shift along the ImageNet colour eigenvectors."""
    import tensorflow as tf

    alpha = tf.random.stateless_normal([3], seed, stddev=std)
    shift = tf.linalg.matvec(tf.constant(LIGHTING_EIGENVECTORS), alpha * tf.constant(LIGHTING_EIGENVALUES))
    return image + 255.0 * shift
