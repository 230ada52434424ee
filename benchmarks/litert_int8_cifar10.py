"""The shipped ResNet-20 (`weights="cifar10"`) exported to LiteRT, float32 and int8, scored on the CIFAR-10 test batch.

    python benchmarks/litert_int8_cifar10.py --output litert_cifar10.jsonl

Exports `kr.ResNet20(weights="cifar10")` with the library's `keras_resnet.export.export` (its recorded
per-pixel mean inside the file: uint8 images in), once in float32 and once in full-integer int8 calibrated on
images of the CIFAR-10 training batches (the export draws 200 at random), then scores both with the LiteRT
runtime (`ai_edge_litert`) on the 10,000 images of `test_batch`. Prints the accuracies, their difference in
percentage points and the file sizes, and appends them as one JSON line to `--output`.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import tempfile
from pathlib import Path

import numpy as np

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "cifar-10-batches-py"
BATCH_SIZE = 500


def litert_accuracy(path: str, images: np.ndarray, labels: np.ndarray) -> float:
    """Top-1 accuracy of a LiteRT classifier file on uint8 images, run by `ai_edge_litert` in batches."""
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(path)
    source, target = interpreter.get_input_details()[0], interpreter.get_output_details()[0]
    correct = 0
    for start in range(0, len(images), BATCH_SIZE):
        batch = images[start : start + BATCH_SIZE]
        interpreter.resize_tensor_input(source["index"], batch.shape)
        interpreter.allocate_tensors()
        interpreter.set_tensor(source["index"], batch)
        interpreter.invoke()
        scores = interpreter.get_tensor(target["index"])
        correct += int(np.sum(np.argmax(scores, axis=-1) == labels[start : start + BATCH_SIZE]))
    return correct / len(images)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", default=str(DATA), help="CIFAR-10 python batches (default: %(default)s)")
    parser.add_argument("--output", required=True, help="JSON-lines file to append the result to")
    parser.add_argument("--workdir", help="where to write the .tflite files (default: a temporary folder)")
    args = parser.parse_args(argv)

    import keras
    import tensorflow as tf

    import keras_resnet as kr
    from keras_resnet.models import shipped

    record = json.loads(Path(shipped.files("cifar10")["record"]).read_text())
    model = kr.ResNet20(weights="cifar10")
    train = kr.data.cifar_source(args.data_dir, split="train")
    images, labels = (np.asarray(tensor) for tensor in kr.data.cifar_source(args.data_dir, split="test").tensors)
    workdir = Path(args.workdir or tempfile.mkdtemp(prefix="litert_cifar10_"))
    workdir.mkdir(parents=True, exist_ok=True)
    result = {
        "date": datetime.date.today().isoformat(),
        "weights": f"resnet20 cifar10, status {record['status']}, keras test accuracy {record['test']['accuracy']}",
        "split": f"test_batch ({len(labels)} images)",
        "calibration": "200 random images of the CIFAR-10 training batches",
    }
    for name, options in (("float", {}), ("int8", {"quantization": "int8", "representative_data": train})):
        path = str(workdir / f"resnet20_cifar10_{name}.tflite")
        if os.path.exists(path):
            os.remove(path)
        kr.export.export(model, path, "litert", **options)
        result[f"{name}_accuracy"] = litert_accuracy(path, images, labels)
        result[f"{name}_bytes"] = os.path.getsize(path)
    result["difference_pp"] = round(100 * (result["float_accuracy"] - result["int8_accuracy"]), 2)
    result["machine"] = {
        "cpu": _cpu_name(),
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "tensorflow": tf.__version__,
        "keras": keras.__version__,
    }
    for name in ("float", "int8"):
        print(f"{name}: accuracy {100 * result[f'{name}_accuracy']:.2f}%, {result[f'{name}_bytes']:,} bytes")
    print(f"float - int8: {result['difference_pp']:.2f} pp")
    with open(args.output, "a", encoding="utf-8") as file:
        file.write(json.dumps(result) + "\n")


def _cpu_name():
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as file:
            return next(line.split(":", 1)[1].strip() for line in file if line.startswith("model name"))
    except (OSError, StopIteration):
        return platform.processor()


if __name__ == "__main__":
    main()
