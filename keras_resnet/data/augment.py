"""On-device augmentation in `keras.ops`: the tf.data pipelines' crops and flips inside the compiled step.

A GPU trains a small ResNet faster than a few CPU cores crop CIFAR images. Every crop, resize and flip is one
bilinear resampling written as two batched matrix products (not antialiased), so it runs on any backend.
"""

from __future__ import annotations

from typing import Any

import keras
import numpy as np
from keras import ops

from keras_resnet._validation import check_choice as _check_choice
from keras_resnet._validation import check_int as _check_int
from keras_resnet._validation import check_positive_int as _check_positive
from keras_resnet.data.pipelines import AUGMENTATIONS
from keras_resnet.data.transforms import check_scales
from keras_resnet.imagenet import CROP_SIZE, RESIZE_SIZE, SCALE_RANGE
from keras_resnet.normalization import standardize

__all__ = ["Augmentation", "center_crop", "random_crop_flip", "random_scale_crop_flip"]


def _interpolation(coordinates, length, clamp):
    """Bilinear weights `(batch, out, length)` at `coordinates` `(batch, out)`: zeros outside unless `clamp`."""
    if clamp:
        coordinates = ops.clip(coordinates, 0.0, length - 1.0)
    positions = ops.arange(length, dtype="float32")
    return ops.relu(1.0 - ops.abs(positions[None, None, :] - coordinates[:, :, None]))


def _resample(images, rows, columns, *, clamp):
    """Output pixel `(b, i, j)` = the bilinear sample of image `b` at source `(rows[b, i], columns[b, j])`."""
    images = ops.cast(images, "float32")
    height, width = images.shape[1], images.shape[2]
    row_weights = _interpolation(rows, height, clamp)
    column_weights = _interpolation(columns, width, clamp)
    images = ops.einsum("bih,bhwc->biwc", row_weights, images)
    return ops.einsum("bjw,biwc->bijc", column_weights, images)


def _crop_coordinates(offsets, size, flips=None):
    """Source positions of a `size` crop starting at `offsets` `(batch,)`, reversed where `flips`."""
    steps = ops.arange(size, dtype="float32")[None, :]
    if flips is not None:
        steps = ops.where(flips[:, None], size - 1.0 - steps, steps)
    return offsets[:, None] + steps


def _scaled_coordinates(offsets, size, scale, flips=None):
    """Source positions of a `size` crop at `offsets` of an image resized by `scale`, half-pixel centres."""
    resized = _crop_coordinates(offsets, size, flips)
    return (resized + 0.5) / scale[:, None] - 0.5


def _static_spatial(images, name):
    if len(images.shape) != 4 or images.shape[1] is None or images.shape[2] is None:
        raise ValueError(
            f"{name} must be a batch of shape (batch, height, width, channels) with known height and "
            f"width; received shape {tuple(images.shape)}"
        )
    return images.shape[1], images.shape[2]


def _uniforms(images, count, seed):
    return keras.random.uniform((ops.shape(images)[0], count), seed=seed)


def _uniform_integers(uniform, low, high):
    """Integers uniform over `low..high` (inclusive) from uniforms in [0, 1); `high` may be a tensor."""
    span = ops.cast(high, "float32") - low + 1.0
    return low + ops.minimum(ops.floor(uniform * span), span - 1.0)


def random_crop_flip(images: Any, seed: Any = None, *, size: int | None = None, padding: int = 4) -> Any:
    """Pads, randomly crops and flips a batch of images: `data.cifar_pipeline`'s augmentation.

    Returns float32 `(batch, size, size, channels)`.

    Args:
        images: tensor `(batch, height, width, channels)`, any real dtype, 0-255 scale.
        seed: a seed as `keras.random.uniform` takes it (a `SeedGenerator` inside a layer or a jitted step).
        size: side of the crop; defaults to the image height.
        padding: zero pixels added on each side before cropping.
    """
    height, width = _static_spatial(images, "images")
    size = height if size is None else size
    _check_positive("size", size)
    _check_int("padding", padding, 0)
    if size > min(height, width) + 2 * padding:
        raise ValueError(
            f"size must be at most the padded image's shorter side ({min(height, width) + 2 * padding}); "
            f"received {size!r}"
        )
    draws = _uniforms(images, 3, seed)
    top = _uniform_integers(draws[:, 0], 0, height + 2 * padding - size) - padding
    left = _uniform_integers(draws[:, 1], 0, width + 2 * padding - size) - padding
    flips = draws[:, 2] < 0.5
    rows = _crop_coordinates(top, size)
    columns = _crop_coordinates(left, size, flips)
    return _resample(images, rows, columns, clamp=False)


