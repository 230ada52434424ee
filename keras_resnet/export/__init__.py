"""Export for deployment: SavedModel (TensorFlow Serving), LiteRT (TFLite) and ONNX, preprocessing inside.

`keras_resnet.export(model, path)` writes one of these, the format named by
`format=` or else by `path` (`.tflite`, `.onnx`, any other path a folder):

- `"saved_model"` (`export_saved_model`, module `saved_model`): a folder
  whose signatures take raw uint8 images or encoded image bytes, resize,
  preprocess and return probabilities and the top-k class names, for
  `tf.saved_model.load`, TensorFlow Serving (`version=N` writes the
  `PATH/N/` layout), `saved_model_cli` and `keras.layers.TFSMLayer`; plus a
  `serving_litert` signature the LiteRT converter accepts with builtin ops.
- `"litert"` (`export_litert`, module `litert`): a `.tflite` file, uint8
  images in, float32 or full-integer int8, builtin ops only, for
  `ai_edge_litert.interpreter.Interpreter` on phones and boards.
- `"onnx"` (`export_onnx`, module `onnx`): an `.onnx` file (opset 17 or
  later), uint8 images in, for ONNX Runtime.

Each takes the model's preprocessing (`"caffe"`, `"tf"`, a mean/std dict
such as `cifar_preprocessing` returns, `None`, or by default `"auto"`: what
the model records, nothing more for a model that includes its own), so a
consumer feeds plain RGB pixels and never re-implements it; none needs
keras_resnet. A logits model's export adds a softmax (`from_logits=None`
reads the output activation): every format serves probabilities.
Nothing is overwritten: the export is written beside `path` and renamed
into place when complete, so a failure leaves nothing at `path`.

A `.keras` archive is the way to ship a model for further Keras work (the
architecture, weights and optimizer state; loading it needs keras_resnet
imported, for its custom layers). It is Keras' own `model.save`:

```python
model.save("resnet20.keras")
model = keras.saving.load_model("resnet20.keras", safe_mode=True)
```

The module itself is callable: `keras_resnet.export(...)` is
`keras_resnet.export.export(...)`. TensorFlow (and `tf2onnx` for ONNX) is
imported inside the functions: importing this package does not need it.
"""

import inspect
import os
import sys
import types

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
# The file formats by their file's extension; any other path is a SavedModel folder.
EXTENSIONS = {".tflite": "litert", ".onnx": "onnx"}


def format_for(path, format=None):
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


def export(model, path, format=None, **options):
    """Exports a classifier for a deployment runtime, with its preprocessing inside.

    Args:
        model: a `keras.Model` with one image input `(batch, height, width,
            3)` and one output `(batch, classes)`, e.g. `ResNet20(...)`.
        path: where to write: a folder for `"saved_model"`, a file for
            `"litert"` and `"onnx"`. It must not exist or be empty.
        format: `"saved_model"`, `"litert"` or `"onnx"`; `None` (default)
            takes it from `path`: `.tflite` is LiteRT, `.onnx` ONNX, any
            other path a SavedModel folder. A format that another format's
            extension contradicts (`format="saved_model"` for `x.onnx`) is
            refused.
        **options: the format's options (see `export_saved_model`,
            `export_litert`, `export_onnx`): all take `preprocessing`,
            `image_size` and `from_logits`; `"saved_model"` also
            `class_names`, `top_k`, `crop_to_aspect_ratio` and `version`;
            `"litert"` `quantization` and `representative_data`; `"onnx"`
            `opset`.

    Returns:
        What the format's function returns: the metadata dict for
        `"saved_model"`, the path written for the others.

    Raises:
        ValueError: an unknown format or one the path's extension
            contradicts, an option the format does not take,
            a model that is not an image classifier, a bad option value or
            an existing non-empty `path`; the message names the argument.

    Example:

    ```python
    model = keras_resnet.ResNet20(input_shape=(32, 32, 3), classes=10)
    keras_resnet.export(model, "serving/resnet20", version=1, preprocessing="tf")
    keras_resnet.export(model, "resnet20.tflite", preprocessing="tf")  # format="litert"
    keras_resnet.export(model, "resnet20.onnx", preprocessing="tf")  # format="onnx"
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


class _CallableModule(types.ModuleType):
    """This package's class: `keras_resnet.export(...)` calls `export`, while `keras_resnet.export.NAME` and
    `from keras_resnet.export import NAME` keep working (a function bound to the same name would hide them)."""

    __call__ = staticmethod(export)


sys.modules[__name__].__class__ = _CallableModule
