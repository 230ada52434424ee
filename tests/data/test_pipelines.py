"""keras_resnet.data.pipelines: the paper's CIFAR and ImageNet training and evaluation pipelines."""

import os

import keras
import numpy as np
import pytest
from data_helpers import (
    batches,
    random_images,
)

from keras_resnet import data


def coordinate_image(size=32, step=7):
    """An image that encodes its own coordinates: red = 7 * row, green = 7 * column, blue = 200."""
    rows, cols = np.meshgrid(np.arange(size), np.arange(size), indexing="ij")
    return np.stack([rows * step, cols * step, np.full_like(rows, 200)], axis=-1).astype(np.uint8)


def crop_offset_and_flip(crop, padding=4, step=7):
    """Recovers where a padded random crop of `coordinate_image` was taken and whether it was flipped."""
    crop = np.rint(crop * 255).astype(int)
    columns = np.flatnonzero((crop[..., 2] > 0).any(axis=0))
    row = np.flatnonzero((crop[..., 2] > 0).any(axis=1))[0]
    flipped = crop[row, columns[0], 1] > crop[row, columns[-1], 1]
    if flipped:
        crop, columns = crop[:, ::-1], crop.shape[1] - 1 - columns[::-1]
    top = crop[row, columns[0], 0] // step - row + padding
    left = crop[row, columns[0], 1] // step - columns[0] + padding
    return top, left, flipped


def test_cifar_training_batches_shapes_dtypes_and_ranges(cifar_like):
    images, _, source = cifar_like
    statistics = data.image_statistics(source)
    for normalization, low, high in (("pixel", -1.0, 1.0), (None, 0.0, 1.0)):
        dataset = data.cifar_pipeline(
            source, training=True, batch_size=16, normalization=normalization, statistics=statistics, seed=0
        )
        x, y = next(iter(dataset))
        assert x.shape == (16, 32, 32, 3) and x.dtype == "float32"
        assert y.shape == (16,) and y.dtype == "int32"
        assert low <= float(np.min(x)) and float(np.max(x)) <= high
    assert len(batches(dataset)) == 3


def test_cifar_evaluation_is_the_exact_normalised_image(cifar_like):
    images, labels, source = cifar_like
    statistics = data.image_statistics(source)
    expected = {
        "pixel": (images - statistics["pixel_mean"]) / 255.0,
        "channel": (images - statistics["channel_mean"]) / statistics["channel_std"],
        None: images / 255.0,
    }
    for normalization, wanted in expected.items():
        dataset = data.cifar_pipeline(
            source, training=False, batch_size=48, normalization=normalization, statistics=statistics
        )
        ((x, y),) = batches(dataset)
        np.testing.assert_allclose(x, wanted, atol=1e-5)
        np.testing.assert_array_equal(y, labels)


@pytest.mark.parametrize("pipeline", ["cifar", "imagenet"])
def test_seeded_pipelines_are_reproducible_and_vary_between_epochs_and_seeds(pipeline):
    source = data.array_source(random_images(48), np.arange(48))

    def two_epochs(seed):
        if pipeline == "cifar":
            dataset = data.cifar_pipeline(source, training=True, batch_size=16, normalization=None, seed=seed)
        else:
            dataset = data.imagenet_pipeline(
                source, training=True, batch_size=16, image_size=24, scale_range=(24, 40), lighting_std=0.1, seed=seed
            )
        epochs = []
        for _ in range(2):
            x, y = (np.concatenate(parts) for parts in zip(*batches(dataset)))
            assert not np.array_equal(y, np.arange(48))  # shuffled
            epochs.append(x[np.argsort(y)])  # in label order: row i is always image i
        return epochs

    first, again, other = two_epochs(3), two_epochs(3), two_epochs(4)
    for epoch, repeat in zip(first, again):
        np.testing.assert_array_equal(epoch, repeat)

    def share_changed(a, b):
        return np.mean([not np.array_equal(x, y) for x, y in zip(a, b)])

    assert share_changed(first[0], first[1]) > 0.8  # each image is augmented anew in every epoch
    assert share_changed(first[0], other[0]) > 0.8


def test_naive_variant_runs_the_same_ops_without_parallelism(cifar_like):
    _, _, source = cifar_like
    parallel, naive = (
        data.cifar_pipeline(source, training=True, normalization=None, seed=2, parallel=switch)
        for switch in (True, False)
    )
    for (x_parallel, y_parallel), (x_naive, y_naive) in zip(batches(parallel), batches(naive)):
        np.testing.assert_array_equal(x_parallel, x_naive)
        np.testing.assert_array_equal(y_parallel, y_naive)
    assert parallel.options().autotune.initial_parallelism == os.cpu_count()
    assert naive.options().autotune.enabled is False
    assert naive.options().experimental_optimization.inject_prefetch is False


