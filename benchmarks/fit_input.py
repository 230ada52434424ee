"""Does the input keep up on a CPU? `fit` on the library's input paths vs `fit` on tensors already in memory.

Three ResNet-20s train one epoch each per round, in turn (interleaved rounds, medians), on the same real
CIFAR-10 JPEGs (the first `--per-class` of each class of ../shared/data/cifar10-jpeg/train):

- `in-memory tensors`: float32 images decoded, normalised and held in memory before timing, no
  augmentation: the upper bound, where the input costs nothing;
- `library, on-device augmentation`: uint8 images decoded once into memory, padded, cropped, flipped
  and normalised by `keras_resnet.data.augment.Augmentation` inside the train step (the GPU fast path);
- `library, tf.data pipeline`: `keras_resnet.data.folder` (`cifar_pipeline`): the JPEGs read, decoded,
  augmented and prefetched on the CPU in every epoch.

    nice -n 19 python benchmarks/fit_input.py --rounds 5 --per-class 256

Prints a Markdown table and the ratio of each path's median images/s to the in-memory one.
"""

import argparse
import os
import statistics
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras
import numpy as np

import keras_resnet
from keras_resnet import accelerate, data, recipes
from keras_resnet.data import augment

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CIFAR = os.path.join(ROOT, "..", "shared", "data", "cifar10-jpeg", "train")


def _model(batch_size, augmentation=None):
    network = keras_resnet.ResNet20(input_shape=(32, 32, 3), classes=10)
    model = network
    if augmentation is not None:
        inputs = keras.Input((32, 32, 3), dtype="uint8")
        model = keras.Model(inputs, network(augmentation(inputs)))
    recipes.compile_for(model, recipes.recipe_for("cifar10", batch_size=batch_size), from_logits=False)
    return model


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--per-class", type=int, default=256, help="training images per class")
    parser.add_argument("--batch-size", type=int, default=128)
    args = parser.parse_args(argv)
    if not os.path.isdir(CIFAR):
        print(f"needs the CIFAR-10 JPEGs at {CIFAR}")
        return 1
    print(
        f"load average {os.getloadavg()}, {os.cpu_count()} cores, keras {keras.__version__} "
        f"({keras.backend.backend()}), {accelerate.acceleration().describe()}"
    )
    keras.utils.set_random_seed(0)
    pipeline = data.folder(
        CIFAR,
        train_indices=range(args.per_class),
        validation_indices=range(4500, 4501),
        batch_size=args.batch_size,
        seed=0,
    ).train
    source = data.folder_source(CIFAR, indices=range(args.per_class))
    images, labels = (np.stack(column) for column in zip(*source.images().as_numpy_iterator()))
    pixel_mean = images.mean(axis=0)
    tensors = ((images - pixel_mean) / 255).astype("float32")
    layer = augment.Augmentation("cifar", image_size=32, mean=pixel_mean, std=255.0, seed=0)
    paths = {
        "in-memory tensors": (_model(args.batch_size), (tensors, labels)),
        "library, on-device augmentation": (_model(args.batch_size, layer), (images, labels)),
        "library, tf.data pipeline": (_model(args.batch_size), (pipeline, None)),
    }

    def epoch(model, x, y):
        """Wall and CPU seconds (all threads of the process, tf.data's included) of one epoch."""
        start, cpu = time.perf_counter(), time.process_time()
        if y is None:
            model.fit(x, epochs=1, verbose=0, shuffle=False)  # the pipeline shuffles itself
        else:
            model.fit(x, y, batch_size=args.batch_size, epochs=1, verbose=0, shuffle=True)
        return time.perf_counter() - start, time.process_time() - cpu

    for model, (x, y) in paths.values():  # warm-up: builds the step functions
        epoch(model, x, y)
    seconds, cpu_seconds = {name: [] for name in paths}, {name: [] for name in paths}
    for number in range(args.rounds):
        for name, (model, (x, y)) in paths.items():
            wall, cpu = epoch(model, x, y)
            seconds[name].append(wall)
            cpu_seconds[name].append(cpu)
        print(f"round {number + 1}: " + ", ".join(f"{name} {seconds[name][-1]:.2f} s" for name in paths), flush=True)
    count = len(labels)
    medians = {name: count / statistics.median(values) for name, values in seconds.items()}
    base = medians["in-memory tensors"]
    print(f"\n{count} images per epoch, batch {args.batch_size}, {args.rounds} rounds; load average {os.getloadavg()}")
    print("| input | median images/s | min-max images/s | vs in-memory tensors | median CPU ms per image |")
    print("| --- | ---: | ---: | ---: | ---: |")
    for name, values in seconds.items():
        rates = [count / s for s in values]
        cpu = 1000 * statistics.median(cpu_seconds[name]) / count
        print(
            f"| {name} | {medians[name]:,.0f} | {min(rates):,.0f}-{max(rates):,.0f} | {medians[name] / base:.1%} "
            f"| {cpu:.2f} |"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
