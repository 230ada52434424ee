"""The catalog of pretrained weights: one table, name -> where the file is and what it needs.

Each `Weights` row says where its file is (URL and hash), what network it fills (architecture and
tensor layout, which sets the builder's switches), how it was scored (top-1 as the source publishes
it) and what input it expects (resize, crop, interpolation, mean and std), so a model built from it
records its preprocessing. The rows are copied from the sources' own lists (torchvision's `Weights`
enums, timm's pretrained cfgs, keras-hub's presets, akamaster's README); `tests/models/test_pretrained.py`
checks them against the installed packages.
"""

import csv
import dataclasses
import math
import os
import re

# torchvision's and timm's ImageNet statistics, on the 0-1 scale the sources publish them.
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

# The builder switches each tensor layout needs (every other switch keeps its default).
LAYOUTS = {
    # torchvision and timm ResNets: "v1.5", the stride on the 3x3 convolution of a bottleneck.
    "torch": dict(preact=False, stride_in="3x3"),
    # keras-hub ResNetBackbone, v1: the same network under keras-hub's layer names.
    "keras_hub": dict(preact=False, stride_in="3x3"),
    # keras-hub ResNetBackbone, v2: pre-activation, stride in the first block of a stage, max-pool padded
    # with -inf (its stem output is not yet through a ReLU, so zero padding would change the border).
    "keras_hub_v2": dict(preact=True, downsample_at="first", pool_padding="-inf"),
    # akamaster/pytorch_resnet_cifar10: the paper's CIFAR network, option A padding both channel ends.
    "akamaster": dict(preact=False),
}


@dataclasses.dataclass(frozen=True)
class Weights:
    """One pretrained checkpoint.

    Args:
        name: the value of `weights=` (with `architecture`, the row's key).
        architecture: the network it fills, a key of `keras_resnet.ARCHITECTURES`.
        source: `"torchvision"`, `"timm"`, `"keras_hub"` or `"akamaster"`.
        url: where the file is (a keras-hub preset: its Kaggle handle).
        file_hash: the file's sha256 or the prefix of it in its name (torch.hub's
            convention); `None` where the source publishes none.
        top1: ImageNet (CIFAR-10 for akamaster) top-1 accuracy in percent as the
            source publishes it; `None` where it publishes none.
        preprocessing: the input pipeline: `resize_size` (shorter side), `crop_size`
            (centre crop), `interpolation`, and `mean` and `std` on the 0-1 scale.
        licence: the licence of the weights, as the source states it.
        layout: a key of `LAYOUTS`: the tensor names and the builder switches.
        classes: classifier width.
    """

    name: str
    architecture: str
    source: str
    url: str
    file_hash: str
    top1: float
    preprocessing: dict
    licence: str
    layout: str
    classes: int = 1000

    @property
    def switches(self):
        """The builder switches these weights need."""
        return dict(LAYOUTS[self.layout])

    @property
    def file_name(self):
        """The file's name in Keras's cache."""
        if self.source == "timm" and self.url.endswith("model.safetensors"):
            return f"timm_{self.name.split('/', 1)[1]}.safetensors"
        return self.url.rsplit("/", 1)[1]


def _pipeline(resize_size, crop_size, interpolation, mean=IMAGENET_MEAN, std=IMAGENET_STD):
    return dict(resize_size=resize_size, crop_size=crop_size, interpolation=interpolation, mean=mean, std=std)


def _hash_in_name(url):
    match = re.search(r"-([0-9a-f]{8,64})\.(pth|th)$", url)
    return match.group(1) if match else None


# torchvision: (depth, weights, file, top-1 published in the `Weights` enum, resize side).
_TORCHVISION = [
    (18, "v1", "resnet18-f37072fd.pth", 69.758, 256),
    (34, "v1", "resnet34-b627a593.pth", 73.314, 256),
    (50, "v1", "resnet50-0676ba61.pth", 76.13, 256),
    (50, "v2", "resnet50-11ad3fa6.pth", 80.858, 232),
    (101, "v1", "resnet101-63fe2227.pth", 77.374, 256),
    (101, "v2", "resnet101-cd907fc2.pth", 81.886, 232),
    (152, "v1", "resnet152-394f9c45.pth", 78.312, 256),
    (152, "v2", "resnet152-f82ba261.pth", 82.284, 232),
]


def _torchvision(depth, version, file_name, top1, resize_size):
    url = f"https://download.pytorch.org/models/{file_name}"
    return Weights(
        f"torchvision_{version}",
        f"resnet{depth}",
        "torchvision",
        url,
        _hash_in_name(url),
        top1,
        _pipeline(resize_size, 224, "bilinear"),
        "bsd-3-clause",
        "torch",
    )


