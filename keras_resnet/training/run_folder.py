"""The run folder: its files, the callbacks that write them, where a run resumes and what is written when."""

from __future__ import annotations

import importlib.util
import json
import os
import tempfile
import types

import keras

from keras_resnet._validation import require as _require
from keras_resnet.recipes import Recipe, learning_rate_schedule, recipe_for
from keras_resnet.training.callbacks import (
    AtomicBackupAndRestore,
    AtomicModelCheckpoint,
    ClusterBackupAndRestore,
    DeleteOnTrainEnd,
    ErrorWarmUp,
    PlateauDecay,
    StopOnNaN,
    resume_epoch,
)
from keras_resnet.training.plotting import plot_curves, read_log

RUN_FILES = types.MappingProxyType(
    {
        "backup": "backup",
        "best": "best.keras",
        "last": "last.keras",
        "log": "log.csv",
        "tensorboard": "tensorboard",
        "curves": "curves.png",
        "config": "run.json",
    }
)


def run_callbacks(
    recipe: str | Recipe = "cifar10",
    directory: str | os.PathLike | None = None,
    *,
    is_chief: bool = True,
    monitor: str = "val_accuracy",
    save_best: bool = True,
    save_last: bool = True,
    tensorboard: bool = True,
    **overrides,
) -> list[keras.callbacks.Callback]:
    """The recipe's learning-rate callbacks and the standard set of a training run.

    In order: `ErrorWarmUp` (with `error_warmup_lr`), `PlateauDecay` (`schedule="plateau"`), `StopOnNaN` (before
    the checkpoints, so they keep the last good epoch), then, with a `directory`: `AtomicModelCheckpoint`
    (`best.keras`, `last.keras`), `CSVLogger` (`log.csv`, appended to on resume), `AtomicBackupAndRestore`
    (`backup/`, after the callbacks whose state it keeps) and `TensorBoard` (when installed). A worker with
    `is_chief=False` writes to a temporary folder deleted at the end and restores the chief's backup.

    Args:
        recipe: a name in `RECIPES` or a `Recipe` (e.g. from `compile_for`).
        directory: `None`, or the folder of the run's files (in a cluster, mounted by every worker).
        is_chief: whether this process writes the run's files (`Replication.is_chief`).
        monitor: the log key for the best checkpoint and `PlateauDecay`.
        save_best: whether to keep `best.keras`.
        save_last: whether to keep `last.keras`.
        tensorboard: whether to log for TensorBoard when it is installed.
        **overrides: fields of `Recipe` to replace (see `recipe_for`).

    Returns:
        A list of `keras.callbacks.Callback`.

    Example:

    ```python
    run = run_callbacks("imagenet", directory=tempfile.mkdtemp())
    ```
    """
    _require(isinstance(monitor, str), "monitor", monitor, "a log key (a string)")
    _require(isinstance(is_chief, bool), "is_chief", is_chief, "True or False")
    recipe = recipe_for(recipe, **overrides)
    result = []
    if recipe.error_warmup_lr is not None:
        result.append(
            ErrorWarmUp(
                learning_rate_schedule(recipe),
                warmup_learning_rate=recipe.error_warmup_lr,
                max_error=recipe.error_warmup_until,
            )
        )
    if recipe.schedule == "plateau":
        result.append(PlateauDecay(monitor=monitor, patience=recipe.plateau_patience))
    stateful = list(result)
    result.append(StopOnNaN())
    if directory is None:
        return result
    # Only the chief writes the run's folder; another worker writes to scratch, deleted at the end.
    target = directory if is_chief else tempfile.mkdtemp(prefix="keras_resnet-worker-")
    os.makedirs(target, exist_ok=True)
    if save_best:
        best = AtomicModelCheckpoint(os.path.join(target, RUN_FILES["best"]), monitor=monitor, save_best_only=True)
        result.append(best)
        stateful.append(best)
    if save_last:
        result.append(AtomicModelCheckpoint(os.path.join(target, RUN_FILES["last"])))
    result.append(keras.callbacks.CSVLogger(os.path.join(target, RUN_FILES["log"]), append=True))
    backup_dir = os.path.join(directory, RUN_FILES["backup"])
    if is_chief:
        result.append(AtomicBackupAndRestore(backup_dir, state_of=stateful))
    else:
        result.append(ClusterBackupAndRestore(backup_dir, is_chief=False, state_of=stateful))
    if tensorboard and importlib.util.find_spec("tensorboard") is not None:
        result.append(keras.callbacks.TensorBoard(os.path.join(target, RUN_FILES["tensorboard"])))
    if not is_chief:
        result.append(DeleteOnTrainEnd(target))
    return result


