"""Model builders: one generic `ResNet` and thin public constructors.

The generic builder turns an `Architecture` (the paper's table row) and a
few orthogonal switches into a `ResNetModel` whose layer names follow
`keras.applications`, so its weights and user code carry over. The public
constructors are rows of one table, each registered in `MODELS` where it
is defined.
"""

import dataclasses

import keras
import numpy as np

from keras_resnet import _keras_compat, recipes
from keras_resnet._validation import check_choice as _check_choice
from keras_resnet.models import pretrained as pretrained_lib
from keras_resnet.models import weights as weights_lib
from keras_resnet.models.architectures import ARCHITECTURES, get_architecture
from keras_resnet.models.blocks import SHORTCUTS, STRIDE_IN, LayerSettings, batch_norm, conv_bn, residual_block
from keras_resnet.models.layers import ConstantPadding2D
from keras_resnet.models.preprocessing import PIPELINE_KEYS, add_preprocessing, preprocessing_statistics, resize_plan

POOLINGS = (None, "avg", "max")
POOL_PADDINGS = ("zeros", "-inf")
DOWNSAMPLE_AT = ("first", "last")


_RECORDED = ("preprocessing", "includes_preprocessing", "class_names")


@keras.saving.register_keras_serializable(package="keras_resnet")
class ResNetModel(keras.Model):
    """A functional ResNet that knows its feature levels and checks its input.

    The builders return this `keras.Model`; it behaves as any functional
    model, with two additions:

    - `feature_levels`: the C2.. levels recorded while the network was
      built (see `keras_resnet.feature_info`); saved in the model's config,
      so they survive `.keras` save and load.
    - `preprocessing`, `includes_preprocessing` and `class_names`: what the
      network's input must be (a `preprocessing` value: `"caffe"`, `"tf"`
      or a dict `{"mean": ..., "std": ...}` on the 0-255 scale; `None` when
      unknown), whether those layers are inside the model (it then takes
      raw 0-255 RGB images), and the names of its classes (`None` when
      unknown). Saved in the config too, so exports and evaluations of a
      checkpoint need no side file.
    - A batch of the wrong rank, size or channel count fails at once with a
      message naming the shape the model takes and how to get there
      (`input_shape=`, `include_preprocessing=True`), instead of an error
      from a layer deep inside the network.

    Args:
        inputs: the model's input tensor(s).
        outputs: its output tensor(s).
        name: model name.
        **kwargs: `feature_levels` (a list of dicts with `"level"`,
            `"layer"`, `"stride"`, `"channels"`), `preprocessing`,
            `includes_preprocessing`, `class_names`, and arguments of
            `keras.Model`.

    Example:

    >>> import keras_resnet
    >>> model = keras_resnet.ResNet20()
    >>> isinstance(model, ResNetModel), model.feature_levels[-1]["level"]
    (True, 'C4')
    """

    def __init__(self, inputs, outputs, name=None, **kwargs):
        levels = kwargs.pop("feature_levels", ())
        recorded = {key: kwargs.pop(key) for key in _RECORDED if key in kwargs}
        with _keras_compat.graph_recursion_room(outputs):
            super().__init__(inputs, outputs, name=name, **kwargs)
        self.feature_levels = levels
        self.record(**recorded)

    def record(self, **values):
        """Records what the model's input must be and what its classes are (kept in its config).

        Only the given keys change.

        Args:
            **values: `preprocessing` (`None`, `"caffe"`, `"tf"` or a dict
                `{"mean": ..., "std": ...}`; arrays become lists),
                `includes_preprocessing` (bool: those layers are inside the
                model, which takes raw 0-255 RGB images) and `class_names`
                (`None` or a sequence of strings).

        Example:

        >>> model = keras_resnet.ResNet20()
        >>> model.record(class_names=[f"c{i}" for i in range(10)])
        >>> model.class_names[0], model.includes_preprocessing
        ('c0', False)
        """
        unknown = set(values) - set(_RECORDED)
        if unknown:
            raise ValueError(f"record takes {', '.join(_RECORDED)}; received {sorted(unknown)}")
        preprocessing = values.get("preprocessing", getattr(self, "preprocessing", None))
        if isinstance(preprocessing, dict):
            preprocessing = {
                key: value if isinstance(value, str) else np.asarray(value).tolist()
                for key, value in preprocessing.items()
            }
        elif preprocessing not in (None, "caffe", "tf"):
            raise ValueError(
                "preprocessing must be None, 'caffe', 'tf' or a dict {'mean': ..., 'std': ...}; "
                f"received {preprocessing!r}"
            )
        class_names = values.get("class_names", getattr(self, "class_names", None))
        self.preprocessing = preprocessing
        self.includes_preprocessing = bool(
            values.get("includes_preprocessing", getattr(self, "includes_preprocessing", False))
        )
        self.class_names = None if class_names is None else [str(name) for name in class_names]

    @property
    def feature_levels(self):
        return [dict(level) for level in self._feature_levels]

    @feature_levels.setter
    def feature_levels(self, levels):
        keys = {"level", "layer", "stride", "channels"}
        if isinstance(levels, (str, dict)) or not all(
            isinstance(level, dict) and set(level) == keys for level in levels
        ):
            raise ValueError(
                "feature_levels must be a list of dicts with the keys 'level', 'layer', 'stride' and 'channels' "
                f"(as the builders record them); received {levels!r}"
            )
        self._feature_levels = tuple(dict(level) for level in levels)

    @property
    def input_spec(self):
        # The shape check is `_check_input`'s, with a message that says how to fix it.
        return None

    @input_spec.setter
    def input_spec(self, value):
        pass  # Keras sets it on every layer; this model checks its input itself.

    def call(self, inputs, training=None, mask=None):
        self._check_input(inputs)
        # A call without `training` is inference (Keras' default), made explicit: with the
        # preprocessing layers first, `model.export` otherwise traced BatchNormalization in
        # training mode (batch statistics) into the SavedModel and LiteRT files.
        return super().call(inputs, training=bool(training), mask=mask)

    def compute_output_spec(self, inputs, training=None, mask=None):
        self._check_input(inputs)
        return super().compute_output_spec(inputs, training=training, mask=mask)

    def _check_input(self, inputs):
        shape = getattr(inputs, "shape", None)
        if len(self.inputs) != 1 or shape is None:
            return
        message = _input_shape_problem(self.name, tuple(self.inputs[0].shape), tuple(shape), self._data_format())
        if message:
            raise ValueError(message)

    def _data_format(self):
        return self.get_layer("conv1_conv").data_format

    def get_config(self):
        return {
            **super().get_config(),
            "feature_levels": self.feature_levels,
            **{key: getattr(self, key) for key in _RECORDED},
        }


