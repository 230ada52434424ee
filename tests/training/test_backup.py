import contextlib
import json
import os

import keras
import numpy as np
import pytest
from recipe_helpers import compiled

from keras_resnet.training.backup import (
    AtomicBackupAndRestore,
    AtomicModelCheckpoint,
    ClusterBackupAndRestore,
    resume_epoch,
)
from keras_resnet.training.callbacks import PlateauDecay


def _plateau_run(directory, epochs, interrupt_after=None):
    """A fit with PlateauDecay and a best checkpoint, optionally stopped after an epoch as a kill would."""
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)])
    model.compile(
        keras.optimizers.SGD(0.5, momentum=0.9),
        keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    decay = PlateauDecay(monitor="val_loss", patience=1, mode="min", min_delta=10.0)
    best = AtomicModelCheckpoint(str(directory / "best.keras"), monitor="val_loss", save_best_only=True)
    backup = AtomicBackupAndRestore(directory / "backup", state_of=[decay, best])

    class Interrupt(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            if epoch == interrupt_after:
                raise KeyboardInterrupt

    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(16, 4)).astype("float32"), rng.integers(0, 2, 16)
    with contextlib.suppress(KeyboardInterrupt):
        model.fit(
            x,
            y,
            batch_size=8,
            epochs=epochs,
            validation_data=(x, y),
            verbose=0,
            shuffle=False,
            callbacks=[decay, best, backup, Interrupt()],
        )
    return model, decay, best


def test_a_resumed_fit_keeps_the_plateau_state_best_value_and_optimizer(tmp_path):
    (tmp_path / "a").mkdir(), (tmp_path / "b").mkdir()
    reference, reference_decay, reference_best = _plateau_run(tmp_path / "a", 5)
    _plateau_run(tmp_path / "b", 5, interrupt_after=2)
    assert resume_epoch(tmp_path / "b" / "backup") == 3
    resumed, decay, best = _plateau_run(tmp_path / "b", 5)
    # min_delta=10: no epoch improves enough, so the rate drops every other epoch, counted across the restart.
    assert float(resumed.optimizer.learning_rate) == pytest.approx(float(reference.optimizer.learning_rate))
    assert float(resumed.optimizer.learning_rate) < 0.5 * 0.1
    assert (decay.wait, decay.best) == (reference_decay.wait, reference_decay.best)
    assert best.best == reference_best.best
    for mine, theirs in zip(
        [*resumed.weights, *resumed.optimizer.variables], [*reference.weights, *reference.optimizer.variables]
    ):
        np.testing.assert_allclose(mine.numpy(), theirs.numpy(), rtol=1e-6, err_msg=mine.path)


def test_integer_save_freq_records_the_epoch_in_progress_after_a_restart(tmp_path):
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    model.compile("sgd", "mse")
    x, y = np.ones((8, 2), "float32"), np.ones((8, 1))
    backup = AtomicBackupAndRestore(tmp_path, save_freq=3, delete_checkpoint=False)
    model.fit(x, y, batch_size=2, epochs=2, verbose=0, callbacks=[backup])  # 8 batches: saves after 3 and 6
    assert json.loads((tmp_path / "training_metadata.json").read_text())["epoch"] == 1
    model.fit(x, y, batch_size=2, epochs=3, verbose=0, callbacks=[backup])  # resumes at epoch 1; saves at 3, 6
    metadata = json.loads((tmp_path / "training_metadata.json").read_text())
    assert (metadata["epoch"], metadata["batch"]) == (2, 2)  # 2 batches of epoch 2 done


def test_a_backup_refuses_callbacks_without_state():
    with pytest.raises(ValueError, match="state_of must hold callbacks with get_state"):
        AtomicBackupAndRestore("backup", state_of=[keras.callbacks.CSVLogger("log.csv")])


def test_non_chief_restores_the_chief_backup_and_writes_elsewhere(tmp_path):
    x, y = np.ones((8, 4), "float32"), np.zeros(8, "int32")
    shared = tmp_path / "backup"
    chief = ClusterBackupAndRestore(shared, is_chief=True, delete_checkpoint=False)
    compiled().fit(x, y, epochs=2, callbacks=[chief], verbose=0)
    backup = {path.name: path.stat().st_mtime_ns for path in shared.iterdir()}

    worker = ClusterBackupAndRestore(shared, is_chief=False)
    history = compiled().fit(x, y, epochs=3, callbacks=[worker], verbose=0).history
    assert len(history["loss"]) == 1  # resumed after the chief's 2 epochs
    assert {path.name: path.stat().st_mtime_ns for path in shared.iterdir()} == backup
    assert not os.path.exists(worker.backup_dir)


def test_plateau_state_can_be_saved_before_the_first_epoch_ends(tmp_path):
    model = compiled()
    decay = PlateauDecay(patience=1, mode="max")
    backup = AtomicBackupAndRestore(tmp_path, state_of=[decay], save_freq=1, delete_checkpoint=False)
    x, y = np.ones((8, 4), "float32"), np.zeros(8, "int32")
    model.fit(x, y, batch_size=4, epochs=1, validation_data=(x, y), verbose=0, callbacks=[decay, backup])
    # The mid-epoch saves ran before the plateau had a best value; the last one (epoch 0, batch 2) is one of them.
    metadata = json.loads((tmp_path / "training_metadata.json").read_text())
    assert (metadata["epoch"], metadata["batch"]) == (0, 2)
    assert metadata["callbacks"]["0:PlateauDecay"]["best"] is None
    resumed = PlateauDecay(patience=1, mode="max")
    resumed.set_state(metadata["callbacks"]["0:PlateauDecay"])
    assert resumed.best is None


class _CountingBackup(AtomicBackupAndRestore):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.saved_at = []

    def _save(self, epoch, batch):
        self.saved_at.append((epoch, batch))
        super()._save(epoch, batch)


def test_integer_save_freq_counts_batches_whatever_steps_per_execution(tmp_path):
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    model.compile("sgd", "mse", steps_per_execution=4)
    backup = _CountingBackup(tmp_path, save_freq=4, delete_checkpoint=False)
    x, y = np.ones((24, 2), "float32"), np.ones((24, 1))
    model.fit(x, y, batch_size=2, epochs=2, verbose=0, callbacks=[backup])  # 12 batches per epoch
    assert backup.saved_at == [(0, 4), (0, 8), (0, 12), (1, 4), (1, 8), (1, 12)]


def test_a_shared_backup_folder_keeps_the_files_the_backup_did_not_write(tmp_path):
    theirs = ["model.weights.h5", "notes.txt", "epoch1-final.weights.h5"]
    for name in theirs:
        (tmp_path / name).write_text("not the backup's")
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    model.compile("sgd", "mse")
    backup = AtomicBackupAndRestore(tmp_path)
    model.fit(np.ones((4, 2)), np.ones((4, 1)), epochs=3, verbose=0, callbacks=[backup])
    # Three saves, each deleting the previous backup's weights, then the end of training deletes the backup.
    assert sorted(path.name for path in tmp_path.iterdir()) == sorted(theirs)
    assert all((tmp_path / name).read_text() == "not the backup's" for name in theirs)
