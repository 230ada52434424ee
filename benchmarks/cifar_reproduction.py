"""ResNet-20 on the original CIFAR-10: the library's training path against an independent plain-Keras reference.

Both runs train the paper's CIFAR ResNet-20 (section 4.2) with the same recipe, one after the other in one
process, on the paper's 45k/5k protocol of the CIFAR-10 python batches (`--data`, by default
../shared/data/cifar-10-batches-py: the files of the official archive): per class, the last 500 images of the
training batches in file order validate (never trained on) and the other 4500 train; the test batch is never
evaluated. `--limit N` keeps the first N training and the first N validation images of each class of that
split (smoke runs), the same images on both sides.

- library: the named data set `keras_resnet.data.dataset_sources("cifar10", data_dir=...)` (its hold-out split;
  `take_per_class` for `--limit`) + `image_statistics` + `cifar_pipeline`, `keras_resnet.ResNet20`,
  `keras_resnet.recipes.compile_for(model, "cifar10", ...)` and `model.fit`.
- reference: written below with numpy, plain Keras and tf.data only (nothing of keras_resnet): reads the batch
  files itself (`pickle`, rows of 3x32x32 planes to 32x32x3 images) and holds out the last 500 of each class
  with its own few lines; ResNet-20 with option A shortcuts (strided identity, zero-padded channels), He-normal
  kernels, BN (epsilon 1e-5, momentum 0.9), symmetric padding before strided 3x3 convolutions; the coupled L2
  as Keras kernel regularizers (`L2(l2 / 2)` adds `l2 * kernel` to the gradient, as `kr.L2SGD` does); SGD
  momentum 0.9; `PiecewiseConstantDecay`.

Same for both: the images and split, the augmentation (4 zero pixels of padding, random 32x32 crop,
horizontal flip), the normalisation (subtract the training set's per-pixel mean, divide by 255), the batch size,
the learning rate (0.1 at batch 128, scaled linearly with the batch) divided by 10 at 1/2 and 3/4 of the run,
compressed to `--epochs` epochs, and L2 1e-4 on every kernel.

Per epoch and run it appends one JSON line to `OUTPUT/epochs.jsonl` (validation and training accuracy and loss,
learning rate, wall time, load average), so a killed run keeps its finished epochs; at the end (or with
`--report`, from whatever the file holds) it writes `OUTPUT/results.md`, a self-contained markdown section for
benchmarks/RESULTS.md. The reference's `loss` includes its L2 penalty; its `cross_entropy` column is the loss
without it, comparable with the library's `loss` (whose L2 lives in the optimizer).

Usage:
    python benchmarks/cifar_reproduction.py --epochs 10 --output /tmp/cifar10-e10
    python benchmarks/cifar_reproduction.py --epochs 1 --limit 50 --output /tmp/smoke   # a quick smoke run
    python benchmarks/cifar_reproduction.py --report --output /tmp/cifar10-e10           # table from the file
"""

import argparse
import datetime
import json
import math
import os
import pickle
import platform
import sys
import time
from pathlib import Path

import numpy as np

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "cifar-10-batches-py"
BATCH_FILES = ("batches.meta", *(f"data_batch_{index}" for index in range(1, 6)), "test_batch")
TRAIN_PER_CLASS = 4500
VALIDATION_PER_CLASS = 500
BASE_LR, BASE_BATCH, MOMENTUM, L2 = 0.1, 128, 0.9, 1e-4
WHICH = ("library", "reference")
RECORDS = "epochs.jsonl"
REPORT = "results.md"


def split_sizes(limit=None, validation_limit=None):
    """Images per class of the split a run uses: the first `limit` (and `validation_limit`, which defaults to
    `limit`) of the 4500 training and the 500 validation images of each class; `None` keeps all."""
    validation_limit = limit if validation_limit is None else validation_limit
    train = min(limit or TRAIN_PER_CLASS, TRAIN_PER_CLASS)
    validation = min(validation_limit or VALIDATION_PER_CLASS, VALIDATION_PER_CLASS)
    return train, validation


