"""Input pipelines: labelled image sources and the paper's tf.data training and evaluation pipelines.

A *source* (`ImageSource`) lists a labelled image collection without decoding it: a folder of images in class
sub-folders (`folder_source`), the CIFAR-10/100 python batch files (`cifar_source`), in-memory arrays
(`array_source`) or a prepared tensorflow-datasets data set (`tfds_source`). A *pipeline* turns a source into
batches of `(float32 images, int32 labels)` for `model.fit` / `model.evaluate` on any Keras backend:

- `cifar_pipeline`: 4-pixel zero padding, random 32x32 crop and horizontal flip for training (He et al. 2015,
  section 4.2), then per-pixel mean subtraction (the paper) or per-channel standardisation.
- `imagenet_pipeline`: scale augmentation (shorter side sampled in [256, 480]), random 224x224 crop, flip and
  optional AlexNet PCA lighting noise for training (section 3.4); resize-256 centre crop for evaluation.

Pipelines shuffle the cheap keys (paths, encoded bytes), decode and augment in parallel, batch and prefetch,
with `tf.data.AUTOTUNE`. The order and the augmentation of an epoch are a pure function of `(seed, epoch)`:
stateless shuffles and stateless `tf.image` ops whose per-element seeds are folded from the epoch's seed. So a
seeded pipeline gives identical batches on every run and different ones in every epoch, and a pipeline built
for `epochs=range(first, stop)` serves exactly the batches that epochs `first`.. of an uninterrupted run saw
(exact resume).
`cifar10`, `cifar100`, `imagenet` and `folder` build a (train, evaluation) pair in one call; `holdout_split`
holds out the last part of each class of a source for validation (CIFAR's 45k / 5k protocol).

TensorFlow (and tensorflow-datasets) are imported inside the functions: importing this module needs neither.
"""

from __future__ import annotations

import dataclasses
import math
import os
import pickle
import random
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from keras_resnet._validation import check_choice as _check_choice
from keras_resnet._validation import check_positive_int as _check_positive

IMAGENET_MEAN = (123.68, 116.779, 103.939)
"""Mean RGB value of the ImageNet training images, 0-255 scale (the mean of the original Caffe models)."""

# AlexNet's PCA lighting noise: eigenvalues and eigenvectors (columns) of the covariance of ImageNet RGB pixel
# values on the 0-1 scale, the figures used by fb.resnet.torch.
_PCA_EIGENVALUES = (0.2175, 0.0188, 0.0045)
_PCA_EIGENVECTORS = (
    (-0.5675, 0.7192, 0.4009),
    (-0.5808, -0.0045, -0.8140),
    (-0.5836, -0.6948, 0.4203),
)

# (format, offset of the magic bytes, magic bytes, marker a complete file has near its end or b"" for none).
_IMAGE_SIGNATURES = (
    ("JPEG", 0, b"\xff\xd8\xff", b"\xff\xd9"),
    ("PNG", 0, b"\x89PNG\r\n\x1a\n", b"IEND"),
    ("GIF", 0, b"GIF8", b""),
    ("BMP", 0, b"BM", b""),
    ("WebP", 8, b"WEBP", b""),
)
_TAIL_BYTES = 1024  # the end marker must lie in this many final bytes (room for trailing padding)
_WARN_PATHS = 3  # how many skipped paths a warning names

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


