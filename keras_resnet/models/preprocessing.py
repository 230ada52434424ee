"""In-model preprocessing (`include_preprocessing=True`): raw RGB images (0-255, any size) in, normalised input out.

The statistics are constants, not weights, so weight files load with preprocessing on or off.
"""

from __future__ import annotations

from typing import Any

import keras
import numpy as np

from keras_resnet.models.layers import ReverseChannels
from keras_resnet.normalization import pixel_statistics, preprocessing_constants


def preprocessing_statistics(preprocessing: Any, image_size: tuple[int, int]) -> tuple[np.ndarray, np.ndarray, bool]:
    """Resolves the `preprocessing` argument of a builder into its statistics.

    Args:
        preprocessing: a value `keras_resnet.normalization` reads (`"caffe"`, `"tf"`, a dict
            `{"mean": ..., "std": ...}`), or training images (an array or batches) whose per-pixel
            mean is subtracted before dividing by 255 (the paper's CIFAR preprocessing).
        image_size: `(height, width)` of the network's input.

    Returns:
        `(mean, std, reverse_channels)`: float32 arrays `(3,)` or `(height, width, 3)`, and a bool.

    Example:

    >>> mean, std, bgr = preprocessing_statistics("tf", (224, 224))
    >>> mean.tolist(), std.tolist(), bgr
    ([127.5, 127.5, 127.5], [127.5, 127.5, 127.5], False)
    """
    if not (preprocessing is None or isinstance(preprocessing, (str, dict))):
        preprocessing = {"mean": _pixel_mean(preprocessing, image_size), "std": 255.0}
    mean, std, reverse = preprocessing_constants(preprocessing, tuple(image_size))
    return np.array(mean), np.array(std), reverse


def _pixel_mean(images, image_size):
    """Per-pixel mean of training images: one array, or an iterable of batches."""
    try:
        statistics = pixel_statistics([images] if hasattr(images, "shape") else images, image_size)
    except (TypeError, ValueError) as error:
        raise ValueError(
            "preprocessing must be 'caffe', 'tf', a dict {'mean': ..., 'std': ...} or training images of "
            f"shape (count, {image_size[0]}, {image_size[1]}, 3) to adapt from (an array or batches); "
            f"received {type(images).__name__} ({error})"
        ) from None
    if statistics is None:
        raise ValueError("preprocessing images to adapt from must hold at least one image; received none")
    return statistics["pixel_mean"]


PIPELINE_KEYS = ("resize_size", "crop_size", "interpolation")


def resize_plan(preprocessing: Any, image_size: tuple[int, int]) -> dict:
    """The resize before a centre crop that a `preprocessing` dict with `resize_size` asks for.

    Returns:
        `{}` or `{"resize_size": image_size * resize_size / crop_size, "interpolation": ...}`.

    Example:

    >>> resize_plan({"mean": 0, "resize_size": 256, "crop_size": 224, "interpolation": "bilinear"}, (224, 224))
    {'resize_size': (256, 256), 'interpolation': 'bilinear'}
    """
    if not isinstance(preprocessing, dict) or "resize_size" not in preprocessing:
        return {}
    ratio = preprocessing["resize_size"] / preprocessing.get("crop_size", preprocessing["resize_size"])
    resize = tuple(int(round(side * ratio)) for side in image_size)
    return {"resize_size": resize, "interpolation": preprocessing.get("interpolation", "bilinear")}


def add_preprocessing(
    x: keras.KerasTensor,
    mean: np.ndarray,
    std: np.ndarray,
    reverse_channels: bool,
    *,
    image_size: tuple[int, int],
    data_format: str,
    resize_size: tuple[int, int] | None = None,
    interpolation: str = "bilinear",
) -> keras.KerasTensor:
    """Applies `Resizing` (aspect-preserving crop), `Rescaling` and, for BGR, `ReverseChannels` to raw images.

    Args:
        x: tensor of RGB images, 0-255, any height and width.
        mean: float32 array `(3,)` or `(height, width, 3)` (channels last).
        std: float32 array of the mean's shape.
        reverse_channels: reverse the channels after normalising (RGB to BGR).
        image_size: `(height, width)` the images are resized to.
        data_format: `"channels_last"` or `"channels_first"`.
        resize_size: a size to resize to (antialiased, as PIL) before centre-cropping `image_size`.
        interpolation: `"bilinear"` or `"bicubic"`.

    Example:

    >>> x = keras.Input((None, None, 3))
    >>> y = add_preprocessing(x, np.zeros(3, "float32"), np.ones(3, "float32"), False,
    ...                       image_size=(32, 32), data_format="channels_last")
    >>> tuple(y.shape)
    (None, 32, 32, 3)
    """
    if data_format == "channels_first":  # (3,) -> (3, 1, 1); (height, width, 3) -> (3, height, width)
        mean, std = (a.reshape(3, 1, 1) if a.ndim == 1 else np.moveaxis(a, -1, 0) for a in (mean, std))
    if resize_size is None:
        x = keras.layers.Resizing(
            *image_size, crop_to_aspect_ratio=True, data_format=data_format, name="preprocessing_resize"
        )(x)
    else:
        x = keras.layers.Resizing(
            *resize_size,
            interpolation=interpolation,
            crop_to_aspect_ratio=True,
            antialias=True,
            data_format=data_format,
            name="preprocessing_resize",
        )(x)
        x = keras.layers.CenterCrop(*image_size, data_format=data_format, name="preprocessing_crop")(x)
    # Rescaling, not Normalization: constants every export format folds, not captured tensors.
    x = keras.layers.Rescaling(1.0 / std, offset=-mean / std, name="preprocessing_normalize")(x)
    if reverse_channels:
        x = ReverseChannels(data_format=data_format, name="preprocessing_bgr")(x)
    return x
