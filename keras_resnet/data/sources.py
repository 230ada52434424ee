"""Sources: labelled image collections listed but not decoded, which the pipelines shuffle, then decode."""

from __future__ import annotations

import dataclasses
import os
import warnings
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import numpy as np

from keras_resnet._validation import check_choice as _check_choice
from keras_resnet._validation import check_positive_int as _check_positive
from keras_resnet._validation import is_real as _is_real
from keras_resnet.data.epochs import epoch_images, epoch_numbers, epoch_seed, seed_or_random
from keras_resnet.normalization import pixel_statistics

# (format, offset of the magic bytes, magic bytes, marker a complete file has near its end or b"" for none).
IMAGE_SIGNATURES = (
    ("JPEG", 0, b"\xff\xd8\xff", b"\xff\xd9"),
    ("PNG", 0, b"\x89PNG\r\n\x1a\n", b"IEND"),
    ("GIF", 0, b"GIF8", b""),
    ("BMP", 0, b"BM", b""),
    ("WebP", 8, b"WEBP", b""),
)
_TAIL_BYTES = 1024  # the end marker must lie in this many final bytes (room for trailing padding)
WARN_PATHS = 3  # how many paths a warning names


@dataclasses.dataclass(frozen=True)
class ImageSource:
    """A labelled image collection, listed but not decoded: what the pipelines read.

    Each example is a cheap *key* (a path, encoded bytes or an array) to shuffle before decoding in parallel.

    Attributes:
        elements: `tf.data.Dataset` of `(key, int32 label)` pairs in a fixed order.
        load: function, run inside tf.data, mapping a key to a uint8 image `(height, width, 3)`.
        class_names, size: a label id indexes `class_names`; `size` examples.
        shuffle_buffer: the shuffle window that mixes these keys well (all of them when in memory).
        skipped: paths of files left out at listing because they are not readable images.
        tensors: `(keys, labels)` when the keys are in memory (an epoch is an exact permutation), else `None`.
        decode_failures: `(pass, position, name)` of each image that failed to decode in a pipeline.

    Example:

    ```python
    image, label = next(iter(folder_source("photos").images()))  # photos/<class name>/<image files>
    ```
    """

    elements: Any
    load: Callable[[Any], Any]
    class_names: tuple[str, ...]
    size: int
    shuffle_buffer: int
    skipped: tuple[str, ...] = ()
    tensors: Any = dataclasses.field(default=None, repr=False)  # pixels of array sources: not printed
    decode_failures: list = dataclasses.field(default_factory=list, init=False, compare=False, repr=False)

    def __len__(self) -> int:
        return self.size

    def images(
        self,
        *,
        shuffle: bool = False,
        seed: int | None = None,
        shuffle_buffer: int | None = None,
        parallel: bool = True,
    ) -> Any:
        """The decoded examples as an unbatched `tf.data.Dataset` of full-size `(uint8 image, int32 label)`.

        Every pass yields `len(self)` examples: an image that fails to decode is left out (see `decode_failures`)
        and the pass ends with as many from its start. `shuffle` shuffles anew every epoch (reproducibly with `seed`).
        """
        if not shuffle:
            return epoch_images(self, None, shuffle_buffer=shuffle_buffer, parallel=parallel)
        seed = seed_or_random(seed)
        return epoch_numbers(seed, None).flat_map(
            lambda epoch: epoch_images(self, epoch_seed(seed, epoch), shuffle_buffer=shuffle_buffer, parallel=parallel)
        )


def _in_memory(keys, labels, load, class_names):
    import tensorflow as tf

    tensors = (tf.constant(keys), tf.constant(labels, tf.int32))
    return ImageSource(
        elements=tf.data.Dataset.from_tensor_slices(tensors),
        load=load,
        class_names=tuple(class_names),
        size=len(labels),
        shuffle_buffer=len(labels),
        tensors=tensors,
    )


def _decode_image(encoded):
    import tensorflow as tf

    return tf.io.decode_image(encoded, channels=3, expand_animations=False)


def _read_image(path):
    import tensorflow as tf

    return _decode_image(tf.io.read_file(path))


def _image_format_problem(path):
    """Why the file at `path` is not a complete image file by its first and last bytes, or None."""
    try:
        with open(path, "rb") as file:
            head = file.read(16)
            file.seek(max(0, os.fstat(file.fileno()).st_size - _TAIL_BYTES))
            tail = file.read()
    except OSError as error:
        return f"unreadable ({error.strerror})"
    if not head:
        return "empty file"
    for name, offset, magic, end_marker in IMAGE_SIGNATURES:
        if head[offset : offset + len(magic)] == magic:
            return None if end_marker in tail else f"truncated {name}"
    return "not an image file"


