"""LiteRT (TFLite) export: uint8 images in, float32 or full-integer int8, builtin ops only.

The `serving_default` signature takes `images`, uint8 RGB pixels `(batch, height, width, 3)`, and returns
`probabilities` `(batch, classes)`: float32, or with `quantization="int8"` uint8 read as
`(value - zero_point) * scale`.
"""

from __future__ import annotations

import os
from collections.abc import Iterable

import keras
import numpy as np

from keras_resnet._validation import check_choice
from keras_resnet.export._common import pixels_model, require_tensorflow_backend, served, staged

QUANTIZATIONS = (None, "int8")
REPRESENTATIVE_IMAGES = 200


def _representative_images(representative_data, image_size):
    """Up to `REPRESENTATIVE_IMAGES` images at `image_size` from `representative_data`, and `_pinning_image`."""
    if hasattr(representative_data, "images") and callable(representative_data.images):
        # Shuffled: a source lists its files class by class, and 200 images of one class calibrate badly.
        representative_data = representative_data.images(shuffle=True, seed=0)
    images = []
    for element in representative_data:
        if isinstance(element, (tuple, list)):
            element = element[0]
        batch = np.asarray(element)
        batch = batch[None] if batch.ndim == 3 else batch
        if batch.ndim != 4 or batch.shape[-1] != 3:
            raise ValueError(
                "representative_data must yield RGB images (height, width, 3) or batches of them, alone or as "
                f"(images, labels); received an element of shape {np.shape(element)}"
            )
        if batch.size and (batch.min() < 0 or batch.max() > 255):
            raise ValueError(
                "representative_data must hold RGB pixels in [0, 255] before preprocessing (e.g. the training "
                "source, not the normalised batches of its pipeline); received values in "
                f"[{batch.min():.3g}, {batch.max():.3g}]"
            )
        if batch.shape[1:3] != tuple(image_size):
            resized = keras.ops.image.resize(batch.astype(np.float32), image_size, antialias=True)
            batch = np.clip(keras.ops.convert_to_numpy(resized), 0, 255)
        images.extend(batch.astype(np.float32))
        if len(images) >= REPRESENTATIVE_IMAGES:
            break
    if not images:
        raise ValueError("representative_data must yield at least one image; received an empty collection")
    images = images[:REPRESENTATIVE_IMAGES]
    brightest = max(float(image.max()) for image in images)
    if brightest <= 1:
        raise ValueError(
            "representative_data must hold RGB pixels on the 0-255 scale, as served images are; received "
            f"images whose largest value is {brightest:.3g} (scaled to [0, 1]? multiply them by 255)"
        )
    return [*images, _pinning_image(images[0])]


def _pinning_image(image):
    """A copy of `image` with pixels 0 and 255, so the calibrated input is the pixel value (scale 1, zero point 0)."""
    pinned = image.copy()
    pinned[0, 0], pinned[0, 1] = 0.0, 255.0
    return pinned


def export_litert(
    model: keras.Model,
    path: str | os.PathLike,
    *,
    preprocessing: str | dict | None = "auto",
    image_size: int | tuple[int, int] | None = None,
    from_logits: bool | None = None,
    quantization: str | None = None,
    representative_data: Iterable | None = None,
) -> str:
    """Writes a LiteRT (TFLite) file that classifies uint8 images with builtin ops only.

    Args:
        model, preprocessing, image_size, from_logits: as for `keras_resnet.export.export_saved_model`.
        path: the `.tflite` file to write; it must not exist (or be empty).
        quantization: `None` (float32) or `"int8"` (post-training full-integer, uint8 input and output).
        representative_data: with `"int8"`, training images that calibrate the ranges: a `keras_resnet.data`
            source (drawn at random), a `tf.data.Dataset` or an iterable of RGB 0-255 images or batches, alone
            or as `(images, labels)`.

    Returns:
        The path written, as a string.

    Example:

    ```python
    model = keras_resnet.ResNet20(input_shape=(32, 32, 3), classes=10)
    images = np.random.default_rng(0).integers(0, 256, (8, 32, 32, 3), dtype=np.uint8)
    keras_resnet.export.export(model, "resnet20.tflite", quantization="int8", representative_data=images,
                               preprocessing="tf")
    interpreter = ai_edge_litert.interpreter.Interpreter("resnet20.tflite")
    ```
    """
    require_tensorflow_backend("litert")
    import tensorflow as tf

    check_choice("quantization", quantization, QUANTIZATIONS)
    model, preprocessing, image_size, from_logits = served(model, preprocessing, image_size, from_logits)
    # Builtin ops only: the plain LiteRT runtime runs them without the Flex (TensorFlow ops) delegate.
    converter_options = {"target_spec": {"supported_ops": [tf.lite.OpsSet.TFLITE_BUILTINS]}}
    if quantization == "int8":
        if representative_data is None:
            raise ValueError(
                "representative_data must be given with quantization='int8' (images that calibrate "
                "the int8 ranges, e.g. a keras_resnet.data source of the training images); "
                "received None"
            )
        images = _representative_images(representative_data, image_size)
        converter_options = {
            "optimizations": [tf.lite.Optimize.DEFAULT],
            "representative_dataset": lambda: ([image[None]] for image in images),
            "target_spec": {"supported_ops": [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]},
            "inference_input_type": tf.uint8,
            "inference_output_type": tf.uint8,
        }
    elif representative_data is not None:
        raise ValueError(
            "representative_data goes with quantization='int8' only; received representative data "
            f"with quantization={quantization!r}"
        )
    # int8: float pixels in, which the converter replaces by a uint8 input (see `_pinning_image`).
    pixels = pixels_model(
        model, preprocessing, image_size, from_logits=from_logits, dtype="float32" if quantization else "uint8"
    )
    with staged(path, "path", file_name="model.tflite") as target:
        pixels.export(target, format="litert", verbose=False, **converter_options)
    return str(path)
