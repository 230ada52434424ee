"""In-model preprocessing: raw images in, the network's normalised input out.

`include_preprocessing=True` on a builder puts these layers between the
model's input and its stem, as keras.applications' EfficientNet and
ConvNeXt do, so the model takes raw RGB images (uint8 or float, 0-255, any
height and width) and needs no `preprocess_input`:

1. `keras.layers.Resizing` to the network's image size, centre-cropping to
   its aspect ratio first (`crop_to_aspect_ratio=True`). Pretrained weights
   whose pipeline resizes larger and centre-crops (torchvision: 256 then 224)
   resize to that size with their interpolation, then `keras.layers.CenterCrop`.
2. `keras.layers.Rescaling` with fixed statistics: `(x - mean) / std`.
3. For the keras.applications v1 ("caffe") statistics, `ReverseChannels`
   (RGB to BGR).

The statistics are constants, not weights: a model's weights are the same
with preprocessing on or off, so weight files load either way. Every layer
is a standard, serializable Keras layer that the export formats convert.
"""

import keras
import numpy as np

from keras_resnet.models.layers import ReverseChannels
from keras_resnet.normalization import pixel_statistics, preprocessing_constants


def preprocessing_statistics(preprocessing, image_size):
    """Resolves the `preprocessing` argument of a builder into its statistics.

    Args:
        preprocessing: `"caffe"` (keras.applications ResNet v1: BGR, minus
            the ImageNet mean), `"tf"` (ResNet v2: scaled to [-1, 1]), a
            dict `{"mean": ..., "std": ...}` on the 0-255 scale, per channel
            `(3,)` or per pixel `(height, width, 3)` (what
            `keras_resnet.export.cifar_preprocessing` returns), or training
            images to adapt from: an array `(count, height, width, 3)` or an
            iterable of such batches (a `tf.data.Dataset` of images or of
            `(images, labels)`); their per-pixel mean is subtracted and the
            result divided by 255, the paper's CIFAR preprocessing.
        image_size: `(height, width)` of the network's input.

    Returns:
        `(mean, std, reverse_channels)`: float32 arrays of shape `(3,)` or
        `(height, width, 3)`, and a bool.

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


# Keys of a `preprocessing` dict that describe resizing rather than statistics.
PIPELINE_KEYS = ("resize_size", "crop_size", "interpolation")


def resize_plan(preprocessing, image_size):
    """The resize before the centre crop a `preprocessing` dict asks for, at the model's image size.

    Args:
        preprocessing: a `preprocessing` value; only a dict with `resize_size` and `crop_size`
            (what pretrained weights record) asks for a resize before a crop.
        image_size: `(height, width)` the model takes.

    Returns:
        `{}` (resize straight to `image_size`) or `{"resize_size": (h, w), "interpolation": ...}`:
        the size to resize to, scaled as `resize_size / crop_size` of `image_size`, before a
        centre crop to `image_size`.

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
    x,
    mean,
    std,
    reverse_channels,
    *,
    image_size,
    data_format,
    resize_size=None,
    interpolation="bilinear",
):
    """Applies resize and normalisation layers to a tensor of raw images.

    Args:
        x: tensor of RGB images, 0-255, any height and width.
        mean: float32 array `(3,)` or `(height, width, 3)` (channels last).
        std: float32 array of the mean's shape.
        reverse_channels: reverse the channels after normalising (RGB to BGR).
        image_size: `(height, width)` the images are resized to.
        data_format: `"channels_last"` or `"channels_first"`.
        resize_size: `None`, or `(height, width)` to resize to (with antialiasing, as PIL and
            torchvision do) before centre-cropping `image_size`.
        interpolation: the resize's interpolation, `"bilinear"` or `"bicubic"`.

    Returns:
        The preprocessed tensor.

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
    # (x - mean) / std as a Rescaling: the statistics stay constants of the graph, which every
    # export format folds (a Normalization layer's statistics are captured tensors instead).
    x = keras.layers.Rescaling(1.0 / std, offset=-mean / std, name="preprocessing_normalize")(x)
    if reverse_channels:
        x = ReverseChannels(data_format=data_format, name="preprocessing_bgr")(x)
    return x
