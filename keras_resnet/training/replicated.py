"""A replicated model and its recipe for a `fit` of your own: `distributed_model`, `scale_recipe`."""

from __future__ import annotations

import typing
from collections.abc import Callable
from typing import Any

import keras

from keras_resnet import recipes
from keras_resnet.models.builders import get_model
from keras_resnet.training import distribute


class DistributedModel(typing.NamedTuple):
    """What `distributed_model` returns: the compiled model, its recipe (for the global batch) and replication."""

    model: keras.Model
    recipe: recipes.Recipe
    replication: distribute.Replication


def scale_recipe(
    recipe: str | recipes.Recipe,
    strategy: str | distribute.Replication = "auto",
    per_replica_batch_size: int | None = None,
    *,
    scale_learning_rate: bool = True,
) -> recipes.Recipe:
    """A recipe for the global batch of a replication.

    Args:
        recipe: a name of `keras_resnet.recipes.RECIPES` or a `Recipe`.
        strategy: one of `keras_resnet.training.distribute.STRATEGIES` or a `Replication`.
        per_replica_batch_size: examples per replica and step; `None` keeps the recipe's batch as the global one.
        scale_learning_rate: whether the learning rates scale linearly with the global batch (step counts
            always do, so the epochs stay the same).

    Returns:
        A `keras_resnet.recipes.Recipe` whose `batch_size` is the global batch.

    Example:

    ```python
    recipe = scale_recipe("cifar10", "mirrored", per_replica_batch_size=128)
    recipe.batch_size, recipe.lr  # (512, 0.4) over 4 GPUs
    ```
    """
    base = recipes.recipe_for(recipe)
    if per_replica_batch_size is None:
        return base
    overrides = {"batch_size": distribute.replicate(strategy).global_batch_size(per_replica_batch_size)}
    if not scale_learning_rate:
        overrides.update(lr=base.lr, error_warmup_lr=base.error_warmup_lr)
    return recipes.recipe_for(base, **overrides)


def distributed_model(
    model: str | Callable[..., keras.Model],
    recipe: str | recipes.Recipe = "cifar10",
    *,
    strategy: str | distribute.Replication = "auto",
    per_replica_batch_size: int | None = None,
    scale_learning_rate: bool = True,
    jit_compile: bool | str = "auto",
    sparse_labels: bool = True,
    **model_kwargs: Any,
) -> DistributedModel:
    """Builds a model and compiles it with a recipe, replicated by a strategy.

    Args:
        model: a name of `keras_resnet.MODELS`, or a function returning an uncompiled `keras.Model`.
        recipe: a name of `keras_resnet.recipes.RECIPES` or a `Recipe`, scaled by `scale_recipe`.
        strategy: one of `keras_resnet.training.distribute.STRATEGIES` or a `Replication`.
        per_replica_batch_size: examples per replica and step; `None` splits the recipe's batch.
        scale_learning_rate: whether the learning rate follows the global batch linearly.
        jit_compile: `True`, `False` or `"auto"` (see `keras_resnet.training.distribute.with_strategy`).
        sparse_labels: whether the labels are class indices.
        **model_kwargs: arguments of the model constructor (`input_shape`, `classes`, ...).

    Returns:
        A `DistributedModel`: build the input pipeline with `recipe.batch_size`, the global batch.

    Example:

    ```python
    model, recipe, replication = distributed_model(
        "resnet20", "cifar10", per_replica_batch_size=64, input_shape=(32, 32, 3), classes=10)
    ```
    """
    replication = distribute.replicate(strategy)
    recipe = scale_recipe(recipe, replication, per_replica_batch_size, scale_learning_rate=scale_learning_rate)

    def build():
        built = get_model(model, **model_kwargs) if isinstance(model, str) else model(**model_kwargs)
        recipes.compile_for(built, recipe, sparse_labels=sparse_labels)
        return built

    return DistributedModel(distribute.with_strategy(build, replication, jit_compile=jit_compile), recipe, replication)
