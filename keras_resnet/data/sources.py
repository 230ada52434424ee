"""Sources: labelled image collections listed but not decoded, and their seeded, resumable epochs.

A source (`ImageSource`) is a folder of images in class sub-folders (`folder_source`), the CIFAR-10/100
python batch files read with a restricted unpickler (`cifar_source`), in-memory arrays (`array_source`) or a
prepared tensorflow-datasets data set (`tfds_source`). `holdout_split` holds out the last part of each class
for validation, `take_per_class` keeps the first examples of each class, and `image_statistics` computes the
normalisation statistics of a source.

TensorFlow (and tensorflow-datasets) are imported inside the functions.
"""

from __future__ import annotations

import dataclasses
import pickle
import random
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from keras_resnet._validation import check_choice as _check_choice
from keras_resnet._validation import check_positive_int as _check_positive

# (format, offset of the magic bytes, magic bytes, marker a complete file has near its end or b"" for none).
IMAGE_SIGNATURES = (
    ("JPEG", 0, b"\xff\xd8\xff", b"\xff\xd9"),
    ("PNG", 0, b"\x89PNG\r\n\x1a\n", b"IEND"),
    ("GIF", 0, b"GIF8", b""),
    ("BMP", 0, b"BM", b""),
    ("WebP", 8, b"WEBP", b""),
)
_TAIL_BYTES = 1024  # the end marker must lie in this many final bytes (room for trailing padding)
WARN_PATHS = 3  # how many skipped paths a warning names

# The CIFAR python versions: batch files per split, metadata file, and its class-name / label keys per label mode.
_CIFAR_LAYOUTS = {
    "cifar-10-batches-py": {
        "train": tuple(f"data_batch_{i}" for i in range(1, 6)),
        "test": ("test_batch",),
        "meta": "batches.meta",
        "modes": {"fine": (b"label_names", b"labels")},
    },
    "cifar-100-python": {
        "train": ("train",),
        "test": ("test",),
        "meta": "meta",
        "modes": {
            "fine": (b"fine_label_names", b"fine_labels"),
            "coarse": (b"coarse_label_names", b"coarse_labels"),
        },
    },
}

