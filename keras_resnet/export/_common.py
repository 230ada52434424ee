"""What every export format shares: argument checks, the pixels-to-probabilities model, staged writing."""

import contextlib
import os
import shutil
import tempfile

import keras

from keras_resnet import _keras_compat
from keras_resnet._validation import check_choice, check_model, is_positive_int
from keras_resnet.normalization import preprocessing_constants, standardize

PREPROCESSING_AUTO = "auto"


def float32_copy(model):
    """`model` when all its layers compute in float32, else a float32 copy with the same weights.

    Converters would write a mixed-precision model's half-precision ops, which runtimes refuse (ONNX Runtime
    has no bfloat16 convolution) or run slowly.
    """
    layers = [layer for layer in _keras_compat.flatten_layers(model) if not isinstance(layer, keras.Model)]
    if all(layer.compute_dtype == "float32" for layer in layers):
        return model
    copy = model.__class__.from_config(_float32_policies(model.get_config()))
    copy.set_weights([keras.ops.convert_to_numpy(weight).astype("float32") for weight in model.weights])
    return copy


def _float32_policies(config):
    """`config` with every serialised dtype policy replaced by `"float32"`."""
    if isinstance(config, list):
        return [_float32_policies(item) for item in config]
    if not isinstance(config, dict):
        return config
    if config.get("class_name") == "DTypePolicy":
        return "float32"
    return {key: _float32_policies(value) for key, value in config.items()}


def require_tensorflow_backend(format):
    """Refuses a `format` that Keras converts only from TensorFlow graphs on another backend."""
    backend = keras.backend.backend()
    if backend != "tensorflow":
        raise ValueError(
            f"format={format!r} needs the TensorFlow backend (KERAS_BACKEND=tensorflow, set before keras is "
            f"imported); received a model of the {backend!r} backend. format='saved_model' exports from any "
            "backend with TensorFlow installed"
        )


def served_preprocessing(model, preprocessing):
    """The preprocessing an export puts before `model`: the one given, or with `"auto"` the model's record.

    A model built with `include_preprocessing=True` normalises its input itself: it takes 0-255 pixels as
    they are, and any other preprocessing would normalise twice, so it is refused.
    """
    if getattr(model, "includes_preprocessing", False):
        if preprocessing not in (PREPROCESSING_AUTO, None):
            raise ValueError(
                f"preprocessing must be 'auto' or None for model {model.name!r}, which normalises its input itself "
                "(built with include_preprocessing=True), so that pixels are not normalised twice; "
                f"received preprocessing={preprocessing!r}"
            )
        return None
    if isinstance(preprocessing, str) and preprocessing == PREPROCESSING_AUTO:
        return getattr(model, "preprocessing", None)
    return preprocessing


def served_from_logits(model, from_logits):
    """Whether the export adds a softmax: `from_logits`, or with `None` what the model's output activation says."""
    check_choice("from_logits", from_logits, (None, True, False))
    if from_logits is not None:
        return from_logits
    activation = _keras_compat.output_activation(model)
    if activation is keras.activations.softmax:
        return False
    if activation is keras.activations.linear:
        return True
    raise ValueError(
        "from_logits must be True (the model outputs logits: a softmax is added) or False (it outputs "
        f"probabilities) for model {model.name!r}, whose output activation is neither softmax nor linear "
        f"({getattr(activation, '__name__', activation)!r}); received from_logits=None"
    )


def served(model, preprocessing, image_size, from_logits):
    """What every format checks and decides before converting: `(float32_copy(model), served_preprocessing,
    served_size, served_from_logits)`."""
    check_model("model", model)
    preprocessing = served_preprocessing(model, preprocessing)
    image_size = served_size(model, image_size)
    from_logits = served_from_logits(model, from_logits)
    preprocessing_constants(preprocessing, image_size)  # checks the value before anything is built
    return float32_copy(model), preprocessing, image_size, from_logits


