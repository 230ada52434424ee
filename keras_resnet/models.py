"""Model builders: one generic `ResNet` and thin public constructors.

The generic builder turns an `Architecture` (the paper's table row) and a
few orthogonal switches into a `keras.Model` whose layer names follow
`keras.applications`, so its weights and user code carry over.
"""

import dataclasses

import keras

from keras_resnet._validation import check_choice as _check_choice
from keras_resnet.architectures import ARCHITECTURES, get_architecture
from keras_resnet.blocks import SHORTCUTS, STRIDE_IN, LayerSettings, batch_norm, conv_bn, residual_block

POOLINGS = (None, "avg", "max")
DOWNSAMPLE_AT = ("first", "last")


@dataclasses.dataclass(frozen=True)
class BlockPlan:
    """Where one block sits and how it strides."""

    stage: int
    index: int
    strides: int
    dilation: int
    previous_dilation: int


def block_plan(architecture, output_stride=None, downsample_at="first"):
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

    >>> from keras_resnet.architectures import ARCHITECTURES
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
    architecture,
    *,
    preact=False,
    plain=False,
    shortcut=None,
    stride_in="1x1",
    downsample_at=None,
    output_stride=None,
    zero_init_residual=False,
    bn_epsilon=1e-5,
    bn_momentum=0.9,
    include_top=True,
    weights=None,
    input_tensor=None,
    input_shape=None,
    pooling=None,
    classes=None,
    classifier_activation="softmax",
    name=None,
):
    """Builds any residual (or plain) network from its architecture table.

    Args:
        architecture: a name of `ARCHITECTURES` (`"resnet50"`), an
            `Architecture`, or a dict of its fields, e.g.
            `{"block": "basic", "depths": (2, 2), "widths": (16, 32), "stem": "cifar"}`.
        preact: pre-activation ("v2") blocks instead of the paper's ("v1").
        plain: no shortcuts (the paper's plain twins).
        shortcut: the paper's option `"A"` (zero-padded identity), `"B"`
            (projection where the shape changes) or `"C"` (all
            projections); defaults to the architecture's (A for CIFAR, B for
            ImageNet networks).
        stride_in: `"1x1"` (the paper) or `"3x3"` (torchvision's "v1.5"):
            which convolution of a v1 bottleneck block strides.
        downsample_at: `"first"` or `"last"` block of a stage strides;
            defaults to `"first"` for v1 and to `"last"` for v2 (the
            `keras.applications` ResNetV2 layout its weights need).
        output_stride: replace the last strides by dilations so the output
            is `input / output_stride` (e.g. 8 or 16 for segmentation).
        zero_init_residual: each residual branch starts at zero.
        bn_epsilon: BatchNormalization epsilon.
        bn_momentum: BatchNormalization moving-average momentum.
        include_top: add global average pooling and the classifier.
        weights: `None`, `"imagenet"` or the path of a weights file (this
            library's, or one saved from the matching `keras.applications`
            model, converted exactly).
        input_tensor: optional Keras tensor to build the model on.
        input_shape: input shape without the batch axis; defaults to the
            architecture's default size with `include_top`, else any size.
        pooling: with `include_top=False`: `None` (4D feature map), `"avg"`
            or `"max"` global pooling.
        classes: classifier width; defaults to the architecture's (1000
            for ImageNet networks, 10 for CIFAR ones).
        classifier_activation: activation of the classifier, e.g.
            `"softmax"` or `None` for logits. The classifier computes in
            float32 under mixed precision.
        name: model name.

    Returns:
        A `keras.Model`.

    Example:

    >>> model = ResNet({"block": "basic", "depths": (1, 1, 1), "widths": (16, 32, 64),
    ...                 "stem": "cifar", "shortcut": "A"}, input_shape=(32, 32, 3), classes=10)
    >>> model.output_shape
    (None, 10)
    """
    arch = get_architecture(architecture)
    shortcut = arch.shortcut if shortcut is None else shortcut
    _check_choice("shortcut", shortcut, SHORTCUTS)
    _check_choice("stride_in", stride_in, STRIDE_IN)
    _check_choice("pooling", pooling, POOLINGS)
    if downsample_at is None:
        downsample_at = "last" if preact else "first"
    classes = arch.default_classes if classes is None else classes
    if not isinstance(classes, int) or isinstance(classes, bool) or classes < 1:
        raise ValueError(f"classes must be a positive integer; received {classes!r}")
    settings = LayerSettings(
        bn_epsilon=bn_epsilon, bn_momentum=bn_momentum, zero_init_residual=zero_init_residual
    )
    plan = block_plan(arch, output_stride, downsample_at)

    from keras_resnet import weights as weights_lib

    weights_source = weights_lib.resolve(
        weights,
        arch=arch,
        include_top=include_top,
        classes=classes,
        layout=dict(preact=preact, plain=plain, shortcut=shortcut, stride_in=stride_in,
                    downsample_at=downsample_at),
    )
    input_shape = _input_shape(input_shape, arch, include_top, weights, settings)
    inputs, img_input = _inputs(input_tensor, input_shape)

    x = _stem(img_input, arch, settings, preact)
    for block in plan:
        x = residual_block(
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
        )
    if preact:
        x = batch_norm(x, settings, name="post_bn")
        x = keras.layers.Activation("relu", name="post_relu")(x)
    x = _top(x, include_top, pooling, classes, classifier_activation, settings)

    model = keras.Model(inputs, x, name=name or "resnet")
    if weights_source is not None:
        weights_lib.load_weights(model, weights_source)
    return model


