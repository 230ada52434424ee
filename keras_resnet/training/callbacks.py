"""Callbacks that carry part of the paper's schedules (they set a float learning rate), and the stop on a
diverging run. The crash-safe checkpoints live in `keras_resnet.training.backup`."""

from __future__ import annotations

import math

import keras
import numpy as np

from keras_resnet._validation import is_real, require
from keras_resnet.training.backup import (  # noqa: F401 (re-exported: their home before backup.py)
    AtomicBackupAndRestore,
    AtomicModelCheckpoint,
    ClusterBackupAndRestore,
    DeleteOnTrainEnd,
    resume_epoch,
)

__all__ = ["ErrorWarmUp", "PlateauDecay", "StopOnNaN"]


def _synced_optimizer(model):
    # During a JAX fit the variables live in a traced state: sync so the next step reads what we assign.
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

    `keras.callbacks.ReduceLROnPlateau` with the paper's factor on the validation accuracy, and a state for
    `AtomicBackupAndRestore`.

    Args:
        monitor: the log key to watch.
        patience: epochs without improvement before dividing.
        factor: the multiplier of the learning rate, in (0, 1).
        **kwargs: other arguments of `keras.callbacks.ReduceLROnPlateau` (`min_delta`, `cooldown`, ...).

    Example:

    ```python
    decay = PlateauDecay(patience=5)  # model.fit(..., validation_data=..., callbacks=[decay])
    ```
    """

    def __init__(self, monitor: str = "val_accuracy", patience: int = 5, factor: float = 0.1, **kwargs):
        require(is_real(factor) and 0 < factor < 1, "factor", factor, "a number in (0, 1)")
        super().__init__(monitor=monitor, factor=factor, patience=patience, **kwargs)

    def on_train_begin(self, logs=None):
        _require_float_learning_rate(self)
        super().on_train_begin(logs)

    def get_state(self) -> dict:
        """The plateau's state for a backup: `wait`, `best` (`None` before the first epoch) and `cooldown_counter`."""
        best = None if self.best is None else float(self.best)
        return {"wait": int(self.wait), "best": best, "cooldown_counter": int(self.cooldown_counter)}

    def set_state(self, state: dict) -> None:
        """Restores `get_state()`'s dict, after `on_train_begin` (which resets the state)."""
        self.wait, self.best, self.cooldown_counter = state["wait"], state["best"], state["cooldown_counter"]


class ErrorWarmUp(keras.callbacks.Callback):
    """Trains at a small learning rate until the training error is low enough.

    The paper's ResNet-110 warm-up. It switches once, the first time the running `1 - accuracy < max_error`
    (`switched_at` records the iteration); a `LearningRateSchedule` is then evaluated before every batch.

    Args:
        learning_rate: the rate after the warm-up.
        warmup_learning_rate: the rate during the warm-up.
        max_error: the training error in (0, 1] that ends the warm-up.
        monitor: the log key of the training accuracy.

    Example:

    ```python
    warmup = ErrorWarmUp(0.1, warmup_learning_rate=0.01, max_error=0.8)  # model.fit(..., callbacks=[warmup])
    ```
    """

    def __init__(
        self,
        learning_rate: float | keras.optimizers.schedules.LearningRateSchedule,
        warmup_learning_rate: float = 0.01,
        max_error: float = 0.8,
        monitor: str = "accuracy",
    ):
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

    def get_state(self) -> dict:
        """The warm-up's state for a backup: `{"switched_at": iteration or None}`."""
        return {"switched_at": self.switched_at}

    def set_state(self, state: dict) -> None:
        """Restores `get_state()`'s dict."""
        self.switched_at = state["switched_at"]


class StopOnNaN(keras.callbacks.TerminateOnNaN):
    """Stops training at the first NaN or infinite loss, naming the step.

    Raises `FloatingPointError`, also at the end of an epoch whose validation loss or weights are not
    finite; placed before the checkpoint callbacks it stops the run before they save the broken epoch.

    Args:
        None: put it in `fit`'s callbacks before any checkpoint callback.

    Example:

    ```python
    callbacks = [StopOnNaN(), keras.callbacks.ModelCheckpoint("last.keras")]  # model.fit(..., callbacks=callbacks)
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
