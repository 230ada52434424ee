"""Training and evaluation runs: a model name and a data set name in, a trained, checkpointed run out.

`train` wires the library together the way the paper trains: `keras_resnet.data` pipelines (CIFAR
pad-crop-flip or ImageNet scale augmentation), the recipe of `keras_resnet.presets` for the data set,
and a run folder with the best and last `.keras` checkpoints, a CSV log, a `BackupAndRestore`
backup (re-running the same call after an interrupt resumes it) and the training curves.
`keras-resnet train` is this function on the command line.

Data sets are named by one string:

- `"shapes"`: the embedded `keras_resnet.shapes` images, generated from `seed` (no download);
- `"cifar10"`, `"cifar100"`: the python batch files in `data_dir`, or tensorflow-datasets' copy;
- `"folder:PATH"`: `PATH/train/<class>/...` and `PATH/validation/<class>/...` (or `PATH/val`);
- any other tensorflow-datasets name (prepared in `data_dir`), with its `validation` split (else `test`).

TensorFlow is imported inside the functions.
"""

import json
import math
import os

import keras
import numpy as np

from keras_resnet import accelerate, data, distribute, evaluation, presets, shapes
from keras_resnet._validation import check_choice as _check_choice
from keras_resnet.models import MODELS, get_model
from keras_resnet.plotting import plot_curves, read_log

AUGMENTATIONS = ("cifar", "imagenet")
METHODS = ("center", "ten_crop", "multi_scale")

SHAPES_EPOCHS = 8
"""Epochs of the `"shapes"` data set when `epochs` is not given: a couple of minutes on a laptop CPU."""

# The run folder's files; `presets.callbacks` writes the backup, checkpoints and log under these names.
_RUN_FILES = {**presets.RUN_FILES, "curves": "curves.png", "config": "run.json"}

_CIFAR = ("cifar10", "cifar100")
_FOLDER = "folder:"
# The paper's ImageNet scale augmentation (shorter side in [256, 480], test at 256) for 224 crops.
_IMAGENET_SCALES = (256, 480)


def datasets(
    dataset="shapes",
    *,
    batch_size=128,
    image_size=None,
    augmentation=None,
    data_dir=None,
    train_size=None,
    validation_size=None,
    seed=0,
):
    """Builds the training and validation pipelines of a named data set.

    Args:
        dataset: `"shapes"`, `"cifar10"`, `"cifar100"`, `"folder:PATH"` or a
            tensorflow-datasets name (see the module docstring).
        batch_size: images per batch.
        image_size: side of the model's input; defaults to 32 with CIFAR
            augmentation and 224 with ImageNet augmentation.
        augmentation: `"cifar"` (4-pixel pad, random crop, flip; per-pixel
            mean of the training set subtracted) or `"imagenet"` (scale
            augmentation, random crop, flip; ImageNet mean subtracted);
            defaults to `"cifar"` for shapes and CIFAR, else `"imagenet"`.
        data_dir: folder of the CIFAR batch files or of prepared
            tensorflow-datasets data; nothing is downloaded.
        train_size: `"shapes"` only: number of training images (6000).
        validation_size: `"shapes"` only: number of validation images (1000).
        seed: integer seed of the shapes images and of shuffling and augmentation.

    Returns:
        A tuple `(train, validation)` of `tf.data.Dataset`s of
        `(float32 images, int32 labels)`, each with a `class_names` attribute.

    Example:

    >>> train, validation = datasets("shapes", train_size=200, validation_size=50)
    >>> train.class_names
    ('circle', 'square', 'triangle', 'cross', 'ring')
    """
    augmentation, image_size = _resolve(dataset, augmentation, image_size)
    train_source, validation_source = _sources(
        dataset, data_dir=data_dir, train_size=train_size, validation_size=validation_size,
        image_size=image_size, seed=seed,
    )
    options = dict(image_size=image_size)
    if augmentation == "imagenet":
        scale = image_size / 224
        options.update(
            scale_range=tuple(round(side * scale) for side in _IMAGENET_SCALES),
            resize_size=round(_IMAGENET_SCALES[0] * scale),
        )
    return data._train_and_evaluation(
        train_source, validation_source, augmentation=augmentation, batch_size=batch_size, seed=seed,
        options=options,
    )