def check_data(parser, folder):
    """Stops `parser` with an error unless `folder` holds the CIFAR-10 python batch files."""
    if not Path(folder).is_dir():
        parser.error(f"--data must be the folder of the CIFAR-10 python batches; {str(folder)!r} is not a folder")
    missing = [name for name in BATCH_FILES if not (Path(folder) / name).is_file()]
    if missing:
        parser.error(
            f"--data must be the folder of the CIFAR-10 python batches ({', '.join(BATCH_FILES)}, as in the "
            f"official archive's cifar-10-batches-py); {str(folder)!r} lacks {', '.join(missing)}"
        )


def data_details(folder, sizes):
    """What a run reads, for its start record: the batch folder and the images per class of the split."""
    return {"data": str(folder), "train_per_class": sizes[0], "validation_per_class": sizes[1]}


def data_words(start):
    """Which images a run used, in words, from its start record."""
    train, validation = start["train_images"], start["validation_images"]
    if "train_per_class" not in start:  # records of the scripts before they read the batches: the JPEG folder
        return (
            f"{train} training / {validation} validation images of the CIFAR-10 JPEGs (per class files "
            f"0000-{train // 10 - 1:04d} train, 4500-{4499 + validation // 10} validate)"
        )
    return (
        f"{train} training / {validation} validation images of the CIFAR-10 python batches in {start['data']}: "
        f"per class, the first {start['train_per_class']} of the {TRAIN_PER_CLASS} training images and the first "
        f"{start['validation_per_class']} of the {VALIDATION_PER_CLASS} held-out ones (the last of each class in "
        "file order, never trained on)"
    )


def step_schedule(epochs, steps_per_epoch):
    """The paper's schedule compressed to `epochs`: total iterations and the drops at 1/2 and 3/4 of them.

    Drops that fall on the same iteration (runs of a few steps) merge into one.
    """
    total = epochs * steps_per_epoch
    return total, tuple(sorted({max(1, round(total / 2)), max(1, round(3 * total / 4))}))


