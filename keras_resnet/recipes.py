"""Training recipes of He et al. (2015): optimizer, schedule, loss, callbacks.

The paper's recipes are data: `RECIPES` maps a preset name to a `Recipe`,
and every function here takes a preset name (or a `Recipe`) plus keyword
overrides of its fields.

```python
import keras_resnet as kr

model = kr.ResNet20(input_shape=(32, 32, 3), classes=10)
recipe = kr.recipes.compile_for(model, "cifar10")
model.fit(
    train.batch(recipe.batch_size),
    validation_data=test.batch(recipe.batch_size),
    epochs=recipe.epochs(50_000),
    callbacks=kr.training.run_callbacks(recipe, directory="runs/resnet20"),
)
```

Weight decay is the paper's coupled L2 (`L2SGD`): `weight_decay * kernel` is
added to the gradient before momentum, as in Caffe and in `torch.optim.SGD`.
Keras's own `weight_decay` argument is decoupled (it shrinks the weights
outside the momentum), which with momentum 0.9 decays about 10 times less than
the paper for the same number.
"""

import dataclasses
import math
import types
import warnings

import keras
from keras import ops

from keras_resnet import _keras_compat, accelerate
from keras_resnet._validation import is_int as _is_int
from keras_resnet._validation import is_real as _is_real
from keras_resnet._validation import one_of as _one_of
from keras_resnet._validation import require as _require

__all__ = [
    "RECIPES",
    "L2SGD",
    "LinearWarmUp",
    "Recipe",
    "SmoothedSparseCategoricalCrossentropy",
    "StepDecay",
    "compile_for",
    "learning_rate_schedule",
    "optimizer_for",
    "recipe_for",
]

_POLICIES = ("float32", "mixed_float16", "mixed_bfloat16")
_ITERATION_FIELDS = ("total_steps", "boundaries", "warmup_steps")
_LEARNING_RATE_FIELDS = ("lr", "error_warmup_lr")
# How each `Recipe.schedule` becomes a learning rate (see `learning_rate_schedule`).
_SCHEDULES = {
    "step": lambda recipe: StepDecay(recipe.lr, recipe.boundaries),
    "cosine": lambda recipe: keras.optimizers.schedules.CosineDecay(recipe.lr, recipe.total_steps),
    "plateau": lambda recipe: float(recipe.lr),
}


