"""Export for serving: a SavedModel that takes raw images, and `.keras` archives.

`export_saved_model` writes a TensorFlow SavedModel that a consumer runs with
TensorFlow alone (`tf.saved_model.load`, `saved_model_cli`, TensorFlow
Serving, `keras.layers.TFSMLayer`), without keras_resnet or the model's
Python code. Its signatures take raw images and carry the model's own
preprocessing, so a client never re-implements it:

- `serving_default`: `images`, uint8 RGB `(batch, height, width, 3)`.
- `serving_bytes`: `image_bytes`, a 1-D batch of encoded JPEG, PNG, GIF, BMP
  or WebP images (each decoded to RGB; they may differ in size).
- Both return `probabilities` (float32 `(batch, classes)`), the `top_k` best
  classes as `top_k_indices` (int32), `top_k_scores` (float32) and
  `top_k_classes` (their names, strings), all of shape `(batch, top_k)`.
- `metadata` (no input): `image_size` (int32 `[height, width]`),
  `class_names`, `top_k`, `preprocessing` (JSON text) and
  `crop_to_aspect_ratio`.

The loaded object also has `predict`, the bare model on preprocessed
float32 input of the served size.

Serving steps: images of another size than the model's are resized to it
(bilinear with antialiasing; stretched, or with `crop_to_aspect_ratio=True`
centre-cropped to the model's aspect ratio first, as
`keras.layers.Resizing` does); images of the model's size pass unchanged.
Then the preprocessing runs on the 0-255 float pixels, then the model.
Wrong input (another rank, not 3 channels, an empty batch or image, bytes
that are no image file) fails with an `InvalidArgumentError` that names
what was expected and what was received; a file with a known header but a
corrupt body fails in TensorFlow's decoder (e.g. "Invalid PNG").

Files beside `saved_model.pb`: `assets/class_names.txt` (one name a line, in
class-id order) and `assets/metadata.json` (everything `metadata` returns,
plus the model name and the library versions).

The model runs through `keras.export.ExportArchive`, so any backend Keras
can export from works: TensorFlow directly, JAX through `jax2tf` (which
needs TensorFlow installed beside JAX).

On the command line: `keras-resnet export --checkpoint best.keras --output
serving/resnet20 --preprocessing stats.json --class-names classes.txt`
(see `add_export_command`).

A `.keras` archive is the way to ship a model for further Keras work (the
architecture, weights and optimizer state; loading it needs keras_resnet
imported, for its custom layers). It is Keras' own `model.save`:

```python
model.save("resnet20.keras")
model = keras.saving.load_model("resnet20.keras", safe_mode=True)
```

TensorFlow is imported inside the functions: importing this module does not
need it.
"""

import json
import os
import tempfile

import keras
import numpy as np

from keras_resnet._validation import check_choice as _check_choice
from keras_resnet.imagenet import BGR_MEAN

PREPROCESSING_MODES = ("caffe", "tf", None)
CIFAR_NORMALIZATIONS = ("pixel", "channel", None)
DEFAULT_TOP_K = 5
MAX_REPORTED = 16  # how many values (shape dimensions, batch positions) an input error message lists
# Leading bytes of the encoded images `tf.io.decode_image` reads: (offset, magic bytes).
IMAGE_MAGIC = (
    (0, b"\xff\xd8\xff"),  # JPEG
    (0, b"\x89PNG\r\n\x1a\n"),  # PNG
    (0, b"GIF8"),  # GIF
    (0, b"BM"),  # BMP
    (8, b"WEBP"),  # WebP (after "RIFF" and the file size)
)


