"""The CIFAR-10/100 python batch files, read with an unpickler that refuses to run code."""

from __future__ import annotations

import os
import pickle
from pathlib import Path

import numpy as np

from keras_resnet._validation import check_choice as _check_choice
from keras_resnet.data.sources import ImageSource, array_source

CIFAR_FOLDERS = {"cifar10": "cifar-10-batches-py", "cifar100": "cifar-100-python"}
"""The folder of each CIFAR data set's python batch files in its official archive."""

# Per archive folder: batch files per split, metadata file, and its (class names, labels) keys per label mode.
_LAYOUTS = {
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
PICKLE_GLOBALS = frozenset(
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


class _ArrayUnpickler(pickle.Unpickler):
    def find_class(self, module, name):
        if (module, name) not in PICKLE_GLOBALS:
            raise pickle.UnpicklingError(
                f"refusing to load global '{module}.{name}': CIFAR batch files may only hold plain "
                "containers and numpy arrays, and a data file is never allowed to run code"
            )
        return super().find_class(module, name)


def _load_pickle(path, required_keys):
    with open(path, "rb") as file:
        try:
            content = _ArrayUnpickler(file, encoding="bytes").load()
        except pickle.UnpicklingError as error:
            raise pickle.UnpicklingError(f"{path}: {error}") from None
    if not isinstance(content, dict) or not set(required_keys) <= set(content):
        raise ValueError(f"{path} is not a CIFAR batch file: expected a dict with keys {sorted(required_keys)}")
    return content


def find_cifar_folder(root: str | os.PathLike, folders=tuple(_LAYOUTS)) -> tuple[Path, dict] | None:
    """`(folder, layout)` of the batch files of one of `folders` in `root` or its sub-folder of that name."""
    root = Path(root).expanduser()
    for name in folders:
        layout = _LAYOUTS[name]
        for candidate in (root, root / name):
            if (candidate / layout["meta"]).is_file():
                return candidate, layout
    return None


def cifar_source(directory: str | os.PathLike, *, split: str = "train", label_mode: str = "fine") -> ImageSource:
    """Reads the CIFAR-10 or CIFAR-100 python batch files ("python version" of the official archives).

    A file that names any global other than numpy's array builders is refused with `pickle.UnpicklingError`:
    a data file never runs code.

    Args:
        directory: the folder of the batch files, or the folder the archive was extracted into.
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
    found = find_cifar_folder(root)
    if found is None:
        raise FileNotFoundError(
            f"directory {str(root)!r} holds no CIFAR python batch files: expected batches.meta and "
            "data_batch_1..5, test_batch (CIFAR-10) or meta, train, test (CIFAR-100), or a sub-folder "
            f"{' or '.join(_LAYOUTS)}"
        )
    folder, layout = found
    _check_choice("label_mode", label_mode, tuple(layout["modes"]))
    names_key, labels_key = layout["modes"][label_mode]
    meta = _load_pickle(folder / layout["meta"], {names_key})
    batches = [_load_pickle(folder / name, {b"data", labels_key}) for name in layout[split]]
    data = np.concatenate([np.asarray(batch[b"data"], np.uint8) for batch in batches])
    labels = np.concatenate([np.asarray(batch[labels_key]) for batch in batches])
    class_names = [name.decode() if isinstance(name, bytes) else name for name in meta[names_key]]
    return array_source(data.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1), labels, class_names)


def check_prepared_cifar(name: str, data_dir: str | os.PathLike | None) -> None:
    """Refuses, naming `data_dir`, CIFAR without its batch files or a prepared tensorflow-datasets copy there."""
    import tensorflow_datasets as tfds

    if data_dir is not None and not os.path.isdir(os.path.expanduser(data_dir)):
        problem = f"data_dir {os.fspath(data_dir)!r} does not exist"
    elif tfds.builder(name, data_dir=data_dir).is_prepared():
        return
    else:
        problem = "no data_dir was given" if data_dir is None else f"data_dir {os.fspath(data_dir)!r} holds neither"
    raise FileNotFoundError(
        f"{name} needs its python batch files (the folder {CIFAR_FOLDERS[name]} of the archive from "
        "https://www.cs.toronto.edu/~kriz/cifar.html, or the folder holding it) or a prepared tensorflow-datasets "
        f"copy, in data_dir (keras-resnet --data-dir); {problem}. Nothing is downloaded."
    )
