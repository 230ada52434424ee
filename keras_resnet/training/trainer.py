"""Training and evaluation runs: a model name and a data set name in, a trained, checkpointed run out.

`train` wires the library together the way the paper trains: `keras_resnet.data` pipelines (CIFAR
pad-crop-flip or ImageNet scale augmentation), the recipe of `keras_resnet.recipes` for the data set,
and a run folder with the best and last `.keras` checkpoints, a CSV log, a `BackupAndRestore`
backup (re-running the same call after an interrupt resumes it) and the training curves.
`keras-resnet train` is this function on the command line, `evaluate_run` (`keras-resnet evaluate`)
scores a model or a run's checkpoint on a named data set, and `distributed_model` / `scale_recipe`
assemble a replicated model and its recipe for a `fit` of your own.

Data sets are named by one string, as `keras_resnet.data.datasets` reads them (`"shapes"`, `"cifar10"`,
`"cifar100"`, `"folder:PATH"` or a tensorflow-datasets name; see `keras_resnet.data.named`).

Every training epoch's order and augmentation are a function of `seed` and the epoch
(`keras_resnet.data.cifar_pipeline`'s `epochs`), so a resumed run sees exactly the data of the
uninterrupted one.

TensorFlow is imported inside the functions.
"""

import contextlib
import dataclasses
import json
import math
import os
import typing
import warnings

import keras
import numpy as np

from keras_resnet import accelerate, data, export, imagenet, recipes
from keras_resnet._validation import check_choice as _check_choice
from keras_resnet._validation import check_int as _check_int
from keras_resnet.data import AUGMENTATIONS, datasets  # noqa: F401 (re-exported: the CLI's choices, training.datasets)
from keras_resnet.models.builders import MODELS, get_model
from keras_resnet.models.model import ResNetModel
from keras_resnet.training import distribute, evaluation, run_folder
from keras_resnet.training.callbacks import resume_epoch
from keras_resnet.training.evaluation import METHODS
from keras_resnet.training.plotting import plot_curves, read_log

SHAPES_EPOCHS = 8
"""Epochs of the `"shapes"` data set when `epochs` is not given: a couple of minutes on a laptop CPU."""

# The run folder's files; `run_folder.run_callbacks` writes the backup, checkpoints and log under these names.
_RUN_FILES = {**run_folder.RUN_FILES, "curves": "curves.png", "config": "run.json"}

_FIRST_FAILURES = 20  # names of failed images in run.json


