"""keras_resnet.data.sources: folders, CIFAR batch files, arrays and tensorflow-datasets as sources."""

import io
from pathlib import Path

import numpy as np
import pytest
from data_helpers import (
    CIFAR10_CLASSES,
    REAL_CIFAR_TRAIN,
    batches,
    encode,
    random_images,
)
from PIL import Image

from keras_resnet import data


def test_image_statistics_match_numpy(cifar_like):
    images, _, source = cifar_like
    statistics = data.image_statistics(source, batch_size=7)
    pixels = images.reshape(-1, 3).astype(np.float64)
    np.testing.assert_allclose(statistics["pixel_mean"], images.mean(axis=0), rtol=1e-6)
    np.testing.assert_allclose(statistics["channel_mean"], pixels.mean(axis=0), rtol=1e-6)
    np.testing.assert_allclose(statistics["channel_std"], pixels.std(axis=0), rtol=1e-5)


def test_folder_skips_and_counts_unreadable_files_and_records_those_that_fail_to_decode(messy_folder):
    root, good = messy_folder
    with pytest.warns(UserWarning, match=r"skipped 4 file\(s\) .* e\.g\. .*labels\.csv \(not an image file\)"):
        source = data.folder_source(root)
    skipped = sorted(Path(path).name for path in source.skipped)
    assert skipped == ["empty.jpg", "labels.csv", "notes.jpg", "truncated.jpg"]
    assert source.class_names == ("bird", "cat") and len(source) == 6  # garbage.jpg passes the bytes check
    # ... so it fails while iterating: it is recorded, the pass ends with an image from its start, and goes on.
    decoded = [(image.numpy(), int(label)) for image, label in source.images()]
    expected = [(image, name) for name, images in good.items() for image in images]
    assert len(decoded) == 6
    for (image, label), (wanted, name) in zip(decoded, expected + expected[:1]):
        assert source.class_names[label] == name
        np.testing.assert_array_equal(image, wanted)
    assert [(position, Path(name).name) for _, position, name in source.decode_failures] == [(3, "garbage.jpg")]


def test_folder_without_checks_still_finishes_every_epoch_and_names_each_failure_once_per_pass(messy_folder):
    root, _ = messy_folder
    source = data.folder_source(root, check=False)
    assert len(source) == 10 and source.skipped == ()
    dataset = data.imagenet_pipeline(source, training=True, batch_size=4, image_size=32, scale_range=(34, 40), seed=0)
    assert int(dataset.cardinality()) == 3  # known to Keras: 10 listed files, batches of 4
    for _ in range(2):
        assert sum(len(y) for _, y in batches(dataset)) == 10
    broken = {"empty.jpg", "garbage.jpg", "labels.csv", "notes.jpg", "truncated.jpg"}
    passes = {}
    for pass_id, position, name in source.decode_failures:
        passes.setdefault(pass_id, {})[position] = Path(name).name
    # Two shuffled passes, each naming every broken file once, at a position of its own in that pass.
    assert len(passes) == 2 and all(sorted(names.values()) == sorted(broken) for names in passes.values())
    assert len(source.decode_failures) == 10


def pil_bytes(image, image_format, **options):
    buffer = io.BytesIO()
    image.save(buffer, image_format, **options)
    return buffer.getvalue()


def rgb_block(height, width, colour):
    return np.broadcast_to(np.array(colour, np.uint8), (height, width, 3))


SIXTEEN_BIT = np.array([[0, 256, 257 * 77, 65535]], np.uint16)
RGB = random_images(1, 5, 6, seed=4)[0]
HALF_JPEG = encode(random_images(1, seed=5)[0], "JPEG")

