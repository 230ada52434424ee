"""Named data sets: the one way from a data set's name to its sources and pipelines.

A data set is named by one string:

- `"shapes"`: the embedded `keras_resnet.data.shapes` images, generated from `seed` (no download);
- `"cifar10"`, `"cifar100"`: the python batch files in `data_dir`, or tensorflow-datasets' copy; the last
  10% of each class of the training set validates (`HOLDOUT_FRACTION`: 45k / 5k, never the test set), and
  the test set scores the final model separately (`full_train=True` trains on all 50k, with no validation);
- `"folder:PATH"`: `PATH/train/<class>/...` and `PATH/validation/<class>/...` (or `PATH/val`; without
  either, the last 10% of each class of `PATH/train` validates);
- any other tensorflow-datasets name (prepared in `data_dir`), with its `validation` split (else `test`).

`dataset_sources` lists a named data set's splits as `Sources`; `pipelines_for` turns `Sources` into the
training and evaluation pipelines of one augmentation, a `Splits`; `datasets` does both. `cifar10`, `cifar100`,
`imagenet` and `folder` are `datasets` (or `pipelines_for`) with the arguments of a common case.
"""

import dataclasses
import os
from pathlib import Path
from typing import Any

from keras_resnet._validation import check_choice as _check_choice
from keras_resnet._validation import check_int as _check_int
from keras_resnet.data import shapes
from keras_resnet.data.pipelines import cifar_pipeline, imagenet_pipeline
from keras_resnet.data.sources import (
    ImageSource,
    _cifar_folder,
    array_source,
    cifar_source,
    folder_source,
    holdout_split,
    image_statistics,
    tfds_source,
)
from keras_resnet.imagenet import CROP_SIZE, scaled_sizes

AUGMENTATIONS = ("cifar", "imagenet")
SMALL_IMAGE_SIDE = 64
"""Images of at most this side (CIFAR's 32, shapes) get the CIFAR augmentation and recipe unless told otherwise."""

HOLDOUT_FRACTION = 0.1
"""Share of each class of a training set held out for validation when the data set has no validation split."""

CIFAR_NAMES = ("cifar10", "cifar100")
"""The CIFAR data sets' names: read from python batch files or tensorflow-datasets, with a test set."""

_CIFAR_FOLDERS = dict(zip(CIFAR_NAMES, ("cifar-10-batches-py", "cifar-100-python")))
_FOLDER = "folder:"
_NAMES = "'shapes', 'cifar10', 'cifar100', 'folder:PATH' or a tensorflow-datasets name"


@dataclasses.dataclass(frozen=True)
class Sources:
    """The splits of a data set as `ImageSource`s, and what each one is.

    Attributes:
        train: the training `ImageSource`.
        validation: the validation `ImageSource`, or `None` (e.g. CIFAR with `full_train=True`).
        test: the test `ImageSource` (CIFAR's test set), or `None`.
        described: dict from split name to a sentence saying what the split is, e.g.
            `{"train": "the cifar10 training set less the hold-out (45000 images)", ...}`, for run records.

    Example:

    ```python
    sources = keras_resnet.data.dataset_sources("shapes", train_size=60, validation_size=20)
    print(sources.class_names, len(sources.train), sources.described["validation"])
    ```
    """

    train: ImageSource
    validation: ImageSource | None
    test: ImageSource | None
    described: dict

    @property
    def class_names(self):
        """Tuple of class names; a label id is the index into it."""
        return self.train.class_names


@dataclasses.dataclass(frozen=True)
class Splits:
    """The training and evaluation pipelines of a data set, with its class names and sources.

    Attributes:
        train: batched training `tf.data.Dataset` of `(float32 images, int32 labels)`, shuffled and augmented.
        validation: batched validation `tf.data.Dataset`, or `None` when the data set has no validation split.
        test: batched test `tf.data.Dataset` (CIFAR's test set), or `None`.
        class_names: tuple of class names; a label id is the index into it.
        sources: the `Sources` the pipelines read (their `decode_failures` list images that failed to decode).
        statistics: the training set's `image_statistics` the CIFAR augmentation normalises with, else `None`.

    Example:

    ```python
    splits = keras_resnet.data.datasets("shapes", train_size=60, validation_size=20)
    model.fit(splits.train, validation_data=splits.validation, epochs=2)
    print(splits.class_names)
    ```
    """

    train: Any
    validation: Any
    test: Any
    class_names: tuple
    sources: Sources
    statistics: dict | None = dataclasses.field(default=None, repr=False)


