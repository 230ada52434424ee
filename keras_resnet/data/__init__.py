"""Input pipelines: labelled image sources and the paper's tf.data training and evaluation pipelines.

A *source* (`ImageSource`) lists a labelled image collection without decoding it: a folder of images in class
sub-folders (`folder_source`), the CIFAR-10/100 python batch files (`cifar_source`), in-memory arrays
(`array_source`) or a prepared tensorflow-datasets data set (`tfds_source`). A *pipeline* turns a source into
batches of `(float32 images, int32 labels)` for `model.fit` / `model.evaluate` on any Keras backend, with the
paper's CIFAR (`cifar_pipeline`) or ImageNet (`imagenet_pipeline`) augmentation.

Pipelines shuffle the cheap keys (paths, encoded bytes), decode and augment in parallel, batch and prefetch,
with `tf.data.AUTOTUNE`. The order and the augmentation of an epoch are a pure function of `(seed, epoch)`:
stateless shuffles and stateless `tf.image` ops whose per-element seeds are folded from the epoch's seed. So a
seeded pipeline gives identical batches on every run and different ones in every epoch, and a pipeline built
for `epochs=range(first, stop)` serves exactly the batches that epochs `first`.. of an uninterrupted run saw
(exact resume).
`holdout_split` holds out the last part of each class of a source for validation (CIFAR's 45k / 5k protocol);
`take_per_class` keeps the first examples of each class (a class-balanced subset for short runs).

Named data sets (`"shapes"`, `"cifar10"`, `"folder:PATH"`, tensorflow-datasets names) have one way in:
`datasets(name, ...)` returns a `Splits` of pipelines and class names (`dataset_sources` lists the sources
alone); `cifar10`, `cifar100`, `imagenet` and `folder` are common cases of it.

Modules: `sources` (listing and reading images), `transforms` (resizing, cropping, normalising), `pipelines`
(the paper's augmentations), `named` (data sets by name). TensorFlow (and tensorflow-datasets) are imported
inside the functions: importing this package needs neither.
"""

from keras_resnet.data.named import (
    AUGMENTATIONS,
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
from keras_resnet.data.pipelines import cifar_pipeline, imagenet_pipeline
from keras_resnet.data.sources import (
    IMAGE_SIGNATURES,
    ImageSource,
    array_source,
    cifar_source,
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
