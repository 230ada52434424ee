"""The plan of a `train` run, decided before anything trains: recipe, schedule, shapes, splits, steps per epoch."""

from __future__ import annotations

import dataclasses
import math
import os
import warnings
from typing import Any

from keras_resnet import data, recipes
from keras_resnet._validation import check_choice as _check_choice
from keras_resnet._validation import check_int as _check_int
from keras_resnet.models.builders import MODELS

SHAPES_EPOCHS = 8
"""Epochs of the `"shapes"` data set when `epochs` is not given: a couple of minutes on a laptop CPU."""

DATASET_OPTIONS = ("image_size", "augmentation", "data_dir", "train_size", "validation_size")
"""The options of a named data set that `train` takes and `run.json` records."""


@dataclasses.dataclass(frozen=True)
class RunPlan:
    """What a `train` run will do: the arguments resolved against the data set, before any training.

    Attributes:
        model, dataset: the model's name, and the data set's (`"pipelines"` for a `(train, validation)` pair).
        recipe: the `Recipe` that runs, with the overrides and its schedule stretched or squeezed to `epochs`.
        epochs, steps_per_epoch: epochs to train and optimizer steps per epoch.
        image_size: side of the training images.
        augmentation: `"cifar"` or `"imagenet"` for a named data set, `None` for pipelines.
        classes: the number of classes to build a model name for (`None`: a built model's own).
        described: dict from split name to what the split is, for `run.json` and the results.
        seed, full_train: as given to `train`.
        weights: the pretrained weights fine-tuned from, or `None`.
        dataset_options: the data set options, with the image size the weights default to.
        sources, pipelines: a named data set's `keras_resnet.data.Sources`, or the pair of pipelines.
    """

    model: str
    dataset: str
    recipe: recipes.Recipe
    epochs: int
    steps_per_epoch: int
    image_size: int
    augmentation: str | None
    classes: int | None
    described: dict
    seed: int = 0
    full_train: bool = False
    weights: str | None = None
    dataset_options: dict = dataclasses.field(default_factory=dict)
    sources: Any = dataclasses.field(default=None, repr=False, compare=False)
    pipelines: tuple | None = dataclasses.field(default=None, repr=False, compare=False)

    @property
    def class_names(self) -> tuple | None:
        """A named data set's class names, else `None`."""
        return None if self.sources is None else self.sources.class_names

    def record(self) -> dict:
        """The arguments and schedule of the run, as `run.json` starts (and a resumed run must match)."""
        return {
            "model": self.model,
            "dataset": self.dataset,
            "epochs": self.epochs,
            "recipe": repr(self.recipe),
            "schedule": self.schedule(),
            "seed": self.seed,
            "full_train": self.full_train,
            **({} if self.weights is None else {"weights": self.weights}),
            **{key: self.dataset_options[key] for key in sorted(self.dataset_options)},
        }

    def schedule(self) -> dict:
        """The learning-rate schedule that runs, in iterations and epochs."""
        recipe, steps_per_epoch = self.recipe, self.steps_per_epoch
        record = {"kind": recipe.schedule, "lr": recipe.lr, "steps_per_epoch": steps_per_epoch}
        if recipe.schedule == "step":
            record["drops"] = [
                {"step": step, "epoch": round(step / steps_per_epoch, 2), "lr": recipe.lr * 0.1 ** (n + 1)}
                for n, step in enumerate(recipe.boundaries)
            ]
        elif recipe.schedule == "cosine":
            record["to_zero_at_step"] = recipe.total_steps
        else:
            record["divided_by_10_after_epochs_without_improvement"] = recipe.plateau_patience
        if recipe.warmup_steps:
            record["linear_warmup_steps"] = recipe.warmup_steps
        if recipe.error_warmup_lr is not None:
            record["error_warmup"] = {"lr": recipe.error_warmup_lr, "until_training_error": recipe.error_warmup_until}
        return record


