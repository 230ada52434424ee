"""The optimizer and learning-rate schedules of the paper's recipes (`keras_resnet.recipes` assembles them)."""

from __future__ import annotations

from collections.abc import Sequence

import keras
from keras import ops

from keras_resnet import _keras_compat
from keras_resnet._validation import check_int, is_int, is_real, require

__all__ = ["L2SGD", "LinearWarmUp", "StepDecay"]


@keras.saving.register_keras_serializable(package="keras_resnet")
class StepDecay(keras.optimizers.schedules.PiecewiseConstantDecay):
    """Multiplies the learning rate by `factor` at each boundary (at it, as the paper; Keras drops one step later).

    Args:
        initial_learning_rate: the rate before the first boundary.
        boundaries: increasing iterations where the rate drops.
        factor: the multiplier at each boundary.

    Example:

    >>> round(float(StepDecay(0.1, boundaries=(2, 4))(2)), 6)  # already divided at the boundary
    0.01
    """

    def __init__(self, initial_learning_rate: float, boundaries: Sequence[int], factor: float = 0.1):
        require(
            all(is_int(b) for b in boundaries) and list(boundaries) == sorted(set(boundaries)),
            "boundaries",
            boundaries,
            "increasing integers",
        )
        self.initial_learning_rate = initial_learning_rate
        self.drop_steps = tuple(boundaries)
        self.factor = factor
        rates = [initial_learning_rate * factor**drops for drops in range(len(boundaries) + 1)]
        # `boundaries` holds each drop minus one; without drops, two equal pieces (Keras needs a boundary).
        super().__init__([b - 1 for b in boundaries] or [0], rates if boundaries else rates * 2)

    def get_config(self) -> dict:
        return {
            "initial_learning_rate": self.initial_learning_rate,
            "boundaries": list(self.drop_steps),
            "factor": self.factor,
        }


@keras.saving.register_keras_serializable(package="keras_resnet")
class LinearWarmUp(keras.optimizers.schedules.LearningRateSchedule):
    """Ramps linearly from `initial_learning_rate` into another schedule, which sees the same iteration count.

    Args:
        schedule: the `LearningRateSchedule` to ramp into.
        warmup_steps: iterations of the ramp.
        initial_learning_rate: the rate at iteration 0.
    """

    def __init__(
        self,
        schedule: keras.optimizers.schedules.LearningRateSchedule,
        warmup_steps: int,
        initial_learning_rate: float = 0.0,
    ):
        check_int("warmup_steps", warmup_steps)
        self.schedule = schedule
        self.warmup_steps = warmup_steps
        self.initial_learning_rate = initial_learning_rate

    def __call__(self, step):
        target = self.schedule(step)
        done = ops.minimum(ops.cast(step, "float32") / self.warmup_steps, 1.0)
        return self.initial_learning_rate + (target - self.initial_learning_rate) * done

    def get_config(self) -> dict:
        return {
            "schedule": keras.optimizers.schedules.serialize(self.schedule),
            "warmup_steps": self.warmup_steps,
            "initial_learning_rate": self.initial_learning_rate,
        }

    @classmethod
    def from_config(cls, config: dict) -> LinearWarmUp:
        schedule = keras.optimizers.schedules.deserialize(config["schedule"])
        return cls(**{**config, "schedule": schedule})


@keras.saving.register_keras_serializable(package="keras_resnet")
class L2SGD(keras.optimizers.SGD):
    """SGD with the paper's coupled L2 weight decay on kernels, as Caffe and `torch.optim.SGD`.

    `l2 * variable` joins the gradient before momentum; Keras's decoupled `weight_decay` (off by default)
    decays about 10 times less at momentum 0.9 for the same number.

    Args:
        learning_rate, momentum, nesterov, **kwargs: as in `keras.optimizers.SGD`.
        l2: the L2 coefficient.
        l2_names: variable names (the last part of `variable.path`) that decay.

    Example:

    >>> optimizer = L2SGD(learning_rate=0.1, momentum=0.9, l2=1e-4)
    """

    def __init__(
        self,
        learning_rate: float | keras.optimizers.schedules.LearningRateSchedule = 0.01,
        momentum: float = 0.0,
        nesterov: bool = False,
        l2: float = 1e-4,
        l2_names: Sequence[str] = ("kernel", "depthwise_kernel", "pointwise_kernel"),
        **kwargs,
    ):
        super().__init__(learning_rate=learning_rate, momentum=momentum, nesterov=nesterov, **kwargs)
        require(is_real(l2) and l2 >= 0, "l2", l2, "a number >= 0")
        self.l2 = l2
        self.l2_names = tuple(l2_names)

    def build(self, variables):
        if self.built:
            return
        super().build(variables)
        self._decayed = [self.l2 > 0 and variable.name in self.l2_names for variable in variables]

    def update_step(self, gradient, variable, learning_rate):
        if self._decayed[_keras_compat.optimizer_variable_index(self, variable)]:
            decay = ops.multiply(ops.cast(self.l2, variable.dtype), variable)
            gradient = ops.add(ops.cast(gradient, variable.dtype), decay)
        super().update_step(gradient, variable, learning_rate)

    def get_config(self) -> dict:
        return {**super().get_config(), "l2": self.l2, "l2_names": list(self.l2_names)}
