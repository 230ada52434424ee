"""Training runs: a model name and a data set name in, a trained, checkpointed run out.

`train` plans the run (`keras_resnet.training.plan`), prepares its folder (`run_folder.RunFolder`), builds the
data and the model, fits and reports; `evaluate_run` scores a model or a run's checkpoint on a named data set.
TensorFlow is imported inside the functions.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import warnings
from typing import Any

import keras
import numpy as np

from keras_resnet import accelerate, data, export, imagenet, recipes
from keras_resnet._validation import check_choice as _check_choice
from keras_resnet.models.builders import get_model
from keras_resnet.models.model import ResNetModel
from keras_resnet.training import distribute, evaluation, plan, run_folder
from keras_resnet.training.plan import SHAPES_EPOCHS, RunPlan
from keras_resnet.training.replicated import DistributedModel, distributed_model, scale_recipe

__all__ = ["SHAPES_EPOCHS", "DistributedModel", "distributed_model", "evaluate_run", "scale_recipe", "train"]

_FIRST_FAILURES = 20  # names of failed images in run.json


def train(
    model: str | keras.Model = "resnet20",
    dataset: str | tuple = "shapes",
    *,
    epochs: int | None = None,
    batch_size: int | None = None,
    lr: float | None = None,
    weight_decay: float | None = None,
    recipe: str | None = None,
    output_dir: str | os.PathLike | None = None,
    seed: int = 0,
    strategy: str = "auto",
    per_replica_batch_size: int | None = None,
    verbose: str | int = "auto",
    classes: int | None = None,
    steps_per_epoch: int | None = None,
    full_train: bool = False,
    overwrite: bool = False,
    weights: str | os.PathLike | None = None,
    **dataset_options: Any,
) -> dict:
    """Trains a model on a data set with the paper's recipe for it.

    The recipe (`keras_resnet.recipes`) is CIFAR's for images of at most `keras_resnet.data.SMALL_IMAGE_SIDE`
    pixels, ImageNet's for larger; given `epochs`, its schedule is stretched or squeezed to them
    (`keras_resnet.training.plan.plan_run` gives the plan without training). A model name is built with the
    run's normalisation and class names inside, so its checkpoints take raw 0-255 images.

    With `output_dir`, the run writes `best.keras`, `last.keras`, `log.csv`, `curves.png`, `run.json` and,
    while training, `backup/`; the same call after an interrupt (even `SIGKILL`) resumes and ends as the
    uninterrupted run would. User pipelines resume exactly only with seeded shuffles and stateless random ops.

    Args:
        model: a name of `keras_resnet.MODELS` or a built `keras.Model` (built in the strategy's scope).
        dataset: `"shapes"`, `"cifar10"`, `"cifar100"`, `"folder:PATH"`, a tensorflow-datasets name, or a
            `(train, validation)` pair of batched `tf.data.Dataset`s of `(images, labels)`.
        epochs: epochs to train; defaults to the recipe's length, `SHAPES_EPOCHS` for shapes.
        batch_size: global batch (the learning rate scales with it); required with pipelines.
        lr: base learning rate, overriding the recipe's.
        weight_decay: L2 weight decay, overriding the recipe's.
        recipe: a name of `keras_resnet.recipes.RECIPES` to use instead.
        output_dir: folder of the run's files; `None` writes nothing.
        seed: seed of the weights, data order, augmentation and shapes.
        strategy: one of `keras_resnet.training.distribute.STRATEGIES`; every worker mounts `output_dir`.
        per_replica_batch_size: images per replica and step, instead of `batch_size`.
        verbose: `model.fit` verbosity.
        classes: with a model name and pipelines, the classes to build for.
        steps_per_epoch: with pipelines, batches per epoch; required when their cardinality is unknown.
        full_train: CIFAR only: train on all training images and report the test error (the paper's tables);
            by default the last 10% of each class validates.
        overwrite: whether to train afresh over a finished run.
        weights: with a model name and a named data set, pretrained weights to fine-tune (a builder's
            `weights=` value) under a new classifier; the image size defaults to their crop size.
        **dataset_options: with a data set name, `image_size`, `augmentation`, `data_dir`, `train_size`,
            `validation_size`.

    Returns:
        A dict: `model`, `val_accuracy`, `val_loss`, `test_accuracy`, `test_loss` (`None` without that split),
        `splits`, `decode_failures`, `steps`, `epochs`, `steps_per_epoch`, `recipe`, `history` and `files`.

    Example:

    >>> result = train("resnet20", "shapes", epochs=1, train_size=256,
    ...                validation_size=64, verbose=0)  # doctest: +SKIP
    >>> result["steps"]  # doctest: +SKIP
    2
    """
    _check_choice("overwrite", overwrite, (True, False))
    # Before any other TensorFlow work: TensorFlow creates MultiWorkerMirroredStrategy first.
    replication = distribute.replicate(strategy)
    keras.utils.set_random_seed(seed)
    options = dict(epochs=epochs, lr=lr, weight_decay=weight_decay, recipe=recipe, seed=seed, classes=classes)
    batch_size = _global_batch_size(replication, batch_size, per_replica_batch_size)
    run = plan.plan_run(
        model,
        dataset,
        batch_size=batch_size,
        steps_per_epoch=steps_per_epoch,
        full_train=full_train,
        weights=weights,
        **options,
        **dataset_options,
    )
    folder = run_folder.RunFolder(output_dir, is_chief=replication.is_chief)
    folder.start(run.record(), overwrite=overwrite)
    setup = _exact_epochs(accelerate.acceleration(data_parallel=False), run.steps_per_epoch)
    statistics = data.image_statistics(run.sources.train) if run.augmentation == "cifar" else None
    with _dtype_policy_kept():
        model = distribute.with_strategy(lambda: _build(model, run, statistics, setup), replication)
        train_data, validation_data, test_data = _pipelines(run, model, statistics, folder.resume_epoch)
        failures = _DecodeFailures(run.sources)
        callbacks = run_folder.run_callbacks(
            run.recipe, output_dir, is_chief=replication.is_chief, save_best=validation_data is not None
        )
        # The pipelines shuffle; `shuffle=False` only tells Keras not to warn that it cannot.
        history = model.fit(
            train_data,
            validation_data=validation_data,
            epochs=run.epochs,
            callbacks=[failures, *callbacks],
            shuffle=False,
            steps_per_epoch=run.steps_per_epoch,
            verbose=verbose if replication.is_chief else 0,
        ).history
        results = _results(model, run.described, {"validation": validation_data, "test": test_data})
    report = {
        "class_names": None if run.class_names is None else list(run.class_names),
        "splits": run.described,
        "results": results,
        "decode_failures": failures.summary(),
    }
    history = folder.finish(report, label=run.model, steps_per_epoch=run.steps_per_epoch) or history
    return {
        "model": model,
        **dict.fromkeys(("val_accuracy", "val_loss", "test_accuracy", "test_loss")),
        **{key.replace("validation_", "val_"): result["value"] for key, result in results.items()},
        "splits": run.described,
        "decode_failures": report["decode_failures"],
        "steps": int(model.optimizer.iterations.numpy()),
        "epochs": run.epochs,
        "steps_per_epoch": run.steps_per_epoch,
        "recipe": run.recipe,
        "history": history,
        "files": folder.files,
    }


def _build(model: str | keras.Model, run: RunPlan, statistics: dict | None, setup) -> keras.Model:
    """The run's model, compiled with its recipe: a name built for the data set with its normalisation inside."""
    if isinstance(model, str):
        setup.apply()  # the device's precision, before building
        options = {"input_shape": (run.image_size, run.image_size, 3), "classes": run.classes}
        if run.weights is not None:
            model = _pretrained_classifier(model, run.weights, **options)
        elif run.sources is not None:
            preprocessing = _preprocessing(run.augmentation, statistics)
            model = get_model(model, include_preprocessing=True, preprocessing=preprocessing, **options)
        else:
            model = get_model(model, **options)
        if run.sources is not None:
            model.record(class_names=run.class_names)
    recipes.compile_for(model, run.recipe, acceleration=setup)
    return model


def _pipelines(run: RunPlan, model: keras.Model, statistics: dict | None, first_epoch: int) -> tuple:
    """`(train, validation, test)` of the epochs still to run, each worker's share of every batch."""
    if run.sources is not None:
        # One stream of the epochs still to run, each a pure function of (seed, epoch): exact resume.
        splits = _pipelines_for(
            model,
            run.sources,
            run.augmentation,
            run.image_size,
            batch_size=run.recipe.batch_size,
            seed=run.seed,
            epochs=range(min(first_epoch, run.epochs - 1), run.epochs),
            statistics=statistics,
        )
        pipelines = splits.train, splits.validation, splits.test
    else:
        # One stream of batches across epochs (Keras keeps one iterator), from the first epoch still to run.
        train_data, validation_data = run.pipelines
        pipelines = train_data.repeat().skip(first_epoch * run.steps_per_epoch), validation_data, None
    return tuple(None if d is None else distribute.shard_dataset(d, "data") for d in pipelines)


def _results(model, described, pipelines):
    """The final model's accuracy and loss on each evaluation split there is, with what the split is."""
    results = {}
    for split, pipeline in pipelines.items():
        if pipeline is not None:
            score = model.evaluate(pipeline, verbose=0, return_dict=True)
            for key in ("accuracy", "loss"):
                results[f"{split}_{key}"] = {"value": float(score[key]), "split": described[split]}
    return results


def _pipelines_for(model, sources, augmentation, image_size, **options):
    """`keras_resnet.data.pipelines_for` the images `model` takes: raw if it normalises them, at its size."""
    normalize = not getattr(model, "includes_preprocessing", False)
    fed = _fed_images(model, augmentation, image_size)
    return data.pipelines_for(sources, augmentation=augmentation, normalize=normalize, **fed, **options)


class _DecodeFailures(keras.callbacks.Callback):
    """Warns after every epoch naming the images that failed to decode: they are left out, never replaced."""

    def __init__(self, sources):
        super().__init__()
        splits = () if sources is None else (sources.train, sources.validation, sources.test)
        self.sources = [source for source in splits if source is not None]

    def _names(self):
        return list(dict.fromkeys(name for source in self.sources for *_, name in source.decode_failures))

    def on_epoch_end(self, epoch, logs=None):
        if names := self._names():
            warnings.warn(
                f"epoch {epoch + 1}: {len(names)} image(s) failed to decode and are left out of every pass (which "
                f"ends with as many images from its start instead), e.g. "
                f"{', '.join(names[: data.sources.WARN_PATHS])}; run.json lists them",
                stacklevel=2,
            )

    def summary(self):
        """`{"count": images that failed to decode, "first": their first names}`."""
        names = self._names()
        return {"count": len(names), "first": names[:_FIRST_FAILURES]}


def _pretrained_classifier(model_name, weights, *, input_shape, classes):
    """The pretrained backbone, normalising raw images as its weights record, with a new softmax classifier."""
    backbone = get_model(
        model_name,
        weights=weights,
        include_top=False,
        pooling="avg",
        include_preprocessing=True,
        input_shape=input_shape,
    )
    # float32, as the builders' classifier under mixed precision: a stable softmax.
    outputs = keras.layers.Dense(classes, activation="softmax", dtype="float32", name="predictions")(backbone.output)
    return ResNetModel(
        backbone.inputs,
        outputs,
        name=backbone.name,
        feature_levels=backbone.feature_levels,
        preprocessing=backbone.preprocessing,
        includes_preprocessing=True,
    )


def _preprocessing(augmentation, statistics):
    """The normalisation of a run's pipelines, as a model with `include_preprocessing=True` applies it."""
    if augmentation == "cifar":
        return export.cifar_preprocessing(statistics, "pixel")
    return {"mean": list(imagenet.IMAGENET_MEAN)}


@contextlib.contextmanager
def _dtype_policy_kept():
    """Restores the global dtype policy, which building a model for the device (`Acceleration.apply`) sets."""
    policy = keras.config.dtype_policy()
    try:
        yield
    finally:
        keras.config.set_dtype_policy(policy)


def _global_batch_size(replication, batch_size, per_replica_batch_size):
    if per_replica_batch_size is None:
        return batch_size
    if batch_size is not None:
        raise ValueError(
            "batch_size and per_replica_batch_size exclude each other; received "
            f"batch_size={batch_size!r}, per_replica_batch_size={per_replica_batch_size!r}"
        )
    return replication.global_batch_size(per_replica_batch_size)


def _exact_epochs(setup, steps_per_epoch):
    """`setup` with the largest `steps_per_execution` that divides the epoch (Keras runs whole executions)."""
    steps = max(d for d in range(1, setup.steps_per_execution + 1) if steps_per_epoch % d == 0)
    return dataclasses.replace(setup, steps_per_execution=steps)


def _fed_images(model, augmentation, image_size):
    """The `image_size` (and `resize_size`) that feeds `model`: its resize size if it crops by itself."""
    if "preprocessing_crop" not in {layer.name for layer in model.layers}:
        return {"image_size": image_size}
    side = model.get_layer("preprocessing_resize").height
    return {"image_size": side, "resize_size": side} if augmentation == "imagenet" else {"image_size": side}


def evaluate_run(
    model: keras.Model | str | os.PathLike,
    dataset: str | None = None,
    *,
    method: str = "center",
    batch_size: int = 128,
    seed: int | None = None,
    split: str = "validation",
    **dataset_options: Any,
) -> dict:
    """Top-1 and top-5 accuracy and error of a model or a run's checkpoint on a named data set's split.

    The split is built as `train` builds it; a checkpoint's `run.json` gives what is not given here.

    Args:
        model: a `keras.Model` (fed raw images if it carries its preprocessing) or a `.keras` file's path.
        dataset: a data set name as for `train`; `None`: the run's.
        method: `"center"`, or the paper's `"ten_crop"` or `"multi_scale"` testing (ImageNet augmentation only).
        batch_size: images per batch.
        seed: the seed the model was trained with; `None`: the run's, else 0.
        split: `"validation"` or `"test"` (CIFAR's test set).
        **dataset_options: arguments of `keras_resnet.data.datasets`; the run's where not given.

    Returns:
        A dict: `top1_accuracy`, `top5_accuracy`, `top1_error`, `top5_error`, `count`, `split`, `dataset`.

    Example:

    >>> evaluate_run("runs/resnet20-shapes/best.keras")  # doctest: +SKIP
    {'top1_accuracy': 0.98, 'top5_accuracy': 1.0, ...}
    """
    _check_choice("method", method, evaluation.METHODS)
    _check_choice("split", split, ("validation", "test"))
    run = None
    if isinstance(model, (str, os.PathLike)):
        if not os.path.isfile(model):
            raise ValueError(f"model must be a keras.Model or an existing .keras file; received {os.fspath(model)!r}")
        run = run_folder.read_run(os.path.dirname(os.path.abspath(model)))
        model = keras.saving.load_model(model)
    if dataset is None:
        dataset, dataset_options, seed = _run_data(run, dataset_options, seed)
    seed = 0 if seed is None else seed
    sources, augmentation, image_size = plan.sources_and_inputs(dataset, dataset_options, seed=seed)
    source = getattr(sources, split)
    if source is None:
        raise ValueError(
            f"split 'test' needs a data set with a test set (cifar10, cifar100); received "
            f"split={split!r} for dataset={dataset!r}"
        )
    if method == "center":
        splits = _pipelines_for(model, sources, augmentation, image_size, batch_size=batch_size, seed=seed)
        batches = [(model.predict_on_batch(x), y) for x, y in getattr(splits, split).as_numpy_iterator()]
        scores, labels = (np.concatenate(column) for column in zip(*batches))
    elif augmentation != "imagenet":
        raise ValueError(
            f"method {method!r} needs augmentation='imagenet' (full-size images); received "
            f"augmentation={augmentation!r}. Use method='center'."
        )
    else:
        normalize = not getattr(model, "includes_preprocessing", False)
        result = evaluation.evaluate(
            model,
            source.images(),
            method=method,
            crop_size=image_size,
            resize_size=imagenet.scaled_sizes(image_size)[1],
            preprocess=data.normalizer(imagenet.IMAGENET_MEAN) if normalize else None,
        )
        scores, labels = result["scores"], result["labels"]
    top1, top5 = (evaluation.top_k_error(scores, labels, k=k) for k in (1, 5))
    return {
        "top1_accuracy": 1 - top1,
        "top5_accuracy": 1 - top5,
        "top1_error": top1,
        "top5_error": top5,
        "count": len(labels),
        "split": sources.described[split],
        "dataset": dataset,
    }


def _run_data(run, dataset_options, seed):
    """`(dataset, options, seed)` of a run's `run.json`, completed by those given."""
    if run is None or run.get("dataset") in (None, "pipelines"):
        what = "no run.json" if run is None else "a run.json of a run on pipelines of its own"
        raise ValueError(
            f"dataset is needed: the model has {what} beside it to say what it trained on; received dataset=None"
        )
    options = {key: run[key] for key in plan.DATASET_OPTIONS if run.get(key) is not None}
    return run["dataset"], {**options, **dataset_options}, run["seed"] if seed is None else seed
