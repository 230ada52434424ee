"""Exported ResNets in their runtimes: int8 accuracy against float, file sizes, CPU latency and throughput.

1. Accuracy: trains a CIFAR ResNet-20 briefly with the library's own pipeline (`folder_source` +
   `cifar_pipeline`, per-channel normalisation) on the real CIFAR-10 JPEGs of ../shared/data/cifar10-jpeg
   (per class files 0000-4499 train, 4500-4999 validation; `--train-per-class` of the training files), exports
   it as LiteRT float32, LiteRT int8 (representative data: the training source) and ONNX, and runs the 5,000
   validation images through each runtime: top-1 accuracy and top-1 agreement with the Keras model.
2. Latency: ResNet-20 (32x32, the trained one) and ResNet-50 (224x224, random weights: speed does not depend
   on them), batch 1 and 32, the same uint8 images for every runtime: Keras `predict` and `predict_on_batch`
   (preprocessing done beforehand in NumPy), the SavedModel's `serving_default` (`tf.saved_model.load`),
   LiteRT float32 and int8
   (`ai_edge_litert` interpreter, XNNPACK, 2 threads) and ONNX Runtime (default CPU provider). Rounds are
   interleaved (every runtime once per round, after one warm-up call each); the table shows medians.

Usage:
    nice -n 19 python benchmarks/export_latency.py [--epochs 6] [--train-per-class 2000] [--rounds 7]
"""

import argparse
import datetime
import os
import platform
import statistics
import tempfile
import time
from pathlib import Path

import keras
import numpy as np

import keras_resnet as kr
from keras_resnet import data

CIFAR_TRAIN = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "cifar10-jpeg" / "train"


def litert_runner(path, threads=2):
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(str(path), num_threads=threads)
    state = {"batch": None}
    source, target = interpreter.get_input_details()[0], interpreter.get_output_details()[0]

    def run(images):
        if state["batch"] != len(images):
            interpreter.resize_tensor_input(source["index"], images.shape)
            interpreter.allocate_tensors()
            state["batch"] = len(images)
        interpreter.set_tensor(source["index"], images)
        interpreter.invoke()
        scores = interpreter.get_tensor(target["index"])
        scale, zero_point = target["quantization"]
        return (scores.astype(np.float32) - zero_point) * scale if scale else scores

    return run


def onnx_runner(path):
    import onnxruntime

    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return lambda images: session.run(None, {"images": images})[0]


def runtimes(model, preprocessing, work, representative):
    """Exports `model` to every format; returns {runtime name: function(uint8 images) -> probabilities}."""
    import tensorflow as tf

    mean = np.asarray(preprocessing["mean"], np.float32)
    std = np.asarray(preprocessing["std"], np.float32)
    kr.export.export(model, work / "saved_model", preprocessing=preprocessing)
    kr.export.export(model, work / "float.tflite", format="litert", preprocessing=preprocessing)
    kr.export.export(
        model,
        work / "int8.tflite",
        format="litert",
        preprocessing=preprocessing,
        quantization="int8",
        representative_data=representative,
    )
    kr.export.export(model, work / "model.onnx", format="onnx", preprocessing=preprocessing)
    serving = tf.saved_model.load(str(work / "saved_model")).signatures["serving_default"]
    return {
        "Keras predict": lambda images: model.predict(
            (images.astype(np.float32) - mean) / std, verbose=0, batch_size=len(images)
        ),
        "Keras predict_on_batch": lambda images: model.predict_on_batch((images.astype(np.float32) - mean) / std),
        "SavedModel": lambda images: serving(images=tf.constant(images))["probabilities"].numpy(),
        "LiteRT float32": litert_runner(work / "float.tflite"),
        "LiteRT int8": litert_runner(work / "int8.tflite"),
        "ONNX Runtime": onnx_runner(work / "model.onnx"),
    }


def sizes(work):
    saved_model = sum(path.stat().st_size for path in (work / "saved_model").rglob("*") if path.is_file())
    return {
        "SavedModel": saved_model,
        "LiteRT float32": (work / "float.tflite").stat().st_size,
        "LiteRT int8": (work / "int8.tflite").stat().st_size,
        "ONNX Runtime": (work / "model.onnx").stat().st_size,
    }


