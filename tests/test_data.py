"""Tests for keras_resnet.data: sources, augmentation statistics, determinism, corrupt files, offline tfds."""

import io
import os
import pickle
import subprocess
import sys
from pathlib import Path

import keras
import numpy as np
import pytest
from PIL import Image

from keras_resnet import data

REPO = Path(__file__).resolve().parents[1]
REAL_CIFAR_TRAIN = REPO.parent / "shared" / "data" / "cifar10-jpeg" / "train"
CIFAR10_CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")


def random_images(count, height=32, width=32, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (count, height, width, 3), dtype=np.uint8)


def encode(array, image_format, mode=None):
    buffer = io.BytesIO()
    Image.fromarray(array, mode).save(buffer, image_format)
    return buffer.getvalue()


def batches(dataset):
    return [(images.numpy(), labels.numpy()) for images, labels in dataset]


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


@pytest.fixture(scope="module")
def cifar_like():
    images = random_images(48)
    labels = np.arange(48) % 10
    source = data.array_source(images, labels)
    return images, labels, source


def run_with_numpy_backend(script):
    """Runs a Python script in a fresh interpreter under Keras' numpy backend; fails the test if it fails."""
    env = {**os.environ, "KERAS_BACKEND": "numpy"}
    result = subprocess.run([sys.executable, "-c", script], cwd=REPO, env=env, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-2000:]


def test_modules_import_without_tensorflow():
    run_with_numpy_backend(
        "import sys, importlib.abc\n"
        "class Block(importlib.abc.MetaPathFinder):\n"
        "    def find_spec(self, name, path, target=None):\n"
        "        if name.split('.')[0] in ('tensorflow', 'tensorflow_datasets'):\n"
        "            raise ImportError('blocked ' + name)\n"
        "sys.meta_path.insert(0, Block())\n"
        "import keras_resnet.data, keras_resnet.evaluation\n"
        "assert 'tensorflow' not in sys.modules\n"
    )


def test_pipelines_serve_another_keras_backend():
    # The pipelines run in tf.data whatever the Keras backend; the numpy backend stands in for jax and torch.
    run_with_numpy_backend(
        "import keras, numpy as np\n"
        "from keras_resnet import data\n"
        "assert keras.backend.backend() == 'numpy'\n"
        "images = np.random.default_rng(0).integers(0, 256, (8, 32, 32, 3), dtype=np.uint8)\n"
        "source = data.array_source(images, np.arange(8))\n"
        "statistics = data.image_statistics(source)\n"
        "x, y = next(iter(data.cifar_pipeline(source, training=False, batch_size=8, statistics=statistics)))\n"
        "np.testing.assert_allclose(x, (images - statistics['pixel_mean']) / 255, atol=1e-5)\n"
    )


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
    assert dataset.class_names == tuple(str(label) for label in range(10))


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


def test_image_statistics_match_numpy(cifar_like):
    images, _, source = cifar_like
    statistics = data.image_statistics(source, batch_size=7)
    pixels = images.reshape(-1, 3).astype(np.float64)
    np.testing.assert_allclose(statistics["pixel_mean"], images.mean(axis=0), rtol=1e-6)
    np.testing.assert_allclose(statistics["channel_mean"], pixels.mean(axis=0), rtol=1e-6)
    np.testing.assert_allclose(statistics["channel_std"], pixels.std(axis=0), rtol=1e-5)


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
    (x1, y1), = batches(dataset)
    (x2, y2), = batches(dataset)
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
    (plain, labels), = batches(data.imagenet_pipeline(source, **options))
    (lit, _), = batches(data.imagenet_pipeline(source, lighting_std=0.1, **options))
    (bgr, _), = batches(data.imagenet_pipeline(source, channel_order="bgr", **options))
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


