import contextlib
import inspect
import json
import os
import re

import keras
import numpy as np
import pytest

from keras_resnet.recipes import StepDecay
from keras_resnet.training import callbacks, run_folder


def compiled(learning_rate=0.1):
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)])
    loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    model.compile(keras.optimizers.SGD(learning_rate), loss, metrics=["accuracy"])
    return model


def attached(callback, model):
    callback.set_model(model)
    callback.on_train_begin()
    return callback


def learning_rate(model):
    return float(model.optimizer.learning_rate)


def test_plateau_divides_by_10_once_per_plateau():
    model = compiled()
    decay = attached(callbacks.PlateauDecay(patience=3, mode="max"), model)
    # Validation error 0.9, 0.8, 0.7, then flat: a plateau of 3 epochs, 2 more flat epochs
    # (too short for a second division), an improvement, and a second plateau.
    errors = [0.9, 0.8, 0.7, 0.7, 0.7, 0.7, 0.7, 0.7, 0.6, 0.6, 0.6, 0.6]
    rates = []
    for epoch, error in enumerate(errors):
        decay.on_epoch_end(epoch, {"val_accuracy": 1 - error})
        rates.append(learning_rate(model))
    assert rates == pytest.approx([0.1] * 5 + [0.01] * 6 + [0.001])


def test_plateau_needs_a_float_learning_rate():
    model = compiled(StepDecay(0.1, boundaries=(10,)))
    with pytest.raises(ValueError, match="PlateauDecay .* needs a float learning rate"):
        attached(callbacks.PlateauDecay(), model)


def test_error_warmup_switches_up_once_when_error_drops_under_80_percent():
    model = compiled()
    warmup = attached(callbacks.ErrorWarmUp(0.1), model)
    rates = []
    for batch, accuracy in enumerate([0.05, 0.12, 0.19, 0.21, 0.1, 0.5, 0.1]):
        model.optimizer.iterations.assign(batch + 1)
        warmup.on_train_batch_end(batch, {"accuracy": accuracy})
        rates.append(learning_rate(model))
    assert rates == pytest.approx([0.01] * 3 + [0.1] * 4)
    assert warmup.switched_at == 4
    warmup.on_train_begin()  # a later fit with the same callback does not warm up again
    assert learning_rate(model) == pytest.approx(0.1)


def test_error_warmup_hands_over_to_a_schedule():
    model = compiled()
    warmup = attached(callbacks.ErrorWarmUp(StepDecay(0.1, boundaries=(100,))), model)
    warmup.on_train_batch_end(0, {"accuracy": 0.5})
    assert learning_rate(model) == pytest.approx(0.1)
    model.optimizer.iterations.assign(100)
    warmup.on_train_batch_begin(1)
    assert learning_rate(model) == pytest.approx(0.01)


def test_error_warmup_in_a_fit():
    model = compiled()
    rates = []
    record = keras.callbacks.LambdaCallback(
        on_train_batch_begin=lambda batch, logs: rates.append(float(callbacks._synced_optimizer(model).learning_rate))
    )
    rng = np.random.default_rng(0)
    x, y = rng.random((32, 4), dtype="float32"), rng.integers(0, 2, 32)
    warmup = callbacks.ErrorWarmUp(0.1, max_error=0.9)
    model.fit(x, y, batch_size=8, epochs=1, verbose=0, callbacks=[warmup, record])
    assert rates == pytest.approx([0.01, 0.1, 0.1, 0.1])
    assert warmup.switched_at == 1


def test_error_warmup_asks_for_the_accuracy_metric():
    model = compiled()
    warmup = attached(callbacks.ErrorWarmUp(0.1), model)
    with pytest.raises(ValueError, match="monitor='accuracy', which is not in the logs"):
        warmup.on_train_batch_end(0, {"loss": 1.0})


def test_error_warmup_rejects_a_bad_max_error():
    pattern = r"max_error must be a number in \(0, 1\]; received max_error=80"
    with pytest.raises(ValueError, match=pattern):
        callbacks.ErrorWarmUp(0.1, max_error=80)


@pytest.mark.parametrize("name", callbacks.__all__)
def test_docstring_examples_run_and_hold(name):
    doc = inspect.getdoc(getattr(callbacks, name))
    assert "Args:" in doc and "Example:" in doc
    for block in re.findall(r"```python\n(.*?)```", doc, re.S):
        # `expression  # number` lines state a result: check it.
        exec(
            re.sub(r"^(\S.*?)  # (-?[\d.]+)$", r"assert abs((\1) - \2) < 1e-6", block, flags=re.M),
            vars(callbacks).copy(),
        )


class _DivergeAtEpoch(keras.callbacks.Callback):
    """Sets a learning rate of 1e6 from the second epoch on."""

    def on_epoch_begin(self, epoch, logs=None):
        if epoch == 1:
            self.model.optimizer.learning_rate = 1e6


