"""The one reading of a `preprocessing` value: the mean, standard deviation and channel order that turn RGB
0-255 pixels into a model's input, shared by in-model preprocessing, the pipelines and export."""

import numpy as np

from keras_resnet._validation import check_choice as _check_choice
from keras_resnet.imagenet import IMAGENET_MEAN

CHANNEL_ORDERS = ("rgb", "bgr")
CIFAR_NORMALIZATIONS = ("pixel", "channel", None)


def normalization_constants(
    mean, std=None, channel_order="rgb", *, image_size=None, names=("mean", "std", "channel_order")
):
    """Checks a normalisation and returns it as `(mean, std, reverse_channels)`: float32 arrays and a bool.

    Args:
        mean: per-channel mean of shape `(3,)` or per-pixel mean of shape `(height, width, 3)`, RGB order.
        std: optional standard deviation broadcastable to `mean`'s shape, all positive; `None` means 1.
        channel_order: `"rgb"` keeps the channel order; `"bgr"` reverses it after standardising.
        image_size: optional `(height, width)`: a per-pixel mean must have this size.
        names: the names of the three arguments in error messages.

    Returns:
        A tuple `(mean, std, reverse_channels)`; `std` has `mean`'s shape.

    Example:

    >>> mean, std, reverse = normalization_constants((1.0, 2.0, 3.0), 2.0, "bgr")
    >>> std.tolist(), reverse
    ([2.0, 2.0, 2.0], True)
    """
    mean_name, std_name, order_name = names
    _check_choice(order_name, channel_order, CHANNEL_ORDERS)
    mean = np.asarray(mean, np.float32)
    if image_size is None:
        if mean.shape[-1:] != (3,) or mean.ndim not in (1, 3):
            raise ValueError(f"{mean_name} must have shape (3,) or (height, width, 3); received shape {mean.shape}")
    elif mean.shape not in ((3,), (*image_size, 3)):
        raise ValueError(
            f"{mean_name} must have shape (3,) or {(*image_size, 3)} (per pixel at the image size); "
            f"received shape {mean.shape}"
        )
    given = np.asarray(1.0 if std is None else std, np.float32)
    try:
        std_array = np.broadcast_to(given, mean.shape)
    except ValueError:
        raise ValueError(
            f"{std_name} must broadcast to the mean's shape {mean.shape}; received shape {given.shape}"
        ) from None
    if not np.all(std_array > 0):
        raise ValueError(f"{std_name} must be positive; received {std!r}")
    return mean, std_array, channel_order == "bgr"


PREPROCESSING_MODES = ("caffe", "tf", None)


def preprocessing_constants(preprocessing, image_size=None):
    """The `(mean, std, reverse_channels)` of a `preprocessing` value: RGB 0-255 in, model input out.

    The one reading of the `preprocessing` argument of the export functions and of
    `keras_resnet.ResNet(include_preprocessing=True)`.

    Args:
        preprocessing: `"caffe"` (ImageNet mean subtracted, then RGB to BGR, as
            `keras.applications.resnet`), `"tf"` (scaled to [-1, 1], as
            `keras.applications.resnet_v2`), `None` (unchanged) or a dict
            `{"mean": ..., "std": ..., "channel_order": "rgb" | "bgr"}`.
        image_size: optional `(height, width)` that a per-pixel mean must have.

    Returns:
        As `normalization_constants`.

    Example:

    >>> mean, std, reverse = preprocessing_constants("tf")
    >>> mean.tolist(), std.tolist(), reverse
    ([127.5, 127.5, 127.5], [127.5, 127.5, 127.5], False)
    """
    if isinstance(preprocessing, dict):
        # resize_size, crop_size and interpolation describe the pipeline before normalisation (pretrained
        # weights record them); the statistics are mean, std and channel_order.
        unknown = set(preprocessing) - {"mean", "std", "channel_order", "resize_size", "crop_size", "interpolation"}
        if "mean" not in preprocessing or unknown:
            raise ValueError(
                "preprocessing as a dict must have the key 'mean' and may have 'std', 'channel_order', "
                "'resize_size', 'crop_size' and 'interpolation'; "
                f"received keys {sorted(preprocessing)}"
            )
        return normalization_constants(
            preprocessing["mean"],
            preprocessing.get("std"),
            preprocessing.get("channel_order", "rgb"),
            image_size=image_size,
            names=tuple(f"preprocessing[{key!r}]" for key in ("mean", "std", "channel_order")),
        )
    if preprocessing not in PREPROCESSING_MODES:
        raise ValueError(
            "preprocessing must be one of 'caffe', 'tf', None or a dict {'mean': ..., 'std': ...}; "
            f"received {preprocessing!r}"
        )
    mean, std, channel_order = {
        "caffe": (IMAGENET_MEAN, None, "bgr"),
        "tf": ((127.5,) * 3, 127.5, "rgb"),
        None: ((0.0,) * 3, None, "rgb"),
    }[preprocessing]
    return normalization_constants(mean, std, channel_order)