def plan_run(
    model: Any = "resnet20",
    dataset: Any = "shapes",
    *,
    epochs: int | None = None,
    batch_size: int | None = None,
    lr: float | None = None,
    weight_decay: float | None = None,
    recipe: str | None = None,
    seed: int = 0,
    classes: int | None = None,
    steps_per_epoch: int | None = None,
    full_train: bool = False,
    weights: str | os.PathLike | None = None,
    **dataset_options: Any,
) -> RunPlan:
    """The plan of `keras_resnet.training.train` with these arguments (see there); nothing is trained.

    A named data set's sources are listed (its images are not read); a pair of pipelines is asked its length.

    Example:

    ```python
    plan = plan_run("resnet20", "shapes", epochs=2, batch_size=16, train_size=64, validation_size=16)
    plan.steps_per_epoch, plan.recipe.boundaries  # (4, (4, 6)): the paper's drops at 1/2 and 3/4 of the run
    ```
    """
    if isinstance(model, str):
        _check_choice("model", model.lower(), tuple(MODELS))
    name = model.lower() if isinstance(model, str) else model.name
    named = isinstance(dataset, str)
    _check_data_arguments(model, dataset, batch_size, classes, steps_per_epoch, full_train, dataset_options)
    if weights is not None:
        weights = _check_weights(model, dataset, weights)
        crop_size = _crop_size(name, weights)
        if dataset_options.get("image_size") is None and crop_size is not None:
            dataset_options = {**dataset_options, "image_size": crop_size}
    if epochs is None and dataset == "shapes":
        epochs = SHAPES_EPOCHS
    if epochs is not None:
        _check_int("epochs", epochs)
    sources = pipelines = train_size = augmentation = None
    if named:
        sources, augmentation, image_size = sources_and_inputs(
            dataset, dataset_options, seed=seed, full_train=full_train
        )
        classes, train_size, described = len(sources.class_names), len(sources.train), sources.described
    else:
        pipelines = tuple(dataset)
        image_size = pipelines[0].element_spec[0].shape[1]
        steps_per_epoch = _pair_steps_per_epoch(pipelines[0], steps_per_epoch)
        described = {"train": "the given training pipeline", "validation": "the given validation pipeline"}
    chosen = _run_recipe(
        recipe, dataset if named else None, name, image_size, train_size, batch_size, lr=lr, weight_decay=weight_decay
    )
    if named:
        steps_per_epoch = math.ceil(train_size / chosen.batch_size)
    chosen, epochs = _fit_schedule(chosen, epochs, steps_per_epoch)
    if chosen.schedule == "plateau" and (sources.validation if named else pipelines[1]) is None:
        raise ValueError(
            f"recipe {recipe!r} decays on a validation plateau, which full_train (no validation split) cannot "
            "see; received full_train=True"
        )
    return RunPlan(
        name,
        dataset if named else "pipelines",
        chosen,
        epochs,
        steps_per_epoch,
        image_size,
        augmentation,
        classes,
        described,
        seed,
        full_train,
        weights,
        dataset_options,
        sources,
        pipelines,
    )


def sources_and_inputs(dataset: str, options: dict, **arguments: Any) -> tuple:
    """`keras_resnet.data.sources_and_inputs` of a data set name and its `DATASET_OPTIONS`."""
    listing = {key: options.get(key) for key in ("data_dir", "train_size", "validation_size")}
    return data.sources_and_inputs(
        dataset, options.get("augmentation"), options.get("image_size"), **listing, **arguments
    )


def _run_recipe(recipe, dataset, model_name, image_size, train_size, batch_size, **overrides):
    """The recipe of a run: the data set's (or `recipe`) with the overrides; no batch beyond the training set."""
    if recipe is None:
        small = "cifar10" if image_size <= data.SMALL_IMAGE_SIDE else "imagenet"
        recipe = dataset if dataset in data.CIFAR_NAMES else small
        recipe = f"{recipe}_{model_name}" if f"{recipe}_{model_name}" in recipes.RECIPES else recipe
    batch = batch_size or recipes.recipe_for(recipe).batch_size
    if train_size is not None and batch > train_size:
        what = "every epoch is one batch of all of them"
        if batch_size is None:
            batch_size, what = train_size, f"batches of {train_size} instead (the learning rate scales with the batch)"
        warnings.warn(
            f"the batch of {batch} images is larger than the {train_size} training images: {what}", stacklevel=4
        )
    overrides["batch_size"] = batch_size
    return recipes.recipe_for(recipe, **{key: value for key, value in overrides.items() if value is not None})