def test_resize_shorter_side_and_centre_crop_shapes():
    import tensorflow as tf

    assert data.resize_shorter_side(tf.zeros((375, 500, 3)), 256).shape == (256, 341, 3)
    assert data.resize_shorter_side(tf.zeros((500, 375, 3)), 480).shape == (640, 480, 3)
    assert data.center_crop(tf.zeros((256, 341, 3)), 224).shape == (224, 224, 3)
    assert data.center_crop(tf.zeros((8, 6, 3)), np.int64(6)).shape == (6, 6, 3)  # numpy integers are sizes too
    assert data.resize_shorter_side(tf.zeros((8, 6, 3)), tf.constant(3)).shape == (4, 3, 3)
    # Shrinking a checkerboard 3 times is antialiased to nearly flat grey (plain bilinear would alias it).
    checkerboard = (np.indices((48, 48)).sum(axis=0) % 2 * 255).astype(np.float32)[..., None]
    shrunk = data.resize_shorter_side(checkerboard, 16).numpy()
    assert shrunk.shape == (16, 16, 1) and shrunk[2:-2, 2:-2].std() < 10 and abs(shrunk.mean() - 127.5) < 5


def test_pipeline_output_trains_a_model(cifar_like):
    _, _, source = cifar_like
    dataset = data.cifar_pipeline(
        source, training=True, batch_size=8, statistics=data.image_statistics(source), seed=0
    )
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


