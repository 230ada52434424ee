"""Residual blocks as small Functional-API functions, every convolution made by `conv_bn`.

Layer names follow `keras.applications` (`conv3_block2_1_conv`, ..., `conv3_block2_out`).
"""

from __future__ import annotations

import dataclasses

import keras
from keras import KerasTensor

from keras_resnet._validation import check_choice as _check_choice
from keras_resnet._validation import is_real as _is_real
from keras_resnet._validation import require as _require
from keras_resnet.models.architectures import BLOCKS, EXPANSION, SHORTCUTS
from keras_resnet.models.layers import ZeroPadShortcut, channel_axis, data_format_or_default

STRIDE_IN = ("1x1", "3x3")


@dataclasses.dataclass(frozen=True)
class LayerSettings:
    """Settings shared by every convolution and normalisation of a network.

    Args:
        bn_epsilon: `BatchNormalization` epsilon (the paper's Torch/Caffe models).
        bn_momentum: moving-average momentum of BN statistics (PyTorch's 0.1).
        kernel_initializer: initializer of every convolution kernel (He).
        data_format: `None` means `keras.config.image_data_format()`.
        zero_init_residual: zero the last BN gamma (v1) or last conv (v2) of each branch,
            so each block starts as an identity.

    Example:

    >>> LayerSettings(bn_momentum=0.99).channel_axis
    -1
    """

    bn_epsilon: float = 1e-5
    bn_momentum: float = 0.9
    kernel_initializer: str = "he_normal"
    data_format: str | None = None
    zero_init_residual: bool = False

    def __post_init__(self):
        for argument, value in (("bn_epsilon", self.bn_epsilon), ("bn_momentum", self.bn_momentum)):
            _require(_is_real(value) and 0 < value < 1, argument, value, "a number in (0, 1)")
        object.__setattr__(self, "data_format", data_format_or_default(self.data_format))

    @property
    def channel_axis(self) -> int:
        return channel_axis(self.data_format)


def conv_bn(
    x: KerasTensor,
    filters: int,
    kernel_size: int,
    settings: LayerSettings,
    *,
    name: str,
    strides: int = 1,
    dilation: int = 1,
    use_bias: bool = False,
    norm: bool = True,
    activation: bool = True,
    zero_init: bool = False,
) -> KerasTensor:
    """Convolution (`{name}_conv`), then optionally BatchNormalization (`_bn`) and ReLU (`_relu`).

    A strided conv wider than 1x1 pads symmetrically (`{name}_pad`), as keras.applications does.

    Args:
        x: input tensor.
        filters: output channels.
        kernel_size: square kernel side.
        settings: a `LayerSettings`.
        name: prefix of the layer names.
        strides: convolution stride.
        dilation: convolution dilation rate.
        use_bias: add a bias to the convolution.
        norm: follow the convolution with BatchNormalization.
        activation: follow with ReLU.
        zero_init: start the BN gamma (or, without BN, the kernel) at zero.

    Example:

    >>> import keras
    >>> x = keras.Input((32, 32, 3))
    >>> y = conv_bn(x, 16, 3, LayerSettings(), name="stem")
    >>> tuple(y.shape)
    (None, 32, 32, 16)
    """
    padding = "same"
    if strides > 1 and kernel_size > 1:
        pad = dilation * (kernel_size - 1) // 2
        x = keras.layers.ZeroPadding2D(pad, data_format=settings.data_format, name=f"{name}_pad")(x)
        padding = "valid"
    zero_kernel = zero_init and not norm
    x = keras.layers.Conv2D(
        filters,
        kernel_size,
        strides=strides,
        padding=padding,
        dilation_rate=dilation,
        use_bias=use_bias,
        kernel_initializer="zeros" if zero_kernel else settings.kernel_initializer,
        data_format=settings.data_format,
        name=f"{name}_conv",
    )(x)
    if norm:
        x = batch_norm(x, settings, name=f"{name}_bn", zero_init=zero_init)
    if activation:
        x = keras.layers.Activation("relu", name=f"{name}_relu")(x)
    return x


def batch_norm(x: KerasTensor, settings: LayerSettings, *, name: str, zero_init: bool = False) -> KerasTensor:
    """BatchNormalization over the channel axis with the network's settings."""
    return keras.layers.BatchNormalization(
        axis=settings.channel_axis,
        epsilon=settings.bn_epsilon,
        momentum=settings.bn_momentum,
        gamma_initializer="zeros" if zero_init else "ones",
        name=name,
    )(x)


def shortcut_kind(option: str, in_channels: int, out_channels: int, strides: int, plain: bool = False) -> str | None:
    """Which shortcut a block gets under the paper's options A, B and C.

    Args:
        option: `"A"`, `"B"` or `"C"`.
        in_channels: channels entering the block.
        out_channels: channels leaving the block.
        strides: the block's spatial stride.
        plain: a plain network has no shortcuts at all.

    Returns:
        `None`, `"identity"`, `"subsample"` (strided identity), `"pad"` (option A) or `"projection"`.

    Example:

    >>> shortcut_kind("A", 16, 32, 2), shortcut_kind("B", 16, 32, 2)
    ('pad', 'projection')
    """
    _check_choice("shortcut", option, SHORTCUTS)
    if plain:
        return None
    if option == "C":
        return "projection"
    if in_channels != out_channels:
        return "pad" if option == "A" else "projection"
    return "subsample" if strides > 1 else "identity"