def _fit_schedule(recipe, epochs, steps_per_epoch):
    """`(recipe, epochs)`: the recipe's length in epochs, or its schedule stretched or squeezed to `epochs`."""
    if epochs is None:
        return recipe, math.ceil(recipe.total_steps / steps_per_epoch)
    # Same drop points, as fractions of the run.
    total = epochs * steps_per_epoch
    boundaries = tuple(sorted({max(1, round(b * total / recipe.total_steps)) for b in recipe.boundaries}))
    return recipes.recipe_for(recipe, total_steps=total, boundaries=boundaries), epochs


def _pair_steps_per_epoch(train_data, steps_per_epoch):
    """Batches per epoch of a user's training pipeline: its cardinality, or `steps_per_epoch` when unknown."""
    import tensorflow as tf

    cardinality = int(train_data.cardinality())
    if steps_per_epoch is not None:
        _check_int("steps_per_epoch", steps_per_epoch)
        return steps_per_epoch
    if cardinality in (tf.data.UNKNOWN_CARDINALITY, tf.data.INFINITE_CARDINALITY) or cardinality < 1:
        what = {tf.data.UNKNOWN_CARDINALITY: "unknown", tf.data.INFINITE_CARDINALITY: "infinite"}.get(
            cardinality, "zero"
        )
        raise ValueError(
            f"the training pipeline's cardinality is {what}, so the number of batches per epoch cannot be known; "
            "pass steps_per_epoch (or give the pipeline a known length, e.g. "
            "dataset.apply(tf.data.experimental.assert_cardinality(n))); received steps_per_epoch=None"
        )
    return cardinality


def _check_weights(model, dataset, weights):
    """`weights` as run.json records it; they go with a model name and a named data set."""
    if not isinstance(model, str) or not isinstance(dataset, str):
        raise ValueError(
            "weights go with a model name and a named data set (for a built model or pipelines of your own, build "
            "the backbone with get_model(name, weights=..., include_top=False) and add your classifier); received "
            f"weights={weights!r} with model={model if isinstance(model, str) else type(model).__name__!r} "
            f"and dataset={dataset if isinstance(dataset, str) else 'a pair of pipelines'!r}"
        )
    return os.fspath(weights)


def _crop_size(model_name, weights):
    """The crop side pretrained weights of another framework were trained at; `None` for others ("imagenet")."""
    from keras_resnet.models import pretrained

    # Unknown names and weights of another architecture are refused here, before any data is read.
    resolved = pretrained.resolve(
        weights, architecture=MODELS[model_name].architecture, include_top=False, classes=None, switches={}
    )
    return None if resolved is None else resolved.preprocessing["crop_size"]


def _check_data_arguments(model, dataset, batch_size, classes, steps_per_epoch, full_train, dataset_options):
    if isinstance(dataset, str):
        if classes is not None or steps_per_epoch is not None:
            raise ValueError(
                "classes and steps_per_epoch apply to a (train, validation) pair of pipelines only; received "
                f"classes={classes!r}, steps_per_epoch={steps_per_epoch!r} for dataset={dataset!r}"
            )
        return
    if full_train:
        raise ValueError(
            "full_train applies to dataset='cifar10' or 'cifar100'; received full_train=True with a pair of pipelines"
        )
    if dataset_options or batch_size is None:
        raise ValueError(
            "a (train, validation) pair of pipelines takes batch_size (the one they were built with) and no "
            f"options of `datasets`; received batch_size={batch_size!r}, options {sorted(dataset_options)}"
        )
    if isinstance(model, str) and classes is None:
        raise ValueError(
            f"a model name with a (train, validation) pair of pipelines needs classes (the number of "
            f"classes to build {model} for); received classes=None"
        )
