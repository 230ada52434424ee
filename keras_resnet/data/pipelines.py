"""The paper's tf.data pipelines (He et al. 2015, sections 4.2 and 3.4): a source to batches of `(float32 images,
int32 labels)` for `model.fit` on any backend; each epoch's order and augmentation depend on `(seed, epoch)` only.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypedDict

import numpy as np

from keras_resnet._validation import check_choice as _check_choice
from keras_resnet._validation import check_int as _check_int
from keras_resnet._validation import check_positive_int as _check_positive
from keras_resnet.data.epochs import check_epochs, epoch_images, epoch_numbers, epoch_seed, seed_or_random
from keras_resnet.data.sources import ImageSource
from keras_resnet.data.transforms import _lighting, center_crop, check_scales, resize_shorter_side
from keras_resnet.imagenet import CROP_SIZE, IMAGENET_MEAN, RESIZE_SIZE, SCALE_RANGE
from keras_resnet.normalization import CIFAR_NORMALIZATIONS, cifar_preprocessing, normalizer

if TYPE_CHECKING:
    from typing_extensions import Unpack


class PipelineOptions(TypedDict, total=False):
    """The order keywords every pipeline takes.

    Attributes:
        seed: the same batches on every run, new crops, flips and order in every epoch.
        shuffle_buffer: defaults to the source's.
        parallel: `False`: one thread, no prefetching.
        epochs: training only; `None`: each pass is a new epoch; `range(first, stop)`: those epochs in turn, as an
            uninterrupted run sees them (resume with `model.fit(dataset, epochs=stop, initial_epoch=first,
            steps_per_epoch=ceil(len(source) / batch_size))`).
    """

    seed: int | None
    shuffle_buffer: int | None
    parallel: bool
    epochs: range | None


def _pipeline(source, augment, normalize, *, training, batch_size, **options):
    """Shuffles (when training), decodes, augments, batches, normalises and prefetches a source.

    `augment(image, seed)` maps one uint8 image and its stateless seed `(2,)` to a float32 image.
    """
    import tensorflow as tf

    allowed = sorted(PipelineOptions.__annotations__)
    if set(options) - set(allowed):
        raise TypeError(f"unexpected keyword arguments {sorted(set(options) - set(allowed))}; allowed: {allowed}")
    seed, shuffle_buffer, epochs = options.get("seed"), options.get("shuffle_buffer"), options.get("epochs")
    parallel = options.get("parallel", True)
    _check_positive("batch_size", batch_size)
    check_epochs(epochs)
    if epochs is not None and not training:
        raise ValueError(f"epochs applies to training pipelines only; received epochs={epochs!r} with training=False")
    calls = tf.data.AUTOTUNE if parallel else None
    seed = seed_or_random(seed)

    def augment_example(element_seed, example):
        image, label = example
        return augment(image, element_seed), label

    def normalize_batch(images, labels):
        return normalize(images), labels

    def one_epoch(epoch):
        pass_seed = epoch_seed(seed, epoch)
        images = epoch_images(source, pass_seed if training else None, shuffle_buffer=shuffle_buffer, parallel=parallel)
        element_seeds = tf.data.Dataset.range(source.size).map(
            lambda index: tf.random.experimental.stateless_fold_in(pass_seed, index)
        )
        examples = tf.data.Dataset.zip(element_seeds, images).map(augment_example, num_parallel_calls=calls)
        return examples.batch(batch_size, num_parallel_calls=calls)

    if training:
        batches = math.ceil(source.size / batch_size) * (1 if epochs is None else len(epochs))
        dataset = epoch_numbers(seed, epochs).flat_map(one_epoch)
        dataset = dataset.apply(tf.data.experimental.assert_cardinality(batches))
    else:
        dataset = one_epoch(0)
    dataset = dataset.map(normalize_batch, num_parallel_calls=calls)
    options = tf.data.Options()
    if parallel:
        # AUTOTUNE starts from one call per core, not from 1, so short epochs (validation) run in parallel too.
        options.autotune.initial_parallelism = os.cpu_count()
        dataset = dataset.prefetch(tf.data.AUTOTUNE)
    else:
        options.autotune.enabled = False
        options.experimental_optimization.inject_prefetch = False
    return dataset.with_options(options)


def cifar_pipeline(
    source: ImageSource,
    *,
    training: bool,
    batch_size: int = 128,
    normalization: str | None = "pixel",
    statistics: dict | None = None,
    image_size: int = 32,
    padding: int = 4,
    normalize: bool = True,
    **options: Unpack[PipelineOptions],
) -> Any:
    """Builds the CIFAR training or evaluation pipeline of the paper (section 4.2).

    Training: shuffle, pad `padding` zero pixels on each side, take a random `image_size` crop, flip with
    probability 1/2. Evaluation: the image centre-cropped or padded to `image_size`. Both then normalise into a
    `tf.data.Dataset` of float32 images `(batch, image_size, image_size, 3)` and int32 labels `(batch,)`.

    Args:
        source, training: an `ImageSource`; whether to shuffle and augment it.
        batch_size, image_size, padding: the last batch may be smaller; see above.
        normalization: `"pixel"` (the training set's per-pixel mean subtracted, divided by 255: the paper),
            `"channel"` (per-channel mean and standard deviation) or `None` (divided by 255).
        statistics: the training set's `image_statistics`; required unless `normalization` is `None`.
        normalize: `False` leaves the images at 0-255 for a model that normalises them itself.
        **options: `PipelineOptions` (`seed`, `shuffle_buffer`, `parallel`, `epochs`).

    Example:

    ```python
    statistics = keras_resnet.data.image_statistics(train_source)
    train = keras_resnet.data.cifar_pipeline(train_source, training=True, statistics=statistics, seed=0)
    ```
    """
    import tensorflow as tf

    _check_choice("normalization", normalization, CIFAR_NORMALIZATIONS)
    _check_positive("image_size", image_size)
    _check_int("padding", padding, 0)
    if normalize and normalization is not None and statistics is None:
        raise ValueError(
            f"statistics must be given for normalization={normalization!r}; received None. "
            "Compute them on the training source: statistics=image_statistics(train_source)"
        )
    if normalize and normalization == "pixel" and np.shape(statistics["pixel_mean"]) != (image_size, image_size, 3):
        raise ValueError(
            f"statistics['pixel_mean'] must have shape ({image_size}, {image_size}, 3) for "
            f"image_size={image_size}; received shape {np.shape(statistics['pixel_mean'])}"
        )
    standardize = normalizer(**cifar_preprocessing(statistics, normalization)) if normalize else _unchanged

    def augment(image, seed):
        if training:
            crop_seed, flip_seed = tf.unstack(tf.random.experimental.stateless_split(seed, 2))
            image = tf.pad(image, [[padding, padding], [padding, padding], [0, 0]])
            image = tf.image.stateless_random_crop(image, [image_size, image_size, 3], crop_seed)
            image = tf.image.stateless_random_flip_left_right(image, flip_seed)
        else:
            image = tf.image.resize_with_crop_or_pad(image, image_size, image_size)
        return tf.cast(image, tf.float32)

    return _pipeline(source, augment, standardize, training=training, batch_size=batch_size, **options)


def _unchanged(images):
    return images


def imagenet_pipeline(
    source: ImageSource,
    *,
    training: bool,
    batch_size: int = 256,
    image_size: int = CROP_SIZE,
    scale_range: tuple[int, int] = SCALE_RANGE,
    resize_size: int = RESIZE_SIZE,
    mean: Any = IMAGENET_MEAN,
    std: Any = None,
    channel_order: str = "rgb",
    lighting_std: float = 0.0,
    normalize: bool = True,
    **options: Unpack[PipelineOptions],
) -> Any:
    """Builds the ImageNet training or evaluation pipeline of the paper (section 3.4).

    Training: shuffle, resize the shorter side to a random integer in `scale_range`, take a random
    `image_size` crop, flip with probability 1/2, optionally add AlexNet's PCA lighting noise. Evaluation:
    resize the shorter side to `resize_size` and take the centre crop. Both then subtract the mean colour
    (at 224x224 the paper's per-pixel ImageNet mean is nearly constant). Batches as `cifar_pipeline`'s.

    Args:
        source, training, batch_size, **options: as in `cifar_pipeline`; images of any size.
        image_size, scale_range: the crop side; `(min, max)` ints with `image_size <= min <= max`.
        resize_size: int >= `image_size`, the shorter side before the evaluation centre crop.
        mean, std: RGB mean subtracted and optional standard deviation divided by, 0-255 scale.
        channel_order: `"rgb"`, or `"bgr"` for Caffe-converted weights (keras.applications').
        lighting_std: standard deviation of the PCA lighting noise (AlexNet: 0.1); 0 turns it off.
        normalize: `False` leaves the images at 0-255 (`mean`, `std`, `channel_order` unused).

    Example:

    ```python
    source = keras_resnet.data.tfds_source("imagenette/320px", data_dir="/data/tfds", shuffle_files=True)
    train = keras_resnet.data.imagenet_pipeline(source, training=True, lighting_std=0.1, seed=0)
    ```
    """
    import tensorflow as tf

    check_scales("image_size", image_size, scale_range, resize_size)
    low, high = scale_range
    if lighting_std < 0:
        raise ValueError(f"lighting_std must be non-negative; received {lighting_std!r}")
    standardize = normalizer(mean, std, channel_order=channel_order) if normalize else _unchanged

    def augment(image, seed):
        if not training:
            return center_crop(resize_shorter_side(image, resize_size), image_size)
        scale_seed, crop_seed, flip_seed, lighting_seed = tf.unstack(tf.random.experimental.stateless_split(seed, 4))
        size = tf.random.stateless_uniform([], scale_seed, low, high + 1, dtype=tf.int32)
        image = tf.image.stateless_random_crop(resize_shorter_side(image, size), [image_size, image_size, 3], crop_seed)
        image = tf.image.stateless_random_flip_left_right(image, flip_seed)
        return _lighting(image, lighting_std, lighting_seed) if lighting_std else image

    return _pipeline(source, augment, standardize, training=training, batch_size=batch_size, **options)


PIPELINES: dict[str, Callable[..., Any]] = {"cifar": cifar_pipeline, "imagenet": imagenet_pipeline}
"""The pipeline of each augmentation; the on-device `augment.Augmentation` takes the same kinds."""

AUGMENTATIONS = tuple(PIPELINES)