def test_augmentation_changes_between_epochs_even_without_shuffling(cifar_like):
    _, _, source = cifar_like
    dataset = data.cifar_pipeline(source, training=True, batch_size=48, normalization=None, shuffle_buffer=1, seed=0)
    ((x1, y1),) = batches(dataset)
    ((x2, y2),) = batches(dataset)
    np.testing.assert_array_equal(y1, y2)
    assert np.mean([not np.array_equal(a, b) for a, b in zip(x1, x2)]) > 0.8


def test_crops_and_flips_follow_the_paper_statistics():
    count = 400
    source = data.array_source(np.repeat(coordinate_image()[None], count, axis=0), np.zeros(count))
    dataset = data.cifar_pipeline(source, training=True, batch_size=100, normalization=None, seed=0)
    offsets = np.array([crop_offset_and_flip(crop) for x, _ in batches(dataset) for crop in x])
    tops, lefts, flips = offsets.T
    assert tops.min() >= 0 and tops.max() <= 8 and lefts.min() >= 0 and lefts.max() <= 8
    assert set(tops) == set(range(9)) and set(lefts) == set(range(9))
    # Uniform offsets in 0..8: mean 4, standard error 2.58 / sqrt(400) = 0.13; allow about 4 standard errors.
    assert abs(tops.mean() - 4) < 0.6 and abs(lefts.mean() - 4) < 0.6
    assert len(set(zip(tops, lefts))) >= 60
    # Flips ~ Binomial(400, 1/2): mean 200, standard deviation 10; allow 4 standard deviations.
    assert 160 <= flips.sum() <= 240


def test_imagenet_scale_augmentation_samples_the_shorter_side_in_range():
    # Green grows by 10 per column of a 24x24 image; bilinear upsampling to s x s keeps it linear, slope 240 / s.
    count, size = 200, 24
    rows, cols = np.meshgrid(np.arange(size), np.arange(size), indexing="ij")
    image = np.stack([rows * 10, cols * 10, np.full_like(rows, 100)], axis=-1).astype(np.uint8)
    source = data.array_source(np.repeat(image[None], count, axis=0), np.zeros(count))
    dataset = data.imagenet_pipeline(
        source, training=True, batch_size=50, image_size=32, scale_range=(32, 56), mean=(0, 0, 0), seed=1
    )
    crops = np.concatenate([x for x, _ in batches(dataset)])
    sizes = 240 / np.abs(np.median(np.diff(crops[:, 16, :, 1], axis=1)[:, 2:-2], axis=1))
    np.testing.assert_allclose(sizes, np.rint(sizes), atol=1e-3)
    sizes = np.rint(sizes).astype(int)
    assert sizes.min() >= 32 and sizes.max() <= 56
    assert len(set(sizes)) >= 20
    assert abs(sizes.mean() - 44) < 2.1  # uniform on 32..56: mean 44, standard error 7.2 / sqrt(200) = 0.51


def test_imagenet_training_batches_lighting_and_channel_order():
    source = data.array_source(random_images(8, 40, 48), np.arange(8))
    options = dict(training=True, batch_size=8, image_size=32, scale_range=(36, 48), seed=5)
    ((plain, labels),) = batches(data.imagenet_pipeline(source, **options))
    ((lit, _),) = batches(data.imagenet_pipeline(source, lighting_std=0.1, **options))
    ((bgr, _),) = batches(data.imagenet_pipeline(source, channel_order="bgr", **options))
    assert plain.shape == (8, 32, 32, 3) and plain.dtype == np.float32 and labels.dtype == np.int32
    mean = np.array(data.IMAGENET_MEAN, np.float32)
    assert np.all(plain >= -mean - 1e-3) and np.all(plain <= 255 - mean + 1e-3)
    shift = lit - plain  # PCA lighting: one RGB shift per image, the same at every pixel
    np.testing.assert_allclose(shift, np.broadcast_to(shift[:, :1, :1], shift.shape), atol=1e-3)
    assert np.all(np.abs(shift[:, 0, 0]).max(axis=1) > 1e-3)
    np.testing.assert_array_equal(bgr, plain[..., ::-1])


def test_imagenet_evaluation_is_resize_and_centre_crop():
    images = random_images(4, 40, 48)
    source = data.array_source(images, np.arange(4))
    dataset = data.imagenet_pipeline(source, training=False, batch_size=4, image_size=32, resize_size=40)
    ((x, _),) = batches(dataset)
    expected = images[:, 4:36, 8:40] - np.array(data.IMAGENET_MEAN, np.float32)
    np.testing.assert_allclose(x, expected, atol=1e-4)