def standardize(images, mean, std, reverse_channels=False):
    """Returns `(images - mean) / std`, the channel order reversed afterwards if `reverse_channels`.

    Plain arithmetic and slicing, so the same code runs on TensorFlow tensors inside tf.data (whatever the
    Keras backend), on symbolic Keras tensors in a model (export) and on any backend's arrays.

    Args:
        images: float tensor of shape `(..., height, width, 3)`.
        mean: array broadcastable to `images` (e.g. from `normalization_constants`).
        std: array broadcastable to `images`.
        reverse_channels: bool, whether to reverse the last axis (RGB to BGR).

    Returns:
        A tensor of the type and shape of `images`.

    Example:

    >>> import numpy as np
    >>> standardize(np.full((1, 1, 1, 3), 10.0), np.array([0.0, 4.0, 10.0]), 2.0, True).ravel().tolist()
    [0.0, 3.0, 5.0]
    """
    images = (images - mean) / std
    return images[..., ::-1] if reverse_channels else images


def normalizer(mean, std=None, *, channel_order="rgb"):
    """Returns a function that standardises batches of RGB images: `(images - mean) / std`, channels reordered.

    It runs inside tf.data on any Keras backend (see `standardize`). The presets of common pretrained
    weights: keras.applications ResNet ("caffe"): `normalizer(IMAGENET_MEAN, channel_order="bgr")`;
    torchvision: `normalizer((123.675, 116.28, 103.53), (58.395, 57.12, 57.375))`.

    Args:
        mean: per-channel mean of shape `(3,)` or per-pixel mean of shape `(height, width, 3)`, RGB order, on
            the scale of the images (0-255 for the pipelines here).
        std: optional positive standard deviation broadcastable to `mean`'s shape (a scalar, per channel or
            per pixel); `None` divides by 1.
        channel_order: `"rgb"` keeps the channel order; `"bgr"` reverses it after standardising.

    Returns:
        A function mapping float32 images of shape `(batch, height, width, 3)` to standardised float32 images.

    Example:

    ```python
    normalize = keras_resnet.data.normalizer(keras_resnet.data.IMAGENET_MEAN)
    normalize(np.full((1, 224, 224, 3), 128.0, np.float32))[0, 0, 0]  # [4.32, 11.221, 24.061]
    ```
    """
    mean, std, reverse_channels = normalization_constants(mean, std, channel_order)

    def normalize(images):
        return standardize(images, mean, std, reverse_channels)

    return normalize


def cifar_preprocessing(statistics, normalization="pixel"):
    """Turns training-set statistics into the `{"mean", "std"}` normalisation of a CIFAR pipeline.

    `cifar_pipeline` normalises with it, and `keras_resnet.export` takes it as `preprocessing`, so served
    images are normalised as training and evaluation batches were.

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
    _check_choice("normalization", normalization, CIFAR_NORMALIZATIONS)
    if normalization == "pixel":
        mean, std = statistics["pixel_mean"], 255.0
    elif normalization == "channel":
        mean, std = statistics["channel_mean"], statistics["channel_std"]
    else:
        mean, std = (0.0, 0.0, 0.0), 255.0
    return {"mean": np.asarray(mean, np.float64).tolist(), "std": np.asarray(std, np.float64).tolist()}
