"""Callbacks of the paper's recipes and of crash-safe training runs.

`PlateauDecay` divides the learning rate by 10 when the validation error stops
improving (the ImageNet recipe); `ErrorWarmUp` trains at a small learning rate
until the training error drops under a threshold (the ResNet-110 recipe on
CIFAR-10). Both set the optimizer's learning rate, so the optimizer needs a
float learning rate rather than a `LearningRateSchedule`;
`keras_resnet.recipes` wires them for its recipes.

`StopOnNaN`, `AtomicModelCheckpoint` and `AtomicBackupAndRestore` keep a
run's files usable whatever happens to the process: a diverging run stops
before its broken epoch is saved, and every checkpoint is written to a
temporary file in the same folder, flushed to disk and renamed over the old
one, so a run killed mid-write (even with `SIGKILL`) leaves the previous
complete file in place. The backup also holds the state of the callbacks
named in its `state_of` (plateau counter and best value, warm-up switch, best
checkpoint value), so a resumed run goes on exactly where the killed one
stopped. In a cluster, `ClusterBackupAndRestore` lets only the chief write the
backup and every worker restore it, and `DeleteOnTrainEnd` removes a worker's
scratch folder (`keras_resnet.training.run_callbacks(..., is_chief=False)`).
"""

import json
import math
import os
import re
import shutil
import tempfile

import keras
import numpy as np

from keras_resnet import _keras_compat
from keras_resnet._validation import check_path, is_real, require

__all__ = [
    "AtomicBackupAndRestore",
    "AtomicModelCheckpoint",
    "ClusterBackupAndRestore",
    "DeleteOnTrainEnd",
    "ErrorWarmUp",
    "PlateauDecay",
    "StopOnNaN",
    "resume_epoch",
]

_TEMPORARY_PREFIX = ".tmp-"


def _synced_optimizer(model):
    # During a JAX fit the variables live in a traced state; syncing writes it
    # back and makes the next step read what a callback assigns.
    if keras.backend.backend() == "jax":
        model.jax_state_sync()
    return model.optimizer


def _require_float_learning_rate(callback):
    if not isinstance(callback.model.optimizer.learning_rate, keras.Variable):
        raise ValueError(
            f"{type(callback).__name__} sets the optimizer's learning rate, so the optimizer "
            "needs a float learning rate; received one with a LearningRateSchedule. Compile "
            "with learning_rate=<float> (keras_resnet.recipes: schedule='plateau' or "
            "error_warmup_lr=...)."
        )


class PlateauDecay(keras.callbacks.ReduceLROnPlateau):
    """Divides the learning rate by 10 when the validation error plateaus.

    `keras.callbacks.ReduceLROnPlateau` with the paper's factor 0.1, watching
    the validation accuracy (a plateau of the error is a plateau of the
    accuracy): after `patience` epochs without improvement the rate is divided
    once, and the count starts again. Checks at the start of training that the
    optimizer's learning rate can be set.

    Args:
        monitor: the log key to watch.
        patience: int, epochs without improvement before dividing.
        factor: float, the multiplier of the learning rate.
        **kwargs: other arguments of `keras.callbacks.ReduceLROnPlateau`
            (`min_delta`, `cooldown`, `min_lr`, `mode`, `verbose`).

    Example:

    ```python
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)])
    model.compile(keras.optimizers.SGD(0.1), "sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    decay = PlateauDecay(patience=1, mode="max")  # "auto" needs the metrics built by fit
    decay.set_model(model)
    decay.on_train_begin()
    for epoch, accuracy in enumerate([0.5, 0.5]):
        decay.on_epoch_end(epoch, {"val_accuracy": accuracy})
    float(model.optimizer.learning_rate)  # 0.01
    ```
    """

    def __init__(self, monitor="val_accuracy", patience=5, factor=0.1, **kwargs):
        require(is_real(factor) and 0 < factor < 1, "factor", factor, "a number in (0, 1)")
        super().__init__(monitor=monitor, factor=factor, patience=patience, **kwargs)

    def on_train_begin(self, logs=None):
        _require_float_learning_rate(self)
        super().on_train_begin(logs)

    def get_state(self):
        """The plateau's state for a backup: a dict of `wait`, `best` (`None` before the first epoch ends)
        and `cooldown_counter`."""
        best = None if self.best is None else float(self.best)
        return {"wait": int(self.wait), "best": best, "cooldown_counter": int(self.cooldown_counter)}

    def set_state(self, state):
        """Restores `get_state()`'s dict, after `on_train_begin` (which resets the state)."""
        self.wait, self.best, self.cooldown_counter = state["wait"], state["best"], state["cooldown_counter"]