def cifar_preprocessing(statistics, normalization="pixel"):
    """Turns training-set statistics into `preprocessing` for `export_saved_model`.

    The result normalises served images as `keras_resnet.data.cifar_pipeline`
    normalises training and evaluation batches with the same arguments.

    Args:
        statistics: the training set's `keras_resnet.data.image_statistics(...)`
            (a dict with `"pixel_mean"`, `"channel_mean"`, `"channel_std"`);
            not needed for `normalization=None`.
        normalization: `"pixel"` (subtract the per-pixel mean, divide by 255;
            the paper), `"channel"` (per-channel mean and standard deviation)
            or `None` (divide by 255).

    Returns:
        A dict `{"mean": ..., "std": ...}` of plain lists and floats (JSON
        ready, e.g. for `keras-resnet export --preprocessing FILE.json`).

    Example:

    >>> import numpy as np
    >>> cifar_preprocessing({"channel_mean": np.array([125.3, 123.0, 113.9]),
    ...                      "channel_std": np.array([63.0, 62.1, 66.7])}, "channel")["std"]
    [63.0, 62.1, 66.7]
    """
    _check_choice("normalization", normalization, CIFAR_NORMALIZATIONS)
    if normalization == "pixel":
        mean, std = statistics["pixel_mean"], 255.0
    elif normalization == "channel":
        mean, std = statistics["channel_mean"], statistics["channel_std"]
    else:
        mean, std = (0.0, 0.0, 0.0), 255.0
    return {"mean": np.asarray(mean, np.float64).tolist(), "std": np.asarray(std, np.float64).tolist()}


def _normalization(preprocessing, image_size):
    """Returns `(mean, std, reverse_channels)` of a `preprocessing` value: RGB 0-255 in, model input out."""
    if isinstance(preprocessing, dict):
        unknown = set(preprocessing) - {"mean", "std", "channel_order"}
        if "mean" not in preprocessing or unknown:
            raise ValueError(
                "preprocessing as a dict must have the key 'mean' and may have 'std' and 'channel_order'; "
                f"received keys {sorted(preprocessing)}"
            )
        channel_order = preprocessing.get("channel_order", "rgb")
        _check_choice("preprocessing['channel_order']", channel_order, ("rgb", "bgr"))
        mean = np.asarray(preprocessing["mean"], np.float32)
        if mean.shape not in ((3,), (*image_size, 3)):
            raise ValueError(
                f"preprocessing['mean'] must have shape (3,) or {(*image_size, 3)} (per pixel at the image size); "
                f"received shape {mean.shape}"
            )
        std = np.asarray(preprocessing.get("std", 1.0), np.float32)
        try:
            np.broadcast_to(std, mean.shape)
        except ValueError:
            raise ValueError(
                f"preprocessing['std'] must broadcast to the mean's shape {mean.shape}; received shape {std.shape}"
            ) from None
        if not np.all(std > 0):
            raise ValueError(f"preprocessing['std'] must be positive; received {preprocessing['std']!r}")
        return mean, std, channel_order == "bgr"
    if preprocessing not in PREPROCESSING_MODES:
        raise ValueError(
            "preprocessing must be one of 'caffe', 'tf', None or a dict {'mean': ..., 'std': ...}; "
            f"received {preprocessing!r}"
        )
    if preprocessing == "caffe":
        return np.float32(BGR_MEAN[::-1]), np.float32(1.0), True
    if preprocessing == "tf":
        return np.float32(127.5), np.float32(127.5), False
    return np.float32(0.0), np.float32(1.0), False


def _image_size(model, image_size):
    """The `(height, width)` served images are resized to, checked against the model's input and output."""
    shape = model.input_shape
    if not isinstance(shape, tuple) or len(shape) != 4 or shape[-1] != 3:
        raise ValueError(
            "model must take one batch of RGB images, channels last, input shape (batch, height, width, 3); "
            f"received input shape {shape}"
        )
    if not (isinstance(model.output_shape, tuple) and len(model.output_shape) == 2):
        raise ValueError(
            f"model must output one score per class, shape (batch, classes); received {model.output_shape}"
        )
    fixed = shape[1:3]
    if image_size is None:
        if None in fixed:
            raise ValueError(
                f"image_size must be given as (height, width) for a model with a free input size {fixed}; "
                "received None"
            )
        return fixed
    size = (image_size, image_size) if isinstance(image_size, int) else tuple(image_size)
    valid = len(size) == 2 and all(isinstance(side, int) and not isinstance(side, bool) and side > 0 for side in size)
    if not valid or any(side not in (None, want) for side, want in zip(fixed, size)):
        raise ValueError(
            f"image_size must be two positive integers (height, width) agreeing with the model's input size "
            f"{fixed}; received {image_size!r}"
        )
    return size


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
    if isinstance(top_k, bool) or not isinstance(top_k, int) or not 1 <= top_k <= classes:
        raise ValueError(f"top_k must be an integer from 1 to classes ({classes}); received {top_k!r}")
    return top_k


