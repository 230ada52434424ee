"""CIFAR-10 as in the paper (He et al. 2015, section 4.2): ResNet-20...110 against their plain twins.

Trains each network with the paper's recipe (SGD with momentum 0.9, batch 128, learning rate 0.1 divided by
10 at 1/2 and 3/4 of the run, weight decay 1e-4; 4-pixel pad, random crop and flip; per-pixel mean
subtracted; ResNet-110 warms up at 0.01) and draws the degradation figure of the paper's Fig. 6: training
error dashed, validation error bold, plain networks in `plain.png`, residual networks in `resnet.png`. With
enough training the deeper plain networks have the higher training error, the deeper ResNets the lower.

Data: the real CIFAR-10 JPEGs in `../shared/data/cifar10-jpeg/train` (beside the project) when present,
with images 0000-4499 of each class for training and 4500-4999 for validation (the paper's 45k/5k split);
otherwise the `cifar10` data set of `--data-dir` (python batch files or a prepared tensorflow-datasets copy):
the last 10% of each class of its training set validates and selects `best.keras`, and the test set scores
each final model once.

The defaults finish in a few minutes on a CPU (ResNet-20 and Plain-20, one epoch on 500 images per class).
The paper's run (64k iterations = 182 epochs of 45k images):

    python examples/cifar10_paper.py --depths 20 32 44 56 110 --train-per-class 4500 --epochs 182
"""

import argparse
import os

from keras_resnet import data
from keras_resnet.training.plotting import plot_curves
from keras_resnet.training.trainer import train

JPEG_FOLDER = os.path.join(os.path.dirname(__file__), "..", "..", "shared", "data", "cifar10-jpeg", "train")
VALIDATION_START = 4500


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--depths",
        type=int,
        nargs="+",
        default=[20],
        choices=(20, 32, 44, 56, 110),
        help="depths 6n+2 to train, each as ResNet and plain twin (default: 20)",
    )
    parser.add_argument("--epochs", type=int, default=1, help="epochs per network (default: 1; the paper: 182)")
    parser.add_argument(
        "--train-per-class",
        type=int,
        default=500,
        help="JPEG folder: training images per class, from 0000 (default: 500; the paper: 4500)",
    )
    parser.add_argument(
        "--validation-per-class",
        type=int,
        default=100,
        help="JPEG folder: validation images per class, from 4500 (default: 100; the paper: 500)",
    )
    parser.add_argument("--jpeg-folder", default=JPEG_FOLDER, help="the CIFAR-10 JPEG folder (default: %(default)s)")
    parser.add_argument(
        "--data-dir", help="CIFAR-10 python batch files or prepared tensorflow-datasets folder, without the JPEG folder"
    )
    parser.add_argument("--batch-size", type=int, default=128, help="batch size (default: %(default)s)")
    parser.add_argument("--output", default="runs/cifar10_paper", help="folder of the runs (default: %(default)s)")
    args = parser.parse_args()

    if os.path.isdir(args.jpeg_folder):
        print(f"CIFAR-10 JPEGs from {os.path.abspath(args.jpeg_folder)}")
        splits = data.folder(
            args.jpeg_folder,
            train_indices=range(args.train_per_class),
            validation_indices=range(VALIDATION_START, VALIDATION_START + args.validation_per_class),
            batch_size=args.batch_size,
            seed=0,
        )
        dataset, options = (splits.train, splits.validation), {"classes": len(splits.class_names)}
    else:
        # Never the test set for choosing: train() validates on a hold-out and reads the test set once, at the end.
        print(f"CIFAR-10 from {args.data_dir}: hold-out validation, test set scored once")
        dataset, options = "cifar10", {"data_dir": args.data_dir}

    logs = {"plain": [], "resnet": []}
    errors = {}
    for depth in args.depths:
        for kind in ("plain", "resnet"):
            name = f"{kind}{depth}"
            print(f"\n{name}")
            result = train(
                name,
                dataset,
                epochs=args.epochs,
                batch_size=args.batch_size,
                output_dir=os.path.join(args.output, name),
                verbose=2,
                **options,
            )
            logs[kind].append(result["files"]["log"])
            errors[name] = 100 * (1 - result["val_accuracy"])
            if result["test_accuracy"] is not None:
                print(f"{name}: test error {100 * (1 - result['test_accuracy']):.2f}% (final model)")

    steps_per_epoch = result["steps_per_epoch"]
    for kind, paths in logs.items():
        figure = os.path.join(args.output, f"{kind}.png")
        labels = [f"{kind}-{depth}" for depth in args.depths]
        plot_curves(paths, figure, labels=labels, steps_per_epoch=steps_per_epoch, title=f"{kind} networks, CIFAR-10")
        print(f"wrote {figure}")
    print("\nvalidation error (%)")
    for depth in args.depths:
        print(f"  depth {depth:>3}: plain {errors[f'plain{depth}']:6.2f}   resnet {errors[f'resnet{depth}']:6.2f}")


if __name__ == "__main__":
    main()
