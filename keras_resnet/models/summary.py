"""Model summaries: parameters and multiply-accumulates, counted as the paper counts FLOPs."""

from __future__ import annotations

import math

import keras

from keras_resnet._validation import check_model as _check_model
from keras_resnet.models.layers import spatial_axes


def count_macs(model: keras.Model) -> int:
    """Multiply-accumulates of one forward pass per image: convolutions and dense layers, as the paper's "FLOPs".

    Args:
        model: a built Keras model with a fixed input size.

    Example:

    >>> import keras_resnet
    >>> round(count_macs(keras_resnet.ResNet50()) / 1e9, 2)
    3.86
    """
    _check_model("model", model)
    total = 0
    for layer in model.layers:
        if isinstance(layer, keras.layers.Conv2D):
            out_shape = layer.output.shape
            spatial = [out_shape[axis] for axis in spatial_axes(layer.data_format)]
            if any(d is None for d in spatial):
                raise ValueError(
                    "model must have a fixed input size to count multiply-adds; "
                    f"layer {layer.name} has output shape {tuple(out_shape)}"
                )
            total += math.prod(spatial) * math.prod(layer.kernel.shape)
        elif isinstance(layer, keras.layers.Dense):
            total += layer.kernel.shape[0] * layer.kernel.shape[1]
    return int(total)


def model_summary(model: keras.Model) -> dict:
    """The figures of `model`: name, input shape, layers, parameters, multiply-adds.

    Args:
        model: a built Keras model with a fixed input size.

    Returns:
        dict with `name`, `input_shape`, `layers`, `params`, `trainable_params`, `macs` and `gmacs`.

    Example:

    >>> import keras_resnet
    >>> model_summary(keras_resnet.ResNet18())["gmacs"]
    1.81
    """
    _check_model("model", model)
    macs = count_macs(model)
    return {
        "name": model.name,
        "input_shape": tuple(model.input_shape[1:]),
        "layers": len(model.layers),
        "params": model.count_params(),
        "trainable_params": int(sum(math.prod(w.shape) for w in model.trainable_weights)),
        "macs": macs,
        "gmacs": round(macs / 1e9, 2),
    }
