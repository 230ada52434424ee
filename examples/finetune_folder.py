"""Fine-tuning a backbone on a new folder of images: frozen backbone first, then the whole network.

Builds the backbone without its classifier (`include_top=False, pooling="avg"`), puts a new softmax
classifier on it, trains the classifier alone with the backbone frozen (`keras_resnet.models.features.freeze`),
then unfreezes the backbone (`unfreeze`, all or the last `--unfreeze-stages` stages, BatchNormalization kept
frozen) and trains at a 10 times smaller learning rate. A pretrained backbone is called with `training=False`,
so its BatchNormalization layers keep their statistics in both phases (the usual practice on small data sets).
Optimizer: the paper's SGD with momentum and L2 weight decay (`keras_resnet.recipes`, ImageNet recipe).

`--weights` takes any `weights=` of the builders: `imagenet` (the keras.applications ImageNet weights of
ResNet50/101/152 and their V2), the best public checkpoints by name (`torchvision_v2`, `timm/resnet50.a1_in1k`;
`keras_resnet.models.pretrained.names_for(model)` lists them; downloaded once into ~/.keras), or a file (`.pth`,
`.safetensors`, a keras-hub preset folder, a Keras weights file). The images are preprocessed as the backbone
records for its weights (`backbone.preprocessing`: "caffe", BGR minus the ImageNet mean, for v1 "imagenet";
"tf", [-1, 1], for V2; the source's mean, std and evaluation crop for torchvision and timm), else as "caffe";
never twice: a backbone that normalises its input itself (`include_preprocessing=True`) gets raw pixels.
Without `--weights`, the backbone is first pretrained here on the embedded circles, squares and
triangles (written as an image folder). Data: `--folder PATH` with `PATH/train/<class>/...` and
`PATH/validation/<class>/...`, checked before anything trains; without it, a folder of the embedded crosses
and rings, classes the backbone never saw. The defaults run anywhere (no download) in a few minutes. A real run:

    python examples/finetune_folder.py --folder flowers --model resnet50 --weights torchvision_v2 --image-size 224
"""

import argparse
import os

import keras

from keras_resnet import data, get_model, recipes
from keras_resnet.data import shapes
from keras_resnet.models.features import freeze, unfreeze
from keras_resnet.normalization import preprocessing_constants
from keras_resnet.training import run_folder

SPLITS = ("train", "validation")


def missing_splits(folder):
    """The sub-folders of `SPLITS` that `folder` lacks."""
    return [split for split in SPLITS if not os.path.isdir(os.path.join(folder, split))]


def preprocessing_for(backbone):
    """What the pipelines must do for the backbone: nothing (`None`) when it normalises its input itself, else
    what its weights were trained with (recorded by the builder for pretrained weights), else "caffe"."""
    if getattr(backbone, "includes_preprocessing", False):
        return None
    return getattr(backbone, "preprocessing", None) or "caffe"


