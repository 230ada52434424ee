"""Feature extraction: multi-level feature maps and freezing for fine-tuning.

A detection or segmentation head wants the feature map of every stage
("C2".."C5", with strides 4..32 on the ImageNet networks), as keras-hub's
`pyramid_outputs` and timm's `features_only` give them. `feature_info`
describes those levels, `feature_extractor` returns a `keras.Model` whose
outputs are a dict of them, sharing the backbone's layers and weights.

Which tensor is a level:

- Level `C{k}` is the last feature map at stage `k`'s resolution; the
  deepest level is the backbone's final feature map (what
  `include_top=False, pooling=None` returns).
- v1 (post-activation): the output of stage `k`'s last block,
  `conv{k}_block{n}_out`, exactly the `keras.applications` layers.
- v2 (pre-activation): a block output is an un-normalised residual sum
  whose scale grows with depth, so a level is taken one BatchNormalization
  + ReLU later, at the `*_preact_relu` of the block that consumes the map,
  and the deepest level is `post_relu`. With `keras.applications`' layout
  (a stage downsamples in its *last* block) C2 of ResNet50V2 is
  `conv2_block3_preact_relu`: the stride-4 map, normalised by the layer the
  pretrained network has for it. Every level of v1 and v2 is thus a
  post-BN-ReLU activation, which FPN-style heads expect.

The builder records each level (its layer, stride and channels) at the
moment it builds the stage, as keras-hub's `pyramid_outputs` and timm's
`feature_info` do, and the model keeps the record in its config
(`ResNetModel.feature_levels`), so it survives `.keras` save and load and
follows `output_stride` dilation, CIFAR stems, any input size and
`input_tensor` without reading layer names back.

`freeze` and `unfreeze` prepare a backbone for fine-tuning. In Keras 3 a
`BatchNormalization` layer with `trainable = False` runs in inference mode
(moving statistics, no updates) even when the model trains, so a frozen
backbone is a fixed function.
"""

import keras

from keras_resnet._validation import check_int as _check_int
from keras_resnet._validation import check_model as _check_model
from keras_resnet.models.builders import get_model
from keras_resnet.models.model import ResNetModel


def feature_info(model):
    """Describes the feature levels of a `keras_resnet` backbone.

    Args:
        model: a model built by `keras_resnet` (any `include_top`,
            `pooling`, `output_stride`, data format or input size).

    Returns:
        A list with one dict per level, shallowest first, with keys
        `"level"` (`"C2"`, ...), `"layer"` (the name of the layer whose
        output the level is), `"stride"` (input pixels per feature pixel)
        and `"channels"`.

    Example:

    >>> from keras_resnet import ResNet18
    >>> [(i["level"], i["stride"], i["channels"]) for i in feature_info(ResNet18(include_top=False))]
    [('C2', 4, 64), ('C3', 8, 128), ('C4', 16, 256), ('C5', 32, 512)]
    >>> feature_info(ResNet18(include_top=False))[0]["layer"]
    'conv2_block2_out'
    """
    _check_model("model", model)
    if not isinstance(model, ResNetModel):
        raise ValueError(
            "model must be a keras_resnet backbone (a ResNetModel from a keras_resnet builder, which "
            f"records its feature levels); received {model.name!r}, a {type(model).__name__}"
        )
    return model.feature_levels


def feature_extractor(model_or_name, levels=None, **builder_kwargs):
    """A model returning the backbone's feature levels as a dict.

    The extractor shares the backbone's layers: training one trains the
    other, and no weights are copied.

    Args:
        model_or_name: a model built by `keras_resnet`, or a name of
            `keras_resnet.MODELS` (e.g. `"resnet50"`) to build with
            `include_top=False`.
        levels: the level names to return, e.g. `("C3", "C4", "C5")`;
            `None` returns every level (C2..C5, or C2..C4 for the CIFAR
            networks). See `feature_info` for their strides and channels.
        **builder_kwargs: with a name, arguments of its constructor
            (`input_shape`, `weights`, `output_stride`, ...).

    Returns:
        A `keras.Model` with the backbone's inputs whose output is a dict
        `{level: feature map}`.

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


def freeze(model):
    """Freezes a whole model, BatchNormalization included, for fine-tuning.

    Every layer becomes non-trainable; in Keras 3 that also makes each
    `BatchNormalization` layer use its moving statistics and stop updating
    them, even inside `fit`. Compile (or recompile) the model that trains
    after calling this: `compile` reads which weights are trainable.

    Args:
        model: a `keras.Model` (or any layer).

    Returns:
        The same model, for chaining.

    Example:

    >>> from keras_resnet import ResNet20
    >>> len(freeze(ResNet20(include_top=False)).trainable_weights)
    0
    """
    _check_model("model", model)
    model.trainable = False
    return model


def unfreeze(model, stages=None, *, keep_bn_frozen=True):
    """Makes the top stages of a backbone trainable, the rest frozen.

    `unfreeze(model, stages=2)` on a ResNet-50 trains `conv4_*`, `conv5_*`
    and what follows them (`post_bn` of v2 networks, a classifier) and
    freezes the stem, `conv2_*` and `conv3_*`.

    BatchNormalization layers of the unfrozen part stay frozen by default
    (`keep_bn_frozen=True`), as the Keras transfer-learning guide and
    detection backbones (torchvision's and Detectron2's `FrozenBatchNorm2d`)
    do: fine-tuning batches are small and come from another data set, so
    their batch statistics are noisy and updating the moving statistics
    with them undoes what the pretrained network learned, while a frozen BN
    is a fixed affine map the convolutions can adapt to.

    Compile (or recompile) the model that trains after calling this:
    `compile` reads which weights are trainable.

    Args:
        model: a model built by `keras_resnet`.
        stages: how many of the last stages to unfreeze, from 1 to the
            number of stages; `None` unfreezes the whole network, stem
            included.
        keep_bn_frozen: keep every BatchNormalization layer frozen (in
            inference mode); `False` trains them (and their statistics)
            with the rest of the unfrozen part.

    Returns:
        The same model, for chaining.

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