def train(
    model="resnet20",
    dataset="shapes",
    *,
    epochs=None,
    batch_size=None,
    lr=None,
    weight_decay=None,
    recipe=None,
    output_dir=None,
    seed=0,
    strategy="auto",
    per_replica_batch_size=None,
    verbose="auto",
    classes=None,
    steps_per_epoch=None,
    full_train=False,
    overwrite=False,
    weights=None,
    **dataset_options,
):
    """Trains a model on a data set with the paper's recipe for it.

    The recipe is `keras_resnet.recipes`' `"cifar10"` / `"cifar100"` for
    CIFAR, `"cifar10_resnet110"` for ResNet-110 on CIFAR, `"cifar10"` for
    other images of at most `keras_resnet.data.SMALL_IMAGE_SIDE` pixels
    (shapes, a folder of 32x32 images) and `"imagenet"` for larger; its
    batch is at most the number of training images (a warning says so).
    Given `epochs`, the recipe's whole step schedule is stretched or
    squeezed to that many epochs: the learning rate drops at the same
    fractions of the run as in the paper (a 2-epoch CIFAR run ends at lr
    0.001). `run.json`'s `"schedule"` records the schedule that ran.

    A model name is built for the data set with its normalisation inside
    (`include_preprocessing=True`) and records the class names, so the
    run's checkpoints take raw 0-255 images (any size where the
    augmentation allows) and `evaluate_run` / `keras_resnet.export` need
    nothing beside them. With `weights`, the model is fine-tuned: the
    pretrained backbone (`include_top=False, pooling="avg"`) normalises raw
    images with the weights' own preprocessing, recorded in the model, and
    a new softmax classifier (`"predictions"`) has the data set's classes.
    Epochs are exact whatever `steps_per_execution`
    the device gets: it is lowered to the largest divisor of the steps per
    epoch. The global dtype policy is restored on return.

    With an `output_dir`, the run's files are written there: `best.keras`
    and `last.keras` checkpoints, `log.csv`, `curves.png` (training error
    dashed, validation error solid, against iterations), `run.json` (the
    arguments and schedule, then the class names, splits and final results;
    `evaluate_run` of a checkpoint in the folder reads it) and, while
    training, `backup/`. Calling `train` again with the same arguments
    after an interrupt (even `SIGKILL`) resumes from the last finished
    epoch and ends in the state of an uninterrupted run: same weights,
    optimizer slots, learning rate, plateau and warm-up state, `best.keras`
    and log (every epoch's data order and augmentation of a named data set
    are a function of `seed` and the epoch). A call with other arguments is
    refused while a backup is there, and a finished run's folder is only
    trained afresh with `overwrite=True`.

    A `(train, validation)` pair of pipelines is read as one stream of
    batches, repeated as needed (`steps_per_epoch` batches an epoch); a
    resumed run skips, reading them again, the batches of the finished
    epochs. The resume is exact when the stream is the same in every
    process: shuffles and random augmentations with explicit seeds
    (`tf.data.Dataset.shuffle(n, seed=...)`, stateless `tf.image` ops),
    as `keras_resnet.data` pipelines with a `seed` are. Unseeded shuffles
    and stateful random ops (`tf.random.uniform` without a seed, Keras
    random layers in the pipeline) give other batches after a restart.

    Args:
        model: a name of `keras_resnet.MODELS` (built for the data set's
            image size and classes) or a built `keras.Model`.
        dataset: `"shapes"`, `"cifar10"`, `"cifar100"`, `"folder:PATH"`, a
            tensorflow-datasets name, or a `(train, validation)` pair of
            batched `tf.data.Dataset`s of `(images, labels)` (any
            pipelines, e.g. `splits.train, splits.validation` of a
            `keras_resnet.data.folder(...)`).
        epochs: epochs to train, the recipe's schedule stretched or
            squeezed to them; defaults to the recipe's length (64k
            iterations for CIFAR-10) and to `SHAPES_EPOCHS` for shapes.
        batch_size: images per batch; defaults to the recipe's (the
            learning rate scales linearly with it). Required with a pair of
            pipelines: the batch size they were built with.
        lr: base learning rate, overriding the recipe's.
        weight_decay: L2 weight decay, overriding the recipe's.
        recipe: a name of `keras_resnet.recipes.RECIPES` to use instead.
        output_dir: folder of the run's files; `None` writes nothing.
        seed: integer seed of the weights (set as Keras' global seed), the
            data order and augmentation, and of the shapes images.
        strategy: how to replicate training, one of
            `keras_resnet.training.distribute.STRATEGIES`: `"auto"` (a
            `MultiWorkerMirroredStrategy` when `TF_CONFIG` names a cluster,
            `MirroredStrategy` with several GPUs, else one device),
            `"mirrored"`, `"multiworker"`, `"none"`. Only the chief writes
            `output_dir`, which every worker must mount. A built `model` must
            have been built in `keras_resnet.training.distribute.replicate(strategy).scope()`.
        per_replica_batch_size: images per replica and step, instead of
            `batch_size`: the global batch is this times the number of
            replicas (the learning rate scales with it).
        verbose: `model.fit` verbosity (`"auto"`, 0, 1, 2).
        classes: with a model name and a pair of pipelines, the number of
            classes to build it for (a named data set knows its classes; a
            built model has its own).
        steps_per_epoch: with a pair of pipelines, batches per epoch;
            required when the training pipeline's cardinality is unknown or
            infinite (else it is the pipeline's cardinality). The pipeline
            is repeated, so every epoch gets that many batches.
        full_train: CIFAR only: train on all 50,000 training images with no
            validation (no `best.keras`, no plateau recipes) and report only
            the final model's test error: the protocol of the paper's
            tables. By default the last 10% of each class validates (selects
            `best.keras`, drives plateaus) and the test set scores the final
            model once, separately.
        overwrite: bool; `True` trains afresh in the folder of a finished
            run, over its files.
        weights: with a model name and a named data set, the weights to
            fine-tune from: a `weights=` value of the builders (a name of
            `keras_resnet.models.pretrained.names_for(model)` such as
            `"torchvision_v2"` or `"timm/resnet50.a1_in1k"`, a `.pth` or
            `.safetensors` file, a keras-hub preset folder, `"imagenet"`).
            The image size defaults to the weights' crop size; `run.json`
            records both.
        **dataset_options: with a data set name, arguments of `datasets`:
            `image_size`, `augmentation`, `data_dir`, `train_size`,
            `validation_size`.

    Returns:
        A dict: `model` (trained), `val_accuracy` and `val_loss` (final
        model, on the validation split; `None` with `full_train`),
        `test_accuracy` and `test_loss` (final model, on the test set; CIFAR
        only, else `None`), `splits` (what each split is, e.g. `"hold-out:
        the last 10% of each class of the cifar10 training set (5000
        images)"`; `run.json` holds them with the results),
        `steps` (optimizer iterations done),
        `epochs`, `steps_per_epoch`, `recipe` (the `Recipe` used),
        `history` (per-epoch logs of the whole run) and `files` (paths of
        the run's files, empty without `output_dir`).

    Example:

    >>> result = train("resnet20", "shapes", epochs=1, train_size=256,
    ...                validation_size=64, verbose=0)  # doctest: +SKIP
    >>> result["steps"]  # doctest: +SKIP
    2
    """
    if isinstance(model, str):
        _check_choice("model", model.lower(), tuple(MODELS))
    _check_choice("overwrite", overwrite, (True, False))
    # Before any other TensorFlow work: TensorFlow creates MultiWorkerMirroredStrategy first.
    replication = distribute.replicate(strategy)
    batch_size = _global_batch_size(replication, batch_size, per_replica_batch_size)
    model_name = model.lower() if isinstance(model, str) else model.name
    named = isinstance(dataset, str)
    _check_data_arguments(model, dataset, batch_size, classes, steps_per_epoch, full_train, dataset_options)
    if weights is not None:
        weights = _check_weights(model, dataset, weights)
        crop_size = _crop_size(model_name, weights)
        if dataset_options.get("image_size") is None and crop_size is not None:
            dataset_options["image_size"] = crop_size
    if epochs is None and dataset == "shapes":
        epochs = SHAPES_EPOCHS
    if epochs is not None:
        _check_int("epochs", epochs)
    keras.utils.set_random_seed(seed)
    if named:
        sources, augmentation, image_size = data.sources_and_inputs(
            dataset,
            dataset_options.get("augmentation"),
            dataset_options.get("image_size"),
            seed=seed,
            full_train=full_train,
            **{key: dataset_options.get(key) for key in ("data_dir", "train_size", "validation_size")},
        )
        classes, train_size = len(sources.class_names), len(sources.train)
    else:
        train_data, validation_data = dataset
        image_size = train_data.element_spec[0].shape[1]
        steps_per_epoch = _pair_steps_per_epoch(train_data, steps_per_epoch)
        train_size = None
    chosen = _run_recipe(
        recipe,
        dataset if named else None,
        model_name,
        image_size,
        train_size,
        batch_size=batch_size,
        lr=lr,
        weight_decay=weight_decay,
    )
    if named:
        steps_per_epoch = math.ceil(train_size / chosen.batch_size)
    chosen, epochs = _fit_schedule(chosen, epochs, steps_per_epoch)

    files = {}
    if output_dir is not None and replication.is_chief:
        config = {
            "model": model_name,
            "dataset": dataset if named else "pipelines",
            "epochs": epochs,
            "recipe": repr(chosen),
            "schedule": _schedule_record(chosen, steps_per_epoch),
            "seed": seed,
            "full_train": full_train,
            **({} if weights is None else {"weights": weights}),
            **{key: dataset_options[key] for key in sorted(dataset_options)},
        }
        files = _prepare_run(output_dir, config, overwrite)
    # Where a backup resumes the run: the training pipeline starts at that epoch's data.
    first_epoch = 0 if output_dir is None else resume_epoch(os.path.join(output_dir, _RUN_FILES["backup"]))
    statistics = data.image_statistics(sources.train) if named and augmentation == "cifar" else None

    def build():
        built = model
        if isinstance(model, str):
            # keras_resnet.accelerate: the device's precision, before building (`strategy` did the replication).
            setup.apply()
            options = {"input_shape": (image_size, image_size, 3), "classes": classes}
            if weights is not None:  # the weights' normalisation inside: its checkpoints take raw images
                built = _pretrained_classifier(model, weights, **options)
            elif named:  # the run's normalisation inside: its checkpoints take raw images
                options.update(include_preprocessing=True, preprocessing=_preprocessing(augmentation, statistics))
                built = get_model(model, **options)
            else:
                built = get_model(model, **options)
            if named:
                built.record(class_names=sources.class_names)
        recipes.compile_for(built, chosen, acceleration=setup)
        return built

    setup = _exact_epochs(accelerate.acceleration(data_parallel=False), steps_per_epoch)
    with _dtype_policy_kept():
        model = distribute.with_strategy(build, replication)
        test_data = None
        if named:
            # One stream of the epochs still to run, each a pure function of (seed, epoch): exact resume.
            pipelines = data.pipelines_for(
                sources,
                augmentation=augmentation,
                batch_size=chosen.batch_size,
                seed=seed,
                epochs=range(min(first_epoch, epochs - 1), epochs),
                statistics=statistics,
                normalize=not getattr(model, "includes_preprocessing", False),
                **_fed_images(model, augmentation, image_size),
            )
            train_data, validation_data, test_data = pipelines.train, pipelines.validation, pipelines.test
        else:
            # One stream of batches across epochs (Keras keeps one iterator), from the first epoch still to run.
            train_data = train_data.repeat().skip(first_epoch * steps_per_epoch)
        if validation_data is None and chosen.schedule == "plateau":
            raise ValueError(
                f"recipe {recipe!r} decays on a validation plateau, which full_train (no validation split) cannot "
                "see; received full_train=True"
            )
        # Every worker runs the whole pipeline and keeps its share of each batch.
        train_data, validation_data, test_data = (
            None if d is None else distribute.shard_dataset(d, "data") for d in (train_data, validation_data, test_data)
        )
        callbacks = run_folder.run_callbacks(
            chosen, output_dir, is_chief=replication.is_chief, save_best=validation_data is not None
        )
        report = _DecodeFailureReport([sources.train, sources.validation, sources.test] if named else [])
        callbacks.insert(0, report)
        # The pipelines shuffle; `shuffle=False` only tells Keras not to warn that it cannot.
        history = model.fit(
            train_data,
            validation_data=validation_data,
            epochs=epochs,
            callbacks=callbacks,
            shuffle=False,
            steps_per_epoch=steps_per_epoch,
            verbose=verbose if replication.is_chief else 0,
        ).history
        scores = {
            split: None if pipeline is None else model.evaluate(pipeline, verbose=0, return_dict=True)
            for split, pipeline in (("validation", validation_data), ("test", test_data))
        }
    described = (
        sources.described
        if named
        else {"train": "the given training pipeline", "validation": "the given validation pipeline"}
    )
    results = {
        f"{split}_{key}": {"value": float(score[key]), "split": described[split]}
        for split, score in scores.items()
        if score is not None
        for key in ("accuracy", "loss")
    }
    decode_failures = report.summary()
    if files:
        with open(files["config"]) as handle:
            config = json.load(handle)
        _write_json(
            files["config"],
            {
                **config,
                "class_names": list(sources.class_names) if named else None,
                "splits": described,
                "results": results,
                "decode_failures": decode_failures,
            },
        )
        history = read_log(files["log"])
        plot_curves(files["log"], files["curves"], labels=[model_name], steps_per_epoch=steps_per_epoch)
    return {
        "model": model,
        **dict.fromkeys(("val_accuracy", "val_loss", "test_accuracy", "test_loss")),
        **{key.replace("validation_", "val_"): result["value"] for key, result in results.items()},
        "splits": described,
        "decode_failures": decode_failures,
        "steps": int(model.optimizer.iterations.numpy()),
        "epochs": epochs,
        "steps_per_epoch": steps_per_epoch,
        "recipe": chosen,
        "history": history,
        "files": files,
    }


