"""Packs the CIFAR-10 JPEG folder into one compact file for the GPU machine, and reads it back.

The GPU machine receives at most 64 MiB per call and has no TensorFlow, so the 50,000 JPEG files
(`../shared/data/cifar10-jpeg/train/<class>/NNNN.jpg`, 47 MB of JPEG bytes) travel as one uncompressed
`.npz`: the JPEG bytes back to back (`jpeg`), where each image starts (`offsets`), its label
(`labels`), its number within its class (`numbers`, 0-4999) and the class names (`classes`). The file is
decoded there on all cores (`load`), with PIL or, without it, torchvision.

    python benchmarks/pack_cifar.py ../shared/data/cifar10-jpeg/train .gpu-data/cifar10.npz

`--train-per-class` and `--validation-per-class` pack only the first images of each class's training
(0000-4499) and validation (4500-4999) ranges, for quick tests.
"""

import argparse
import io
import os
import sys
from concurrent.futures import ThreadPoolExecutor

import numpy as np

TRAIN_END = 4500  # numbers 0000-4499 of each class train, 4500-4999 validate (the paper's 45k/5k protocol)
CLASS_SIZE = 5000


def pack(directory, output, *, train_per_class=TRAIN_END, validation_per_class=CLASS_SIZE - TRAIN_END):
    """Writes the JPEG files of `directory/<class>/NNNN.jpg` into one `.npz`; returns its size in bytes."""
    classes = sorted(name for name in os.listdir(directory) if os.path.isdir(os.path.join(directory, name)))
    if not classes:
        raise ValueError(f"directory must hold one sub-folder per class; received {directory!r}")
    wanted = [*range(train_per_class), *range(TRAIN_END, TRAIN_END + validation_per_class)]
    chunks, labels, numbers = [], [], []
    for label, name in enumerate(classes):
        for number in wanted:
            with open(os.path.join(directory, name, f"{number:04d}.jpg"), "rb") as handle:
                chunks.append(handle.read())
            labels.append(label)
            numbers.append(number)
    offsets = np.cumsum([0] + [len(chunk) for chunk in chunks]).astype(np.int64)
    os.makedirs(os.path.dirname(os.path.abspath(output)), exist_ok=True)
    np.savez(
        output,
        jpeg=np.frombuffer(b"".join(chunks), np.uint8),
        offsets=offsets,
        labels=np.asarray(labels, np.int16),
        numbers=np.asarray(numbers, np.int16),
        classes=np.asarray(classes),
    )
    return os.path.getsize(output)


def _decode(blobs):
    try:
        from PIL import Image
    except ImportError:
        import torch
        from torchvision.io import decode_jpeg

        return np.stack(
            [decode_jpeg(torch.frombuffer(bytearray(b), dtype=torch.uint8)).permute(1, 2, 0).numpy() for b in blobs]
        )
    return np.stack([np.asarray(Image.open(io.BytesIO(b)).convert("RGB")) for b in blobs])


def load(path, *, processes=None):
    """Decodes a packed file on all cores (threads: PIL decodes without the GIL, and JAX forbids fork).

    Returns:
        A dict of uint8 images `(n, 32, 32, 3)` and int32 labels: `x_train`, `y_train` (numbers below
        4500), `x_validation`, `y_validation` (4500 and above), and `classes`.
    """
    packed = np.load(path)
    data, offsets = packed["jpeg"].tobytes(), packed["offsets"]
    blobs = [data[offsets[i] : offsets[i + 1]] for i in range(len(offsets) - 1)]
    processes = processes or os.cpu_count()
    size = -(-len(blobs) // processes)
    with ThreadPoolExecutor(processes) as pool:
        images = np.concatenate(list(pool.map(_decode, [blobs[i : i + size] for i in range(0, len(blobs), size)])))
    labels, train = packed["labels"].astype(np.int32), packed["numbers"] < TRAIN_END
    return {
        "x_train": images[train],
        "y_train": labels[train],
        "x_validation": images[~train],
        "y_validation": labels[~train],
        "classes": [str(c) for c in packed["classes"]],
    }


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("directory", help="the class folders, e.g. ../shared/data/cifar10-jpeg/train")
    parser.add_argument("output", help="the .npz to write, in a folder git ignores (e.g. .gpu-data/cifar10.npz)")
    parser.add_argument("--train-per-class", type=int, default=TRAIN_END)
    parser.add_argument("--validation-per-class", type=int, default=CLASS_SIZE - TRAIN_END)
    args = parser.parse_args(argv)
    size = pack(
        args.directory,
        args.output,
        train_per_class=args.train_per_class,
        validation_per_class=args.validation_per_class,
    )
    print(f"wrote {args.output}: {size / 2**20:.1f} MiB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
