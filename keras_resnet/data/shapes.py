"""An embedded image data set: one coloured shape (the class) of random size, position and rotation on a noisy
background, drawn in numpy from a seed (the same pixels on every machine, nothing to download). A small ResNet
learns it in minutes on a laptop CPU: the default data set of `keras-resnet train` and of the tests."""

from __future__ import annotations

import os
from collections.abc import Sequence

import numpy as np

from keras_resnet._validation import check_int as _check_int

CLASS_NAMES = ("circle", "square", "triangle", "cross", "ring")

# Shape radius and noise, relative to the image side and to the 0-1 range.
_RADIUS = (0.2, 0.4)
_NOISE = 0.12

# Each shape is a region of the plane scaled so that its circumscribed circle is the unit circle (u right, v up).
_REGIONS = {
    "circle": lambda u, v: u * u + v * v <= 0.85,
    "square": lambda u, v: np.maximum(np.abs(u), np.abs(v)) <= 0.7,
    "triangle": lambda u, v: (v >= -0.5) & (v <= 1 - np.sqrt(3) * np.abs(u)),
    "cross": lambda u, v: ((np.abs(u) <= 0.3) & (np.abs(v) <= 1)) | ((np.abs(v) <= 0.3) & (np.abs(u) <= 1)),
    "ring": lambda u, v: (u * u + v * v <= 1) & (u * u + v * v >= 0.36),
}


def generate(
    count: int, *, classes: Sequence[str] = CLASS_NAMES, image_size: int = 32, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Draws `count` labelled shape images, balanced between `classes` (names of `CLASS_NAMES`) in shuffled order.

    Returns:
        A tuple `(images, labels)`: uint8 `(count, image_size, image_size, 3)` (`image_size` at least 16) and
        int64 `(count,)`; label `i` is `classes[i]`.

    Example:

    >>> images, labels = generate(10, seed=1)
    >>> images.shape, images.dtype, sorted(set(labels.tolist()))
    ((10, 32, 32, 3), dtype('uint8'), [0, 1, 2, 3, 4])
    """
    _check_int("count", count, 0)
    classes = _check_classes(classes)
    _check_int("image_size", image_size, 16)
    rng = np.random.default_rng(seed)
    labels = rng.permutation(np.arange(count) % len(classes))

    radius = rng.uniform(*_RADIUS, size=count) * image_size
    centre = rng.uniform(radius[:, None], image_size - radius[:, None], size=(count, 2))
    angle = rng.uniform(0, 2 * np.pi, size=count)
    # A shape colour that differs from the background by at least 0.3 in every channel.
    background = rng.uniform(0, 1, size=(count, 3))
    foreground = (background + rng.uniform(0.3, 0.7, size=(count, 3))) % 1

    grid = np.arange(image_size) + 0.5
    x = (grid[None, None, :] - centre[:, 0, None, None]) / radius[:, None, None]
    y = (centre[:, 1, None, None] - grid[None, :, None]) / radius[:, None, None]
    cos, sin = np.cos(angle)[:, None, None], np.sin(angle)[:, None, None]
    u, v = cos * x + sin * y, cos * y - sin * x

    mask = np.zeros((count, image_size, image_size), dtype=bool)
    for label, name in enumerate(classes):
        rows = labels == label
        mask[rows] = _REGIONS[name](u[rows], v[rows])
    images = np.where(mask[..., None], foreground[:, None, None, :], background[:, None, None, :])
    images = images + rng.normal(0, _NOISE, size=images.shape)
    images = np.round(np.clip(images, 0, 1) * 255).astype(np.uint8)
    return images, labels.astype(np.int64)


def load_data(
    train_size: int = 6000,
    validation_size: int = 1000,
    *,
    classes: Sequence[str] = CLASS_NAMES,
    image_size: int = 32,
    seed: int = 0,
) -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray], tuple[str, ...]]:
    """The shapes data set as `((x_train, y_train), (x_val, y_val), class_names)`, arrays as `generate`'s.

    The splits are drawn from independent streams of `seed`: changing one's size leaves the other unchanged.

    Example:

    >>> (x_train, y_train), (x_val, y_val), names = load_data(100, 20)
    >>> x_train.shape, x_val.shape, names[0]
    ((100, 32, 32, 3), (20, 32, 32, 3), 'circle')
    """
    _check_int("train_size", train_size, 0)
    _check_int("validation_size", validation_size, 0)
    classes = _check_classes(classes)
    _check_int("seed", seed, 0)
    train_seed, validation_seed = np.random.SeedSequence(seed).spawn(2)
    options = dict(classes=classes, image_size=image_size)
    train = generate(train_size, seed=train_seed, **options)
    validation = generate(validation_size, seed=validation_seed, **options)
    return train, validation, classes


def save_folder(
    directory: str | os.PathLike,
    train_size: int = 6000,
    validation_size: int = 1000,
    *,
    classes: Sequence[str] = CLASS_NAMES,
    image_size: int = 32,
    seed: int = 0,
) -> str | os.PathLike:
    """Writes `load_data`'s images as PNG files `directory/{train,validation}/<class>/00000.png` and returns
    `directory`: the layout of `"folder:PATH"` data sets, to try a folder workflow without data.

    Example:

    >>> save_folder("/tmp/shapes", 50, 10)  # doctest: +SKIP
    '/tmp/shapes'
    """
    import tensorflow as tf

    train, validation, names = load_data(train_size, validation_size, classes=classes, image_size=image_size, seed=seed)
    for split, (images, labels) in (("train", train), ("validation", validation)):
        for name in names:
            os.makedirs(os.path.join(directory, split, name), exist_ok=True)
        for index, (image, label) in enumerate(zip(images, labels)):
            path = os.path.join(directory, split, names[label], f"{index:05d}.png")
            tf.io.write_file(path, tf.io.encode_png(image))
    return directory


def _check_classes(classes):
    classes = (classes,) if isinstance(classes, str) else tuple(classes)
    unknown = [name for name in classes if name not in _REGIONS]
    if len(classes) < 2 or unknown or len(set(classes)) != len(classes):
        raise ValueError(
            f"classes must be two or more distinct names of {', '.join(CLASS_NAMES)}; received {classes!r}"
        )
    return classes