@dataclasses.dataclass(frozen=True)
class Recipe:
    """One training recipe: batch, learning rate and its schedule, decay, loss.

    Steps are optimizer iterations at `batch_size`. `recipe_for` rescales a
    recipe to another batch size with the linear scaling rule: the learning
    rates grow with the batch and the iteration counts shrink with it, so the
    same number of epochs is trained.

    Args:
        batch_size: int, examples per optimizer iteration.
        lr: float, the base learning rate at `batch_size`.
        schedule: one of `"step"` (divide by 10 at each of `boundaries`),
            `"cosine"` (cosine decay to 0 at `total_steps`) or `"plateau"`
            (a float learning rate, divided by 10 by `PlateauDecay` when the
            validation error stops improving).
        total_steps: int, iterations of the whole run.
        boundaries: increasing ints, the iterations at which `"step"` divides
            the learning rate by 10.
        momentum: float in [0, 1), SGD momentum.
        nesterov: bool, whether to use Nesterov momentum.
        weight_decay: float >= 0, coupled L2 on kernels (see `L2SGD`).
        label_smoothing: float in [0, 1).
        warmup_steps: int >= 0, iterations of linear warm-up from 0
            (`LinearWarmUp`); needs `"step"` or `"cosine"`.
        error_warmup_lr: `None`, or the learning rate to train at until the
            training error drops under `error_warmup_until` (the paper's
            ResNet-110 warm-up, `ErrorWarmUp`).
        error_warmup_until: float in (0, 1], the training error that ends the
            error warm-up.
        plateau_patience: int >= 1, epochs without improvement before
            `"plateau"` divides the learning rate by 10.
        top5: bool, whether to add the top-5 accuracy metric.

    Example:

    ```python
    recipe = Recipe(batch_size=128, lr=0.1, schedule="cosine", total_steps=10_000)
    recipe.epochs(50_000)  # 26
    ```
    """

    batch_size: int
    lr: float
    schedule: str
    total_steps: int
    boundaries: tuple = ()
    momentum: float = 0.9
    nesterov: bool = False
    weight_decay: float = 1e-4
    label_smoothing: float = 0.0
    warmup_steps: int = 0
    error_warmup_lr: float | None = None
    error_warmup_until: float = 0.8
    plateau_patience: int = 5
    top5: bool = False

    def __post_init__(self):
        object.__setattr__(self, "boundaries", tuple(self.boundaries))
        _require(_is_int(self.batch_size) and self.batch_size > 0, "batch_size", self.batch_size, "a positive integer")
        _require(_is_real(self.lr) and self.lr > 0, "lr", self.lr, "a positive number")
        _require(self.schedule in _SCHEDULES, "schedule", self.schedule, _one_of(_SCHEDULES))
        _require(
            _is_int(self.total_steps) and self.total_steps > 0, "total_steps", self.total_steps, "a positive integer"
        )
        _require(
            all(_is_int(b) for b in self.boundaries)
            and list(self.boundaries) == sorted(set(self.boundaries))
            and all(b > 0 for b in self.boundaries),
            "boundaries",
            self.boundaries,
            "increasing positive integers",
        )
        _require(_is_real(self.momentum) and 0 <= self.momentum < 1, "momentum", self.momentum, "a number in [0, 1)")
        _require(isinstance(self.nesterov, bool), "nesterov", self.nesterov, "True or False")
        _require(
            _is_real(self.weight_decay) and self.weight_decay >= 0, "weight_decay", self.weight_decay, "a number >= 0"
        )
        _require(
            _is_real(self.label_smoothing) and 0 <= self.label_smoothing < 1,
            "label_smoothing",
            self.label_smoothing,
            "a number in [0, 1)",
        )
        _require(
            _is_int(self.warmup_steps) and 0 <= self.warmup_steps < self.total_steps,
            "warmup_steps",
            self.warmup_steps,
            "an integer in [0, total_steps)",
        )
        _require(
            self.warmup_steps == 0 or self.schedule != "plateau",
            "warmup_steps",
            self.warmup_steps,
            "0 with schedule='plateau'",
        )
        _require(
            self.error_warmup_lr is None or (_is_real(self.error_warmup_lr) and self.error_warmup_lr > 0),
            "error_warmup_lr",
            self.error_warmup_lr,
            "None or a positive number",
        )
        _require(
            _is_real(self.error_warmup_until) and 0 < self.error_warmup_until <= 1,
            "error_warmup_until",
            self.error_warmup_until,
            "a number in (0, 1]",
        )
        _require(
            _is_int(self.plateau_patience) and self.plateau_patience >= 1,
            "plateau_patience",
            self.plateau_patience,
            "a positive integer",
        )
        _require(isinstance(self.top5, bool), "top5", self.top5, "True or False")

    def epochs(self, num_examples):
        """Number of epochs that covers `total_steps`.

        Args:
            num_examples: int, training examples per epoch (the last, partial
                batch counts as one iteration).

        Returns:
            int, the epochs to pass to `model.fit`.

        Example:

        ```python
        RECIPES["cifar10"].epochs(50_000)  # 164
        ```
        """
        return math.ceil(self.total_steps / math.ceil(num_examples / self.batch_size))


_CIFAR = Recipe(batch_size=128, lr=0.1, schedule="step", total_steps=64_000, boundaries=(32_000, 48_000))

RECIPES = types.MappingProxyType(
    {
        "cifar10": _CIFAR,
        "cifar100": _CIFAR,
        "cifar10_resnet110": dataclasses.replace(_CIFAR, error_warmup_lr=0.01),
        "imagenet": Recipe(batch_size=256, lr=0.1, schedule="plateau", total_steps=600_000, top5=True),
    }
)


