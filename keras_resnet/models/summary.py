"""Model summaries: parameters and multiply-accumulates, counted as the paper counts FLOPs."""

import math

import keras

from keras_resnet._validation import check_model as _check_model


def count_macs(model):
    """Multiply-accumulates of one forward pass, per image.

    Counts convolutions and dense layers, as the paper's table does ("FLOPs"
    there are multiply-adds); BN, ReLU, additions and pooling are not
    counted. The model's input must have a fixed spatial size.

    Args:
        model: a built Keras model.

    Returns:
        int.

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
            spatial = out_shape[1:3] if layer.data_format == "channels_last" else out_shape[2:4]
            if any(d is None for d in spatial):
                raise ValueError(
                    "model must have a fixed input size to count multiply-adds; "
                    f"layer {layer.name} has output shape {tuple(out_shape)}"
                )
            # kernel: (kh, kw, in_channels / groups, filters)
            total += math.prod(spatial) * math.prod(layer.kernel.shape)
        elif isinstance(layer, keras.layers.Dense):
            total += layer.kernel.shape[0] * layer.kernel.shape[1]
    return int(total)


def count_params(model, trainable_only=True):
    """Number of (trainable) parameters.

    Example:

    >>> import keras_resnet
    >>> count_params(keras_resnet.ResNet20())
    269722
    """
    _check_model("model", model)
    weights = model.trainable_weights if trainable_only else model.weights
    return int(sum(math.prod(w.shape) for w in weights))


def model_summary(model):
    """A dict of the figures of `model`: name, layers, params, multiply-adds.

    Args:
        model: a built Keras model with a fixed input size.

    Returns:
        dict with `name`, `input_shape`, `layers`, `params`,
        `trainable_params`, `macs` and `gmacs`.

    Example:

    >>> import keras_resnet
    >>> model_summary(keras_resnet.ResNet18())["gmacs"]
    1.82
    """
    _check_model("model", model)
    macs = count_macs(model)
    return {
        "name": model.name,
        "input_shape": tuple(model.input_shape[1:]),
        "layers": len(model.layers),
        "params": count_params(model, trainable_only=False),
        "trainable_params": count_params(model),
        "macs": macs,
        "gmacs": round(macs / 1e9, 2),
    }
