"""keras_resnet: residual networks (He et al. 2015) for Keras 3.

Builders with the keras.applications signature, the paper's training
recipes, input pipelines, feature extraction and export.

Example:

>>> import keras_resnet
>>> model = keras_resnet.ResNet20(input_shape=(32, 32, 3), classes=10)
>>> model.output_shape
(None, 10)
"""

from keras_resnet import accelerate, benchmark, data, export, models, normalization, recipes, training
from keras_resnet._version import __version__
from keras_resnet.data import augment, datasets, shapes
from keras_resnet.export import cifar_preprocessing, export_saved_model
from keras_resnet.models import *  # noqa: F403 (the networks' public names, listed in models.__all__)
from keras_resnet.models import preprocessing, pretrained
from keras_resnet.recipes import L2SGD, compile_for
from keras_resnet.training import callbacks, distribute, evaluation, run_callbacks, train
from keras_resnet.training.callbacks import (
    AtomicBackupAndRestore,
    AtomicModelCheckpoint,
    ErrorWarmUp,
    PlateauDecay,
    StopOnNaN,
)
from keras_resnet.training.plotting import plot_curves, read_log

__all__ = [
    # Modules.
    "accelerate",
    "augment",
    "benchmark",
    "callbacks",
    "data",
    "distribute",
    "evaluation",
    "export",
    "models",
    "normalization",
    "preprocessing",
    "pretrained",
    "recipes",
    "shapes",
    "training",
    # Names.
    "__version__",
    "AtomicBackupAndRestore",
    "AtomicModelCheckpoint",
    "cifar_preprocessing",
    "compile_for",
    "datasets",
    "ErrorWarmUp",
    "export_saved_model",
    "L2SGD",
    "PlateauDecay",
    "plot_curves",
    "read_log",
    "run_callbacks",
    "StopOnNaN",
    "train",
    *models.__all__,
]
