"""Shared helpers and fixtures of the keras_resnet.data tests: random images, encoded files, CIFAR batch files."""

import io
import pickle
from pathlib import Path

import numpy as np
import pytest
from backend_helpers import run_under_backend
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


@pytest.fixture(scope="module")
def cifar_like():
    images = random_images(48)
    labels = np.arange(48) % 10
    source = data.array_source(images, labels)
    return images, labels, source


def run_with_numpy_backend(script):
    """Runs a Python script in a fresh interpreter under Keras' numpy backend; fails the test if it fails."""
    run_under_backend("numpy", script)


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
