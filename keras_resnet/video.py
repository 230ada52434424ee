"""Video: a per-frame backbone feeding a ConvLSTM, and a clip data set.

`video_classifier` runs an image backbone on every frame
(`TimeDistributed`), lets a `ConvLSTM2D` read the sequence of feature maps,
and classifies the clip. `moving_shapes_clips` draws a tiny embedded data
set for it in numpy, where only the motion tells the classes apart.
"""

import keras
import numpy as np

from keras_resnet._validation import check_int as _check_int
from keras_resnet._validation import check_positive_int as _check_positive_int

DIRECTIONS = ("left", "right", "up", "down")

# (row, column) displacement of one step towards each direction.
_STEPS = {"left": (0, -1), "right": (0, 1), "up": (-1, 0), "down": (1, 0)}
_NOISE = 0.05


def moving_shapes_clips(count, *, frames=5, image_size=32, seed=0):
    """Draws clips of a square moving in one of `DIRECTIONS`.

    Each clip shows one square of random size and colour on a random
    background colour with Gaussian noise, moving by a constant random step
    between frames and staying inside the image. The label is the
    direction, so a single frame cannot tell it: the model must compare
    frames. Labels are balanced, in shuffled order.

    Args:
        count: number of clips, a non-negative integer.
        frames: frames per clip, from 2 to `image_size // 2 + 1`.
        image_size: side of the square frames in pixels (at least 16).
        seed: integer seed; the same seed gives the same clips.

    Returns:
        A tuple `(clips, labels)`: `float32` array of shape
        `(count, frames, image_size, image_size, 3)` with values in
        `[0, 1]`, and `int64` array of shape `(count,)` indexing
        `DIRECTIONS`.

    Example:

    >>> clips, labels = moving_shapes_clips(8, frames=4, seed=1)
    >>> clips.shape, clips.dtype, sorted(set(labels.tolist()))
    ((8, 4, 32, 32, 3), dtype('float32'), [0, 1, 2, 3])
    """
    _check_int("count", count, 0)
    _check_int("image_size", image_size, 16)
    _check_int("frames", frames, 2, image_size // 2 + 1, context=f" for image_size={image_size}")
    rng = np.random.default_rng(seed)
    labels = rng.permutation(np.arange(count) % len(DIRECTIONS))
    # The square covers at most a quarter of the side and travels at most
    # half of it, so it always fits; steps of at least a sixteenth of the
    # side stay visible on a stride-4 feature map.
    side = rng.integers(image_size // 8, image_size // 4, endpoint=True, size=count)
    largest_step = (image_size // 2) // (frames - 1)
    step = rng.integers(min(image_size // 16, largest_step), largest_step, endpoint=True, size=count)
    direction = np.array([_STEPS[DIRECTIONS[label]] for label in labels], dtype=np.int64).reshape(count, 2)
    travel = step[:, None] * (frames - 1) * np.abs(direction)
    # Top-left corner of the first frame, leaving room for the whole travel.
    room = image_size - side[:, None] - travel
    start = (rng.uniform(size=(count, 2)) * (room + 1)).astype(np.int64)
    start += np.where(direction < 0, travel, 0)
    time = np.arange(frames)
    corner = start[:, None, :] + time[None, :, None] * step[:, None, None] * direction[:, None, :]

    pixels = np.arange(image_size)
    top, left = corner[..., 0, None], corner[..., 1, None]
    size = side[:, None, None]
    rows = (pixels >= top) & (pixels < top + size)
    cols = (pixels >= left) & (pixels < left + size)
    mask = rows[..., :, None] & cols[..., None, :]

    background = rng.uniform(0, 1, size=(count, 1, 1, 1, 3))
    foreground = (background + rng.uniform(0.3, 0.7, size=(count, 1, 1, 1, 3))) % 1
    clips = np.where(mask[..., None], foreground, background)
    clips = clips + rng.normal(0, _NOISE, size=clips.shape)
    return np.clip(clips, 0, 1).astype(np.float32), labels.astype(np.int64)


def video_classifier(backbone, classes, *, frames, filters=16, data_format=None, name="video_classifier"):
    """Classifies clips with a per-frame backbone and a ConvLSTM.

    Layers: `frames` (`TimeDistributed(backbone)`, sharing the backbone's
    weights across frames), `convlstm` (`ConvLSTM2D`, 3x3, returning its
    last state), `max_pool` and `predictions` (softmax). Global *max*
    pooling keeps the evidence of motion, which is local to the moving
    object, where an average over the frame would dilute it. Freeze or
    unfreeze the backbone with `keras_resnet.models.features.freeze` /
    `unfreeze` before compiling.

    Args:
        backbone: an image model returning a 4D feature map, e.g. a
            `keras_resnet` model with `include_top=False, pooling=None`.
        classes: number of clip classes.
        frames: frames per clip.
        filters: channels of the ConvLSTM state.
        data_format: data format of the backbone's feature map;
            `None` means `keras.config.image_data_format()`.
        name: model name.

    Returns:
        A `keras.Model` mapping clips of shape
        `(batch, frames) + backbone.input_shape[1:]` to class
        probabilities.

    Example:

    >>> from keras_resnet import ResNet
    >>> backbone = ResNet({"block": "basic", "depths": (1, 1, 1), "widths": (8, 16, 32),
    ...                    "stem": "cifar"}, include_top=False, input_shape=(32, 32, 3))
    >>> video_classifier(backbone, len(DIRECTIONS), frames=5).output_shape
    (None, 4)
    """
    if len(backbone.output_shape) != 4:
        raise ValueError(
            "backbone must return a 4D feature map (include_top=False, pooling=None); "
            f"received output shape {backbone.output_shape}"
        )
    for argument, value in (("classes", classes), ("frames", frames), ("filters", filters)):
        _check_positive_int(argument, value)
    data_format = data_format or keras.config.image_data_format()
    inputs = keras.Input((frames, *backbone.input_shape[1:]))
    x = keras.layers.TimeDistributed(backbone, name="frames")(inputs)
    x = keras.layers.ConvLSTM2D(filters, 3, padding="same", data_format=data_format, name="convlstm")(x)
    x = keras.layers.GlobalMaxPooling2D(data_format=data_format, name="max_pool")(x)
    outputs = keras.layers.Dense(classes, activation="softmax", name="predictions")(x)
    return keras.Model(inputs, outputs, name=name)
