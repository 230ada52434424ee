"""Multi-level ResNet features feeding a tiny Feature Pyramid Network.

`keras_resnet.models.features.feature_extractor` turns a backbone into a model whose
output is the dict of its stage outputs C2..C5; `feature_info` gives each
level's stride and channels. A small FPN (Lin et al. 2017: 1x1 laterals, a
top-down pathway of upsampling and additions, 3x3 smoothing) turns them into
P2..P5, and a semantic-FPN head (Kirillov et al. 2019) merges every level to
segment a disc from its noisy background. The upsampling factors come from
`feature_info`, so the same code runs on a dilated backbone
(`--output-stride 16`: P4 and P5 share a resolution).

Run:

    python examples/feature_pyramid.py
    python examples/feature_pyramid.py --model resnet50v2 --output-stride 16
"""

import argparse

import keras
import numpy as np

from keras_resnet import get_model
from keras_resnet.models.features import feature_extractor, feature_info


def discs(count, image_size=64, seed=0):
    """Images of one disc on a noisy background, with the disc's mask."""
    rng = np.random.default_rng(seed)
    radius = rng.uniform(0.1, 0.3, size=(count, 1, 1)) * image_size
    row, col = rng.uniform(radius, image_size - radius, size=(2, count, 1, 1))
    grid = np.arange(image_size) + 0.5
    mask = (grid[:, None] - row) ** 2 + (grid[None, :] - col) ** 2 <= radius**2
    background = rng.uniform(0, 1, size=(count, 1, 1, 3))
    foreground = (background + rng.uniform(0.3, 0.7, size=(count, 1, 1, 3))) % 1
    images = np.where(mask[..., None], foreground, background)
    images = images + rng.normal(0, 0.1, images.shape)
    return np.clip(images, 0, 1).astype("float32"), mask[..., None].astype("float32")


def fpn(features, strides, filters=32):
    """The FPN top-down pathway: `{"C2": ..., ...}` to `{"P2": ..., ...}`.

    `strides` maps each level to its stride (from `feature_info`); the
    upsampling between two levels is the ratio of their strides.
    """
    pyramid, above, top_down = {}, None, None
    for level in sorted(features, key=strides.get, reverse=True):
        x = keras.layers.Conv2D(filters, 1, name=f"fpn_lateral_{level}")(features[level])
        if above is not None:
            factor = strides[above] // strides[level]
            top_down = keras.layers.UpSampling2D(factor, name=f"fpn_upsample_{above}")(top_down)
            x = keras.layers.Add(name=f"fpn_add_{level}")([top_down, x])
        top_down, above = x, level
        name = f"P{level[1:]}"
        pyramid[name] = keras.layers.Conv2D(filters, 3, padding="same", name=f"fpn_{name}")(x)
    return pyramid


def segmenter(extractor, strides, filters=32):
    """FPN, then every level upsampled to the finest, summed, and classified per pixel.

    Returns the model and its pyramid `{"P2": tensor, ...}`.
    """
    pyramid = fpn(extractor.output, strides, filters)
    finest = min(strides.values())
    merged = keras.layers.Add(name="merge")(
        [
            keras.layers.UpSampling2D(strides[f"C{name[1:]}"] // finest, name=f"upsample_{name}")(p)
            for name, p in pyramid.items()
        ]
    )
    x = keras.layers.Conv2D(filters, 3, padding="same", activation="relu", name="head_conv")(merged)
    x = keras.layers.Conv2D(1, 1, name="head_logits")(x)
    x = keras.layers.UpSampling2D(finest, interpolation="bilinear", name="head_upsample")(x)
    outputs = keras.layers.Activation("sigmoid", name="mask")(x)
    return keras.Model(extractor.input, outputs, name="fpn_segmenter"), pyramid


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="resnet18", help="a name of keras_resnet.MODELS")
    parser.add_argument("--output-stride", type=int, default=None)
    parser.add_argument("--images", type=int, default=512, help="training images")
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    keras.utils.set_random_seed(args.seed)
    size = 64
    backbone = get_model(args.model, include_top=False, input_shape=(size, size, 3), output_stride=args.output_stride)
    extractor = feature_extractor(backbone)
    info = feature_info(backbone)
    for level in info:
        print(f"{level['level']}: {level['layer']}, stride {level['stride']}, {level['channels']} channels")
    model, pyramid = segmenter(extractor, {level["level"]: level["stride"] for level in info})
    model.compile(
        optimizer=keras.optimizers.Adam(1e-3),
        loss="binary_crossentropy",
        metrics=[keras.metrics.BinaryIoU(target_class_ids=[1], name="iou")],
    )
    x_train, y_train = discs(args.images, size, seed=args.seed)
    x_val, y_val = discs(max(args.images // 4, 4), size, seed=args.seed + 1)
    model.fit(x_train, y_train, batch_size=args.batch_size, epochs=args.epochs, verbose=2)
    _, iou = model.evaluate(x_val, y_val, batch_size=args.batch_size, verbose=0)
    print(f"validation IoU of the disc: {iou:.3f}")
    return {"pyramid": {name: tuple(p.shape) for name, p in pyramid.items()}, "val_iou": float(iou)}


if __name__ == "__main__":
    main()
