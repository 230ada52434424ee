"""What every export format shares: argument checks, the pixels-to-probabilities model, staged writing."""

import contextlib
import os
import shutil
import tempfile

import keras
import numpy as np

from keras_resnet._validation import check_choice
from keras_resnet.imagenet import BGR_MEAN

PREPROCESSING_MODES = ("caffe", "tf", None)
CIFAR_NORMALIZATIONS = ("pixel", "channel", None)


def cifar_preprocessing(statistics, normalization="pixel"):
    """Turns training-set statistics into `preprocessing` for `keras_resnet.export`.

    The result normalises served images as `keras_resnet.data.cifar_pipeline`
    normalises training and evaluation batches with the same arguments.

    Args:
        statistics: the training set's `keras_resnet.data.image_statistics(...)`
            (a dict with `"pixel_mean"`, `"channel_mean"`, `"channel_std"`);
            not needed for `normalization=None`.
        normalization: `"pixel"` (subtract the per-pixel mean, divide by 255;
            the paper), `"channel"` (per-channel mean and standard deviation)
            or `None` (divide by 255).

    Returns:
        A dict `{"mean": ..., "std": ...}` of plain lists and floats (JSON
        ready, e.g. for `keras-resnet export --preprocessing FILE.json`).

    Example:

    >>> import numpy as np
    >>> cifar_preprocessing({"channel_mean": np.array([125.3, 123.0, 113.9]),
    ...                      "channel_std": np.array([63.0, 62.1, 66.7])}, "channel")["std"]
    [63.0, 62.1, 66.7]
    """
    check_choice("normalization", normalization, CIFAR_NORMALIZATIONS)
    if normalization == "pixel":
        mean, std = statistics["pixel_mean"], 255.0
    elif normalization == "channel":
        mean, std = statistics["channel_mean"], statistics["channel_std"]
    else:
        mean, std = (0.0, 0.0, 0.0), 255.0
    return {"mean": np.asarray(mean, np.float64).tolist(), "std": np.asarray(std, np.float64).tolist()}


def normalization(preprocessing, image_size):
    """Returns `(mean, std, reverse_channels)` of a `preprocessing` value: RGB 0-255 in, model input out."""
    if isinstance(preprocessing, dict):
        unknown = set(preprocessing) - {"mean", "std", "channel_order"}
        if "mean" not in preprocessing or unknown:
            raise ValueError(
                "preprocessing as a dict must have the key 'mean' and may have 'std' and 'channel_order'; "
                f"received keys {sorted(preprocessing)}"
            )
        channel_order = preprocessing.get("channel_order", "rgb")
        check_choice("preprocessing['channel_order']", channel_order, ("rgb", "bgr"))
        mean = np.asarray(preprocessing["mean"], np.float32)
        if mean.shape not in ((3,), (*image_size, 3)):
            raise ValueError(
                f"preprocessing['mean'] must have shape (3,) or {(*image_size, 3)} (per pixel at the image size); "
                f"received shape {mean.shape}"
            )
        std = np.asarray(preprocessing.get("std", 1.0), np.float32)
        try:
            np.broadcast_to(std, mean.shape)
        except ValueError:
            raise ValueError(
                f"preprocessing['std'] must broadcast to the mean's shape {mean.shape}; received shape {std.shape}"
            ) from None
        if not np.all(std > 0):
            raise ValueError(f"preprocessing['std'] must be positive; received {preprocessing['std']!r}")
        return mean, std, channel_order == "bgr"
    if preprocessing not in PREPROCESSING_MODES:
        raise ValueError(
            "preprocessing must be one of 'caffe', 'tf', None or a dict {'mean': ..., 'std': ...}; "
            f"received {preprocessing!r}"
        )
    if preprocessing == "caffe":
        return np.float32(BGR_MEAN[::-1]), np.float32(1.0), True
    if preprocessing == "tf":
        return np.float32(127.5), np.float32(127.5), False
    return np.float32(0.0), np.float32(1.0), False