def _class_files(class_dir):
    """The non-hidden files below a class folder, sub-folders included, sorted by path."""
    files = []
    for folder, subfolders, names in os.walk(class_dir):
        subfolders[:] = [name for name in subfolders if not name.startswith(".")]
        files += [os.path.join(folder, name) for name in names if not name.startswith(".")]
    return sorted(files, key=lambda path: path.split(os.sep))  # as pathlib sorts: part by part


def folder_source(
    directory: str | os.PathLike, *, indices: Iterable[int] | None = None, check: bool = True
) -> ImageSource:
    """Lists a folder of images in class sub-folders, `directory/<class name>/<image files>`, as file paths.

    Class names are the sorted sub-folder names; every non-hidden file below a class folder (JPEG, PNG, GIF,
    BMP or WebP) is an example, loaded as `(height, width, 3)` uint8 RGB (alpha dropped, a GIF's first frame).
    With `check`, files that are not complete images by their first and last bytes are skipped with a warning
    and kept in `skipped`. A class with no readable image keeps its label id, so later labels do not shift.
    `indices` keeps the files at these positions of each class folder's sorted list, counted before skipping.

    Example:

    ```python
    validation = folder_source("cifar10-jpeg/train", indices=range(4500, 5000))
    ```
    """
    _check_choice("check", check, (True, False))
    root = Path(directory)
    if not root.is_dir():
        raise FileNotFoundError(f"directory {str(root)!r} is not a folder")
    class_dirs = sorted(path for path in root.iterdir() if path.is_dir() and not path.name.startswith("."))
    if not class_dirs:
        what = "it is empty" if not any(root.iterdir()) else "found none"
        raise ValueError(f"directory must hold one sub-folder per class; {what}: {str(root)!r}")

    paths, labels = [], []
    for label, class_dir in enumerate(class_dirs):
        files = _class_files(class_dir)
        if indices is not None:
            files = [files[index] for index in indices if index < len(files)]
        paths += files
        labels += [label] * len(files)

    problems = {path: problem for path in paths if (problem := _image_format_problem(path))} if check else {}
    if problems:
        examples = ", ".join(f"{path} ({problem})" for path, problem in list(problems.items())[:WARN_PATHS])
        warnings.warn(
            f"folder_source skipped {len(problems)} file(s) in {str(root)!r} that are not readable images, "
            f"e.g. {examples}",
            stacklevel=2,
        )
        labels = [label for path, label in zip(paths, labels) if path not in problems]
        paths = [path for path in paths if path not in problems]
    if not paths:
        raise ValueError(f"directory {str(root)!r} holds no readable image (indices={indices!r})")
    counts = np.bincount(np.array(labels, np.int64), minlength=len(class_dirs))
    empty = [f"{class_dirs[label].name!r} (label {label})" for label in np.flatnonzero(counts == 0)]
    if empty:
        warnings.warn(
            f"folder_source found no readable image for {len(empty)} class(es) in {str(root)!r} "
            f"(indices={indices!r}): {', '.join(empty)}; they keep their label ids so that the other classes' "
            "labels do not shift, but no example of them is served",
            stacklevel=2,
        )
    source = _in_memory(paths, labels, _read_image, [path.name for path in class_dirs])
    return dataclasses.replace(source, skipped=tuple(problems))


def array_source(images: Any, labels: Any, class_names: Iterable[str] | None = None) -> ImageSource:
    """Wraps in-memory uint8 images `(count, height, width, 3)` and int labels as an `ImageSource`.

    Example:

    >>> array_source(np.zeros((2, 8, 8, 3), np.uint8), [0, 1]).class_names
    ('0', '1')
    """
    images = np.asarray(images)
    labels = np.asarray(labels).astype(np.int32).reshape(-1)
    if images.dtype != np.uint8 or images.ndim != 4 or images.shape[-1] != 3:
        raise ValueError(
            f"images must be a uint8 array of shape (count, height, width, 3); "
            f"received {images.dtype} of shape {images.shape}"
        )
    if len(labels) != len(images):
        raise ValueError(f"labels must hold one label per image ({len(images)}); received {len(labels)}")
    if class_names is None:
        class_names = [str(label) for label in range(int(labels.max(initial=-1)) + 1)]
    import tensorflow as tf

    return _in_memory(images, labels, tf.identity, class_names)


