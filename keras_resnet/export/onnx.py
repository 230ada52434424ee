"""ONNX export: uint8 images in, probabilities out, for ONNX Runtime and other ONNX consumers.

The file's one input, `images`, takes uint8 RGB images `(batch, height,
width, 3)` at the model's input size (dynamic batch); its one output, `probabilities`, is the
float32 class probabilities `(batch, classes)`. The preprocessing is inside.

Built on Keras' own `model.export(format="onnx")` on the TensorFlow backend
(Keras converts through `tf2onnx`: `pip install 'keras-resnet[export]'`),
called on the model wrapped with its preprocessing (`_common.pixels_model`).
"""

import numpy as np

from keras_resnet._validation import check_int
from keras_resnet.export._common import pixels_model, require_tensorflow_backend, served, staged

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
    keras_resnet.export.export(model, "resnet20.onnx", format="onnx", preprocessing="tf")
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
