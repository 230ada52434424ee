"""Training recipes of He et al. (2015) as data: every function takes a name in `RECIPES` (or a `Recipe`) plus
keyword overrides of its fields."""

from __future__ import annotations

import dataclasses
import functools
import inspect
import math
import types
import warnings
from collections.abc import Mapping, Sequence

import keras
from keras import ops

from keras_resnet import _keras_compat, accelerate
from keras_resnet._validation import check_choice, check_int, is_positive_int, is_real, one_of, require
from keras_resnet.optimizers import L2SGD, LinearWarmUp, StepDecay

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

_ITERATION_FIELDS = ("total_steps", "boundaries", "warmup_steps")
_LEARNING_RATE_FIELDS = ("lr", "error_warmup_lr")
_SCHEDULES = {
    "step": lambda recipe: StepDecay(recipe.lr, recipe.boundaries),
    "cosine": lambda recipe: keras.optimizers.schedules.CosineDecay(recipe.lr, recipe.total_steps),
    "plateau": lambda recipe: float(recipe.lr),
}


@dataclasses.dataclass(frozen=True)
class Recipe:
    """One training recipe; steps count optimizer iterations at `batch_size`.

    Args:
        batch_size, lr: examples per iteration and the base learning rate at that batch size.
        schedule: `"step"` (divide by 10 at each of `boundaries`), `"cosine"` (to 0 at `total_steps`) or
            `"plateau"` (`PlateauDecay` divides by 10 when the validation error stops improving).
        total_steps, boundaries: iterations of the run; increasing iterations where `"step"` divides by 10.
        momentum, nesterov: of SGD; momentum in [0, 1).
        weight_decay: coupled L2 on kernels (see `L2SGD`).
        label_smoothing: in [0, 1).
        warmup_steps: iterations of linear warm-up from 0 (`LinearWarmUp`); not with `"plateau"`.
        error_warmup_lr, error_warmup_until: a rate kept until the training error drops under a bound (`ErrorWarmUp`).
        plateau_patience: epochs without improvement before `"plateau"` divides the rate by 10.
        top5: whether to add the top-5 accuracy metric.
    """

    batch_size: int
    lr: float
    schedule: str
    total_steps: int
    boundaries: tuple[int, ...] = ()
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
        check_int("batch_size", self.batch_size)
        require(is_real(self.lr) and self.lr > 0, "lr", self.lr, "a positive number")
        check_choice("schedule", self.schedule, tuple(_SCHEDULES))
        check_int("total_steps", self.total_steps)
        require(
            all(map(is_positive_int, self.boundaries)) and list(self.boundaries) == sorted(set(self.boundaries)),
            "boundaries",
            self.boundaries,
            "increasing positive integers",
        )
        require(is_real(self.momentum) and 0 <= self.momentum < 1, "momentum", self.momentum, "a number in [0, 1)")
        require(isinstance(self.nesterov, bool), "nesterov", self.nesterov, "True or False")
        require(
            is_real(self.weight_decay) and self.weight_decay >= 0, "weight_decay", self.weight_decay, "a number >= 0"
        )
        require(
            is_real(self.label_smoothing) and 0 <= self.label_smoothing < 1,
            "label_smoothing",
            self.label_smoothing,
            "a number in [0, 1)",
        )
        check_int("warmup_steps", self.warmup_steps, 0, self.total_steps - 1, context=" (below total_steps)")
        require(
            self.warmup_steps == 0 or self.schedule != "plateau",
            "warmup_steps",
            self.warmup_steps,
            "0 with schedule='plateau'",
        )
        require(
            self.error_warmup_lr is None or (is_real(self.error_warmup_lr) and self.error_warmup_lr > 0),
            "error_warmup_lr",
            self.error_warmup_lr,
            "None or a positive number",
        )
        require(
            is_real(self.error_warmup_until) and 0 < self.error_warmup_until <= 1,
            "error_warmup_until",
            self.error_warmup_until,
            "a number in (0, 1]",
        )
        check_int("plateau_patience", self.plateau_patience)
        require(isinstance(self.top5, bool), "top5", self.top5, "True or False")

    def epochs(self, num_examples: int) -> int:
        """The `epochs` of `model.fit` that cover `total_steps`.

        Args:
            num_examples: training examples per epoch (a last, partial batch is one iteration).

        Example:

        >>> RECIPES["cifar10"].epochs(50_000)
        164
        """
        return math.ceil(self.total_steps / math.ceil(num_examples / self.batch_size))


