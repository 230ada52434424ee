"""Weights: ImageNet files of keras.applications, user files, exact conversion.

keras.applications' ResNet50/101/152 put a bias on every convolution and use
BatchNormalization epsilon 1.001e-5; this library's v1 networks have no bias
before BN (as in the paper) and epsilon 1e-5. Conversion is exact: the bias
is folded into the BN moving mean and the variance absorbs the epsilon
difference, so the converted model computes the same function.
"""

import hashlib
import os

import h5py
import keras
import numpy as np

from keras_resnet import _keras_compat
from keras_resnet._validation import check_choice as _check_choice
from keras_resnet._validation import check_model as _check_model
from keras_resnet.models.architectures import ARCHITECTURES

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


def has_imagenet_weights(architecture, preact=False):
    """Whether keras.applications publishes ImageNet weights for a network.

    Args:
        architecture: a name of `ARCHITECTURES`, e.g. `"resnet50"`; other
            names (`"plain20"`) have no published weights.
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
    return f"{architecture}{'v2' if preact else ''}"


def counterpart(arch, layout):
    """The keras.applications model name matching an architecture and layout.

    Returns `None` when keras.applications has no model with the same
    weights (ResNet18/34, CIFAR networks, plain nets, options A or C, ...).
    """
    names = [name for name, candidate in ARCHITECTURES.items() if candidate == arch]
    if not names:
        return None
    reference = _V2_LAYOUT if layout.get("preact") else _V1_LAYOUT
    if any(layout.get(key) != value for key, value in reference.items()):
        return None
    name = _weights_name(names[0], layout.get("preact", False))
    return name if name in KERAS_APPLICATIONS else None


class WeightsSource:
    """A resolved `weights` argument: a file and, if any, its keras.applications twin."""

    def __init__(self, path, counterpart_name):
        self.path = path
        self.counterpart_name = counterpart_name


def resolve(weights, *, arch, include_top, classes, layout):
    """Validates the `weights` argument of a builder before the model is built.

    Args:
        weights: `None`, `"imagenet"` or a path.
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


def file_digest(path, algorithm="md5"):
    """The hex digest of a file, read in 1 MiB chunks (`algorithm`: a `hashlib` name, e.g. "md5", "sha256")."""
    digest = hashlib.new(algorithm)
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def imagenet_weights_path(name, include_top=True):
    """Path of a keras.applications ImageNet weights file, downloaded if needed.

    The file, URL and md5 are those keras.applications uses, and Keras's cache
    (`$KERAS_HOME/models`, default `~/.keras/models`) is honoured, so a file
    keras.applications already downloaded is reused.

    Args:
        name: `"resnet50"`, `"resnet101"`, `"resnet152"` or their `"...v2"`.
        include_top: the file with the classifier, or the `_notop` one.

    Returns:
        Local path of the verified file.

    Raises:
        ValueError: a cached file whose hash does not match (corrupt or
            truncated).
        OSError: the file is not cached and cannot be downloaded (offline);
            the message says which file to put where.

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


def cached_file(file_name, url, file_hash, *, description, alternative="", verify_cached=True, algorithm="md5"):
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


def load_weights(model, source):
    """Loads a weights file into a keras_resnet model, converting if needed.

    Accepted files: this library's own `model.save_weights(...)` files, and
    files of the matching keras.applications model (the published ImageNet
    `.h5` files or `keras.applications.<Model>(weights=None).save_weights()`
    files), converted exactly. Nothing is loaded unless every layer matches.

    Args:
        model: a model built by `keras_resnet`.
        source: a `WeightsSource` or a file path.

    Raises:
        ValueError: the file is not a readable weights file, holds NaN or
            infinite values, or was saved from another architecture; the
            message names the layers that did not match. The model is left
            unchanged.

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
    groups = _read_weight_groups(source.path)
    own_expected = _expected_groups(model, groups.legacy)
    own = _mismatches(own_expected, groups)
    if not own:
        _assign(model, groups, own_expected)
        return
    if source.counterpart_name is not None:
        reference = _build_counterpart(source.counterpart_name, model)
        expected = _expected_groups(reference, groups.legacy)
        if not _mismatches(expected, groups):
            _assign(reference, groups, expected)
            transfer_weights(reference, model)
            return
    listed = "\n  ".join(own[:12]) + ("\n  ..." if len(own) > 12 else "")
    raise ValueError(
        f"The weights file {source.path} does not match model '{model.name}'"
        + (f" nor keras.applications {KERAS_APPLICATIONS[source.counterpart_name]}" if source.counterpart_name else "")
        + f"; nothing was loaded. The file has {len(groups)} layers with weights, the model "
        f"{len(own_expected)}; {len(own)} layer(s) did not match:\n  {listed}"
    )


class _Groups(dict):
    """Arrays of a weights file by key; `legacy` files key by layer name."""

    legacy = False


