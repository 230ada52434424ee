"""Ships a `keras-resnet train` ResNet-20 CIFAR-10 run as the package's `weights="cifar10"`.

    python benchmarks/ship_cifar10_weights.py --run /root/kr-long/resnet20-full --commit af2b521

reads the run folder (`last.keras`, else `best.keras`; `run.json`; `log.csv`; the per-pixel mean of
`preprocessing.json`, else the checkpoint's recorded preprocessing), builds
`ResNet20(include_preprocessing=True, preprocessing={"mean": mean, "std": 255})` with its weights, scores the
10,000 images of the CIFAR-10 `test_batch` (uint8 in, batches of 500), and writes the three files of
`keras_resnet/models/weights_data/` (see `keras_resnet.models.shipped`): the `.weights.h5`, the `.mean.npy` and
the `.json` record (sha256 of both, the test accuracy, the training command rebuilt from `run.json`, code
commit, dates, epochs and iterations from `log.csv`, and `status`: `"final"` when the log holds every epoch of
the planned schedule, else `"interim: epoch N of M (the run continues)"`). The README's sentences about the
shipped weights (`readme_texts`) are rewritten to the new figures. Re-runnable: run it again when the run ends.
"""

from __future__ import annotations

import argparse
import csv
import datetime
import json
import math
import os
import re
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data" / "cifar-10-batches-py"
BATCH_SIZE = 500
TRAIN_IMAGES = {True: 50_000, False: 45_000}  # --full-train, else the 45k/5k hold-out split


def train_command(run: dict) -> str:
    """The `keras-resnet train` line of a run, from its `run.json` (flags at their defaults left out)."""
    parts = ["keras-resnet train", f"--model {run['model']}", f"--dataset {run['dataset']}"]
    if run.get("data_dir"):
        parts.append(f"--data-dir {run['data_dir']}")
    if run.get("full_train"):
        parts.append("--full-train")
    if run.get("epochs"):
        parts.append(f"--epochs {run['epochs']}")
    if run.get("seed", 0) != 0:
        parts.append(f"--seed {run['seed']}")
    return " ".join(parts)


def planned_epochs(run: dict) -> int:
    """Epochs of the run's schedule: `--epochs`, else the recipe's iterations over the steps of an epoch."""
    if run.get("epochs"):
        return int(run["epochs"])
    recipe = str(run["recipe"])
    total = int(re.search(r"total_steps=(\d+)", recipe).group(1))
    batch = int(re.search(r"batch_size=(\d+)", recipe).group(1))
    return math.ceil(total / steps_per_epoch(run, batch))


def steps_per_epoch(run: dict, batch_size: int) -> int:
    return math.ceil(TRAIN_IMAGES[bool(run.get("full_train"))] / batch_size)


def logged_epochs(log_path: str | os.PathLike) -> int:
    """Epochs finished according to a run's `log.csv` (its largest epoch index + 1)."""
    with open(log_path, newline="") as file:
        return 1 + max(int(row["epoch"]) for row in csv.DictReader(file))


def run_mean(run_dir: Path, model) -> np.ndarray:
    """The per-pixel mean (32, 32, 3) the run normalised with: `preprocessing.json`, else the model's record."""
    path = run_dir / "preprocessing.json"
    recorded = json.loads(path.read_text()) if path.is_file() else model.preprocessing
    if not isinstance(recorded, dict) or float(np.mean(recorded.get("std", 0))) != 255.0:
        raise ValueError(f"the run's preprocessing must be a per-pixel mean and std 255; received {recorded!r:.200}")
    mean = np.asarray(recorded["mean"], np.float32)
    if mean.shape != (32, 32, 3):
        raise ValueError(f"the run's mean must be a 32x32x3 image; received shape {mean.shape}")
    return mean


def status_text(epochs: int, planned: int, status: str | None) -> str:
    """`"final"` when every planned epoch ran, else `"interim: epoch N of M (the run continues)"`."""
    finished = epochs >= planned
    if status == "final" and not finished:
        raise ValueError(f"--status final needs the whole run ({planned} epochs); its log.csv holds {epochs}")
    if status == "final" or (status is None and finished):
        return "final"
    return f"interim: epoch {epochs} of {planned}" + ("" if finished else " (the run continues)")


def readme_texts(record: dict) -> list[str]:
    """The README's statements of the shipped weights: the model table's cell and the sentence below it."""
    test, error = record["test"], 100 * record["test"]["error"]
    interim = f"interim, epoch {record['epochs']} of {record['planned_epochs']}"
    when = "final" if record["status"] == "final" else interim
    return [
        f'`"cifar10"`: {error:.2f}% test error ({when})',
        f"{100 * test['accuracy']:.2f}% test accuracy ({error:.2f}% error) on the {test['images']:,} images of "
        f"`test_batch`, status {record['status']}, trained by `{record['command']}` (code {record['commit']}, "
        f"checkpoint of {record['checkpoint_date']}, shipped {record['date']})",
    ]


