"""On-device augmentation in `keras.ops`: the tf.data pipelines' crops and flips inside the jitted step.

`keras_resnet.data` augments on the CPU, one image at a time. A GPU trains ResNet-20 on tens of thousands of
CIFAR images a second, faster than a few CPU cores decode and crop them; keeping the decoded uint8 images in
memory and augmenting whole batches on the accelerator, inside the compiled train step, removes that limit
(and moves 4x fewer bytes to the device than float32 images).

The random draws follow the tf.data pipelines' semantics:

- `random_crop_flip` (`data.cifar_pipeline`): pad `padding` zero pixels on each side, take a random
  `size` x `size` crop (each offset uniform over every position), flip left-right with probability 1/2.
- `random_scale_crop_flip` (`data.imagenet_pipeline`): resize so the shorter side is a random integer in
  `scale_range` (uniform), take a random `size` crop of the resized image, flip with probability 1/2.
  Resizing is bilinear with half-pixel centres, as `tf.image.resize`; it is not antialiased, so it matches
  tf.data exactly when enlarging (the paper's 256-480 range on ImageNet-sized images) and is sharper when
  shrinking.

Every crop, resize and flip of a batch is one bilinear resampling written as two batched matrix products
(rows, then columns), so one code path serves all of them and runs on any backend. `Augmentation` wraps the
functions in a layer that augments in training, centre-crops in inference and normalises: put it first in
a model that takes uint8 images.

```python
import keras, keras_resnet
inputs = keras.Input((32, 32, 3), dtype="uint8")
augmentation = keras_resnet.data.augment.Augmentation(
    "cifar", image_size=32, mean=(125.3, 123.0, 113.9), std=(63.0, 62.1, 66.7)
)
x = augmentation(inputs)
model = keras.Model(inputs, keras_resnet.ResNet20(input_shape=(32, 32, 3), classes=10)(x))
```
"""

import keras
import numpy as np
from keras import ops

from keras_resnet._validation import check_choice as _check_choice
from keras_resnet._validation import check_positive_int as _check_positive
from keras_resnet.imagenet import CROP_SIZE, RESIZE_SIZE, SCALE_RANGE
from keras_resnet.normalization import standardize

__all__ = ["KINDS", "Augmentation", "center_crop", "random_crop_flip", "random_scale_crop_flip"]

KINDS = ("cifar", "imagenet")


def _interpolation(coordinates, length, clamp):
    """Bilinear weights `(batch, out, length)` that read source positions `coordinates` `(batch, out)`.

    A weight is the triangle `max(0, 1 - |position - coordinate|)`: integer coordinates pick one pixel
    exactly, and those outside `[0, length)` read zeros (padding) unless `clamp` holds them at the border
    (as `tf.image.resize` does).
    """
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


def random_crop_flip(images, seed=None, *, size=None, padding=4):
    """Pads, randomly crops and flips a batch of images: the CIFAR augmentation of `data.cifar_pipeline`.

    Args:
        images: tensor `(batch, height, width, channels)`, any real dtype (uint8 images stay on the
            0-255 scale).
        seed: `None`, an int, a `keras.random.SeedGenerator` (inside a layer or a jitted step) or a seed
            tensor, as `keras.random.uniform` takes it.
        size: int, side of the crop; defaults to the image height.
        padding: int >= 0, zero pixels added on each side before cropping.

    Returns:
        A float32 tensor `(batch, size, size, channels)`.

    Example:

    >>> import numpy as np
    >>> batch = np.zeros((2, 32, 32, 3), "uint8")
    >>> random_crop_flip(batch, seed=0).shape
    (2, 32, 32, 3)
    """
    height, width = _static_spatial(images, "images")
    size = height if size is None else size
    _check_positive("size", size)
    if isinstance(padding, bool) or not isinstance(padding, int) or padding < 0:
        raise ValueError(f"padding must be a non-negative integer; received {padding!r}")
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


def _check_scales(size, scale_range):
    _check_positive("size", size)
    if (
        not isinstance(scale_range, (tuple, list))
        or len(scale_range) != 2
        or not all(isinstance(s, int) and not isinstance(s, bool) for s in scale_range)
        or not size <= scale_range[0] <= scale_range[1]
    ):
        raise ValueError(
            f"scale_range must be (min, max) integers with size ({size}) <= min <= max; received {scale_range!r}"
        )


