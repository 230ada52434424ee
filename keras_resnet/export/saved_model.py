"""SavedModel export: signatures on raw images, for TensorFlow Serving, `tf.saved_model.load` and TFSMLayer.

The SavedModel needs TensorFlow alone (not keras_resnet or the model's code). Signatures:

- `serving_default`: `images`, uint8 RGB `(batch, height, width, 3)` of any size;
- `serving_bytes`: `image_bytes`, a 1-D batch of encoded JPEG, PNG, GIF, BMP or WebP images (any sizes);
- both return `probabilities` (float32 `(batch, classes)`) and the `top_k` best classes as `top_k_indices`
  (int32), `top_k_scores` (float32) and `top_k_classes` (strings), each `(batch, top_k)`;
- `serving_litert`: uint8 `images` at the served size only, returning `probabilities`: preprocessing and
  model without checks, resizing or strings, which the LiteRT converter turns into builtin ops alone;
- `metadata` (no input): `image_size`, `class_names`, `top_k`, `preprocessing` (JSON) and `crop_to_aspect_ratio`.

The loaded object's `predict` is the bare model on preprocessed float32 input. Images of another size are
resized as `keras.layers.Resizing(antialias=True)` does. Wrong input fails with an `InvalidArgumentError`
naming what was expected and received. `assets/` holds `class_names.txt` and `metadata.json`.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Sequence
from typing import Any

import keras
import numpy as np

from keras_resnet._validation import check_choice, check_int, check_positive_int
from keras_resnet._version import __version__
from keras_resnet.data.sources import IMAGE_SIGNATURES
from keras_resnet.export._common import pixels_model, served, staged

DEFAULT_TOP_K = 5
MAX_REPORTED = 16  # how many values (shape dimensions, batch positions) an input error message lists


def _class_names(class_names, classes):
    if class_names is None:
        return [str(index) for index in range(classes)]
    names = list(class_names)
    if len(names) != classes or not all(isinstance(name, str) and "\n" not in name for name in names):
        raise ValueError(
            f"class_names must be {classes} strings (one per model output, no line breaks); "
            f"received {len(names)} items: {names[:3]}{' ...' if len(names) > 3 else ''}"
        )
    return names


def _top_k(top_k, classes):
    if top_k is None:
        return min(DEFAULT_TOP_K, classes)
    check_int("top_k", top_k, 1, classes, context=" (the number of classes)")
    return top_k


def _checked(valid, value, placeholder, message, received):
    """`value` where `valid` holds, else an assertion returning the well-formed `placeholder`.

    No later op sees a malformed input, so TensorFlow's optimiser cannot raise a shape error before ours.
    """
    import tensorflow as tf

    def fail():
        with tf.control_dependencies([tf.debugging.Assert(valid, [message, received], summarize=MAX_REPORTED)]):
            return tf.identity(placeholder)

    return tf.cond(valid, lambda: value, fail)


def _check_images(images):
    """Checks a uint8 batch `(batch, height, width, 3)`; returns it with that static shape."""
    import tensorflow as tf

    shape = tf.shape(images)
    images = _checked(
        tf.reduce_all([tf.equal(tf.rank(images), 4), tf.reduce_all(tf.equal(shape[-1:], 3)), tf.reduce_all(shape > 0)]),
        images,
        tf.zeros((0, 1, 1, 3), tf.uint8),
        "images must be a uint8 batch of RGB images, shape (batch, height, width, 3), none of them 0; received shape",
        shape,
    )
    images.set_shape((None, None, None, 3))
    return images


def _check_image_bytes(image_bytes):
    """Checks a 1-D batch of encoded images (by their leading bytes); returns it."""
    import tensorflow as tf

    image_bytes = _checked(
        tf.logical_and(tf.equal(tf.rank(image_bytes), 1), tf.greater(tf.size(image_bytes), 0)),
        image_bytes,
        tf.zeros((0,), tf.string),
        "image_bytes must be a non-empty 1-D batch of encoded images (JPEG, PNG, GIF, BMP or WebP); received shape",
        tf.shape(image_bytes),
    )
    # Padded, so that every string is long enough for each magic-bytes slice.
    head = tf.strings.join([image_bytes, b"\0" * max(offset + len(magic) for _, offset, magic, _ in IMAGE_SIGNATURES)])
    known = tf.zeros_like(image_bytes, tf.bool)
    for _, offset, magic, _ in IMAGE_SIGNATURES:
        known |= tf.equal(tf.strings.substr(head, offset, len(magic)), magic)
    return _checked(
        tf.reduce_all(known),
        image_bytes,
        tf.zeros((0,), tf.string),
        "image_bytes must hold encoded JPEG, PNG, GIF, BMP or WebP images; received undecodable bytes at batch "
        "positions",
        tf.where(~known)[:, 0],
    )


def _resizer(image_size, crop_to_aspect_ratio):
    """Resizes float images (one or a batch) to `image_size` as `keras.layers.Resizing` does; that size passes as is."""
    import tensorflow as tf

    resizing = keras.layers.Resizing(
        *image_size, crop_to_aspect_ratio=crop_to_aspect_ratio, antialias=True, dtype="float32"
    )

    def resize(images):
        shape = tf.shape(images)
        same = tf.reduce_all(tf.equal(shape[-3:-1], image_size))
        resized = tf.cond(same, lambda: images, lambda: resizing(images))
        resized.set_shape(images.shape[:-3].concatenate((*image_size, 3)))
        return resized

    return resize


def _serving_module(model, metadata):
    """Builds the `tf.Module` whose functions `export_saved_model` saves; `metadata` is what it records."""
    import tensorflow as tf

    image_size, top_k = tuple(metadata["image_size"]), metadata["top_k"]
    crop_to_aspect_ratio = metadata["crop_to_aspect_ratio"]
    resize = _resizer(image_size, crop_to_aspect_ratio)
    preprocessing = json.dumps(metadata["preprocessing"])
    pixels = pixels_model(
        model, metadata["preprocessing"], image_size, from_logits=metadata["from_logits"], dtype="float32"
    )
    archive = keras.export.ExportArchive()
    # Tracked once: listing the model's variables twice makes jax2tf fail.
    archive.track(pixels)
    predict = archive.add_endpoint(
        "predict",
        lambda inputs: model(inputs, training=False),
        [tf.TensorSpec((None, *image_size, 3), tf.float32, name="inputs")],
    )
    probabilities = archive.add_endpoint(
        "probabilities",
        lambda images: pixels(images, training=False),
        [tf.TensorSpec((None, *image_size, 3), tf.float32, name="images")],
    )
    names = tf.constant(metadata["class_names"])

    def classify(images):
        """float32 RGB 0-255 `(batch, height, width, 3)` at `image_size` -> the signature's outputs."""
        scores = probabilities(images)["probabilities"]
        top_scores, top_indices = tf.math.top_k(scores, k=top_k)
        return {
            "probabilities": scores,
            "top_k_indices": top_indices,
            "top_k_scores": top_scores,
            "top_k_classes": tf.gather(names, top_indices),
        }

    @tf.function(input_signature=[tf.TensorSpec(None, tf.uint8, name="images")], autograph=False)
    def serve(images):
        images = tf.cast(_check_images(images), tf.float32)
        return classify(resize(images))

    @tf.function(input_signature=[tf.TensorSpec(None, tf.string, name="image_bytes")], autograph=False)
    def serve_bytes(image_bytes):
        def decode(encoded):
            image = tf.io.decode_image(encoded, channels=3, expand_animations=False)
            return resize(tf.cast(image, tf.float32))

        images = tf.map_fn(
            decode, _check_image_bytes(image_bytes), fn_output_signature=tf.TensorSpec((*image_size, 3), tf.float32)
        )
        return classify(images)

    @tf.function(input_signature=[tf.TensorSpec((None, *image_size, 3), tf.uint8, name="images")], autograph=False)
    def serve_litert(images):
        return probabilities(tf.cast(images, tf.float32))

    @tf.function(input_signature=[], autograph=False)
    def metadata():
        return {
            "image_size": tf.constant(image_size, tf.int32),
            "class_names": names,
            "top_k": tf.constant(top_k, tf.int32),
            "preprocessing": tf.constant(preprocessing),
            "crop_to_aspect_ratio": tf.constant(crop_to_aspect_ratio),
        }

    module = tf.Module()
    # The variables the model function reads, as it reads them (the TF1 loader of saved_model_cli needs those).
    module.model_variables = list(predict.get_concrete_function().variables)
    module.predict = predict
    module.serve = serve
    module.serve_bytes = serve_bytes
    module.serve_litert = serve_litert
    module.metadata = metadata
    return module