def score(model, images: np.ndarray, labels: np.ndarray) -> int:
    """Correct top-1 predictions of `model` on uint8 `images`, in batches of `BATCH_SIZE`."""
    predictions = model.predict(images, batch_size=BATCH_SIZE, verbose=0)
    return int(np.sum(np.argmax(predictions, axis=-1) == labels))


def ship(run_dir, *, data_dir=DATA, output_dir=None, commit=None, status=None, readme=ROOT / "README.md") -> dict:
    """Writes the shipped files from a run folder; returns the record (see the module docstring)."""
    import keras
    import tensorflow as tf

    import keras_resnet as kr
    from keras_resnet.models import shipped
    from keras_resnet.models.weights import file_digest

    run_dir = Path(run_dir)
    run = json.loads((run_dir / "run.json").read_text())
    if (run["model"], run["dataset"]) != ("resnet20", "cifar10"):
        raise ValueError(f"the run must train resnet20 on cifar10; received {run['model']} on {run['dataset']}")
    checkpoint = next((run_dir / name for name in ("last.keras", "best.keras") if (run_dir / name).is_file()), None)
    if checkpoint is None:
        raise ValueError(f"the run folder {run_dir} holds neither last.keras nor best.keras")
    commit = commit or run.get("commit")
    if not commit:
        raise ValueError("run.json records no code commit: pass --commit (the commit the run's code was taken from)")
    trained = keras.saving.load_model(checkpoint, compile=False, safe_mode=True)
    mean = run_mean(run_dir, trained)
    network = kr.ResNet20()
    kr.transfer_weights(trained, network)

    paths = shipped.files("cifar10", output_dir)
    os.makedirs(os.path.dirname(paths["weights"]), exist_ok=True)
    network.save_weights(paths["weights"])
    np.save(paths["mean"], mean)
    # The model users get: the shipped files, preprocessing from the saved mean, raw uint8 images in.
    model = kr.ResNet20(
        weights=paths["weights"],
        include_preprocessing=True,
        preprocessing={"mean": np.load(paths["mean"]), "std": 255.0},
    )
    test = kr.data.cifar_source(data_dir, split="test")
    images, labels = (np.asarray(tensor) for tensor in test.tensors)
    correct = score(model, images, labels)
    epochs, planned = logged_epochs(run_dir / "log.csv"), planned_epochs(run)
    batch = int(re.search(r"batch_size=(\d+)", str(run["recipe"])).group(1))
    record = {
        "model": "resnet20",
        "dataset": "cifar10",
        "classes": 10,
        "status": status_text(epochs, planned, status),
        "std": 255.0,
        "sha256": {key: file_digest(paths[key], "sha256") for key in ("weights", "mean")},
        "test": {
            "split": "test_batch: the CIFAR-10 test set, never used in training or to choose the checkpoint",
            "images": len(labels),
            "correct": correct,
            "accuracy": correct / len(labels),
            "error": 1 - correct / len(labels),
            "batch_size": BATCH_SIZE,
        },
        "trained_on": (
            "all 50,000 images of data_batch_1..5 (--full-train)"
            if run.get("full_train")
            else "45,000 images of data_batch_1..5 (the last 10% of each class held out)"
        ),
        "command": train_command(run),
        "recipe": run["recipe"],
        "seed": run.get("seed"),
        "commit": commit,
        "checkpoint": checkpoint.name,
        "checkpoint_date": datetime.date.fromtimestamp(checkpoint.stat().st_mtime).isoformat(),
        "date": datetime.date.today().isoformat(),
        "epochs": epochs,
        "planned_epochs": planned,
        "iterations": epochs * steps_per_epoch(run, batch),
        "versions": {"keras": keras.__version__, "tensorflow": tf.__version__},
    }
    old = json.loads(Path(paths["record"]).read_text()) if os.path.isfile(paths["record"]) else None
    Path(paths["record"]).write_text(json.dumps(record, indent=1) + "\n")
    if old is not None and readme is not None:
        text = Path(readme).read_text()
        for before, after in zip(readme_texts(old), readme_texts(record)):
            if before not in text:
                print(f"README: not found, update by hand: {before!r} -> {after!r}", file=sys.stderr)
            text = text.replace(before, after)
        Path(readme).write_text(text)
    return record


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--run", required=True, help="the run folder of keras-resnet train --model resnet20")
    parser.add_argument("--status", choices=("final", "interim"), help="default: final iff log.csv holds every epoch")
    parser.add_argument("--commit", help="the code commit the run ran from (default: run.json's 'commit')")
    parser.add_argument("--data-dir", default=str(DATA), help="CIFAR-10 python batches (default: %(default)s)")
    parser.add_argument("--output-dir", help="where to write (default: keras_resnet/models/weights_data)")
    args = parser.parse_args(argv)
    readme = ROOT / "README.md" if args.output_dir is None else None  # another folder: not the shipped files
    record = ship(
        args.run,
        data_dir=args.data_dir,
        output_dir=args.output_dir,
        commit=args.commit,
        status=args.status,
        readme=readme,
    )
    print(json.dumps({key: record[key] for key in ("status", "test", "epochs", "iterations", "sha256")}, indent=1))
    print("\n".join(readme_texts(record)))


if __name__ == "__main__":
    main()