_CIFAR = Recipe(batch_size=128, lr=0.1, schedule="step", total_steps=64_000, boundaries=(32_000, 48_000))

RECIPES: Mapping[str, Recipe] = types.MappingProxyType(
    {
        "cifar10": _CIFAR,
        "cifar100": _CIFAR,
        "cifar10_resnet110": dataclasses.replace(_CIFAR, error_warmup_lr=0.01),
        "imagenet": Recipe(batch_size=256, lr=0.1, schedule="plateau", total_steps=600_000, top5=True),
    }
)


def recipe_for(recipe: str | Recipe = "cifar10", **overrides) -> Recipe:
    """Looks up a recipe and applies keyword overrides of its fields.

    A new `batch_size` rescales what the overrides leave alone: learning rates by
    `batch_size / recipe.batch_size`, iteration counts by the inverse.

    Args:
        recipe: a name in `RECIPES` or a `Recipe`.
        **overrides: fields of `Recipe` to replace.

    Example:

    >>> recipe_for("imagenet", batch_size=1024).lr
    0.4
    """
    if isinstance(recipe, Recipe):
        base = recipe
    else:
        require(isinstance(recipe, str) and recipe in RECIPES, "recipe", recipe, one_of(RECIPES) + " or a Recipe")
        base = RECIPES[recipe]
    fields = [field.name for field in dataclasses.fields(Recipe)]
    for name, value in overrides.items():
        if name not in fields:
            raise ValueError(
                f"{name} is not a recipe field; received {name}={value!r}; the fields are {', '.join(fields)}"
            )
    batch_size = overrides.get("batch_size", base.batch_size)
    # A bad batch_size is left unscaled here for `Recipe` to reject with its message.
    ratio = batch_size / base.batch_size if is_positive_int(batch_size) else 1
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
class SmoothedSparseCategoricalCrossentropy(keras.losses.Loss):
    """Cross-entropy of integer labels with label smoothing, which `SparseCategoricalCrossentropy` lacks.

    Targets are `(1 - label_smoothing) * one_hot + label_smoothing / classes`.

    Args:
        label_smoothing: in [0, 1).
        from_logits: whether the predictions are logits.
        **kwargs: other arguments of `keras.losses.Loss` (`name`, `reduction`).
    """

    def __init__(
        self,
        label_smoothing: float = 0.0,
        from_logits: bool = False,
        name: str = "smoothed_sparse_categorical_crossentropy",
        **kwargs,
    ):
        require(
            is_real(label_smoothing) and 0 <= label_smoothing < 1,
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

    def get_config(self) -> dict:
        return {**super().get_config(), "label_smoothing": self.label_smoothing, "from_logits": self.from_logits}


def learning_rate_schedule(
    recipe: str | Recipe = "cifar10", **overrides
) -> keras.optimizers.schedules.LearningRateSchedule | float:
    """The learning rate of a recipe as a function of the iteration.

    Args:
        recipe, **overrides: as in `recipe_for`.

    Returns:
        A `StepDecay` or `CosineDecay` (in a `LinearWarmUp` when `warmup_steps > 0`), or for `"plateau"`
        the float starting rate that `PlateauDecay` lowers.
    """
    recipe = recipe_for(recipe, **overrides)
    schedule = _SCHEDULES[recipe.schedule](recipe)
    if recipe.warmup_steps:
        schedule = LinearWarmUp(schedule, recipe.warmup_steps)
    return schedule


def optimizer_for(recipe: str | Recipe = "cifar10", **overrides) -> L2SGD:
    """The `L2SGD` of a recipe, following its schedule.

    Where a callback drives the rate (`"plateau"`; an `error_warmup_lr`, whose `ErrorWarmUp` then applies the
    schedule) the learning rate is a float.

    Args:
        recipe, **overrides: as in `recipe_for`.
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
    check_choice("mixed_precision", policy, accelerate.PRECISIONS)
    if model.dtype_policy.name != policy:
        raise ValueError(
            f"mixed_precision={policy!r} needs a model built under that policy; received a "
            f"model with dtype policy {model.dtype_policy.name!r}. Call "
            f"keras.mixed_precision.set_global_policy({policy!r}) before building the model."
        )
    keras.mixed_precision.set_global_policy(policy)


def compile_for(
    model: keras.Model,
    recipe: str | Recipe = "cifar10",
    *,
    mixed_precision: str | None = None,
    sparse_labels: bool = True,
    from_logits: bool | None = None,
    acceleration: str | accelerate.Acceleration | None = "auto",
    **overrides,
) -> Recipe:
    """Compiles a model with a recipe's optimizer, loss and metrics, and returns the `Recipe` used.

    `"plateau"` and `error_warmup_lr` need callbacks (`keras_resnet.training.run_callbacks(recipe)`):
    `model.fit` warns when they are missing.

    Args:
        model: the `keras.Model` to compile.
        recipe, **overrides: as in `recipe_for`.
        mixed_precision: one of `keras_resnet.accelerate.PRECISIONS` the model was built under, set globally.
        sparse_labels: whether the labels are class indices (else one-hot or soft).
        from_logits: whether the model outputs logits; `None`: unless its output activation is softmax.
        acceleration: an `Acceleration` (`jit_compile`, `steps_per_execution`); `"auto"`:
            `keras_resnet.accelerate.acceleration()`; `None`: Keras' defaults.

    Example:

    ```python
    model = keras.Sequential([keras.Input((32, 32, 3)), keras.layers.Flatten(), keras.layers.Dense(10)])
    recipe = compile_for(model, "cifar10", lr=0.05, batch_size=64, label_smoothing=0.1)
    ```
    """
    recipe = recipe_for(recipe, **overrides)
    _compile(
        model,
        recipe,
        mixed_precision=mixed_precision,
        sparse_labels=sparse_labels,
        from_logits=from_logits,
        acceleration=acceleration,
    )
    _warn_at_fit_without(model, _schedule_callbacks(recipe))
    return recipe


def _compile(model, recipe, *, mixed_precision=None, sparse_labels=True, from_logits=None, acceleration="auto"):
    """`compile_for` without the check of `fit`'s callbacks: for callers that document what plain `fit` does."""
    if mixed_precision is not None:
        _use_policy(model, mixed_precision)
    if from_logits is None:
        from_logits = _keras_compat.output_activation(model) is not keras.activations.softmax
    if acceleration == "auto":
        acceleration = accelerate.acceleration()
    options = {} if acceleration is None else acceleration.compile_options()
    model.compile(
        optimizer=optimizer_for(recipe),
        loss=_loss(recipe, from_logits, sparse_labels),
        metrics=_metrics(recipe, sparse_labels),
        **options,
    )


def _schedule_callbacks(recipe):
    """Names of the callbacks that carry part of `recipe`'s learning-rate schedule."""
    needed = {"ErrorWarmUp": recipe.error_warmup_lr is not None, "PlateauDecay": recipe.schedule == "plateau"}
    return [name for name, wanted in needed.items() if wanted]


def _warn_at_fit_without(model, needed: Sequence[str]):
    """Makes `model.fit` warn, until the next `compile`, when a callback named in `needed` is missing."""
    vars(model).pop("fit", None)  # an earlier compile_for's check
    if not needed:
        return
    optimizer, unchecked = model.optimizer, type(model).fit

    @functools.wraps(unchecked)
    def fit(*args, **kwargs):
        if model.optimizer is optimizer:
            try:
                callbacks = inspect.signature(unchecked).bind(model, *args, **kwargs).arguments.get("callbacks")
            except TypeError:  # Keras names the bad arguments
                callbacks = None
            given = {
                kind.__name__ for c in getattr(callbacks, "callbacks", callbacks) or () for kind in type(c).__mro__
            }
            missing = [name for name in needed if name not in given]
            if missing:
                warnings.warn(
                    f"fit: the recipe compiled by compile_for needs the callback(s) {', '.join(missing)}, which the "
                    "optimizer does not do by itself; pass keras_resnet.training.run_callbacks(recipe) to fit, or "
                    "the learning rate will not follow the recipe",
                    stacklevel=2,
                )
        return unchecked(model, *args, **kwargs)

    model.fit = fit