# One row per file of a messy tree: its path, its bytes and what folder_source must make of it. `expected` is
# the (H, W, 3) uint8 image it loads as (within `tolerance`, for lossy JPEG), a skip reason (skipped, counted
# and named in the warning), or None (hidden: ignored, not counted). Classes: blue 0, cyan 1 (an empty folder),
# green 2, junk 3 (no image): cyan and junk keep their ids, so green is still 2.
MESSY_TREE = [
    # path, bytes, expected, tolerance
    ("blue/gray.png", pil_bytes(Image.new("L", (3, 2), 77), "PNG"), rgb_block(2, 3, (77, 77, 77)), 0),
    ("blue/gray.jpg", pil_bytes(Image.new("L", (8, 8), 77), "JPEG", quality=95), rgb_block(8, 8, (77,) * 3), 1),
    # RGBA: the alpha channel is dropped, not composited: a fully transparent pixel keeps its stored colour.
    ("blue/rgba.png", pil_bytes(Image.new("RGBA", (2, 2), (10, 20, 30, 0)), "PNG"), rgb_block(2, 2, (10, 20, 30)), 0),
    ("blue/opaque.png", pil_bytes(Image.new("RGBA", (2, 2), (200, 0, 9, 255)), "PNG"), rgb_block(2, 2, (200, 0, 9)), 0),
    # 16-bit grayscale PNG ('I;16'): the high byte, 0..65535 onto 0..255.
    (
        "blue/sixteen.png",
        pil_bytes(Image.fromarray(SIXTEEN_BIT), "PNG"),
        np.repeat(np.array([[0, 1, 77, 255]], np.uint8)[..., None], 3, axis=-1),
        0,
    ),
    (
        "blue/palette.png",
        pil_bytes(Image.new("RGB", (2, 2), (10, 200, 30)).quantize(4), "PNG"),
        rgb_block(2, 2, (10, 200, 30)),
        0,
    ),
    ("blue/notes.txt", b"class list, not an image\n", "not an image file", None),
    ("blue/.DS_Store", b"\x00\x00\x00\x01Bud1" + bytes(64), None, None),
    # CMYK JPEG (Pillow writes Adobe inverted CMYK, as Photoshop does): C=0 M=128 Y=255 K=51 is RGB (204, 102, 0).
    (
        "green/cmyk.jpg",
        pil_bytes(Image.new("CMYK", (8, 8), (0, 128, 255, 51)), "JPEG", quality=95),
        rgb_block(8, 8, (204, 102, 0)),
        3,
    ),
    ("green/nested/rgb.png", encode(RGB, "PNG"), RGB, 0),  # a sub-folder's files belong to the class folder
    ("green/truncated.jpg", HALF_JPEG[: len(HALF_JPEG) // 2], "truncated JPEG", None),
    ("green/zero.jpg", b"", "empty file", None),
    ("green/.ipynb_checkpoints/rgb-checkpoint.png", encode(RGB, "PNG"), None, None),
    ("junk/readme.txt", b"nothing to see", "not an image file", None),
]
MESSY_CLASSES = ("blue", "cyan", "green", "junk")


def test_folder_loads_every_image_mode_as_rgb_uint8_and_skips_the_rest_without_shifting_labels(tmp_path, monkeypatch):
    (tmp_path / "cyan").mkdir()
    for path, content, _, _ in MESSY_TREE:
        (tmp_path / path).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / path).write_bytes(content)
    monkeypatch.setattr(data.sources, "WARN_PATHS", len(MESSY_TREE))  # name every skipped file in the warning
    with pytest.warns(UserWarning) as record:
        source = data.folder_source(tmp_path)
    messages = [str(warning.message) for warning in record]
    assert len(messages) == 2, messages
    skipped_message, empty_message = messages

    loaded = {path: (want, tolerance) for path, _, want, tolerance in MESSY_TREE if isinstance(want, np.ndarray)}
    skipped = {path: reason for path, _, reason, _ in MESSY_TREE if isinstance(reason, str)}
    assert f"skipped {len(skipped)} file(s)" in skipped_message
    for path, reason in skipped.items():
        assert f"{tmp_path / path} ({reason})" in skipped_message
    assert sorted(Path(path).relative_to(tmp_path).as_posix() for path in source.skipped) == sorted(skipped)
    assert "no readable image for 2 class(es)" in empty_message
    assert "'cyan' (label 1), 'junk' (label 3)" in empty_message and "keep their label ids" in empty_message

    assert source.class_names == MESSY_CLASSES and len(source) == len(loaded)
    listed = [Path(path.decode()).relative_to(tmp_path).as_posix() for path, _ in source.elements.as_numpy_iterator()]
    assert sorted(listed) == sorted(loaded)  # hidden files and folders are not even listed
    examples = list(source.images(parallel=False))
    assert len(examples) == len(loaded)
    for path, (image, label) in zip(listed, examples):
        expected, tolerance = loaded[path]
        assert source.class_names[int(label)] == path.split("/")[0], path
        assert image.dtype == np.uint8 and image.shape == expected.shape, (path, image.shape)
        difference = np.abs(image.numpy().astype(int) - expected.astype(int)).max()
        assert difference <= tolerance, (path, difference)


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda root: None, "must hold one sub-folder per class; it is empty: '{root}'"),
        (
            lambda root: (root / "0001.png").write_bytes(encode(random_images(1, 4, 4)[0], "PNG")),
            "must hold one sub-folder per class; found none: '{root}'",
        ),
        (
            lambda root: [(root / name).mkdir() for name in ("cat", "dog", ".git")],
            "directory '{root}' holds no readable image",
        ),
    ],
    ids=["empty", "images-without-class-folders", "only-empty-class-folders"],
)
def test_folder_without_images_is_a_clear_error_naming_the_directory(tmp_path, make, message):
    root = tmp_path / "photos"
    root.mkdir()
    make(root)
    with pytest.raises(ValueError) as error:
        data.folder_source(root)
    assert message.format(root=root) in str(error.value)


