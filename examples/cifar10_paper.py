"""CIFAR-10 as in the paper (He et al. 2015, section 4.2): ResNet-20...110 against their plain twins.

Trains each network with the paper's recipe (SGD with momentum 0.9, batch 128, learning rate 0.1 divided by
10 at 1/2 and 3/4 of the run, weight decay 1e-4; 4-pixel pad, random crop and flip; per-pixel mean
subtracted; ResNet-110 warms up at 0.01) and draws the degradation figure of the paper's Fig. 6: training
error dashed, validation error bold, plain networks in `plain.png`, residual networks in `resnet.png`. With
enough training the deeper plain networks have the higher training error, the deeper ResNets the lower.

Data: the `cifar10` data set of `--data-dir` (the original python batch files, by default
`../shared/data/cifar-10-batches-py` beside the project, or a prepared tensorflow-datasets copy): the paper's
45k/5k split, the last 10% of each class validating and selecting `best.keras`; the test set scores each
final model once.

The defaults finish in a few minutes on a CPU (ResNet-20 and Plain-20, one epoch each). The paper's run
(64k iterations = 182 epochs of 45k images):

    python examples/cifar10_paper.py --depths 20 32 44 56 110 --epochs 182
"""

import argparse
import os

from keras_resnet.training.plotting import plot_curves
from keras_resnet.training.trainer import train

DATA_DIR = os.path.join(os.path.dirname(__file__), "..", "..", "shared", "data", "cifar-10-batches-py")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    depths = (20, 32, 44, 56, 110)
    parser.add_argument("--depths", type=int, nargs="+", default=[20], choices=depths, help="ResNets and plain twins")
    parser.add_argument("--epochs", type=int, default=1, help="epochs per network (default: 1; the paper: 182)")
    parser.add_argument("--data-dir", default=DATA_DIR, help="CIFAR-10 python batches or tensorflow-datasets folder")
    parser.add_argument("--batch-size", type=int, default=128, help="batch size (default: %(default)s)")
    parser.add_argument("--output", default="runs/cifar10_paper", help="folder of the runs (default: %(default)s)")
    args = parser.parse_args()

    # Never the test set for choosing: train() validates on a hold-out and reads the test set once, at the end.
    print(f"CIFAR-10 from {os.path.abspath(args.data_dir)}: 45k/5k hold-out validation, test set scored once")
    logs = {"plain": [], "resnet": []}
    errors = {}
    for depth in args.depths:
        for kind in ("plain", "resnet"):
            name = f"{kind}{depth}"
            print(f"\n{name}")
            result = train(
                name,
                "cifar10",
                data_dir=args.data_dir,
                epochs=args.epochs,
                batch_size=args.batch_size,
                output_dir=os.path.join(args.output, name),
                verbose=2,
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