class ErrorWarmUp(keras.callbacks.Callback):
    """Trains at a small learning rate until the training error is low enough.

    The paper's ResNet-110 warm-up: train at 0.01 until the training error is
    under 80% (about 400 iterations), then at the usual rate. The callback
    sets `warmup_learning_rate` when training starts, watches the running
    training accuracy after every batch and, the first time
    `1 - accuracy < max_error`, switches to `learning_rate`, exactly once
    (`switched_at` records the iteration). A float `learning_rate` is set
    once; a `LearningRateSchedule` is evaluated at the optimizer's iteration
    before every later batch, so step decay still applies.

    Args:
        learning_rate: float or `LearningRateSchedule`, the rate after the
            warm-up.
        warmup_learning_rate: float, the rate during the warm-up.
        max_error: float in (0, 1], the training error that ends the warm-up.
        monitor: the log key of the training accuracy.

    Example:

    ```python
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)])
    model.compile(keras.optimizers.SGD(0.1), "sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    warmup = ErrorWarmUp(0.1)
    warmup.set_model(model)
    warmup.on_train_begin()  # the rate is now 0.01
    warmup.on_train_batch_end(0, {"accuracy": 0.25})
    float(model.optimizer.learning_rate)  # 0.1
    ```
    """

    def __init__(self, learning_rate, warmup_learning_rate=0.01, max_error=0.8, monitor="accuracy"):
        super().__init__()
        require(is_real(max_error) and 0 < max_error <= 1, "max_error", max_error, "a number in (0, 1]")
        self.learning_rate = learning_rate
        self.warmup_learning_rate = warmup_learning_rate
        self.max_error = max_error
        self.monitor = monitor
        self.switched_at = None

    def _set_learning_rate(self):
        optimizer = _synced_optimizer(self.model)
        if self.switched_at is None:
            optimizer.learning_rate = float(self.warmup_learning_rate)
        elif callable(self.learning_rate):
            optimizer.learning_rate = float(self.learning_rate(optimizer.iterations))
        else:
            optimizer.learning_rate = float(self.learning_rate)

    def on_train_begin(self, logs=None):
        _require_float_learning_rate(self)
        if self.switched_at is None:
            self._set_learning_rate()

    def on_train_batch_begin(self, batch, logs=None):
        if self.switched_at is not None and callable(self.learning_rate):
            self._set_learning_rate()

    def on_train_batch_end(self, batch, logs=None):
        if self.switched_at is not None:
            return
        logs = logs or {}
        if self.monitor not in logs:
            raise ValueError(
                f"ErrorWarmUp watches monitor={self.monitor!r}, which is not in the logs "
                f"(they have {sorted(logs)}); compile the model with metrics=['accuracy']"
            )
        if 1 - float(logs[self.monitor]) < self.max_error:
            self.switched_at = int(keras.ops.convert_to_numpy(_synced_optimizer(self.model).iterations))
            self._set_learning_rate()

    def get_state(self):
        """The warm-up's state for a backup: `{"switched_at": iteration or None}`."""
        return {"switched_at": self.switched_at}

    def set_state(self, state):
        """Restores `get_state()`'s dict."""
        self.switched_at = state["switched_at"]


def _replace_atomically(path, write):
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


