"""Weights shipped inside the package: `ResNet20(weights="cifar10")`, trained by `keras-resnet train`.

Each entry is three files in `weights_data/`: `{model}_{dataset}.weights.h5`, the per-pixel mean image
it was trained with (`.mean.npy`, float32, on the 0-255 scale; the input is `(image - mean) / 255`) and
a `.json` record of how it was made and what it scores (sha256 of both files, the test accuracy on the
data set's test batch, the training command, its code commit and date, and a `status`: `"final"` or an
interim checkpoint of a run still going). They load offline; a file whose sha256 differs is refused.
`benchmarks/ship_cifar10_weights.py` writes them from a run folder.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os

import numpy as np

DATA_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "weights_data")

SHIPPED = {"cifar10": "resnet20"}
"""`weights=` name of each shipped file: the one network (a key of `ARCHITECTURES`) it fits."""

DATASET_NAMES = ("cifar10", "cifar100")
"""`weights=` names read as a data set: the shipped ones load, the others are refused with how to train them."""

LAYOUT = dict(preact=False, plain=False, shortcut="A", stride_in="1x1", downsample_at="first")
"""The builder switches the shipped weights were trained with (the paper's CIFAR networks)."""

TRAIN_HINT = (
    "To train another network or data set: keras-resnet train --model resnet56 --dataset cifar10 --data-dir "
    "PATH/cifar-10-batches-py --full-train; its runs/resnet56-cifar10/last.keras is a whole model "
    "(keras.saving.load_model, keras-resnet evaluate --checkpoint), and model.save_weights('resnet56.weights.h5') "
    "gives a file for weights='resnet56.weights.h5'."
)


@dataclasses.dataclass(frozen=True)
class ShippedWeights:
    """A checked shipped entry: its weights file, the preprocessing it was trained with, and its record.

    Args:
        path: the `.weights.h5` file.
        preprocessing: `{"mean": (32, 32, 3) float32 array, "std": 255.0}`.
        record: the `.json` record.
    """

    path: str
    preprocessing: dict
    record: dict


def files(name: str, data_dir: str | os.PathLike | None = None) -> dict[str, str]:
    """The paths of a shipped entry's `weights`, `mean` and `record` files (they may not exist yet).

    Example:

    >>> os.path.basename(files("cifar10")["weights"])
    'resnet20_cifar10.weights.h5'
    """
    stem = os.path.join(DATA_DIR if data_dir is None else os.fspath(data_dir), f"{SHIPPED[name]}_{name}")
    return {"weights": f"{stem}.weights.h5", "mean": f"{stem}.mean.npy", "record": f"{stem}.json"}


def sha256(path: str | os.PathLike) -> str:
    """The hex sha256 of a (small) file."""
    with open(path, "rb") as file:
        return hashlib.sha256(file.read()).hexdigest()


def check(weights: str, *, architecture: str | None, layout: dict, include_top: bool, classes: int) -> ShippedWeights:
    """Validates `weights=<data set name>` for the network being built and loads the entry's files.

    Args:
        weights: a name of `DATASET_NAMES`.
        architecture: the network's key of `ARCHITECTURES`, or `None` for a custom one.
        layout: the builder's `preact`, `plain`, `shortcut`, `stride_in` and `downsample_at`.
        include_top: whether the classifier is built.
        classes: classifier width.

    Returns:
        A `ShippedWeights`.

    Raises:
        ValueError: no shipped weights for this name, network or layout (the message says which
            exist and how to train others), `classes` other than the data set's with
            `include_top`, or a file whose sha256 differs from its record.

    Example:

    >>> check("cifar10", architecture="resnet20", layout=LAYOUT, include_top=True, classes=10).record["status"][:7]
    ... # doctest: +SKIP
    'interim'
    """
    available = ", ".join(f"{SHIPPED[name]} weights={name!r}" for name in SHIPPED)
    if weights not in SHIPPED:
        raise ValueError(f"weights={weights!r}: the package ships weights for {available} only. {TRAIN_HINT}")
    differs = {key: layout.get(key) for key, value in LAYOUT.items() if layout.get(key) != value}
    if architecture != SHIPPED[weights] or differs:
        switches = ", ".join(f"{key}={value!r}" for key, value in differs.items())
        network = architecture or "a custom architecture"
        received = network if architecture != SHIPPED[weights] else f"{network} with {switches}"
        raise ValueError(
            f"weights={weights!r} fits only {SHIPPED[weights]} with its default layout (the package ships weights "
            f"for {available} only); received {received}. {TRAIN_HINT}"
        )
    paths = files(weights)
    with open(paths["record"], encoding="utf-8") as file:
        record = json.load(file)
    if include_top and classes != record["classes"]:
        raise ValueError(
            f"classes must be {record['classes']} when loading weights={weights!r} with include_top=True; received "
            f"classes={classes}. For other classes build the backbone with include_top=False (and pooling='avg') "
            "and add your own classifier."
        )
    for key in ("weights", "mean"):
        actual = sha256(paths[key])
        if actual != record["sha256"][key]:
            raise ValueError(
                f"The shipped file {paths[key]} has sha256 {actual}, but its record {paths['record']} says "
                f"{record['sha256'][key]}: the installation is damaged or the file was replaced; reinstall "
                "keras-resnet."
            )
    mean = np.load(paths["mean"], allow_pickle=False)
    return ShippedWeights(paths["weights"], {"mean": mean, "std": float(record["std"])}, record)
