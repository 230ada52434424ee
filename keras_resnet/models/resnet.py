"""The generic builder: an `Architecture` and a few orthogonal switches make a `ResNetModel`.

Layer names follow `keras.applications`, so its weights and user code carry over.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from typing import Any

import keras
import numpy as np

from keras_resnet import recipes
from keras_resnet._validation import check_choice as _check_choice
from keras_resnet.models import pretrained as pretrained_lib
from keras_resnet.models import weights as weights_lib
from keras_resnet.models.architectures import ARCHITECTURES, SHORTCUTS, Architecture, get_architecture
from keras_resnet.models.blocks import STRIDE_IN, LayerSettings, batch_norm, conv_bn, residual_block
from keras_resnet.models.layers import ConstantPadding2D, channel_axis, spatial_axes
from keras_resnet.models.model import ResNetModel
from keras_resnet.models.preprocessing import PIPELINE_KEYS, add_preprocessing, preprocessing_statistics, resize_plan

POOLINGS = (None, "avg", "max")
POOL_PADDINGS = ("zeros", "-inf")
DOWNSAMPLE_AT = ("first", "last")


@dataclasses.dataclass(frozen=True)
class BlockPlan:
    """Where one block sits and how it strides."""

    stage: int
    index: int
    strides: int
    dilation: int
    previous_dilation: int


def block_plan(
    architecture: Architecture, output_stride: int | None = None, downsample_at: str = "first"
) -> list[BlockPlan]:
    """Lays out every block of a network: its stage, stride and dilation.

    Args:
        architecture: an `Architecture`.
        output_stride: total input-to-output reduction wanted; the strides
            that would exceed it become dilations (for dense prediction).
            Allowed: the network's natural stride, half or a quarter of it
            (32, 16, 8 for the ImageNet networks). `None` keeps the natural one.
        downsample_at: `"first"` strides the first block of a stage (the
            paper); `"last"` strides the last block of the previous stage
            (`keras.applications`' ResNetV2 layout).

    Returns:
        A list of `BlockPlan`, in order.

    Example:

    >>> from keras_resnet.models.architectures import ARCHITECTURES
    >>> [p.strides for p in block_plan(ARCHITECTURES["resnet18"])]
    [1, 1, 2, 1, 2, 1, 2, 1]
    """
    _check_choice("downsample_at", downsample_at, DOWNSAMPLE_AT)
    natural = architecture.total_stride
    allowed = (natural, natural // 2, natural // 4)
    if output_stride is None:
        output_stride = natural
    if output_stride not in allowed or output_stride < architecture.stem_stride:
        allowed_text = ", ".join(str(a) for a in allowed if a >= architecture.stem_stride)
        raise ValueError(f"output_stride must be one of {allowed_text}; received {output_stride!r}")

    slots = [
        [stage, index, architecture.strides[stage] if index == 0 else 1]
        for stage, depth in enumerate(architecture.depths)
        for index in range(depth)
    ]
    if downsample_at == "last":
        firsts = [i for i, slot in enumerate(slots) if slot[1] == 0]
        for first in firsts[1:]:
            slots[first - 1][2], slots[first][2] = slots[first][2], 1

    plan = []
    current, dilation = architecture.stem_stride, 1
    for stage, index, strides in slots:
        previous = dilation
        if current * strides > output_stride:
            dilation *= strides
            strides = 1
        else:
            current *= strides
        plan.append(BlockPlan(stage, index, strides, dilation, previous))
    return plan


def ResNet(
    architecture: str | Architecture | Mapping[str, Any],
    *,
    preact: bool = False,
    plain: bool = False,
    shortcut: str | None = None,
    stride_in: str | None = None,
    downsample_at: str | None = None,
    pool_padding: str | None = None,
    output_stride: int | None = None,
    zero_init_residual: bool = False,
    bn_epsilon: float = 1e-5,
    bn_momentum: float = 0.9,
    include_top: bool = True,
    weights: str | os.PathLike | None = None,
    input_tensor: Any = None,
    input_shape: tuple[int | None, int | None, int | None] | None = None,
    pooling: str | None = None,
    classes: int | None = None,
    classifier_activation: Any = "softmax",
    include_preprocessing: bool = False,
    preprocessing: Any = None,
    name: str | None = None,
) -> ResNetModel:
    """Builds any residual (or plain) network from its architecture table.

    Args:
        architecture: a name of `ARCHITECTURES` (`"resnet50"`), an `Architecture`, or a dict
            of its fields, e.g. `{"block": "basic", "depths": (2, 2), "widths": (16, 32), "stem": "cifar"}`.
        preact: pre-activation ("v2") blocks instead of the paper's ("v1").
        plain: no shortcuts (the paper's plain twins).
        shortcut: the paper's option `"A"` (zero-padded identity), `"B"` (projection where the
            shape changes) or `"C"` (all projections); defaults to the architecture's.
        stride_in: which convolution of a v1 bottleneck strides: `"1x1"` (the paper, default)
            or `"3x3"` (torchvision's "v1.5").
        downsample_at: `"first"` or `"last"` block of a stage strides; defaults to `"first"`
            for v1 and `"last"` for v2 (the `keras.applications` ResNetV2 layout).
        pool_padding: the stem max-pool's padding: `"zeros"` (default, as `keras.applications`)
            or `"-inf"` (as torch and keras-hub; differs only for v2). Weights of other
            frameworks set `stride_in`, `downsample_at` and `pool_padding` themselves.
        output_stride: replace the last strides by dilations so the output is
            `input / output_stride` (e.g. 8 or 16 for segmentation).
        zero_init_residual: each residual branch starts at zero.
        bn_epsilon: BatchNormalization epsilon.
        bn_momentum: BatchNormalization moving-average momentum.
        include_top: add global average pooling and the classifier.
        weights: `None`, `"imagenet"`, the path of a weights file (this library's, or one of
            the matching `keras.applications` model, converted exactly), a pretrained name of
            `keras_resnet.models.pretrained.CATALOG` (`"torchvision_v2"`,
            `"timm/resnet50.a1_in1k"`, `"keras_hub/resnet_50_imagenet"`, ...) or such a
            checkpoint as a local file (`.pth`, `.safetensors`, a keras-hub preset folder).
            Pretrained weights give their source's logits exactly and record their input pipeline.
            `"cifar10"`: the ResNet20 weights shipped in the package (offline; they record their
            per-pixel mean, the default `preprocessing`).
        input_tensor: optional Keras tensor to build the model on.
        input_shape: input shape without the batch axis; defaults to the architecture's size
            with `include_top`, else any size. With `include_preprocessing`, the size images
            are resized to.
        pooling: with `include_top=False`: `None` (4D feature map), `"avg"` or `"max"`.
        classes: classifier width; defaults to the architecture's (1000 or 10).
        classifier_activation: e.g. `"softmax"`, or `None` for logits; computed in float32
            under mixed precision.
        include_preprocessing: the model takes raw RGB images (0-255, any size) and resizes
            and normalises them itself (see `keras_resnet.models.preprocessing`); the weights
            are the same either way.
        preprocessing: with `include_preprocessing`: `"caffe"` (the v1 default), `"tf"` (the
            v2 default), a dict `{"mean": ..., "std": ...}` on the 0-255 scale (per channel or
            per pixel), or training images whose per-pixel mean is subtracted before dividing
            by 255 (the paper's CIFAR recipe, the CIFAR networks' default without the mean).
        name: model name.

    Returns:
        A `ResNetModel`. With `include_top=True` and a softmax or linear classifier it is
        compiled by `keras_resnet.recipes.compile_for` with the family's paper recipe
        (`"cifar10"` for CIFAR-stem networks, else `"imagenet"`), so `model.fit(ds)` trains
        at once; `callbacks=kr.training.run_callbacks("imagenet")` adds the plateau division
        of the learning rate. A later `compile(...)` replaces it.

    Example:

    >>> model = ResNet({"block": "basic", "depths": (1, 1, 1), "widths": (16, 32, 64),
    ...                 "stem": "cifar", "shortcut": "A"}, input_shape=(32, 32, 3), classes=10)
    >>> model.output_shape
    (None, 10)
    >>> type(model.optimizer).__name__
    'L2SGD'
    """
    arch = get_architecture(architecture)
    classes = arch.default_classes if classes is None else classes
    pretrained = pretrained_lib.resolve(
        weights,
        architecture=next((key for key, candidate in ARCHITECTURES.items() if candidate == arch), None),
        include_top=include_top,
        classes=classes,
        switches=dict(
            preact=preact,
            plain=plain,
            shortcut=shortcut,
            stride_in=stride_in,
            downsample_at=downsample_at,
            pool_padding=pool_padding,
        ),
    )
    if pretrained is not None:
        preact, plain, shortcut, stride_in, downsample_at, pool_padding = (
            pretrained.switches.get(key)
            for key in ("preact", "plain", "shortcut", "stride_in", "downsample_at", "pool_padding")
        )
    stride_in = "1x1" if stride_in is None else stride_in
    pool_padding = "zeros" if pool_padding is None else pool_padding
    shortcut = arch.shortcut if shortcut is None else shortcut
    _check_choice("shortcut", shortcut, SHORTCUTS)
    _check_choice("stride_in", stride_in, STRIDE_IN)
    _check_choice("pool_padding", pool_padding, POOL_PADDINGS)
    _check_choice("pooling", pooling, POOLINGS)
    _check_choice("include_preprocessing", include_preprocessing, (True, False))
    if downsample_at is None:
        downsample_at = "last" if preact else "first"
    if not isinstance(classes, int) or isinstance(classes, bool) or classes < 1:
        raise ValueError(f"classes must be a positive integer; received {classes!r}")
    settings = LayerSettings(bn_epsilon=bn_epsilon, bn_momentum=bn_momentum, zero_init_residual=zero_init_residual)
    plan = block_plan(arch, output_stride, downsample_at)
    # Checked before `resolve`, which downloads ImageNet weights: a wrong shape fails without a download.
    input_shape = _input_shape(input_shape, arch, include_top, weights, settings)
    weights_source = (
        None
        if pretrained is not None
        else weights_lib.resolve(
            weights,
            arch=arch,
            include_top=include_top,
            classes=classes,
            layout=dict(
                preact=preact, plain=plain, shortcut=shortcut, stride_in=stride_in, downsample_at=downsample_at
            ),
        )
    )
    if include_preprocessing:
        image_size = _image_size(input_shape, arch, settings)
        if preprocessing is None and pretrained is not None:
            preprocessing = pretrained.recorded_preprocessing
        elif preprocessing is None and weights_source is not None:
            preprocessing = weights_source.preprocessing
        preprocessing = _default_preprocessing(preprocessing, arch, preact)
        statistics = preprocessing_statistics(preprocessing, image_size)
        input_shape = _free_size(input_shape, settings)
    elif preprocessing is not None:
        raise ValueError(
            "preprocessing applies only with include_preprocessing=True; "
            f"received preprocessing={preprocessing!r} and include_preprocessing=False"
        )
    inputs, img_input = _inputs(input_tensor, input_shape)
    if include_preprocessing:
        img_input = add_preprocessing(
            img_input,
            *statistics,
            image_size=image_size,
            data_format=settings.data_format,
            **resize_plan(preprocessing, image_size),
        )

    x = _stem(img_input, arch, settings, preact, pool_padding)
    levels = _LevelRecorder(arch, plan, downsample_at)
    for position, block in enumerate(plan):
        x, activated = residual_block(
            x,
            arch.widths[block.stage],
            settings,
            name=f"conv{block.stage + 2}_block{block.index + 1}",
            block=arch.block,
            strides=block.strides,
            dilation=block.dilation,
            previous_dilation=block.previous_dilation,
            shortcut=shortcut,
            preact=preact,
            plain=plain,
            stride_in=stride_in,
            return_activated_input=True,
        )
        levels.block_built(position, activated)
    if preact:
        x = batch_norm(x, settings, name="post_bn")
        x = keras.layers.Activation("relu", name="post_relu")(x)
    levels.network_built(x)
    top = _top(x, include_top, pooling, classes, classifier_activation, settings)

    model = ResNetModel(inputs, top, name=name or "resnet")
    model.feature_levels = levels.describe(model, settings)
    if include_preprocessing:
        model.record(preprocessing=_recorded_preprocessing(preprocessing, statistics), includes_preprocessing=True)
    elif weights == "imagenet":
        model.record(preprocessing="tf" if preact else "caffe")
    elif pretrained is not None:
        model.record(preprocessing=pretrained.recorded_preprocessing)
    elif weights_source is not None and weights_source.preprocessing is not None:
        model.record(preprocessing=weights_source.preprocessing)
    if weights_source is not None:
        weights_lib.load_weights(model, weights_source)
    if pretrained is not None:
        pretrained_lib.load(model, pretrained)
    if include_top:
        _compile_default(model, arch, classes, classifier_activation)
    return model


def _recorded_preprocessing(preprocessing, statistics):
    """The `preprocessing` value a model records: a mode's name as given, else its mean and std."""
    if isinstance(preprocessing, str):
        return preprocessing
    mean, std, reverse_channels = statistics
    # `preprocessing` may also be images to compute statistics from: only a dict carries pipeline keys.
    pipeline = (
        {key: preprocessing[key] for key in PIPELINE_KEYS if key in preprocessing}
        if isinstance(preprocessing, dict)
        else {}
    )
    return {"mean": mean, "std": std, "channel_order": "bgr" if reverse_channels else "rgb", **pipeline}


def _default_preprocessing(preprocessing, arch, preact):
    if preprocessing is not None:
        return preprocessing
    if arch.stem == "cifar":
        return {"mean": (0.0, 0.0, 0.0), "std": 255.0}
    return "tf" if preact else "caffe"


def _image_size(input_shape, arch, settings):
    """`(height, width)` preprocessing resizes to: the given size, else the architecture's."""
    spatial = tuple(input_shape[axis - 1] for axis in spatial_axes(settings.data_format))
    if None in spatial:
        return (arch.default_size, arch.default_size)
    return tuple(spatial)


def _free_size(input_shape, settings):
    """The input shape with free height and width (raw images of any size)."""
    shape = list(input_shape)
    for axis in spatial_axes(settings.data_format):
        shape[axis - 1] = None
    return tuple(shape)


def _compile_default(model, arch, classes, classifier_activation):
    """Compiles with the family's paper recipe, when the loss can follow the activation."""
    activation = keras.activations.get(classifier_activation)
    if activation is keras.activations.softmax:
        from_logits = False
    elif activation is keras.activations.linear:
        from_logits = True
    else:
        return
    recipe = "cifar10" if arch.stem == "cifar" else "imagenet"
    # `ResNet`'s docstring says what plain `fit` does with this recipe and what `run_callbacks` adds, so its
    # `fit` does not warn that the plateau schedule's callback is missing.
    recipes._compile(model, recipes.recipe_for(recipe, top5=classes >= 1000), from_logits=from_logits)


class _LevelRecorder:
    """Records the feature levels C2.. while the blocks are built.

    Level `C{k}` is the last map at stage `k`'s resolution, taken as the
    activated input of the block that consumes (and reduces) it: the first
    block of the next stage, or with `downsample_at="last"` the stage's own
    last block. The deepest level is the network's final activated map.
    """

    def __init__(self, arch, plan, downsample_at):
        firsts = [position for position, block in enumerate(plan) if block.index == 0]
        offset = 0 if downsample_at == "first" else -1
        self._consumers = {firsts[stage + 1] + offset: stage for stage in range(len(firsts) - 1)}
        self._plan = plan
        self._stride = arch.stem_stride
        self._levels = []

    def block_built(self, position, activated):
        if position in self._consumers:
            self._levels.append((self._consumers[position], activated, self._stride))
        self._stride *= self._plan[position].strides

    def network_built(self, x):
        self._levels.append((self._plan[-1].stage, x, self._stride))

    def describe(self, model, settings):
        producers = {id(layer.output): layer.name for layer in model.layers}
        return [
            {
                "level": f"C{stage + 2}",
                "layer": producers[id(tensor)],
                "stride": stride,
                "channels": tensor.shape[settings.channel_axis],
            }
            for stage, tensor, stride in self._levels
        ]


def _stem(x, arch, settings, preact, pool_padding="zeros"):
    # v2 has no BN right after the stem conv, so it keeps the conv's bias.
    if arch.stem == "cifar":
        return conv_bn(
            x,
            arch.stem_width,
            3,
            settings,
            use_bias=preact,
            norm=not preact,
            activation=not preact,
            name="conv1",
        )
    x = conv_bn(
        x,
        arch.stem_width,
        7,
        settings,
        strides=2,
        use_bias=preact,
        norm=not preact,
        activation=not preact,
        name="conv1",
    )
    if pool_padding == "-inf":
        x = ConstantPadding2D(1, value=-np.inf, data_format=settings.data_format, name="pool1_pad")(x)
    else:
        x = keras.layers.ZeroPadding2D(1, data_format=settings.data_format, name="pool1_pad")(x)
    return keras.layers.MaxPooling2D(3, strides=2, data_format=settings.data_format, name="pool1_pool")(x)


def _top(x, include_top, pooling, classes, classifier_activation, settings):
    fmt = settings.data_format
    if include_top:
        x = keras.layers.GlobalAveragePooling2D(data_format=fmt, name="avg_pool")(x)
        # The classifier stays in float32 under mixed precision (stable softmax).
        mixed = keras.config.dtype_policy().compute_dtype in ("float16", "bfloat16")
        return keras.layers.Dense(
            classes,
            activation=classifier_activation,
            dtype="float32" if mixed else None,
            name="predictions",
        )(x)
    if pooling == "avg":
        return keras.layers.GlobalAveragePooling2D(data_format=fmt, name="avg_pool")(x)
    if pooling == "max":
        return keras.layers.GlobalMaxPooling2D(data_format=fmt, name="max_pool")(x)
    return x


def _input_shape(input_shape, arch, include_top, weights, settings):
    """The checked input shape without the batch axis (`axis - 1` below: the batch axis is not in it)."""
    channel = channel_axis(settings.data_format)
    if input_shape is None:
        side = arch.default_size if include_top else None
        return (side, side, 3) if channel == -1 else (3, side, side)
    shape = tuple(input_shape) if isinstance(input_shape, (tuple, list)) else ()
    if len(shape) != 3 or not all(d is None or (isinstance(d, int) and d > 0) for d in shape):
        raise ValueError(
            "input_shape must be 3 positive integers (or None for a free spatial size), "
            f"{'(height, width, channels)' if channel == -1 else '(channels, height, width)'}; "
            f"received {input_shape!r}"
        )
    channels = shape[channel if channel == -1 else channel - 1]
    spatial = [shape[axis - 1] for axis in spatial_axes(settings.data_format)]
    if weights is not None and channels != 3:
        raise ValueError(
            f"input_shape must have 3 channels when loading weights={weights!r}; received input_shape={input_shape!r}"
        )
    if weights is not None and any(d is not None and d < 32 for d in spatial):
        raise ValueError(
            "input_shape height and width must be at least 32 when loading weights; "
            f"received input_shape={input_shape!r}"
        )
    return shape


def _inputs(input_tensor, input_shape):
    if input_tensor is None:
        tensor = keras.Input(shape=input_shape)
        return tensor, tensor
    if not keras.backend.is_keras_tensor(input_tensor):
        tensor = keras.Input(tensor=input_tensor, shape=input_shape)
        return tensor, tensor
    sources = keras.utils.get_source_inputs(input_tensor)
    return (sources[0] if len(sources) == 1 else sources), input_tensor
