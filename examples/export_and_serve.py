"""Export a trained ResNet as a SavedModel that takes raw images, then serve it with TensorFlow alone.

A small CIFAR-style ResNet-8 learns the embedded shapes data set
(`keras_resnet.data.shapes`) for a few epochs, its images normalised per channel
by `keras_resnet.data.cifar_pipeline`. `keras_resnet.export.export_saved_model`
then writes a SavedModel that carries the same normalisation
(`cifar_preprocessing`), the class names and the input size.

The serving half uses TensorFlow only, as a server or another team would: it
reloads the SavedModel, classifies raw uint8 validation images through
`serving_default` and PNG files of another size through `serving_bytes`,
and reads the metadata. It prints the validation accuracy of the Keras model
and of the served model (they agree), a few top-k answers and the
`saved_model_cli` command that runs the export from a shell.

Run (any Keras backend; exporting from JAX needs TensorFlow installed too):

    python examples/export_and_serve.py
    python examples/export_and_serve.py --epochs 5 --output serving/shapes-resnet8
"""

import argparse
import json
import os
import tempfile

import keras
import numpy as np

from keras_resnet import ResNet, data
from keras_resnet.data import shapes
from keras_resnet.export import cifar_preprocessing, export_saved_model

RESNET8 = {"block": "basic", "depths": (1, 1, 1), "widths": (16, 32, 64), "stem": "cifar", "shortcut": "A"}


def train_and_export(output, *, train_size, validation_size, epochs, seed):
    """Trains ResNet-8 on shapes and exports it; returns the validation images, labels and Keras accuracy."""
    (x_train, y_train), (x_val, y_val), class_names = shapes.load_data(train_size, validation_size, seed=seed)
    train_source = data.array_source(x_train, y_train, class_names)
    statistics = data.image_statistics(train_source)
    pipelines = {
        training: data.cifar_pipeline(
            source, training=training, batch_size=64, normalization="channel", statistics=statistics, seed=seed
        )
        for training, source in ((True, train_source), (False, data.array_source(x_val, y_val, class_names)))
    }

    keras.utils.set_random_seed(seed)
    model = ResNet(RESNET8, input_shape=(32, 32, 3), classes=len(class_names), name="resnet8")
    model.compile(
        optimizer=keras.optimizers.SGD(0.05, momentum=0.9), loss="sparse_categorical_crossentropy", metrics=["accuracy"]
    )
    model.fit(pipelines[True], epochs=epochs, verbose=2)
    _, accuracy = model.evaluate(pipelines[False], verbose=0)

    export_saved_model(
        model, output, preprocessing=cifar_preprocessing(statistics, "channel"), class_names=class_names, top_k=3
    )
    return x_val, y_val, accuracy


def serve(output, images, labels):
    """What a consumer does, with TensorFlow only: returns the served accuracy and prints a few answers."""
    import tensorflow as tf

    serving = tf.saved_model.load(output)
    metadata = serving.signatures["metadata"]()
    class_names = metadata["class_names"].numpy().astype(str)
    print(
        f"served at {metadata['image_size'].numpy().tolist()}, classes {class_names.tolist()}, "
        f"preprocessing {json.loads(metadata['preprocessing'].numpy())}"
    )

    answers = serving.signatures["serving_default"](images=tf.constant(images))
    accuracy = float(np.mean(answers["top_k_indices"].numpy()[:, 0] == labels))
    for index in range(3):
        classes = [name.decode() for name in answers["top_k_classes"][index].numpy()]
        scores = [round(float(score), 3) for score in answers["top_k_scores"][index].numpy()]
        print(f"image {index} (a {class_names[labels[index]]}): {list(zip(classes, scores))}")

    # Encoded files of another size: decoded and resized to 32x32 inside the SavedModel.
    larger = tf.image.resize(images[:2], (64, 64), method="nearest")
    pngs = [tf.io.encode_png(tf.cast(image, tf.uint8)) for image in larger]
    from_bytes = serving.signatures["serving_bytes"](image_bytes=tf.stack(pngs))
    print("64x64 PNG files:", from_bytes["top_k_classes"][:, 0].numpy().astype(str).tolist())
    return accuracy


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output", help="folder of the SavedModel (default: a new temporary folder)")
    parser.add_argument("--train-size", type=int, default=2000)
    parser.add_argument("--validation-size", type=int, default=500)
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    output = args.output or os.path.join(tempfile.mkdtemp(prefix="keras_resnet_export_"), "resnet8")
    images, labels, keras_accuracy = train_and_export(
        output, train_size=args.train_size, validation_size=args.validation_size, epochs=args.epochs, seed=args.seed
    )
    served_accuracy = serve(output, images, labels)
    print(f"validation accuracy: Keras model {keras_accuracy:.4f}, served SavedModel {served_accuracy:.4f}")
    sample = os.path.join(tempfile.mkdtemp(prefix="keras_resnet_images_"), "images.npy")
    np.save(sample, images[:4])
    print(
        f"from a shell: saved_model_cli run --dir {output} --tag_set serve --signature_def serving_default "
        f"--inputs images={sample}"
    )
    print(json.dumps({"output": output, "keras_accuracy": keras_accuracy, "served_accuracy": served_accuracy}))


if __name__ == "__main__":
    main()
