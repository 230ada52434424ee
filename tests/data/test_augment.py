"""keras_resnet.data.augment: on-device crops and flips with the semantics of the tf.data pipelines."""

import keras
import numpy as np
import pytest
from scipy import stats

from keras_resnet import data
from keras_resnet.data import augment

SAMPLES = 3000


def _numpy(x):
    return keras.ops.convert_to_numpy(x)


def _coordinates(height, width, row_step=1, column_step=1, offset=1):
    """An image whose pixels name their own position: channel 0 the row, channel 1 the column."""
    image = np.zeros((height, width, 3), np.uint8)
    image[..., 0] = np.arange(height)[:, None] * row_step + offset
    image[..., 1] = np.arange(width)[None, :] * column_step + offset
    return image


def _tf_pipeline_outputs(build, image, **options):
    source = data.array_source(np.repeat(image[None], SAMPLES, 0), np.zeros(SAMPLES, np.int32))
    images, _ = next(iter(build(source, training=True, batch_size=SAMPLES, seed=0, **options)))
    return images.numpy()


def _cifar_views(images):
    """(top, left, flip) of 32x32 crops of a 4-pixel-padded `_coordinates` image, from two central pixels."""
    rows, columns = images[:, 16, 16, 0], images[:, 16, 16:18, 1]
    flips = columns[:, 1] < columns[:, 0]
    # Output pixel (16, 16) reads padded position (top + 16, left + 16), or (left + 15) when flipped.
    top = rows - 1 + 4 - 16
    left = columns[:, 0] - 1 + 4 - np.where(flips, 15, 16)
    return np.round(top).astype(int), np.round(left).astype(int), flips


def test_cifar_crop_and_flip_follow_the_same_distribution_as_the_tf_data_pipeline():
    image = _coordinates(32, 32)
    mine = _numpy(augment.random_crop_flip(np.repeat(image[None], SAMPLES, 0), keras.random.SeedGenerator(0)))
    theirs = np.round(_tf_pipeline_outputs(data.cifar_pipeline, image, normalization=None) * 255)
    cells = []
    for views in (_cifar_views(mine), _cifar_views(theirs)):
        top, left, flips = views
        assert top.min() == left.min() == 0 and top.max() == left.max() == 8
        cells.append(np.bincount((top * 9 + left) * 2 + flips, minlength=162))
    # Each of the 9 x 9 offsets x 2 flips is equally likely, for both...
    for counts in cells:
        assert stats.chisquare(counts).pvalue > 1e-3
    # ...and the two samplers do not differ.
    assert stats.chi2_contingency(np.stack(cells)).pvalue > 1e-3


def test_cifar_crop_is_the_exact_window_of_the_zero_padded_image():
    image = _coordinates(32, 32)
    batch = np.repeat(image[None], 64, 0)
    out = _numpy(augment.random_crop_flip(batch, seed=3))
    padded = np.pad(image, ((4, 4), (4, 4), (0, 0))).astype(np.float32)
    for crop, top, left, flip in zip(out, *_cifar_views(out)):
        window = padded[top : top + 32, left : left + 32]
        np.testing.assert_array_equal(crop, window[:, ::-1] if flip else window)


def _scale_views(images, height, width):
    """(shorter side, top, left, flip) of crops of a resized `_coordinates(height, width, 4, 3, 0)` image."""
    y = images[:, 8:25, 16, 0] / 4
    x = images[:, 16, 8:25, 1] / 3
    row_slope = (y[:, -1] - y[:, 0]) / 16
    column_slope = (x[:, -1] - x[:, 0]) / 16
    flips = column_slope < 0
    new_height, new_width = height / row_slope, width / np.abs(column_slope)
    top = (y[:, 0] + 0.5) * new_height / height - 0.5 - 8
    left = (x[:, 0] + 0.5) * new_width / width - 0.5 - np.where(flips, 23, 8)
    views = np.stack([new_height, top, left])
    # Bilinear resampling of a linear ramp is exact: every view is a whole-pixel crop of a whole-pixel size.
    assert np.abs(views - np.round(views)).max() < 0.05
    return (*np.round(views).astype(int), flips)


