"""Crash-safe files of a training run: each is written beside its target, flushed and renamed over it, so a
run killed mid-write (even by `SIGKILL`) leaves the previous complete file in place."""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
from collections.abc import Callable, Sequence

import keras

from keras_resnet import _keras_compat
from keras_resnet._validation import check_path, require

__all__ = [
    "AtomicBackupAndRestore",
    "AtomicModelCheckpoint",
    "ClusterBackupAndRestore",
    "DeleteOnTrainEnd",
    "resume_epoch",
]

_TEMPORARY_PREFIX = ".tmp-"


def _replace_atomically(path: str, write: Callable[[str], object]) -> None:
    """Calls `write(temporary_path)`, flushes the file to disk and renames it to `path`."""
    directory, name = os.path.split(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    # Same folder (so the rename is atomic) and same extension (Keras checks it).
    temporary = os.path.join(directory, f"{_TEMPORARY_PREFIX}{os.getpid()}-{name}")
    try:
        write(temporary)
        with open(temporary, "rb+") as handle:
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    finally:
        if os.path.exists(temporary):
            os.remove(temporary)
    descriptor = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


@_keras_compat.route_checkpoint_saves
class AtomicModelCheckpoint(keras.callbacks.ModelCheckpoint):
    """`keras.callbacks.ModelCheckpoint` that never leaves a half-written file.

    Name it in an `AtomicBackupAndRestore`'s `state_of` so a resumed run keeps the best of the whole run.

    Args:
        filepath: the checkpoint's path (`.keras`, or `.weights.h5` with `save_weights_only=True`).
        **kwargs: other arguments of `keras.callbacks.ModelCheckpoint`.

    Example:

    ```python
    checkpoint = AtomicModelCheckpoint("best.keras", monitor="val_accuracy", save_best_only=True)
    ```
    """

    def write(self, filepath: str) -> None:
        """Writes the model (or its weights) to `filepath` atomically."""
        save = self.model.save_weights if self.save_weights_only else self.model.save
        _replace_atomically(filepath, lambda temporary: save(temporary, overwrite=True))
        if self.verbose > 0:
            print(f"\nfinished saving model to {filepath}")

    def get_state(self) -> dict:
        """The checkpoint's state for a backup: `{"best": value or None}`."""
        return {"best": None if self.best is None else float(self.best)}

    def set_state(self, state: dict) -> None:
        """Restores `get_state()`'s dict."""
        self.best = state["best"]


_METADATA = "training_metadata.json"
_WEIGHTS_FILE = r"epoch\d+-batch\d+\.weights\.h5"
_TEMPORARY_FILE = rf"{re.escape(_TEMPORARY_PREFIX)}\d+-({_WEIGHTS_FILE}|{re.escape(_METADATA)})"
_BACKUP_FILE = re.compile(f"{_WEIGHTS_FILE}|{_TEMPORARY_FILE}")


def _read_metadata(backup_dir):
    path = os.path.join(os.fspath(backup_dir), _METADATA)
    if not os.path.isfile(path):
        return None
    with open(path) as handle:
        return json.load(handle)


def resume_epoch(backup_dir: str | os.PathLike) -> int:
    """The epoch a run resumes at from the backup in `backup_dir`: 0 without one.

    Use it to build the data of a resumed run (e.g. `epochs=range(resume_epoch(backup_dir), epochs)`).

    Args:
        backup_dir: the folder of an `AtomicBackupAndRestore`.
    """
    check_path("backup_dir", backup_dir)
    metadata = _read_metadata(backup_dir)
    return 0 if metadata is None else int(metadata["epoch"])


class AtomicBackupAndRestore(keras.callbacks.BackupAndRestore):
    """`keras.callbacks.BackupAndRestore` whose backup is always complete and holds the callbacks' state.

    Keras writes weights and epoch count as two files in place, so a kill between them corrupts the backup;
    here `training_metadata.json`, naming the weights file written before it, is the atomic commit point.
    An integer `save_freq` counts batches, also under `steps_per_execution`.

    Args:
        backup_dir: the backup folder.
        state_of: callbacks with `get_state()`/`set_state(state)` whose state the backup keeps; put this
            callback after them in `fit`'s list.
        **kwargs: other arguments of `keras.callbacks.BackupAndRestore` (`save_freq`, `delete_checkpoint`).

    Example:

    ```python
    import tempfile

    backup = AtomicBackupAndRestore(tempfile.mkdtemp())  # then model.fit(..., callbacks=[backup])
    ```
    """

    def __init__(self, backup_dir: str | os.PathLike, *, state_of: Sequence[keras.callbacks.Callback] = (), **kwargs):
        check_path("backup_dir", backup_dir)
        if kwargs.get("double_checkpoint"):
            raise ValueError(
                "double_checkpoint must be False: every backup is written atomically, so there is no "
                "half-written file to fall back from; received double_checkpoint=True"
            )
        stateless = [
            callback
            for callback in state_of
            if not callable(getattr(callback, "get_state", None)) or not callable(getattr(callback, "set_state", None))
        ]
        if stateless:
            raise ValueError(f"state_of must hold callbacks with get_state() and set_state(); received {stateless!r}")
        super().__init__(os.fspath(backup_dir), **kwargs)
        self.state_of = tuple(state_of)
        self._epoch, self._batches_done, self._batches_since_save = 0, 0, 0

    def _state_keys(self):
        return [f"{index}:{type(callback).__name__}" for index, callback in enumerate(self.state_of)]

    def on_train_begin(self, logs=None):
        metadata = _read_metadata(self.backup_dir)
        self._epoch, self._batches_since_save = 0, 0
        if metadata is None:
            return
        if self.model.optimizer is not None and not self.model.optimizer.built:
            self.model.optimizer.build(self.model.trainable_variables)
        self.model.load_weights(os.path.join(self.backup_dir, os.path.basename(metadata["weights"])))
        states = metadata.get("callbacks", {})
        for key, callback in zip(self._state_keys(), self.state_of):
            if key in states:
                callback.set_state(states[key])
        self._epoch = int(metadata["epoch"])
        _keras_compat.set_initial_epoch(self.model, self._epoch)

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch, self._batches_done = epoch, 0

    def on_train_batch_end(self, batch, logs=None):
        if self.save_freq == "epoch":
            return
        # With steps_per_execution > 1 Keras calls this once per execution, `batch` being its last batch.
        self._batches_since_save += batch + 1 - self._batches_done
        self._batches_done = batch + 1
        if self._batches_since_save >= self.save_freq:
            self._save(self._epoch, batch + 1)

    def on_epoch_end(self, epoch, logs=None):
        if self.save_freq == "epoch":
            self._save(epoch + 1, 0)

    def _save(self, epoch, batch):
        self._batches_since_save = 0
        name = f"epoch{epoch}-batch{batch}.weights.h5"
        _replace_atomically(
            os.path.join(self.backup_dir, name), lambda temporary: self.model.save_weights(temporary, overwrite=True)
        )
        states = {key: callback.get_state() for key, callback in zip(self._state_keys(), self.state_of)}
        metadata = {"epoch": epoch, "batch": batch, "weights": name, "callbacks": states}

        def write_metadata(temporary):
            with open(temporary, "w") as handle:
                json.dump(metadata, handle)

        _replace_atomically(os.path.join(self.backup_dir, _METADATA), write_metadata)
        self._remove_backup_files(keep=name)

    def _remove_backup_files(self, keep=None):
        for entry in os.listdir(self.backup_dir):
            if entry != keep and _BACKUP_FILE.fullmatch(entry):
                os.remove(os.path.join(self.backup_dir, entry))

    def on_train_end(self, logs=None):
        if not self.delete_checkpoint or not os.path.isdir(self.backup_dir):
            return
        self._remove_backup_files()
        metadata = os.path.join(self.backup_dir, _METADATA)
        if os.path.isfile(metadata):
            os.remove(metadata)
        if not os.listdir(self.backup_dir):
            os.rmdir(self.backup_dir)


class ClusterBackupAndRestore(AtomicBackupAndRestore):
    """`AtomicBackupAndRestore` for a cluster: the chief keeps the backup, everyone restores it.

    Every worker saves at the same points (reading distributed variables may need all of them); the others
    write to a temporary folder. Every worker loads the chief's backup, so a restarted cluster resumes in step.

    Args:
        backup_dir: the backup folder, on a file system every worker mounts.
        is_chief: whether this process is the chief (`keras_resnet.training.distribute.Replication.is_chief`).
        **kwargs: other arguments of `AtomicBackupAndRestore`.
    """

    def __init__(self, backup_dir: str | os.PathLike, *, is_chief: bool, **kwargs):
        require(isinstance(is_chief, bool), "is_chief", is_chief, "True or False")
        self.shared_dir = os.fspath(backup_dir)
        self.is_chief = is_chief
        local = self.shared_dir if is_chief else tempfile.mkdtemp(prefix="keras_resnet-backup-")
        super().__init__(local, **kwargs)

    def on_train_begin(self, logs=None):
        if not self.is_chief:
            shutil.rmtree(self.backup_dir, ignore_errors=True)
            if os.path.isdir(self.shared_dir):
                shutil.copytree(self.shared_dir, self.backup_dir)
        super().on_train_begin(logs)

    def on_train_end(self, logs=None):
        super().on_train_end(logs)
        if not self.is_chief:
            shutil.rmtree(self.backup_dir, ignore_errors=True)


class DeleteOnTrainEnd(keras.callbacks.Callback):
    """Deletes `directory` and everything in it when training ends: the scratch folder of a non-chief worker."""

    def __init__(self, directory: str | os.PathLike):
        super().__init__()
        check_path("directory", directory)
        self.directory = os.fspath(directory)

    def on_train_end(self, logs=None):
        shutil.rmtree(self.directory, ignore_errors=True)