def tfds_source(
    name: str,
    *,
    split: str = "train",
    data_dir: str | os.PathLike | None = None,
    shuffle_files: bool = False,
    seed: int | None = None,
) -> ImageSource:
    """Reads a prepared tensorflow-datasets image classification data set as encoded images.

    Nothing is downloaded: an unprepared data set raises `FileNotFoundError`. `split` is in tensorflow-datasets
    syntax (`"train[:90%]"`); `shuffle_files` reads the record files in a new order (of `seed`) every epoch.

    Example:

    ```python
    train = tfds_source("imagenette/160px", data_dir="/data/tfds", shuffle_files=True)
    ```
    """
    import tensorflow as tf
    import tensorflow_datasets as tfds

    builder = tfds.builder(name, data_dir=data_dir)
    if not builder.is_prepared():
        needs_archives = getattr(builder, "MANUAL_DOWNLOAD_INSTRUCTIONS", None)
        manual = " --manual_dir=FOLDER_WITH_THE_ARCHIVES" if needs_archives else ""
        raise FileNotFoundError(
            f"tensorflow-datasets has no prepared copy of {name!r} in {builder.data_dir}, and keras_resnet never "
            f"downloads data. Provide the files in one of these ways: run `tfds build {name} --data_dir=DIR{manual}` "
            "where the data can be fetched and pass data_dir=DIR (the same folder copied here); or put the images "
            "in class sub-folders and read them with folder_source(); for CIFAR, cifar_source() reads the python "
            "batch files."
        )
    if not builder.info.supervised_keys:
        raise ValueError(f"name must be an image classification data set with (image, label) keys; received {name!r}")
    image_key, label_key = builder.info.supervised_keys
    examples = builder.as_dataset(
        split=split,
        shuffle_files=shuffle_files,
        decoders={image_key: tfds.decode.SkipDecoding()},
        read_config=tfds.ReadConfig(shuffle_seed=seed),
    )

    def key_and_label(example):
        return example[image_key], tf.cast(example[label_key], tf.int32)

    size = builder.info.splits[split].num_examples
    return ImageSource(
        elements=examples.map(key_and_label),
        load=_decode_image,
        class_names=tuple(builder.info.features[label_key].names),
        size=size,
        shuffle_buffer=min(size, 10_000),  # the record files are shuffled already
    )


def holdout_split(source: ImageSource, fraction: float = 0.1) -> tuple[ImageSource, ImageSource]:
    """Splits a source into `(train, validation)`: the last `fraction` of each class, in stored order, validates.

    A class of two or more examples keeps at least one on each side. Streamed keys are read into memory.

    Example:

    ```python
    train, validation = holdout_split(cifar_source("cifar-10-batches-py"))
    ```
    """
    if not (_is_real(fraction) and 0 < fraction < 1):
        raise ValueError(f"fraction must be a number in (0, 1); received {fraction!r}")
    keys, labels = _keys_and_labels(source)
    label_array = np.asarray(labels)
    validates = np.zeros(len(label_array), bool)
    for label in np.unique(label_array):
        positions = np.flatnonzero(label_array == label)
        count = min(len(positions) - 1, max(1, round(len(positions) * fraction)))
        validates[positions[len(positions) - count :]] = True
    return _subset(source, keys, labels, ~validates), _subset(source, keys, labels, validates)


def take_per_class(source: ImageSource, count: int) -> ImageSource:
    """Keeps the first `count` examples of each class in stored order: a class-balanced subset for short runs.

    Example:

    ```python
    train = take_per_class(sources.train, 1000)  # CIFAR-10: 10,000 images
    ```
    """
    _check_positive("count", count)
    keys, labels = _keys_and_labels(source)
    label_array = np.asarray(labels)
    keeps = np.zeros(len(label_array), bool)
    for label in np.unique(label_array):
        keeps[np.flatnonzero(label_array == label)[:count]] = True
    return _subset(source, keys, labels, keeps)


def _keys_and_labels(source):
    """A source's `(keys, labels)` tensors in stored order; a streamed source's keys are read into memory."""
    import tensorflow as tf

    if source.tensors is not None:
        return source.tensors
    pairs = list(source.elements.as_numpy_iterator())
    return tf.constant([key for key, _ in pairs]), tf.constant([label for _, label in pairs], tf.int32)


def _subset(source, keys, labels, mask):
    """The examples of `source` where `mask` is true, in stored order, kept in memory."""
    import tensorflow as tf

    indices = np.flatnonzero(mask)
    tensors = (tf.gather(keys, indices), tf.gather(labels, indices))
    return dataclasses.replace(
        source,
        elements=tf.data.Dataset.from_tensor_slices(tensors),
        size=len(indices),
        shuffle_buffer=len(indices),
        tensors=tensors,
    )


def image_statistics(source: ImageSource, *, batch_size: int = 500) -> dict[str, np.ndarray]:
    """`normalization.pixel_statistics` of a source whose images have one size, decoding `batch_size` at a time.

    Example:

    ```python
    train = cifar_pipeline(train_source, training=True, statistics=image_statistics(train_source))
    ```
    """
    _check_positive("batch_size", batch_size)
    statistics = pixel_statistics(source.images().batch(batch_size).as_numpy_iterator())
    if statistics is None:
        raise ValueError("source must hold at least one image; received an empty source")
    return statistics
