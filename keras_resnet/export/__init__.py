"""Export for deployment with the preprocessing inside: SavedModel, LiteRT (TFLite) and ONNX.

Every format puts the model's preprocessing before it and a softmax after a logits model, so a consumer
feeds plain RGB pixels, gets probabilities and needs no keras_resnet. The export is written beside `path` and
renamed into place when complete: a failure leaves nothing there. For further Keras work save a `.keras`
archive instead (loading it needs keras_resnet imported, for its custom layers).
"""

from __future__ import annotations

import inspect
import os
from typing import Any

import keras

from keras_resnet._validation import check_choice
from keras_resnet.export.litert import export_litert
from keras_resnet.export.onnx import export_onnx
from keras_resnet.export.saved_model import export_saved_model
from keras_resnet.normalization import cifar_preprocessing

__all__ = [
    "EXTENSIONS",
    "FORMATS",
    "cifar_preprocessing",
    "export",
    "export_litert",
    "export_onnx",
    "export_saved_model",
    "format_for",
]

FORMATS = {"saved_model": export_saved_model, "litert": export_litert, "onnx": export_onnx}
EXTENSIONS = {".tflite": "litert", ".onnx": "onnx"}


def format_for(path: str | os.PathLike, format: str | None = None) -> str:
    """The format to write at `path`: `format`, or the one its extension names; a mismatch is refused.

    Example:

    >>> format_for("resnet20.onnx"), format_for("serving/resnet20"), format_for("m.tflite", "litert")
    ('onnx', 'saved_model', 'litert')
    """
    extension = os.path.splitext(os.fspath(path))[1].lower()
    named = EXTENSIONS.get(extension)
    if format is None:
        return named or "saved_model"
    check_choice("format", format, tuple(FORMATS))
    if named is not None and named != format:
        raise ValueError(
            f"format must agree with the path's extension ({extension} is format={named!r}; "
            f"{', '.join(f'{e} {f}' for e, f in EXTENSIONS.items())}, a folder saved_model); "
            f"received format={format!r} for path {os.fspath(path)!r}"
        )
    return format


def export(model: keras.Model, path: str | os.PathLike, format: str | None = None, **options: Any) -> Any:
    """Exports an image classifier for a deployment runtime, with its preprocessing inside.

    Args:
        model: a `keras.Model` from `(batch, height, width, 3)` images to `(batch, classes)` scores.
        path: a folder for `"saved_model"`, a file for `"litert"` and `"onnx"`; it must not exist or be empty.
        format: `"saved_model"`, `"litert"` or `"onnx"`; `None` takes it from `path` (`.tflite`, `.onnx`,
            else a SavedModel folder).
        **options: the format's keyword options (`export_saved_model`, `export_litert`, `export_onnx`).

    Returns:
        The metadata dict for `"saved_model"`, the path written for the others.

    Example:

    ```python
    model = keras_resnet.ResNet20(input_shape=(32, 32, 3), classes=10)
    keras_resnet.export.export(model, "serving/resnet20", version=1, preprocessing="tf")
    keras_resnet.export.export(model, "resnet20.tflite", preprocessing="tf")  # format="litert"
    keras_resnet.export.export(model, "resnet20.onnx", preprocessing="tf")  # format="onnx"
    ```
    """
    format = format_for(path, format)
    function = FORMATS[format]
    accepted = [
        name
        for name, parameter in inspect.signature(function).parameters.items()
        if parameter.kind is inspect.Parameter.KEYWORD_ONLY
    ]
    for name, value in options.items():
        if name not in accepted:
            raise ValueError(
                f"{name} is not an option of format={format!r}, which takes {', '.join(accepted)}; "
                f"received {name}={value!r}"
            )
    return function(model, path, **options)
