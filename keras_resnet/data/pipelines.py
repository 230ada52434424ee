"""The paper's tf.data training and evaluation pipelines, from a source to batches for `model.fit`.

- `cifar_pipeline`: 4-pixel zero padding, random 32x32 crop and horizontal flip for training (He et al. 2015,
  section 4.2), then per-pixel mean subtraction (the paper) or per-channel standardisation.
- `imagenet_pipeline`: scale augmentation (shorter side sampled in [256, 480]), random 224x224 crop, flip and
  optional AlexNet PCA lighting noise for training (section 3.4); resize-256 centre crop for evaluation.

TensorFlow is imported inside the functions.
"""

import math
import os

import numpy as np

from keras_resnet._validation import check_choice as _check_choice
from keras_resnet._validation import check_int as _check_int
from keras_resnet._validation import check_positive_int as _check_positive
from keras_resnet.data.sources import _check_epochs, _epoch_images, _epoch_keys, _epoch_seed, _seed_or_random
from keras_resnet.data.transforms import _lighting, center_crop, resize_shorter_side
from keras_resnet.imagenet import CROP_SIZE, IMAGENET_MEAN, RESIZE_SIZE, SCALE_RANGE
from keras_resnet.normalization import CIFAR_NORMALIZATIONS, cifar_preprocessing, normalizer