def train_resnet20(args):
    train = data.folder_source(str(CIFAR_TRAIN), indices=range(args.train_per_class))
    validation = data.folder_source(str(CIFAR_TRAIN), indices=range(4500, 5000))
    statistics_ = data.image_statistics(train)
    pipeline = data.cifar_pipeline(
        train, training=True, batch_size=128, normalization="channel", statistics=statistics_, seed=0
    )
    keras.utils.set_random_seed(0)
    model = kr.ResNet20(input_shape=(32, 32, 3), classes=10)
    steps = args.epochs * -(-len(train) // 128)
    schedule = keras.optimizers.schedules.CosineDecay(0.0, steps, warmup_target=0.1, warmup_steps=steps // 10)
    model.compile(
        optimizer=keras.optimizers.SGD(schedule, momentum=0.9, nesterov=True),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
    start = time.perf_counter()
    model.fit(pipeline, epochs=args.epochs, verbose=2)
    print(f"trained in {time.perf_counter() - start:.0f} s")
    images, labels = zip(*((image.numpy(), int(label)) for image, label in validation.images(parallel=True)))
    return model, kr.export.cifar_preprocessing(statistics_, "channel"), train, np.stack(images), np.array(labels)


def accuracy_table(run, images, labels, file_sizes):
    outputs = {
        name: np.concatenate([function(images[i : i + 100]) for i in range(0, len(images), 100)])
        for name, function in run.items()
        if name not in ("SavedModel", "Keras predict_on_batch")
    }
    keras_top1 = outputs["Keras predict"].argmax(1)
    print("\n| runtime | top-1 accuracy | top-1 agreement with Keras | max abs probability difference | size (bytes) |")
    print("| --- | ---: | ---: | ---: | ---: |")
    for name, scores in outputs.items():
        top1 = scores.argmax(1)
        print(
            f"| {name} | {np.mean(top1 == labels):.2%} | {np.mean(top1 == keras_top1):.2%} | "
            f"{np.abs(scores - outputs['Keras predict']).max():.4f} | {file_sizes.get(name, '')} |"
        )


def latency_rows(label, run, images, rounds):
    times = {name: [] for name in run}
    for function in run.values():
        function(images)  # warm-up: tracing, allocation
    for _ in range(rounds):
        for name, function in run.items():
            start = time.perf_counter()
            function(images)
            times[name].append(time.perf_counter() - start)
    for name, samples in times.items():
        median = statistics.median(samples)
        print(f"| {label} | {len(images)} | {name} | {1000 * median:.2f} | {len(images) / median:,.0f} |")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--train-per-class", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()
    if not CIFAR_TRAIN.is_dir():
        raise SystemExit(f"the CIFAR-10 JPEGs are not at {CIFAR_TRAIN}: see ../shared/data/README.md")
    print(
        f"{datetime.datetime.now():%Y-%m-%d %H:%M}, {platform.processor() or platform.machine()}, "
        f"{os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f}"
    )
    print(f"keras {keras.__version__}, backend {keras.backend.backend()}")
    model, preprocessing, train, images, labels = train_resnet20(args)
    rng = np.random.default_rng(0)
    with tempfile.TemporaryDirectory() as folder:
        work20 = Path(folder) / "resnet20"
        run20 = runtimes(model, preprocessing, work20, train)
        accuracy_table(run20, images, labels, sizes(work20))
        resnet50 = kr.ResNet50(weights=None)
        imagenet = {"mean": [123.68, 116.78, 103.94], "std": [58.4, 57.1, 57.4]}
        images50 = rng.integers(0, 256, (32, 224, 224, 3), dtype=np.uint8)
        work50 = Path(folder) / "resnet50"
        run50 = runtimes(resnet50, imagenet, work50, images50)
        print(f"\nResNet-50 sizes: {sizes(work50)}")
        print(f"\nload average before timing {os.getloadavg()[0]:.1f}")
        print("\n| model | batch | runtime | median latency (ms) | images/s |")
        print("| --- | ---: | --- | ---: | ---: |")
        for label, run, pool in (("ResNet-20", run20, images), ("ResNet-50", run50, images50)):
            for batch in (1, 32):
                latency_rows(label, run, pool[:batch], args.rounds)
        print(f"\nload average after {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
