"""Weights: keras.applications' ImageNet files, user files, and exact conversion between layouts.

keras.applications' v1 networks put a bias on every convolution and use BN epsilon 1.001e-5;
ours have no bias before BN (the paper) and epsilon 1e-5. `set_matching_weights` folds the
bias into the BN mean and the epsilon into the variance: the same function.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import re
import warnings
from collections.abc import Callable, Mapping

import h5py
import keras
import numpy as np

from keras_resnet._validation import check_choice as _check_choice
from keras_resnet._validation import check_model as _check_model
from keras_resnet.models import shipped
from keras_resnet.models.architectures import ARCHITECTURES, Architecture

BASE_WEIGHTS_PATH = "https://storage.googleapis.com/tensorflow/keras-applications/resnet/"

# The published keras.applications files: (with top, without top) md5.
WEIGHTS_HASHES = {
    "resnet50": ("2cb95161c43110f7111970584f804107", "4d473c1dd8becc155b73f8504c6f6626"),
    "resnet101": ("f1aeb4b969a6efcfb50fad2f0c20cfc5", "88cf7a10940856eca736dc7b7e228a21"),
    "resnet152": ("100835be76be38e30d865e96f2aaae62", "ee4c566cf9a93f14d82f913c2dc6dd0c"),
    "resnet50v2": ("3ef43a0b657b3be2300d5770ece849e0", "fac2f116257151a9d068a22e544a4917"),
    "resnet101v2": ("6343647c601c52e1368623803854d971", "c0ed64b8031c3730f411d2eb4eea35b5"),
    "resnet152v2": ("a49b44d1979771252814e80f8ec446f9", "ed17cf2e0169df9d443503ef94b23b33"),
}

# keras.applications constructor of each counterpart.
KERAS_APPLICATIONS = {
    "resnet50": "ResNet50",
    "resnet101": "ResNet101",
    "resnet152": "ResNet152",
    "resnet50v2": "ResNet50V2",
    "resnet101v2": "ResNet101V2",
    "resnet152v2": "ResNet152V2",
}

# The layout a network must have to be the keras.applications counterpart.
_V1_LAYOUT = dict(preact=False, plain=False, shortcut="B", stride_in="1x1", downsample_at="first")
_V2_LAYOUT = dict(preact=True, plain=False, shortcut="B", downsample_at="last")


def has_imagenet_weights(architecture: str, preact: bool = False) -> bool:
    """Whether keras.applications publishes ImageNet weights for a network.

    Args:
        architecture: a name of `ARCHITECTURES`, e.g. `"resnet50"`.
        preact: the pre-activation (v2) variant.

    Returns:
        bool.

    Example:

    >>> has_imagenet_weights("resnet50"), has_imagenet_weights("resnet18")
    (True, False)
    """
    if not isinstance(architecture, str):
        raise TypeError(f"architecture must be a name such as 'resnet50'; received {architecture!r}")
    return _weights_name(architecture, preact) in WEIGHTS_HASHES


def _weights_name(architecture, preact):
    # The one place of the "v2" naming rule: keras.applications' and this library's names.
    return f"{architecture}{'v2' if preact else ''}"


def counterpart(arch: Architecture, layout: dict) -> str | None:
    """The key of `KERAS_APPLICATIONS` whose model has the weights of this architecture and layout, or `None`."""
    names = [name for name, candidate in ARCHITECTURES.items() if candidate == arch]
    if not names:
        return None
    reference = _V2_LAYOUT if layout.get("preact") else _V1_LAYOUT
    if any(layout.get(key) != value for key, value in reference.items()):
        return None
    name = _weights_name(names[0], layout.get("preact", False))
    return name if name in KERAS_APPLICATIONS else None


@dataclasses.dataclass(frozen=True)
class WeightsSource:
    """A resolved `weights` argument: a file, the keras.applications twin it may come from, its preprocessing."""

    path: str
    counterpart_name: str | None = None
    preprocessing: dict | None = None


def resolve(
    weights: str | os.PathLike | None, *, arch: Architecture, include_top: bool, classes: int, layout: dict
) -> WeightsSource | None:
    """Validates the `weights` argument of a builder before the model is built.

    Args:
        weights: `None`, `"imagenet"`, a name of `shipped.DATASET_NAMES` (`"cifar10"`: the
            ResNet-20 weights shipped in the package) or a path.
        arch: the `Architecture` being built.
        include_top: whether the classifier is built.
        classes: classifier width.
        layout: the builder's switches (`preact`, `plain`, `shortcut`,
            `stride_in`, `downsample_at`).

    Returns:
        `None` or a `WeightsSource`.
    """
    twin = counterpart(arch, layout)
    if weights is None:
        return None
    if isinstance(weights, str) and weights == "imagenet":
        if twin is None:
            raise ValueError(
                "weights='imagenet' is available for ResNet50/101/152 and their V2 with the "
                "keras.applications layout (shortcut='B', stride_in='1x1', no plain); this network "
                "has no published Keras ImageNet weights. Use weights=None or the path of a weights file."
            )
        if include_top and classes != 1000:
            raise ValueError(
                "classes must be 1000 when loading weights='imagenet' with include_top=True; "
                f"received classes={classes}"
            )
        return WeightsSource(imagenet_weights_path(twin, include_top), twin)
    if isinstance(weights, str) and weights in shipped.DATASET_NAMES:
        name = next((key for key, candidate in ARCHITECTURES.items() if candidate == arch), None)
        entry = shipped.check(weights, architecture=name, layout=layout, include_top=include_top, classes=classes)
        return WeightsSource(entry.path, preprocessing=entry.preprocessing)
    if isinstance(weights, (str, os.PathLike)):
        path = os.fspath(weights)
        if not os.path.isfile(path):
            raise ValueError(
                "weights must be None, 'imagenet' or the path of an existing weights file; "
                f"received weights={path!r}, which does not exist"
            )
        return WeightsSource(path, twin)
    raise ValueError(f"weights must be None, 'imagenet' or a file path; received {weights!r}")


def _keras_home():
    # The same rule as Keras, read at call time so KERAS_HOME set later counts.
    return os.environ.get("KERAS_HOME") or os.path.join(os.path.expanduser("~"), ".keras")


def file_digest(path: str | os.PathLike, algorithm: str = "md5") -> str:
    """The hex digest of a file, read in 1 MiB chunks (`algorithm`: a `hashlib` name, e.g. "md5", "sha256")."""
    digest = hashlib.new(algorithm)
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def imagenet_weights_path(name: str, include_top: bool = True) -> str:
    """Path of a keras.applications ImageNet weights file (its file, URL and md5), downloaded if needed.

    Args:
        name: a key of `KERAS_APPLICATIONS`, e.g. `"resnet50"` or `"resnet50v2"`.
        include_top: the file with the classifier, or the `_notop` one.

    Returns:
        Local path of the verified file, in Keras' cache (reused from keras.applications).

    Raises:
        ValueError: a cached file whose hash does not match.
        OSError: not cached and offline; the message says which file to put where.

    Example:

    >>> path = imagenet_weights_path("resnet50", include_top=False)  # doctest: +SKIP
    >>> os.path.basename(path)  # doctest: +SKIP
    'resnet50_weights_tf_dim_ordering_tf_kernels_notop.h5'
    """
    _check_choice("name", name, WEIGHTS_HASHES)
    file_name = f"{name}_weights_tf_dim_ordering_tf_kernels{'' if include_top else '_notop'}.h5"
    file_hash = WEIGHTS_HASHES[name][0 if include_top else 1]
    return cached_file(
        file_name,
        BASE_WEIGHTS_PATH + file_name,
        file_hash,
        description="the ImageNet weights",
        alternative=", or pass weights='/path/to/that/file'",
    )


def cached_file(
    file_name: str,
    url: str,
    file_hash: str | None,
    *,
    description: str,
    alternative: str = "",
    verify_cached: bool = True,
    algorithm: str = "md5",
) -> str:
    """A file from Keras's cache (`$KERAS_HOME/models`), downloaded if absent, checked against its hash.

    Args:
        file_name: name of the file in the cache.
        url: where to download it from.
        file_hash: its hex digest, or a leading part of it (torch.hub names files with a sha256 prefix),
            or `None` where the source publishes none (nothing is checked).
        description: what the file is, for error messages.
        alternative: text appended to the offline message (another way out).
        verify_cached: check the hash of a file already in the cache (a fresh download is always checked).
        algorithm: the `hashlib` name of `file_hash`'s digest.

    Returns:
        Local path of the file.

    Raises:
        ValueError: a file whose hash does not match.
        OSError: the file is not cached and cannot be downloaded (offline);
            the message says which file to put where.

    Example:

    >>> cached_file("imagenet_class_index.json",  # doctest: +SKIP
    ...             "https://storage.googleapis.com/download.tensorflow.org/data/imagenet_class_index.json",
    ...             "c2c37ea517e94d9795004a39431a14cb", description="the ImageNet class index")
    """
    cache_dir = _keras_home()
    cached = os.path.join(cache_dir, "models", file_name)
    if not os.path.exists(cached):
        try:
            keras.utils.get_file(file_name, url, cache_subdir="models", cache_dir=cache_dir)
        except Exception as error:  # Keras raises a bare Exception on network failures.
            raise OSError(
                f"Could not download {description}, file {file_name} ({error}). Offline, download "
                f"{url} elsewhere and put it at {cached} (the Keras cache; set KERAS_HOME to move it)"
                f"{alternative}."
            ) from error
    elif not verify_cached:
        return cached
    if file_hash is not None:
        actual = file_digest(cached, algorithm)
        if not actual.startswith(file_hash):
            raise ValueError(
                f"The cached file {cached} ({description}) has {algorithm} {actual}, expected {file_hash}"
                f"{'...' if len(file_hash) < len(actual) else ''}: it is corrupt or truncated, or another file. "
                "Delete it (or replace it with the genuine file) and retry."
            )
    return cached


def load_weights(model: keras.Model, source: str | os.PathLike | WeightsSource) -> None:
    """Loads a weights file into a keras_resnet model, converting if needed.

    Accepted files: this library's own `model.save_weights(...)` files, and those of the
    matching keras.applications model (the published ImageNet `.h5` files or
    `keras.applications.<Model>(weights=None).save_weights()` files), which Keras loads into
    that model and `transfer_weights` converts exactly. Nothing is loaded unless every layer
    matches.

    Args:
        model: a model built by `keras_resnet`.
        source: a file path (or a `WeightsSource`).

    Raises:
        ValueError: the file is not a readable weights file, holds NaN or infinite values, or
            was saved from another architecture (the message says where it differs). The
            model is left unchanged.

    Example:

    >>> import tempfile, os, keras_resnet
    >>> model = keras_resnet.ResNet20()
    >>> path = os.path.join(tempfile.mkdtemp(), "r20.weights.h5")
    >>> model.save_weights(path)
    >>> keras_resnet.load_weights(keras_resnet.ResNet20(), path)
    """
    _check_model("model", model)
    if not isinstance(source, WeightsSource):
        source = WeightsSource(os.fspath(source), None)
    path = source.path
    try:
        h5py.File(path, "r").close()
    except OSError as error:
        raise ValueError(f"weights must be a Keras weights file (HDF5); could not read {path!r}: {error}") from None
    problem = _load_whole(model, path)
    if problem is None:
        return
    twin = source.counterpart_name
    if twin is not None:
        reference = _build_counterpart(twin, model)
        if _load_whole(reference, path) is None:
            transfer_weights(reference, model)
            return
    raise ValueError(
        f"The weights file {path} does not match model '{model.name}'"
        + (f" nor keras.applications {KERAS_APPLICATIONS[twin]}" if twin else "")
        + f"; nothing was loaded. {problem}"
    )


def _load_whole(model, path):
    """`model.load_weights(path)`, all or nothing: `None`, or why the file does not fit (the model unchanged).

    Raises:
        ValueError: the file holds NaN or infinite values (HDF5 keeps no checksum: the one sign
            of damage left to see).
    """
    before = model.get_weights()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # Keras warns once per layer before its own error.
            model.load_weights(path)
    except Exception as error:  # Keras raises ValueError, KeyError or OSError by format.
        model.set_weights(before)
        # Keras' message prints the variable's values after "Target variable": its first lines say what.
        lines = [line for line in str(error).splitlines() if line.strip()][:2]
        return re.sub(r"\s*Target variable:.*", "", " ".join(lines)) or type(error).__name__
    for layer in model.layers:
        values = [np.asarray(w) for w in layer.get_weights()]
        if not all(np.all(np.isfinite(v)) for v in values if np.issubdtype(v.dtype, np.floating)):
            model.set_weights(before)
            raise ValueError(f"weights file {path!r} is corrupt: layer {layer.name!r} holds NaN or infinite values")
    return None


def _build_counterpart(name, model):
    builder = getattr(keras.applications, KERAS_APPLICATIONS[name])
    include_top = any(layer.name == "predictions" for layer in model.layers)
    kwargs = dict(weights=None, include_top=include_top)
    if include_top:
        kwargs["classes"] = model.get_layer("predictions").units
    else:
        kwargs["input_shape"] = (
            (None, None, 3) if keras.config.image_data_format() == "channels_last" else (3, None, None)
        )
    return builder(**kwargs)


def transfer_weights(source: keras.Model, target: keras.Model) -> None:
    """Copies weights from a keras.applications ResNet (or a keras_resnet one) into a keras_resnet model.

    Layers are matched by name; the result computes the same function as `source` (see
    `set_matching_weights`: biases folded into BN, epsilons absorbed).

    Args:
        source: a built keras.applications ResNet (or keras_resnet) model.
        target: the keras_resnet model to fill; same layer names.

    Raises:
        ValueError: layers that do not match, before anything is assigned.

    Example:

    >>> import keras, keras_resnet
    >>> reference = keras.applications.ResNet50(weights=None, include_top=False, input_shape=(64, 64, 3))
    >>> model = keras_resnet.ResNet50(include_top=False, input_shape=(64, 64, 3))
    >>> keras_resnet.transfer_weights(reference, model)
    """
    _check_model("source", source)
    _check_model("target", target)
    weighted = [layer for layer in source.layers if layer.weights]
    set_matching_weights(
        target,
        {layer.name: layer.get_weights() for layer in weighted},
        description=f"of '{source.name}'",
        source_epsilon={layer.name: layer.epsilon for layer in weighted if hasattr(layer, "epsilon")},
    )


def set_matching_weights(
    model: keras.Model,
    groups: Mapping[str, list],
    *,
    description: str,
    source_name: Callable[[str], str | None] | None = None,
    source_epsilon: float | Mapping[str, float] = 1e-5,
    ignore: tuple[str, ...] = (),
) -> None:
    """Sets every weighted layer of `model` from `groups`, or nothing when anything does not match.

    The values are converted so the model computes the source's function: a convolution bias
    the model does not have is folded into the following BN's moving mean (v1 networks have
    no bias before BN), a missing one is zero, and BN variances absorb the difference of
    epsilons.

    Args:
        model: a keras_resnet model.
        groups: `{source layer: [arrays in Keras order]}`.
        description: what the source is, for the error message ("The weights {description} ...").
        source_name: maps a model layer name to its source layer name (`None`: none); the
            same name by default.
        source_epsilon: the source's BN epsilon, or one per source layer name.
        ignore: source layers that may stay unused (a classifier under `include_top=False`).

    Raises:
        ValueError: the layers that did not match; the model is unchanged.
    """
    source_name = source_name or (lambda name: name)
    problems, values, used, folded = [], {}, set(), {}
    for layer in model.layers:
        if not layer.weights:
            continue
        name = source_name(layer.name)
        if name not in groups:
            problems.append(f"{layer.name}: no tensor {name or ''} in the weights".replace("  ", " "))
            continue
        used.add(name)
        if any(array is None for array in groups[name]):
            problems.append(f"{layer.name}: {name} in the weights lacks some of its tensors")
            continue
        arrays = [np.asarray(array, np.float32) for array in groups[name]]
        if isinstance(layer, keras.layers.BatchNormalization) and len(arrays) == 4:
            epsilon = source_epsilon if isinstance(source_epsilon, float) else source_epsilon[name]
            arrays[2] = arrays[2] - folded.pop(layer.name, 0.0)
            arrays[3] = arrays[3] + (epsilon - layer.epsilon)
            if np.any(arrays[3] < 0):
                problems.append(f"{layer.name}: bn_epsilon {layer.epsilon} exceeds a variance of {name}")
                continue
        elif isinstance(layer, keras.layers.Conv2D) and len(arrays) == 2 and not layer.use_bias:
            bn_name = layer.name.removesuffix("_conv") + "_bn" if layer.name.endswith("_conv") else None
            follows = isinstance(_find(model, bn_name), keras.layers.BatchNormalization)
            if not follows:
                problems.append(f"{layer.name}: {name} in the weights has a bias and no BN follows in the model")
                continue
            folded[bn_name] = arrays.pop()
        elif isinstance(layer, keras.layers.Conv2D) and len(arrays) == 1 and layer.use_bias:
            arrays.append(np.zeros(layer.filters, np.float32))
        want = [tuple(w.shape) for w in layer.weights]
        have = [tuple(a.shape) for a in arrays]
        if want != have:
            problems.append(f"{layer.name}: the model has shapes {want}, {name} in the weights {have}")
            continue
        values[layer.name] = arrays
    problems.extend(f"{name}: in the weights but not in the model" for name in sorted(set(groups) - used - set(ignore)))
    if problems:
        listed = "\n  ".join(problems[:12]) + ("\n  ..." if len(problems) > 12 else "")
        raise ValueError(
            f"The weights {description} do not match model '{model.name}'; nothing was loaded. "
            f"{len(problems)} layer(s) did not match:\n  {listed}"
        )
    for name, arrays in values.items():
        model.get_layer(name).set_weights(arrays)


def _find(model, name):
    try:
        return model.get_layer(name)
    except ValueError:
        return None
