"""ImageNet constants of the paper and of keras.applications, shared by the models, data and export."""

from __future__ import annotations

from keras_resnet._validation import check_positive_int as _check_positive_int

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


def scaled_sizes(image_size: int) -> tuple[tuple[int, int], int]:
    """The paper's ImageNet `((min, max), resize_size)` for crops of side `image_size`: `SCALE_RANGE` and
    `RESIZE_SIZE` times `image_size / 224`.

    Example:

    >>> scaled_sizes(112)
    ((128, 240), 128)
    """
    _check_positive_int("image_size", image_size)
    scale = image_size / CROP_SIZE
    return tuple(round(side * scale) for side in SCALE_RANGE), round(RESIZE_SIZE * scale)