class _DecodeFailureReport(keras.callbacks.Callback):
    """Warns after every epoch about the images its sources failed to decode, and sums them up at the end."""

    def __init__(self, sources):
        super().__init__()
        self.sources = [source for source in sources if source is not None]

    def _names(self):
        return list(dict.fromkeys(name for source in self.sources for _, _, name in source.decode_failures))

    def on_epoch_end(self, epoch, logs=None):
        names = self._names()
        if names:
            warnings.warn(
                f"epoch {epoch + 1}: {len(names)} image(s) failed to decode and are left out of every pass (which "
                "ends with as many images from its start instead), e.g. "
                f"{', '.join(names[: data.sources.WARN_PATHS])}; "
                "run.json lists them",
                stacklevel=2,
            )

    def summary(self):
        """`{"count": images that failed to decode, "first": their first names}`."""
        names = self._names()
        return {"count": len(names), "first": names[:_FIRST_FAILURES]}


def _write_json(path, content):
    with open(path, "w") as handle:
        json.dump(content, handle, indent=1)


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


def _check_data_arguments(model, dataset, batch_size, classes, steps_per_epoch, full_train, dataset_options):
    """Checks the arguments that go with a data set name, or with a `(train, validation)` pair of pipelines."""
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


def _fed_images(model, augmentation, image_size):
    """The `image_size` (and ImageNet `resize_size`) of the pipeline that feeds `model`.

    A model whose own preprocessing resizes and then centre-crops (pretrained weights' transform, e.g.
    torchvision V2: shorter side to 232, centre 224) is fed squares of its resize size, the shorter side
    resized to it, so it crops exactly as its weights expect and no image is cropped twice.

    Example:

    >>> import keras_resnet
    >>> model = keras_resnet.ResNet18(include_preprocessing=True, weights=None, preprocessing={
    ...     "mean": [124.0, 116.0, 104.0], "std": [58.0, 57.0, 57.0], "resize_size": 232, "crop_size": 224})
    >>> _fed_images(model, "imagenet", 224)
    {'image_size': 232, 'resize_size': 232}
    """
    if "preprocessing_crop" not in {layer.name for layer in model.layers}:
        return {"image_size": image_size}
    side = model.get_layer("preprocessing_resize").height
    return {"image_size": side, "resize_size": side} if augmentation == "imagenet" else {"image_size": side}