def _input_shape_problem(name, expected, received, data_format):
    """What is wrong with a batch's shape for a model, and how to fix it.

    Args:
        name: the model's name.
        expected: the model's input shape, batch axis first (`None` for any).
        received: the shape of the batch.
        data_format: `"channels_last"` or `"channels_first"`.

    Returns:
        `None` when the batch fits, else the error message.

    Example:

    >>> print(_input_shape_problem("resnet20", (None, 32, 32, 3), (8, 32, 32, 3), "channels_last"))
    None
    >>> _input_shape_problem("resnet20", (None, 32, 32, 3), (8, 64, 64, 3), "channels_last")[:41]
    'resnet20 takes images of 32x32 pixels, ba'
    """
    channel = -1 if data_format == "channels_last" else 1
    spatial = (1, 2) if data_format == "channels_last" else (2, 3)
    layout = "(batch, height, width, channels)" if channel == -1 else "(batch, channels, height, width)"
    takes = "(batch, " + ", ".join("any" if d is None else str(d) for d in expected[1:]) + ")"

    def fits(axis):
        return expected[axis] is None or received[axis] is None or expected[axis] == received[axis]

    def shape_with(values):
        shape = list(expected[1:])
        for axis, value in values.items():
            shape[axis - 1 if axis > 0 else axis] = value
        return tuple(shape)

    if len(received) != len(expected):
        return (
            f"{name} takes batches of images of shape {layout} = {takes}; received an input of shape {received}. "
            "Batch the images (dataset.batch(32), or images[None] for a single image)."
        )
    if not fits(channel):
        return (
            f"{name} takes images with {expected[channel]} channels, batches of shape {layout} = {takes}; "
            f"received shape {received} ({received[channel]} channels). Convert the images to RGB (e.g. "
            "keras.utils.image_dataset_from_directory(..., color_mode='rgb')), or build the model with "
            f"input_shape={shape_with({channel: received[channel]})} for {received[channel]}-channel images."
        )
    if not all(fits(axis) for axis in spatial):
        height, width = (expected[axis] for axis in spatial)
        size = {axis: received[axis] for axis in spatial}
        return (
            f"{name} takes images of {height}x{width} pixels, batches of shape {layout} = {takes}; received "
            f"shape {received}. Build the model with input_shape={shape_with(size)} to train at that size, or with "
            "include_preprocessing=True to take raw images of any size and resize them inside the model, "
            f"or resize the images to {height}x{width} in the input pipeline."
        )
    return None


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
    architecture,
    *,
    preact=False,
    plain=False,
    shortcut=None,
    stride_in=None,
    downsample_at=None,
    pool_padding=None,
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
    include_preprocessing=False,
    preprocessing=None,
    name=None,
):
    """Builds any residual (or plain) network from its architecture table.

    With `include_top=True` the model comes compiled with its family's
    paper recipe (see "Compiled" below), so `model.fit(ds)` works at once.

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
        stride_in: `"1x1"` (the paper, the default) or `"3x3"` (torchvision's
            "v1.5"): which convolution of a v1 bottleneck block strides.
        downsample_at: `"first"` or `"last"` block of a stage strides;
            defaults to `"first"` for v1 and to `"last"` for v2 (the
            `keras.applications` ResNetV2 layout its weights need).
        pool_padding: how the stem's max-pool pads: `"zeros"` (the default,
            as `keras.applications`) or `"-inf"` (as torch and keras-hub; it
            differs only for v2, whose stem output has no ReLU).
        The weights of other frameworks set the switches they need
        (`stride_in`, `downsample_at`, `pool_padding`); leave those unset.
        output_stride: replace the last strides by dilations so the output
            is `input / output_stride` (e.g. 8 or 16 for segmentation).
        zero_init_residual: each residual branch starts at zero.
        bn_epsilon: BatchNormalization epsilon.
        bn_momentum: BatchNormalization moving-average momentum.
        include_top: add global average pooling and the classifier.
        weights: `None`, `"imagenet"`, the path of a weights file (this
            library's, or one saved from the matching `keras.applications`
            model, converted exactly), a pretrained name of
            `keras_resnet.models.pretrained.CATALOG` (`"torchvision_v2"`,
            `"timm/resnet50.a1_in1k"`, `"keras_hub/resnet_50_imagenet"`,
            `"akamaster"`, ...) or such a checkpoint as a local file (a torch
            `.pth` state dict, a `.safetensors` file, a keras-hub preset
            folder). Those give their source's logits exactly and record
            their input pipeline (see `include_preprocessing`).
        input_tensor: optional Keras tensor to build the model on.
        input_shape: input shape without the batch axis; defaults to the
            architecture's default size with `include_top`, else any size.
            With `include_preprocessing`, the size images are resized to.
        pooling: with `include_top=False`: `None` (4D feature map), `"avg"`
            or `"max"` global pooling.
        classes: classifier width; defaults to the architecture's (1000
            for ImageNet networks, 10 for CIFAR ones).
        classifier_activation: activation of the classifier, e.g.
            `"softmax"` or `None` for logits. The classifier computes in
            float32 under mixed precision.
        include_preprocessing: the model takes raw RGB images (uint8 or
            float, 0-255, any height and width) and resizes and normalises
            them itself with Keras preprocessing layers (see
            `keras_resnet.models.preprocessing`). Weights are the same either way.
        preprocessing: with `include_preprocessing`, the statistics:
            `"caffe"` (the v1 default, as `keras.applications.resnet`),
            `"tf"` (the v2 default, [-1, 1]), a dict
            `{"mean": ..., "std": ...}` on the 0-255 scale, per channel or
            per pixel (e.g. `keras_resnet.export.cifar_preprocessing(...)`),
            or training images (an array or batches) whose per-pixel mean
            is subtracted, then divided by 255 (the paper's CIFAR recipe).
            CIFAR networks default to dividing by 255.
        name: model name.

    Returns:
        A `ResNetModel` (a functional `keras.Model` that records its
        feature levels and checks the shape of its input).

    Compiled: with `include_top=True` and a softmax or linear classifier,
    `keras_resnet.recipes.compile_for(model, recipe)` has run, `recipe`
    being `"cifar10"` for CIFAR-stem networks and `"imagenet"` for the
    others: SGD with momentum 0.9 and coupled L2 1e-4 (`L2SGD`),
    sparse categorical cross-entropy (from logits when the classifier has
    none), accuracy, and top-5 accuracy with 1000 classes or more. Plain
    `fit` then does this: CIFAR networks follow the whole paper schedule
    inside the optimizer (lr 0.1, divided by 10 at iterations 32k and 48k);
    ImageNet networks train at the constant lr 0.1, and
    `callbacks=kr.training.run_callbacks("imagenet")` adds the paper's division
    by 10 when the validation accuracy plateaus (`PlateauDecay`, so pass
    `validation_data`). Both recipes' callbacks also stop on a NaN loss and,
    given a `directory`, write checkpoints, a resumable backup and a log. A
    later `compile(...)` (or `compile_for` with other settings) replaces
    all of it. `include_top=False` backbones are not compiled.

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
    spatial = input_shape[:2] if settings.data_format == "channels_last" else input_shape[1:]
    if None in spatial:
        return (arch.default_size, arch.default_size)
    return tuple(spatial)


def _free_size(input_shape, settings):
    """The input shape with free height and width (raw images of any size)."""
    if settings.data_format == "channels_last":
        return (None, None, input_shape[-1])
    return (input_shape[0], None, None)


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
    channels_last = settings.data_format == "channels_last"
    if input_shape is None:
        side = arch.default_size if include_top else None
        return (side, side, 3) if channels_last else (3, side, side)
    shape = tuple(input_shape) if isinstance(input_shape, (tuple, list)) else ()
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


_CONSTRUCTOR_DOC = """Instantiates {title}.

    {summary}

    Args:
        include_top: add global average pooling and the classifier.
        weights: `None`, {weights_doc}, a pretrained name of
            `keras_resnet.models.pretrained.names_for("{architecture}")` or the path
            of a weights file (also a torch `.pth` / `.safetensors` file or a
            keras-hub preset folder).
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
            `pool_padding`, `zero_init_residual`, `bn_epsilon`, `bn_momentum`,
            `include_preprocessing` (take raw 0-255 images of any size),
            `preprocessing`.

    Returns:
        A `keras_resnet.ResNetModel`; with `include_top=True` compiled with
        the `"{recipe}"` recipe (see `keras_resnet.ResNet`), so
        `model.fit(ds)` trains it straight away.

    Example:

    >>> model = {function}(input_shape=(64, 64, 3), classes=10)
    >>> model.output_shape
    (None, 10)
    """


MODELS = {}
"""Every public constructor by its lower-case name, filled by `_register`."""


def _register(function_name, architecture, *, preact=False, plain=False):
    """Defines the public constructor `function_name` and adds it to `MODELS`."""
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
            if weights_lib.has_imagenet_weights(architecture, preact=preact) and not plain
            else "(no published ImageNet weights for this network)"
        ),
        default_shape=(side, side, 3),
        default_classes=arch.default_classes,
        recipe="cifar10" if arch.stem == "cifar" else "imagenet",
        model_name=model_name,
        function=function_name,
        architecture=architecture,
    )
    constructor.architecture = architecture  # its key of ARCHITECTURES, e.g. for `pretrained.resolve`
    MODELS[model_name] = constructor
    return constructor


ResNet18 = _register("ResNet18", "resnet18")
ResNet34 = _register("ResNet34", "resnet34")
ResNet50 = _register("ResNet50", "resnet50")
ResNet101 = _register("ResNet101", "resnet101")
ResNet152 = _register("ResNet152", "resnet152")
ResNet200 = _register("ResNet200", "resnet200")
ResNet18V2 = _register("ResNet18V2", "resnet18", preact=True)
ResNet34V2 = _register("ResNet34V2", "resnet34", preact=True)
ResNet50V2 = _register("ResNet50V2", "resnet50", preact=True)
ResNet101V2 = _register("ResNet101V2", "resnet101", preact=True)
ResNet152V2 = _register("ResNet152V2", "resnet152", preact=True)
ResNet200V2 = _register("ResNet200V2", "resnet200", preact=True)
ResNet20 = _register("ResNet20", "resnet20")
ResNet32 = _register("ResNet32", "resnet32")
ResNet44 = _register("ResNet44", "resnet44")
ResNet56 = _register("ResNet56", "resnet56")
ResNet110 = _register("ResNet110", "resnet110")
ResNet1202 = _register("ResNet1202", "resnet1202")
PlainNet18 = _register("PlainNet18", "resnet18", plain=True)
PlainNet34 = _register("PlainNet34", "resnet34", plain=True)
Plain20 = _register("Plain20", "resnet20", plain=True)
Plain32 = _register("Plain32", "resnet32", plain=True)
Plain44 = _register("Plain44", "resnet44", plain=True)
Plain56 = _register("Plain56", "resnet56", plain=True)
Plain110 = _register("Plain110", "resnet110", plain=True)


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
