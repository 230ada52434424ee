"""keras_resnet.data.named: named data sets, their sources and pipelines as one `Splits`."""

import numpy as np
import pytest
from data_helpers import (
    CIFAR10_CLASSES,
    batches,
    write_pickle,
)

from keras_resnet import data


def test_cifar100_layout_label_modes_and_convenience(tmp_path):
    rng = np.random.default_rng(1)
    fine_names = [f"fine{i}".encode() for i in range(100)]
    coarse_names = [f"coarse{i}".encode() for i in range(20)]
    write_pickle(tmp_path / "meta", {b"fine_label_names": fine_names, b"coarse_label_names": coarse_names}, 2)
    for name, count in (("train", 6), ("test", 2)):
        content = {
            b"data": rng.integers(0, 256, (count, 3072), dtype=np.uint8),
            b"fine_labels": list(range(90, 90 + count)),
            b"coarse_labels": list(range(count)),
        }
        write_pickle(tmp_path / name, content, 4)
    coarse = data.cifar_source(tmp_path, label_mode="coarse")
    assert len(coarse.class_names) == 20 and [int(y) for _, y in coarse.images()] == list(range(6))
    with pytest.raises(ValueError, match="label_mode must be one of 'fine', 'coarse'; received 'medium'"):
        data.cifar_source(tmp_path, label_mode="medium")
    splits = data.cifar100(batch_size=4, data_dir=tmp_path, seed=0)
    assert len(splits.class_names) == 100 and splits.validation is None
    assert [list(y) for _, y in batches(splits.test)] == [[90, 91]]
    assert sum(len(y) for _, y in batches(splits.train)) == 6


def test_cifar10_convenience_reads_python_batches(cifar10_files):
    root, _ = cifar10_files
    splits = data.cifar10(batch_size=8, data_dir=root, seed=0)
    x, y = next(iter(splits.train))
    assert x.shape == (8, 32, 32, 3) and x.dtype == "float32" and y.dtype == "int32"
    assert sum(len(y) for _, y in batches(splits.test)) == 4 and splits.class_names == CIFAR10_CLASSES


def test_folder_convenience_rejects_an_unknown_augmentation(messy_folder):
    root, _ = messy_folder
    message = "augmentation must be one of 'cifar', 'imagenet'; received 'vgg'"
    with pytest.warns(UserWarning), pytest.raises(ValueError, match=message):
        data.folder(root, train_indices=range(2), validation_indices=range(2, 3), augmentation="vgg")


def test_datasets_return_frozen_splits_whose_class_names_survive_a_users_map():
    from keras_resnet.data import shapes

    splits = data.datasets("shapes", batch_size=8, train_size=20, validation_size=10)
    assert isinstance(splits, data.Splits) and splits.test is None
    assert splits.class_names == splits.sources.class_names == shapes.CLASS_NAMES
    assert splits.statistics["pixel_mean"].shape == (32, 32, 3)
    # The class names live on the result, not on the pipelines: a user's .map() cannot lose them.
    assert not hasattr(splits.train, "class_names")
    mapped = splits.train.map(lambda x, y: (x * 2, y))
    assert int(mapped.cardinality()) == 3 and len(splits.class_names) == 5
    with pytest.raises(AttributeError):
        splits.class_names = ("a",)
    assert [len(y) for _, y in batches(splits.validation)] == [8, 2]


@pytest.fixture
def cifar10_holdout_files(tmp_path):
    """A CIFAR-10 python layout of 20 training images per class (4 per batch file) and 3 test images per class."""
    write_pickle(tmp_path / "batches.meta", {b"label_names": [name.encode() for name in CIFAR10_CLASSES]}, 2)
    rng = np.random.default_rng(0)
    for name, per_class in [(f"data_batch_{i}", 4) for i in range(1, 6)] + [("test_batch", 3)]:
        labels = [label for label in range(10) for _ in range(per_class)]
        rows = rng.integers(0, 256, (len(labels), 3072), dtype=np.uint8)
        write_pickle(tmp_path / name, {b"labels": labels, b"data": rows}, 4)
    return tmp_path


def test_cifar_batch_files_hold_out_the_last_tenth_of_each_class_and_keep_the_test_set_apart(cifar10_holdout_files):
    sources = data.dataset_sources("cifar10", data_dir=cifar10_holdout_files)
    assert (len(sources.train), len(sources.validation), len(sources.test)) == (180, 20, 30)
    assert sources.class_names == CIFAR10_CLASSES
    # The stored order is batch by batch: each class's last two images are in data_batch_5.
    everything = data.cifar_source(cifar10_holdout_files)
    keys, labels = (np.asarray(tensor) for tensor in everything.tensors)
    held_out = {image.tobytes() for image in np.asarray(sources.validation.tensors[0])}
    assert held_out == {image.tobytes() for label in range(10) for image in keys[labels == label][-2:]}
    assert set(sources.described) == {"train", "validation", "test"}
    assert "hold-out" in sources.described["validation"] and "(20 images)" in sources.described["validation"]

    whole = data.dataset_sources("cifar10", data_dir=cifar10_holdout_files, full_train=True)
    assert (len(whole.train), whole.validation, len(whole.test)) == (200, None, 30)