def _run_recipe(recipe, dataset, model_name, image_size, train_size, **overrides):
    """The recipe of a run: the data set's (or `recipe`) with the overrides; no batch beyond the training set."""
    if recipe is None:
        small = "cifar10" if image_size <= data.SMALL_IMAGE_SIDE else "imagenet"
        recipe = dataset if dataset in data.CIFAR_NAMES else small
        recipe = f"{recipe}_{model_name}" if f"{recipe}_{model_name}" in recipes.RECIPES else recipe
    batch_size = overrides["batch_size"] or recipes.recipe_for(recipe).batch_size
    if train_size is not None and batch_size > train_size:
        if overrides["batch_size"] is None:
            overrides["batch_size"] = train_size
            what = f"batches of {train_size} instead (the learning rate scales with the batch)"
        else:
            what = "every epoch is one batch of all of them"
        warnings.warn(
            f"the batch of {batch_size} images is larger than the {train_size} training images: {what}", stacklevel=3
        )
    return recipes.recipe_for(recipe, **{key: value for key, value in overrides.items() if value is not None})


def _fit_schedule(recipe, epochs, steps_per_epoch):
    """`(recipe, epochs)`: the recipe's length in epochs, or its schedule stretched or squeezed to `epochs`."""
    if epochs is None:
        return recipe, math.ceil(recipe.total_steps / steps_per_epoch)
    # Same drop points, as fractions of the run.
    total = epochs * steps_per_epoch
    boundaries = tuple(sorted({max(1, round(b * total / recipe.total_steps)) for b in recipe.boundaries}))
    return recipes.recipe_for(recipe, total_steps=total, boundaries=boundaries), epochs


