"""ImageNet input preprocessing and prediction decoding, as keras.applications does them."""

from __future__ import annotations

import json
from typing import Any

import keras
import numpy as np
from keras import ops

from keras_resnet._validation import check_choice as _check_choice
from keras_resnet._validation import check_positive_int as _check_positive_int
from keras_resnet.models.layers import data_format_or_default
from keras_resnet.models.weights import cached_file

CLASS_INDEX_URL = "https://storage.googleapis.com/download.tensorflow.org/data/imagenet_class_index.json"
MODES = ("caffe", "tf")
_KERAS_PREPROCESS = {
    "caffe": keras.applications.resnet.preprocess_input,
    "tf": keras.applications.resnet_v2.preprocess_input,
}


def preprocess_input(x: Any, data_format: str | None = None, mode: str = "caffe") -> Any:
    """Preprocesses RGB images in [0, 255] for a ResNet, on a float32 copy (the input is never changed).

    Args:
        x: images, a numpy array or tensor.
        data_format: defaults to `keras.config.image_data_format()`.
        mode: `"caffe"` (v1: keras.applications.resnet, BGR minus the ImageNet means) or
            `"tf"` (v2: keras.applications.resnet_v2, scaled to [-1, 1]).

    Returns:
        float32 array (numpy in, numpy out) or tensor of the same shape.

    Example:

    >>> import numpy as np
    >>> preprocess_input(np.full((1, 2, 2, 3), 255.0))[0, 0, 0].astype(float).round(3).tolist()
    [151.061, 138.221, 131.32]
    """
    _check_choice("mode", mode, MODES)
    data_format_or_default(data_format)
    preprocess = _KERAS_PREPROCESS[mode]
    if isinstance(x, np.ndarray) or np.isscalar(x) or isinstance(x, (list, tuple)):
        return preprocess(np.array(x, dtype="float32"), data_format=data_format)
    return preprocess(ops.cast(x, "float32"), data_format=data_format)


def preprocess_input_v2(x: Any, data_format: str | None = None) -> Any:
    """`preprocess_input` for the pre-activation (v2) networks: scales to [-1, 1].

    Example:

    >>> import numpy as np
    >>> preprocess_input_v2(np.array([[0.0, 127.5, 255.0]])).tolist()
    [[-1.0, 0.0, 1.0]]
    """
    return preprocess_input(x, data_format=data_format, mode="tf")


def decode_predictions(preds: Any, top: int = 5) -> list[list[tuple[str, str, float]]]:
    """Decodes ImageNet predictions as `keras.applications.resnet.decode_predictions` does.

    The class index is Keras' `imagenet_class_index.json`, downloaded once into Keras' cache.

    Args:
        preds: array of shape `(batch, 1000)`.
        top: how many classes to return per sample.

    Returns:
        One list per sample of `(class_id, class_name, score)` tuples, best first.

    Raises:
        OSError: the class index is neither cached nor downloadable.

    Example:

    >>> import numpy as np
    >>> decoded = decode_predictions(np.eye(1000)[[1]], top=1)  # doctest: +SKIP
    >>> decoded[0][0][1]  # doctest: +SKIP
    'goldfish'
    """
    preds = np.asarray(preds)
    if preds.ndim != 2 or preds.shape[1] != 1000:
        raise ValueError(
            f"preds must be a batch of ImageNet predictions, shape (samples, 1000); received shape {preds.shape}"
        )
    _check_positive_int("top", top)
    path = cached_file(
        "imagenet_class_index.json",
        CLASS_INDEX_URL,
        "c2c37ea517e94d9795004a39431a14cb",
        description="the ImageNet class index",
        verify_cached=False,
    )
    with open(path) as f:
        index = json.load(f)
    return [[(*index[str(i)], row[i]) for i in np.argsort(row)[::-1][:top]] for row in preds]