class StopOnNaN(keras.callbacks.TerminateOnNaN):
    """Stops training at the first NaN or infinite loss, naming the step.

    `keras.callbacks.TerminateOnNaN(raise_error=True)` finds the first batch
    whose loss is not finite; this raises its error as a `FloatingPointError`
    naming the optimizer step, epoch and batch, and also stops at the end of
    an epoch whose validation loss or weights are not finite. Placed
    before the checkpoint callbacks (as `keras_resnet.training.run_callbacks`
    does), it stops the run before they save the broken epoch: `last.keras`
    and the backup keep the last good one.

    Args:
        None; add it to `fit`'s callbacks before any checkpoint callback.

    Example:

    ```python
    model = keras.Sequential([keras.Input((1,)), keras.layers.Dense(1)])
    model.compile(keras.optimizers.SGD(1e30), "mse")
    try:
        model.fit(np.full((8, 1), 1e10), np.ones((8, 1)), batch_size=2, verbose=0,
                  callbacks=[StopOnNaN()])
    except FloatingPointError as error:
        message = str(error)  # "the training loss became inf at step 1 (epoch 1, batch 1); ..."
    "at step" in message  # 1
    ```
    """

    def __init__(self):
        super().__init__(raise_error=True)
        self._epoch = 0

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch = epoch

    def _stop(self, what, value, where):
        step = int(keras.ops.convert_to_numpy(_synced_optimizer(self.model).iterations))
        raise FloatingPointError(
            f"{what} became {value} at step {step} ({where}); training stopped before saving "
            "this epoch, so the checkpoints and backup keep the last finite epoch. Lower the "
            "learning rate or check the data."
        )

    def on_train_batch_end(self, batch, logs=None):
        try:
            super().on_train_batch_end(batch, logs)
        except RuntimeError:
            self._stop("the training loss", float(logs["loss"]), f"epoch {self._epoch + 1}, batch {batch + 1}")

    def on_epoch_end(self, epoch, logs=None):
        loss = (logs or {}).get("val_loss")
        if loss is not None and not math.isfinite(float(loss)):
            self._stop("the validation loss", float(loss), f"end of epoch {epoch + 1}")
        for weight in self.model.weights:
            if not np.all(np.isfinite(keras.ops.convert_to_numpy(weight))):
                self._stop(f"weight {weight.path!r}", "non-finite", f"end of epoch {epoch + 1}")


@_keras_compat.route_checkpoint_saves
class AtomicModelCheckpoint(keras.callbacks.ModelCheckpoint):
    """`keras.callbacks.ModelCheckpoint` that never leaves a half-written file.

    Each save goes to a temporary file (`.tmp-<pid>-<name>`) in the
    checkpoint's folder, is flushed to disk and then renamed over the
    checkpoint, so the checkpoint is always either the previous complete
    file or the new complete file. Its best monitored value is part of an
    `AtomicBackupAndRestore` backup that names it in `state_of`, so a
    resumed run keeps the best checkpoint of the whole run, not the best
    since the restart.

    Args:
        filepath: the checkpoint's path (`.keras`, or `.weights.h5` with
            `save_weights_only=True`), formatted as by Keras.
        **kwargs: other arguments of `keras.callbacks.ModelCheckpoint`.

    Example:

    ```python
    import tempfile

    path = os.path.join(tempfile.mkdtemp(), "last.keras")
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    model.compile("sgd", "mse")
    model.fit(np.ones((4, 2)), np.ones((4, 1)), epochs=2, verbose=0,
              callbacks=[AtomicModelCheckpoint(path)])
    len(os.listdir(os.path.dirname(path)))  # 1
    ```
    """

    def write(self, filepath):
        """Writes the model (or its weights) to `filepath` atomically."""
        save = self.model.save_weights if self.save_weights_only else self.model.save
        _replace_atomically(filepath, lambda temporary: save(temporary, overwrite=True))
        if self.verbose > 0:
            print(f"\nfinished saving model to {filepath}")

    def get_state(self):
        """The checkpoint's state for a backup: `{"best": value or None}`."""
        return {"best": None if self.best is None else float(self.best)}

    def set_state(self, state):
        """Restores `get_state()`'s dict."""
        self.best = state["best"]


_METADATA = "training_metadata.json"
# What a backup writes: weights files, and the temporaries of its atomic writes (`_replace_atomically`).
_WEIGHTS_FILE = r"epoch\d+-batch\d+\.weights\.h5"
_TEMPORARY_FILE = rf"{re.escape(_TEMPORARY_PREFIX)}\d+-({_WEIGHTS_FILE}|{re.escape(_METADATA)})"
_BACKUP_FILE = re.compile(f"{_WEIGHTS_FILE}|{_TEMPORARY_FILE}")


def _read_metadata(backup_dir):
    path = os.path.join(os.fspath(backup_dir), _METADATA)
    if not os.path.isfile(path):
        return None
    with open(path) as handle:
        return json.load(handle)