def machine():
    """CPU model and core count of this machine, in words."""
    model = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as handle:
            model = next(line.split(":", 1)[1].strip() for line in handle if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return f"{model}, {os.cpu_count()} cores"


def versions():
    import keras
    import tensorflow as tf

    return f"Python {platform.python_version()}, TensorFlow {tf.__version__}, Keras {keras.__version__}"


def append_record(path, record):
    """Appends one JSON line and makes it durable, so that a killed run keeps it."""
    with open(path, "a") as handle:
        handle.write(json.dumps(record) + "\n")
        handle.flush()
        os.fsync(handle.fileno())


def now():
    return datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")


def epoch_recorder(path, run):
    """A Keras callback appending each epoch's logs, learning rate, wall time and load average to `path`."""
    import keras

    class EpochRecorder(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            self.started = time.perf_counter()
            self.lr = float(keras.ops.convert_to_numpy(self.model.optimizer.learning_rate))

        def on_epoch_end(self, epoch, logs=None):
            record = {
                "event": "epoch",
                "run": run,
                "epoch": epoch + 1,
                "time": now(),
                "seconds": round(time.perf_counter() - self.started, 2),
                "loadavg": [round(load, 2) for load in os.getloadavg()],
                "lr": self.lr,
            }
            record.update({key: float(value) for key, value in (logs or {}).items() if key != "learning_rate"})
            append_record(path, record)

    return EpochRecorder()


# --- the library's path -----------------------------------------------------------------------------------------


def library_sources(folder, sizes):
    """The library's named `cifar10` data set read from the batch files in `folder`: the first `sizes[0]` training
    and `sizes[1]` validation images of each class of its hold-out split, as `(train, validation)` sources."""
    import keras_resnet as kr

    sources = kr.data.dataset_sources("cifar10", data_dir=folder)
    return kr.data.take_per_class(sources.train, sizes[0]), kr.data.take_per_class(sources.validation, sizes[1])


def library_run(folder, sizes, epochs, batch_size, seed, model_name="ResNet20", warmup_epochs=0):
    """Builds `keras_resnet.<model_name>`, compiled with the compressed "cifar10" recipe, and the library's pipelines.

    The images are `library_sources(folder, sizes)`. `warmup_epochs` > 0 adds the recipe's linear warm-up from 0
    over that many epochs of steps.

    Returns:
        `(model, train, validation, train_size, validation_size)`, ready for `model.fit`.
    """
    import keras

    import keras_resnet as kr

    keras.utils.set_random_seed(seed)
    train_source, validation_source = library_sources(folder, sizes)
    statistics = kr.data.image_statistics(train_source)
    train = kr.data.cifar_pipeline(train_source, training=True, batch_size=batch_size, statistics=statistics, seed=seed)
    validation = kr.data.cifar_pipeline(validation_source, training=False, batch_size=batch_size, statistics=statistics)
    steps_per_epoch = math.ceil(len(train_source) / batch_size)
    total_steps, boundaries = step_schedule(epochs, steps_per_epoch)
    model = getattr(kr, model_name)(input_shape=(32, 32, 3), classes=len(train_source.class_names))
    kr.recipes.compile_for(
        model,
        "cifar10",
        batch_size=batch_size,
        total_steps=total_steps,
        boundaries=boundaries,
        warmup_steps=warmup_epochs * steps_per_epoch,
    )
    return model, train, validation, len(train_source), len(validation_source)


# --- the independent reference: plain Keras and tf.data, nothing of keras_resnet ---------------------------------


def reference_split(folder, train_per_class=TRAIN_PER_CLASS, validation_per_class=VALIDATION_PER_CLASS):
    """The 45k/5k hold-out split of the CIFAR-10 training batches in `folder`, read with pickle and numpy.

    Per class in file order (data_batch_1 to data_batch_5), the last 500 images validate and the others train;
    of those, the first `train_per_class` training and `validation_per_class` validation images of each class
    are kept. The files are unpickled as they are: read only the official archive's files, or copies you trust.

    Returns:
        `((train_images, train_labels), (validation_images, validation_labels), class_names)`: uint8 images of
        shape `(count, 32, 32, 3)` and int32 labels in file order, class names from `batches.meta`.
    """

    def load(name):
        with open(Path(folder) / name, "rb") as handle:
            return pickle.load(handle, encoding="bytes")

    batches = [load(f"data_batch_{index}") for index in range(1, 6)]
    images = np.concatenate([batch[b"data"] for batch in batches]).reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)
    labels = np.concatenate([batch[b"labels"] for batch in batches]).astype(np.int32)
    train, validation = np.zeros(len(labels), bool), np.zeros(len(labels), bool)
    for label in np.unique(labels):
        positions = np.flatnonzero(labels == label)
        train[positions[:-VALIDATION_PER_CLASS][:train_per_class]] = True
        validation[positions[-VALIDATION_PER_CLASS:][:validation_per_class]] = True
    class_names = [name.decode() for name in load("batches.meta")[b"label_names"]]
    return (images[train], labels[train]), (images[validation], labels[validation]), class_names


def reference_pixel_mean(images):
    """Mean image of `images` (float32, 0-255 scale), summed in float64."""
    return images.mean(axis=0, dtype=np.float64).astype(np.float32)


def reference_dataset(images, labels, pixel_mean, *, training, batch_size, seed):
    """(Pad 4, random crop 32, random flip when training), batch, `(x - mean) / 255`."""
    import tensorflow as tf

    def load(image, label):
        if training:
            image = tf.pad(image, [[4, 4], [4, 4], [0, 0]])
            image = tf.image.random_crop(image, [32, 32, 3])
            image = tf.image.random_flip_left_right(image)
        return tf.cast(image, tf.float32), label

    def normalize(images, labels):
        return (images - pixel_mean) / 255.0, labels

    dataset = tf.data.Dataset.from_tensor_slices((images, labels))
    if training:
        dataset = dataset.shuffle(len(images), seed=seed, reshuffle_each_iteration=True)
    dataset = dataset.map(load, num_parallel_calls=tf.data.AUTOTUNE).batch(batch_size).map(normalize)
    return dataset.prefetch(tf.data.AUTOTUNE)


def reference_resnet20(classes=10, l2=L2):
    """The paper's CIFAR ResNet-20 (3 stages of 3 basic blocks, 16/32/64 filters, option A), plain Keras."""
    import keras

    # L2(c) adds c * sum(w ** 2) to the loss, so 2 * c * w to the gradient: the coupled decay l2 * w.
    regularizer = keras.regularizers.L2(l2 / 2)

    def conv(x, filters, strides):
        padding = "same"
        if strides > 1:  # symmetric padding, as in the paper's Torch/Caffe models (TF's "same" pads bottom-right)
            x = keras.layers.ZeroPadding2D(1)(x)
            padding = "valid"
        return keras.layers.Conv2D(
            filters,
            3,
            strides=strides,
            padding=padding,
            use_bias=False,
            kernel_initializer="he_normal",
            kernel_regularizer=regularizer,
        )(x)

    def bn(x):
        return keras.layers.BatchNormalization(epsilon=1e-5, momentum=0.9)(x)

    inputs = keras.Input((32, 32, 3))
    x = keras.layers.ReLU()(bn(conv(inputs, 16, 1)))
    for stage, filters in enumerate((16, 32, 64)):
        for block in range(3):
            strides = 2 if stage > 0 and block == 0 else 1
            branch = keras.layers.ReLU()(bn(conv(x, filters, strides)))
            branch = bn(conv(branch, filters, 1))
            shortcut = x
            if strides > 1 or x.shape[-1] != filters:  # option A: subsample, pad the new channels with zeros
                shortcut = keras.ops.pad(
                    x[:, ::strides, ::strides, :], [[0, 0], [0, 0], [0, 0], [0, filters - x.shape[-1]]]
                )
            x = keras.layers.ReLU()(keras.layers.Add()([shortcut, branch]))
    x = keras.layers.GlobalAveragePooling2D()(x)
    outputs = keras.layers.Dense(classes, activation="softmax", kernel_regularizer=regularizer)(x)
    return keras.Model(inputs, outputs, name="reference_resnet20")


def reference_schedule(batch_size, boundaries):
    """0.1 at batch 128, scaled linearly with the batch, divided by 10 from each of the `boundaries` iterations."""
    import keras

    lr = BASE_LR * batch_size / BASE_BATCH
    # PiecewiseConstantDecay keeps values[i] while step <= boundaries[i]: a drop at iteration b is b - 1 here.
    return keras.optimizers.schedules.PiecewiseConstantDecay(
        [b - 1 for b in boundaries], [lr * 0.1**drops for drops in range(len(boundaries) + 1)]
    )


def reference_run(folder, sizes, epochs, batch_size, seed):
    """Builds `reference_resnet20`, compiled with the same recipe, and its tf.data pipelines on the same images."""
    import keras

    keras.utils.set_random_seed(seed)
    (train_images, train_labels), (validation_images, validation_labels), classes = reference_split(folder, *sizes)
    pixel_mean = reference_pixel_mean(train_images)
    train = reference_dataset(train_images, train_labels, pixel_mean, training=True, batch_size=batch_size, seed=seed)
    validation = reference_dataset(
        validation_images, validation_labels, pixel_mean, training=False, batch_size=batch_size, seed=seed
    )
    _, boundaries = step_schedule(epochs, math.ceil(len(train_images) / batch_size))
    model = reference_resnet20(len(classes))
    model.compile(
        optimizer=keras.optimizers.SGD(reference_schedule(batch_size, boundaries), momentum=MOMENTUM),
        loss=keras.losses.SparseCategoricalCrossentropy(),
        metrics=["accuracy", keras.metrics.SparseCategoricalCrossentropy(name="cross_entropy")],
    )
    return model, train, validation, len(train_images), len(validation_images)


def train_one(run, build, records, command):
    """Builds with `build()` and trains one run, appending a start line, one line per epoch and an end line.

    Args:
        run: the run's name in the records.
        build: function returning `(model, train, validation, train_size, validation_size, epochs, details)`;
            `details` is a dict recorded in the start line.
        records: path of the JSON lines file.
        command: the command line, recorded in the start line.
    """
    started = time.perf_counter()
    model, train, validation, train_size, validation_size, epochs, details = build()
    append_record(
        records,
        {
            "event": "start",
            "run": run,
            "time": now(),
            "command": command,
            "machine": machine(),
            "versions": versions(),
            "epochs": epochs,
            **details,
            "train_images": train_size,
            "validation_images": validation_size,
            "params": model.count_params(),
            "loadavg": [round(load, 2) for load in os.getloadavg()],
            "setup_seconds": round(time.perf_counter() - started, 2),
        },
    )
    model.fit(train, validation_data=validation, epochs=epochs, verbose=2, callbacks=[epoch_recorder(records, run)])
    append_record(
        records,
        {
            "event": "end",
            "run": run,
            "time": now(),
            "seconds": round(time.perf_counter() - started, 1),
            "loadavg": [round(load, 2) for load in os.getloadavg()],
        },
    )


# --- the report ---------------------------------------------------------------------------------------------------


def read_runs(records):
    """The latest start, epochs and end of each side in the JSON lines file (earlier runs are overwritten)."""
    runs = {}
    with open(records) as handle:
        for line in handle:
            if not line.strip():
                continue
            record = json.loads(line)
            if record["event"] == "start":
                runs[record["run"]] = {"start": record, "epochs": {}, "end": None}
            elif record["run"] in runs:
                if record["event"] == "epoch":
                    runs[record["run"]]["epochs"][record["epoch"]] = record
                else:
                    runs[record["run"]]["end"] = record
    return runs


def _percent(value):
    return "" if value is None else f"{100 * value:.2f}"


def report(records):
    """A markdown section of both runs in `records`: setup, per-epoch table, final and best figures."""
    runs = read_runs(records)
    if not runs:
        raise ValueError(f"records must hold at least one started run; received an empty file {records!r}")
    first = next(iter(runs.values()))["start"]
    lines = [
        f"### ResNet-20, {first['epochs']} epochs: library vs independent reference ({first['time'][:10]})",
        "",
        f"{first['machine']}; {first['versions']}. Command: `{first['command']}`.",
        (
            f"{data_words(first)}; batch {first['batch_size']}, "
            f"seed {first['seed']}, lr 0.1 x batch/128, /10 at 1/2 and 3/4 of the run, momentum 0.9, "
            "coupled L2 1e-4 on kernels."
        ),
    ]
    for which, run in runs.items():
        start, end = run["start"], run["end"]
        status = (
            f"finished in {end['seconds'] / 60:.1f} min, load average at end {end['loadavg']}"
            if end
            else f"unfinished: {len(run['epochs'])} of {start['epochs']} epochs recorded"
        )
        lines.append(
            f"- {which}: started {start['time']}, {start['params']:,} parameters, load average at start "
            f"{start['loadavg']}; {status}."
        )
    lines += [
        "",
        (
            "Validation accuracy (%) per epoch; train loss is the cross-entropy without the L2 term, train "
            "accuracy the running mean over the augmented epoch; lr: at the epoch's start; s: wall seconds "
            "of the epoch (validation included); load: 1-minute load average at the epoch's end."
        ),
        "",
        (
            "| epoch | lr | library val | reference val | difference (pp) | library train loss / acc | "
            "reference train loss / acc | library s | reference s | load (lib / ref) |"
        ),
        "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    library = runs.get("library", {"epochs": {}})["epochs"]
    reference = runs.get("reference", {"epochs": {}})["epochs"]
    for epoch in sorted(set(library) | set(reference)):
        lib, ref = library.get(epoch, {}), reference.get(epoch, {})
        difference = f"{100 * (lib['val_accuracy'] - ref['val_accuracy']):+.2f}" if lib and ref else ""
        lines.append(
            f"| {epoch} | {(lib or ref)['lr']:.4g} | {_percent(lib.get('val_accuracy'))} | "
            f"{_percent(ref.get('val_accuracy'))} | {difference} | "
            f"{_train(lib, 'loss')} | {_train(ref, 'cross_entropy')} | {lib.get('seconds', '')} | "
            f"{ref.get('seconds', '')} | {_load(lib)} / {_load(ref)} |"
        )
    lines += ["", *_summary(library, reference)]
    return "\n".join(lines) + "\n"


def _train(record, loss_key):
    return f"{record[loss_key]:.3f} / {100 * record['accuracy']:.2f}" if record else ""


def _load(record):
    return f"{record['loadavg'][0]:.1f}" if record else "-"


def _summary(library, reference):
    lines = []
    for which, epochs in (("library", library), ("reference", reference)):
        if epochs:
            last = epochs[max(epochs)]
            best = max(epochs.values(), key=lambda record: record["val_accuracy"])
            lines.append(
                f"- {which}: final validation accuracy {_percent(last['val_accuracy'])}% "
                f"(epoch {last['epoch']}), best {_percent(best['val_accuracy'])}% (epoch {best['epoch']}), "
                f"{sum(record['seconds'] for record in epochs.values()) / 60:.1f} min of epochs."
            )
    common = sorted(set(library) & set(reference))
    if common:
        epoch = common[-1]
        difference = 100 * (library[epoch]["val_accuracy"] - reference[epoch]["val_accuracy"])
        lines.append(f"- library minus reference at epoch {epoch}: {difference:+.2f} pp of validation accuracy.")
    return lines


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--epochs", type=int, default=10, help="epochs of each run (the schedule is compressed)")
    parser.add_argument("--output", required=True, help="folder of epochs.jsonl and results.md")
    parser.add_argument("--batch-size", type=int, default=BASE_BATCH)
    parser.add_argument(
        "--limit", type=int, default=None, help="the first N training and validation images per class (smoke runs)"
    )
    parser.add_argument("--which", choices=("library", "reference", "both"), default="both")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--data", default=str(DATA), help="the folder of the CIFAR-10 python batch files")
    parser.add_argument("--report", action="store_true", help="only write results.md from epochs.jsonl")
    args = parser.parse_args(argv)
    for name in ("epochs", "batch_size", "limit"):
        value = getattr(args, name)
        if value is not None and value < 1:
            parser.error(f"--{name.replace('_', '-')} must be a positive integer; received {value}")
    output = Path(args.output)
    output.mkdir(parents=True, exist_ok=True)
    records = output / RECORDS
    if not args.report:
        check_data(parser, args.data)
        command = "python benchmarks/cifar_reproduction.py " + " ".join(sys.argv[1:] if argv is None else argv)
        sizes = split_sizes(args.limit)
        details = {"batch_size": args.batch_size, "seed": args.seed, **data_details(args.data, sizes)}
        for which in WHICH if args.which == "both" else (args.which,):
            run = library_run if which == "library" else reference_run

            def build(run=run):
                return (*run(args.data, sizes, args.epochs, args.batch_size, args.seed), args.epochs, details)

            train_one(which, build, records, command)
    text = report(records)
    (output / REPORT).write_text(text)
    print(text)
    return text


if __name__ == "__main__":
    main()