def served_size(model, image_size):
    """The `(height, width)` of served images, checked against the model's input and output."""
    shape = model.input_shape
    if not isinstance(shape, tuple) or len(shape) != 4 or shape[-1] != 3:
        raise ValueError(
            "model must take one batch of RGB images, channels last, input shape (batch, height, width, 3); "
            f"received input shape {shape}"
        )
    if not (isinstance(model.output_shape, tuple) and len(model.output_shape) == 2):
        raise ValueError(
            f"model must output one score per class, shape (batch, classes); received {model.output_shape}"
        )
    fixed = shape[1:3]
    if image_size is None:
        if None not in fixed:
            return fixed
        if "preprocessing_resize" in {layer.name for layer in model.layers}:
            # A model that resizes its input itself (include_preprocessing, keras-resnet train checkpoints)
            # serves images of the size it resizes to.
            resize = model.get_layer("preprocessing_resize")
            return (resize.height, resize.width)
        raise ValueError(
            f"image_size must be given as (height, width) for a model with a free input size {fixed}; received None"
        )
    size = (image_size, image_size) if isinstance(image_size, int) else tuple(image_size)
    valid = len(size) == 2 and all(map(is_positive_int, size))
    if not valid or any(side not in (None, want) for side, want in zip(fixed, size)):
        raise ValueError(
            f"image_size must be two positive integers (height, width) agreeing with the model's input size "
            f"{fixed}; received {image_size!r}"
        )
    return size


def pixels_model(model, preprocessing, image_size, *, from_logits, dtype):
    """A `keras.Model` from RGB pixels (0-255, `dtype`) of `image_size` to `{"probabilities": float32 ...}`.

    The preprocessing is plain `keras.ops`, which every converter maps to builtin ops; `model`'s weights are
    shared, not copied.
    """
    mean, std, reverse_channels = preprocessing_constants(preprocessing, image_size)
    images = keras.Input((*image_size, 3), dtype=dtype, name="images")
    inputs = standardize(keras.ops.cast(images, "float32"), mean, std, reverse_channels)
    scores = keras.ops.cast(model(inputs), "float32")
    probabilities = keras.ops.softmax(scores, axis=-1) if from_logits else scores
    # A dict output: converters name the output after its key (LiteRT signatures would say "output_0").
    return keras.Model(images, {"probabilities": probabilities}, name=f"{model.name}_on_pixels")


@contextlib.contextmanager
def staged(path, argument, file_name=None):
    """Yields where to write `path`'s content, a hidden folder beside it; on success renames it to `path`.

    Args:
        path: the folder (`file_name=None`) or file to create; it may exist only as an empty folder
            (`file_name=None`) or an empty file.
        argument: the argument name that errors name.
        file_name: for a one-file format, the name to write inside the staging folder (converters that
            check the extension see it); the yielded path is then that file.
    """
    path = os.path.abspath(os.fspath(path))
    if os.path.isdir(path):
        if file_name is not None or os.listdir(path):
            kind = "a file path" if file_name is not None else "a new or empty folder"
            raise ValueError(
                f"{argument} must be {kind} (nothing is overwritten); received {path!r}, "
                f"an existing {'non-empty ' if os.listdir(path) else ''}folder"
            )
    elif os.path.lexists(path) and (not os.path.isfile(path) or os.path.getsize(path)):
        raise ValueError(
            f"{argument} must be a new path or an empty file or folder (nothing is overwritten); "
            f"received {path!r}, which exists and is not empty"
        )
    parent = os.path.dirname(path)
    os.makedirs(parent, exist_ok=True)
    staging = tempfile.mkdtemp(prefix=f".{os.path.basename(path)}.partial-", dir=parent)
    try:
        target = staging if file_name is None else os.path.join(staging, file_name)
        yield target
        if os.path.isdir(path):
            os.rmdir(path)  # empty, checked above; a rename cannot replace a folder everywhere
        os.replace(target, path)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