def input_defaults(name, augmentation=None, image_size=None, sources=None):
    """The augmentation and image size a named data set uses unless given: CIFAR's 32 for small images.

    Args:
        name: a data set name (see the module docstring).
        augmentation: `None` (`"cifar"` for shapes and CIFAR, and for other data sets whose `sources` hold
            images of at most `SMALL_IMAGE_SIDE` pixels; else `"imagenet"`), `"cifar"` or `"imagenet"`.
        image_size: `None` (32 with CIFAR augmentation, 224 with ImageNet augmentation) or an int of at least 8.
        sources: optional `Sources` of the data set: the size of its first training image decides the
            augmentation of a folder or tensorflow-datasets name.

    Returns:
        A tuple `(augmentation, image_size)`.

    Example:

    ```python
    keras_resnet.data.input_defaults("imagenette/320px")  # ("imagenet", 224)
    ```
    """
    if not isinstance(name, str) or not name:
        raise ValueError(f"dataset must be {_NAMES}; received {name!r}")
    if augmentation is None:
        small = name in ("shapes", *CIFAR_NAMES) or (
            sources is not None and _largest_side(sources.train) <= SMALL_IMAGE_SIDE
        )
        augmentation = "cifar" if small else "imagenet"
    _check_choice("augmentation", augmentation, AUGMENTATIONS)
    if image_size is None:
        image_size = 32 if augmentation == "cifar" else CROP_SIZE
    _check_int("image_size", image_size, 8)
    return augmentation, image_size


def _largest_side(source):
    """The larger side of a source's first image."""
    for image, _ in source.images(parallel=False).take(1):
        return max(image.shape[:2])
    return 0


def _describe(source, what):
    return None if source is None else f"{what} ({len(source)} images)"


def _holdout(name, train, test, full_train, where):
    """A training source split 90/10 by class, or (full_train) kept whole with no validation."""
    if full_train:
        validation = None
        described = {"train": _describe(train, f"all of {where}")}
    else:
        train, validation = holdout_split(train, HOLDOUT_FRACTION)
        described = {
            "train": _describe(train, f"{where} less the hold-out"),
            "validation": _describe(validation, f"hold-out: the last {HOLDOUT_FRACTION:.0%} of each class of {where}"),
        }
    described["test"] = _describe(test, f"the {name} test set")
    return Sources(train, validation, test, {key: value for key, value in described.items() if value})


def _folder_sources(name):
    root = name[len(_FOLDER) :]
    if not os.path.isdir(os.path.join(root, "train")):
        raise ValueError(
            f"dataset 'folder:PATH' needs PATH/train (and PATH/validation or PATH/val, else the last "
            f"{HOLDOUT_FRACTION:.0%} of each class of PATH/train validate), each with one sub-folder per "
            f"class; received {name!r}"
        )
    train = folder_source(os.path.join(root, "train"))
    for split in ("validation", "val"):
        if os.path.isdir(os.path.join(root, split)):
            validation = folder_source(os.path.join(root, split))
            return Sources(
                train,
                validation,
                None,
                {
                    "train": _describe(train, os.path.join(root, "train")),
                    "validation": _describe(validation, os.path.join(root, split)),
                },
            )
    return _holdout(name, train, None, False, os.path.join(root, "train"))


