"""Feature extraction: multi-level feature maps (as keras-hub's `pyramid_outputs`), and freezing for fine-tuning.

Level `C{k}` is the last post-BN-ReLU map at stage `k`'s resolution: `conv{k}_block{n}_out` for v1, the next
block's `*_preact_relu` (or `post_relu`) for v2, whose block outputs are un-normalised sums.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import keras

from keras_resnet._validation import check_int as _check_int
from keras_resnet._validation import check_model as _check_model
from keras_resnet.models.builders import get_model
from keras_resnet.models.model import ResNetModel

__all__ = ["feature_extractor", "feature_info", "freeze", "unfreeze"]


def feature_info(model: keras.Model) -> list[dict]:
    """Describes the feature levels of a `keras_resnet` backbone.

    Args:
        model: a model built by `keras_resnet`.

    Returns:
        One dict per level, shallowest first: `"level"` (`"C2"`, ...), `"layer"` (whose output
        it is), `"stride"` (input pixels per feature pixel) and `"channels"`.

    Example:

    >>> from keras_resnet import ResNet18
    >>> feature_info(ResNet18(include_top=False))[0]
    {'level': 'C2', 'layer': 'conv2_block2_out', 'stride': 4, 'channels': 64}
    """
    _check_model("model", model)
    if not isinstance(model, ResNetModel):
        raise ValueError(
            "model must be a keras_resnet backbone (a ResNetModel from a keras_resnet builder, which "
            f"records its feature levels); received {model.name!r}, a {type(model).__name__}"
        )
    return model.feature_levels


def feature_extractor(
    model_or_name: keras.Model | str, levels: Sequence[str] | None = None, **builder_kwargs: Any
) -> keras.Model:
    """A model returning the backbone's feature levels as a dict; it shares the backbone's layers.

    Args:
        model_or_name: a `keras_resnet` model, or a name of `keras_resnet.MODELS` (built without top).
        levels: the level names to return, e.g. `("C3", "C4", "C5")`; `None`: every level.
        **builder_kwargs: with a name, arguments of its constructor.

    Example:

    >>> import numpy as np
    >>> extractor = feature_extractor("resnet18", levels=("C3", "C5"))
    >>> features = extractor(np.zeros((1, 64, 64, 3), "float32"))
    >>> {level: tuple(x.shape) for level, x in features.items()}
    {'C3': (1, 8, 8, 128), 'C5': (1, 2, 2, 512)}
    """
    if isinstance(model_or_name, keras.Model):
        if builder_kwargs:
            raise ValueError(
                "builder keyword arguments apply only when model_or_name is a model name; "
                f"received a model and {sorted(builder_kwargs)}"
            )
        model = model_or_name
    else:
        model = get_model(model_or_name, **{"include_top": False, **builder_kwargs})
    available = {info["level"]: model.get_layer(info["layer"]).output for info in feature_info(model)}
    if levels is None:
        levels = tuple(available)
    if isinstance(levels, str) or not levels or len(set(levels)) != len(levels) or not set(levels) <= set(available):
        raise ValueError(
            f"levels must be None or distinct names among {', '.join(map(repr, available))}; received {levels!r}"
        )
    outputs = {level: available[level] for level in levels}
    return keras.Model(model.input, outputs, name=f"{model.name}_features")


def freeze(model: keras.Model) -> keras.Model:
    """Freezes a whole model in place and returns it, BatchNormalization included (then in inference mode).

    Compile the model that trains afterwards: `compile` reads which weights train.

    Args:
        model: a `keras.Model` (or any layer).

    Example:

    >>> from keras_resnet import ResNet20
    >>> len(freeze(ResNet20(include_top=False)).trainable_weights)
    0
    """
    _check_model("model", model)
    model.trainable = False
    return model


def unfreeze(model: keras.Model, stages: int | None = None, *, keep_bn_frozen: bool = True) -> keras.Model:
    """Makes the last `stages` stages of a backbone (and what follows them) trainable, the rest frozen.

    Changes the model in place and returns it; compile the model that trains afterwards.

    Args:
        model: a model built by `keras_resnet`.
        stages: how many of the last stages to unfreeze; `None`: the whole network, stem included.
        keep_bn_frozen: keep BatchNormalization frozen, so small batches of a new data set
            do not undo the pretrained statistics (as the Keras transfer-learning guide).

    Example:

    >>> from keras_resnet import ResNet20
    >>> model = unfreeze(freeze(ResNet20(include_top=False)), stages=1)
    >>> sorted({w.path.split("_")[0] for w in model.trainable_weights})
    ['conv4']
    """
    numbers = [int(info["level"][1:]) for info in feature_info(model)]
    _check_int("stages", stages, 1, len(numbers), optional=True)
    if not isinstance(keep_bn_frozen, bool):
        raise ValueError(f"keep_bn_frozen must be True or False; received {keep_bn_frozen!r}")
    first = 0
    if stages is not None:
        prefix = f"conv{numbers[-stages]}_"
        first = next(i for i, layer in enumerate(model.layers) if layer.name.startswith(prefix))
    model.trainable = True
    for index, layer in enumerate(model.layers):
        is_bn = isinstance(layer, keras.layers.BatchNormalization)
        layer.trainable = index >= first and not (keep_bn_frozen and is_bn)
    return model