def test_pipeline_output_trains_a_model(cifar_like):
    _, _, source = cifar_like
    dataset = data.cifar_pipeline(source, training=True, batch_size=8, statistics=data.image_statistics(source), seed=0)
    model = keras.Sequential(
        [
            keras.Input((32, 32, 3)),
            keras.layers.Conv2D(4, 3),
            keras.layers.GlobalAveragePooling2D(),
            keras.layers.Dense(10, activation="softmax"),
        ]
    )
    model.compile("sgd", "sparse_categorical_crossentropy")
    history = model.fit(dataset.take(2), epochs=1, verbose=0)
    assert np.isfinite(history.history["loss"][0])


@pytest.mark.parametrize(
    "call, message",
    [
        (
            lambda source: data.cifar_pipeline(source, training=True, normalization="foo"),
            "normalization must be one of 'pixel', 'channel', None; received 'foo'",
        ),
        (
            lambda source: data.cifar_pipeline(source, training=True),
            "statistics must be given for normalization='pixel'; received None",
        ),
        (
            lambda source: data.cifar_pipeline(source, training=True, statistics={"pixel_mean": np.zeros((28, 28, 3))}),
            r"statistics\['pixel_mean'\] must have shape \(32, 32, 3\) for image_size=32; received shape \(28, 28, 3\)",
        ),
        (
            lambda source: data.cifar_pipeline(source, training=True, normalization=None, batch_size=0),
            "batch_size must be a positive integer; received 0",
        ),
        (
            lambda source: data.cifar_pipeline(source, training=True, normalization=None, padding=-1),
            "padding must be a non-negative integer; received -1",
        ),
        (
            lambda source: data.imagenet_pipeline(source, training=True, image_size=32, scale_range=(16, 48)),
            r"scale_range must be \(min, max\) integers with image_size \(32\) <= min <= max; received \(16, 48\)",
        ),
        (
            lambda source: data.imagenet_pipeline(source, training=False, image_size=32, resize_size=24),
            r"resize_size must be an integer of at least 32 \(image_size\); received 24",
        ),
        (
            lambda source: data.imagenet_pipeline(source, training=True, channel_order="grb"),
            "channel_order must be one of 'rgb', 'bgr'; received 'grb'",
        ),
        (lambda source: data.normalizer((1.0, 2.0)), r"mean must have shape \(3,\) or \(height, width, 3\)"),
        (lambda source: data.center_crop(np.zeros((8, 8, 3)), 2.5), r"size must be a positive integer; received 2\.5"),
        (lambda source: data.center_crop(np.zeros((8, 8, 3)), True), "size must be a positive integer; received True"),
        (lambda source: data.center_crop(np.zeros((8, 6, 3)), 7), r"size must be at most .* \(6\) .* received 7"),
        (
            lambda source: data.resize_shorter_side(np.zeros((8, 8, 3)), -3),
            "size must be a positive integer; received -3",
        ),
        (lambda source: data.folder_source(".", check="full"), "check must be one of True, False; received 'full'"),
        (lambda source: data.array_source(np.zeros((2, 4, 4, 3)), [0, 1]), "images must be a uint8 array"),
        (lambda source: data.array_source(random_images(2), [0]), "labels must hold one label per image"),
    ],
)
def test_bad_arguments_name_the_argument_the_value_and_what_is_allowed(cifar_like, call, message):
    with pytest.raises(ValueError, match=message):
        call(cifar_like[2])


@pytest.mark.parametrize("shuffle_buffer", [None, 16])  # a full permutation, and windows of 16 keys
def test_a_pipeline_started_at_a_later_epoch_serves_exactly_that_epochs_batches(cifar_like, shuffle_buffer):
    _, _, source = cifar_like
    options = dict(training=True, batch_size=20, normalization=None, seed=5, shuffle_buffer=shuffle_buffer)
    whole = batches(data.cifar_pipeline(source, epochs=range(0, 3), **options))
    resumed = batches(data.cifar_pipeline(source, epochs=range(1, 3), **options))
    assert len(whole) == 9 and len(resumed) == 6  # 3 batches (20, 20, 8) per epoch
    for (x_whole, y_whole), (x_resumed, y_resumed) in zip(whole[3:], resumed):
        np.testing.assert_array_equal(x_whole, x_resumed)
        np.testing.assert_array_equal(y_whole, y_resumed)
    # Each epoch is a new order and new crops of all 48 images.
    epoch_labels = [np.concatenate([y for _, y in whole[3 * e : 3 * e + 3]]) for e in range(3)]
    assert all(sorted(labels.tolist()) == sorted((np.arange(48) % 10).tolist()) for labels in epoch_labels)
    assert not np.array_equal(whole[0][0], whole[3][0])
    with pytest.raises(ValueError, match=r"epochs must be None or a range\(first, stop\) .* received range\(2, 2\)"):
        data.cifar_pipeline(source, epochs=range(2, 2), **options)
    with pytest.raises(ValueError, match="epochs applies to training pipelines only"):
        data.cifar_pipeline(source, training=False, normalization=None, epochs=range(0, 1))
