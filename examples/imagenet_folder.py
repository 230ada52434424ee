"""ImageNet-style training from a folder of images or a tensorflow-datasets name (He et al. 2015, section 3.4).

Trains with the paper's ImageNet recipe: scale augmentation (the shorter side drawn from [256, 480] for 224
crops, scaled with `--image-size`), random crop and horizontal flip, ImageNet mean subtracted; SGD with
momentum 0.9, batch 256, learning rate 0.1 divided by 10 when the validation error plateaus, weight decay
1e-4. Then scores the best checkpoint with the paper's 10-crop testing.

Data: `--dataset folder:PATH` (`PATH/train/<class>/...` and `PATH/validation/<class>/...`) or a
tensorflow-datasets name (`imagenet2012`, `imagenette/320px`, ...) prepared in `--data-dir`. Without
`--dataset`, the embedded shapes are written as a small image folder (`keras_resnet.data.shapes.save_folder`) and
ResNet-18 trains on 64x64 crops for one epoch, so the script runs anywhere in a minute or two. The full run:

    python examples/imagenet_folder.py --dataset imagenet2012 --data-dir /data/tfds --model resnet50 \\
        --image-size 224 --batch-size 256 --epochs 120
"""

import argparse
import os

from keras_resnet.data import shapes
from keras_resnet.training.trainer import evaluate_run, train


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dataset", help="folder:PATH or a tensorflow-datasets name (default: a shapes folder)")
    parser.add_argument("--data-dir", help="prepared tensorflow-datasets folder")
    parser.add_argument("--model", default="resnet18", help="model name (default: %(default)s)")
    parser.add_argument("--image-size", type=int, default=64, help="crop side (default: %(default)s; paper: 224)")
    parser.add_argument("--batch-size", type=int, default=32, help="batch size (default: %(default)s; paper: 256)")
    parser.add_argument("--epochs", type=int, default=1, help="epochs (default: %(default)s)")
    parser.add_argument("--output", default="runs/imagenet_folder", help="run folder (default: %(default)s)")
    args = parser.parse_args()

    dataset = args.dataset
    if dataset is None:
        folder = os.path.join(args.output, "shapes-folder")
        # Images a quarter larger than the crops, as ImageNet photos are larger than 224.
        shapes.save_folder(folder, 2000, 500, image_size=args.image_size * 5 // 4)
        dataset = f"folder:{folder}"
        print(f"wrote the shapes as an image folder in {folder}")
    options = {"image_size": args.image_size, "augmentation": "imagenet", "data_dir": args.data_dir}
    options = {key: value for key, value in options.items() if value is not None}

    result = train(
        args.model,
        dataset,
        epochs=args.epochs,
        batch_size=args.batch_size,
        output_dir=os.path.join(args.output, "run"),
        verbose=2,
        **options,
    )
    print(f"validation accuracy (centre crop): {result['val_accuracy']:.4f}")
    scores = evaluate_run(result["files"]["best"], dataset, method="ten_crop", batch_size=args.batch_size, **options)
    print(f"10-crop: top-1 error {100 * scores['top1_error']:.2f}%, top-5 error {100 * scores['top5_error']:.2f}%")


if __name__ == "__main__":
    main()
