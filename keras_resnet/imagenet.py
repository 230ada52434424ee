"""ImageNet input preprocessing and prediction decoding, as keras.applications does them."""

import json

import keras
import numpy as np
from keras import ops

from keras_resnet import _keras_compat
from keras_resnet._validation import check_choice as _check_choice
from keras_resnet._validation import check_positive_int as _check_positive_int
from keras_resnet.weights import cached_file

IMAGENET_MEAN = (123.68, 116.779, 103.939)
"""Mean RGB value of the ImageNet training images, 0-255 scale (the mean of the original Caffe models)."""

BGR_MEAN = IMAGENET_MEAN[::-1]
"""`IMAGENET_MEAN` in BGR order, as keras.applications' "caffe" preprocessing subtracts it."""

CROP_SIZE = 224
"""Side of the paper's ImageNet training and test crops."""

SCALE_RANGE = (256, 480)
"""The paper's scale augmentation (section 3.4): the shorter side is sampled in this range for 224 crops."""

RESIZE_SIZE = 256
"""The shorter side an image is resized to before its 224 centre (or 10-crop) test crops."""

# AlexNet's PCA lighting noise: eigenvalues and eigenvectors (columns) of the covariance of ImageNet RGB pixel
# values on the 0-1 scale, the figures used by fb.resnet.torch.
LIGHTING_EIGENVALUES = (0.2175, 0.0188, 0.0045)
LIGHTING_EIGENVECTORS = (
    (-0.5675, 0.7192, 0.4009),
    (-0.5808, -0.0045, -0.8140),
    (-0.5836, -0.6948, 0.4203),
)
CLASS_INDEX_URL = "https://storage.googleapis.com/download.tensorflow.org/data/imagenet_class_index.json"
MODES = ("caffe", "tf")
_KERAS_PREPROCESS = {
    "caffe": keras.applications.resnet.preprocess_input,
    "tf": keras.applications.resnet_v2.preprocess_input,
}


def scaled_sizes(image_size):
    """The paper's ImageNet `(scale_range, resize_size)` for crops of side `image_size`, scaled from 224.

    Args:
        image_size: int, side of the crops.

    Returns:
        A tuple `((min, max), resize_size)` of ints: `SCALE_RANGE` and `RESIZE_SIZE` times `image_size / 224`.

    Example:

    >>> scaled_sizes(112)
    ((128, 240), 128)
    """
    _check_positive_int("image_size", image_size)
    scale = image_size / CROP_SIZE
    return tuple(round(side * scale) for side in SCALE_RANGE), round(RESIZE_SIZE * scale)


def preprocess_input(x, data_format=None, mode="caffe"):
    """Preprocesses RGB images in [0, 255] for a ResNet.

    `mode="caffe"` (ResNet v1, the default) is
    `keras.applications.resnet.preprocess_input`: RGB to BGR, then subtract
    the ImageNet channel means. `mode="tf"` (ResNet v2) is
    `keras.applications.resnet_v2.preprocess_input`: scale to [-1, 1]. Both
    are called on a float32 copy, so the input is never changed in place.

    Args:
        x: images, a numpy array or tensor, channels last or first.
        data_format: `"channels_last"` or `"channels_first"`; defaults to
            `keras.config.image_data_format()`.
        mode: `"caffe"` or `"tf"`.

    Returns:
        float32 array (numpy in, numpy out) or tensor of the same shape.

    Example:

    >>> import numpy as np
    >>> preprocess_input(np.full((1, 2, 2, 3), 255.0))[0, 0, 0].round(3).tolist()
    [151.061, 138.221, 131.32]
    """
    _check_choice("mode", mode, MODES)
    _check_choice("data_format", data_format or keras.config.image_data_format(), ("channels_last", "channels_first"))
    preprocess = _KERAS_PREPROCESS[mode]
    if isinstance(x, np.ndarray) or np.isscalar(x) or isinstance(x, (list, tuple)):
        return preprocess(np.array(x, dtype="float32"), data_format=data_format)
    return preprocess(ops.cast(x, "float32"), data_format=data_format)


def preprocess_input_v2(x, data_format=None):
    """`preprocess_input` for the pre-activation (v2) networks: scales to [-1, 1].

    Example:

    >>> import numpy as np
    >>> preprocess_input_v2(np.array([[0.0, 127.5, 255.0]])).tolist()
    [[-1.0, 0.0, 1.0]]
    """
    return preprocess_input(x, data_format=data_format, mode="tf")


def _class_index_path():
    # A cached index is used as it is (as Keras does), so a local copy may be edited.
    return cached_file(
        "imagenet_class_index.json",
        CLASS_INDEX_URL,
        "c2c37ea517e94d9795004a39431a14cb",
        description="the ImageNet class index",
        verify_cached=False,
    )


def decode_predictions(preds, top=5):
    """Decodes ImageNet predictions with `keras.applications.resnet.decode_predictions`.

    The class index comes from this library's cache: a cached
    `imagenet_class_index.json` is used as it is, and offline, without one,
    the error says where to put it.

    Args:
        preds: array of shape `(batch, 1000)`.
        top: how many classes to return per sample.

    Returns:
        One list per sample of `(class_id, class_name, score)` tuples, best
        first.

    Raises:
        ValueError: `preds` is not `(batch, 1000)` or `top` is not positive.
        OSError: the class index is neither cached nor downloadable; the
            message says where to put `imagenet_class_index.json`.

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
    with open(_class_index_path()) as f:
        index = json.load(f)
    return _keras_compat.with_imagenet_class_index(index, keras.applications.resnet.decode_predictions, preds, top=top)