def random_scale_crop_flip(images, seed=None, *, size=CROP_SIZE, scale_range=SCALE_RANGE):
    """Scale augmentation, random crop and flip of a batch: the training augmentation of `data.imagenet_pipeline`.

    Each image is resized (bilinear, half-pixel centres) so that its shorter side is a random integer in
    `scale_range`, keeping its aspect ratio as `data.resize_shorter_side` does; then a random `size` x
    `size` crop of the resized image is taken and flipped left-right with probability 1/2. Only the crop is
    computed. All images of a batch share one height and width (e.g. decoded data cached at one size).

    Args:
        images: tensor `(batch, height, width, channels)`, any real dtype.
        seed: as in `random_crop_flip`.
        size: int, side of the output crops.
        scale_range: `(min, max)` integers, the range of the shorter side; `size <= min <= max`.

    Returns:
        A float32 tensor `(batch, size, size, channels)`.

    Example:

    >>> import numpy as np
    >>> batch = np.zeros((2, 40, 48, 3), "uint8")
    >>> random_scale_crop_flip(batch, seed=0, size=32, scale_range=(40, 64)).shape
    (2, 32, 32, 3)
    """
    height, width = _static_spatial(images, "images")
    _check_scales(size, scale_range)
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


def center_crop(images, *, size, resize_size=None):
    """The evaluation view of a batch: optionally resize the shorter side, then take the centre crop.

    With `resize_size` this is `data.imagenet_pipeline`'s evaluation (`resize_shorter_side`, then
    `center_crop`); without it, `data.cifar_pipeline`'s (`tf.image.resize_with_crop_or_pad`: a centre crop,
    or zero padding when the image is smaller).

    Args:
        images: tensor `(batch, height, width, channels)`, any real dtype.
        size: int, side of the output.
        resize_size: optional int >= `size`, the shorter side after resizing.

    Returns:
        A float32 tensor `(batch, size, size, channels)`.

    Example:

    >>> import numpy as np
    >>> center_crop(np.zeros((2, 40, 48, 3), "uint8"), size=32, resize_size=36).shape
    (2, 32, 32, 3)
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
    _check_positive("resize_size", resize_size)
    if resize_size < size:
        raise ValueError(f"resize_size must be at least size ({size}); received {resize_size!r}")
    coordinates = []
    for side in (height, width):
        new_side = round(side * resize_size / min(height, width))
        offset = ops.full((1,), float((new_side - size) // 2))
        scale = ops.full((1,), new_side / side)
        coordinates.append(ops.broadcast_to(_scaled_coordinates(offset, size, scale), (batch, size)))
    return _resample(images, *coordinates, clamp=True)


@keras.saving.register_keras_serializable(package="keras_resnet")
class Augmentation(keras.layers.Layer):
    """Augments (in training) or centre-crops (in inference) and normalises a batch, on the device.

    Put it first in a model that takes uint8 images: the decoded data set then stays in (host or device)
    memory as uint8, and Keras compiles the augmentation into the train step. In training it applies
    `random_crop_flip` (`kind="cifar"`) or `random_scale_crop_flip` (`kind="imagenet"`); in inference
    `center_crop`. Then it returns `(images - mean) / std` in float32.

    Args:
        kind: `"cifar"` or `"imagenet"`.
        image_size: int, side of the output images.
        padding: int, `"cifar"`: zero pixels added on each side before cropping.
        scale_range: `(min, max)`, `"imagenet"`: range of the resized shorter side.
        resize_size: int, `"imagenet"`: the shorter side before the inference centre crop.
        mean: number, RGB triple or array broadcastable to an image (e.g. a per-pixel mean), 0-255 scale.
        std: number, RGB triple or array, divided by after subtracting `mean`.
        seed: optional int seed of the layer's random draws.
        **kwargs: arguments of `keras.layers.Layer` (e.g. `name`).

    Example:

    >>> import numpy as np
    >>> layer = Augmentation("cifar", image_size=32, mean=128.0, std=64.0, seed=0)
    >>> layer(np.zeros((2, 32, 32, 3), "uint8"), training=True).shape
    (2, 32, 32, 3)
    """

    def __init__(
        self,
        kind="cifar",
        *,
        image_size=32,
        padding=4,
        scale_range=SCALE_RANGE,
        resize_size=RESIZE_SIZE,
        mean=0.0,
        std=1.0,
        seed=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        _check_choice("kind", kind, KINDS)
        _check_positive("image_size", image_size)
        if kind == "imagenet":
            _check_scales(image_size, tuple(scale_range))
            if not isinstance(resize_size, int) or resize_size < image_size:
                raise ValueError(
                    f"resize_size must be an integer of at least image_size ({image_size}); received {resize_size!r}"
                )
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
