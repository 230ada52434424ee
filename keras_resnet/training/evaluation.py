"""Evaluation over several views of each image: centre crop, the paper's 10-crop and multi-scale testing
(He et al. 2015, section 3.4)."""

from collections.abc import Callable
from typing import Any

import keras
import numpy as np

from keras_resnet._validation import check_choice as _check_choice
from keras_resnet._validation import check_positive_int as _check_positive
from keras_resnet._validation import check_positive_ints as _check_positive_ints
from keras_resnet.data.transforms import center_crop, resize_shorter_side
from keras_resnet.imagenet import CROP_SIZE, RESIZE_SIZE

__all__ = ["METHODS", "PAPER_SCALES", "evaluate", "top_k_error"]

PAPER_SCALES = (224, 256, 384, 480, 640)
"""Shorter sides of the paper's multi-scale fully-convolutional testing."""

METHODS = ("center", "ten_crop", "multi_scale")
"""How `evaluate` (and `trainer.evaluate_run`) views each image: centre crop, 10 crops, several scales."""


def top_k_error(scores: Any, labels: Any, k: int = 1) -> float:
    """The fraction of examples whose label is not among the `k` highest scores, a float in [0, 1].

    Args:
        scores: array of shape `(count, classes)`.
        labels: int array of shape `(count,)`.
        k: how many of the highest scores count as a hit.

    Example:

    ```python
    keras_resnet.training.evaluation.top_k_error([[0.1, 0.7, 0.2], [0.5, 0.3, 0.2]], [2, 0], k=1)  # 0.5
    ```
    """
    scores = np.asarray(scores)
    labels = np.asarray(labels).reshape(-1)
    if scores.ndim != 2 or len(scores) != len(labels):
        raise ValueError(
            f"scores must have shape (count, classes) with count = len(labels) = {len(labels)}; "
            f"received shape {scores.shape}"
        )
    _check_positive("k", k)
    top = np.argsort(-scores, axis=1, kind="stable")[:, :k]
    return float(1.0 - np.mean(np.any(top == labels[:, None], axis=1)))


def _ten_crops(image, size):
    """The four corner crops, the centre crop and their horizontal flips: shape `(10, size, size, channels)`."""
    import tensorflow as tf

    height, width = tf.shape(image)[0], tf.shape(image)[1]
    corners = [(0, 0), (0, width - size), (height - size, 0), (height - size, width - size)]
    crops = [tf.image.crop_to_bounding_box(image, top, left, size, size) for top, left in corners]
    crops = tf.stack(crops + [center_crop(image, size)])
    return tf.concat([crops, tf.image.flip_left_right(crops)], axis=0)


def evaluate(
    model: keras.Model,
    images: Any,
    *,
    method: str = "ten_crop",
    crop_size: int = CROP_SIZE,
    resize_size: int = RESIZE_SIZE,
    scales: tuple[int, ...] = PAPER_SCALES,
    flip: bool = False,
    preprocess: Callable | None = None,
) -> dict:
    """Scores each image over several views, averages the model outputs and reports top-1 and top-5 error.

    `"center"` and `"ten_crop"` resize the shorter side to `resize_size`, then take the centre crop, or the
    four corner and centre crops and their flips. `"multi_scale"` scores the whole image at each of `scales`
    (the model must take any size). Each image is scored on its own, so images may differ in size.

    Args:
        model: a Keras model mapping a batch of images to class scores of shape `(batch, classes)`.
        images: an unbatched `tf.data.Dataset` of `(image, label)`, images `(height, width, 3)` on 0-255.
        method: one of `METHODS`.
        crop_size: side of the crops.
        resize_size: shorter side before cropping; at least `crop_size`.
        scales: the shorter sides of `"multi_scale"`.
        flip: whether `"multi_scale"` also scores the flipped images.
        preprocess: optional function mapping float32 views on 0-255 to model inputs.

    Returns:
        A dict: `"top1_error"`, `"top5_error"`, `"scores"` (averaged, `(count, classes)`) and `"labels"`.

    Example:

    ```python
    validation = keras_resnet.data.tfds_source("imagenet2012", split="validation", data_dir="/data/tfds")
    normalize = keras_resnet.data.normalizer(keras_resnet.data.IMAGENET_MEAN)
    result = keras_resnet.training.evaluation.evaluate(model, validation.images(), preprocess=normalize)
    print(result["top1_error"], result["top5_error"])
    ```
    """
    import tensorflow as tf

    _check_choice("method", method, METHODS)
    _check_positive("crop_size", crop_size)
    _check_positive("resize_size", resize_size)
    if resize_size < crop_size:
        raise ValueError(f"resize_size must be at least crop_size ({crop_size}); received {resize_size!r}")
    _check_positive_ints("scales", scales)
    image_spec = images.element_spec[0]
    if image_spec.shape.rank != 3:
        raise ValueError(
            "images must be an unbatched dataset of (image, label) with images of shape (height, width, 3); "
            f"received images of shape {image_spec.shape}"
        )

    def crops(image):
        resized = resize_shorter_side(image, resize_size)
        if method == "center":
            return (center_crop(resized, crop_size)[None],)
        return (_ten_crops(resized, crop_size),)

    def rescaled(image):
        views = [resize_shorter_side(image, scale)[None] for scale in scales]
        return tuple(views + [tf.image.flip_left_right(view) for view in views] if flip else views)

    make_views = rescaled if method == "multi_scale" else crops

    def prepare(image, label):
        views = make_views(tf.cast(image, tf.float32))
        return tuple(views if preprocess is None else map(preprocess, views)), label

    scores, labels = [], []
    prepared = images.map(prepare, num_parallel_calls=tf.data.AUTOTUNE).prefetch(tf.data.AUTOTUNE)
    for views, label in prepared.as_numpy_iterator():
        outputs = [keras.ops.convert_to_numpy(model(batch, training=False)) for batch in views]
        scores.append(np.concatenate(outputs).mean(axis=0))
        labels.append(label)
    if not scores:
        raise ValueError("images must hold at least one (image, label) pair; received an empty dataset")
    scores, labels = np.stack(scores), np.asarray(labels)
    return {
        "top1_error": top_k_error(scores, labels, k=1),
        "top5_error": top_k_error(scores, labels, k=5),
        "scores": scores,
        "labels": labels,
    }
