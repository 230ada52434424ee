import inspect
import re

import keras
import numpy as np
import pytest
from recipe_helpers import compiled

from keras_resnet.recipes import StepDecay
from keras_resnet.training import backup, callbacks, run_folder


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


@pytest.mark.parametrize("module, name", [(m, n) for m in (callbacks, backup) for n in m.__all__])
def test_docstring_examples_run_and_hold(module, name):
    import keras_resnet

    doc = inspect.getdoc(getattr(module, name))
    if hasattr(keras_resnet, name):  # exported at the top: documented in full
        assert "Example:" in doc
        assert "Args:" in doc or not inspect.signature(getattr(module, name)).parameters
    for block in re.findall(r"```python\n(.*?)```", doc, re.S):
        # `expression  # number` lines state a result: check it.
        exec(
            re.sub(r"^(\S.*?)  # (-?[\d.]+)$", r"assert abs((\1) - \2) < 1e-6", block, flags=re.M),
            vars(module).copy(),
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
