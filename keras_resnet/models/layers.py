"""Layers beyond `keras.layers` for the blocks and in-model preprocessing; data formats and their axes."""

from __future__ import annotations

import keras
from keras import ops

from keras_resnet._validation import check_choice, check_int

DATA_FORMATS = ("channels_last", "channels_first")


def data_format_or_default(data_format: str | None) -> str:
    """`data_format`, checked, or `keras.config.image_data_format()` when `None`."""
    data_format = data_format or keras.config.image_data_format()
    check_choice("data_format", data_format, DATA_FORMATS)
    return data_format


def channel_axis(data_format: str) -> int:
    """The channel axis of a batch: -1 (channels last) or 1."""
    return -1 if data_format == "channels_last" else 1


def spatial_axes(data_format: str) -> tuple[int, int]:
    """The (height, width) axes of a batch."""
    return (1, 2) if data_format == "channels_last" else (2, 3)


class _ImageLayer(keras.layers.Layer):
    """A layer with a `data_format`, saved in its config."""

    def __init__(self, data_format=None, **kwargs):
        super().__init__(**kwargs)
        self.data_format = data_format_or_default(data_format)

    def get_config(self):
        return {**super().get_config(), "data_format": self.data_format}


@keras.saving.register_keras_serializable(package="keras_resnet")
class ZeroPadShortcut(_ImageLayer):
    """The paper's option A shortcut: strided identity with zero-padded channels, no parameters.

    Args:
        filters: channels of the output; at least the input's channels.
        strides: spatial subsampling factor.
        data_format: defaults to `keras.config.image_data_format()`.

    Example:

    >>> import numpy as np
    >>> layer = ZeroPadShortcut(8, strides=2)
    >>> tuple(layer(np.ones((1, 4, 4, 3), "float32")).shape)
    (1, 2, 2, 8)
    """

    def __init__(self, filters: int, strides: int = 1, data_format: str | None = None, **kwargs):
        super().__init__(data_format, **kwargs)
        for argument, value in (("filters", filters), ("strides", strides)):
            check_int(argument, value)
        self.filters = int(filters)
        self.strides = int(strides)

    def build(self, input_shape):
        channels = input_shape[channel_axis(self.data_format)]
        if channels is not None and channels > self.filters:
            raise ValueError(
                f"ZeroPadShortcut filters must be >= the input's {channels} channels; received filters={self.filters}"
            )

    def call(self, inputs):
        axis = channel_axis(self.data_format)
        index = [slice(None)] * 4
        for spatial in spatial_axes(self.data_format):
            index[spatial] = slice(None, None, self.strides)
        x = inputs[tuple(index)]
        widths = [[0, 0]] * 4
        widths[axis] = [0, self.filters - ops.shape(x)[axis]]
        return ops.pad(x, widths)

    def compute_output_shape(self, input_shape):
        shape = list(input_shape)
        for axis in spatial_axes(self.data_format):
            if shape[axis] is not None:
                shape[axis] = -(-shape[axis] // self.strides)
        shape[channel_axis(self.data_format)] = self.filters
        return tuple(shape)

    def get_config(self):
        return {**super().get_config(), "filters": self.filters, "strides": self.strides}


@keras.saving.register_keras_serializable(package="keras_resnet")
class ReverseChannels(_ImageLayer):
    """Reverses the channels (RGB to BGR and back) with one gather, which every export format converts.

    Args:
        data_format: defaults to `keras.config.image_data_format()`.

    Example:

    >>> import numpy as np
    >>> keras.ops.convert_to_numpy(ReverseChannels()(np.array([[[[1.0, 2.0, 3.0]]]]))).tolist()
    [[[[3.0, 2.0, 1.0]]]]
    """

    def call(self, inputs):
        axis = channel_axis(self.data_format)
        return ops.take(inputs, list(range(inputs.shape[axis] - 1, -1, -1)), axis=axis)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)


@keras.saving.register_keras_serializable(package="keras_resnet")
class ConstantPadding2D(_ImageLayer):
    """Pads height and width with a constant, e.g. `-inf` before a max-pool (torch's padding).

    Args:
        padding: pixels added on each side of height and width.
        value: the constant (`-inf` lets a following max-pool ignore the border).
        data_format: defaults to `keras.config.image_data_format()`.

    Example:

    >>> import numpy as np
    >>> y = ConstantPadding2D(1, value=-np.inf)(-np.ones((1, 2, 2, 1), "float32"))
    >>> tuple(y.shape), float(keras.ops.convert_to_numpy(y)[0, 0, 0, 0])
    ((1, 4, 4, 1), -inf)
    """

    def __init__(self, padding: int = 1, value: float = 0.0, data_format: str | None = None, **kwargs):
        super().__init__(data_format, **kwargs)
        check_int("padding", padding)
        self.padding = int(padding)
        self.value = float(value)

    def call(self, inputs):
        widths = [[0, 0]] * 4
        for axis in spatial_axes(self.data_format):
            widths[axis] = [self.padding, self.padding]
        return ops.pad(inputs, widths, constant_values=self.value)

    def compute_output_shape(self, input_shape):
        shape = list(input_shape)
        for axis in spatial_axes(self.data_format):
            if shape[axis] is not None:
                shape[axis] += 2 * self.padding
        return tuple(shape)

    def get_config(self):
        return {**super().get_config(), "padding": self.padding, "value": self.value}