def dataset_sources(
    name="shapes", *, data_dir=None, train_size=None, validation_size=None, image_size=32, seed=0, full_train=False
):
    """Lists the splits of a named data set as sources: the one place that finds a data set's files.

    CIFAR is read from its python batch files when `data_dir` holds them (or their `cifar-10-batches-py` /
    `cifar-100-python` folder), else from tensorflow-datasets' copy prepared in `data_dir`; nothing is
    downloaded (see `tfds_source`).

    Args:
        name: `"shapes"`, `"cifar10"`, `"cifar100"`, `"folder:PATH"` or a tensorflow-datasets name (see the
            module docstring).
        data_dir: folder of the CIFAR batch files or of prepared tensorflow-datasets data.
        train_size: `"shapes"` only: number of training images (6000).
        validation_size: `"shapes"` only: number of validation images (1000).
        image_size: `"shapes"` only: side of the generated images.
        seed: integer seed of the shapes images.
        full_train: CIFAR only: train on the whole training set (no validation split) instead of holding out
            its last 10% of each class.

    Returns:
        A `Sources`.

    Example:

    ```python
    sources = keras_resnet.data.dataset_sources("cifar10", data_dir="~/data")
    len(sources.train), len(sources.validation), len(sources.test)  # 45000, 5000, 10000
    ```
    """
    input_defaults(name)  # checks the name's type
    if name != "shapes" and (train_size is not None or validation_size is not None):
        raise ValueError(
            "train_size and validation_size apply to dataset='shapes' only; received "
            f"train_size={train_size!r}, validation_size={validation_size!r} for dataset={name!r}"
        )
    if full_train and name not in CIFAR_NAMES:
        raise ValueError(
            f"full_train applies to dataset='cifar10' or 'cifar100' (whose test set reports the final model); "
            f"received full_train=True for dataset={name!r}"
        )
    if name == "shapes":
        sizes = {"train_size": train_size, "validation_size": validation_size}
        (x_train, y_train), (x_val, y_val), names = shapes.load_data(
            **{key: value for key, value in sizes.items() if value is not None}, image_size=image_size, seed=seed
        )
        train, validation = array_source(x_train, y_train, names), array_source(x_val, y_val, names)
        return Sources(
            train,
            validation,
            None,
            {
                "train": _describe(train, "shapes training images"),
                "validation": _describe(validation, "shapes validation images"),
            },
        )
    if name.startswith(_FOLDER):
        return _folder_sources(name)
    where = f"the {name} training set"
    batch_files = name in CIFAR_NAMES and data_dir is not None
    if batch_files and _cifar_folder(Path(data_dir).expanduser(), [_CIFAR_FOLDERS[name]]):
        train, test = (cifar_source(data_dir, split=split) for split in ("train", "test"))
        return _holdout(name, train, test, full_train, where)
    import tensorflow_datasets as tfds

    if name in CIFAR_NAMES:
        _check_prepared_cifar(name, data_dir)

    try:
        splits = tfds.builder(name, data_dir=data_dir).info.splits
    except (tfds.core.registered.DatasetNotFoundError, ValueError):  # ValueError: not even a tfds name's syntax
        raise ValueError(f"dataset must be {_NAMES}; received {name!r}") from None
    train = tfds_source(name, split="train", data_dir=data_dir)
    if name in CIFAR_NAMES:
        return _holdout(name, train, tfds_source(name, split="test", data_dir=data_dir), full_train, where)
    split = "validation" if "validation" in splits or "test" not in splits else "test"
    validation = tfds_source(name, split=split, data_dir=data_dir)
    return Sources(
        train,
        validation,
        None,
        {
            "train": _describe(train, f"tensorflow-datasets {name} 'train'"),
            "validation": _describe(validation, f"tensorflow-datasets {name} {split!r}"),
        },
    )


def sources_and_inputs(name, augmentation=None, image_size=None, **options):
    """A named data set's sources with the augmentation and image size it trains with (see `input_defaults`).

    Args:
        name: a data set name (see the module docstring).
        augmentation: as in `input_defaults`; `None` decides from the data set (and its images' size).
        image_size: as in `input_defaults`.
        **options: further arguments of `dataset_sources` (`data_dir`, `train_size`, `validation_size`,
            `seed`, `full_train`).

    Returns:
        A tuple `(sources, augmentation, image_size)`.

    Example:

    ```python
    sources, augmentation, image_size = keras_resnet.data.sources_and_inputs("folder:icons")  # 32x32 images
    augmentation, image_size  # ("cifar", 32)
    ```
    """
    first = input_defaults(name, augmentation, image_size)
    sources = dataset_sources(name, image_size=first[1], **options)
    return (sources, *input_defaults(name, augmentation, image_size, sources))


def _check_prepared_cifar(name, data_dir):
    """Refuses, naming `data_dir`, CIFAR without its batch files or a prepared tensorflow-datasets copy there."""
    import tensorflow_datasets as tfds

    if data_dir is not None and not os.path.isdir(os.path.expanduser(data_dir)):
        problem = f"data_dir {os.fspath(data_dir)!r} does not exist"
    elif tfds.builder(name, data_dir=data_dir).is_prepared():
        return
    else:
        problem = "no data_dir was given" if data_dir is None else f"data_dir {os.fspath(data_dir)!r} holds neither"
    raise FileNotFoundError(
        f"{name} needs its python batch files (the folder {_CIFAR_FOLDERS[name]} of the archive from "
        "https://www.cs.toronto.edu/~kriz/cifar.html, or the folder holding it) or a prepared tensorflow-datasets "
        f"copy, in data_dir (keras-resnet --data-dir); {problem}. Nothing is downloaded."
    )


