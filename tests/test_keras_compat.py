"""One test per private Keras use fenced in `keras_resnet._keras_compat`: each fails naming the Keras change."""

import keras
import numpy as np

from keras_resnet import _keras_compat


def _tiny_fit(callbacks, epochs=2):
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    model.compile("sgd", "mse")
    x = np.ones((4, 2), "float32")
    return model, model.fit(x, np.ones((4, 1)), validation_data=(x, np.ones((4, 1))), epochs=epochs, verbose=0,
                            batch_size=2, callbacks=callbacks)


def test_route_checkpoint_saves_sees_every_save_with_keras_formatting_and_best():
    @_keras_compat.route_checkpoint_saves
    class Recording(keras.callbacks.ModelCheckpoint):
        def write(self, filepath):
            written.append(filepath)

    written = []
    _tiny_fit([Recording("epoch{epoch}.keras")])
    assert written == ["epoch1.keras", "epoch2.keras"], (
        "keras.callbacks.ModelCheckpoint no longer saves through _save_model/_get_file_path: "
        f"keras {keras.__version__} changed how checkpoints are written; received {written}")
    written.clear()
    best = Recording("best.keras", monitor="val_loss", save_best_only=True, initial_value_threshold=-1.0)
    _tiny_fit([best])
    assert written == [] and best.best == -1.0, (
        "ModelCheckpoint._should_save_model no longer decides save_best_only from best: "
        f"keras {keras.__version__} changed it")


def test_set_initial_epoch_makes_fit_start_there():
    seen = []

    class StartAtTwo(keras.callbacks.Callback):
        def on_train_begin(self, logs=None):
            _keras_compat.set_initial_epoch(self.model, 2)

        def on_epoch_begin(self, epoch, logs=None):
            seen.append(epoch)

    _tiny_fit([StartAtTwo()], epochs=4)
    assert seen == [2, 3], (
        f"Model._initial_epoch set in on_train_begin no longer moves fit's first epoch: keras {keras.__version__} "
        f"changed how BackupAndRestore resumes; epochs run: {seen}")