def test_scale_crop_flip_follows_the_same_distribution_as_the_tf_data_pipeline():
    height, width, scales = 40, 48, (40, 56)
    image = _coordinates(height, width, 4, 3, 0)
    mine = _numpy(
        augment.random_scale_crop_flip(
            np.repeat(image[None], SAMPLES, 0), keras.random.SeedGenerator(0), size=32, scale_range=scales
        )
    )
    theirs = _tf_pipeline_outputs(
        data.imagenet_pipeline, image, image_size=32, scale_range=scales, resize_size=40, mean=(0, 0, 0)
    )
    mine, theirs = _scale_views(mine, height, width), _scale_views(theirs, height, width)
    for shorter, top, left, flips in (mine, theirs):
        assert shorter.min() == 40 and shorter.max() == 56
        assert np.all(top >= 0) and np.all(top <= shorter - 32)
        assert np.all(left >= 0) and np.all(left <= np.round(shorter * width / height) - 32)
        assert stats.chisquare(np.bincount(shorter - 40)).pvalue > 1e-3
        assert stats.binomtest(int(flips.sum()), len(flips)).pvalue > 1e-3
    assert stats.chi2_contingency([np.bincount(v[0] - 40, minlength=17) for v in (mine, theirs)]).pvalue > 1e-3
    # Offsets, as a fraction of the room each scale leaves, are spread alike.
    for index in (1, 2):
        room = [np.maximum(v[index].max(), 1) for v in (mine, theirs)]
        assert stats.ks_2samp(mine[index] / room[0], theirs[index] / room[1]).pvalue > 1e-3


def test_the_same_seed_gives_the_same_views_and_a_seed_generator_moves_on():
    batch = np.repeat(_coordinates(32, 32)[None], 16, 0)
    first, again = (_numpy(augment.random_crop_flip(batch, seed=7)) for _ in range(2))
    np.testing.assert_array_equal(first, again)
    generator = keras.random.SeedGenerator(7)
    one, two = (_numpy(augment.random_crop_flip(batch, generator)) for _ in range(2))
    assert not np.array_equal(one, two)


def test_center_crop_matches_the_evaluation_pipelines():
    import tensorflow as tf

    image = _coordinates(40, 48, 4, 3, 0)
    mine = _numpy(augment.center_crop(image[None], size=32, resize_size=44))[0]
    theirs = data.center_crop(data.resize_shorter_side(tf.constant(image), 44), 32).numpy()
    np.testing.assert_allclose(mine, theirs, atol=1e-3)
    small = _coordinates(28, 28)
    np.testing.assert_array_equal(
        _numpy(augment.center_crop(small[None], size=32))[0],
        tf.image.resize_with_crop_or_pad(small, 32, 32).numpy().astype(np.float32),
    )


def test_layer_augments_only_in_training_normalises_and_round_trips_its_config():
    layer = augment.Augmentation("cifar", image_size=32, mean=(10.0, 20.0, 30.0), std=2.0, seed=1)
    batch = np.repeat(_coordinates(32, 32)[None], 8, 0)
    expected = (batch.astype(np.float32) - np.array([10.0, 20.0, 30.0])) / 2
    np.testing.assert_allclose(_numpy(layer(batch)), expected)
    trained = _numpy(layer(batch, training=True))
    assert trained.shape == (8, 32, 32, 3) and not np.allclose(trained, expected)
    clone = augment.Augmentation.from_config(layer.get_config())
    np.testing.assert_allclose(_numpy(clone(batch)), expected)
    inputs = keras.Input((32, 32, 3), dtype="uint8")
    model = keras.Model(inputs, keras.layers.Flatten()(layer(inputs)))
    assert model.predict(batch, verbose=0).shape == (8, 32 * 32 * 3)


def test_bad_arguments_name_the_argument_and_the_value():
    with pytest.raises(ValueError, match="kind must be one of 'cifar', 'imagenet'; received 'mnist'"):
        augment.Augmentation("mnist")
    with pytest.raises(ValueError, match=r"scale_range must be \(min, max\) integers with size \(224\)"):
        augment.random_scale_crop_flip(np.zeros((1, 256, 256, 3)), size=224, scale_range=(200, 300))
    with pytest.raises(ValueError, match="padding must be a non-negative integer; received -1"):
        augment.random_crop_flip(np.zeros((1, 32, 32, 3)), padding=-1)
    with pytest.raises(ValueError, match="images must be a batch of shape"):
        augment.random_crop_flip(np.zeros((32, 32, 3)))


@pytest.mark.parametrize("kind", data.AUGMENTATIONS)
def test_layer_trains_inside_a_compiled_fit(kind):
    options = {"scale_range": (40, 48), "resize_size": 40} if kind == "imagenet" else {}
    inputs = keras.Input((40, 40, 3), dtype="uint8")
    x = augment.Augmentation(kind, image_size=32, mean=127.5, std=64.0, seed=0, **options)(inputs)
    model = keras.Model(inputs, keras.layers.Dense(10)(keras.layers.GlobalAveragePooling2D()(x)))
    model.compile("sgd", keras.losses.SparseCategoricalCrossentropy(from_logits=True), jit_compile=True)
    images = np.random.default_rng(0).integers(0, 256, (16, 40, 40, 3), dtype=np.uint8)
    history = model.fit(images, np.arange(16) % 10, batch_size=8, epochs=1, verbose=0).history
    assert np.isfinite(history["loss"][0])
    assert model.predict(images[:2], verbose=0).shape == (2, 10)
