"""Input pipelines: labelled image sources, the paper's tf.data pipelines and named data sets.

A *source* (`ImageSource`) lists a labelled image collection without decoding it (`folder_source`,
`cifar_source`, `array_source`, `tfds_source`); a *pipeline* (`cifar_pipeline`, `imagenet_pipeline`) turns it
into batches of `(float32 images, int32 labels)` for any Keras backend, the order and augmentation of each
epoch a pure function of `(seed, epoch)`; `datasets(name, ...)` is the one way in for named data sets.
Modules: `sources`, `cifar`, `epochs`, `transforms`, `pipelines`, `named`, `augment` (on the device), `shapes`.
TensorFlow (and tensorflow-datasets) are imported inside the functions: importing this package needs neither.
"""

from keras_resnet.data.cifar import cifar_source
from keras_resnet.data.named import (
    CIFAR_NAMES,
    HOLDOUT_FRACTION,
    SMALL_IMAGE_SIDE,
    Sources,
    Splits,
    cifar10,
    cifar100,
    dataset_sources,
    datasets,
    folder,
    imagenet,
    input_defaults,
    pipelines_for,
    sources_and_inputs,
)
from keras_resnet.data.pipelines import AUGMENTATIONS, PipelineOptions, cifar_pipeline, imagenet_pipeline
from keras_resnet.data.sources import (
    IMAGE_SIGNATURES,
    ImageSource,
    array_source,
    folder_source,
    holdout_split,
    image_statistics,
    take_per_class,
    tfds_source,
)
from keras_resnet.data.transforms import center_crop, resize_shorter_side
from keras_resnet.imagenet import IMAGENET_MEAN
from keras_resnet.normalization import normalizer

__all__ = [
    "AUGMENTATIONS",
    "CIFAR_NAMES",
    "HOLDOUT_FRACTION",
    "SMALL_IMAGE_SIDE",
    "IMAGENET_MEAN",
    "IMAGE_SIGNATURES",
    "ImageSource",
    "PipelineOptions",
    "Sources",
    "Splits",
    "array_source",
    "center_crop",
    "cifar10",
    "cifar100",
    "cifar_pipeline",
    "cifar_source",
    "dataset_sources",
    "datasets",
    "folder",
    "folder_source",
    "holdout_split",
    "image_statistics",
    "imagenet",
    "imagenet_pipeline",
    "input_defaults",
    "normalizer",
    "pipelines_for",
    "sources_and_inputs",
    "resize_shorter_side",
    "take_per_class",
    "tfds_source",
]
