"""An embedded image data set: coloured geometric shapes on noisy backgrounds.

Nothing to download: the images are drawn in numpy from a seed, so the same
seed gives the same pixels on every machine. Each image shows one shape
(its class) with a random colour, size, position and rotation on a random
background colour with Gaussian noise. A small ResNet learns it in a couple
of minutes on a laptop CPU, which makes it the default data set of
`keras-resnet train` and of the tests.
"""

import os

import numpy as np

from keras_resnet._validation import check_int as _check_int

CLASS_NAMES = ("circle", "square", "triangle", "cross", "ring")

# Shape radius and noise, relative to the image side and to the 0-1 range.
_RADIUS = (0.2, 0.4)
_NOISE = 0.12

# Each shape is a region of the plane in coordinates scaled so that the
# shape's circumscribed circle is the unit circle (u to the right, v up).
_REGIONS = {
    "circle": lambda u, v: u * u + v * v <= 0.85,
    "square": lambda u, v: np.maximum(np.abs(u), np.abs(v)) <= 0.7,
    "triangle": lambda u, v: (v >= -0.5) & (v <= 1 - np.sqrt(3) * np.abs(u)),
    "cross": lambda u, v: ((np.abs(u) <= 0.3) & (np.abs(v) <= 1)) | ((np.abs(v) <= 0.3) & (np.abs(u) <= 1)),
    "ring": lambda u, v: (u * u + v * v <= 1) & (u * u + v * v >= 0.36),
}


def generate(count, *, classes=CLASS_NAMES, image_size=32, seed=0):
    """Draws `count` labelled shape images.

    Labels are balanced: every class gets `count // len(classes)` images,
    plus one for the first `count % len(classes)` classes, in shuffled order.

    Args:
        count: number of images, a non-negative integer.
        classes: the shapes to draw, a sequence of names of `CLASS_NAMES`;
            label `i` is `classes[i]`.
        image_size: side of the square images in pixels (at least 16).
        seed: integer seed; the same seed gives the same images.

    Returns:
        A tuple `(images, labels)`: `uint8` array of shape
        `(count, image_size, image_size, 3)` and `int64` array of shape
        `(count,)` with values in `[0, len(classes))`.

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

    # Per-image geometry, in pixels: radius, centre (kept inside), rotation.
    radius = rng.uniform(*_RADIUS, size=count) * image_size
    centre = rng.uniform(radius[:, None], image_size - radius[:, None], size=(count, 2))
    angle = rng.uniform(0, 2 * np.pi, size=count)
    # Background colour, and a shape colour that differs from it by at
    # least 0.3 in every channel.
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


def load_data(train_size=6000, validation_size=1000, *, classes=CLASS_NAMES, image_size=32, seed=0):
    """The shapes data set, split into training and validation images.

    The two splits are drawn from independent streams of `seed`, so changing
    the size of one leaves the other's images unchanged.

    Args:
        train_size: number of training images.
        validation_size: number of validation images.
        classes: the shapes to draw, names of `CLASS_NAMES`.
        image_size: side of the square images in pixels.
        seed: integer seed.

    Returns:
        A tuple `((x_train, y_train), (x_val, y_val), class_names)`, with
        `uint8` images of shape `(n, image_size, image_size, 3)`, `int64`
        labels and the tuple of class names (label `i` is `class_names[i]`).

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


def save_folder(directory, train_size=6000, validation_size=1000, *, classes=CLASS_NAMES, image_size=32, seed=0):
    """Writes the shapes data set as PNG files in class sub-folders.

    The layout is the one `keras_resnet.data.folder_source` and the
    `"folder:PATH"` data sets read: `directory/train/<class>/00000.png` and
    `directory/validation/<class>/00000.png`, numbered within each split.
    Useful to try a folder-of-images workflow (ImageNet style) without data.
    Encoding the files needs TensorFlow.

    Args:
        directory: the folder to write into (created if needed).
        train_size: number of training images.
        validation_size: number of validation images.
        classes: the shapes to draw, names of `CLASS_NAMES`.
        image_size: side of the square images in pixels.
        seed: integer seed; the images are those of `load_data`.

    Returns:
        `directory`.

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