def _timm(tag, url, crop_size, crop_pct, interpolation, licence, mean=IMAGENET_MEAN, std=IMAGENET_STD):
    # timm's eval transform: resize the shorter side to floor(crop / crop_pct), centre-crop `crop`.
    prefix, rest = url.split(":", 1)
    url = _HOSTS[prefix + ":"] + rest
    resize_size = math.floor(crop_size / crop_pct)
    return Weights(
        f"timm/{tag}",
        tag.split(".")[0],
        "timm",
        url,
        _hash_in_name(url),
        None,  # timm publishes its accuracies in a separate results table, not in the cfgs
        _pipeline(resize_size, crop_size, interpolation, mean, std),
        licence,
        "torch",
    )


def _keras_hub(preset, handle, depth, layout):
    return Weights(
        f"keras_hub/{preset}",
        f"resnet{depth}",
        "keras_hub",
        handle,
        None,
        None,
        _pipeline(224, 224, "bilinear"),
        "apache-2.0",
        layout,
    )


def _akamaster(depth, error):
    url = f"https://github.com/akamaster/pytorch_resnet_cifar10/raw/master/pretrained_models/resnet{depth}.th"
    return Weights(
        "akamaster",
        f"resnet{depth}",
        "akamaster",
        url,
        None,
        round(100 - error, 2),
        _pipeline(32, 32, "bilinear"),
        "bsd-2-clause",
        "akamaster",
        classes=10,
    )


# Hosts of the timm files, shortened in `timm.csv`.
_HOSTS = {
    "tv:": "https://download.pytorch.org/models/",
    "hf-gh:": "https://github.com/huggingface/pytorch-image-models/releases/download/",
    "rw-gh:": "https://github.com/rwightman/pytorch-image-models/releases/download/",
    "gluon:": "https://github.com/rwightman/pytorch-pretrained-gluonresnet/releases/download/v0.1/",
    "fb:": "https://dl.fbaipublicfiles.com/semiweaksupervision/model_files/",
    "hf:": "https://huggingface.co/",
}


def _timm_rows():
    """timm's pretrained cfgs of resnet18/34/50/101/152 with an ImageNet-1k classifier, all the plain v1.5
    network, as timm's `resolve_data_config` gives them by default: the rows of `timm.csv`."""
    with open(os.path.join(os.path.dirname(__file__), "timm.csv"), newline="") as file:
        for row in csv.DictReader(file):
            statistics = {key: tuple(map(float, row[key].split())) for key in ("mean", "std") if row[key]}
            crop = (int(row["crop_size"]), float(row["crop_pct"]), row["interpolation"], row["licence"])
            yield _timm(row["tag"], row["file"], *crop, **statistics)


_ROWS = [
    *(_torchvision(*row) for row in _TORCHVISION),
    *_timm_rows(),
    _keras_hub("resnet_18_imagenet", "kaggle://keras/resnetv1/keras/resnet_18_imagenet/3", 18, "keras_hub"),
    _keras_hub("resnet_50_imagenet", "kaggle://keras/resnetv1/keras/resnet_50_imagenet/3", 50, "keras_hub"),
    _keras_hub("resnet_101_imagenet", "kaggle://keras/resnetv1/keras/resnet_101_imagenet/3", 101, "keras_hub"),
    _keras_hub("resnet_152_imagenet", "kaggle://keras/resnetv1/keras/resnet_152_imagenet/3", 152, "keras_hub"),
    _keras_hub("resnet_v2_50_imagenet", "kaggle://keras/resnetv2/keras/resnet_v2_50_imagenet/3", 50, "keras_hub_v2"),
    _keras_hub("resnet_v2_101_imagenet", "kaggle://keras/resnetv2/keras/resnet_v2_101_imagenet/3", 101, "keras_hub_v2"),
    # akamaster's README: test error on CIFAR-10 (ResNet1202 has no published file).
    *(_akamaster(depth, error) for depth, error in ((20, 8.27), (32, 7.37), (44, 6.90), (56, 6.61), (110, 6.32))),
]

CATALOG = {(row.architecture, row.name): row for row in _ROWS}
"""Every pretrained checkpoint by `(architecture, name)`."""


def names_for(architecture):
    """The `weights=` names available for an architecture, e.g. `names_for("resnet18")`."""
    return [name for arch, name in CATALOG if arch == architecture]


def find(architecture, name):
    """The catalog row of `weights=name` for an architecture.

    Args:
        architecture: a key of `keras_resnet.ARCHITECTURES`, e.g. `"resnet50"`.
        name: a catalog name, e.g. `"torchvision_v2"` or `"timm/resnet50.a1_in1k"`.

    Returns:
        A `Weights`.

    Raises:
        ValueError: no such weights for this architecture; the message lists those there are.

    Example:

    >>> find("resnet50", "torchvision_v2").preprocessing["resize_size"]
    232
    """
    row = CATALOG.get((architecture, name))
    if row is not None:
        return row
    elsewhere = sorted(arch for arch, other in CATALOG if other == name)
    available = ", ".join(repr(n) for n in names_for(architecture)) or "none"
    hint = f" ({name!r} fills {', '.join(elsewhere)})" if elsewhere else ""
    raise ValueError(
        f"weights must be None, 'imagenet', a file path or one of the pretrained names for {architecture}: "
        f"{available}; received weights={name!r}{hint}"
    )