def test_diverging_run_stops_naming_the_step_and_keeps_the_last_good_checkpoints(tmp_path):
    from keras_resnet import recipes

    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(8, activation="relu"), keras.layers.Dense(2)])
    recipes.compile_for(model, "imagenet", lr=0.01)  # a float learning rate
    x = np.random.default_rng(0).normal(size=(32, 4)).astype("float32") * 100
    y = (x[:, 0] > 0).astype("int32")
    run = [_DivergeAtEpoch()] + run_folder.run_callbacks("imagenet", tmp_path, tensorboard=False)
    good = {}
    run.append(
        keras.callbacks.LambdaCallback(
            on_epoch_end=lambda epoch, logs: good.setdefault(epoch, [w.numpy() for w in model.weights])
        )
    )
    with pytest.raises(FloatingPointError, match=r"at step (\d+) \(epoch 2, batch \d+\)") as error:
        model.fit(x, y, batch_size=4, epochs=3, validation_data=(x, y), callbacks=run, verbose=0)
    step = int(re.search(r"at step (\d+)", str(error.value)).group(1))
    assert 8 < step <= 16  # in the second epoch of 8 steps
    assert list(good) == [0]  # the broken epoch reached no checkpoint
    last = keras.saving.load_model(tmp_path / "last.keras")
    for saved, expected in zip(last.weights, good[0]):
        np.testing.assert_array_equal(saved.numpy(), expected)
    metadata = (tmp_path / "backup" / "training_metadata.json").read_text()
    assert '"epoch": 1' in metadata


def test_stop_on_nan_checks_the_weights_at_the_end_of_an_epoch():
    model = compiled()
    model.layers[0].kernel.assign(np.full((4, 2), np.nan))
    guard = attached(callbacks.StopOnNaN(), model)
    with pytest.raises(FloatingPointError, match=r"weight '.*kernel' became non-finite at step 0"):
        guard.on_epoch_end(0, {"val_loss": 1.0})


def _plateau_run(directory, epochs, interrupt_after=None):
    """A fit with PlateauDecay and a best checkpoint, optionally stopped after an epoch as a kill would."""
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)])
    model.compile(
        keras.optimizers.SGD(0.5, momentum=0.9),
        keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    decay = callbacks.PlateauDecay(monitor="val_loss", patience=1, mode="min", min_delta=10.0)
    best = callbacks.AtomicModelCheckpoint(str(directory / "best.keras"), monitor="val_loss", save_best_only=True)
    backup = callbacks.AtomicBackupAndRestore(directory / "backup", state_of=[decay, best])

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
    assert callbacks.resume_epoch(tmp_path / "b" / "backup") == 3
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
    backup = callbacks.AtomicBackupAndRestore(tmp_path, save_freq=3, delete_checkpoint=False)
    model.fit(x, y, batch_size=2, epochs=2, verbose=0, callbacks=[backup])  # 8 batches: saves after 3 and 6
    assert json.loads((tmp_path / "training_metadata.json").read_text())["epoch"] == 1
    model.fit(x, y, batch_size=2, epochs=3, verbose=0, callbacks=[backup])  # resumes at epoch 1; saves at 3, 6
    metadata = json.loads((tmp_path / "training_metadata.json").read_text())
    assert (metadata["epoch"], metadata["batch"]) == (2, 2)  # 2 batches of epoch 2 done


def test_a_backup_refuses_callbacks_without_state():
    with pytest.raises(ValueError, match="state_of must hold callbacks with get_state"):
        callbacks.AtomicBackupAndRestore("backup", state_of=[keras.callbacks.CSVLogger("log.csv")])


def test_non_chief_restores_the_chief_backup_and_writes_elsewhere(tmp_path):
    x, y = np.ones((8, 4), "float32"), np.zeros(8, "int32")
    shared = tmp_path / "backup"
    chief = callbacks.ClusterBackupAndRestore(shared, is_chief=True, delete_checkpoint=False)
    compiled().fit(x, y, epochs=2, callbacks=[chief], verbose=0)
    backup = {path.name: path.stat().st_mtime_ns for path in shared.iterdir()}

    worker = callbacks.ClusterBackupAndRestore(shared, is_chief=False)
    history = compiled().fit(x, y, epochs=3, callbacks=[worker], verbose=0).history
    assert len(history["loss"]) == 1  # resumed after the chief's 2 epochs
    assert {path.name: path.stat().st_mtime_ns for path in shared.iterdir()} == backup
    assert not os.path.exists(worker.backup_dir)


def test_plateau_state_can_be_saved_before_the_first_epoch_ends(tmp_path):
    model = compiled()
    decay = callbacks.PlateauDecay(patience=1, mode="max")
    backup = callbacks.AtomicBackupAndRestore(tmp_path, state_of=[decay], save_freq=1, delete_checkpoint=False)
    x, y = np.ones((8, 4), "float32"), np.zeros(8, "int32")
    model.fit(x, y, batch_size=4, epochs=1, validation_data=(x, y), verbose=0, callbacks=[decay, backup])
    # The mid-epoch saves ran before the plateau had a best value; the last one (epoch 0, batch 2) is one of them.
    metadata = json.loads((tmp_path / "training_metadata.json").read_text())
    assert (metadata["epoch"], metadata["batch"]) == (0, 2)
    assert metadata["callbacks"]["0:PlateauDecay"]["best"] is None
    resumed = callbacks.PlateauDecay(patience=1, mode="max")
    resumed.set_state(metadata["callbacks"]["0:PlateauDecay"])
    assert resumed.best is None


class _CountingBackup(callbacks.AtomicBackupAndRestore):
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
    backup = callbacks.AtomicBackupAndRestore(tmp_path)
    model.fit(np.ones((4, 2)), np.ones((4, 1)), epochs=3, verbose=0, callbacks=[backup])
    # Three saves, each deleting the previous backup's weights, then the end of training deletes the backup.
    assert sorted(path.name for path in tmp_path.iterdir()) == sorted(theirs)
    assert all((tmp_path / name).read_text() == "not the backup's" for name in theirs)