def _read_weight_groups(path):
    try:
        handle = h5py.File(path, "r")
    except OSError as error:
        raise ValueError(f"weights must be a Keras weights file (HDF5); could not read {path!r}: {error}") from None
    groups = _Groups()
    try:
        with handle as f:
            root = f.get("model_weights", f)
            if "layer_names" in root.attrs:  # Keras 2 / keras.applications format.
                groups.legacy = True
                for raw in root.attrs["layer_names"]:
                    name = raw.decode() if isinstance(raw, bytes) else raw
                    group = root[name]
                    names = [n.decode() if isinstance(n, bytes) else n for n in group.attrs["weight_names"]]
                    if names:
                        groups[name] = [np.asarray(group[n]) for n in names]
            elif "layers" in root:  # Keras 3 `.weights.h5` format.
                for key, group in root["layers"].items():
                    if "vars" in group and len(group["vars"]):
                        variables = group["vars"]
                        groups[key] = [np.asarray(variables[str(i)]) for i in range(len(variables))]
            else:
                raise ValueError(f"weights file {path!r} holds no Keras layer weights")
    except (KeyError, OSError) as error:
        raise ValueError(f"weights file {path!r} is corrupt or truncated: {error}") from None
    # HDF5 keeps no checksum of the values: NaN or infinity is the one sign of damage left to see.
    for key, arrays in groups.items():
        if not all(np.all(np.isfinite(array)) for array in arrays if np.issubdtype(array.dtype, np.floating)):
            raise ValueError(f"weights file {path!r} is corrupt: layer {key!r} holds NaN or infinite values")
    return groups


def _expected_groups(model, legacy):
    """{key: layer} as a file of `model` keys them (layer names, or Keras 3's class counters)."""
    expected, seen = {}, {}
    for layer in model.layers:
        if legacy:
            key = layer.name
        else:
            base = _keras_compat.saving_class_key(type(layer).__name__)
            count = seen.get(base, 0)
            seen[base] = count + 1
            key = base if count == 0 else f"{base}_{count}"
        if layer.weights:
            expected[key] = layer
    return expected


def _mismatches(expected, groups):
    problems = []
    for key, layer in expected.items():
        if key not in groups:
            problems.append(f"{layer.name}: missing from the file")
            continue
        want = [tuple(w.shape) for w in layer.weights]
        have = [tuple(a.shape) for a in groups[key]]
        if want != have:
            problems.append(f"{layer.name}: the model has shapes {want}, the file {have}")
    extra = sorted(set(groups) - set(expected))
    problems.extend(f"{key}: in the file but not in the model" for key in extra)
    return problems


def _assign(model, groups, expected):
    for key, layer in expected.items():
        layer.set_weights(groups[key])


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


def transfer_weights(source, target):
    """Copies weights from a keras.applications ResNet into a keras_resnet one.

    Layers are matched by name. A convolution bias that the target does not
    have (no bias before BN) is folded into the following BN's moving mean;
    BN variances absorb the difference of epsilons. The result computes the
    same function as `source`.

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
    source_layers = {layer.name: layer for layer in source.layers if layer.weights}
    problems, values, folded = [], {}, {}
    for layer in target.layers:
        if not layer.weights:
            continue
        src = source_layers.pop(layer.name, None)
        if src is None:
            problems.append(f"{layer.name}: missing from the source")
            continue
        arrays = [np.asarray(w) for w in src.get_weights()]
        if isinstance(layer, keras.layers.BatchNormalization):
            gamma, beta, mean, variance = arrays
            mean = mean - folded.pop(layer.name, 0.0)
            variance = variance + (src.epsilon - layer.epsilon)
            if np.any(variance < 0):
                problems.append(f"{layer.name}: epsilon {layer.epsilon} exceeds the source's variance")
            arrays = [gamma, beta, mean, variance]
        elif isinstance(layer, keras.layers.Conv2D) and len(arrays) == 2 and not layer.use_bias:
            bn_name = layer.name[: -len("_conv")] + "_bn" if layer.name.endswith("_conv") else None
            if bn_name is None or not isinstance(_find(target, bn_name), keras.layers.BatchNormalization):
                problems.append(f"{layer.name}: source has a bias and no BN follows in the target")
                continue
            folded[bn_name] = arrays.pop()
        elif isinstance(layer, keras.layers.Conv2D) and len(arrays) == 1 and layer.use_bias:
            arrays.append(np.zeros(layer.filters, arrays[0].dtype))
        want = [tuple(w.shape) for w in layer.weights]
        have = [tuple(a.shape) for a in arrays]
        if want != have:
            problems.append(f"{layer.name}: the target has shapes {want}, the source {have}")
            continue
        values[layer.name] = arrays
    problems.extend(f"{name}: in the source but not in the target" for name in sorted(source_layers))
    if problems:
        raise ValueError(
            f"Cannot transfer weights from '{source.name}' to '{target.name}'; nothing was loaded. "
            f"{len(problems)} layer(s) did not match:\n  " + "\n  ".join(problems[:12])
        )
    for name, arrays in values.items():
        target.get_layer(name).set_weights(arrays)


def _find(model, name):
    try:
        return model.get_layer(name)
    except ValueError:
        return None
