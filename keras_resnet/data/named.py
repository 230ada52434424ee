"""Named data sets: the one way from a data set's name to its sources and pipelines (nothing is downloaded).

`"shapes"` (generated from `seed`); `"cifar10"`, `"cifar100"` (python batch files in `data_dir`, else
tensorflow-datasets'); `"folder:PATH"` (`PATH/train/<class>/...` and `PATH/validation` or `PATH/val`); any other
prepared tensorflow-datasets name (its `validation` split, else `test`). Without a validation split the last
`HOLDOUT_FRACTION` of each class validates.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Iterable
from typing import Any

from keras_resnet._validation import check_choice as _check_choice
from keras_resnet._validation import check_int as _check_int
from keras_resnet.data import shapes
from keras_resnet.data.cifar import CIFAR_FOLDERS, check_prepared_cifar, cifar_source, find_cifar_folder
from keras_resnet.data.pipelines import AUGMENTATIONS, PIPELINES
from keras_resnet.data.sources import (
    ImageSource,
    array_source,
    folder_source,
    holdout_split,
    image_statistics,
    tfds_source,
)
from keras_resnet.imagenet import CROP_SIZE, scaled_sizes

SMALL_IMAGE_SIDE = 64

HOLDOUT_FRACTION = 0.1

CIFAR_NAMES = tuple(CIFAR_FOLDERS)

_FOLDER = "folder:"
_NAMES = "'shapes', 'cifar10', 'cifar100', 'folder:PATH' or a tensorflow-datasets name"


@dataclasses.dataclass(frozen=True)
class Sources:
    """The splits of a data set as `ImageSource`s (`validation`, `test` may be `None`) and a sentence on each.

    Example:

    >>> dataset_sources("shapes", train_size=10, validation_size=5).described["validation"]
    'shapes validation images (5 images)'
    """

    train: ImageSource
    validation: ImageSource | None
    test: ImageSource | None
    described: dict[str, str]

    @property
    def class_names(self) -> tuple[str, ...]:
        """Class names; a label id is the index into them."""
        return self.train.class_names


@dataclasses.dataclass(frozen=True)
class Splits:
    """The batched `tf.data` pipelines of a data set's splits (`validation`, `test` may be `None`), its class
    names, the `Sources` they read and the `image_statistics` of the CIFAR augmentation (else `None`).

    Example:

    ```python
    model.fit(splits.train, validation_data=splits.validation, epochs=2)
    ```
    """

    train: Any
    validation: Any
    test: Any
    class_names: tuple[str, ...]
    sources: Sources
    statistics: dict | None = dataclasses.field(default=None, repr=False)


def input_defaults(
    name: str, augmentation: str | None = None, image_size: int | None = None, sources: Sources | None = None
) -> tuple[str, int]:
    """The `(augmentation, image_size)` a named data set uses unless given.

    `augmentation=None` is `"cifar"` for shapes, CIFAR and images of at most `SMALL_IMAGE_SIDE` pixels, else
    `"imagenet"`; `image_size=None` is 32 with CIFAR augmentation and 224 with ImageNet augmentation.

    Example:

    >>> input_defaults("imagenette/320px")
    ('imagenet', 224)
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
    for image, _ in source.images(parallel=False).take(1):
        return max(image.shape[:2])
    return 0


def _describe(source, what):
    return None if source is None else f"{what} ({len(source)} images)"


def _train_and_validation(train, validation, train_what, validation_what):
    described = {"train": _describe(train, train_what), "validation": _describe(validation, validation_what)}
    return Sources(train, validation, None, described)


def _holdout(name, train, test, full_train, where):
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
            return _train_and_validation(train, validation, os.path.join(root, "train"), os.path.join(root, split))
    return _holdout(name, train, None, False, os.path.join(root, "train"))


