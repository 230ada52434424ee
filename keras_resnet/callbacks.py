"""Learning-rate callbacks of the paper's recipes.

`PlateauDecay` divides the learning rate by 10 when the validation error stops
improving (the ImageNet recipe); `ErrorWarmUp` trains at a small learning rate
until the training error drops under a threshold (the ResNet-110 recipe on
CIFAR-10). Both set the optimizer's learning rate, so the optimizer needs a
float learning rate rather than a `LearningRateSchedule`;
`keras_resnet.presets` wires them for its recipes.
"""

import keras

__all__ = ["ErrorWarmUp", "PlateauDecay"]


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
            "with learning_rate=<float> (keras_resnet.presets: schedule='plateau' or "
            "error_warmup_lr=...).")


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
        super().__init__(monitor=monitor, factor=factor, patience=patience, **kwargs)

    def on_train_begin(self, logs=None):
        _require_float_learning_rate(self)
        super().on_train_begin(logs)


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

    def __init__(self, learning_rate, warmup_learning_rate=0.01, max_error=0.8,
                 monitor="accuracy"):
        super().__init__()
        if not 0 < max_error <= 1:
            raise ValueError(
                f"max_error must be a number in (0, 1]; received max_error={max_error!r}")
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
                f"(they have {sorted(logs)}); compile the model with metrics=['accuracy']")
        if 1 - float(logs[self.monitor]) < self.max_error:
            self.switched_at = int(keras.ops.convert_to_numpy(_synced_optimizer(self.model).iterations))
            self._set_learning_rate()
