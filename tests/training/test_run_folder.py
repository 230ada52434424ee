import csv
import os

import keras
import numpy as np
import pytest
from recipe_helpers import tiny_data, tiny_model

from keras_resnet import recipes
from keras_resnet.training import callbacks, run_folder
from keras_resnet.training.callbacks import ErrorWarmUp, PlateauDecay


def test_callback_set_follows_the_recipe(tmp_path, monkeypatch):
    kinds = lambda callbacks: [type(c).__name__ for c in callbacks]  # noqa: E731
    assert kinds(run_folder.run_callbacks("cifar10")) == ["StopOnNaN"]
    assert kinds(run_folder.run_callbacks("imagenet")) == ["PlateauDecay", "StopOnNaN"]
    warmup = run_folder.run_callbacks("cifar10_resnet110")[0]
    assert isinstance(warmup, ErrorWarmUp) and warmup.warmup_learning_rate == 0.01
    assert isinstance(warmup.learning_rate, recipes.StepDecay)
    monkeypatch.setattr(run_folder.importlib.util, "find_spec", lambda name: object())
    assert kinds(run_folder.run_callbacks("imagenet", tmp_path, save_best=False)) == [
        "PlateauDecay",
        "StopOnNaN",
        "AtomicModelCheckpoint",
        "CSVLogger",
        "AtomicBackupAndRestore",
        "TensorBoard",
    ]
    assert isinstance(run_folder.run_callbacks("imagenet", plateau_patience=3)[0], PlateauDecay)


def test_standard_set_writes_csv_and_checkpoints(tmp_path):
    model = tiny_model()
    recipe = recipes.compile_for(model, "cifar10_resnet110")
    x, y = tiny_data()
    model.fit(
        x,
        y,
        batch_size=8,
        epochs=2,
        validation_data=(x, y),
        verbose=0,
        callbacks=run_folder.run_callbacks(recipe, tmp_path),
    )
    with open(tmp_path / "log.csv") as f:
        assert [row["epoch"] for row in csv.DictReader(f)] == ["0", "1"]
    for name in ("best.keras", "last.keras"):
        loaded = keras.saving.load_model(tmp_path / name)
        assert int(loaded.optimizer.iterations) in (4, 8)
    assert not (tmp_path / "backup").exists()  # a finished fit drops its backup


class CrashAt(keras.callbacks.Callback):
    def __init__(self, epoch):
        super().__init__()
        self.epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        if self.epoch == self.current_epoch and batch == 1:
            raise RuntimeError("simulated crash")

    def on_epoch_begin(self, epoch, logs=None):
        self.current_epoch = epoch


def train(directory, extra_callbacks=(), model=None):
    model = model or tiny_model()
    recipes.compile_for(model, "cifar10")
    x, y = tiny_data()
    callbacks = run_folder.run_callbacks("cifar10", directory, save_best=False) + list(extra_callbacks)
    model.fit(x, y, batch_size=8, epochs=4, shuffle=False, verbose=0, callbacks=callbacks)
    return model


def test_backup_and_restore_resumes_a_crashed_fit(tmp_path):
    reference = train(tmp_path / "reference")
    with pytest.raises(RuntimeError, match="simulated crash"):
        train(tmp_path / "run", [CrashAt(epoch=2)])
    epochs = []
    resumed = train(
        tmp_path / "run", [keras.callbacks.LambdaCallback(on_epoch_begin=lambda epoch, logs: epochs.append(epoch))]
    )
    assert epochs == [2, 3]
    assert int(resumed.optimizer.iterations) == int(reference.optimizer.iterations) == 16
    for got, want in zip(resumed.weights, reference.weights):
        np.testing.assert_allclose(got.numpy(), want.numpy(), rtol=1e-5, atol=1e-6)
    with open(tmp_path / "run" / "log.csv") as f:
        assert [row["epoch"] for row in csv.DictReader(f)] == ["0", "1", "2", "3"]


def test_only_the_chief_writes_the_run_folder(tmp_path):
    directory = tmp_path / "run"
    worker = run_folder.run_callbacks("cifar10", str(directory), is_chief=False, tensorboard=False)
    assert not directory.exists()
    backups = [c for c in worker if isinstance(c, keras.callbacks.BackupAndRestore)]
    assert [(type(c), c.shared_dir) for c in backups] == [
        (callbacks.ClusterBackupAndRestore, str(directory / "backup"))
    ]
    scratch = {os.path.dirname(c.filepath) for c in worker if isinstance(c, keras.callbacks.ModelCheckpoint)}
    assert len(scratch) == 1 and os.path.isdir(*scratch)
    for callback in worker:
        callback.on_train_end()
    assert not directory.exists() and not os.path.exists(*scratch)

    chief = run_folder.run_callbacks("cifar10", str(directory), is_chief=True, tensorboard=False)
    assert {os.path.dirname(c.filepath) for c in chief if isinstance(c, keras.callbacks.ModelCheckpoint)} == {
        str(directory)
    }