# The only globals a CIFAR pickle may name: what numpy arrays and dtypes are rebuilt from (numpy 1 and 2
# module paths, protocols 2 to 5), and the bytes decoder of protocol-2 pickles written by Python 3.
_PICKLE_GLOBALS = frozenset(
    {
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
        ("numpy.core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "_reconstruct"),
        ("numpy.core.multiarray", "scalar"),
        ("numpy._core.multiarray", "scalar"),
        ("numpy.core.numeric", "_frombuffer"),
        ("numpy._core.numeric", "_frombuffer"),
        ("_codecs", "encode"),
    }
)


@dataclasses.dataclass(frozen=True)
class ImageSource:
    """A labelled image collection, listed but not decoded: what the pipelines read.

    Each example is kept as a cheap *key* (a file path, encoded image bytes or a decoded array) so that a
    pipeline can shuffle keys and decode in parallel afterwards. Build one with `folder_source`,
    `cifar_source`, `array_source` or `tfds_source`.

    Attributes:
        elements: `tf.data.Dataset` of `(key, label)` pairs in a fixed order; labels are int32 class ids.
        load: function, run inside tf.data, mapping a key to a uint8 image tensor of shape `(height, width, 3)`.
        class_names: tuple of class names; the label id is the index into it.
        size: number of examples.
        shuffle_buffer: a shuffle buffer size that mixes these keys well at a reasonable memory cost (all of
            them for paths and small arrays; 10,000 for encoded images from tensorflow-datasets, whose files
            are shuffled already).
        skipped: paths of files left out because they could not be read as images.
        tensors: `(keys, labels)` arrays when the keys are in memory (paths, arrays): an epoch is then an exact
            random permutation of them; `None` for streamed keys (tensorflow-datasets), which are shuffled in
            windows of `shuffle_buffer` consecutive keys.
        decode_failures: the images that failed to decode while a pipeline read them, as they happen: a list
            of `(pass, position, name)` (the path, or `"example N"` for streamed keys), each failure once per pass.

    Example:

    ```python
    source = keras_resnet.data.folder_source("photos")  # photos/<class name>/<image files>
    print(len(source), source.class_names, source.skipped)
    for image, label in source.images().take(1):
        print(image.shape, image.dtype, label)
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

    def __len__(self):
        return self.size

    def images(self, *, shuffle=False, seed=None, shuffle_buffer=None, parallel=True):
        """Returns the decoded examples as an unbatched `tf.data.Dataset` of `(uint8 image, int32 label)`.

        An image that still fails to decode (say, a corruption the source's check could not see) does not end
        the epoch: it is left out, recorded in `decode_failures` (and the TensorFlow log), and the pass ends
        with as many images from its start, so every pass yields `len(self)` examples and Keras knows the
        number of steps. `keras_resnet.training.trainer.train` warns about them after every epoch.

        Args:
            shuffle: bool, whether to shuffle the keys (anew in every epoch) before decoding.
            seed: optional int; with it the shuffled order of every epoch is reproducible.
            shuffle_buffer: optional int, the window of consecutive keys shuffled together; defaults to
                `self.shuffle_buffer` (all the keys for paths and arrays: one random permutation).
            parallel: bool, whether to decode on all cores (`tf.data.AUTOTUNE`) or on one thread.

        Returns:
            A `tf.data.Dataset` of full-size images of shape `(height, width, 3)` and their labels.

        Example:

        ```python
        for image, label in source.images(shuffle=True, seed=0).take(2):
            print(image.shape, int(label))
        ```
        """
        if not shuffle:
            return _epoch_images(self, None, shuffle_buffer=shuffle_buffer, parallel=parallel)
        seed = _seed_or_random(seed)
        return _epoch_keys(seed, None).flat_map(
            lambda epoch: _epoch_images(
                self, _epoch_seed(seed, epoch), shuffle_buffer=shuffle_buffer, parallel=parallel
            )
        )


def _seed_or_random(seed):
    return random.SystemRandom().randrange(2**31) if seed is None else int(seed)


def _epoch_seed(seed, epoch):
    """The stateless seed of one epoch: shape `(2,)` int64, a pure function of `(seed, epoch)`."""
    import tensorflow as tf

    return tf.stack([tf.constant(seed, tf.int64), tf.cast(epoch, tf.int64)])


def _epoch_keys(seed, epochs):
    """A dataset of epoch numbers: those of `epochs`, or (None) one new random number on every pass."""
    import tensorflow as tf

    if epochs is None:
        return tf.data.Dataset.random(seed=seed, rerandomize_each_iteration=True).take(1)
    return tf.data.Dataset.range(epochs.start, epochs.stop)


def _check_epochs(epochs):
    if epochs is not None and (
        not isinstance(epochs, range) or epochs.step != 1 or not 0 <= epochs.start < epochs.stop
    ):
        raise ValueError(f"epochs must be None or a range(first, stop) with 0 <= first < stop; received {epochs!r}")


def _epoch_images(source, epoch_seed, *, shuffle_buffer=None, parallel=True):
    """One pass over a source's decoded `(image, label)` pairs, in the order of `epoch_seed` (None: stored order)."""
    import tensorflow as tf

    elements = source.elements
    window = shuffle_buffer or source.shuffle_buffer
    if epoch_seed is not None and source.tensors is not None and window >= source.size:
        keys, labels = source.tensors
        order = tf.random.experimental.stateless_shuffle(tf.range(source.size, dtype=tf.int64), epoch_seed)
        elements = tf.data.Dataset.from_tensor_slices((tf.gather(keys, order), tf.gather(labels, order)))
    elif epoch_seed is not None:

        def permute(window, pair):
            keys, labels = pair
            order = tf.random.experimental.stateless_shuffle(
                tf.range(tf.shape(labels, out_type=tf.int64)[0]),
                tf.random.experimental.stateless_fold_in(epoch_seed, window),
            )
            return tf.gather(keys, order), tf.gather(labels, order)

        elements = elements.batch(window).enumerate().map(permute).unbatch()

    def load(position, pair):
        key, label = pair
        return position, source.load(key), label

    calls = tf.data.AUTOTUNE if parallel else None
    decoded = elements.enumerate().map(load, num_parallel_calls=calls).ignore_errors(log_warning=True)
    if source.tensors is None or source.tensors[0].dtype == tf.string:  # keys that may fail to decode
        decoded = _record_failures(source, decoded, epoch_seed, elements)
    images = decoded.map(lambda position, image, label: (image, label))
    # repeat() stops at once if a whole pass yields nothing, so this cannot loop forever.
    return images.repeat().take(source.size)


def _record_failures(source, decoded, epoch_seed, elements):
    """Passes `(position, image, label)` on, appending the positions missing from it to `source.decode_failures`.

    Positions come in order, so a gap is a failed decode; an end marker at position `len(source)` shows the
    failures at the end of the pass.
    """
    import tensorflow as tf

    names = source.tensors[0] if source.tensors is not None and epoch_seed is None else None
    seen = set()

    def record(pass_id, first, stop, ordered_names):
        for position in range(int(first), int(stop)):
            if (bytes(pass_id.numpy()), position) in seen:
                continue
            seen.add((bytes(pass_id.numpy()), position))
            name = ordered_names.numpy()[position].decode() if ordered_names.shape[0] else f"example {position}"
            source.decode_failures.append((bytes(pass_id.numpy()).hex(), position, name))
        return stop

    if epoch_seed is None:
        pass_id = tf.constant(b"stored-order")
    else:
        pass_id = tf.io.serialize_tensor(epoch_seed)
    if source.tensors is not None and epoch_seed is not None:
        # The pass's order of the keys: the same permutation `_epoch_images` applied (a full one, in memory).
        ordered = elements.map(lambda key, label: key).batch(max(source.size, 1)).get_single_element()
    elif names is not None:
        ordered = names
    else:
        ordered = tf.constant([], tf.string)
    marker = tf.data.Dataset.from_tensors(
        (tf.constant(source.size, tf.int64), tf.zeros([0, 0, 3], tf.uint8), tf.constant(-1, tf.int32))
    )

    def check(last, element):
        position, image, label = element
        stop = tf.cond(
            position > last + 1,
            lambda: tf.py_function(record, [pass_id, last + 1, position, ordered], tf.int64),
            lambda: position,
        )
        return tf.maximum(stop, position), (position, image, label)

    checked = decoded.concatenate(marker).scan(tf.constant(-1, tf.int64), check)
    return checked.filter(lambda position, image, label: position < source.size)


def _decode_image(encoded):
    import tensorflow as tf

    return tf.io.decode_image(encoded, channels=3, expand_animations=False)


def _read_image(path):
    import tensorflow as tf

    return _decode_image(tf.io.read_file(path))


def _image_format_problem(path):
    """Returns why the file at `path` is not a complete image file by its bytes, or None if it looks like one."""
    try:
        with open(path, "rb") as file:
            head = file.read(16)
            if not head:
                return "empty file"
            file.seek(0, 2)
            file.seek(max(0, file.tell() - _TAIL_BYTES))
            tail = file.read()
    except OSError as error:
        return f"unreadable ({error.strerror})"
    for name, offset, magic, end_marker in IMAGE_SIGNATURES:
        if head[offset : offset + len(magic)] == magic:
            return None if end_marker in tail else f"truncated {name}"
    return "not an image file"


def _undecodable(paths):
    """Returns the paths among `paths` that TensorFlow cannot decode, decoding them all in parallel once."""
    import tensorflow as tf

    def try_decode(path):
        return path, tf.shape(_read_image(path))

    decoded = tf.data.Dataset.from_tensor_slices(tf.constant(paths, tf.string))
    decoded = decoded.map(try_decode, num_parallel_calls=tf.data.AUTOTUNE)
    readable = {path.decode() for path, _ in decoded.ignore_errors().as_numpy_iterator()}
    return [path for path in paths if path not in readable]


def folder_source(directory, *, indices=None, check="header"):
    """Lists a folder of images in class sub-folders: `directory/<class name>/<image files>`.

    Class names are the sub-folder names in sorted order; label ids follow that order. Every non-hidden file
    below a class folder, sub-folders included, is an example of that class (JPEG, PNG, GIF, BMP or WebP);
    hidden files and folders (`.DS_Store`, `.ipynb_checkpoints/`) are ignored and not counted. Every image
    loads as `(height, width, 3)` uint8 RGB:

    - grayscale (with or without alpha): the grey value in all three channels (77 becomes (77, 77, 77));
    - RGBA: the alpha channel is dropped, not composited: the stored colour is kept even where transparent;
    - palette images: the palette colours;
    - CMYK JPEG: converted to RGB by the JPEG decoder (Adobe inverted CMYK, as Photoshop and Pillow write it);
    - 16-bit PNG: the high byte, `value // 256`, so 0..65535 maps onto 0..255;
    - animated GIF: the first frame.

    Files that cannot be read as images (empty, truncated, not an image) are skipped, kept in `skipped` and
    reported in one warning with their count and the first few paths (with what is wrong with each), so they
    never end an epoch and never take a label.

    A class folder left with no readable image (empty, only non-image files, or no file at `indices`) keeps
    its label id, with a warning naming it: dropping it would silently shift the label ids of every later
    class, and of the classes of another split listed from a folder where it is not empty. The label stays
    in `class_names` and the output layer, but no example of it is served.

    Args:
        directory: path of the folder.
        indices: optional iterable of ints (e.g. `range(4500, 5000)`): keep only the files at these positions
            in each class folder's sorted file list, counted before any file is skipped. Positions past the end
            of a class are ignored. This builds index-based splits such as the CIFAR-10 JPEG protocol (0-4499
            train, 4500-4999 validation). `None` keeps every file.
        check: how to find unreadable files before training: `"header"` (default) reads the first bytes and
            the end of each file, which catches empty, non-image and truncated files at little cost;
            `"decode"` also decodes every image once in parallel, which catches any corruption TensorFlow
            rejects; `None` checks nothing (a bad file is still skipped during training, with a log warning).

    Returns:
        An `ImageSource` of file paths.

    Raises:
        FileNotFoundError: `directory` is not a folder.
        ValueError: `directory` holds no class sub-folder (for example, it is empty), or no readable image at
            all; the message names the directory.

    Example:

    ```python
    train = keras_resnet.data.folder_source("cifar10-jpeg/train", indices=range(0, 4500))
    validation = keras_resnet.data.folder_source("cifar10-jpeg/train", indices=range(4500, 5000))
    ```
    """
    _check_choice("check", check, ("header", "decode", None))
    root = Path(directory)
    if not root.is_dir():
        raise FileNotFoundError(f"directory {str(root)!r} is not a folder")
    class_dirs = sorted(path for path in root.iterdir() if path.is_dir() and not path.name.startswith("."))
    if not class_dirs:
        what = "it is empty" if not any(root.iterdir()) else "found none"
        raise ValueError(f"directory must hold one sub-folder per class; {what}: {str(root)!r}")

    paths, labels = [], []
    for label, class_dir in enumerate(class_dirs):
        files = sorted(
            path
            for path in class_dir.rglob("*")
            if path.is_file() and not any(part.startswith(".") for part in path.relative_to(class_dir).parts)
        )
        if indices is not None:
            files = [files[index] for index in indices if index < len(files)]
        paths += [str(path) for path in files]
        labels += [label] * len(files)

    problems = {}
    if check:
        problems = {path: problem for path in paths if (problem := _image_format_problem(path))}
    if check == "decode":
        problems.update(dict.fromkeys(_undecodable([path for path in paths if path not in problems]), "undecodable"))
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

    import tensorflow as tf

    tensors = (tf.constant(paths, tf.string), tf.constant(labels, tf.int32))
    return ImageSource(
        elements=tf.data.Dataset.from_tensor_slices(tensors),
        load=_read_image,
        class_names=tuple(path.name for path in class_dirs),
        size=len(paths),
        shuffle_buffer=len(paths),
        skipped=tuple(problems),
        tensors=tensors,
    )


def array_source(images, labels, class_names=None):
    """Wraps in-memory images and labels as an `ImageSource`.

    Args:
        images: uint8 array of shape `(count, height, width, 3)`.
        labels: int array of shape `(count,)`.
        class_names: optional sequence of names; defaults to `"0"`, `"1"`, ... up to the largest label.

    Returns:
        An `ImageSource` whose keys are the images themselves.

    Example:

    ```python
    (x, y), _ = keras.datasets.cifar10.load_data()
    source = keras_resnet.data.array_source(x, y.ravel())
    ```
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

    tensors = (tf.constant(images), tf.constant(labels))
    return ImageSource(
        elements=tf.data.Dataset.from_tensor_slices(tensors),
        load=tf.identity,
        class_names=tuple(class_names),
        size=len(images),
        shuffle_buffer=len(images),
        tensors=tensors,
    )


class _ArrayUnpickler(pickle.Unpickler):
    """Unpickles plain containers, numbers, strings and numpy arrays; refuses every other global."""

    def find_class(self, module, name):
        if (module, name) not in _PICKLE_GLOBALS:
            raise pickle.UnpicklingError(
                f"refusing to load global '{module}.{name}': CIFAR batch files may only hold plain "
                "containers and numpy arrays, and a data file is never allowed to run code"
            )
        return super().find_class(module, name)


def _load_cifar_pickle(path, required_keys):
    with open(path, "rb") as file:
        try:
            content = _ArrayUnpickler(file, encoding="bytes").load()
        except pickle.UnpicklingError as error:
            raise pickle.UnpicklingError(f"{path}: {error}") from None
    if not isinstance(content, dict) or not set(required_keys) <= set(content):
        raise ValueError(f"{path} is not a CIFAR batch file: expected a dict with keys {sorted(required_keys)}")
    return content


def _cifar_folder(root, layout_names):
    """Returns `(folder, layout)` of the CIFAR batch files in `root` or its archive sub-folder, or None."""
    for name in layout_names:
        layout = _CIFAR_LAYOUTS[name]
        for candidate in (root, root / name):
            if (candidate / layout["meta"]).is_file():
                return candidate, layout
    return None


def cifar_source(directory, *, split="train", label_mode="fine"):
    """Reads the CIFAR-10 or CIFAR-100 python batch files.

    The files are the ones in the official "python version" archives: `data_batch_1` ... `data_batch_5`,
    `test_batch` and `batches.meta` (CIFAR-10) or `train`, `test` and `meta` (CIFAR-100). They are read with a
    restricted unpickler that accepts only plain containers and numpy arrays, so a crafted file cannot run
    code; it is refused with `pickle.UnpicklingError`.

    Args:
        directory: the folder holding the batch files, or its parent (the folder the archive was extracted
            into, holding `cifar-10-batches-py` or `cifar-100-python`).
        split: `"train"` (50,000 images) or `"test"` (10,000 images).
        label_mode: CIFAR-100 only: `"fine"` (100 classes) or `"coarse"` (20 super-classes).

    Returns:
        An `ImageSource` of in-memory 32x32 images, class names from the metadata file.

    Example:

    ```python
    train = keras_resnet.data.cifar_source("~/data/cifar-10-batches-py")
    test = keras_resnet.data.cifar_source("~/data/cifar-10-batches-py", split="test")
    ```
    """
    _check_choice("split", split, ("train", "test"))
    root = Path(directory).expanduser()
    found = _cifar_folder(root, _CIFAR_LAYOUTS)
    if found is None:
        raise FileNotFoundError(
            f"directory {str(root)!r} holds no CIFAR python batch files: expected batches.meta and "
            "data_batch_1..5, test_batch (CIFAR-10) or meta, train, test (CIFAR-100), or a sub-folder "
            f"{' or '.join(_CIFAR_LAYOUTS)}"
        )
    batch_folder, layout = found
    _check_choice("label_mode", label_mode, tuple(layout["modes"]))
    names_key, labels_key = layout["modes"][label_mode]

    meta = _load_cifar_pickle(batch_folder / layout["meta"], {names_key})
    batches = [_load_cifar_pickle(batch_folder / name, {b"data", labels_key}) for name in layout[split]]
    data = np.concatenate([np.asarray(batch[b"data"], np.uint8) for batch in batches])
    images = data.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)
    labels = np.concatenate([np.asarray(batch[labels_key]) for batch in batches])
    class_names = [name.decode() if isinstance(name, bytes) else name for name in meta[names_key]]
    return array_source(images, labels, class_names)


def tfds_source(name, *, split="train", data_dir=None, shuffle_files=False, seed=None):
    """Reads a prepared tensorflow-datasets image classification data set, never downloading anything.

    If the data set is not prepared in `data_dir`, this fails at once with a `FileNotFoundError` that says how
    to provide the files. Images stay encoded in the source and are decoded by the pipelines.

    Args:
        name: the tensorflow-datasets name, e.g. `"cifar10"`, `"cifar100"`, `"imagenet2012"`, `"imagenette"`.
        split: the split, in tensorflow-datasets syntax (`"train"`, `"validation"`, `"train[:90%]"`, ...).
        data_dir: optional folder of prepared data sets; defaults to tensorflow-datasets' own
            (`~/tensorflow_datasets` or `$TFDS_DATA_DIR`).
        shuffle_files: bool, whether to read the record files in a new random order in every epoch (for
            training).
        seed: optional int seed for the file order.

    Returns:
        An `ImageSource` of encoded images.

    Example:

    ```python
    train = keras_resnet.data.tfds_source("imagenette/160px", data_dir="/data/tfds", shuffle_files=True)
    validation = keras_resnet.data.tfds_source("imagenette/160px", split="validation", data_dir="/data/tfds")
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
        shuffle_buffer=min(size, 10_000),
    )


def holdout_split(source, fraction=0.1):
    """Splits a source into training and validation sources, deterministically and class by class.

    The last `fraction` of each class's examples, in the source's stored order, validate; the others train
    (at least one example of a class with two or more validates, and at least one trains). On the 50,000
    CIFAR training images with `fraction=0.1` that is 45,000 / 5,000, the last 500 images of each CIFAR-10
    class: the paper's protocol for choosing checkpoints without looking at the test set (and the CIFAR-10
    JPEG folder's 4500-4999). A streamed source (tensorflow-datasets) has its keys read into memory first.

    Args:
        source: an `ImageSource`.
        fraction: float in (0, 1), the share of each class that validates.

    Returns:
        A tuple `(train, validation)` of `ImageSource`s with the source's class names.

    Example:

    ```python
    train, validation = keras_resnet.data.holdout_split(keras_resnet.data.cifar_source("cifar-10-batches-py"))
    len(train), len(validation)  # 45000, 5000
    ```
    """
    if isinstance(fraction, bool) or not isinstance(fraction, (int, float)) or not 0 < fraction < 1:
        raise ValueError(f"fraction must be a number in (0, 1); received {fraction!r}")
    keys, labels = _keys_and_labels(source)
    label_array = np.asarray(labels)
    validates = np.zeros(len(label_array), bool)
    for label in np.unique(label_array):
        positions = np.flatnonzero(label_array == label)
        count = min(len(positions) - 1, max(1, round(len(positions) * fraction)))
        validates[positions[len(positions) - count :]] = True
    return _subset(source, keys, labels, ~validates), _subset(source, keys, labels, validates)


def take_per_class(source, count):
    """Keeps the first `count` examples of each class, in the source's stored order: a class-balanced subset.

    A class with fewer examples keeps all of them. Use it for short runs on a fixed part of a data set, e.g. the
    first 1,000 training and first 100 validation images of each CIFAR-10 class. A streamed source
    (tensorflow-datasets) has its keys read into memory first.

    Args:
        source: an `ImageSource`.
        count: positive int, examples kept per class.

    Returns:
        An `ImageSource` with the source's class names.

    Example:

    ```python
    sources = keras_resnet.data.dataset_sources("cifar10", data_dir="~/data")
    train = keras_resnet.data.take_per_class(sources.train, 1000)  # 10,000 images, 1,000 of each class
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
    """The examples of `source` where the boolean array `mask` is true, in stored order, as an in-memory source."""
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


def image_statistics(source, *, batch_size=500):
    """Computes the per-pixel mean and the per-channel mean and standard deviation of a source in one pass.

    Compute them on the training set only, and pass them to `cifar_pipeline` for training and evaluation.

    Args:
        source: an `ImageSource` whose images all have the same size (e.g. CIFAR).
        batch_size: int, how many images are decoded and summed at a time.

    Returns:
        A dict of float32 arrays on the 0-255 scale: `"pixel_mean"` of shape `(height, width, 3)`,
        `"channel_mean"` and `"channel_std"` of shape `(3,)`.

    Example:

    ```python
    statistics = keras_resnet.data.image_statistics(train_source)
    train = keras_resnet.data.cifar_pipeline(train_source, training=True, statistics=statistics)
    ```
    """
    _check_positive("batch_size", batch_size)
    count, total, squares = 0, 0.0, 0.0
    for images, _ in source.images().batch(batch_size).as_numpy_iterator():
        images = images.astype(np.float64)
        count += len(images)
        total = total + images.sum(axis=0)
        squares = squares + (images**2).sum(axis=0)
    pixel_mean = total / count
    channel_mean = pixel_mean.mean(axis=(0, 1))
    channel_variance = (squares / count).mean(axis=(0, 1)) - channel_mean**2
    return {
        "pixel_mean": pixel_mean.astype(np.float32),
        "channel_mean": channel_mean.astype(np.float32),
        "channel_std": np.sqrt(channel_variance).astype(np.float32),
    }
