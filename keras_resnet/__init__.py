"""keras_resnet: residual networks (He et al. 2015) for Keras 3.

Builders with the keras.applications signature, the paper's training
recipes, input pipelines, feature extraction and export.

Example:

>>> import keras_resnet
>>> model = keras_resnet.ResNet20(input_shape=(32, 32, 3), classes=10)
>>> model.output_shape
(None, 10)
"""

from keras_resnet import (
    accelerate,
    augment,
    benchmark,
    callbacks,
    data,
    distribute,
    evaluation,
    export,
    preprocessing,
    presets,
    shapes,
    training,
)
from keras_resnet._version import __version__
from keras_resnet.architectures import ARCHITECTURES, Architecture, cifar, get_architecture
from keras_resnet.blocks import LayerSettings, conv_bn, residual_block, shortcut_kind
from keras_resnet.callbacks import AtomicBackupAndRestore, AtomicModelCheckpoint, ErrorWarmUp, PlateauDecay, StopOnNaN
from keras_resnet.data import datasets
from keras_resnet.export import cifar_preprocessing, export_saved_model
from keras_resnet.features import feature_extractor, feature_info, freeze, unfreeze
from keras_resnet.imagenet import decode_predictions, preprocess_input, preprocess_input_v2
from keras_resnet.layers import ReverseChannels, ZeroPadShortcut
from keras_resnet.models import (
    MODELS,
    Plain20,
    Plain32,
    Plain44,
    Plain56,
    Plain110,
    PlainNet18,
    PlainNet34,
    ResNet,
    ResNet18,
    ResNet18V2,
    ResNet20,
    ResNet32,
    ResNet34,
    ResNet34V2,
    ResNet44,
    ResNet50,
    ResNet50V2,
    ResNet56,
    ResNet101,
    ResNet101V2,
    ResNet110,
    ResNet152,
    ResNet152V2,
    ResNet200,
    ResNet200V2,
    ResNet1202,
    ResNetModel,
    block_plan,
    get_model,
)
from keras_resnet.plotting import plot_curves, read_log
from keras_resnet.presets import L2SGD, compile_for
from keras_resnet.summary import count_macs, count_params, model_summary
from keras_resnet.training import train
from keras_resnet.weights import has_imagenet_weights, imagenet_weights_path, load_weights, transfer_weights

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
    "preprocessing",
    "presets",
    "shapes",
    "training",
    # Names.
    "__version__",
    "Architecture",
    "ARCHITECTURES",
    "AtomicBackupAndRestore",
    "AtomicModelCheckpoint",
    "block_plan",
    "cifar",
    "cifar_preprocessing",
    "compile_for",
    "conv_bn",
    "count_macs",
    "count_params",
    "datasets",
    "decode_predictions",
    "ErrorWarmUp",
    "export_saved_model",
    "feature_extractor",
    "feature_info",
    "freeze",
    "get_architecture",
    "get_model",
    "has_imagenet_weights",
    "imagenet_weights_path",
    "L2SGD",
    "LayerSettings",
    "load_weights",
    "model_summary",
    "MODELS",
    "Plain110",
    "Plain20",
    "Plain32",
    "Plain44",
    "Plain56",
    "PlainNet18",
    "PlainNet34",
    "PlateauDecay",
    "plot_curves",
    "preprocess_input",
    "preprocess_input_v2",
    "read_log",
    "residual_block",
    "ResNet",
    "ResNet101",
    "ResNet101V2",
    "ResNet110",
    "ResNet1202",
    "ResNet152",
    "ResNet152V2",
    "ResNet18",
    "ResNet18V2",
    "ResNet20",
    "ResNet200",
    "ResNet200V2",
    "ResNet32",
    "ResNet34",
    "ResNet34V2",
    "ResNet44",
    "ResNet50",
    "ResNet50V2",
    "ResNet56",
    "ResNetModel",
    "ReverseChannels",
    "shortcut_kind",
    "StopOnNaN",
    "train",
    "transfer_weights",
    "unfreeze",
    "ZeroPadShortcut",
]
