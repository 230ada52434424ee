"""ONNX export: uint8 `images` `(batch, height, width, 3)` in, float32 `probabilities` out, preprocessing inside."""

from __future__ import annotations

import os

import keras
import numpy as np

from keras_resnet._validation import check_int
from keras_resnet.export._common import pixels_model, require_tensorflow_backend, served, staged

MIN_OPSET = 17


def export_onnx(
    model: keras.Model,
    path: str | os.PathLike,
    *,
    preprocessing: str | dict | None = "auto",
    image_size: int | tuple[int, int] | None = None,
    from_logits: bool | None = None,
    opset: int = MIN_OPSET,
) -> str:
    """Writes an ONNX file that classifies uint8 images with the model's preprocessing inside.

    Args:
        model, preprocessing, image_size, from_logits: as for `keras_resnet.export.export_saved_model`.
        path: the `.onnx` file to write; it must not exist (or be empty).
        opset: the ONNX opset, 17 or later.

    Returns:
        The path written, as a string.

    Example:

    ```python
    model = keras_resnet.ResNet20(input_shape=(32, 32, 3), classes=10)
    keras_resnet.export.export(model, "resnet20.onnx", preprocessing="tf")
    session = onnxruntime.InferenceSession("resnet20.onnx")
    probabilities = session.run(None, {"images": np.zeros((1, 32, 32, 3), np.uint8)})[0]
    ```
    """
    require_tensorflow_backend("onnx")
    try:
        import tf2onnx  # noqa: F401 - Keras' ONNX converter on TensorFlow, imported by Keras inside its export
    except ImportError:
        raise ImportError(
            "format='onnx' needs tf2onnx (Keras' ONNX converter on TensorFlow), which is not installed: "
            "pip install 'keras-resnet[export]' (tf2onnx, onnx, onnxruntime)"
        ) from None
    check_int("opset", opset, MIN_OPSET)
    model, preprocessing, image_size, from_logits = served(model, preprocessing, image_size, from_logits)
    pixels = pixels_model(model, preprocessing, image_size, from_logits=from_logits, dtype="uint8")
    pixels(np.zeros((1, *image_size, 3), np.uint8))  # Keras' ONNX export refuses a model that was never called
    with staged(path, "path", file_name="model.onnx") as target:
        pixels.export(target, format="onnx", opset_version=opset, verbose=False)
    return str(path)