def test_folder_indices_select_positions_in_each_class(tmp_path):
    for name in ("b", "a"):
        (tmp_path / name).mkdir()
        for index in range(6):
            (tmp_path / name / f"{index:04d}.png").write_bytes(encode(random_images(1, 4, 4)[0], "PNG"))
    source = data.folder_source(tmp_path, indices=range(4, 9))
    listed = [
        (Path(path.decode()).relative_to(tmp_path).as_posix(), int(label))
        for path, label in source.elements.as_numpy_iterator()
    ]
    assert listed == [("a/0004.png", 0), ("a/0005.png", 0), ("b/0004.png", 1), ("b/0005.png", 1)]


def test_unprepared_tfds_names_fail_fast_without_downloading(tmp_path, monkeypatch):
    import tensorflow_datasets as tfds

    def refuse(*args, **kwargs):
        raise AssertionError("a download was attempted")

    monkeypatch.setattr(tfds.core.DatasetBuilder, "download_and_prepare", refuse)
    with pytest.raises(FileNotFoundError, match="no prepared copy of 'cifar10'") as error:
        data.tfds_source("cifar10", data_dir=tmp_path)
    message = str(error.value)
    assert "tfds build cifar10" in message and "data_dir" in message and "folder_source()" in message
    assert "cifar_source()" in message
    with pytest.raises(FileNotFoundError, match="--manual_dir"):
        data.imagenet(data_dir=tmp_path)
    # The named data set says which files it reads, by batch files or a prepared copy, and downloads nothing.
    with pytest.raises(FileNotFoundError, match="holds neither. Nothing is downloaded."):
        data.cifar10(data_dir=tmp_path)