def recipe_for(recipe="cifar10", **overrides):
    """Looks up a recipe and applies keyword overrides of its fields.

    A new `batch_size` rescales what the overrides leave alone: learning
    rates by `batch_size / recipe.batch_size`, iteration counts by the
    inverse. Overridden fields are taken as given.

    Args:
        recipe: a name in `RECIPES` or a `Recipe`.
        **overrides: fields of `Recipe` to replace.

    Returns:
        The resulting `Recipe`.

    Example:

    ```python
    recipe = recipe_for("imagenet", batch_size=1024)
    recipe.lr  # 0.4
    ```
    """
    if isinstance(recipe, Recipe):
        base = recipe
    else:
        _require(isinstance(recipe, str) and recipe in RECIPES, "recipe", recipe, _one_of(RECIPES) + " or a Recipe")
        base = RECIPES[recipe]
    fields = [field.name for field in dataclasses.fields(Recipe)]
    for name, value in overrides.items():
        if name not in fields:
            raise ValueError(
                f"{name} is not a recipe field; received {name}={value!r}; the fields are {', '.join(fields)}"
            )
    batch_size = overrides.get("batch_size", base.batch_size)
    # A bad batch_size is left unscaled here for `Recipe` to reject with its message.
    ratio = batch_size / base.batch_size if _is_int(batch_size) and batch_size > 0 else 1
    scaled = {}
    for name in _LEARNING_RATE_FIELDS:
        value = getattr(base, name)
        if name not in overrides and value is not None:
            scaled[name] = value * ratio
    for name in _ITERATION_FIELDS:
        value = getattr(base, name)
        if name not in overrides:
            scaled[name] = tuple(round(v / ratio) for v in value) if isinstance(value, tuple) else round(value / ratio)
    return dataclasses.replace(base, **scaled, **overrides)


@keras.saving.register_keras_serializable(package="keras_resnet")
class StepDecay(keras.optimizers.schedules.PiecewiseConstantDecay):
    """Multiplies the learning rate by `factor` (0.1: divides by 10) at each boundary.

    Iteration `step` trains at `initial_learning_rate * factor ** n`, `n` being
    the number of boundaries `<= step`: the paper's CIFAR schedule is 0.1 up to
    iteration 31,999, 0.01 from 32,000 and 0.001 from 48,000. It is a
    `keras.optimizers.schedules.PiecewiseConstantDecay` whose pieces start at
    the boundaries, where Keras's start one iteration later: its `boundaries`
    attribute holds each boundary minus one, `drop_steps` the boundaries.

    Args:
        initial_learning_rate: float, the rate before the first boundary.
        boundaries: increasing ints, iterations where the rate drops.
        factor: float, the multiplier at each boundary.

    Example:

    ```python
    schedule = StepDecay(0.1, boundaries=(32_000, 48_000))
    float(schedule(32_000))  # 0.01
    ```
    """

    def __init__(self, initial_learning_rate, boundaries, factor=0.1):
        _require(
            all(_is_int(b) for b in boundaries) and list(boundaries) == sorted(set(boundaries)),
            "boundaries",
            boundaries,
            "increasing integers",
        )
        self.initial_learning_rate = initial_learning_rate
        self.drop_steps = tuple(boundaries)
        self.factor = factor
        rates = [initial_learning_rate * factor**drops for drops in range(len(boundaries) + 1)]
        # PiecewiseConstantDecay moves to the next rate after a boundary, the paper at it;
        # it needs one boundary at least, so a schedule without drops has two equal pieces.
        super().__init__([b - 1 for b in boundaries] or [0], rates if boundaries else rates * 2)

    def get_config(self):
        return {
            "initial_learning_rate": self.initial_learning_rate,
            "boundaries": list(self.drop_steps),
            "factor": self.factor,
        }