def _shortcut(x, preact, out_channels, strides, kind, settings, name):
    """The shortcut path; `preact` feeds projections of v2 blocks."""
    if kind == "identity":
        return x
    if kind == "subsample":
        return keras.layers.MaxPooling2D(1, strides=strides, data_format=settings.data_format, name=f"{name}_0_pool")(x)
    if kind == "pad":
        return ZeroPadShortcut(out_channels, strides=strides, data_format=settings.data_format, name=f"{name}_0_pad")(x)
    # v2 projects the pre-activated input straight into the sum, so it keeps its bias and has no BN.
    if preact is None:
        return conv_bn(x, out_channels, 1, settings, strides=strides, activation=False, name=f"{name}_0")
    return conv_bn(
        preact,
        out_channels,
        1,
        settings,
        strides=strides,
        use_bias=True,
        norm=False,
        activation=False,
        name=f"{name}_0",
    )


def residual_block(
    x: KerasTensor,
    filters: int,
    settings: LayerSettings,
    *,
    name: str,
    block: str = "basic",
    strides: int = 1,
    dilation: int = 1,
    previous_dilation: int | None = None,
    shortcut: str = "B",
    preact: bool = False,
    plain: bool = False,
    stride_in: str = "1x1",
    return_activated_input: bool = False,
) -> KerasTensor | tuple[KerasTensor, KerasTensor]:
    """One residual block, basic or bottleneck, post- or pre-activation.

    Args:
        x: input tensor.
        filters: block width (bottleneck blocks output `4 * filters`).
        settings: a `LayerSettings`.
        name: block name, e.g. `"conv2_block1"`.
        block: `"basic"` (3x3, 3x3) or `"bottleneck"` (1x1, 3x3, 1x1).
        strides: spatial stride of the block.
        dilation: dilation of the 3x3 convolutions after the first one.
        previous_dilation: dilation of the first 3x3 (torchvision's rule); defaults to `dilation`.
        shortcut: the paper's option `"A"`, `"B"` or `"C"`.
        preact: pre-activation ("v2", He et al. 2016) instead of post-activation ("v1").
        plain: no shortcut (the degradation experiment).
        stride_in: v1 bottlenecks stride the `"1x1"` (the paper) or the `"3x3"` (torchvision's v1.5).
        return_activated_input: also return the post-BN-ReLU map the block reads (feature levels).

    Returns:
        Output tensor, or `(output, activated input)` with `return_activated_input=True`.

    Example:

    >>> import keras
    >>> x = keras.Input((32, 32, 16))
    >>> y = residual_block(x, 32, LayerSettings(), name="conv3_block1", strides=2, shortcut="A")
    >>> tuple(y.shape)
    (None, 16, 16, 32)
    """
    _check_choice("block", block, BLOCKS)
    _check_choice("stride_in", stride_in, STRIDE_IN)
    first_dilation = dilation if previous_dilation is None else previous_dilation
    out_channels = filters * EXPANSION[block]
    kind = shortcut_kind(shortcut, x.shape[settings.channel_axis], out_channels, strides, plain)

    branch = x
    preactivated = None
    if preact:
        preactivated = batch_norm(x, settings, name=f"{name}_preact_bn")
        preactivated = keras.layers.Activation("relu", name=f"{name}_preact_relu")(preactivated)
        branch = preactivated

    if block == "basic":
        layers = [(filters, 3, strides, first_dilation), (out_channels, 3, 1, dilation)]
    else:
        on_1x1 = stride_in == "1x1" and not preact
        layers = [
            (filters, 1, strides if on_1x1 else 1, 1),
            (filters, 3, 1 if on_1x1 else strides, first_dilation),
            (out_channels, 1, 1, 1),
        ]
    last = len(layers)
    for index, (channels, kernel, stride, rate) in enumerate(layers, start=1):
        is_last = index == last
        branch = conv_bn(
            branch,
            channels,
            kernel,
            settings,
            strides=stride,
            dilation=rate,
            use_bias=preact and is_last,  # v2's last conv feeds the sum, not a BN
            norm=not (preact and is_last),
            activation=not is_last,
            zero_init=is_last and settings.zero_init_residual,
            name=f"{name}_{index}",
        )

    if kind is None:
        out = branch if preact else keras.layers.Activation("relu", name=f"{name}_out")(branch)
    elif preact:
        short = _shortcut(x, preactivated, out_channels, strides, kind, settings, name)
        out = keras.layers.Add(name=f"{name}_out")([short, branch])
    else:
        short = _shortcut(x, preactivated, out_channels, strides, kind, settings, name)
        out = keras.layers.Add(name=f"{name}_add")([short, branch])
        out = keras.layers.Activation("relu", name=f"{name}_out")(out)
    if return_activated_input:
        return out, (preactivated if preact else x)
    return out