def pipelines_for(
    sources, *, augmentation, image_size, batch_size=128, seed=None, epochs=None, statistics=None, **options
):
    """Builds the training pipeline and an evaluation pipeline per evaluation split of one augmentation.

    Args:
        sources: a `Sources` (e.g. from `dataset_sources`).
        augmentation: `"cifar"` (`cifar_pipeline`: 4-pixel pad, random crop, flip; per-pixel mean of the
            training set subtracted unless `normalization` says otherwise) or `"imagenet"` (`imagenet_pipeline`:
            scale augmentation, random crop, flip; ImageNet mean subtracted, the paper's scales times
            `image_size / 224`).
        image_size: int, side of the model's input.
        batch_size: int, images per batch.
        seed: optional int seed of shuffling and augmentation.
        epochs: `None` or a `range(first, stop)` of epochs the training pipeline holds (see `cifar_pipeline`).
        statistics: CIFAR augmentation: the training set's `image_statistics`; computed from `sources.train`
            when `None` (pass a run's own to evaluate exactly as it trained).
        **options: further arguments of the chosen pipeline (e.g. `normalization="channel"`,
            `lighting_std=0.1`, or `normalize=False` for a model that normalises its 0-255 input itself).

    Returns:
        A `Splits`.

    Example:

    ```python
    sources = keras_resnet.data.dataset_sources("shapes", train_size=60, validation_size=20)
    splits = keras_resnet.data.pipelines_for(sources, augmentation="cifar", image_size=32, batch_size=16)
    ```
    """
    _check_choice("augmentation", augmentation, AUGMENTATIONS)
    if augmentation == "cifar":
        build = cifar_pipeline
        if statistics is None and options.get("normalization", "pixel") is not None:
            statistics = image_statistics(sources.train)
        options["statistics"] = statistics
    else:
        build = imagenet_pipeline
        scale_range, resize_size = scaled_sizes(image_size)
        options = {"scale_range": scale_range, "resize_size": resize_size, **options}
    options["image_size"] = image_size
    evaluation = {
        split: None if source is None else build(source, training=False, batch_size=batch_size, **options)
        for split, source in (("validation", sources.validation), ("test", sources.test))
    }
    return Splits(
        train=build(sources.train, training=True, batch_size=batch_size, seed=seed, epochs=epochs, **options),
        **evaluation,
        class_names=sources.class_names,
        sources=sources,
        statistics=statistics if augmentation == "cifar" else None,
    )


def datasets(
    dataset="shapes",
    *,
    batch_size=128,
    image_size=None,
    augmentation=None,
    data_dir=None,
    train_size=None,
    validation_size=None,
    seed=0,
    epochs=None,
    full_train=False,
    **options,
):
    """Builds the training and evaluation pipelines of a named data set: the one way in for named data sets.

    Args:
        dataset: `"shapes"`, `"cifar10"`, `"cifar100"`, `"folder:PATH"` or a tensorflow-datasets name (see
            the module docstring).
        batch_size: images per batch.
        image_size: side of the model's input; defaults to 32 with CIFAR augmentation and 224 with ImageNet
            augmentation.
        augmentation: `"cifar"` or `"imagenet"` (see `pipelines_for`); defaults to `"cifar"` for shapes and
            CIFAR, else `"imagenet"`.
        data_dir: folder of the CIFAR batch files or of prepared tensorflow-datasets data; nothing is
            downloaded.
        train_size: `"shapes"` only: number of training images (6000).
        validation_size: `"shapes"` only: number of validation images (1000). (CIFAR's validation split is
            the hold-out of its training set.)
        seed: integer seed of the shapes images and of shuffling and augmentation.
        epochs: `None` (every pass over the training pipeline is a new epoch) or a `range(first, stop)` of
            epochs the training pipeline holds one after another, each exactly as in an uninterrupted run (see
            `cifar_pipeline`).
        full_train: CIFAR only: train on all of the training set, with no validation split.
        **options: further arguments of the chosen pipeline (e.g. `normalization="channel"`).

    Returns:
        A `Splits` of `tf.data.Dataset`s of `(float32 images, int32 labels)` and the class names.

    Example:

    >>> splits = datasets("shapes", train_size=200, validation_size=50)
    >>> splits.class_names
    ('circle', 'square', 'triangle', 'cross', 'ring')
    """
    sources, augmentation, image_size = sources_and_inputs(
        dataset,
        augmentation,
        image_size,
        data_dir=data_dir,
        train_size=train_size,
        validation_size=validation_size,
        seed=seed,
        full_train=full_train,
    )
    return pipelines_for(
        sources,
        augmentation=augmentation,
        image_size=image_size,
        batch_size=batch_size,
        seed=seed,
        epochs=epochs,
        **options,
    )