@pytest.fixture
def messy_folder(tmp_path):
    """Two classes of good PNG/JPEG images plus corrupt, empty and non-image files."""
    good = {"bird": random_images(3, 36, 40, seed=1), "cat": random_images(2, 44, 34, seed=2)}
    for name, images in good.items():
        (tmp_path / name).mkdir()
        for index, image in enumerate(images):
            (tmp_path / name / f"{index:02d}.png").write_bytes(encode(image, "PNG"))
    jpeg = encode(random_images(1, seed=3)[0], "JPEG")
    (tmp_path / "cat" / "truncated.jpg").write_bytes(jpeg[: len(jpeg) // 2])
    (tmp_path / "cat" / "empty.jpg").write_bytes(b"")
    (tmp_path / "bird" / "notes.jpg").write_text("not an image")
    (tmp_path / "bird" / "labels.csv").write_text("a,b\n")
    (tmp_path / "bird" / "garbage.jpg").write_bytes(jpeg[:20] + bytes(200) + b"\xff\xd9")
    (tmp_path / "bird" / ".hidden").write_text("ignored")
    return tmp_path, good


def test_folder_skips_and_counts_unreadable_files(messy_folder):
    root, good = messy_folder
    with pytest.warns(UserWarning, match=r"skipped 4 file\(s\) .* e\.g\. .*labels\.csv \(not an image file\)"):
        source = data.folder_source(root)
    skipped = sorted(Path(path).name for path in source.skipped)
    assert skipped == ["empty.jpg", "labels.csv", "notes.jpg", "truncated.jpg"]
    assert source.class_names == ("bird", "cat") and len(source) == 6  # garbage.jpg passes the header check
    # ... so it fails while iterating: it is skipped, the next image takes its place and the epoch goes on.
    decoded = [(image.numpy(), int(label)) for image, label in source.images()]
    expected = [(image, name) for name, images in good.items() for image in images]
    assert len(decoded) == 6
    for (image, label), (wanted, name) in zip(decoded, expected + expected[:1]):
        assert source.class_names[label] == name
        np.testing.assert_array_equal(image, wanted)


def test_folder_decode_check_finds_corruption_the_header_check_misses(messy_folder):
    root, _ = messy_folder
    with pytest.warns(UserWarning, match=r"skipped 5 file\(s\)"):
        source = data.folder_source(root, check="decode")
    assert "garbage.jpg" in {Path(path).name for path in source.skipped} and len(source) == 5


def test_folder_without_checks_still_finishes_every_epoch(messy_folder):
    root, _ = messy_folder
    source = data.folder_source(root, check=None)
    assert len(source) == 10 and source.skipped == ()
    dataset = data.imagenet_pipeline(source, training=True, batch_size=4, image_size=32, scale_range=(34, 40), seed=0)
    assert int(dataset.cardinality()) == 3  # known to Keras: 10 listed files, batches of 4
    for _ in range(2):
        assert sum(len(y) for _, y in batches(dataset)) == 10


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
    ("blue/sixteen.png", pil_bytes(Image.fromarray(SIXTEEN_BIT), "PNG"),
     np.repeat(np.array([[0, 1, 77, 255]], np.uint8)[..., None], 3, axis=-1), 0),
    ("blue/palette.png", pil_bytes(Image.new("RGB", (2, 2), (10, 200, 30)).quantize(4), "PNG"),
     rgb_block(2, 2, (10, 200, 30)), 0),
    ("blue/notes.txt", b"class list, not an image\n", "not an image file", None),
    ("blue/.DS_Store", b"\x00\x00\x00\x01Bud1" + bytes(64), None, None),
    # CMYK JPEG (Pillow writes Adobe inverted CMYK, as Photoshop does): C=0 M=128 Y=255 K=51 is RGB (204, 102, 0).
    ("green/cmyk.jpg", pil_bytes(Image.new("CMYK", (8, 8), (0, 128, 255, 51)), "JPEG", quality=95),
     rgb_block(8, 8, (204, 102, 0)), 3),
    ("green/nested/rgb.png", encode(RGB, "PNG"), RGB, 0),  # a sub-folder's files belong to the class folder
    ("green/truncated.jpg", HALF_JPEG[: len(HALF_JPEG) // 2], "truncated JPEG", None),
    ("green/zero.jpg", b"", "empty file", None),
    ("green/.ipynb_checkpoints/rgb-checkpoint.png", encode(RGB, "PNG"), None, None),
    ("junk/readme.txt", b"nothing to see", "not an image file", None),
]
MESSY_CLASSES = ("blue", "cyan", "green", "junk")


@pytest.mark.parametrize("check", ["header", "decode"])
def test_folder_loads_every_image_mode_as_rgb_uint8_and_skips_the_rest_without_shifting_labels(
    tmp_path, monkeypatch, check
):
    (tmp_path / "cyan").mkdir()
    for path, content, _, _ in MESSY_TREE:
        (tmp_path / path).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / path).write_bytes(content)
    monkeypatch.setattr(data, "_WARN_PATHS", len(MESSY_TREE))  # name every skipped file in the warning
    with pytest.warns(UserWarning) as record:
        source = data.folder_source(tmp_path, check=check)
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
        (lambda root: (root / "0001.png").write_bytes(encode(random_images(1, 4, 4)[0], "PNG")),
         "must hold one sub-folder per class; found none: '{root}'"),
        (lambda root: [(root / name).mkdir() for name in ("cat", "dog", ".git")],
         "directory '{root}' holds no readable image"),
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


def write_pickle(path, content, protocol):
    path.write_bytes(pickle.dumps(content, protocol=protocol))


@pytest.fixture(scope="module")
def cifar10_files(tmp_path_factory):
    """The CIFAR-10 python layout (a few images per batch), as the official archive's files are pickled."""
    root = tmp_path_factory.mktemp("cifar") / "cifar-10-batches-py"
    root.mkdir()
    rng = np.random.default_rng(0)
    write_pickle(root / "batches.meta", {b"label_names": [name.encode() for name in CIFAR10_CLASSES]}, 2)
    batches_written = {}
    for index, name in enumerate([f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]):
        rows = rng.integers(0, 256, (4, 3072), dtype=np.uint8)
        labels = [int(label) for label in rng.integers(0, 10, 4)]
        content = {b"batch_label": name.encode(), b"labels": labels, b"data": rows, b"filenames": [b"x.png"] * 4}
        write_pickle(root / name, content, protocol=(2, 4, 5)[index % 3])
        batches_written[name] = (rows, labels)
    # The originals were written by numpy 1, whose arrays name numpy.core.multiarray._reconstruct.
    first = root / "data_batch_1"
    first.write_bytes(first.read_bytes().replace(b"numpy._core.multiarray\n", b"numpy.core.multiarray\n"))
    return root, batches_written


def test_cifar_source_reads_the_python_batches(cifar10_files):
    root, written = cifar10_files
    train = data.cifar_source(root.parent)  # the folder the archive was extracted into works too
    assert train.class_names == CIFAR10_CLASSES and len(train) == 20
    images, labels = zip(*[(image.numpy(), int(label)) for image, label in train.images()])
    rows = np.concatenate([written[f"data_batch_{i}"][0] for i in range(1, 6)])
    np.testing.assert_array_equal(np.stack(images), rows.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1))
    assert list(labels) == sum((written[f"data_batch_{i}"][1] for i in range(1, 6)), [])
    assert len(data.cifar_source(root, split="test")) == 4


class RunsCode:
    def __init__(self, function, argument):
        self.function, self.argument = function, argument

    def __reduce__(self):
        return self.function, (self.argument,)


@pytest.mark.parametrize("function", [os.system, exec], ids=["os.system", "exec"])
def test_cifar_source_refuses_a_pickle_that_runs_code(tmp_path, cifar10_files, function):
    root, _ = cifar10_files
    for path in root.iterdir():
        (tmp_path / path.name).write_bytes(path.read_bytes())
    marker = tmp_path / "pwned"
    command = f"touch {marker}" if function is os.system else f"open({str(marker)!r}, 'w')"
    content = {b"data": RunsCode(function, command), b"labels": [0]}
    write_pickle(tmp_path / "data_batch_3", content, protocol=2)
    refused = r"data_batch_3: refusing to load global '(posix|__builtin__)\.(system|exec)'"
    with pytest.raises(pickle.UnpicklingError, match=refused):
        data.cifar_source(tmp_path)
    assert not marker.exists()


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
    train, test = data.cifar100(batch_size=4, data_dir=tmp_path, seed=0)
    assert len(train.class_names) == 100
    assert [list(y) for _, y in batches(test)] == [[90, 91]]
    assert sum(len(y) for _, y in batches(train)) == 6


def test_cifar10_convenience_reads_python_batches(cifar10_files):
    root, _ = cifar10_files
    train, test = data.cifar10(batch_size=8, data_dir=root, seed=0)
    x, y = next(iter(train))
    assert x.shape == (8, 32, 32, 3) and x.dtype == "float32" and y.dtype == "int32"
    assert sum(len(y) for _, y in batches(test)) == 4 and test.class_names == CIFAR10_CLASSES


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
    with pytest.raises(FileNotFoundError, match="no prepared copy of 'cifar10'"):
        data.cifar10(data_dir=tmp_path)


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
            r"scale_range must be \(min, max\) with image_size \(32\) <= min <= max; received \(16, 48\)",
        ),
        (
            lambda source: data.imagenet_pipeline(source, training=False, image_size=32, resize_size=24),
            "resize_size must be at least image_size",
        ),
        (
            lambda source: data.imagenet_pipeline(source, training=True, channel_order="grb"),
            "channel_order must be one of 'rgb', 'bgr'; received 'grb'",
        ),
        (lambda source: data.normalizer((1.0, 2.0)), r"mean must have shape \(3,\) or \(height, width, 3\)"),
        (lambda source: data.center_crop(np.zeros((8, 8, 3)), 2.5), r"size must be a positive integer; received 2\.5"),
        (lambda source: data.center_crop(np.zeros((8, 8, 3)), True), "size must be a positive integer; received True"),
        (lambda source: data.center_crop(np.zeros((8, 6, 3)), 7), r"size must be at most .* \(6\) .* received 7"),
        (lambda source: data.resize_shorter_side(np.zeros((8, 8, 3)), -3),
         "size must be a positive integer; received -3"),
        (lambda source: data.folder_source(".", check="full"), "check must be one of 'header', 'decode', None"),
        (lambda source: data.array_source(np.zeros((2, 4, 4, 3)), [0, 1]), "images must be a uint8 array"),
        (lambda source: data.array_source(random_images(2), [0]), "labels must hold one label per image"),
    ],
)
def test_bad_arguments_name_the_argument_the_value_and_what_is_allowed(cifar_like, call, message):
    with pytest.raises(ValueError, match=message):
        call(cifar_like[2])


