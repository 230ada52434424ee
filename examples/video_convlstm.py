"""Video classification: a ResNet on every frame, a ConvLSTM over time.

A tiny CIFAR-style ResNet-8 reads each 32x32 frame (`TimeDistributed`), a
`ConvLSTM2D` reads the sequence of feature maps and a softmax tells in which
direction a square moves (`moving_shapes_clips`, drawn here in numpy). Training
runs in two phases, as transfer learning does:

1. the backbone is frozen (`keras_resnet.models.features.freeze`): only the
   ConvLSTM and the classifier learn, and the backbone's BatchNormalization
   layers stay in inference mode;
2. the backbone is unfrozen (`keras_resnet.models.features.unfreeze`) and the whole
   model is fine-tuned at a lower learning rate, BatchNormalization
   statistics still frozen.

Here the backbone starts from random weights to stay self-contained; in
practice it comes pretrained (`weights=...`). The script prints, for each
phase, the validation accuracy and whether the backbone's parameters and
BatchNormalization statistics changed, then a JSON line with the same.

Run (any Keras backend):

    python examples/video_convlstm.py
    KERAS_BACKEND=jax python examples/video_convlstm.py --clips 64 --epochs 1
"""

import argparse
import json

import keras
import numpy as np

from keras_resnet import ResNet
from keras_resnet.models.features import freeze, unfreeze

DIRECTIONS = ("left", "right", "up", "down")

# (row, column) displacement of one step towards each direction.
_STEPS = {"left": (0, -1), "right": (0, 1), "up": (-1, 0), "down": (1, 0)}
_NOISE = 0.05


def check_int(argument, value, minimum, maximum=None, context=""):
    """Raises a ValueError naming the argument, the value received and the integers allowed."""
    integer = isinstance(value, (int, np.integer)) and not isinstance(value, bool)
    if integer and value >= minimum and (maximum is None or value <= maximum):
        return
    allowed = {0: "a non-negative integer", 1: "a positive integer"}.get(minimum, f"an integer of at least {minimum}")
    allowed = f"an integer from {minimum} to {maximum}" if maximum is not None else allowed
    raise ValueError(f"{argument} must be {allowed}{context}; received {value!r}")


def moving_shapes_clips(count, *, frames=5, image_size=32, seed=0):
    """Draws clips of a square moving in one of `DIRECTIONS`.

    One square of random size and colour on a random noisy background moves by a constant
    step between frames, staying inside the image. A single frame cannot tell the label:
    the model must compare frames. Labels are balanced, in shuffled order.

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
    check_int("count", count, 0)
    check_int("image_size", image_size, 16)
    check_int("frames", frames, 2, image_size // 2 + 1, context=f" for image_size={image_size}")
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

    Layers: `frames` (`TimeDistributed(backbone)`, one backbone for all frames), `convlstm`
    (`ConvLSTM2D`, 3x3, its last state), `max_pool` and `predictions` (softmax). Global *max*
    pooling keeps the evidence of motion, local to the moving object, which an average would
    dilute.

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
        check_int(argument, value, 1)
    data_format = data_format or keras.config.image_data_format()
    inputs = keras.Input((frames, *backbone.input_shape[1:]))
    x = keras.layers.TimeDistributed(backbone, name="frames")(inputs)
    x = keras.layers.ConvLSTM2D(filters, 3, padding="same", data_format=data_format, name="convlstm")(x)
    x = keras.layers.GlobalMaxPooling2D(data_format=data_format, name="max_pool")(x)
    outputs = keras.layers.Dense(classes, activation="softmax", name="predictions")(x)
    return keras.Model(inputs, outputs, name=name)


RESNET8 = {"block": "basic", "depths": (1, 1, 1), "widths": (8, 16, 32), "stem": "cifar", "shortcut": "A"}


def _values(variables):
    return {variable.path: keras.ops.convert_to_numpy(variable).copy() for variable in variables}


def _changed(before, variables):
    return any(not np.array_equal(before[path], value) for path, value in _values(variables).items())


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clips", type=int, default=512, help="training clips")
    parser.add_argument("--frames", type=int, default=5, help="frames per clip")
    parser.add_argument("--epochs", type=int, default=6, help="epochs of each phase")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    keras.utils.set_random_seed(args.seed)
    x_train, y_train = moving_shapes_clips(args.clips, frames=args.frames, seed=args.seed)
    x_val, y_val = moving_shapes_clips(max(args.clips // 4, 4), frames=args.frames, seed=args.seed + 1)

    backbone = ResNet(RESNET8, include_top=False, input_shape=(32, 32, 3), name="resnet8")
    model = video_classifier(backbone, len(DIRECTIONS), frames=args.frames)
    statistics = [
        variable
        for layer in backbone.layers
        if isinstance(layer, keras.layers.BatchNormalization)
        for variable in (layer.moving_mean, layer.moving_variance)
    ]
    statistic_paths = {variable.path for variable in statistics}
    parameters = [variable for variable in backbone.weights if variable.path not in statistic_paths]

    summary = {}
    for phase, prepare, learning_rate in (("frozen", freeze, 3e-3), ("fine_tuned", unfreeze, 1e-3)):
        prepare(backbone)
        # Compile after (un)freezing: compile reads which weights train.
        model.compile(
            optimizer=keras.optimizers.Adam(learning_rate),
            loss="sparse_categorical_crossentropy",
            metrics=["accuracy"],
        )
        before = _values(backbone.weights)
        model.fit(x_train, y_train, batch_size=args.batch_size, epochs=args.epochs, verbose=2)
        _, accuracy = model.evaluate(x_val, y_val, batch_size=args.batch_size, verbose=0)
        summary[phase] = {
            "val_accuracy": round(float(accuracy), 4),
            "backbone_parameters_changed": _changed(before, parameters),
            "bn_statistics_changed": _changed(before, statistics),
        }
        print(phase, summary[phase])
    print(json.dumps(summary))
    return summary


if __name__ == "__main__":
    main()