def _check_size(name, value):
    """A positive integer size, numpy integers accepted, as a Python int."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{name} must be a positive integer; received {value!r}")
    return int(value)


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
    tensors: Any = None
    decode_failures: list = dataclasses.field(default_factory=list, init=False, compare=False, repr=False)

    def __len__(self):
        return self.size

    def images(self, *, shuffle=False, seed=None, shuffle_buffer=None, parallel=True):
        """Returns the decoded examples as an unbatched `tf.data.Dataset` of `(uint8 image, int32 label)`.

        An image that still fails to decode (say, a corruption the source's check could not see) does not end
        the epoch: it is left out, recorded in `decode_failures` (and the TensorFlow log), and the pass ends
        with as many images from its start, so every pass yields `len(self)` examples and Keras knows the
        number of steps. `keras_resnet.training.train` warns about them after every epoch.

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
            lambda epoch: _epoch_images(self, _epoch_seed(seed, epoch), shuffle_buffer=shuffle_buffer, parallel=parallel)
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
    if epochs is not None and (not isinstance(epochs, range) or epochs.step != 1 or not 0 <= epochs.start < epochs.stop):
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
                tf.range(tf.shape(labels, out_type=tf.int64)[0]), tf.random.experimental.stateless_fold_in(epoch_seed, window)
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
        (tf.constant(source.size, tf.int64), tf.zeros([0, 0, 3], tf.uint8), tf.constant(-1, tf.int32)))

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
    for name, offset, magic, end_marker in _IMAGE_SIGNATURES:
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
        examples = ", ".join(f"{path} ({problem})" for path, problem in list(problems.items())[:_WARN_PATHS])
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
    import tensorflow as tf

    if isinstance(fraction, bool) or not isinstance(fraction, (int, float)) or not 0 < fraction < 1:
        raise ValueError(f"fraction must be a number in (0, 1); received {fraction!r}")
    if source.tensors is not None:
        keys, labels = source.tensors
    else:
        pairs = list(source.elements.as_numpy_iterator())
        keys, labels = tf.constant([key for key, _ in pairs]), tf.constant([label for _, label in pairs], tf.int32)
    label_array = np.asarray(labels)
    validates = np.zeros(len(label_array), bool)
    for label in np.unique(label_array):
        positions = np.flatnonzero(label_array == label)
        count = min(len(positions) - 1, max(1, round(len(positions) * fraction)))
        validates[positions[len(positions) - count :]] = True

    def subset(mask):
        indices = np.flatnonzero(mask)
        tensors = (tf.gather(keys, indices), tf.gather(labels, indices))
        return dataclasses.replace(
            source, elements=tf.data.Dataset.from_tensor_slices(tensors), size=len(indices),
            shuffle_buffer=len(indices), tensors=tensors,
        )

    return subset(~validates), subset(validates)


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


def normalizer(mean, std=None, *, channel_order="rgb"):
    """Returns a function that standardises batches of RGB images: `(images - mean) / std`, channels reordered.

    It wraps a `keras.layers.Normalization` layer and works inside tf.data. The presets of common pretrained
    weights: keras.applications ResNet ("caffe"): `normalizer(IMAGENET_MEAN, channel_order="bgr")`;
    torchvision: `normalizer((123.675, 116.28, 103.53), (58.395, 57.12, 57.375))`.

    Args:
        mean: per-channel mean of shape `(3,)` or per-pixel mean of shape `(height, width, 3)`, RGB order, on
            the scale of the images (0-255 for the pipelines here).
        std: optional standard deviation broadcastable to `mean`'s shape (a scalar, per channel or per pixel);
            `None` divides by 1.
        channel_order: `"rgb"` keeps the channel order; `"bgr"` reverses it after standardising.

    Returns:
        A function mapping float32 images of shape `(batch, height, width, 3)` to standardised float32 images.

    Example:

    ```python
    normalize = keras_resnet.data.normalizer(keras_resnet.data.IMAGENET_MEAN)
    normalize(np.full((1, 224, 224, 3), 128.0, np.float32))[0, 0, 0]  # [4.32, 11.221, 24.061]
    ```
    """
    import keras

    _check_choice("channel_order", channel_order, ("rgb", "bgr"))
    mean = np.asarray(mean, np.float32)
    if mean.shape[-1:] != (3,) or mean.ndim not in (1, 3):
        raise ValueError(f"mean must have shape (3,) or (height, width, 3); received shape {mean.shape}")
    std = np.broadcast_to(np.float32(1.0) if std is None else np.asarray(std, np.float32), mean.shape)
    layer = keras.layers.Normalization(
        axis=tuple(range(-mean.ndim, 0)), mean=mean, variance=std**2, dtype="float32"
    )
    layer.build((None,) * (4 - mean.ndim) + mean.shape)

    def normalize(images):
        images = layer(images)
        return images[..., ::-1] if channel_order == "bgr" else images

    return normalize