@keras.saving.register_keras_serializable(package="keras_resnet")
class LinearWarmUp(keras.optimizers.schedules.LearningRateSchedule):
    """Ramps linearly from `initial_learning_rate` into another schedule.

    For `step < warmup_steps` the rate is
    `initial + (schedule(step) - initial) * step / warmup_steps`; afterwards it
    is `schedule(step)`. The wrapped schedule sees the same iteration count, so
    the boundaries of a `StepDecay` stay where they were.

    Args:
        schedule: a `LearningRateSchedule`.
        warmup_steps: positive int, iterations of the ramp.
        initial_learning_rate: float, the rate at iteration 0.

    Example:

    ```python
    schedule = LinearWarmUp(StepDecay(0.1, boundaries=(32_000,)), warmup_steps=1000)
    float(schedule(500))  # 0.05
    ```
    """

    def __init__(self, schedule, warmup_steps, initial_learning_rate=0.0):
        _require(_is_int(warmup_steps) and warmup_steps > 0, "warmup_steps", warmup_steps, "a positive integer")
        self.schedule = schedule
        self.warmup_steps = warmup_steps
        self.initial_learning_rate = initial_learning_rate

    def __call__(self, step):
        target = self.schedule(step)
        done = ops.minimum(ops.cast(step, "float32") / self.warmup_steps, 1.0)
        return self.initial_learning_rate + (target - self.initial_learning_rate) * done

    def get_config(self):
        return {
            "schedule": keras.optimizers.schedules.serialize(self.schedule),
            "warmup_steps": self.warmup_steps,
            "initial_learning_rate": self.initial_learning_rate,
        }

    @classmethod
    def from_config(cls, config):
        schedule = keras.optimizers.schedules.deserialize(config["schedule"])
        return cls(**{**config, "schedule": schedule})


@keras.saving.register_keras_serializable(package="keras_resnet")
class L2SGD(keras.optimizers.SGD):
    """SGD with the paper's L2 weight decay, on kernels only.

    Each update adds `l2 * variable` to the gradient of the variables named in
    `l2_names` before the momentum step (coupled L2, as in Caffe and
    `torch.optim.SGD(weight_decay=...)`); biases and batch-norm `gamma` and
    `beta` are left alone. Which variables decay is fixed at `build` from the
    variables' names, and the update uses only `keras.ops`, so it runs on every
    backend. Keras's `weight_decay` argument, still accepted, is the decoupled
    kind and is off by default.

    Args:
        learning_rate: float or `LearningRateSchedule`.
        momentum: float in [0, 1].
        nesterov: bool, whether to use Nesterov momentum.
        l2: float >= 0, the L2 coefficient.
        l2_names: variable names (the last part of `variable.path`) that decay.
        **kwargs: other arguments of `keras.optimizers.SGD`.

    Example:

    ```python
    optimizer = L2SGD(learning_rate=0.1, momentum=0.9, l2=1e-4)
    ```
    """

    def __init__(
        self,
        learning_rate=0.01,
        momentum=0.0,
        nesterov=False,
        l2=1e-4,
        l2_names=("kernel", "depthwise_kernel", "pointwise_kernel"),
        **kwargs,
    ):
        super().__init__(learning_rate=learning_rate, momentum=momentum, nesterov=nesterov, **kwargs)
        _require(_is_real(l2) and l2 >= 0, "l2", l2, "a number >= 0")
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

    def get_config(self):
        return {**super().get_config(), "l2": self.l2, "l2_names": list(self.l2_names)}


