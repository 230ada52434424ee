"""Every use of a private Keras entry point, fenced in one module.

The rest of the package calls only public Keras plus the functions here. Each function names the private
Keras method or module it relies on, and `tests/test_keras_compat.py` has one test per use that fails with
a message naming the Keras change when a Keras release breaks it. `setup.cfg` pins the Keras releases
those tests passed on.
"""

import keras

_CHECKPOINT_METHODS = ("_save_model", "_get_file_path", "_should_save_model")


def route_checkpoint_saves(cls):
    """Class decorator: a `keras.callbacks.ModelCheckpoint` subclass whose saves go through `cls.write`.

    Private Keras: `ModelCheckpoint._save_model(epoch, batch, logs)`, which `on_epoch_end` and
    `on_train_batch_end` call for every save, `_get_file_path(epoch, batch, logs)` (formats `filepath`) and
    `_should_save_model(epoch, batch, logs, filepath)` (the `save_best_only` decision; it updates `best`).
    Keras writes the file with `model.save`/`save_weights` in place; the decorated class's
    `write(filepath)` writes it instead, and everything else (formatting, `best`, `save_freq`) stays Keras'.

    Args:
        cls: a subclass of `keras.callbacks.ModelCheckpoint` with a `write(filepath)` method.

    Returns:
        `cls`, its `_save_model` replaced.
    """
    missing = [name for name in _CHECKPOINT_METHODS if not callable(getattr(keras.callbacks.ModelCheckpoint, name, None))]
    if missing:
        raise ImportError(
            f"keras {keras.__version__} changed keras.callbacks.ModelCheckpoint: it has no private method(s) "
            f"{missing}, through which keras_resnet writes checkpoints atomically; use a Keras release that "
            "setup.cfg names"
        )

    def _save_model(self, epoch, batch, logs):
        filepath = self._get_file_path(epoch, batch, logs)
        if self._should_save_model(epoch, batch, logs, filepath):
            self.write(filepath)

    cls._save_model = _save_model
    return cls


def set_initial_epoch(model, epoch):
    """Makes the `fit` running now start at `epoch`; call it from a callback's `on_train_begin`.

    Private Keras: `Model._initial_epoch`, which `fit` reads after `on_train_begin` (as
    `keras.callbacks.BackupAndRestore` sets it).

    Args:
        model: the `keras.Model` being fitted.
        epoch: int, the first epoch to run.
    """
    if not hasattr(model, "_initial_epoch"):
        raise AttributeError(
            f"keras {keras.__version__} changed keras.Model: it has no private attribute _initial_epoch, which "
            "fit read after on_train_begin to resume at a backup's epoch; use a Keras release that setup.cfg names"
        )
    model._initial_epoch = int(epoch)