def _checked(valid, value, placeholder, message, received):
    """Returns `value` where the scalar `valid` holds, else fails with `InvalidArgumentError: message received`.

    The assertion is the failing branch of a `tf.cond` that returns `placeholder` (a well-formed stand-in)
    instead of `value`: no later op sees a malformed input, so TensorFlow's graph optimiser, which knows the
    served shapes, cannot raise a shape error of its own before the assertion runs.
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
        tf.reduce_all(
            [tf.equal(tf.rank(images), 4), tf.reduce_all(tf.equal(shape[-1:], 3)), tf.reduce_all(shape > 0)]
        ),
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
    head = tf.strings.join([image_bytes, b"\0" * max(offset + len(magic) for offset, magic in IMAGE_MAGIC)])
    known = tf.zeros_like(image_bytes, tf.bool)
    for offset, magic in IMAGE_MAGIC:
        known |= tf.equal(tf.strings.substr(head, offset, len(magic)), magic)
    return _checked(
        tf.reduce_all(known),
        image_bytes,
        tf.zeros((0,), tf.string),
        "image_bytes must hold encoded JPEG, PNG, GIF, BMP or WebP images; received undecodable bytes at batch "
        "positions",
        tf.where(~known)[:, 0],
    )


def _resize(images, image_size, crop_to_aspect_ratio):
    """Resizes float images (one or a batch) to `image_size` unless they have that size already."""
    import tensorflow as tf

    height, width = image_size
    shape = tf.shape(images)
    source_height, source_width = shape[-3], shape[-2]

    def resize():
        cropped = images
        if crop_to_aspect_ratio:
            crop_height = tf.clip_by_value(source_width * height // width, 1, source_height)
            crop_width = tf.clip_by_value(source_height * width // height, 1, source_width)
            cropped = tf.image.crop_to_bounding_box(
                images, (source_height - crop_height) // 2, (source_width - crop_width) // 2, crop_height, crop_width
            )
        return tf.image.resize(cropped, image_size, antialias=True)

    same = tf.logical_and(tf.equal(source_height, height), tf.equal(source_width, width))
    resized = tf.cond(same, lambda: images, resize)
    resized.set_shape(images.shape[:-3].concatenate((height, width, 3)))
    return resized


def _serving_module(model, metadata, normalization):
    """Builds the `tf.Module` whose functions `export_saved_model` saves.

    `metadata` is the dict `export_saved_model` records, `normalization` the
    `(mean, std, reverse_channels)` of its preprocessing.
    """
    import tensorflow as tf

    mean, std, reverse_channels = normalization
    image_size, top_k = tuple(metadata["image_size"]), metadata["top_k"]
    crop_to_aspect_ratio, from_logits = metadata["crop_to_aspect_ratio"], metadata["from_logits"]
    preprocessing = json.dumps(metadata["preprocessing"])
    archive = keras.export.ExportArchive()
    predict = archive.track_and_add_endpoint(
        "predict", model, [tf.TensorSpec((None, *image_size, 3), tf.float32, name="inputs")]
    )
    names = tf.constant(metadata["class_names"])

    def classify(images):
        """float32 RGB 0-255 `(batch, height, width, 3)` at `image_size` -> the signature's outputs."""
        inputs = (images - mean) / std
        if reverse_channels:
            inputs = inputs[..., ::-1]
        scores = tf.cast(predict(inputs), tf.float32)
        probabilities = tf.nn.softmax(scores) if from_logits else scores
        top_scores, top_indices = tf.math.top_k(probabilities, k=top_k)
        return {
            "probabilities": probabilities,
            "top_k_indices": top_indices,
            "top_k_scores": top_scores,
            "top_k_classes": tf.gather(names, top_indices),
        }

    @tf.function(input_signature=[tf.TensorSpec(None, tf.uint8, name="images")], autograph=False)
    def serve(images):
        images = tf.cast(_check_images(images), tf.float32)
        return classify(_resize(images, image_size, crop_to_aspect_ratio))

    @tf.function(input_signature=[tf.TensorSpec(None, tf.string, name="image_bytes")], autograph=False)
    def serve_bytes(image_bytes):
        def decode(encoded):
            image = tf.io.decode_image(encoded, channels=3, expand_animations=False)
            return _resize(tf.cast(image, tf.float32), image_size, crop_to_aspect_ratio)

        images = tf.map_fn(
            decode, _check_image_bytes(image_bytes), fn_output_signature=tf.TensorSpec((*image_size, 3), tf.float32)
        )
        return classify(images)

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
    module.metadata = metadata
    return module


