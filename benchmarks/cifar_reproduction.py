"""ResNet-20 on the real CIFAR-10 JPEGs: the library's training path against an independent plain-Keras reference.

Both runs train the paper's CIFAR ResNet-20 (section 4.2) with the same recipe, one after the other in one
process, on the 45k/5k protocol of ../shared/data/cifar10-jpeg/train: per class, images 0000-4499 train and
4500-4999 validate (never trained on).

- library: `keras_resnet.data.folder_source` + `image_statistics` + `cifar_pipeline`, `keras_resnet.ResNet20`,
  `keras_resnet.presets.compile_for(model, "cifar10", ...)` and `model.fit`.
- reference: written below with plain Keras and tf.data only (nothing of keras_resnet): ResNet-20 with option A
  shortcuts (strided identity, zero-padded channels), He-normal kernels, BN (epsilon 1e-5, momentum 0.9),
  symmetric padding before strided 3x3 convolutions; the coupled L2 as Keras kernel regularizers (`L2(l2 / 2)`
  adds `l2 * kernel` to the gradient, as `kr.L2SGD` does); SGD momentum 0.9; `PiecewiseConstantDecay`.

Same for both: the image files and split, the augmentation (4 zero pixels of padding, random 32x32 crop,
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
import platform
import sys
import time
from pathlib import Path

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "cifar10-jpeg" / "train"
TRAIN_PER_CLASS = 4500
VALIDATION_PER_CLASS = 500
BASE_LR, BASE_BATCH, MOMENTUM, L2 = 0.1, 128, 0.9, 1e-4
WHICH = ("library", "reference")
RECORDS = "epochs.jsonl"
REPORT = "results.md"


def split_indices(limit=None, validation_limit=None):
    """Positions of the training and validation files in each class folder: the first `limit` (and
    `validation_limit`, which defaults to `limit`) of the 4500 training and the 500 validation images."""
    validation_limit = limit if validation_limit is None else validation_limit
    train = min(limit or TRAIN_PER_CLASS, TRAIN_PER_CLASS)
    validation = min(validation_limit or VALIDATION_PER_CLASS, VALIDATION_PER_CLASS)
    return range(train), range(TRAIN_PER_CLASS, TRAIN_PER_CLASS + validation)


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


def library_run(root, indices, epochs, batch_size, seed, model_name="ResNet20", warmup_epochs=0):
    """Builds `keras_resnet.<model_name>`, compiled with the compressed "cifar10" recipe, and the library's pipelines.

    `warmup_epochs` > 0 adds the recipe's linear warm-up from 0 over that many epochs of steps.

    Returns:
        `(model, train, validation, train_size, validation_size)`, ready for `model.fit`.
    """
    import keras

    import keras_resnet as kr

    keras.utils.set_random_seed(seed)
    train_indices, validation_indices = indices
    train_source = kr.data.folder_source(root, indices=train_indices)
    validation_source = kr.data.folder_source(root, indices=validation_indices)
    statistics = kr.data.image_statistics(train_source)
    train = kr.data.cifar_pipeline(train_source, training=True, batch_size=batch_size, statistics=statistics, seed=seed)
    validation = kr.data.cifar_pipeline(validation_source, training=False, batch_size=batch_size, statistics=statistics)
    steps_per_epoch = math.ceil(len(train_source) / batch_size)
    total_steps, boundaries = step_schedule(epochs, steps_per_epoch)
    model = getattr(kr, model_name)(input_shape=(32, 32, 3), classes=len(train_source.class_names))
    kr.presets.compile_for(
        model,
        "cifar10",
        batch_size=batch_size,
        total_steps=total_steps,
        boundaries=boundaries,
        warmup_steps=warmup_epochs * steps_per_epoch,
    )
    return model, train, validation, len(train_source), len(validation_source)


# --- the independent reference: plain Keras and tf.data, nothing of keras_resnet ---------------------------------


def reference_files(root, indices):
    """Paths and labels of the files at `indices` of each sorted class folder; labels follow the sorted names."""
    classes = sorted(entry.name for entry in Path(root).iterdir() if entry.is_dir() and not entry.name.startswith("."))
    paths, labels = [], []
    for label, name in enumerate(classes):
        files = sorted(str(path) for path in (Path(root) / name).iterdir() if not path.name.startswith("."))
        chosen = [files[index] for index in indices if index < len(files)]
        paths += chosen
        labels += [label] * len(chosen)
    return paths, labels, classes


def reference_decode(path):
    import tensorflow as tf

    return tf.io.decode_jpeg(tf.io.read_file(path), channels=3)


def reference_pixel_mean(paths):
    """Mean image of the files (float32, 0-255 scale), in float64 sums."""
    import numpy as np
    import tensorflow as tf

    images = tf.data.Dataset.from_tensor_slices(paths).map(reference_decode, num_parallel_calls=tf.data.AUTOTUNE)
    total = np.zeros((32, 32, 3), np.float64)
    for batch in images.batch(1000).as_numpy_iterator():
        total += batch.astype(np.float64).sum(axis=0)
    return (total / len(paths)).astype(np.float32)


def reference_dataset(paths, labels, pixel_mean, *, training, batch_size, seed):
    """Decode, (pad 4, random crop 32, random flip when training), batch, `(x - mean) / 255`."""
    import tensorflow as tf

    def load(path, label):
        image = reference_decode(path)
        if training:
            image = tf.pad(image, [[4, 4], [4, 4], [0, 0]])
            image = tf.image.random_crop(image, [32, 32, 3])
            image = tf.image.random_flip_left_right(image)
        return tf.cast(image, tf.float32), label

    def normalize(images, labels):
        return (images - pixel_mean) / 255.0, labels

    dataset = tf.data.Dataset.from_tensor_slices((paths, tf.constant(labels, tf.int32)))
    if training:
        dataset = dataset.shuffle(len(paths), seed=seed, reshuffle_each_iteration=True)
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


def reference_run(root, indices, epochs, batch_size, seed):
    """Builds `reference_resnet20`, compiled with the same recipe, and its tf.data pipelines on the same files."""
    import keras

    keras.utils.set_random_seed(seed)
    train_indices, validation_indices = indices
    train_paths, train_labels, classes = reference_files(root, train_indices)
    validation_paths, validation_labels, _ = reference_files(root, validation_indices)
    pixel_mean = reference_pixel_mean(train_paths)
    train = reference_dataset(train_paths, train_labels, pixel_mean, training=True, batch_size=batch_size, seed=seed)
    validation = reference_dataset(
        validation_paths, validation_labels, pixel_mean, training=False, batch_size=batch_size, seed=seed
    )
    _, boundaries = step_schedule(epochs, math.ceil(len(train_paths) / batch_size))
    model = reference_resnet20(len(classes))
    model.compile(
        optimizer=keras.optimizers.SGD(reference_schedule(batch_size, boundaries), momentum=MOMENTUM),
        loss=keras.losses.SparseCategoricalCrossentropy(),
        metrics=["accuracy", keras.metrics.SparseCategoricalCrossentropy(name="cross_entropy")],
    )
    return model, train, validation, len(train_paths), len(validation_paths)


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
            f"{first['train_images']} training / {first['validation_images']} validation images "
            f"(per class 0000-{first['train_images'] // 10 - 1:04d} train, "
            f"4500-{4499 + first['validation_images'] // 10} validation), batch {first['batch_size']}, "
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
    parser.add_argument("--limit", type=int, default=None, help="images per class (smoke runs), at most 4500/500")
    parser.add_argument("--which", choices=("library", "reference", "both"), default="both")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--data", default=str(DATA), help="the CIFAR-10 JPEG training folder")
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
        if not Path(args.data).is_dir():
            parser.error(f"--data must be the CIFAR-10 JPEG folder; {args.data!r} is not a folder")
        command = "python benchmarks/cifar_reproduction.py " + " ".join(sys.argv[1:] if argv is None else argv)
        indices = split_indices(args.limit)
        details = {"batch_size": args.batch_size, "seed": args.seed}
        for which in WHICH if args.which == "both" else (args.which,):
            run = library_run if which == "library" else reference_run

            def build(run=run):
                return (*run(args.data, indices, args.epochs, args.batch_size, args.seed), args.epochs, details)

            train_one(which, build, records, command)
    text = report(records)
    (output / REPORT).write_text(text)
    print(text)
    return text


if __name__ == "__main__":
    main()