def random_scale_crop_flip(
    images: Any, seed: Any = None, *, size: int = CROP_SIZE, scale_range: tuple[int, int] = SCALE_RANGE
) -> Any:
    """Scale augmentation, random crop and flip of a batch: `data.imagenet_pipeline`'s training augmentation.

    Each image's shorter side is resized to a random integer in `scale_range`, then a random `size` crop is
    taken and flipped with probability 1/2. Takes `images` and `seed` as `random_crop_flip` does (the images of
    a batch share one size) and returns float32 `(batch, size, size, channels)`.
    """
    height, width = _static_spatial(images, "images")
    check_scales("size", size, scale_range)
    draws = _uniforms(images, 4, seed)
    shorter = _uniform_integers(draws[:, 0], scale_range[0], scale_range[1])
    scale = shorter / min(height, width)
    # tf.image.resize's output side: round(side * shorter / min(height, width)).
    new_height, new_width = (ops.round(side * scale) for side in (height, width))
    top = _uniform_integers(draws[:, 1], 0, new_height - size)
    left = _uniform_integers(draws[:, 2], 0, new_width - size)
    flips = draws[:, 3] < 0.5
    rows = _scaled_coordinates(top, size, new_height / height)
    columns = _scaled_coordinates(left, size, new_width / width, flips)
    return _resample(images, rows, columns, clamp=True)


def center_crop(images: Any, *, size: int, resize_size: int | None = None) -> Any:
    """The evaluation view of a batch: `data.imagenet_pipeline`'s with `resize_size` (shorter side resized,
    then centre crop), else `data.cifar_pipeline`'s (centre crop, or zero padding of a smaller image).

    Returns float32 `(batch, size, size, channels)`; `resize_size` is at least `size`.
    """
    height, width = _static_spatial(images, "images")
    _check_positive("size", size)
    batch = ops.shape(images)[0]
    if resize_size is None and height == width == size:
        return ops.cast(images, "float32")
    if resize_size is None:
        offsets = [(side - size) // 2 if side >= size else -((size - side) // 2) for side in (height, width)]
        rows, columns = (
            ops.broadcast_to(_crop_coordinates(ops.full((1,), float(o)), size), (batch, size)) for o in offsets
        )
        return _resample(images, rows, columns, clamp=False)
    check_scales("size", size, resize_size=resize_size)
    coordinates = []
    for side in (height, width):
        new_side = round(side * resize_size / min(height, width))
        offset = ops.full((1,), float((new_side - size) // 2))
        scale = ops.full((1,), new_side / side)
        coordinates.append(ops.broadcast_to(_scaled_coordinates(offset, size, scale), (batch, size)))
    return _resample(images, *coordinates, clamp=True)


@keras.saving.register_keras_serializable(package="keras_resnet")
class Augmentation(keras.layers.Layer):
    """Augments (in training) or centre-crops (in inference), then normalises a batch, on the device.

    Put it first in a model that takes uint8 images: Keras compiles the augmentation into the train step.
    Training applies `random_crop_flip` (`kind="cifar"`) or `random_scale_crop_flip` (`"imagenet"`),
    inference `center_crop`; then `(images - mean) / std`.

    Args:
        kind: `"cifar"` or `"imagenet"`.
        image_size: side of the output images.
        padding: `"cifar"`: zero pixels added on each side before cropping.
        scale_range, resize_size: `"imagenet"`: the training and inference shorter sides.
        mean, std: numbers, RGB triples or arrays broadcastable to an image (e.g. a per-pixel mean), 0-255.
        seed: optional int seed of the layer's random draws.
        **kwargs: arguments of `keras.layers.Layer` (e.g. `name`).

    Example:

    >>> layer = Augmentation("cifar", image_size=32, mean=128.0, std=64.0, seed=0)
    >>> tuple(layer(np.zeros((2, 32, 32, 3), "uint8"), training=True).shape)
    (2, 32, 32, 3)
    """

    def __init__(
        self,
        kind: str = "cifar",
        *,
        image_size: int = 32,
        padding: int = 4,
        scale_range: tuple[int, int] = SCALE_RANGE,
        resize_size: int = RESIZE_SIZE,
        mean: Any = 0.0,
        std: Any = 1.0,
        seed: int | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        _check_choice("kind", kind, AUGMENTATIONS)
        _check_positive("image_size", image_size)
        if kind == "imagenet":
            check_scales("image_size", image_size, tuple(scale_range), resize_size)
        self.kind, self.image_size, self.padding = kind, image_size, padding
        self.scale_range, self.resize_size, self.seed = tuple(scale_range), resize_size, seed
        self.mean, self.std = _as_list(mean), _as_list(std)
        self.seed_generator = keras.random.SeedGenerator(seed)

    def call(self, images, training=None):
        if training and self.kind == "cifar":
            images = random_crop_flip(images, self.seed_generator, size=self.image_size, padding=self.padding)
        elif training:
            images = random_scale_crop_flip(
                images, self.seed_generator, size=self.image_size, scale_range=self.scale_range
            )
        else:
            resize = self.resize_size if self.kind == "imagenet" else None
            images = center_crop(images, size=self.image_size, resize_size=resize)
        mean = ops.convert_to_tensor(self.mean, "float32")
        std = ops.convert_to_tensor(self.std, "float32")
        return ops.cast(standardize(images, mean, std), self.compute_dtype)

    def compute_output_shape(self, input_shape):
        return (input_shape[0], self.image_size, self.image_size, input_shape[-1])

    def get_config(self):
        return {
            **super().get_config(),
            "kind": self.kind,
            "image_size": self.image_size,
            "padding": self.padding,
            "scale_range": self.scale_range,
            "resize_size": self.resize_size,
            "mean": self.mean,
            "std": self.std,
            "seed": self.seed,
        }


def _as_list(value):
    """A number or array as plain (nested) lists, for `get_config`."""
    return np.asarray(value, dtype="float32").tolist()