def test_folder_convenience_rejects_an_unknown_augmentation(messy_folder):
    root, _ = messy_folder
    message = "augmentation must be one of 'cifar', 'imagenet'; received 'vgg'"
    with pytest.warns(UserWarning), pytest.raises(ValueError, match=message):
        data.folder(root, train_indices=range(2), validation_indices=range(2, 3), augmentation="vgg")


@pytest.mark.skipif(not REAL_CIFAR_TRAIN.is_dir(), reason=f"real CIFAR-10 JPEGs absent ({REAL_CIFAR_TRAIN})")
def test_real_cifar10_jpeg_folder_index_split():
    validation = data.folder_source(REAL_CIFAR_TRAIN, indices=range(4500, 5000), check=None)
    train = data.folder_source(REAL_CIFAR_TRAIN, indices=range(0, 4500), check=None)
    assert len(train) == 45_000 and len(validation) == 5_000
    assert train.class_names == validation.class_names == CIFAR10_CLASSES
    validation_paths = set()
    for path, label in validation.elements.as_numpy_iterator():
        path = Path(path.decode())
        assert validation.class_names[label] == path.parent.name and 4500 <= int(path.stem) <= 4999
        validation_paths.add(path)
    assert not validation_paths & {Path(path.decode()) for path, _ in train.elements.as_numpy_iterator()}

    train_batches, validation_batches = data.folder(
        REAL_CIFAR_TRAIN, train_indices=range(0, 8), validation_indices=range(4500, 4504), batch_size=20, seed=0
    )
    assert train_batches.class_names == CIFAR10_CLASSES
    x, y = next(iter(train_batches))
    assert x.shape == (20, 32, 32, 3) and x.dtype == "float32" and np.all(np.abs(x) <= 1)
    assert sorted(np.concatenate([y for _, y in batches(validation_batches)])) == sorted(list(range(10)) * 4)