@keras.saving.register_keras_serializable(package="keras_resnet")
class SmoothedSparseCategoricalCrossentropy(keras.losses.Loss):
    """Cross-entropy of integer labels with label smoothing.

    The labels are one-hot encoded and smoothed to
    `(1 - label_smoothing) * one_hot + label_smoothing / classes`, which
    `keras.losses.SparseCategoricalCrossentropy` does not offer.

    Args:
        label_smoothing: float in [0, 1).
        from_logits: bool, whether the predictions are logits.
        **kwargs: other arguments of `keras.losses.Loss` (`name`, `reduction`).

    Example:

    ```python
    loss = SmoothedSparseCategoricalCrossentropy(label_smoothing=0.1)  # targets 0.95, 0.05
    float(loss([0], [[0.9, 0.1]]))  # 0.2152218
    ```
    """

    def __init__(
        self, label_smoothing=0.0, from_logits=False, name="smoothed_sparse_categorical_crossentropy", **kwargs
    ):
        _require(
            _is_real(label_smoothing) and 0 <= label_smoothing < 1,
            "label_smoothing",
            label_smoothing,
            "a number in [0, 1)",
        )
        super().__init__(name=name, **kwargs)
        self.label_smoothing = label_smoothing
        self.from_logits = from_logits

    def call(self, y_true, y_pred):
        y_pred = ops.convert_to_tensor(y_pred)
        labels = ops.reshape(ops.cast(y_true, "int32"), ops.shape(y_pred)[:-1])
        one_hot = ops.one_hot(labels, y_pred.shape[-1], dtype=y_pred.dtype)
        return keras.losses.categorical_crossentropy(
            one_hot, y_pred, from_logits=self.from_logits, label_smoothing=self.label_smoothing
        )

    def get_config(self):
        return {**super().get_config(), "label_smoothing": self.label_smoothing, "from_logits": self.from_logits}


def learning_rate_schedule(recipe="cifar10", **overrides):
    """The learning rate of a recipe as a function of the iteration.

    Args:
        recipe: a name in `RECIPES` or a `Recipe`.
        **overrides: fields of `Recipe` to replace (see `recipe_for`).

    Returns:
        A `LearningRateSchedule` (`StepDecay` or `CosineDecay`, wrapped in
        `LinearWarmUp` when `warmup_steps > 0`), or for `schedule="plateau"`
        the float starting rate that `PlateauDecay` then lowers.

    Example:

    ```python
    schedule = learning_rate_schedule("cifar10", schedule="cosine", warmup_steps=500)
    float(schedule(64_000))  # 0.0
    ```
    """
    recipe = recipe_for(recipe, **overrides)
    schedule = _SCHEDULES[recipe.schedule](recipe)
    if recipe.warmup_steps:
        schedule = LinearWarmUp(schedule, recipe.warmup_steps)
    return schedule


def optimizer_for(recipe="cifar10", **overrides):
    """The recipe's SGD with momentum and coupled L2 weight decay.

    Args:
        recipe: a name in `RECIPES` or a `Recipe`.
        **overrides: fields of `Recipe` to replace (see `recipe_for`).

    Returns:
        An `L2SGD`. Its learning rate is the recipe's schedule, or a float
        variable where a callback drives it (`schedule="plateau"`, or an
        `error_warmup_lr`: then `ErrorWarmUp` applies the schedule).

    Example:

    ```python
    optimizer = optimizer_for("imagenet", batch_size=512, nesterov=True)
    float(optimizer.learning_rate)  # 0.2
    ```
    """
    recipe = recipe_for(recipe, **overrides)
    learning_rate = float(recipe.lr) if recipe.error_warmup_lr is not None else learning_rate_schedule(recipe)
    return L2SGD(
        learning_rate=learning_rate, momentum=float(recipe.momentum), nesterov=recipe.nesterov, l2=recipe.weight_decay
    )


def _loss(recipe, from_logits, sparse_labels):
    if not sparse_labels:
        return keras.losses.CategoricalCrossentropy(from_logits=from_logits, label_smoothing=recipe.label_smoothing)
    if recipe.label_smoothing:
        return SmoothedSparseCategoricalCrossentropy(recipe.label_smoothing, from_logits)
    return keras.losses.SparseCategoricalCrossentropy(from_logits=from_logits)


def _metrics(recipe, sparse_labels):
    if not recipe.top5:
        return ["accuracy"]
    top5 = keras.metrics.SparseTopKCategoricalAccuracy if sparse_labels else keras.metrics.TopKCategoricalAccuracy
    return ["accuracy", top5(k=5, name="top5_accuracy")]