def resize_shorter_side(image, size):
    """Resizes an image so that its shorter side is `size` pixels, keeping its aspect ratio.

    The longer side becomes `round(longer * size / shorter)`. Bilinear resampling, antialiased when shrinking;
    an image whose shorter side is already `size` comes back unchanged.

    Args:
        image: tensor of shape `(height, width, channels)`, any real dtype.
        size: positive int or int32 scalar tensor, the new length of the shorter side.

    Returns:
        A float32 tensor of shape `(new_height, new_width, channels)`.

    Raises:
        ValueError: `size` is not a positive integer (a bool, float, zero or negative).

    Example:

    ```python
    keras_resnet.data.resize_shorter_side(tf.zeros((375, 500, 3)), 256).shape  # (256, 341, 3)
    ```
    """
    import tensorflow as tf

    if not tf.is_tensor(size):  # a tensor's value is known only at run time
        size = _check_size("size", size)
    shape = tf.cast(tf.shape(image)[:2], tf.float32)
    scale = tf.cast(size, tf.float32) / tf.reduce_min(shape)
    new_shape = tf.cast(tf.round(shape * scale), tf.int32)
    # Antialiasing only changes downscaling, and without it bilinear resizing runs about 3 times faster.
    return tf.cond(
        scale < 1,
        lambda: tf.image.resize(image, new_shape, antialias=True),
        lambda: tf.image.resize(image, new_shape),
    )


