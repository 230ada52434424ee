"""Pretrained weights of other frameworks, loaded exactly: torchvision, timm, keras-hub, akamaster.

`weights=` of every builder takes a catalog name (`"torchvision_v2"`, `"timm/resnet50.a1_in1k"`, ...) or a
local `.pth`, `.safetensors` or keras-hub preset folder. The weights set the switches they need
(`stride_in="3x3"` for torchvision's "v1.5", ...) and their input pipeline is recorded in the model; a
checkpoint of another network is refused, listing what did not match, before anything is loaded.
"""

import dataclasses
import os

from keras_resnet.models import shipped
from keras_resnet.models import weights as weights_lib
from keras_resnet.models.pretrained import convert
from keras_resnet.models.pretrained.catalog import (
    CATALOG,
    IMAGENET_MEAN,
    IMAGENET_STD,
    LAYOUTS,
    Weights,
    find,
    names_for,
)

__all__ = ["CATALOG", "Weights", "Pretrained", "find", "names_for", "resolve", "load", "weights_path"]

# A local torch file's input pipeline: torchvision's V1 evaluation transform, akamaster's CIFAR-10 normalisation.
_LOCAL_PREPROCESSING = {
    "torch": dict(resize_size=256, crop_size=224, interpolation="bilinear", mean=IMAGENET_MEAN, std=IMAGENET_STD),
    "akamaster": dict(resize_size=32, crop_size=32, interpolation="bilinear", mean=IMAGENET_MEAN, std=IMAGENET_STD),
}


@dataclasses.dataclass
class Pretrained:
    """A resolved `weights=` of another framework: what to build and where the tensors are.

    Args:
        description: the catalog name or the file, for messages.
        layout: a key of `catalog.LAYOUTS`.
        switches: the builder switches the weights need.
        preprocessing: the input pipeline (`resize_size`, `crop_size`, `interpolation`; `mean`, `std` on 0-1).
        classes: classifier width of the weights.
        location: a local file or folder, or `None` until a catalog entry is fetched.
        entry: the catalog row, `None` for a local file.
        state: tensors already read (local torch files are read once, to tell their layout).
    """

    description: str
    layout: str
    switches: dict
    preprocessing: dict
    classes: int
    location: str = None
    entry: Weights = None
    state: dict = None

    @property
    def recorded_preprocessing(self):
        """The `preprocessing` a model built from these weights records: statistics on the 0-255 scale."""
        pipeline = self.preprocessing
        return {
            "mean": [255.0 * m for m in pipeline["mean"]],
            "std": [255.0 * s for s in pipeline["std"]],
            "resize_size": pipeline["resize_size"],
            "crop_size": pipeline["crop_size"],
            "interpolation": pipeline["interpolation"],
        }


def is_pretrained(weights):
    """Whether `weights=` names weights of another framework (a catalog name or such a file)."""
    if not isinstance(weights, (str, os.PathLike)) or weights in ("imagenet", *shipped.DATASET_NAMES):
        return False
    path = os.fspath(weights)
    if os.path.isdir(path) or path.endswith((*convert.TORCH_SUFFIXES, convert.SAFETENSORS_SUFFIX)):
        return True
    return not os.path.exists(path) and not path.endswith((".h5", ".keras"))


def resolve(weights, *, architecture, include_top, classes, switches):
    """Resolves `weights=` of another framework before the model is built.

    Args:
        weights, include_top, classes: the builder's arguments.
        architecture: the network's name in `ARCHITECTURES`, or `None` for a custom one.
        switches: the builder's `preact`, `plain`, `shortcut`, `stride_in`, `downsample_at` and
            `pool_padding` as given (`None`: not given).

    Returns:
        `None` when `weights` is not such a value (`None`, `"imagenet"`, a Keras file), else a
        `Pretrained` whose `switches` are the given ones completed with those the weights need.
    """
    if not is_pretrained(weights):
        return None
    path = os.fspath(weights)
    if architecture is None:
        raise ValueError(
            f"weights={path!r} (weights of another framework) needs one of the named architectures "
            "(ResNet18..152, ResNet20..110); received a custom architecture"
        )
    if os.path.exists(path):
        pretrained = _local(path, architecture, include_top)
    elif path.endswith((*convert.TORCH_SUFFIXES, convert.SAFETENSORS_SUFFIX)):
        raise ValueError(f"weights must be an existing file; received weights={path!r}, which does not exist")
    else:
        entry = find(architecture, path)
        pretrained = Pretrained(path, entry.layout, entry.switches, entry.preprocessing, entry.classes, entry=entry)
    for key, needed in pretrained.switches.items():
        given = switches.get(key)
        if given is not None and given != needed:
            raise ValueError(
                f"{key} must be {needed!r} for weights={pretrained.description!r} (the network they were "
                f"trained as); received {key}={given!r}. Leave {key} unset."
            )
    pretrained.switches = {**{k: v for k, v in switches.items() if v is not None}, **pretrained.switches}
    if include_top and classes != pretrained.classes:
        raise ValueError(
            f"classes must be {pretrained.classes} when loading weights={pretrained.description!r} with "
            f"include_top=True; received classes={classes}. For another number of classes build the "
            "backbone with include_top=False (and pooling='avg') and add your own classifier."
        )
    return pretrained