def _schedule_record(recipe, steps_per_epoch):
    """The learning-rate schedule a run follows, for its run.json: what ran, in iterations and epochs."""
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


def _exact_epochs(setup, steps_per_epoch):
    """`setup` with the largest `steps_per_execution` up to its own that divides the epoch.

    Keras runs whole executions: with 8 steps per execution, an epoch of 391 steps would run 392 and the one
    stream of epochs (`keras_resnet.data`'s `epochs`) would drift from epoch to epoch.
    """
    steps = max(d for d in range(1, setup.steps_per_execution + 1) if steps_per_epoch % d == 0)
    return dataclasses.replace(setup, steps_per_execution=steps)


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


def _prepare_run(output_dir, config, overwrite):
    """Checks that a backup in `output_dir` is of this run, and that no finished run is overwritten unasked."""
    os.makedirs(output_dir, exist_ok=True)
    files = {name: os.path.join(output_dir, filename) for name, filename in _RUN_FILES.items()}
    config = json.loads(json.dumps(config))  # as JSON reads it back: tuples become lists
    previous = _read_run(output_dir)
    if os.path.isdir(files["backup"]):
        if previous != config:
            raise ValueError(
                f"output_dir {output_dir!r} holds the backup of an unfinished run with other arguments "
                f"({previous}); received {config}. Re-run with the same arguments to resume it, or use "
                "another output_dir."
            )
        _trim_log(files["log"], resume_epoch(files["backup"]))
    else:
        if previous is not None and "results" in previous and not overwrite:
            raise ValueError(
                f"output_dir {output_dir!r} holds a finished run ({previous['model']} on {previous['dataset']}); "
                "received overwrite=False. Pass overwrite=True (keras-resnet train --overwrite) to train it "
                "afresh over its files, or use another output_dir."
            )
        if os.path.isfile(files["log"]):
            os.remove(files["log"])
    _write_json(files["config"], config)
    return files