def dataset_sources(
    name: str = "shapes",
    *,
    data_dir: str | os.PathLike | None = None,
    train_size: int | None = None,
    validation_size: int | None = None,
    image_size: int = 32,
    seed: int = 0,
    full_train: bool = False,
) -> Sources:
    """Lists the splits of a named data set as `Sources`: the one place that finds a data set's files.

    Args:
        name: `"shapes"`, `"cifar10"`, `"cifar100"`, `"folder:PATH"` or a tensorflow-datasets name.
        data_dir: folder of the CIFAR batch files or of prepared tensorflow-datasets data.
        train_size, validation_size, image_size, seed: `"shapes"` only (6000 and 1000 images by default).
        full_train: CIFAR only: train on the whole training set, with no validation split.

    Example:

    ```python
    sources = dataset_sources("cifar10", data_dir="~/data")  # 45000 train, 5000 validation, 10000 test images
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
        return _train_and_validation(train, validation, "shapes training images", "shapes validation images")
    if name.startswith(_FOLDER):
        return _folder_sources(name)
    where = f"the {name} training set"
    if name in CIFAR_NAMES and data_dir is not None and find_cifar_folder(data_dir, [CIFAR_FOLDERS[name]]):
        train, test = (cifar_source(data_dir, split=split) for split in ("train", "test"))
        return _holdout(name, train, test, full_train, where)
    import tensorflow_datasets as tfds

    if name in CIFAR_NAMES:
        check_prepared_cifar(name, data_dir)

    try:
        splits = tfds.builder(name, data_dir=data_dir).info.splits
    except (tfds.core.registered.DatasetNotFoundError, ValueError):  # ValueError: not even a tfds name's syntax
        raise ValueError(f"dataset must be {_NAMES}; received {name!r}") from None
    train = tfds_source(name, split="train", data_dir=data_dir)
    if name in CIFAR_NAMES:
        return _holdout(name, train, tfds_source(name, split="test", data_dir=data_dir), full_train, where)
    split = "validation" if "validation" in splits or "test" not in splits else "test"
    validation = tfds_source(name, split=split, data_dir=data_dir)
    return _train_and_validation(
        train, validation, f"tensorflow-datasets {name} 'train'", f"tensorflow-datasets {name} {split!r}"
    )


def sources_and_inputs(
    name: str, augmentation: str | None = None, image_size: int | None = None, **options: Any
) -> tuple[Sources, str, int]:
    """`(sources, augmentation, image_size)`: `dataset_sources(name, **options)` and its `input_defaults`.

    Example:

    ```python
    sources, augmentation, image_size = sources_and_inputs("folder:icons")  # 32x32 icons: "cifar", 32
    ```
    """
    first = input_defaults(name, augmentation, image_size)
    sources = dataset_sources(name, image_size=first[1], **options)
    return (sources, *input_defaults(name, augmentation, image_size, sources))


def pipelines_for(
    sources: Sources,
    *,
    augmentation: str,
    image_size: int,
    batch_size: int = 128,
    seed: int | None = None,
    epochs: range | None = None,
    statistics: dict | None = None,
    **options: Any,
) -> Splits:
    """Builds the training pipeline and an evaluation pipeline per evaluation split of one augmentation.

    Args:
        sources: a `Sources` (e.g. from `dataset_sources`).
        augmentation: `"cifar"` or `"imagenet"` (the paper's sizes scaled by `image_size / 224`).
        image_size, batch_size, seed, epochs: as in the pipelines (`epochs` for training only).
        statistics: CIFAR augmentation: the training set's `image_statistics`; `None` computes them.
        **options: further arguments of the pipeline (e.g. `normalization="channel"`, `lighting_std=0.1`).

    Example:

    ```python
    splits = pipelines_for(dataset_sources("shapes"), augmentation="cifar", image_size=32, batch_size=16)
    ```
    """
    _check_choice("augmentation", augmentation, AUGMENTATIONS)
    build = PIPELINES[augmentation]
    if augmentation == "cifar":
        if statistics is None and options.get("normalization", "pixel") is not None:
            statistics = image_statistics(sources.train)
        options["statistics"] = statistics
    else:
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
    dataset: str = "shapes",
    *,
    batch_size: int = 128,
    image_size: int | None = None,
    augmentation: str | None = None,
    data_dir: str | os.PathLike | None = None,
    train_size: int | None = None,
    validation_size: int | None = None,
    seed: int = 0,
    epochs: range | None = None,
    full_train: bool = False,
    **options: Any,
) -> Splits:
    """Builds the training and evaluation pipelines of a named data set: `dataset_sources`, then `pipelines_for`.

    `seed` seeds the shapes images and the shuffling and augmentation; `image_size`, `augmentation` default
    as in `input_defaults`; the other arguments are `dataset_sources`' and the pipeline's.

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


def cifar10(
    batch_size: int = 128, data_dir: str | os.PathLike | None = None, *, seed: int | None = None, **options: Any
) -> Splits:
    """The CIFAR-10 pipelines of all 50,000 training images and the test set: `datasets("cifar10", full_train=True)`.

    Example:

    ```python
    model.fit(cifar10(data_dir="~/data", seed=0).train, epochs=164)
    ```
    """
    return datasets("cifar10", batch_size=batch_size, data_dir=data_dir, seed=seed, full_train=True, **options)


def cifar100(
    batch_size: int = 128, data_dir: str | os.PathLike | None = None, *, seed: int | None = None, **options: Any
) -> Splits:
    """`cifar10` for CIFAR-100 (100 fine labels), from the `cifar-100-python` files or a prepared `cifar100`.

    Example:

    ```python
    splits = cifar100(data_dir="~/data/cifar-100-python", seed=0)
    ```
    """
    return datasets("cifar100", batch_size=batch_size, data_dir=data_dir, seed=seed, full_train=True, **options)


def imagenet(
    batch_size: int = 256,
    data_dir: str | os.PathLike | None = None,
    *,
    name: str = "imagenet2012",
    seed: int | None = None,
    **options: Any,
) -> Splits:
    """The ImageNet-style training and validation pipelines of a prepared tensorflow-datasets copy.

    Example:

    ```python
    splits = imagenet(data_dir="/data/tfds", seed=0)
    ```
    """
    return datasets(name, batch_size=batch_size, data_dir=data_dir, seed=seed, augmentation="imagenet", **options)


def folder(
    directory: str | os.PathLike,
    *,
    train_indices: Iterable[int],
    validation_indices: Iterable[int],
    batch_size: int = 128,
    augmentation: str = "cifar",
    check: bool = True,
    seed: int | None = None,
    image_size: int | None = None,
    **options: Any,
) -> Splits:
    """Splits one folder of images in class sub-folders by position and builds its two pipelines.

    The files at `train_indices` of each class folder's sorted list train and those at `validation_indices`
    validate (see `folder_source`): the CIFAR-10 JPEG folder's protocol is `range(0, 4500)`, `range(4500, 5000)`.

    Example:

    ```python
    splits = folder("cifar10-jpeg/train", train_indices=range(4500), validation_indices=range(4500, 5000))
    ```
    """
    train = folder_source(directory, indices=train_indices, check=check)
    validation = folder_source(directory, indices=validation_indices, check=check)
    sources = _train_and_validation(
        train, validation, f"{directory} at train_indices", f"{directory} at validation_indices"
    )
    _, image_size = input_defaults(f"{_FOLDER}{directory}", augmentation, image_size)
    return pipelines_for(
        sources, augmentation=augmentation, image_size=image_size, batch_size=batch_size, seed=seed, **options
    )