def _use_policy(model, policy):
    _require(policy in _POLICIES, "mixed_precision", policy, _one_of(_POLICIES))
    if model.dtype_policy.name != policy:
        raise ValueError(
            f"mixed_precision={policy!r} needs a model built under that policy; received a "
            f"model with dtype policy {model.dtype_policy.name!r}. Call "
            f"keras.mixed_precision.set_global_policy({policy!r}) before building the model."
        )
    keras.mixed_precision.set_global_policy(policy)


def compile_for(
    model,
    recipe="cifar10",
    *,
    mixed_precision=None,
    sparse_labels=True,
    from_logits=None,
    acceleration="auto",
    callbacks_attached=False,
    **overrides,
):
    """Compiles a model with a recipe's optimizer, loss and metrics.

    Part of some recipes' schedule lives in callbacks, not in the optimizer:
    `PlateauDecay` (`schedule="plateau"`) and `ErrorWarmUp`
    (`error_warmup_lr`). Without them the learning rate never drops (or
    never warms up), so compiling such a recipe warns once, naming them,
    unless `callbacks_attached=True` says that `run_callbacks(recipe)` goes to
    `fit`.

    Args:
        model: the `keras.Model` to compile.
        recipe: a name in `RECIPES` or a `Recipe`.
        mixed_precision: `None`, or one of `"float32"`, `"mixed_float16"`,
            `"mixed_bfloat16"`: checks that the model was built under that
            policy and sets it as the global policy. Keras adds loss scaling
            for `"mixed_float16"`.
        sparse_labels: bool, whether the labels are class indices (else
            one-hot or soft).
        from_logits: bool, whether the model outputs logits; `None` infers it
            (probabilities when the activation that computes the output is
            softmax, read through nested models).
        acceleration: `"auto"` compiles with the `jit_compile` and
            `steps_per_execution` that `keras_resnet.accelerate.acceleration()`
            chooses for this machine; a `keras_resnet.accelerate.Acceleration`
            uses its choice; `None` leaves Keras' defaults.
        callbacks_attached: bool, whether `run_callbacks(recipe)` (or the
            recipe's callbacks) will be passed to `fit`; silences the warning.
        **overrides: fields of `Recipe` to replace (see `recipe_for`).

    Returns:
        The `Recipe` used, for `run_callbacks(recipe, ...)` and `recipe.epochs`.

    Example:

    ```python
    model = keras.Sequential([keras.Input((32, 32, 3)), keras.layers.Flatten(),
                              keras.layers.Dense(10)])
    recipe = compile_for(model, "cifar10", lr=0.05, batch_size=64, label_smoothing=0.1)
    ```
    """
    recipe = recipe_for(recipe, **overrides)
    if mixed_precision is not None:
        _use_policy(model, mixed_precision)
    if from_logits is None:
        from_logits = _keras_compat.output_activation(model) is not keras.activations.softmax
    # Device-aware jit_compile and steps_per_execution (keras_resnet.accelerate).
    if acceleration == "auto":
        acceleration = accelerate.acceleration()
    options = {} if acceleration is None else acceleration.compile_options()
    model.compile(
        optimizer=optimizer_for(recipe),
        loss=_loss(recipe, from_logits, sparse_labels),
        metrics=_metrics(recipe, sparse_labels),
        **options,
    )
    needed = _schedule_callbacks(recipe)
    if needed and not callbacks_attached:
        warnings.warn(
            f"compile_for: this recipe's schedule needs the callback(s) {', '.join(needed)}, which the optimizer "
            "does not do by itself; pass keras_resnet.training.run_callbacks(recipe) to fit (then compile with "
            "callbacks_attached=True), or the learning rate will not follow the recipe",
            stacklevel=2,
        )
    return recipe


def _schedule_callbacks(recipe):
    """Names of the callbacks that carry part of `recipe`'s learning-rate schedule."""
    return [
        name
        for name, needed in (
            ("ErrorWarmUp", recipe.error_warmup_lr is not None),
            ("PlateauDecay", recipe.schedule == "plateau"),
        )
        if needed
    ]
