"""ImageNet constants of the paper and of keras.applications, shared by the models, data and export."""

from __future__ import annotations

from keras_resnet._validation import check_positive_int as _check_positive_int

IMAGENET_MEAN = (123.68, 116.779, 103.939)
"""Mean RGB of the ImageNet training images, 0-255 (the original Caffe models')."""

BGR_MEAN = IMAGENET_MEAN[::-1]
"""`IMAGENET_MEAN` in BGR order, as keras.applications' "caffe" preprocessing subtracts it."""

CROP_SIZE = 224
"""Side of the paper's ImageNet training and test crops."""

SCALE_RANGE = (256, 480)
"""The paper's scale augmentation (section 3.4): shorter side sampled in this range for 224 crops."""

RESIZE_SIZE = 256
"""The shorter side an image is resized to before its 224 centre (or 10-crop) test crops."""

# AlexNet's PCA lighting noise (fb.resnet.torch): eigenvalues and eigenvectors (columns) of ImageNet's RGB
# covariance on the 0-1 scale.
LIGHTING_EIGENVALUES = (0.2175, 0.0188, 0.0045)
LIGHTING_EIGENVECTORS = (
    (-0.5675, 0.7192, 0.4009),
    (-0.5808, -0.0045, -0.8140),
    (-0.5836, -0.6948, 0.4203),
)


def scaled_sizes(image_size: int) -> tuple[tuple[int, int], int]:
    """`(SCALE_RANGE, RESIZE_SIZE)` scaled to crops of side `image_size` instead of 224.

    Example:

    >>> scaled_sizes(112)
    ((128, 240), 128)
    """
    _check_positive_int("image_size", image_size)
    scale = image_size / CROP_SIZE
    return tuple(round(side * scale) for side in SCALE_RANGE), round(RESIZE_SIZE * scale)