def center_crop(image, size):
    """Crops the central `size` x `size` square of an image.

    The crop starts at row `(height - size) // 2` and column `(width - size) // 2`.

    Args:
        image: tensor of shape `(height, width, channels)`, both sides at least `size`.
        size: positive int (or int32 scalar tensor), the side of the crop.

    Returns:
        A tensor of shape `(size, size, channels)`, same dtype as `image`.

    Raises:
        ValueError: `size` is not a positive integer, or exceeds a side of an image whose shape is known.

    Example:

    ```python
    keras_resnet.data.center_crop(tf.zeros((256, 341, 3)), 224).shape  # (224, 224, 3)
    ```
    """
    import tensorflow as tf

    if not tf.is_tensor(size):  # a tensor's value is known only at run time
        size = _check_size("size", size)
        shape = tf.TensorShape(image.shape if hasattr(image, "shape") else np.shape(image))
        sides = [side for side in (shape[:2] if shape.rank else ()) if side is not None]
        if sides and size > min(sides):
            raise ValueError(
                f"size must be at most the image's shorter side ({min(sides)}) for an image of shape "
                f"{tuple(shape)}; received {size!r}"
            )
    shape = tf.shape(image)
    return tf.image.crop_to_bounding_box(image, (shape[0] - size) // 2, (shape[1] - size) // 2, size, size)


def _lighting(image, std, seed):
    """Adds AlexNet's PCA lighting noise: one random RGB shift along the ImageNet colour eigenvectors."""
    import tensorflow as tf

    alpha = tf.random.stateless_normal([3], seed, stddev=std)
    shift = tf.linalg.matvec(tf.constant(_PCA_EIGENVECTORS), alpha * tf.constant(_PCA_EIGENVALUES))
    return image + 255.0 * shift


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
        images = _epoch_images(source, epoch_seed if training else None, shuffle_buffer=shuffle_buffer, parallel=parallel)
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
    dataset = dataset.with_options(options)
    dataset.class_names = source.class_names
    return dataset


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

    Returns:
        A `tf.data.Dataset` of `(images, labels)`: float32 `(batch, image_size, image_size, 3)` and int32
        `(batch,)`, with the source's `class_names` attribute.

    Example:

    ```python
    train_source = keras_resnet.data.cifar_source("cifar-10-batches-py")
    statistics = keras_resnet.data.image_statistics(train_source)
    train = keras_resnet.data.cifar_pipeline(train_source, training=True, statistics=statistics, seed=0)
    model.fit(train, epochs=2)
    ```
    """
    import tensorflow as tf

    _check_choice("normalization", normalization, ("pixel", "channel", None))
    _check_positive("image_size", image_size)
    if isinstance(padding, bool) or not isinstance(padding, int) or padding < 0:
        raise ValueError(f"padding must be a non-negative integer; received {padding!r}")
    if normalization is None:
        normalize = normalizer(np.zeros(3), 255.0)
    elif statistics is None:
        raise ValueError(
            f"statistics must be given for normalization={normalization!r}; received None. "
            "Compute them on the training source: statistics=image_statistics(train_source)"
        )
    elif normalization == "pixel":
        pixel_mean = np.asarray(statistics["pixel_mean"])
        if pixel_mean.shape != (image_size, image_size, 3):
            raise ValueError(
                f"statistics['pixel_mean'] must have shape ({image_size}, {image_size}, 3) for "
                f"image_size={image_size}; received shape {pixel_mean.shape}"
            )
        normalize = normalizer(pixel_mean, 255.0)
    else:
        normalize = normalizer(statistics["channel_mean"], statistics["channel_std"])

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
        source, augment, normalize, training=training, batch_size=batch_size, seed=seed,
        shuffle_buffer=shuffle_buffer, parallel=parallel, epochs=epochs,
    )


def imagenet_pipeline(
    source,
    *,
    training,
    batch_size=256,
    image_size=224,
    scale_range=(256, 480),
    resize_size=256,
    mean=IMAGENET_MEAN,
    std=None,
    channel_order="rgb",
    lighting_std=0.0,
    seed=None,
    shuffle_buffer=None,
    parallel=True,
    epochs=None,
):
    """Builds the ImageNet training or evaluation pipeline of the paper (section 3.4).

    Training: shuffle, resize so the shorter side is a random integer in `scale_range` (scale augmentation),
    take a random `image_size` square crop, flip horizontally with probability 1/2, optionally add AlexNet's
    PCA lighting noise. Evaluation: resize the shorter side to `resize_size` and take the centre
    `image_size` crop (see `keras_resnet.evaluation` for 10-crop and multi-scale testing). Both then subtract
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
    normalize = normalizer(mean, std, channel_order=channel_order)

    def augment(image, seed):
        if not training:
            return center_crop(resize_shorter_side(image, resize_size), image_size)
        scale_seed, crop_seed, flip_seed, lighting_seed = tf.unstack(
            tf.random.experimental.stateless_split(seed, 4)
        )
        size = tf.random.stateless_uniform([], scale_seed, low, high + 1, dtype=tf.int32)
        image = tf.image.stateless_random_crop(resize_shorter_side(image, size), [image_size, image_size, 3], crop_seed)
        image = tf.image.stateless_random_flip_left_right(image, flip_seed)
        return _lighting(image, lighting_std, lighting_seed) if lighting_std else image

    return _pipeline(
        source, augment, normalize, training=training, batch_size=batch_size, seed=seed,
        shuffle_buffer=shuffle_buffer, parallel=parallel, epochs=epochs,
    )


def _train_and_evaluation(train_source, *evaluation_sources, augmentation, batch_size, seed, options, epochs=None):
    """Builds the training and evaluation pipelines of one augmentation, statistics from the training source.

    Returns the training pipeline and one evaluation pipeline per evaluation source (`None` for `None`).
    """
    _check_choice("augmentation", augmentation, ("cifar", "imagenet"))
    if augmentation == "cifar":
        build = cifar_pipeline
        if options.get("normalization", "pixel") is not None and "statistics" not in options:
            options = {**options, "statistics": image_statistics(train_source)}
    else:
        build = imagenet_pipeline
    return (
        build(train_source, training=True, batch_size=batch_size, seed=seed, epochs=epochs, **options),
        *(None if source is None else build(source, training=False, batch_size=batch_size, **options)
          for source in evaluation_sources),
    )


def _cifar(classes, batch_size, data_dir, seed, options):
    """The CIFAR train and test pipelines, from python batch files in `data_dir` or from tensorflow-datasets."""
    layout = "cifar-10-batches-py" if classes == 10 else "cifar-100-python"
    if data_dir is not None and _cifar_folder(Path(data_dir).expanduser(), [layout]):
        sources = [cifar_source(data_dir, split=split) for split in ("train", "test")]
    else:
        sources = [
            tfds_source(f"cifar{classes}", split="train", data_dir=data_dir, shuffle_files=True, seed=seed),
            tfds_source(f"cifar{classes}", split="test", data_dir=data_dir),
        ]
    return _train_and_evaluation(*sources, augmentation="cifar", batch_size=batch_size, seed=seed, options=options)


def cifar10(batch_size=128, data_dir=None, *, seed=None, **options):
    """Builds the CIFAR-10 training and test pipelines, with statistics from the training set.

    Reads the python batch files if `data_dir` holds them (or their `cifar-10-batches-py` folder), else the
    tensorflow-datasets copy prepared in `data_dir`; nothing is downloaded (see `tfds_source`).

    Args:
        batch_size: int, images per batch.
        data_dir: optional folder of the batch files or of prepared tensorflow-datasets data.
        seed: optional int for reproducible shuffling and augmentation.
        **options: further arguments of `cifar_pipeline` (e.g. `normalization="channel"`).

    Returns:
        A tuple `(train, test)` of `cifar_pipeline` datasets.

    Example:

    ```python
    train, test = keras_resnet.data.cifar10(batch_size=128, data_dir="~/data", seed=0)
    model.fit(train, validation_data=test, epochs=164)
    ```
    """
    return _cifar(10, batch_size, data_dir, seed, options)


def cifar100(batch_size=128, data_dir=None, *, seed=None, **options):
    """Builds the CIFAR-100 training and test pipelines (100 fine labels): `cifar10` for CIFAR-100.

    Args:
        batch_size: as in `cifar10`.
        data_dir: as in `cifar10`, with the `cifar-100-python` files or a prepared `cifar100`.
        seed: as in `cifar10`.
        **options: as in `cifar10`.

    Returns:
        A tuple `(train, test)` of `cifar_pipeline` datasets.

    Example:

    ```python
    train, test = keras_resnet.data.cifar100(data_dir="~/data/cifar-100-python", seed=0)
    ```
    """
    return _cifar(100, batch_size, data_dir, seed, options)


def imagenet(batch_size=256, data_dir=None, *, name="imagenet2012", seed=None, **options):
    """Builds the ImageNet-style training and validation pipelines from a prepared tensorflow-datasets copy.

    Args:
        batch_size: int, images per batch.
        data_dir: optional folder of prepared tensorflow-datasets data; nothing is downloaded (see
            `tfds_source`).
        name: the tensorflow-datasets name (`"imagenet2012"`, `"imagenette/320px"`, ...), with `train` and
            `validation` splits.
        seed: optional int for reproducible shuffling and augmentation.
        **options: further arguments of `imagenet_pipeline` (e.g. `lighting_std=0.1`).

    Returns:
        A tuple `(train, validation)` of `imagenet_pipeline` datasets.

    Example:

    ```python
    train, validation = keras_resnet.data.imagenet(data_dir="/data/tfds", seed=0)
    ```
    """
    train = tfds_source(name, split="train", data_dir=data_dir, shuffle_files=True, seed=seed)
    validation = tfds_source(name, split="validation", data_dir=data_dir)
    return _train_and_evaluation(
        train, validation, augmentation="imagenet", batch_size=batch_size, seed=seed, options=options
    )


def folder(
    directory,
    *,
    train_indices,
    validation_indices,
    batch_size=128,
    augmentation="cifar",
    check="header",
    seed=None,
    **options,
):
    """Splits one folder of images in class sub-folders by position and builds training and validation pipelines.

    Each class folder's files are sorted; the files at `train_indices` train and those at `validation_indices`
    validate (positions counted before unreadable files are skipped). For the CIFAR-10 JPEG folder the paper's
    protocol is `train_indices=range(0, 4500), validation_indices=range(4500, 5000)`.

    Args:
        directory: path of the folder (`directory/<class name>/<image files>`).
        train_indices: iterable of ints, positions of the training files in each class.
        validation_indices: iterable of ints, positions of the validation files in each class.
        batch_size: int, images per batch.
        augmentation: `"cifar"` (`cifar_pipeline`, statistics computed from the training files, which decodes
            them once) or `"imagenet"` (`imagenet_pipeline`).
        check: how to find unreadable files, see `folder_source`.
        seed: optional int for reproducible shuffling and augmentation.
        **options: further arguments of the chosen pipeline.

    Returns:
        A tuple `(train, validation)` of datasets of the chosen pipeline.

    Example:

    ```python
    train, validation = keras_resnet.data.folder(
        "../shared/data/cifar10-jpeg/train",
        train_indices=range(0, 4500),
        validation_indices=range(4500, 5000),
        seed=0,
    )
    print(train.class_names)
    ```
    """
    train = folder_source(directory, indices=train_indices, check=check)
    validation = folder_source(directory, indices=validation_indices, check=check)
    return _train_and_evaluation(
        train, validation, augmentation=augmentation, batch_size=batch_size, seed=seed, options=options
    )