def cifar10(batch_size=128, data_dir=None, *, seed=None, **options):
    """Builds the CIFAR-10 pipelines of all 50,000 training images and the test set: `datasets("cifar10",
    full_train=True)`.

    Reads the python batch files if `data_dir` holds them (or their `cifar-10-batches-py` folder), else the
    tensorflow-datasets copy prepared in `data_dir`; nothing is downloaded (see `tfds_source`). Statistics
    come from the training set.

    Args:
        batch_size: int, images per batch.
        data_dir: optional folder of the batch files or of prepared tensorflow-datasets data.
        seed: optional int for reproducible shuffling and augmentation.
        **options: further arguments of `datasets` and `cifar_pipeline` (e.g. `normalization="channel"`).

    Returns:
        A `Splits` with `train` and `test` pipelines (`validation` is `None`).

    Example:

    ```python
    splits = keras_resnet.data.cifar10(batch_size=128, data_dir="~/data", seed=0)
    model.fit(splits.train, epochs=164)
    model.evaluate(splits.test)
    ```
    """
    return datasets("cifar10", batch_size=batch_size, data_dir=data_dir, seed=seed, full_train=True, **options)


def cifar100(batch_size=128, data_dir=None, *, seed=None, **options):
    """Builds the CIFAR-100 training and test pipelines (100 fine labels): `cifar10` for CIFAR-100.

    Args:
        batch_size: as in `cifar10`.
        data_dir: as in `cifar10`, with the `cifar-100-python` files or a prepared `cifar100`.
        seed: as in `cifar10`.
        **options: as in `cifar10`.

    Returns:
        A `Splits` with `train` and `test` pipelines (`validation` is `None`).

    Example:

    ```python
    splits = keras_resnet.data.cifar100(data_dir="~/data/cifar-100-python", seed=0)
    ```
    """
    return datasets("cifar100", batch_size=batch_size, data_dir=data_dir, seed=seed, full_train=True, **options)


def imagenet(batch_size=256, data_dir=None, *, name="imagenet2012", seed=None, **options):
    """Builds the ImageNet-style training and validation pipelines from a prepared tensorflow-datasets copy.

    Args:
        batch_size: int, images per batch.
        data_dir: optional folder of prepared tensorflow-datasets data; nothing is downloaded (see
            `tfds_source`).
        name: the tensorflow-datasets name (`"imagenet2012"`, `"imagenette/320px"`, ...), with a `train` split
            and a `validation` (else `test`) split.
        seed: optional int for reproducible shuffling and augmentation.
        **options: further arguments of `datasets` and `imagenet_pipeline` (e.g. `lighting_std=0.1`).

    Returns:
        A `Splits` with `train` and `validation` pipelines.

    Example:

    ```python
    splits = keras_resnet.data.imagenet(data_dir="/data/tfds", seed=0)
    ```
    """
    return datasets(name, batch_size=batch_size, data_dir=data_dir, seed=seed, augmentation="imagenet", **options)


def folder(
    directory,
    *,
    train_indices,
    validation_indices,
    batch_size=128,
    augmentation="cifar",
    check="header",
    seed=None,
    image_size=None,
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
        image_size: side of the output images; defaults to 32 (`"cifar"`) or 224 (`"imagenet"`).
        **options: further arguments of the chosen pipeline.

    Returns:
        A `Splits` with `train` and `validation` pipelines.

    Example:

    ```python
    splits = keras_resnet.data.folder(
        "../shared/data/cifar10-jpeg/train",
        train_indices=range(0, 4500),
        validation_indices=range(4500, 5000),
        seed=0,
    )
    print(splits.class_names)
    ```
    """
    train = folder_source(directory, indices=train_indices, check=check)
    validation = folder_source(directory, indices=validation_indices, check=check)
    sources = Sources(
        train,
        validation,
        None,
        {
            "train": _describe(train, f"{directory} at train_indices"),
            "validation": _describe(validation, f"{directory} at validation_indices"),
        },
    )
    _, image_size = input_defaults(f"{_FOLDER}{directory}", augmentation, image_size)
    return pipelines_for(
        sources, augmentation=augmentation, image_size=image_size, batch_size=batch_size, seed=seed, **options
    )