def export_saved_model(
    model,
    export_dir,
    *,
    preprocessing=None,
    class_names=None,
    top_k=None,
    image_size=None,
    crop_to_aspect_ratio=False,
    from_logits=False,
):
    """Writes a SavedModel that classifies raw images with the model's own preprocessing.

    See the module docstring for the signatures (`serving_default` on uint8
    images, `serving_bytes` on encoded images, `metadata`) and the files.
    A consumer needs TensorFlow only.

    Args:
        model: a `keras.Model` taking `(batch, height, width, 3)` images and
            returning `(batch, classes)` scores, e.g. `ResNet50(...)`.
        export_dir: folder to write (created; an existing SavedModel in it
            is overwritten).
        preprocessing: what turns RGB pixels in [0, 255] into the model's
            input: `"caffe"` (RGB to BGR, subtract the ImageNet channel
            means: `keras_resnet.preprocess_input`, ResNet v1 ImageNet
            weights), `"tf"` (scale to [-1, 1]: ResNet v2 weights), a dict
            `{"mean": ..., "std": ..., "channel_order": "rgb" | "bgr"}` on the
            0-255 scale, RGB order, with a mean of shape `(3,)` or
            `(height, width, 3)`, std a scalar or broadcastable to it
            (default 1) and channel order `"rgb"` (default) or `"bgr"`
            (reversed after normalising), e.g. from `cifar_preprocessing`;
            or `None`: the model takes 0-255 pixels as they are.
        class_names: one string per class, in class-id order; defaults to
            `"0"`, `"1"`, ...
        top_k: how many best classes the signatures return; defaults to
            5, or the number of classes if fewer.
        image_size: `(height, width)` (or one int) served images are
            resized to; defaults to the model's input size, and is required
            for a model built with a free spatial size (`None`).
        crop_to_aspect_ratio: when resizing, first centre-crop to the
            model's aspect ratio (no distortion, loses borders); `False`
            stretches the whole image.
        from_logits: the model outputs logits (`classifier_activation=None`):
            the signatures apply a softmax.

    Returns:
        The dict written as `assets/metadata.json`.

    Raises:
        ValueError: an argument is not one of its allowed values; the
            message names it, says what is allowed and what was received.

    Example:

    ```python
    model = keras_resnet.ResNet20(input_shape=(32, 32, 3), classes=10)
    keras_resnet.export.export_saved_model(
        model, "resnet20_serving", preprocessing={"mean": [125.3, 123.0, 113.9], "std": 255.0},
        class_names=["airplane", "automobile", "bird", "cat", "deer",
                     "dog", "frog", "horse", "ship", "truck"],
    )
    # Anywhere with TensorFlow only:
    serving = tf.saved_model.load("resnet20_serving")
    outputs = serving.signatures["serving_default"](images=tf.zeros((1, 32, 32, 3), tf.uint8))
    outputs["top_k_classes"]  # shape (1, 5), strings
    ```
    """
    import tensorflow as tf

    _check_choice("crop_to_aspect_ratio", crop_to_aspect_ratio, (True, False))
    _check_choice("from_logits", from_logits, (True, False))
    image_size = _image_size(model, image_size)
    classes = model.output_shape[-1]
    class_names = _class_names(class_names, classes)
    top_k = _top_k(top_k, classes)
    normalization = _normalization(preprocessing, image_size)
    if isinstance(preprocessing, dict):
        preprocessing = {key: np.asarray(value).tolist() for key, value in preprocessing.items()}
    from keras_resnet._version import __version__

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
    module = _serving_module(model, metadata, normalization)
    with tempfile.TemporaryDirectory() as assets:
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
            os.fspath(export_dir),
            signatures={
                "serving_default": module.serve,
                "serving_bytes": module.serve_bytes,
                "metadata": module.metadata,
            },
        )
    return metadata