def resume_epoch(backup_dir):
    """The epoch a run resumes at from the backup in `backup_dir`: 0 without one.

    Use it to build the data of a resumed run (e.g. a `keras_resnet.data`
    pipeline with `epochs=range(resume_epoch(backup_dir), epochs)`).

    Args:
        backup_dir: the folder of an `AtomicBackupAndRestore`.

    Returns:
        int, the first epoch the next `fit` with that backup runs.

    Example:

    ```python
    import tempfile

    resume_epoch(tempfile.mkdtemp())  # 0
    ```
    """
    check_path("backup_dir", backup_dir)
    metadata = _read_metadata(backup_dir)
    return 0 if metadata is None else int(metadata["epoch"])


class AtomicBackupAndRestore(keras.callbacks.BackupAndRestore):
    """`keras.callbacks.BackupAndRestore` whose backup is always complete and holds the callbacks' state.

    Keras writes the backup's weights and its epoch count as two files, in
    place: a process killed between or during the writes leaves a
    half-written file, or weights of one epoch with the count of another,
    and the resumed run trains an epoch too many. Here each save writes a
    new weights file named after its epoch, atomically, then atomically
    replaces `training_metadata.json`, which names that file: the metadata
    is the commit point, and a restore loads exactly the weights it names.
    Older weights files are deleted after the commit; other files in the
    folder are left alone.

    The weights file holds the model's weights and the optimizer's (its
    iteration count, learning rate and momentum slots). The metadata also
    holds `get_state()` of each callback in `state_of` (`PlateauDecay`,
    `ErrorWarmUp`, `AtomicModelCheckpoint`), restored at the start of the
    resumed `fit`: put this callback after them in `fit`'s list, so that it
    saves what they did in an epoch and restores after they reset.

    An integer `save_freq` counts batches, as Keras does, also when a
    model compiled with `steps_per_execution` runs several per callback
    call. A save in the middle of epoch `e` records
    epoch `e` (saves after a restart keep counting from the restored epoch);
    the resumed `fit` starts epoch `e` from its first batch, from the
    weights of the save, as Keras does.

    Args:
        backup_dir: the backup folder.
        state_of: callbacks with `get_state()` and `set_state(state)` whose
            state the backup keeps.
        **kwargs: other arguments of `keras.callbacks.BackupAndRestore`
            (`save_freq`, `delete_checkpoint`).

    Example:

    ```python
    import tempfile

    backup_dir = tempfile.mkdtemp()
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    model.compile("sgd", "mse")
    backup = AtomicBackupAndRestore(backup_dir, delete_checkpoint=False)
    model.fit(np.ones((4, 2)), np.ones((4, 1)), epochs=2, verbose=0, callbacks=[backup])
    sorted(os.listdir(backup_dir)) == ["epoch2-batch0.weights.h5", "training_metadata.json"]  # 1
    resume_epoch(backup_dir)  # 2
    ```
    """

    def __init__(self, backup_dir, *, state_of=(), **kwargs):
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
        # Only files this class writes: the folder may hold others.
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

    Every worker saves at the same points (reading distributed variables may
    need all of them), but only the chief writes into `backup_dir`; the
    others write to a temporary folder, deleted when training ends. At the
    start of `fit` every worker loads the chief's backup, so a cluster
    restarted after a crash resumes, in step, from the chief's last finished
    epoch. `keras_resnet.training.run_callbacks(..., is_chief=False)` uses it.

    Args:
        backup_dir: the backup folder, on a file system every worker mounts.
        is_chief: bool, whether this process is the chief
            (`keras_resnet.training.distribute.Replication.is_chief`).
        **kwargs: other arguments of `AtomicBackupAndRestore` (`state_of`,
            `save_freq`, `delete_checkpoint`).

    Example:

    ```python
    backup = ClusterBackupAndRestore(os.path.join(tempfile.mkdtemp(), "backup"), is_chief=False)
    backup.backup_dir != backup.shared_dir  # 1
    ```
    """

    def __init__(self, backup_dir, *, is_chief, **kwargs):
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
    """Deletes a folder when training ends: the scratch folder of a worker that is not the chief.

    Args:
        directory: the folder to delete (with everything in it).

    Example:

    ```python
    scratch = tempfile.mkdtemp()
    DeleteOnTrainEnd(scratch).on_train_end()
    os.path.exists(scratch)  # 0
    ```
    """

    def __init__(self, directory):
        super().__init__()
        check_path("directory", directory)
        self.directory = os.fspath(directory)

    def on_train_end(self, logs=None):
        shutil.rmtree(self.directory, ignore_errors=True)
