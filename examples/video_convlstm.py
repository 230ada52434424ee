"""Video classification: a ResNet on every frame, a ConvLSTM over time.

A tiny CIFAR-style ResNet-8 reads each 32x32 frame (`TimeDistributed`), a
`ConvLSTM2D` reads the sequence of feature maps and a softmax tells in which
direction a square moves (`keras_resnet.video.moving_shapes_clips`). Training
runs in two phases, as transfer learning does:

1. the backbone is frozen (`keras_resnet.models.features.freeze`): only the
   ConvLSTM and the classifier learn, and the backbone's BatchNormalization
   layers stay in inference mode;
2. the backbone is unfrozen (`keras_resnet.models.features.unfreeze`) and the whole
   model is fine-tuned at a lower learning rate, BatchNormalization
   statistics still frozen.

Here the backbone starts from random weights to stay self-contained; in
practice it comes pretrained (`weights=...`). The script prints, for each
phase, the validation accuracy and whether the backbone's parameters and
BatchNormalization statistics changed, then a JSON line with the same.

Run (any Keras backend):

    python examples/video_convlstm.py
    KERAS_BACKEND=jax python examples/video_convlstm.py --clips 64 --epochs 1
"""

import argparse
import json

import keras
import numpy as np

from keras_resnet import ResNet
from keras_resnet.models.features import freeze, unfreeze
from keras_resnet.video import DIRECTIONS, moving_shapes_clips, video_classifier

RESNET8 = {"block": "basic", "depths": (1, 1, 1), "widths": (8, 16, 32), "stem": "cifar", "shortcut": "A"}


def _values(variables):
    return {variable.path: keras.ops.convert_to_numpy(variable).copy() for variable in variables}


def _changed(before, variables):
    return any(not np.array_equal(before[path], value) for path, value in _values(variables).items())


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clips", type=int, default=512, help="training clips")
    parser.add_argument("--frames", type=int, default=5, help="frames per clip")
    parser.add_argument("--epochs", type=int, default=6, help="epochs of each phase")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    keras.utils.set_random_seed(args.seed)
    x_train, y_train = moving_shapes_clips(args.clips, frames=args.frames, seed=args.seed)
    x_val, y_val = moving_shapes_clips(max(args.clips // 4, 4), frames=args.frames, seed=args.seed + 1)

    backbone = ResNet(RESNET8, include_top=False, input_shape=(32, 32, 3), name="resnet8")
    model = video_classifier(backbone, len(DIRECTIONS), frames=args.frames)
    statistics = [
        variable
        for layer in backbone.layers
        if isinstance(layer, keras.layers.BatchNormalization)
        for variable in (layer.moving_mean, layer.moving_variance)
    ]
    statistic_paths = {variable.path for variable in statistics}
    parameters = [variable for variable in backbone.weights if variable.path not in statistic_paths]

    summary = {}
    for phase, prepare, learning_rate in (("frozen", freeze, 3e-3), ("fine_tuned", unfreeze, 1e-3)):
        prepare(backbone)
        # Compile after (un)freezing: compile reads which weights train.
        model.compile(
            optimizer=keras.optimizers.Adam(learning_rate),
            loss="sparse_categorical_crossentropy",
            metrics=["accuracy"],
        )
        before = _values(backbone.weights)
        model.fit(x_train, y_train, batch_size=args.batch_size, epochs=args.epochs, verbose=2)
        _, accuracy = model.evaluate(x_val, y_val, batch_size=args.batch_size, verbose=0)
        summary[phase] = {
            "val_accuracy": round(float(accuracy), 4),
            "backbone_parameters_changed": _changed(before, parameters),
            "bn_statistics_changed": _changed(before, statistics),
        }
        print(phase, summary[phase])
    print(json.dumps(summary))
    return summary


if __name__ == "__main__":
    main()