def _stem(x, arch, settings, preact):
    # v2 has no BN right after the stem conv, so it keeps the conv's bias.
    if arch.stem == "cifar":
        return conv_bn(
            x, arch.stem_width, 3, settings, use_bias=preact, norm=not preact, activation=not preact,
            name="conv1",
        )
    x = conv_bn(
        x, arch.stem_width, 7, settings, strides=2, use_bias=preact, norm=not preact,
        activation=not preact, name="conv1",
    )
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
    channels_last = settings.data_format == "channels_last"
    if input_shape is None:
        side = arch.default_size if include_top else None
        return (side, side, 3) if channels_last else (3, side, side)
    shape = tuple(input_shape)
    if len(shape) != 3 or not all(d is None or (isinstance(d, int) and d > 0) for d in shape):
        raise ValueError(
            "input_shape must be 3 positive integers (or None for a free spatial size), "
            f"{'(height, width, channels)' if channels_last else '(channels, height, width)'}; "
            f"received {input_shape!r}"
        )
    channels = shape[-1] if channels_last else shape[0]
    spatial = shape[:2] if channels_last else shape[1:]
    if weights is not None and channels != 3:
        raise ValueError(
            f"input_shape must have 3 channels when loading weights={weights!r}; "
            f"received input_shape={input_shape!r}"
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


_CONSTRUCTOR_DOC = """Instantiates {title}.

    {summary}

    Args:
        include_top: add global average pooling and the classifier.
        weights: `None`, {weights_doc} or the path of a weights file.
        input_tensor: optional Keras tensor to build the model on.
        input_shape: input shape without the batch axis; defaults to
            `{default_shape}` with `include_top`, else any size.
        pooling: with `include_top=False`: `None`, `"avg"` or `"max"`.
        classes: classifier width (default {default_classes}).
        classifier_activation: `"softmax"`, `None` for logits, or any
            activation; computed in float32 under mixed precision.
        name: model name (default `"{model_name}"`).
        **kwargs: switches of `keras_resnet.ResNet`: `shortcut`,
            `stride_in`, `downsample_at`, `output_stride`,
            `zero_init_residual`, `bn_epsilon`, `bn_momentum`.

    Returns:
        A `keras.Model`.

    Example:

    >>> model = {function}(input_shape=(64, 64, 3), classes=10)
    >>> model.output_shape
    (None, 10)
    """


def _constructor(function_name, architecture, *, preact=False, plain=False):
    arch = ARCHITECTURES[architecture]
    model_name = function_name.lower()

    def constructor(
        include_top=True,
        weights=None,
        input_tensor=None,
        input_shape=None,
        pooling=None,
        classes=None,
        classifier_activation="softmax",
        name=model_name,
        **kwargs,
    ):
        return ResNet(
            arch,
            preact=preact,
            plain=plain,
            include_top=include_top,
            weights=weights,
            input_tensor=input_tensor,
            input_shape=input_shape,
            pooling=pooling,
            classes=classes,
            classifier_activation=classifier_activation,
            name=name,
            **kwargs,
        )

    from keras_resnet.weights import has_imagenet_weights

    kind = "plain network (no shortcuts)" if plain else ("pre-activation ResNet" if preact else "ResNet")
    side = arch.default_size
    constructor.__name__ = constructor.__qualname__ = function_name
    constructor.__doc__ = _CONSTRUCTOR_DOC.format(
        title=f"the {arch.depth}-layer {kind}",
        summary=(
            f"{arch.block.capitalize()} blocks {list(arch.depths)}, widths {list(arch.widths)}, "
            f"{arch.stem} stem, shortcut option {arch.shortcut}."
        ),
        weights_doc=(
            '`"imagenet"` (the keras.applications weights, converted exactly)'
            if has_imagenet_weights(architecture, preact=preact) and not plain
            else "(no published ImageNet weights for this network)"
        ),
        default_shape=(side, side, 3),
        default_classes=arch.default_classes,
        model_name=model_name,
        function=function_name,
    )
    return constructor


ResNet18 = _constructor("ResNet18", "resnet18")
ResNet34 = _constructor("ResNet34", "resnet34")
ResNet50 = _constructor("ResNet50", "resnet50")
ResNet101 = _constructor("ResNet101", "resnet101")
ResNet152 = _constructor("ResNet152", "resnet152")
ResNet200 = _constructor("ResNet200", "resnet200")
ResNet18V2 = _constructor("ResNet18V2", "resnet18", preact=True)
ResNet34V2 = _constructor("ResNet34V2", "resnet34", preact=True)
ResNet50V2 = _constructor("ResNet50V2", "resnet50", preact=True)
ResNet101V2 = _constructor("ResNet101V2", "resnet101", preact=True)
ResNet152V2 = _constructor("ResNet152V2", "resnet152", preact=True)
ResNet200V2 = _constructor("ResNet200V2", "resnet200", preact=True)
ResNet20 = _constructor("ResNet20", "resnet20")
ResNet32 = _constructor("ResNet32", "resnet32")
ResNet44 = _constructor("ResNet44", "resnet44")
ResNet56 = _constructor("ResNet56", "resnet56")
ResNet110 = _constructor("ResNet110", "resnet110")
ResNet1202 = _constructor("ResNet1202", "resnet1202")
PlainNet18 = _constructor("PlainNet18", "resnet18", plain=True)
PlainNet34 = _constructor("PlainNet34", "resnet34", plain=True)
Plain20 = _constructor("Plain20", "resnet20", plain=True)
Plain32 = _constructor("Plain32", "resnet32", plain=True)
Plain44 = _constructor("Plain44", "resnet44", plain=True)
Plain56 = _constructor("Plain56", "resnet56", plain=True)
Plain110 = _constructor("Plain110", "resnet110", plain=True)

MODELS = {
    constructor.__name__.lower(): constructor
    for constructor in (
        ResNet18, ResNet34, ResNet50, ResNet101, ResNet152, ResNet200,
        ResNet18V2, ResNet34V2, ResNet50V2, ResNet101V2, ResNet152V2, ResNet200V2,
        ResNet20, ResNet32, ResNet44, ResNet56, ResNet110, ResNet1202,
        PlainNet18, PlainNet34, Plain20, Plain32, Plain44, Plain56, Plain110,
    )
}


def get_model(name, **kwargs):
    """Builds a model by its lower-case name, e.g. `get_model("resnet20")`.

    Args:
        name: a key of `MODELS` (`"resnet50"`, `"resnet50v2"`, `"plain20"`, ...).
        **kwargs: arguments of the constructor.

    Returns:
        A `keras.Model`.

    Example:

    >>> get_model("resnet20").output_shape
    (None, 10)
    """
    key = str(name).lower()
    if key not in MODELS:
        raise ValueError(f"model must be one of {', '.join(sorted(MODELS))}; received {name!r}")
    return MODELS[key](**kwargs)