def _read_run(folder):
    """The run.json of a run folder, or None."""
    path = os.path.join(folder, _RUN_FILES["config"])
    if not os.path.isfile(path):
        return None
    with open(path) as handle:
        return json.load(handle)


def _trim_log(path, epochs):
    """Keeps the header and the rows of the first `epochs` epochs: a killed run may have logged an epoch it redoes."""
    if not os.path.isfile(path):
        return
    with open(path, newline="") as handle:
        lines = handle.readlines()
    kept = lines[:1] + [line for line in lines[1:] if int(line.split(",", 1)[0]) < epochs]
    if kept != lines:
        with open(path, "w", newline="") as handle:
            handle.writelines(kept)


class DistributedModel(typing.NamedTuple):
    """What `distributed_model` returns: the compiled model, its recipe and replication.

    Attributes:
        model: the compiled `keras.Model`, built in the replication's scope.
        recipe: the `keras_resnet.recipes.Recipe`, scaled to the global batch.
        replication: the `keras_resnet.training.distribute.Replication`.

    Example:

    ```python
    model, recipe, replication = distributed_model("resnet20", input_shape=(32, 32, 3), classes=10,
                                                   strategy="none")
    ```
    """

    model: typing.Any
    recipe: recipes.Recipe
    replication: distribute.Replication


def scale_recipe(recipe, strategy="auto", per_replica_batch_size=None, *, scale_learning_rate=True):
    """A recipe for the global batch of a replication.

    Args:
        recipe: a name of `keras_resnet.recipes.RECIPES` or a `Recipe`.
        strategy: one of `keras_resnet.training.distribute.STRATEGIES` or a
            `Replication`.
        per_replica_batch_size: int, examples per replica and step; `None`
            keeps the recipe's batch size as the global batch (each replica
            gets its share).
        scale_learning_rate: bool; `True` scales the learning rates linearly
            with the global batch (`recipes.recipe_for`), `False` keeps them.
            Step counts always follow the batch, so the epochs stay the same.

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
    model,
    recipe="cifar10",
    *,
    strategy="auto",
    per_replica_batch_size=None,
    scale_learning_rate=True,
    jit_compile="auto",
    sparse_labels=True,
    **model_kwargs,
):
    """Builds a model and compiles it with a recipe, replicated by a strategy.

    Args:
        model: a name of `keras_resnet.MODELS` (`"resnet50"`), or a function
            returning an uncompiled `keras.Model` (e.g. `keras_resnet.ResNet20`).
        recipe: a name of `keras_resnet.recipes.RECIPES` or a `Recipe`; it is
            scaled to the global batch by `scale_recipe`.
        strategy: one of `keras_resnet.training.distribute.STRATEGIES` or a
            `Replication`.
        per_replica_batch_size: int, examples per replica and step; `None`
            splits the recipe's batch between the replicas.
        scale_learning_rate: bool, whether the learning rate follows the
            global batch linearly.
        jit_compile: `True`, `False` or `"auto"`: XLA where it works (see
            `keras_resnet.training.distribute.with_strategy`).
        sparse_labels: bool, whether the labels are class indices.
        **model_kwargs: arguments of the model constructor (`input_shape`,
            `classes`, ...).

    Returns:
        A `DistributedModel` `(model, recipe, replication)`: build the input
        pipeline with `recipe.batch_size`, the global batch.

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