class RunFolder:
    """The folder of a `train` run: `run.json`, the log and curves, and where the run resumes.

    `start` checks that a backup in the folder is of this run and that a finished run is not trained over
    unasked, then writes `run.json`; `finish` adds the results and draws `curves.png`. Without a directory, or
    in a worker that is not the chief, nothing is written.

    Args:
        directory: the run's folder, or `None`.
        is_chief: whether this process writes the folder.

    Example:

    ```python
    folder = RunFolder("runs/resnet20")
    folder.start({"model": "resnet20", "dataset": "shapes"})
    folder.resume_epoch  # 0, or the first epoch a backup left to run
    ```
    """

    def __init__(self, directory: str | os.PathLike | None, *, is_chief: bool = True):
        self.directory = None if directory is None else os.fspath(directory)
        self.writes = self.directory is not None and is_chief
        self.files = (
            {name: os.path.join(self.directory, file) for name, file in RUN_FILES.items()} if self.writes else {}
        )
        self._record = None

    @property
    def resume_epoch(self) -> int:
        """The first epoch still to run: the backup's, else 0."""
        return 0 if self.directory is None else resume_epoch(os.path.join(self.directory, RUN_FILES["backup"]))

    def start(self, record: dict, *, overwrite: bool = False) -> None:
        """Checks the folder against the run's `record` and writes it as `run.json`."""
        if not self.writes:
            return
        os.makedirs(self.directory, exist_ok=True)
        record = json.loads(json.dumps(record))  # as JSON reads it back: tuples become lists
        previous = read_run(self.directory)
        if os.path.isdir(self.files["backup"]):
            if previous != record:
                raise ValueError(
                    f"output_dir {self.directory!r} holds the backup of an unfinished run with other arguments "
                    f"({previous}); received {record}. Re-run with the same arguments to resume it, or use "
                    "another output_dir."
                )
            _trim_log(self.files["log"], self.resume_epoch)
        else:
            if previous is not None and "results" in previous and not overwrite:
                raise ValueError(
                    f"output_dir {self.directory!r} holds a finished run ({previous['model']} on "
                    f"{previous['dataset']}); received overwrite=False. Pass overwrite=True (keras-resnet train "
                    "--overwrite) to train it afresh over its files, or use another output_dir."
                )
            if os.path.isfile(self.files["log"]):
                os.remove(self.files["log"])
        _write_json(self.files["config"], record)
        self._record = record

    def finish(self, report: dict, *, label: str, steps_per_epoch: int) -> dict | None:
        """Adds `report` to `run.json` and draws the curves; returns the whole run's log (`None`: nothing written)."""
        if not self.writes:
            return None
        _write_json(self.files["config"], {**self._record, **report})
        plot_curves(self.files["log"], self.files["curves"], labels=[label], steps_per_epoch=steps_per_epoch)
        return read_log(self.files["log"])


def read_run(directory: str | os.PathLike) -> dict | None:
    """The `run.json` of a run folder, or `None`."""
    path = os.path.join(directory, RUN_FILES["config"])
    if not os.path.isfile(path):
        return None
    with open(path) as handle:
        return json.load(handle)


def _write_json(path, content):
    with open(path, "w") as handle:
        json.dump(content, handle, indent=1)


def _trim_log(path, epochs):
    """Keeps the header and the rows of the first `epochs` epochs: a killed run may have logged an epoch it redoes."""
    if not os.path.isfile(path):
        return
    with open(path, newline="") as handle:
        lines = handle.readlines()
    kept = lines[:1] + [line for line in lines[1:] if int(line.split(",", 1)[0]) < epochs]
    if kept != lines:
        with open(path, "w", newline="") as handle:
            handle.writelines(kept)
