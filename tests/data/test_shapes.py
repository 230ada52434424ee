import numpy as np
import pytest

from keras_resnet.data import shapes


def test_the_same_seed_draws_the_same_images_and_another_seed_others():
    first, second, other = (shapes.generate(50, seed=s) for s in (3, 3, 4))
    np.testing.assert_array_equal(first[0], second[0])
    np.testing.assert_array_equal(first[1], second[1])
    assert (first[0] != other[0]).mean() > 0.5


def test_load_data_splits_are_independent_streams_of_the_seed():
    (x_train, y_train), (x_val, _), _ = shapes.load_data(40, 10, seed=7)
    (x_train_again, y_train_again), _, _ = shapes.load_data(40, 30, seed=7)
    _, (x_val_again, _), _ = shapes.load_data(25, 10, seed=7)
    np.testing.assert_array_equal(x_train, x_train_again)
    np.testing.assert_array_equal(y_train, y_train_again)
    np.testing.assert_array_equal(x_val, x_val_again)
    # No validation image is a training image.
    assert not any((x_train == image).all(axis=(1, 2, 3)).any() for image in x_val)


@pytest.mark.parametrize("count", [50, 53])
def test_classes_are_balanced(count):
    _, labels = shapes.generate(count, seed=0)
    per_class = np.bincount(labels, minlength=len(shapes.CLASS_NAMES))
    assert per_class.max() - per_class.min() <= 1
    assert per_class.sum() == count
    # Shuffled, not in blocks of one class.
    assert (np.diff(labels) != 0).mean() > 0.5


def test_shapes_dtypes_and_ranges():
    (x_train, y_train), (x_val, y_val), names = shapes.load_data(
        30, 12, classes=("ring", "cross", "circle"), image_size=24
    )
    assert names == ("ring", "cross", "circle")
    assert x_train.shape == (30, 24, 24, 3) and x_val.shape == (12, 24, 24, 3)
    assert x_train.dtype == np.uint8 and y_train.dtype == np.int64
    assert set(y_train.tolist()) == set(y_val.tolist()) == {0, 1, 2}
    # Noisy backgrounds use the whole range; no image is flat.
    assert x_train.min() == 0 and x_train.max() == 255
    assert x_train.reshape(30, -1).std(axis=1).min() > 10


def _radial_profile(images):
    """A hand-made, rotation- and scale-free descriptor of the drawn shape.

    Denoise with a 3x3 box filter, take as the shape the pixels far from the
    border's median colour, and measure how full each ring around the
    shape's centroid is, at radii relative to the shape's extent.
    """
    x = images.astype(float)
    side = x.shape[1]
    padded = np.pad(x, ((0, 0), (1, 1), (1, 1), (0, 0)), mode="edge")
    x = sum(padded[:, i : i + side, j : j + side] for i in range(3) for j in range(3)) / 9
    border = np.concatenate([x[:, 0], x[:, -1], x[:, :, 0], x[:, :, -1]], axis=1)
    mask = np.abs(x - np.median(border, axis=1)[:, None, None]).sum(-1) > 110
    rows, cols = np.indices((side, side))
    area = mask.sum((1, 2))
    centre_row = (mask * rows).sum((1, 2)) / area
    centre_col = (mask * cols).sum((1, 2)) / area
    distance = np.hypot(rows - centre_row[:, None, None], cols - centre_col[:, None, None])
    extent = np.array([np.percentile(d[m], 98) for d, m in zip(distance, mask)])
    distance = distance / extent[:, None, None]
    edges = np.linspace(0, 1.3, 11)
    rings = [(distance >= low) & (distance < high) for low, high in zip(edges[:-1], edges[1:])]
    return np.stack([(ring & mask).sum((1, 2)) / ring.sum((1, 2)).clip(1) for ring in rings], axis=1)


def test_classes_are_distinguishable_without_a_network():
    (x_train, y_train), (x_val, y_val), names = shapes.load_data(1000, 500)
    train_features, val_features = _radial_profile(x_train), _radial_profile(x_val)
    centroids = np.stack([train_features[y_train == c].mean(axis=0) for c in range(len(names))])
    predicted = np.argmin(((val_features[:, None] - centroids[None]) ** 2).sum(-1), axis=1)
    recall = [(predicted[y_val == c] == c).mean() for c in range(len(names))]
    assert (predicted == y_val).mean() > 0.85, recall
    assert min(recall) > 0.7, dict(zip(names, recall))


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda: shapes.generate(-1), "count must be a non-negative integer; received -1"),
        (lambda: shapes.generate(4, classes=("circle", "hexagon")), "received ('circle', 'hexagon')"),
        (lambda: shapes.generate(4, classes=("circle",)), "two or more distinct names"),
        (lambda: shapes.generate(4, image_size=8), "image_size must be an integer of at least 16; received 8"),
        (lambda: shapes.load_data(10, 2.5), "validation_size must be a non-negative integer; received 2.5"),
        (lambda: shapes.load_data(seed=-3), "seed must be a non-negative integer; received -3"),
    ],
)
def test_bad_arguments_name_the_argument_and_the_value(call, message):
    with pytest.raises(ValueError) as error:
        call()
    assert message in str(error.value)


def test_save_folder_writes_the_images_of_load_data_in_class_folders(tmp_path):
    from PIL import Image

    (x_train, y_train), (x_val, y_val), names = shapes.load_data(12, 6, seed=2)
    assert shapes.save_folder(str(tmp_path), 12, 6, seed=2) == str(tmp_path)
    for split, images, labels in (("train", x_train, y_train), ("validation", x_val, y_val)):
        assert sorted(p.name for p in (tmp_path / split).iterdir()) == sorted(names)
        for index, (image, label) in enumerate(zip(images, labels)):
            png = tmp_path / split / names[label] / f"{index:05d}.png"
            np.testing.assert_array_equal(np.asarray(Image.open(png).convert("RGB")), image)
    assert len(list(tmp_path.rglob("*.png"))) == 18