def evaluate_run(
    model, dataset=None, *, method="center", batch_size=128, seed=None, split="validation", **dataset_options
):
    """Top-1 and top-5 accuracy and error of a model or a run's checkpoint on a named data set's split.

    The split is built as `train` builds it (same `dataset`, options and
    `seed`). A checkpoint of a `train` run is evaluated on what the run
    trained on: its folder's `run.json` gives the data set, options and
    seed that are not given here. To score images of your own with 10-crop
    or multi-scale testing, see `keras_resnet.training.evaluation.evaluate`.

    Args:
        model: a `keras.Model` or the path of a `.keras` file (e.g. the
            `best.keras` of a `train` run). A model that carries its
            preprocessing (`include_preprocessing=True`, as `train` builds
            them) gets the raw images; others the pipelines' normalisation
            (for CIFAR augmentation, the training split's per-pixel mean).
        dataset: the data set, named as for `train`; `None`: the one in the
            `run.json` beside the checkpoint (required otherwise).
        method: `"center"` scores the validation pipeline's images (CIFAR:
            the image itself; ImageNet: centre crop); `"ten_crop"` (10 crops
            averaged) and `"multi_scale"` (the paper's fully-convolutional
            testing at several scales) use `keras_resnet.training.evaluation` and need
            ImageNet augmentation.
        batch_size: images per batch.
        seed: the seed the model was trained with; `None`: the run's, else 0.
        split: `"validation"` (for CIFAR the hold-out `train` validates on)
            or `"test"` (CIFAR's test set).
        **dataset_options: arguments of `datasets`; with `dataset=None`, the
            run's where not given.

    Returns:
        A dict with `top1_accuracy`, `top5_accuracy`, `top1_error`,
        `top5_error` (floats in [0, 1]), `count` (images scored), `split`
        (what the split is) and `dataset`.

    Example:

    >>> evaluate_run("runs/resnet20-shapes/best.keras")  # doctest: +SKIP
    {'top1_accuracy': 0.98, 'top5_accuracy': 1.0, ...}
    """
    _check_choice("method", method, METHODS)
    _check_choice("split", split, ("validation", "test"))
    run = None
    if isinstance(model, (str, os.PathLike)):
        if not os.path.isfile(model):
            raise ValueError(f"model must be a keras.Model or an existing .keras file; received {os.fspath(model)!r}")
        run = _read_run(os.path.dirname(os.path.abspath(model)))
        model = keras.saving.load_model(model)
    if dataset is None:
        dataset, dataset_options, seed = _run_data(run, dataset_options, seed)
    seed = 0 if seed is None else seed
    splits, augmentation, image_size = data.sources_and_inputs(
        dataset,
        dataset_options.get("augmentation"),
        dataset_options.get("image_size"),
        seed=seed,
        **{key: dataset_options.get(key) for key in ("data_dir", "train_size", "validation_size")},
    )
    source = getattr(splits, split)
    if source is None:
        raise ValueError(
            f"split 'test' needs a data set with a test set (cifar10, cifar100); received "
            f"split={split!r} for dataset={dataset!r}"
        )
    normalize = not getattr(model, "includes_preprocessing", False)
    if method == "center":
        pipeline = getattr(
            data.pipelines_for(
                splits,
                augmentation=augmentation,
                batch_size=batch_size,
                seed=seed,
                normalize=normalize,
                **_fed_images(model, augmentation, image_size),
            ),
            split,
        )
        batches = [(model.predict_on_batch(x), y) for x, y in pipeline.as_numpy_iterator()]
        scores = np.concatenate([s for s, _ in batches])
        labels = np.concatenate([y for _, y in batches])
    else:
        if augmentation != "imagenet":
            raise ValueError(
                f"method {method!r} needs augmentation='imagenet' (full-size images); received "
                f"augmentation={augmentation!r}. Use method='center'."
            )
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
        "split": splits.described[split],
        "dataset": dataset,
    }


def _run_data(run, dataset_options, seed):
    """`(dataset, options, seed)` of a run's `run.json`, completed by those given."""
    if run is None or run.get("dataset") in (None, "pipelines"):
        what = "no run.json" if run is None else "a run.json of a run on pipelines of its own"
        raise ValueError(
            f"dataset is needed: the model has {what} beside it to say what it trained on; received dataset=None"
        )
    options = {key: run.get(key) for key in ("data_dir", "train_size", "validation_size", "image_size", "augmentation")}
    options = {key: value for key, value in options.items() if value is not None}
    return run["dataset"], {**options, **dataset_options}, run["seed"] if seed is None else seed
