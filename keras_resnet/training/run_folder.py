"""The run folder: the names of its files and the callbacks that write them (checkpoints, log, backup)."""

import importlib.util
import os
import tempfile
import types

import keras

from keras_resnet._validation import require as _require
from keras_resnet.recipes import learning_rate_schedule, recipe_for
from keras_resnet.training.callbacks import (
    AtomicBackupAndRestore,
    AtomicModelCheckpoint,
    ClusterBackupAndRestore,
    DeleteOnTrainEnd,
    ErrorWarmUp,
    PlateauDecay,
    StopOnNaN,
)

# Names of the files `run_callbacks(recipe, directory)` writes in `directory`.
RUN_FILES = types.MappingProxyType(
    {"backup": "backup", "best": "best.keras", "last": "last.keras", "log": "log.csv", "tensorboard": "tensorboard"}
)


def run_callbacks(
    recipe="cifar10",
    directory=None,
    *,
    is_chief=True,
    monitor="val_accuracy",
    save_best=True,
    save_last=True,
    tensorboard=True,
    **overrides,
):
    """The recipe's learning-rate callbacks and the standard set of a training run.

    In order: `ErrorWarmUp` (recipes with `error_warmup_lr`), `PlateauDecay`
    (`schedule="plateau"`), `StopOnNaN` raising on the first NaN or infinite
    loss (before the checkpoints, so they and the backup keep the last good
    epoch), then, with a `directory`: `AtomicModelCheckpoint` (`best.keras`,
    `last.keras`; both write to a temporary file and rename it, so a killed
    run never leaves a half-written checkpoint), `CSVLogger` (`log.csv`,
    appended to on resume), `AtomicBackupAndRestore` (`backup/`, resumes a
    crashed fit at its last finished epoch) and `TensorBoard`
    (`tensorboard/`, when tensorboard is installed). The backup comes after
    the callbacks whose state it keeps (warm-up, plateau, best checkpoint),
    so it commits an epoch only once they have done their part of it; a run
    killed before the commit redoes that epoch identically.

    In a cluster every worker runs the same callbacks (reading distributed
    variables may take every worker), but only the chief writes into
    `directory`: a worker with `is_chief=False` writes its checkpoints, log
    and events into a temporary folder deleted when training ends
    (`DeleteOnTrainEnd`), and restores the chief's backup
    (`ClusterBackupAndRestore`), so a restarted cluster resumes in step.

    Args:
        recipe: a name in `RECIPES` or a `Recipe` (e.g. from `compile_for`).
        directory: `None`, or the folder of the run's files (in a cluster,
            on a file system every worker mounts).
        is_chief: bool, whether this process writes the run's files
            (`keras_resnet.training.distribute.Replication.is_chief`).
        monitor: the log key for the best checkpoint and `PlateauDecay`.
        save_best: bool, whether to keep `best.keras`.
        save_last: bool, whether to keep `last.keras`.
        tensorboard: bool, whether to log for TensorBoard when it is installed.
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
