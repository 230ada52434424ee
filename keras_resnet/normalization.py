"""The one reading of `preprocessing` and training-set statistics, shared by the models, the pipelines and export."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any

import numpy as np

from keras_resnet._validation import check_choice as _check_choice
from keras_resnet.imagenet import IMAGENET_MEAN

CHANNEL_ORDERS = ("rgb", "bgr")
CIFAR_NORMALIZATIONS = ("pixel", "channel", None)
PREPROCESSING_MODES = ("caffe", "tf", None)
_PREPROCESSING_KEYS = ("mean", "std", "channel_order", "resize_size", "crop_size", "interpolation")


def normalization_constants(
    mean: Any,
    std: Any = None,
    channel_order: str = "rgb",
    *,
    image_size: Sequence[int] | None = None,
    names: tuple[str, str, str] = ("mean", "std", "channel_order"),
) -> tuple[np.ndarray, np.ndarray, bool]:
    """Checks a normalisation of RGB 0-255 pixels and returns it as `(mean, std, reverse_channels)`.

    Args:
        mean: RGB, per channel `(3,)` or per pixel `(height, width, 3)`.
        std: positive, broadcast to `mean`'s shape; `None`: 1.
        channel_order: `"bgr"` reverses the channels after standardising.
        image_size: `(height, width)` a per-pixel mean must have.
        names: the three arguments' names in error messages.
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


def preprocessing_constants(
    preprocessing: str | dict | None, image_size: Sequence[int] | None = None
) -> tuple[np.ndarray, np.ndarray, bool]:
    """The `normalization_constants` of a `preprocessing` value, as the models and export read it.

    Args:
        preprocessing: `"caffe"` (ImageNet mean subtracted, then BGR), `"tf"` (scaled to [-1, 1]), `None`
            (unchanged), or a dict of `normalization_constants` arguments (plus `resize_size`, `crop_size`,
            `interpolation` that pretrained weights record).
        image_size: `(height, width)` a per-pixel mean must have.

    Example:

    >>> mean, std, reverse = preprocessing_constants("tf")
    >>> mean.tolist(), std.tolist(), reverse
    ([127.5, 127.5, 127.5], [127.5, 127.5, 127.5], False)
    """
    if isinstance(preprocessing, dict):
        if "mean" not in preprocessing or set(preprocessing) - set(_PREPROCESSING_KEYS):
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
            names=tuple(f"preprocessing[{key!r}]" for key in _PREPROCESSING_KEYS[:3]),
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


def standardize(images: Any, mean: Any, std: Any, reverse_channels: bool = False) -> Any:
    """`(images - mean) / std`, then channels reversed if `reverse_channels`; runs in tf.data and on any tensor.

    Example:

    >>> standardize(np.full((1, 1, 1, 3), 10.0), np.array([0.0, 4.0, 10.0]), 2.0, True).ravel().tolist()
    [0.0, 3.0, 5.0]
    """
    images = (images - mean) / std
    return images[..., ::-1] if reverse_channels else images


def normalizer(mean: Any, std: Any = None, *, channel_order: str = "rgb") -> Callable[[Any], Any]:
    """A function that `standardize`s batches of RGB images (arguments as `normalization_constants`).

    Example:

    >>> caffe = normalizer(IMAGENET_MEAN, channel_order="bgr")
    >>> torchvision = normalizer((123.675, 116.28, 103.53), (58.395, 57.12, 57.375))
    """
    mean, std, reverse_channels = normalization_constants(mean, std, channel_order)

    def normalize(images):
        return standardize(images, mean, std, reverse_channels)

    return normalize


def pixel_statistics(batches: Iterable[Any], image_size: Sequence[int] | None = None) -> dict[str, np.ndarray] | None:
    """Float32 `"pixel_mean"` `(height, width, 3)`, `"channel_mean"` and `"channel_std"` `(3,)` of images, in one pass.

    `batches` yields `(count, height, width, 3)` arrays or `(images, labels)` pairs (of `image_size` if given);
    `None` when there is no image.
    """
    count, total, squares = 0, 0.0, 0.0
    for batch in batches:
        batch = np.asarray(batch[0] if isinstance(batch, (tuple, list)) else batch, np.float64)
        size = batch.shape[1:3] if image_size is None else tuple(image_size)
        if batch.ndim != 4 or batch.shape[1:] != (*size, 3):
            raise ValueError(f"images must be batches of shape (count, height, width, 3); received {batch.shape}")
        count += len(batch)
        total = total + batch.sum(axis=0)
        squares = squares + (batch**2).sum(axis=0)
    if not count:
        return None
    pixel_mean = total / count
    channel_mean = pixel_mean.mean(axis=(0, 1))
    channel_variance = (squares / count).mean(axis=(0, 1)) - channel_mean**2
    return {
        "pixel_mean": pixel_mean.astype(np.float32),
        "channel_mean": channel_mean.astype(np.float32),
        "channel_std": np.sqrt(channel_variance).astype(np.float32),
    }


def cifar_preprocessing(statistics: dict | None, normalization: str | None = "pixel") -> dict[str, Any]:
    """The JSON-ready `{"mean", "std"}` of a CIFAR normalisation, as `cifar_pipeline` and export use it.

    Args:
        statistics: the training set's `pixel_statistics`; unused for `normalization=None`.
        normalization: `"pixel"` (per-pixel mean, divided by 255: the paper), `"channel"` (per-channel
            mean and standard deviation) or `None` (divided by 255).

    Example:

    >>> cifar_preprocessing({"pixel_mean": np.zeros((32, 32, 3))})["std"]
    255.0
    """
    _check_choice("normalization", normalization, CIFAR_NORMALIZATIONS)
    if normalization == "pixel":
        mean, std = statistics["pixel_mean"], 255.0
    elif normalization == "channel":
        mean, std = statistics["channel_mean"], statistics["channel_std"]
    else:
        mean, std = (0.0, 0.0, 0.0), 255.0
    return {"mean": np.asarray(mean, np.float64).tolist(), "std": np.asarray(std, np.float64).tolist()}