def test_holdout_split_keeps_the_last_tenth_of_each_class_in_stored_order(tmp_path):
    for name in ("b", "a"):
        (tmp_path / name).mkdir()
        for index in range(20):
            (tmp_path / name / f"{index:04d}.png").write_bytes(encode(random_images(1, 4, 4)[0], "PNG"))
    train, validation = data.holdout_split(data.folder_source(tmp_path))

    def listed(source):
        return sorted((Path(path.decode()).relative_to(tmp_path).as_posix(), int(label))
                      for path, label in source.elements.as_numpy_iterator())

    assert listed(validation) == [("a/0018.png", 0), ("a/0019.png", 0), ("b/0018.png", 1), ("b/0019.png", 1)]
    assert len(train) == 36 and not set(listed(train)) & set(listed(validation))
    assert train.class_names == validation.class_names == ("a", "b")
    with pytest.raises(ValueError, match="fraction must be a number in \\(0, 1\\); received 1.5"):
        data.holdout_split(train, 1.5)


CIFAR_JPEG = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "cifar10-jpeg" / "train"


@pytest.mark.skipif(not CIFAR_JPEG.is_dir(), reason="the CIFAR-10 JPEG folder ../shared/data is absent")
def test_holdout_of_the_cifar10_jpeg_folder_is_its_4500_to_4999_protocol():
    _, validation = data.holdout_split(data.folder_source(CIFAR_JPEG, check=None))
    paths = [Path(path.decode()) for path, _ in validation.elements.as_numpy_iterator()]
    assert len(paths) == 5000
    assert sorted({int(path.stem) for path in paths}) == list(range(4500, 5000))


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