def test_the_cifar10_convenience_is_the_named_data_set_trained_on_everything(cifar10_holdout_files):
    splits = data.cifar10(batch_size=64, data_dir=cifar10_holdout_files, seed=0)
    named = data.datasets("cifar10", batch_size=64, data_dir=cifar10_holdout_files, seed=0, full_train=True)
    assert splits.validation is None and named.validation is None
    for first, second in ((splits.train, named.train), (splits.test, named.test)):
        for (x1, y1), (x2, y2) in zip(batches(first), batches(second)):
            np.testing.assert_array_equal(x1, x2)
            np.testing.assert_array_equal(y1, y2)
    assert sum(len(y) for _, y in batches(splits.train)) == 200


def test_cifar100_files_are_not_read_as_cifar10(tmp_path, monkeypatch):
    import tensorflow_datasets as tfds

    write_pickle(tmp_path / "meta", {b"fine_label_names": [b"x"] * 100, b"coarse_label_names": [b"y"] * 20}, 2)
    for name in ("train", "test"):
        content = {b"data": np.zeros((2, 3072), np.uint8), b"fine_labels": [0, 1], b"coarse_labels": [0, 1]}
        write_pickle(tmp_path / name, content, 4)
    assert len(data.dataset_sources("cifar100", data_dir=tmp_path, full_train=True).class_names) == 100

    def refuse(*args, **kwargs):
        raise AssertionError("a download was attempted")

    monkeypatch.setattr(tfds.core.DatasetBuilder, "download_and_prepare", refuse)
    # "cifar10" looks for the CIFAR-10 layout only, then for tensorflow-datasets' copy, which is not there.
    with pytest.raises(FileNotFoundError, match="cifar10 needs its python batch files.*holds neither"):
        data.dataset_sources("cifar10", data_dir=tmp_path)


def test_imagenet_augmentation_scales_the_papers_sizes_with_the_image_size(tmp_path):
    import tensorflow as tf

    for split in ("train", "validation"):
        for name in ("a", "b"):
            folder = tmp_path / split / name
            folder.mkdir(parents=True)
            for index in range(2):
                image = np.full((40, 60, 3), 9 * index, np.uint8)
                (folder / f"{index}.png").write_bytes(tf.io.encode_png(image).numpy())
    splits = data.datasets(f"folder:{tmp_path}", batch_size=4, image_size=56, augmentation="imagenet")
    images, _ = next(iter(splits.validation))
    # Evaluation: the shorter side resized to 256 * 56 / 224 = 64, then the centre 56 crop.
    source = splits.sources.validation
    expected = data.center_crop(data.resize_shorter_side(next(iter(source.images()))[0], 64), 56)
    np.testing.assert_allclose(images[0], expected - np.array(data.IMAGENET_MEAN, np.float32), atol=1e-4)
    assert next(iter(splits.train))[0].shape == (4, 56, 56, 3)


@pytest.mark.parametrize(
    "call, message",
    [
        (
            lambda: data.datasets(7),
            "dataset must be 'shapes', 'cifar10', 'cifar100', 'folder:PATH' or a tensorflow-datasets name; received 7",
        ),
        (
            lambda: data.datasets("cifar-10"),
            "dataset must be 'shapes', 'cifar10', 'cifar100', 'folder:PATH' or a tensorflow-datasets name; "
            "received 'cifar-10'",
        ),
        (
            lambda: data.input_defaults("shapes", image_size=4),
            "image_size must be an integer of at least 8; received 4",
        ),
        (
            lambda: data.input_defaults("shapes", augmentation="mixup"),
            "augmentation must be one of 'cifar', 'imagenet'",
        ),
        (lambda: data.dataset_sources("shapes", full_train=True), "full_train applies to dataset='cifar10' or"),
        (lambda: data.dataset_sources("folder:/nonexistent"), "needs PATH/train"),
        (
            lambda: data.pipelines_for(
                data.dataset_sources("shapes", train_size=10, validation_size=5), augmentation="vgg", image_size=32
            ),
            "augmentation must be one of .* received 'vgg'",
        ),
    ],
)
def test_named_data_set_errors_name_the_argument_and_what_is_allowed(call, message):
    with pytest.raises(ValueError, match=message):
        call()


def test_printing_splits_shows_no_pixels():
    splits = data.datasets("shapes", batch_size=8, train_size=40, validation_size=16)
    text = repr(splits)
    assert len(text.splitlines()) < 5 and "array(" not in text, text[:500]