def _local(path, architecture, include_top):
    if os.path.isdir(path):
        config = convert.keras_hub_config(path)
        if config is None:
            raise ValueError(
                f"weights={path!r} is a folder but not a keras-hub ResNet preset (no config.json of a "
                "ResNetBackbone); pass a preset folder, a .pth / .safetensors file or a Keras weights file"
            )
        _check_keras_hub_config(config, architecture, path)
        layout = "keras_hub_v2" if config.get("use_pre_activation") else "keras_hub"
        preprocessing = convert.keras_hub_preprocessing(path) or _LOCAL_PREPROCESSING["torch"]
        return Pretrained(path, layout, dict(LAYOUTS[layout]), preprocessing, _keras_hub_classes(path), location=path)
    state = convert.read_torch_state(path)
    layout = "akamaster" if "linear.weight" in state else "torch"
    classifier = "linear.weight" if layout == "akamaster" else "fc.weight"
    classes = state[classifier].shape[0] if classifier in state else None
    return Pretrained(
        path,
        layout,
        dict(LAYOUTS[layout]),
        _LOCAL_PREPROCESSING[layout],
        classes,
        location=path,
        state=state,
    )


def _keras_hub_classes(folder):
    path = os.path.join(folder, "task.json")
    if not os.path.isfile(path):
        return None
    import json

    with open(path, encoding="utf-8") as file:
        return json.load(file)["config"].get("num_classes")


def _check_keras_hub_config(config, architecture, path):
    from keras_resnet.models.architectures import ARCHITECTURES

    arch = ARCHITECTURES[architecture]
    block = {"basic": "basic_block", "bottleneck": "bottleneck_block"}[arch.block]
    have = dict(
        block_type=config.get("block_type"),
        stackwise_num_blocks=list(config.get("stackwise_num_blocks", ())),
        input_conv_filters=list(config.get("input_conv_filters", ())),
    )
    want = dict(block_type=block, stackwise_num_blocks=list(arch.depths), input_conv_filters=[64])
    wrong = [f"{key}: {have[key]!r}, {architecture} needs {want[key]!r}" for key in want if have[key] != want[key]]
    if wrong:
        raise ValueError(
            f"weights={path!r} is a keras-hub preset of another network; nothing was loaded:\n  " + "\n  ".join(wrong)
        )


def weights_path(entry):
    """Local path of a catalog `entry`'s file in Keras's cache (`$KERAS_HOME/models`), downloaded if absent.

    Raises:
        ValueError: the file's sha256 does not match the published one.
        OSError: offline and not cached; the message says which file to put where.
    """
    return weights_lib.cached_file(
        entry.file_name,
        entry.url,
        entry.file_hash,
        description=f"the weights {entry.name!r} of {entry.architecture}",
        alternative=f", or pass weights='/path/to/{entry.file_name}'",
        algorithm="sha256",
    )


def load(model, pretrained):
    """Loads `pretrained` (from `resolve`) into a keras_resnet model built with its switches.

    Raises:
        ValueError: naming the layers that did not match (nothing is loaded).
    """
    include_top = any(layer.name == "predictions" for layer in model.layers)
    if pretrained.layout.startswith("keras_hub"):
        source = pretrained.location or pretrained.entry.name.split("/", 1)[1]
        try:
            groups = convert.read_keras_hub(source, include_top)
        except (OSError, ConnectionError, ValueError) as error:
            if pretrained.location:
                raise
            raise OSError(
                f"Could not fetch the keras-hub preset {source!r} ({pretrained.entry.url}): {error}. Offline, "
                "download the preset folder elsewhere (keras_hub's `from_preset` or kaggle.com/models/keras) "
                "and pass weights='/path/to/that/folder'."
            ) from error
        weights_lib.set_matching_weights(
            model,
            groups,
            source_name=convert.keras_hub_name,
            description=pretrained.description,
            ignore=() if include_top else ("predictions",),
        )
        return
    state = pretrained.state
    if state is None:
        state = convert.read_torch_state(pretrained.location or weights_path(pretrained.entry))
    groups = convert.torch_groups(state)
    classifier = "linear" if pretrained.layout == "akamaster" else "fc"
    if pretrained.layout == "akamaster":
        widths = [model.get_layer("conv1_conv").filters]
        widths += [model.get_layer(f"conv{stage}_block1_2_conv").filters for stage in (3, 4)]
        groups = convert.permute_akamaster(groups, widths)
    weights_lib.set_matching_weights(
        model,
        groups,
        source_name=lambda name: convert.torch_name(name, classifier),
        description=pretrained.description,
        ignore=() if include_top else (classifier,),
    )