def _resolve(dataset, augmentation, image_size):
    if not isinstance(dataset, str) or not dataset:
        raise ValueError(
            "dataset must be 'shapes', 'cifar10', 'cifar100', 'folder:PATH' or a tensorflow-datasets "
            f"name; received {dataset!r}"
        )
    if augmentation is None:
        augmentation = "cifar" if dataset in ("shapes", *_CIFAR) else "imagenet"
    _check_choice("augmentation", augmentation, AUGMENTATIONS)
    if image_size is None:
        image_size = 32 if augmentation == "cifar" else 224
    if not isinstance(image_size, int) or isinstance(image_size, bool) or image_size < 8:
        raise ValueError(f"image_size must be an integer of at least 8; received {image_size!r}")
    return augmentation, image_size


def _sources(dataset, *, data_dir, train_size, validation_size, image_size, seed):
    if dataset != "shapes" and (train_size is not None or validation_size is not None):
        raise ValueError(
            "train_size and validation_size apply to dataset='shapes' only; received "
            f"train_size={train_size!r}, validation_size={validation_size!r} for dataset={dataset!r}"
        )
    if dataset == "shapes":
        sizes = {"train_size": train_size, "validation_size": validation_size}
        (x_train, y_train), (x_val, y_val), names = shapes.load_data(
            **{key: value for key, value in sizes.items() if value is not None}, image_size=image_size, seed=seed
        )
        return data.array_source(x_train, y_train, names), data.array_source(x_val, y_val, names)
    if dataset.startswith(_FOLDER):
        root = dataset[len(_FOLDER):]
        validation = [os.path.join(root, name) for name in ("validation", "val") if os.path.isdir(os.path.join(root, name))]
        if not os.path.isdir(os.path.join(root, "train")) or not validation:
            raise ValueError(
                f"dataset 'folder:PATH' needs PATH/train and PATH/validation (or PATH/val), each with one "
                f"sub-folder per class; received {dataset!r}"
            )
        return data.folder_source(os.path.join(root, "train")), data.folder_source(validation[0])
    if dataset in _CIFAR and data_dir is not None:
        try:
            return data.cifar_source(data_dir, split="train"), data.cifar_source(data_dir, split="test")
        except FileNotFoundError:
            pass  # not the python batch files: a tensorflow-datasets folder
    import tensorflow_datasets as tfds

    try:
        splits = tfds.builder(dataset, data_dir=data_dir).info.splits
    except tfds.core.registered.DatasetNotFoundError:
        raise ValueError(
            f"dataset must be 'shapes', 'cifar10', 'cifar100', 'folder:PATH' or a tensorflow-datasets name; "
            f"received {dataset!r}"
        ) from None
    split = "validation" if "validation" in splits or "test" not in splits else "test"
    return (
        data.tfds_source(dataset, split="train", data_dir=data_dir, shuffle_files=True, seed=seed),
        data.tfds_source(dataset, split=split, data_dir=data_dir),
    )


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
    **dataset_options,
):
    """Trains a model on a data set with the paper's recipe for it.

    The recipe is `keras_resnet.presets`' `"cifar10"` / `"cifar100"` for
    CIFAR, `"cifar10_resnet110"` for ResNet-110 on CIFAR, `"cifar10"` for
    other images of at most 64 pixels (shapes) and `"imagenet"` for larger.
    Its step schedule is stretched to `epochs` when given: the learning rate
    drops at the same fractions of the run as in the paper.

    With an `output_dir`, the run's files are written there: `best.keras`
    and `last.keras` checkpoints, `log.csv`, `curves.png` (training error
    dashed, validation error solid, against iterations) and, while training,
    `backup/`. Calling `train` again with the same arguments after an
    interrupt (even `SIGKILL`) resumes from the last finished epoch and ends
    with the same number of optimizer steps as an uninterrupted run; a call
    with other arguments is refused while a backup is there. A finished
    run's folder is trained afresh.

    Args:
        model: a name of `keras_resnet.MODELS` (built for the data set's
            image size and classes) or a built `keras.Model`.
        dataset: `"shapes"`, `"cifar10"`, `"cifar100"`, `"folder:PATH"`, a
            tensorflow-datasets name, or a `(train, validation)` pair of
            batched `tf.data.Dataset`s of `(images, labels)` with a
            `class_names` attribute (e.g. from `keras_resnet.data.folder`).
        epochs: epochs to train; defaults to the recipe's length (164 for
            CIFAR-10) and to `SHAPES_EPOCHS` for shapes.
        batch_size: images per batch; defaults to the recipe's (the
            learning rate scales linearly with it). Required with a pair of
            pipelines: the batch size they were built with.
        lr: base learning rate, overriding the recipe's.
        weight_decay: L2 weight decay, overriding the recipe's.
        recipe: a name of `keras_resnet.presets.RECIPES` to use instead.
        output_dir: folder of the run's files; `None` writes nothing.
        seed: integer seed of the weights (set as Keras' global seed), the
            data order and augmentation, and of the shapes images.
        strategy: how to replicate training, one of
            `keras_resnet.distribute.STRATEGIES`: `"auto"` (a
            `MultiWorkerMirroredStrategy` when `TF_CONFIG` names a cluster,
            `MirroredStrategy` with several GPUs, else one device),
            `"mirrored"`, `"multiworker"`, `"none"`. Only the chief writes
            `output_dir`, which every worker must mount. A built `model` must
            have been built in `keras_resnet.distribute.replicate(strategy).scope()`.
        per_replica_batch_size: images per replica and step, instead of
            `batch_size`: the global batch is this times the number of
            replicas (the learning rate scales with it).
        verbose: `model.fit` verbosity (`"auto"`, 0, 1, 2).
        **dataset_options: with a data set name, arguments of `datasets`:
            `image_size`, `augmentation`, `data_dir`, `train_size`,
            `validation_size`.

    Returns:
        A dict: `model` (trained), `val_accuracy` and `val_loss` (final,
        on the validation split), `steps` (optimizer iterations done),
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
    # Before any other TensorFlow work: TensorFlow creates MultiWorkerMirroredStrategy first.
    replication = distribute.replicate(strategy)
    if per_replica_batch_size is not None:
        if batch_size is not None:
            raise ValueError(
                "batch_size and per_replica_batch_size exclude each other; received "
                f"batch_size={batch_size!r}, per_replica_batch_size={per_replica_batch_size!r}"
            )
        batch_size = replication.global_batch_size(per_replica_batch_size)
    model_name = model.lower() if isinstance(model, str) else model.name
    named = isinstance(dataset, str)
    if named:
        _, image_size = _resolve(dataset, dataset_options.get("augmentation"), dataset_options.get("image_size"))
    elif dataset_options or batch_size is None:
        raise ValueError(
            "a (train, validation) pair of pipelines takes batch_size (the one they were built with) and no "
            f"options of `datasets`; received batch_size={batch_size!r}, options {sorted(dataset_options)}"
        )
    else:
        train_data, validation_data = dataset
        image_size = train_data.element_spec[0].shape[1]
    if recipe is None:
        recipe = dataset if named and dataset in _CIFAR else ("cifar10" if image_size <= 64 else "imagenet")
        recipe = f"{recipe}_{model_name}" if f"{recipe}_{model_name}" in presets.RECIPES else recipe
    overrides = {"batch_size": batch_size, "lr": lr, "weight_decay": weight_decay}
    chosen = presets.recipe_for(recipe, **{key: value for key, value in overrides.items() if value is not None})
    if epochs is None and dataset == "shapes":
        epochs = SHAPES_EPOCHS
    if epochs is not None and (not isinstance(epochs, int) or isinstance(epochs, bool) or epochs < 1):
        raise ValueError(f"epochs must be a positive integer; received {epochs!r}")

    keras.utils.set_random_seed(seed)
    if named:
        train_data, validation_data = datasets(dataset, batch_size=chosen.batch_size, seed=seed, **dataset_options)
    # Every worker runs the whole pipeline and keeps its share of each batch.
    train_data, validation_data = (distribute.shard_dataset(d, "data") for d in (train_data, validation_data))
    files = {}
    if output_dir is not None and replication.is_chief:
        config = {
            "model": model_name, "dataset": dataset if named else "pipelines", "epochs": epochs,
            "recipe": repr(chosen), "seed": seed, **{key: dataset_options[key] for key in sorted(dataset_options)},
        }
        files = _prepare_run(output_dir, config)
    steps_per_epoch = int(train_data.cardinality())
    if epochs is None:
        epochs = math.ceil(chosen.total_steps / steps_per_epoch)
    else:
        # Stretch the schedule to the requested length: same drop points, as fractions of the run.
        total = epochs * steps_per_epoch
        boundaries = tuple(sorted({max(1, round(b * total / chosen.total_steps)) for b in chosen.boundaries}))
        chosen = presets.recipe_for(chosen, total_steps=total, boundaries=boundaries)

    def build():
        built = model
        if isinstance(model, str):
            # keras_resnet.accelerate: the device's precision, before building (`strategy` did the replication).
            accelerate.acceleration(data_parallel=False).apply()
            built = get_model(model, input_shape=(image_size, image_size, 3), classes=len(train_data.class_names))
        presets.compile_for(built, chosen)
        return built

    model = distribute.with_strategy(build, replication)
    callbacks = distribute.cluster_callbacks(chosen, output_dir, strategy=replication)
    # The pipelines shuffle; `shuffle=False` only tells Keras not to warn that it cannot.
    history = model.fit(
        train_data, validation_data=validation_data, epochs=epochs, callbacks=callbacks, shuffle=False,
        verbose=verbose if replication.is_chief else 0,
    ).history
    scores = model.evaluate(validation_data, verbose=0, return_dict=True)
    if files:
        history = read_log(files["log"])
        plot_curves(files["log"], files["curves"], labels=[model_name], steps_per_epoch=steps_per_epoch)
    return {
        "model": model,
        "val_accuracy": float(scores["accuracy"]),
        "val_loss": float(scores["loss"]),
        "steps": int(model.optimizer.iterations.numpy()),
        "epochs": epochs,
        "steps_per_epoch": steps_per_epoch,
        "recipe": chosen,
        "history": history,
        "files": files,
    }


def _prepare_run(output_dir, config):
    """Checks that a backup in `output_dir` is of this run; starts a fresh log when there is none."""
    os.makedirs(output_dir, exist_ok=True)
    files = {name: os.path.join(output_dir, filename) for name, filename in _RUN_FILES.items()}
    config = json.loads(json.dumps(config))  # as JSON reads it back: tuples become lists
    if os.path.isdir(files["backup"]):
        previous = None
        if os.path.isfile(files["config"]):
            with open(files["config"]) as handle:
                previous = json.load(handle)
        if previous != config:
            raise ValueError(
                f"output_dir {output_dir!r} holds the backup of an unfinished run with other arguments "
                f"({previous}); received {config}. Re-run with the same arguments to resume it, or use "
                "another output_dir."
            )
    elif os.path.isfile(files["log"]):
        os.remove(files["log"])
    with open(files["config"], "w") as handle:
        json.dump(config, handle, indent=1)
    return files


def evaluate(model, dataset="shapes", *, method="center", batch_size=128, seed=0, **dataset_options):
    """Top-1 and top-5 accuracy and error of a model on a data set's validation split.

    Args:
        model: a `keras.Model` or the path of a `.keras` file (e.g. the
            `best.keras` of a `train` run).
        dataset: the data set, named as for `train`; pass the same
            `dataset_options` and `seed` as for training (the CIFAR
            augmentation's per-pixel mean comes from the training split).
        method: `"center"` scores the validation pipeline's images (CIFAR:
            the image itself; ImageNet: centre crop); `"ten_crop"` (10 crops
            averaged) and `"multi_scale"` (the paper's fully-convolutional
            testing at several scales) use `keras_resnet.evaluation` and need
            ImageNet augmentation.
        batch_size: images per batch.
        seed: the seed the model was trained with.
        **dataset_options: arguments of `datasets`.

    Returns:
        A dict with `top1_accuracy`, `top5_accuracy`, `top1_error`,
        `top5_error` (floats in [0, 1]) and `count` (images scored).

    Example:

    >>> evaluate("runs/resnet20-shapes/best.keras", "shapes")  # doctest: +SKIP
    {'top1_accuracy': 0.98, 'top5_accuracy': 1.0, ...}
    """
    _check_choice("method", method, METHODS)
    if isinstance(model, (str, os.PathLike)):
        if not os.path.isfile(model):
            raise ValueError(f"model must be a keras.Model or an existing .keras file; received {os.fspath(model)!r}")
        model = keras.saving.load_model(model)
    augmentation, image_size = _resolve(dataset, dataset_options.get("augmentation"), dataset_options.get("image_size"))
    if method == "center":
        _, validation = datasets(dataset, batch_size=batch_size, seed=seed, **dataset_options)
        batches = [(model.predict_on_batch(x), y) for x, y in validation.as_numpy_iterator()]
        scores = np.concatenate([s for s, _ in batches])
        labels = np.concatenate([y for _, y in batches])
    else:
        if augmentation != "imagenet":
            raise ValueError(
                f"method {method!r} needs augmentation='imagenet' (full-size images); received "
                f"augmentation={augmentation!r}. Use method='center'."
            )
        options = {key: dataset_options.get(key) for key in ("data_dir", "train_size", "validation_size")}
        _, source = _sources(dataset, image_size=image_size, seed=seed, **options)
        result = evaluation.evaluate(
            model, source.images(), method=method, crop_size=image_size,
            resize_size=round(_IMAGENET_SCALES[0] * image_size / 224),
            preprocess=data.normalizer(data.IMAGENET_MEAN),
        )
        scores, labels = result["scores"], result["labels"]
    top1, top5 = (evaluation.top_k_error(scores, labels, k=k) for k in (1, 5))
    return {
        "top1_accuracy": 1 - top1,
        "top5_accuracy": 1 - top5,
        "top1_error": top1,
        "top5_error": top5,
        "count": len(labels),
    }