def served_size(model, image_size):
    """The `(height, width)` of served images, checked against the model's input and output."""
    shape = model.input_shape
    if not isinstance(shape, tuple) or len(shape) != 4 or shape[-1] != 3:
        raise ValueError(
            "model must take one batch of RGB images, channels last, input shape (batch, height, width, 3); "
            f"received input shape {shape}"
        )
    if not (isinstance(model.output_shape, tuple) and len(model.output_shape) == 2):
        raise ValueError(
            f"model must output one score per class, shape (batch, classes); received {model.output_shape}"
        )
    fixed = shape[1:3]
    if image_size is None:
        if None in fixed:
            raise ValueError(
                f"image_size must be given as (height, width) for a model with a free input size {fixed}; "
                "received None"
            )
        return fixed
    size = (image_size, image_size) if isinstance(image_size, int) else tuple(image_size)
    valid = len(size) == 2 and all(isinstance(side, int) and not isinstance(side, bool) and side > 0 for side in size)
    if not valid or any(side not in (None, want) for side, want in zip(fixed, size)):
        raise ValueError(
            f"image_size must be two positive integers (height, width) agreeing with the model's input size "
            f"{fixed}; received {image_size!r}"
        )
    return size


def pixels_model(model, preprocessing, image_size, *, from_logits, dtype):
    """A `keras.Model` from RGB pixels (0-255, `dtype`) of `image_size` to `{"probabilities": float32 ...}`.

    The preprocessing is written with `keras.ops` (cast, subtract, divide,
    flip), which every converter maps to builtin ops; `model` is called as
    a layer, so its weights are shared, not copied.
    """
    mean, std, reverse_channels = normalization(preprocessing, image_size)
    images = keras.Input((*image_size, 3), dtype=dtype, name="images")
    inputs = (keras.ops.cast(images, "float32") - mean) / std
    if reverse_channels:
        inputs = keras.ops.flip(inputs, axis=-1)
    scores = keras.ops.cast(model(inputs), "float32")
    probabilities = keras.ops.softmax(scores, axis=-1) if from_logits else scores
    # A dict output: converters name the output after its key (LiteRT signatures would say "output_0").
    return keras.Model(images, {"probabilities": probabilities}, name=f"{model.name}_on_pixels")


@contextlib.contextmanager
def staged(path, argument, file_name=None):
    """Yields where to write `path`'s content; on success moves it to `path`, on failure leaves nothing there.

    The content is written into a fresh hidden folder beside `path` (same file system, so the final move is a
    rename): `path` either does not exist afterwards or holds the whole export.

    Args:
        path: the folder (`file_name=None`) or file to create; it may exist only as an empty folder
            (`file_name=None`) or an empty file.
        argument: the argument name that errors name.
        file_name: for a one-file format, the name to write inside the staging folder (converters that
            check the extension see it); the yielded path is then that file.
    """
    path = os.path.abspath(os.fspath(path))
    if os.path.isdir(path):
        if file_name is not None or os.listdir(path):
            kind = "a file path" if file_name is not None else "a new or empty folder"
            raise ValueError(f"{argument} must be {kind} (nothing is overwritten); received {path!r}, "
                             f"an existing {'non-empty ' if os.listdir(path) else ''}folder")
    elif os.path.lexists(path) and (not os.path.isfile(path) or os.path.getsize(path)):
        raise ValueError(f"{argument} must be a new path or an empty file or folder (nothing is overwritten); "
                         f"received {path!r}, which exists and is not empty")
    parent = os.path.dirname(path)
    os.makedirs(parent, exist_ok=True)
    staging = tempfile.mkdtemp(prefix=f".{os.path.basename(path)}.partial-", dir=parent)
    try:
        target = staging if file_name is None else os.path.join(staging, file_name)
        yield target
        if os.path.isdir(path):
            os.rmdir(path)  # empty, checked above; a rename cannot replace a folder everywhere
        os.replace(target, path)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