def _pipeline(source, augment, normalize, *, training, batch_size, seed, shuffle_buffer, parallel, epochs=None):
    """Shuffles (when training), decodes, augments, batches, normalises and prefetches a source.

    `augment(image, seed)` maps one uint8 image and its stateless seed (shape `(2,)`) to a float32 image.
    Training epochs are built one by one from `(seed, epoch)`: the epochs of `epochs` in turn, or, with
    `epochs=None`, one epoch of a new random number on every pass over the dataset.
    With `parallel=False` every step runs on one thread without prefetching: the naive baseline.
    """
    import tensorflow as tf

    _check_positive("batch_size", batch_size)
    _check_epochs(epochs)
    if epochs is not None and not training:
        raise ValueError(f"epochs applies to training pipelines only; received epochs={epochs!r} with training=False")
    calls = tf.data.AUTOTUNE if parallel else None
    seed = _seed_or_random(seed)

    def augment_example(element_seed, example):
        image, label = example
        return augment(image, element_seed), label

    def normalize_batch(images, labels):
        return normalize(images), labels

    def one_epoch(epoch):
        epoch_seed = _epoch_seed(seed, epoch)
        images = _epoch_images(
            source, epoch_seed if training else None, shuffle_buffer=shuffle_buffer, parallel=parallel
        )
        element_seeds = tf.data.Dataset.range(source.size).map(
            lambda index: tf.random.experimental.stateless_fold_in(epoch_seed, index)
        )
        examples = tf.data.Dataset.zip(element_seeds, images).map(augment_example, num_parallel_calls=calls)
        return examples.batch(batch_size, num_parallel_calls=calls)

    if training:
        batches = math.ceil(source.size / batch_size) * (1 if epochs is None else len(epochs))
        dataset = _epoch_keys(seed, epochs).flat_map(one_epoch)
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
    source,
    *,
    training,
    batch_size=128,
    normalization="pixel",
    statistics=None,
    image_size=32,
    padding=4,
    seed=None,
    shuffle_buffer=None,
    parallel=True,
    epochs=None,
    normalize=True,
):
    """Builds the CIFAR training or evaluation pipeline of the paper (section 4.2).

    Training: shuffle, pad `padding` zero (black) pixels on each side, take a random `image_size` square crop,
    flip horizontally with probability 1/2. Evaluation: the image as it is (centre-cropped or padded to
    `image_size` if it has another size). Both then scale to [0, 1] and normalise.

    Args:
        source: an `ImageSource` (e.g. `cifar_source`, `folder_source` or `tfds_source("cifar10")`).
        training: bool, whether to shuffle and augment.
        batch_size: int, images per batch (the last batch may be smaller).
        normalization: `"pixel"`: subtract the per-pixel mean of the training set (the paper), then divide by
            255; `"channel"`: subtract the per-channel mean and divide by the per-channel standard deviation;
            `None`: divide by 255 only.
        statistics: the training set's `image_statistics(...)`; required unless `normalization` is `None`.
        image_size: int, side of the output images.
        padding: int, zero pixels added on each side before the random crop.
        seed: optional int; a seeded pipeline gives the same batches on every run (and different crops, flips
            and order in each epoch). `None` draws fresh randomness.
        shuffle_buffer: optional int; defaults to the source's `shuffle_buffer` (all of it for paths and arrays).
        parallel: bool; `False` runs on one thread without prefetching (for debugging and benchmarks).
        epochs: training only: `None` (each pass over the dataset is a new epoch), or a `range(first, stop)`:
            the dataset then holds epochs `first` to `stop - 1` one after another, each exactly as an
            uninterrupted run sees it. Resume a run at epoch `first` with it: `model.fit(dataset,
            epochs=stop, initial_epoch=first, steps_per_epoch=ceil(len(source) / batch_size))`.
        normalize: bool; `False` leaves the augmented images at 0-255, for a model that normalises them
            itself (built with `include_preprocessing=True` and `preprocessing=cifar_preprocessing(...)`).

    Returns:
        A `tf.data.Dataset` of `(images, labels)`: float32 `(batch, image_size, image_size, 3)` and int32
        `(batch,)`; the class names are the source's `class_names`.

    Example:

    ```python
    train_source = keras_resnet.data.cifar_source("cifar-10-batches-py")
    statistics = keras_resnet.data.image_statistics(train_source)
    train = keras_resnet.data.cifar_pipeline(train_source, training=True, statistics=statistics, seed=0)
    model.fit(train, epochs=2)
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

    return _pipeline(
        source,
        augment,
        standardize,
        training=training,
        batch_size=batch_size,
        seed=seed,
        shuffle_buffer=shuffle_buffer,
        parallel=parallel,
        epochs=epochs,
    )


def _unchanged(images):
    return images


def imagenet_pipeline(
    source,
    *,
    training,
    batch_size=256,
    image_size=CROP_SIZE,
    scale_range=SCALE_RANGE,
    resize_size=RESIZE_SIZE,
    mean=IMAGENET_MEAN,
    std=None,
    channel_order="rgb",
    lighting_std=0.0,
    seed=None,
    shuffle_buffer=None,
    parallel=True,
    epochs=None,
    normalize=True,
):
    """Builds the ImageNet training or evaluation pipeline of the paper (section 3.4).

    Training: shuffle, resize so the shorter side is a random integer in `scale_range` (scale augmentation),
    take a random `image_size` square crop, flip horizontally with probability 1/2, optionally add AlexNet's
    PCA lighting noise. Evaluation: resize the shorter side to `resize_size` and take the centre
    `image_size` crop (see `keras_resnet.training.evaluation` for 10-crop and multi-scale testing). Both then subtract
    the mean colour on the 0-255 scale (the paper subtracts the mean; at 224x224 the per-pixel ImageNet mean is
    nearly constant, so the per-channel mean stands for it).

    Args:
        source: an `ImageSource` of images of any size (e.g. `tfds_source("imagenet2012")`, `folder_source`).
        training: bool, whether to shuffle and augment.
        batch_size: int, images per batch (the last batch may be smaller).
        image_size: int, side of the output crops.
        scale_range: `(min, max)` ints, the range of the sampled shorter side; `image_size <= min <= max`.
        resize_size: int, the shorter side before the evaluation centre crop; at least `image_size`.
        mean: RGB mean subtracted, 0-255 scale (see `normalizer` for the presets of pretrained weights).
        std: optional RGB standard deviation divided by; `None` divides by 1.
        channel_order: `"rgb"` or `"bgr"` (for Caffe-converted weights such as keras.applications').
        lighting_std: float, standard deviation of the PCA lighting noise (AlexNet uses 0.1); 0 turns it off.
        seed: optional int, as in `cifar_pipeline`.
        shuffle_buffer: optional int; defaults to the source's `shuffle_buffer`.
        parallel: bool, as in `cifar_pipeline`.
        epochs: as in `cifar_pipeline`.
        normalize: bool; `False` leaves the images at 0-255 (`mean`, `std` and `channel_order` unused), for a
            model that normalises them itself (`include_preprocessing=True`).

    Returns:
        A `tf.data.Dataset` of `(images, labels)` as `cifar_pipeline` returns them.

    Example:

    ```python
    source = keras_resnet.data.tfds_source("imagenette/320px", data_dir="/data/tfds", shuffle_files=True)
    train = keras_resnet.data.imagenet_pipeline(source, training=True, lighting_std=0.1, seed=0)
    ```
    """
    import tensorflow as tf

    _check_positive("image_size", image_size)
    _check_positive("resize_size", resize_size)
    low, high = scale_range
    if not image_size <= low <= high:
        raise ValueError(
            f"scale_range must be (min, max) with image_size ({image_size}) <= min <= max; received {scale_range!r}"
        )
    if resize_size < image_size:
        raise ValueError(f"resize_size must be at least image_size ({image_size}); received {resize_size!r}")
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

    return _pipeline(
        source,
        augment,
        standardize,
        training=training,
        batch_size=batch_size,
        seed=seed,
        shuffle_buffer=shuffle_buffer,
        parallel=parallel,
        epochs=epochs,
    )
