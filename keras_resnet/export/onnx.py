"""ONNX export: uint8 images in, probabilities out, for ONNX Runtime and other ONNX consumers.

The file's one input, `images`, takes uint8 RGB images `(batch, height,
width, 3)` at the model's input size (dynamic batch); its one output, `probabilities`, is the
float32 class probabilities `(batch, classes)`. The preprocessing is inside.

Built on Keras' own `model.export(format="onnx")` (on the TensorFlow backend
Keras converts through `tf2onnx`, which must be installed), called on the
model wrapped with its preprocessing (`_common.pixels_model`).
"""

import numpy as np

from keras_resnet._validation import check_int, check_model
from keras_resnet.export._common import (
    float32_copy,
    pixels_model,
    served_from_logits,
    served_preprocessing,
    served_size,
    staged,
)

MIN_OPSET = 17


def export_onnx(model, path, *, preprocessing="auto", image_size=None, from_logits=None, opset=MIN_OPSET):
    """Writes an ONNX file that classifies uint8 images with the model's preprocessing inside.

    See `keras_resnet.export.onnx` for the file's input and output. The file
    is written beside `path` and renamed into place when complete.

    Args:
        model, preprocessing, image_size, from_logits: as for
            `keras_resnet.export.export_litert`.
        path: the `.onnx` file to write; it must not exist (or be empty).
        opset: the ONNX opset, 17 or later.

    Returns:
        The path written, as a string.

    Raises:
        ValueError: an argument is not one of its allowed values, or `path`
            exists and is not empty; the message names the argument and
            what was received.

    Example:

    ```python
    model = keras_resnet.ResNet20(input_shape=(32, 32, 3), classes=10)
    keras_resnet.export(model, "resnet20.onnx", format="onnx", preprocessing="tf")
    session = onnxruntime.InferenceSession("resnet20.onnx")
    probabilities = session.run(None, {"images": np.zeros((1, 32, 32, 3), np.uint8)})[0]
    ```
    """
    check_model("model", model)
    model = float32_copy(model)
    preprocessing = served_preprocessing(model, preprocessing)
    check_int("opset", opset, MIN_OPSET)
    image_size = served_size(model, image_size)
    from_logits = served_from_logits(model, from_logits)
    pixels = pixels_model(model, preprocessing, image_size, from_logits=from_logits, dtype="uint8")
    pixels(np.zeros((1, *image_size, 3), np.uint8))  # Keras' ONNX export refuses a model that was never called
    with staged(path, "path", file_name="model.onnx") as target:
        pixels.export(target, format="onnx", opset_version=opset, verbose=False)
    return str(path)
