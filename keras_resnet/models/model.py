"""`ResNetModel`: the functional model every builder returns, with what it records about itself."""

from __future__ import annotations

from typing import Any

import keras
import numpy as np

from keras_resnet import _keras_compat
from keras_resnet.models.layers import channel_axis, spatial_axes

_RECORDED = ("preprocessing", "includes_preprocessing", "class_names")


@keras.saving.register_keras_serializable(package="keras_resnet")
class ResNetModel(keras.Model):
    """A functional ResNet that records its feature levels, preprocessing and class names in its config.

    So they survive `.keras` save and load, and exports need no side file. A batch of the wrong
    shape fails at once with a message saying the shape the model takes and how to get there.

    Args:
        inputs: the model's input tensor(s).
        outputs: its output tensor(s).
        name: model name.
        **kwargs: `feature_levels` (see `keras_resnet.feature_info`), the keys of `record`, and
            arguments of `keras.Model`.

    Example:

    >>> import keras_resnet
    >>> model = keras_resnet.ResNet20()
    >>> isinstance(model, ResNetModel), model.feature_levels[-1]["level"]
    (True, 'C4')
    """

    def __init__(self, inputs: Any, outputs: Any, name: str | None = None, **kwargs):
        levels = kwargs.pop("feature_levels", ())
        recorded = {key: kwargs.pop(key) for key in _RECORDED if key in kwargs}
        with _keras_compat.graph_recursion_room(outputs):
            super().__init__(inputs, outputs, name=name, **kwargs)
        self.feature_levels = levels
        self.record(**recorded)

    def record(self, **values: Any) -> None:
        """Records what the model's input must be and what its classes are; only the given keys change.

        Args:
            **values: `preprocessing` (`None` when unknown, `"caffe"`, `"tf"` or a dict
                `{"mean": ..., "std": ...}`), `includes_preprocessing` (it takes raw 0-255 RGB)
                and `class_names`.

        Example:

        >>> from keras_resnet import ResNet20
        >>> model = ResNet20()
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
    def feature_levels(self) -> list[dict]:
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
        return None  # `_check_input` checks the shape, with a message that says how to fix it.

    @input_spec.setter
    def input_spec(self, value):
        pass  # Keras sets it on every layer.

    def call(self, inputs, training=None, mask=None):
        self._check_input(inputs)
        # `training=None` as inference, or `model.export` with preprocessing layers traces BN in training mode.
        return super().call(inputs, training=bool(training), mask=mask)

    def compute_output_spec(self, inputs, training=None, mask=None):
        self._check_input(inputs)
        return super().compute_output_spec(inputs, training=training, mask=mask)

    def _check_input(self, inputs):
        shape = getattr(inputs, "shape", None)
        if len(self.inputs) != 1 or shape is None:
            return
        data_format = self.get_layer("conv1_conv").data_format
        message = _input_shape_problem(self.name, tuple(self.inputs[0].shape), tuple(shape), data_format)
        if message:
            raise ValueError(message)

    def get_config(self):
        return {
            **super().get_config(),
            "feature_levels": self.feature_levels,
            **{key: getattr(self, key) for key in _RECORDED},
        }


def _input_shape_problem(name, expected, received, data_format):
    """`None` when a batch of shape `received` fits a model taking `expected`, else the error message."""
    channel = channel_axis(data_format)
    spatial = spatial_axes(data_format)
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