@pytest.mark.skipif(not REAL_CIFAR_TRAIN.is_dir(), reason=f"real CIFAR-10 JPEGs absent ({REAL_CIFAR_TRAIN})")
def test_real_cifar10_jpeg_folder_index_split():
    validation = data.folder_source(REAL_CIFAR_TRAIN, indices=range(4500, 5000), check=False)
    train = data.folder_source(REAL_CIFAR_TRAIN, indices=range(0, 4500), check=False)
    assert len(train) == 45_000 and len(validation) == 5_000
    assert train.class_names == validation.class_names == CIFAR10_CLASSES

    def listed(source):  # the listing's (path, label) pairs, read from its in-memory keys
        paths, labels = (tensor.numpy() for tensor in source.tensors)
        return [(Path(path.decode()), int(label)) for path, label in zip(paths, labels)]

    validation_paths = set()
    for path, label in listed(validation):
        assert validation.class_names[label] == path.parent.name and 4500 <= int(path.stem) <= 4999
        validation_paths.add(path)
    assert not validation_paths & {path for path, _ in listed(train)}

    splits = data.folder(
        REAL_CIFAR_TRAIN, train_indices=range(0, 8), validation_indices=range(4500, 4504), batch_size=20, seed=0
    )
    assert splits.class_names == CIFAR10_CLASSES and splits.test is None
    x, y = next(iter(splits.train))
    assert x.shape == (20, 32, 32, 3) and x.dtype == "float32" and np.all(np.abs(x) <= 1)
    assert sorted(np.concatenate([y for _, y in batches(splits.validation)])) == sorted(list(range(10)) * 4)


def test_holdout_split_keeps_the_last_tenth_of_each_class_in_stored_order(tmp_path):
    for name in ("b", "a"):
        (tmp_path / name).mkdir()
        for index in range(20):
            (tmp_path / name / f"{index:04d}.png").write_bytes(encode(random_images(1, 4, 4)[0], "PNG"))
    train, validation = data.holdout_split(data.folder_source(tmp_path))

    def listed(source):
        return sorted(
            (Path(path.decode()).relative_to(tmp_path).as_posix(), int(label))
            for path, label in source.elements.as_numpy_iterator()
        )

    assert listed(validation) == [("a/0018.png", 0), ("a/0019.png", 0), ("b/0018.png", 1), ("b/0019.png", 1)]
    assert len(train) == 36 and not set(listed(train)) & set(listed(validation))
    assert train.class_names == validation.class_names == ("a", "b")
    with pytest.raises(ValueError, match="fraction must be a number in \\(0, 1\\); received 1.5"):
        data.holdout_split(train, 1.5)


def test_take_per_class_keeps_the_first_examples_of_each_class_in_stored_order():
    images = random_images(9)
    labels = np.array([2, 0, 2, 1, 0, 2, 0, 2, 0])
    source = data.array_source(images, labels, ("a", "b", "c"))
    kept = data.take_per_class(source, 2)
    assert len(kept) == 5 and kept.class_names == ("a", "b", "c")
    # Positions 0, 1, 2, 3, 4 of the stored order: two of classes 0 and 2, the only one of class 1.
    (served, served_labels), *_ = batches(kept.images().batch(9))
    np.testing.assert_array_equal(served, images[:5])
    np.testing.assert_array_equal(served_labels, labels[:5])
    assert len(data.take_per_class(source, 100)) == 9
    with pytest.raises(ValueError, match="count must be a positive integer; received 0"):
        data.take_per_class(source, 0)


CIFAR_JPEG = Path(__file__).resolve().parents[2] / ".." / "shared" / "data" / "cifar10-jpeg" / "train"


@pytest.mark.skipif(not CIFAR_JPEG.is_dir(), reason="the CIFAR-10 JPEG folder ../shared/data is absent")
def test_holdout_of_the_cifar10_jpeg_folder_is_its_4500_to_4999_protocol():
    _, validation = data.holdout_split(data.folder_source(CIFAR_JPEG, check=False))
    paths = [Path(path.decode()) for path in validation.tensors[0].numpy()]
    assert len(paths) == 5000
    assert sorted({int(path.stem) for path in paths}) == list(range(4500, 5000))