def export_saved_model(
    model: keras.Model,
    export_dir: str | os.PathLike,
    *,
    preprocessing: str | dict | None = "auto",
    class_names: Sequence[str] | None = None,
    top_k: int | None = None,
    image_size: int | tuple[int, int] | None = None,
    crop_to_aspect_ratio: bool = False,
    from_logits: bool | None = None,
    version: int | None = None,
) -> dict[str, Any]:
    """Writes a SavedModel that classifies raw images with the model's own preprocessing.

    The signatures and files are listed in `keras_resnet.export.saved_model`.

    Args:
        model: a `keras.Model` from `(batch, height, width, 3)` images to `(batch, classes)` scores.
        export_dir: folder to write; it must not exist or be empty (with `version`, `export_dir/<version>`).
        preprocessing: what turns RGB pixels in [0, 255] into the model's input: `"caffe"` (mean subtracted, BGR:
            ResNet v1), `"tf"` (scaled to [-1, 1]: v2), a dict `{"mean", "std", "channel_order"}` on the 0-255 scale
            (e.g. from `cifar_preprocessing`), `None` (pixels as they are) or `"auto"`: what the model records.
            A model built with `include_preprocessing=True` takes only `"auto"` or `None`.
        class_names: one string per class; defaults to the model's recorded `class_names`, else `"0"`, ...
        top_k: how many best classes the signatures return; defaults to 5, or the number of classes if fewer.
        image_size: `(height, width)` (or one int) served images are resized to; defaults to the model's.
        crop_to_aspect_ratio: when resizing, first centre-crop to the model's aspect ratio (else stretch).
        from_logits: `True` adds a softmax, `False` serves the output as it is, `None` reads the activation.
        version: writes to `export_dir/<version>/`, the TensorFlow Serving layout.

    Returns:
        The dict written as `assets/metadata.json`.

    Example:

    ```python
    model = keras_resnet.ResNet20(input_shape=(32, 32, 3), classes=10)
    keras_resnet.export_saved_model(model, "resnet20_serving", preprocessing="tf", version=1)
    serving = tf.saved_model.load("resnet20_serving/1")  # anywhere with TensorFlow only
    outputs = serving.signatures["serving_default"](images=tf.zeros((1, 32, 32, 3), tf.uint8))
    outputs["top_k_classes"]  # shape (1, 5), strings
    ```
    """
    import tensorflow as tf

    check_choice("crop_to_aspect_ratio", crop_to_aspect_ratio, (True, False))
    if version is not None:
        check_positive_int("version", version)
    model, preprocessing, image_size, from_logits = served(model, preprocessing, image_size, from_logits)
    classes = model.output_shape[-1]
    class_names = _class_names(getattr(model, "class_names", None) if class_names is None else class_names, classes)
    top_k = _top_k(top_k, classes)
    if isinstance(preprocessing, dict):
        preprocessing = {key: np.asarray(value).tolist() for key, value in preprocessing.items()}
    metadata = {
        "image_size": list(image_size),
        "class_names": class_names,
        "top_k": top_k,
        "preprocessing": preprocessing,
        "crop_to_aspect_ratio": crop_to_aspect_ratio,
        "from_logits": from_logits,
        "model_name": model.name,
        "keras_resnet_version": __version__,
        "keras_version": keras.__version__,
        "keras_backend": keras.backend.backend(),
        "tensorflow_version": tf.__version__,
    }
    target = os.fspath(export_dir) if version is None else os.path.join(os.fspath(export_dir), str(version))
    with staged(target, "export_dir") as staging, tempfile.TemporaryDirectory() as assets:
        module = _serving_module(model, metadata)
        for name, text in (
            ("class_names.txt", "".join(f"{class_name}\n" for class_name in class_names)),
            ("metadata.json", json.dumps(metadata, indent=2) + "\n"),
        ):
            path = os.path.join(assets, name)
            with open(path, "w", encoding="utf-8") as file:
                file.write(text)
            setattr(module, name.replace(".", "_"), tf.saved_model.Asset(path))
        tf.saved_model.save(
            module,
            staging,
            signatures={
                "serving_default": module.serve,
                "serving_bytes": module.serve_bytes,
                "serving_litert": module.serve_litert,
                "metadata": module.metadata,
            },
        )
    return metadata