def add_export_command(commands):
    """Adds the `export` subcommand to the `keras-resnet` command line.

    `keras-resnet export (--checkpoint FILE.keras | --model NAME [--weights W]) --output DIR [options]`
    runs `export_saved_model` on a `.keras` checkpoint (loaded with
    `safe_mode=True`, without its optimizer) or on a model of
    `keras_resnet.MODELS` built with `--weights`.

    Args:
        commands: what `argparse.ArgumentParser.add_subparsers()` returned.
            The subcommand sets `run`: run it as `args.run(args)`.

    Returns:
        The `export` subparser.

    Example:

    ```python
    parser = argparse.ArgumentParser(prog="keras-resnet")
    add_export_command(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["export", "--checkpoint", "runs/resnet20-shapes/best.keras",
                              "--output", "serving/resnet20", "--preprocessing", "tf"])
    args.run(args)
    ```
    """
    parser = commands.add_parser(
        "export",
        help="write a SavedModel that classifies raw images (TensorFlow Serving, saved_model_cli, TFSMLayer)",
        description="Write a TensorFlow SavedModel whose signatures take raw images (uint8 arrays or encoded "
                    "JPEG/PNG bytes), apply the model's preprocessing and return probabilities and the top-k "
                    "classes. Consumers need TensorFlow only.",
    )
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--checkpoint", metavar="FILE", help="a .keras file, e.g. runs/resnet20-shapes/best.keras")
    source.add_argument("--model", metavar="NAME", help="a model name such as resnet50 (see --weights)")
    parser.add_argument("--weights", help="with --model: 'imagenet' or a weights file (default: random weights)")
    parser.add_argument("--output", required=True, metavar="DIR", help="folder to write the SavedModel to")
    parser.add_argument(
        "--preprocessing", default="none", metavar="MODE",
        help="caffe, tf, none, or a JSON file {\"mean\": ..., \"std\": ..., \"channel_order\": ...} "
             "(see keras_resnet.export.cifar_preprocessing) (default: %(default)s)",
    )
    parser.add_argument("--class-names", metavar="FILE",
                        help="text file with one class name per line, in class-id order (default: 0, 1, ...)")
    parser.add_argument("--top-k", type=int, metavar="K", help="how many best classes to return (default: 5)")
    parser.add_argument("--image-size", type=int, metavar="SIDE",
                        help="side served images are resized to (default: the model's input size)")
    parser.add_argument("--crop-to-aspect-ratio", action="store_true",
                        help="centre-crop to the model's aspect ratio before resizing, instead of stretching")
    parser.add_argument("--from-logits", action="store_true", help="the model outputs logits: apply a softmax")
    parser.set_defaults(run=export_command)
    return parser


def export_command(args):
    """Runs `keras-resnet export` on the parsed arguments of `add_export_command`; prints what it wrote."""
    if args.checkpoint:
        if args.weights:
            raise ValueError(f"--weights goes with --model; received --weights {args.weights} with --checkpoint")
        if not os.path.isfile(args.checkpoint):
            raise ValueError(f"--checkpoint must be an existing .keras file; received {args.checkpoint!r}")
        model = keras.saving.load_model(args.checkpoint, compile=False, safe_mode=True)
    else:
        from keras_resnet.models import get_model

        model = get_model(args.model, weights=args.weights)
    if args.preprocessing.endswith(".json"):
        with open(args.preprocessing, encoding="utf-8") as file:
            preprocessing = json.load(file)
    else:
        preprocessing = None if args.preprocessing == "none" else args.preprocessing
    class_names = None
    if args.class_names:
        with open(args.class_names, encoding="utf-8") as file:
            class_names = file.read().splitlines()
    metadata = export_saved_model(
        model,
        args.output,
        preprocessing=preprocessing,
        class_names=class_names,
        top_k=args.top_k,
        image_size=args.image_size,
        crop_to_aspect_ratio=args.crop_to_aspect_ratio,
        from_logits=args.from_logits,
    )
    height, width = metadata["image_size"]
    print(
        f"wrote {args.output}: signatures serving_default (images: uint8 [batch, height, width, 3]), "
        f"serving_bytes (image_bytes: encoded images [batch]) and metadata; served at {height}x{width}, "
        f"{len(metadata['class_names'])} classes, top {metadata['top_k']}"
    )