def pipelines(folder, image_size, batch_size, preprocessing):
    """`(train, validation)` pipelines of `folder` preprocessed by `preprocessing` (`"caffe"`, `"tf"`, a dict;
    `None` leaves the pixels raw), and the class names. Validation crops the centre as the weights' record says
    (`resize_size / crop_size`, e.g. 232 / 224 for torchvision_v2), else as the paper (256 / 224)."""
    mean, std, reverse_channels = preprocessing_constants(preprocessing)
    recorded = isinstance(preprocessing, dict) and "crop_size" in preprocessing
    resize, crop = (preprocessing["resize_size"], preprocessing["crop_size"]) if recorded else (8, 7)
    options = dict(
        batch_size=batch_size,
        image_size=image_size,
        scale_range=(image_size * 8 // 7, image_size * 15 // 7),  # 256 and 480 for 224 crops
        resize_size=image_size * resize // crop,
        mean=mean,
        std=std,
        channel_order="bgr" if reverse_channels else "rgb",
    )
    train_source = data.folder_source(os.path.join(folder, "train"))
    train = data.imagenet_pipeline(train_source, training=True, seed=0, **options)
    validation = data.imagenet_pipeline(
        data.folder_source(os.path.join(folder, "validation")), training=False, **options
    )
    return (train, validation), train_source.class_names


def classifier(backbone, classes, *, keep_statistics):
    """The backbone with a new softmax classifier of `classes` outputs."""
    inputs = keras.Input(backbone.input_shape[1:])
    # training=False keeps BatchNormalization's statistics even while the backbone trains.
    features = backbone(inputs, training=False if keep_statistics else None)
    outputs = keras.layers.Dense(classes, activation="softmax", name="predictions")(features)
    return keras.Model(inputs, outputs)


def fit(model, pair, *, lr, batch_size, epochs, label):
    """Compiles with the paper's SGD at `lr`, trains `epochs` epochs and prints the validation accuracy."""
    train, validation = pair
    recipe = recipes.compile_for(model, "imagenet", batch_size=batch_size, lr=lr)
    print(f"\n{label}: {sum(w.numpy().size for w in model.trainable_weights):,} trainable parameters, lr {lr}")
    model.fit(train, validation_data=validation, epochs=epochs, callbacks=run_folder.run_callbacks(recipe), verbose=2)
    accuracy = model.evaluate(validation, verbose=0, return_dict=True)["accuracy"]
    print(f"{label}: validation accuracy {accuracy:.4f}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--folder", help="image folder with train/ and validation/ (default: a folder of crosses and rings)"
    )
    parser.add_argument("--model", default="resnet18", help="backbone name (default: %(default)s)")
    parser.add_argument(
        "--weights",
        help="'imagenet', a pretrained name such as torchvision_v2 or timm/resnet50.a1_in1k, or a weights file "
        "(.pth, .safetensors, keras-hub preset folder, Keras weights) (default: pretrain on the embedded circles, "
        "squares and triangles first)",
    )
    parser.add_argument("--image-size", type=int, default=64, help="crop side (default: %(default)s)")
    parser.add_argument("--batch-size", type=int, default=32, help="batch size (default: %(default)s)")
    parser.add_argument(
        "--lr", type=float, default=0.01, help="learning rate of the first phase (default: %(default)s)"
    )
    parser.add_argument(
        "--pretrain-epochs", type=int, default=2, help="epochs of pretraining without --weights (default: %(default)s)"
    )
    parser.add_argument("--frozen-epochs", type=int, default=1, help="epochs with a frozen backbone (default: 1)")
    parser.add_argument(
        "--unfreeze-stages",
        type=int,
        help="how many of the last stages to train in the second phase (default: all; BatchNormalization stays frozen)",
    )
    parser.add_argument("--unfrozen-epochs", type=int, default=1, help="epochs of the whole network (default: 1)")
    parser.add_argument("--output", default="runs/finetune_folder", help="output folder (default: %(default)s)")
    args = parser.parse_args()
    if args.folder and missing_splits(args.folder):
        parser.error(
            f"--folder must hold {' and '.join(SPLITS)} sub-folders of class folders; received {args.folder!r}, "
            f"which has no {', '.join(missing_splits(args.folder))}"
        )

    def shapes_folder(name, classes):
        folder = os.path.join(args.output, name)
        shapes.save_folder(
            folder, 250 * len(classes), 50 * len(classes), classes=classes, image_size=args.image_size * 5 // 4
        )
        return folder

    size, batch = args.image_size, args.batch_size
    backbone = get_model(
        args.model, include_top=False, pooling="avg", weights=args.weights, input_shape=(size, size, 3)
    )
    preprocessing = preprocessing_for(backbone)
    print(f"preprocessing: {preprocessing}")
    if args.weights is None:
        pretrain_folder = shapes_folder("pretrain", ("circle", "square", "triangle"))
        pretraining, _ = pipelines(pretrain_folder, size, batch, preprocessing)
        fit(
            classifier(backbone, 3, keep_statistics=False),
            pretraining,
            lr=args.lr * 10,
            batch_size=batch,
            epochs=args.pretrain_epochs,
            label="pretraining on circles, squares and triangles",
        )

    (train, validation), class_names = pipelines(
        args.folder or shapes_folder("new", ("cross", "ring")), size, batch, preprocessing
    )
    model = classifier(backbone, len(class_names), keep_statistics=True)
    freeze(backbone)
    fit(
        model,
        (train, validation),
        lr=args.lr,
        batch_size=batch,
        epochs=args.frozen_epochs,
        label="new classifier, frozen backbone",
    )
    unfreeze(backbone, stages=args.unfreeze_stages)
    fit(
        model,
        (train, validation),
        lr=args.lr / 10,
        batch_size=batch,
        epochs=args.unfrozen_epochs,
        label="whole network",
    )

    path = os.path.join(args.output, "finetuned.keras")
    model.save(path)
    print(f"saved {path}")


if __name__ == "__main__":
    main()
