"""Throughput of the keras_resnet.data pipelines against a naive pipeline with the same ops, in one run.

The naive pipeline (`parallel=False`) runs the same shuffle, decode, augmentation, batching and normalisation
element by element, without parallel map, prefetching or AUTOTUNE (single TensorFlow ops such as a resize may
still use TensorFlow's own intra-op threads). Each variant is timed over whole epochs (passes),
alternating the variants, after one untimed warm-up batch; the table shows the best and the median pass (wall
clock), the median process CPU time per pass, and images/s of the best pass. The load average is printed: on a
shared machine other processes take cores from both variants, and the best pass is the least disturbed one.

- CIFAR: `cifar_pipeline` (pad 4, random 32x32 crop, flip, per-pixel mean) on the real CIFAR-10 JPEGs of
  ../shared/data/cifar10-jpeg/train (the first images of each class), or on synthetic 32x32 JPEGs if absent.
- ImageNet-style: `imagenet_pipeline` (shorter side in [256, 480], random 224 crop, flip, PCA lighting) on
  synthetic JPEGs of ImageNet's typical size (500x375), written to a temporary folder.

Usage:
    python benchmarks/pipeline_throughput.py [--cifar-images 5000] [--imagenet-images 1000] [--passes 3]
"""

import argparse
import datetime
import os
import platform
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

from keras_resnet import data

REAL_CIFAR_TRAIN = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "cifar10-jpeg" / "train"


def write_synthetic_jpegs(root, count, width, height, classes=10, seed=0):
    """Writes `count` smooth random JPEGs (quality 90) into `classes` class folders under `root`."""
    rng = np.random.default_rng(seed)
    for index in range(count):
        coarse = Image.fromarray(rng.integers(0, 256, (height // 16, width // 16, 3), dtype=np.uint8))
        texture = np.asarray(coarse.resize((width, height), Image.BILINEAR), np.int16)
        pixels = np.clip(texture + rng.integers(-12, 13, texture.shape), 0, 255).astype(np.uint8)
        folder = root / f"class{index % classes:02d}"
        folder.mkdir(parents=True, exist_ok=True)
        Image.fromarray(pixels).save(folder / f"{index:05d}.jpg", quality=90)


def time_pass(dataset):
    """Wall-clock and process CPU seconds to read one whole epoch, and the number of images read."""
    wall, cpu = time.perf_counter(), time.process_time()
    images = sum(int(labels.shape[0]) for _, labels in dataset)
    return time.perf_counter() - wall, time.process_time() - cpu, images


def measure(name, build, passes):
    """Times `passes` epochs of the naive and parallel variants of `build(parallel)`, alternating them."""
    datasets = {"naive": build(False), "parallel": build(True)}
    for dataset in datasets.values():
        next(iter(dataset.take(1)))  # trace the functions outside the timing
    timings = {variant: [] for variant in datasets}
    for _ in range(passes):
        for variant, dataset in datasets.items():
            timings[variant].append(time_pass(dataset))
    rows = []
    for variant, runs in timings.items():
        best, median = min(run[0] for run in runs), statistics.median(run[0] for run in runs)
        cpu = statistics.median(run[1] for run in runs)
        rows.append((name, runs[0][2], variant, passes, best, median, cpu, runs[0][2] / best))
    return rows


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cifar-images", type=int, default=5000, help="CIFAR images, split evenly over classes")
    parser.add_argument("--cifar-folder", type=Path, default=REAL_CIFAR_TRAIN, help="folder of class sub-folders")
    parser.add_argument("--imagenet-images", type=int, default=1000, help="synthetic ImageNet-style JPEGs")
    parser.add_argument("--imagenet-width", type=int, default=500)
    parser.add_argument("--imagenet-height", type=int, default=375)
    parser.add_argument("--image-size", type=int, default=224, help="ImageNet-style crop side")
    parser.add_argument("--scale-range", type=int, nargs=2, default=(256, 480), metavar=("MIN", "MAX"))
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--passes", type=int, default=3, help="timed epochs per variant")
    args = parser.parse_args()

    import tensorflow as tf

    print(f"date: {datetime.datetime.now().astimezone():%Y-%m-%d %H:%M %Z}")
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPU cores, {platform.system()}")
    print(f"tensorflow {tf.__version__}, python {platform.python_version()}")
    print(f"load average before: {os.getloadavg()[0]:.1f} (1 min; other processes share these cores)")

    with tempfile.TemporaryDirectory() as scratch:
        cifar_folder = args.cifar_folder
        if not cifar_folder.is_dir():
            cifar_folder = Path(scratch) / "cifar"
            write_synthetic_jpegs(cifar_folder, args.cifar_images, 32, 32)
        per_class = args.cifar_images // len([path for path in cifar_folder.iterdir() if path.is_dir()])
        cifar_source = data.folder_source(cifar_folder, indices=range(per_class))
        start = time.perf_counter()
        cifar_statistics = data.image_statistics(cifar_source)
        seconds = time.perf_counter() - start
        print(f"cifar: {len(cifar_source)} images from {cifar_folder} (statistics pass {seconds:.1f} s)")

        imagenet_folder = Path(scratch) / "imagenet"
        write_synthetic_jpegs(imagenet_folder, args.imagenet_images, args.imagenet_width, args.imagenet_height)
        imagenet_source = data.folder_source(imagenet_folder)
        print(f"imagenet-style: {len(imagenet_source)} synthetic {args.imagenet_width}x{args.imagenet_height} JPEGs")

        def cifar(parallel):
            return data.cifar_pipeline(
                cifar_source,
                training=True,
                batch_size=args.batch_size,
                statistics=cifar_statistics,
                seed=0,
                parallel=parallel,
            )

        def imagenet(parallel):
            return data.imagenet_pipeline(
                imagenet_source,
                training=True,
                batch_size=args.batch_size,
                image_size=args.image_size,
                scale_range=tuple(args.scale_range),
                lighting_std=0.1,
                seed=0,
                parallel=parallel,
            )

        rows = measure("cifar", cifar, args.passes) + measure("imagenet-style", imagenet, args.passes)

    print(f"load average after: {os.getloadavg()[0]:.1f} (1 min)")
    print()
    print(
        "| pipeline | images | variant | passes | best pass (s) | median pass (s) | CPU per pass (s) | images/s "
        "(best) | vs naive |"
    )
    print("| --- | ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    naive = {}
    for name, images, variant, passes, best, median, cpu, rate in rows:
        naive.setdefault(name, rate)
        timings = [f"{best:.2f}", f"{median:.2f}", f"{cpu:.2f}"]
        cells = [name, images, variant, passes, *timings, f"{rate:,.0f}", f"{rate / naive[name]:.2f}x"]
        print("| " + " | ".join(map(str, cells)) + " |")


if __name__ == "__main__":
    main()
