"""What the export test modules share: test images, the classifier they export, the Keras reference outputs,
and running a consumer script in a process without keras_resnet (and without TensorFlow where asked)."""

import os
import subprocess
import sys

import keras
import numpy as np

import keras_resnet as kr

TOLERANCE = 1e-5
# The environment of a consumer process: quiet TensorFlow logs, nothing added to the import path.
CONSUMER_ENV = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "PYTHONPATH": ""}
# First lines of a consumer script: importing keras_resnet raises ImportError from here on.
NO_KERAS_RESNET = "import sys\nsys.modules['keras_resnet'] = None\n"
# ... and importing TensorFlow too: what a phone or an ONNX Runtime server has.
NO_TENSORFLOW = NO_KERAS_RESNET + "sys.modules['tensorflow'] = None\n"


def uint8_images(shape, seed=0):
    return np.random.default_rng(seed).integers(0, 256, shape, dtype=np.uint8)


def classifier():
    """ResNet-20 whose classifier is scaled so that "tf"-preprocessed images get unsaturated probabilities."""
    keras.utils.set_random_seed(0)
    model = kr.ResNet20(input_shape=(32, 32, 3), classes=10)
    kernel = model.get_layer("predictions").kernel
    kernel.assign(kernel * 0.05)
    return model


def reference(model, images, mode="tf"):
    """The Keras model on images preprocessed by keras_resnet.preprocess_input (float32)."""
    return model.predict(kr.preprocess_input(images.astype("float32"), mode=mode), verbose=0)


def run_consumer(script, *args, cwd):
    """Runs `script` in a fresh Python with `args`; returns its stdout, failing with its stderr."""
    run = subprocess.run(
        [sys.executable, "-c", script, *map(str, args)],
        capture_output=True,
        text=True,
        env=CONSUMER_ENV,
        cwd=cwd,
        timeout=120,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    return run.stdout
