"""Custom layers the residual blocks and the in-model preprocessing need beyond `keras.layers`."""

import keras
from keras import ops

from keras_resnet._validation import check_choice, check_int

DATA_FORMATS = ("channels_last", "channels_first")


@keras.saving.register_keras_serializable(package="keras_resnet")
class ZeroPadShortcut(keras.layers.Layer):
    """The paper's option A shortcut: strided identity with zero-padded channels.

    Subsamples the input by `strides` (keeping every `strides`-th pixel, as a
    1x1 convolution with stride 2 would) and appends zero channels up to
    `filters`. It has no parameters.

    Args:
        filters: channels of the output; at least the input's channels.
        strides: spatial subsampling factor.
        data_format: `"channels_last"` or `"channels_first"`; defaults to
            `keras.config.image_data_format()`.

    Example:

    >>> import numpy as np
    >>> layer = ZeroPadShortcut(8, strides=2)
    >>> tuple(layer(np.ones((1, 4, 4, 3), "float32")).shape)
    (1, 2, 2, 8)
    """

    def __init__(self, filters, strides=1, data_format=None, **kwargs):
        super().__init__(**kwargs)
        for argument, value in (("filters", filters), ("strides", strides)):
            check_int(argument, value)
        self.filters = int(filters)
        self.strides = int(strides)
        self.data_format = data_format or keras.config.image_data_format()

    def _channel_axis(self):
        return -1 if self.data_format == "channels_last" else 1

    def build(self, input_shape):
        channels = input_shape[self._channel_axis()]
        if channels is not None and channels > self.filters:
            raise ValueError(
                f"ZeroPadShortcut filters must be >= the input's {channels} channels; received filters={self.filters}"
            )

    def call(self, inputs):
        step = self.strides
        if self.data_format == "channels_last":
            x = inputs[:, ::step, ::step, :]
            extra = self.filters - ops.shape(x)[-1]
            return ops.pad(x, [[0, 0], [0, 0], [0, 0], [0, extra]])
        x = inputs[:, :, ::step, ::step]
        extra = self.filters - ops.shape(x)[1]
        return ops.pad(x, [[0, 0], [0, extra], [0, 0], [0, 0]])

    def compute_output_shape(self, input_shape):
        shape = list(input_shape)
        spatial = (1, 2) if self.data_format == "channels_last" else (2, 3)
        for axis in spatial:
            if shape[axis] is not None:
                shape[axis] = -(-shape[axis] // self.strides)
        shape[self._channel_axis()] = self.filters
        return tuple(shape)

    def get_config(self):
        config = super().get_config()
        config.update(filters=self.filters, strides=self.strides, data_format=self.data_format)
        return config


@keras.saving.register_keras_serializable(package="keras_resnet")
class ReverseChannels(keras.layers.Layer):
    """Reverses the order of the channels: RGB to BGR and back.

    The "caffe" preprocessing of the keras.applications ResNet v1 weights
    feeds BGR images; this layer lets a model that takes RGB do that itself.
    It is a gather of the channels in reverse order (one op, no parameters),
    which every export format converts.

    Args:
        data_format: `"channels_last"` or `"channels_first"`; defaults to
            `keras.config.image_data_format()`.

    Example:

    >>> import numpy as np
    >>> keras.ops.convert_to_numpy(ReverseChannels()(np.array([[[[1.0, 2.0, 3.0]]]]))).tolist()
    [[[[3.0, 2.0, 1.0]]]]
    """

    def __init__(self, data_format=None, **kwargs):
        super().__init__(**kwargs)
        if data_format is not None:
            check_choice("data_format", data_format, DATA_FORMATS)
        self.data_format = data_format or keras.config.image_data_format()

    def _channel_axis(self):
        return -1 if self.data_format == "channels_last" else 1

    def call(self, inputs):
        channels = inputs.shape[self._channel_axis()]
        return ops.take(inputs, list(range(channels - 1, -1, -1)), axis=self._channel_axis())

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)

    def get_config(self):
        return {**super().get_config(), "data_format": self.data_format}


@keras.saving.register_keras_serializable(package="keras_resnet")
class ConstantPadding2D(keras.layers.Layer):
    """Pads height and width with a constant, e.g. `-inf` before a max-pool (torch's padding).

    Args:
        padding: pixels added on each side of height and width.
        value: the constant (a float; `-inf` lets a following max-pool ignore the border).
        data_format: `"channels_last"` or `"channels_first"`; defaults to
            `keras.config.image_data_format()`.

    Example:

    >>> import numpy as np
    >>> y = ConstantPadding2D(1, value=-np.inf)(-np.ones((1, 2, 2, 1), "float32"))
    >>> tuple(y.shape), float(keras.ops.convert_to_numpy(y)[0, 0, 0, 0])
    ((1, 4, 4, 1), -inf)
    """

    def __init__(self, padding=1, value=0.0, data_format=None, **kwargs):
        super().__init__(**kwargs)
        check_int("padding", padding)
        if data_format is not None:
            check_choice("data_format", data_format, DATA_FORMATS)
        self.padding = int(padding)
        self.value = float(value)
        self.data_format = data_format or keras.config.image_data_format()

    def call(self, inputs):
        p = [self.padding, self.padding]
        widths = [[0, 0], p, p, [0, 0]] if self.data_format == "channels_last" else [[0, 0], [0, 0], p, p]
        return ops.pad(inputs, widths, constant_values=self.value)

    def compute_output_shape(self, input_shape):
        shape = list(input_shape)
        for axis in (1, 2) if self.data_format == "channels_last" else (2, 3):
            if shape[axis] is not None:
                shape[axis] += 2 * self.padding
        return tuple(shape)

    def get_config(self):
        return {**super().get_config(), "padding": self.padding, "value": self.value, "data_format": self.data_format}
