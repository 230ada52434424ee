"""The catalog of pretrained weights: one table, name -> where the file is and what it needs.

Each `Weights` row says where its file is (URL and hash), what network it fills (architecture and
tensor layout, which sets the builder's switches), how it was scored (top-1 as the source publishes
it) and what input it expects (resize, crop, interpolation, mean and std), so a model built from it
records its preprocessing. The rows are copied from the sources' own lists (torchvision's `Weights`
enums, timm's pretrained cfgs, keras-hub's presets, akamaster's README); `tests/models/test_pretrained.py`
checks them against the installed packages.
"""

import dataclasses
import math
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


# Hosts of the timm files, shortened in `_TIMM`.
_HOSTS = {
    "tv:": "https://download.pytorch.org/models/",
    "hf-gh:": "https://github.com/huggingface/pytorch-image-models/releases/download/",
    "rw-gh:": "https://github.com/rwightman/pytorch-image-models/releases/download/",
    "gluon:": "https://github.com/rwightman/pytorch-pretrained-gluonresnet/releases/download/v0.1/",
    "fb:": "https://dl.fbaipublicfiles.com/semiweaksupervision/model_files/",
    "hf:": "https://huggingface.co/",
}

# timm's pretrained cfgs of resnet18/34/50/101/152 with an ImageNet-1k classifier, all the plain v1.5
# network: (tag, file, input size, crop fraction, interpolation, licence[, mean, std]) as timm's
# `resolve_data_config` gives them by default.
_TIMM = [
    ("resnet18.a1_in1k", "hf-gh:v0.1-rsb-weights/resnet18_a1_0-d63eafa0.pth", 224, 0.95, "bicubic", "apache-2.0"),
    ("resnet18.a2_in1k", "hf-gh:v0.1-rsb-weights/resnet18_a2_0-b61bd467.pth", 224, 0.95, "bicubic", "apache-2.0"),
    ("resnet18.a3_in1k", "hf-gh:v0.1-rsb-weights/resnet18_a3_0-40c531c8.pth", 160, 0.95, "bicubic", "apache-2.0"),
    (
        "resnet18.fb_ssl_yfcc100m_ft_in1k",
        "fb:semi_supervised_resnet18-d92f0530.pth",
        224,
        0.875,
        "bilinear",
        "cc-by-nc-4.0",
    ),
    (
        "resnet18.fb_swsl_ig1b_ft_in1k",
        "fb:semi_weakly_supervised_resnet18-118f1556.pth",
        224,
        0.875,
        "bilinear",
        "cc-by-nc-4.0",
    ),
    ("resnet18.gluon_in1k", "gluon:gluon_resnet18_v1b-0757602b.pth", 224, 0.875, "bicubic", "apache-2.0"),
    ("resnet18.tv_in1k", "tv:resnet18-f37072fd.pth", 224, 0.875, "bilinear", "bsd-3-clause"),
    ("resnet34.a1_in1k", "hf-gh:v0.1-rsb-weights/resnet34_a1_0-46f8f793.pth", 224, 0.95, "bicubic", "apache-2.0"),
    ("resnet34.a2_in1k", "hf-gh:v0.1-rsb-weights/resnet34_a2_0-82d47d71.pth", 224, 0.95, "bicubic", "apache-2.0"),
    ("resnet34.a3_in1k", "hf-gh:v0.1-rsb-weights/resnet34_a3_0-a20cabb6.pth", 160, 0.95, "bicubic", "apache-2.0"),
    ("resnet34.bt_in1k", "rw-gh:v0.1-weights/resnet34-43635321.pth", 224, 0.875, "bicubic", "apache-2.0"),
    ("resnet34.gluon_in1k", "gluon:gluon_resnet34_v1b-c6d82d59.pth", 224, 0.875, "bicubic", "apache-2.0"),
    (
        "resnet34.ra4_e3600_r224_in1k",
        "hf:timm/resnet34.ra4_e3600_r224_in1k/resolve/main/model.safetensors",
        224,
        0.9,
        "bicubic",
        "apache-2.0",
        (0.5, 0.5, 0.5),
        (0.5, 0.5, 0.5),
    ),
    ("resnet34.tv_in1k", "tv:resnet34-b627a593.pth", 224, 0.875, "bilinear", "bsd-3-clause"),
    ("resnet50.a1_in1k", "rw-gh:v0.1-rsb-weights/resnet50_a1_0-14fe96d1.pth", 224, 0.95, "bicubic", "apache-2.0"),
    ("resnet50.a1h_in1k", "hf-gh:v0.1-rsb-weights/resnet50_a1h2_176-001a1197.pth", 176, 0.9, "bicubic", "apache-2.0"),
    ("resnet50.a2_in1k", "hf-gh:v0.1-rsb-weights/resnet50_a2_0-a2746f79.pth", 224, 0.95, "bicubic", "apache-2.0"),
    ("resnet50.a3_in1k", "hf-gh:v0.1-rsb-weights/resnet50_a3_0-59cae1ef.pth", 160, 0.95, "bicubic", "apache-2.0"),
    ("resnet50.am_in1k", "hf-gh:v0.1-weights/resnet50_am-6c502b37.pth", 224, 0.875, "bicubic", "apache-2.0"),
    ("resnet50.b1k_in1k", "hf-gh:v0.1-rsb-weights/resnet50_b1k-532a802a.pth", 224, 0.95, "bicubic", "apache-2.0"),
    ("resnet50.b2k_in1k", "hf-gh:v0.1-rsb-weights/resnet50_b2k-1ba180c1.pth", 224, 0.95, "bicubic", "apache-2.0"),
    ("resnet50.bt_in1k", "hf-gh:v0.1-weights/rw_resnet50-86acaeed.pth", 224, 0.875, "bicubic", "apache-2.0"),
    ("resnet50.c1_in1k", "hf-gh:v0.1-rsb-weights/resnet50_c1-5ba5e060.pth", 224, 0.95, "bicubic", "apache-2.0"),
    ("resnet50.c2_in1k", "hf-gh:v0.1-rsb-weights/resnet50_c2-d01e05b2.pth", 224, 0.95, "bicubic", "apache-2.0"),
    ("resnet50.d_in1k", "hf-gh:v0.1-rsb-weights/resnet50_d-f39db8af.pth", 224, 0.95, "bicubic", "apache-2.0"),
    (
        "resnet50.fb_ssl_yfcc100m_ft_in1k",
        "fb:semi_supervised_resnet50-08389792.pth",
        224,
        0.875,
        "bilinear",
        "cc-by-nc-4.0",
    ),
    (
        "resnet50.fb_swsl_ig1b_ft_in1k",
        "fb:semi_weakly_supervised_resnet50-16a12f1b.pth",
        224,
        0.875,
        "bilinear",
        "cc-by-nc-4.0",
    ),
    ("resnet50.gluon_in1k", "gluon:gluon_resnet50_v1b-0ebe02e2.pth", 224, 0.875, "bicubic", "apache-2.0"),
    ("resnet50.ra_in1k", "hf-gh:v0.1-weights/resnet50_ra-85ebb6e5.pth", 224, 0.875, "bicubic", "apache-2.0"),
    ("resnet50.ram_in1k", "hf-gh:v0.1-weights/resnet50_ram-a26f946b.pth", 224, 0.875, "bicubic", "apache-2.0"),
    ("resnet50.tv2_in1k", "tv:resnet50-11ad3fa6.pth", 176, 0.875, "bilinear", "bsd-3-clause"),
    ("resnet50.tv_in1k", "tv:resnet50-0676ba61.pth", 224, 0.875, "bilinear", "bsd-3-clause"),
    ("resnet101.a1_in1k", "hf-gh:v0.1-rsb-weights/resnet101_a1_0-cdcb52a9.pth", 224, 0.95, "bicubic", "apache-2.0"),
    ("resnet101.a1h_in1k", "rw-gh:v0.1-rsb-weights/resnet101_a1h-36d3f2aa.pth", 224, 0.95, "bicubic", "apache-2.0"),
    ("resnet101.a2_in1k", "hf-gh:v0.1-rsb-weights/resnet101_a2_0-6edb36c7.pth", 224, 0.95, "bicubic", "apache-2.0"),
    ("resnet101.a3_in1k", "hf-gh:v0.1-rsb-weights/resnet101_a3_0-1db14157.pth", 160, 0.95, "bicubic", "apache-2.0"),
    ("resnet101.gluon_in1k", "gluon:gluon_resnet101_v1b-3b017079.pth", 224, 0.875, "bicubic", "apache-2.0"),
    ("resnet101.tv2_in1k", "tv:resnet101-cd907fc2.pth", 176, 0.875, "bilinear", "bsd-3-clause"),
    ("resnet101.tv_in1k", "tv:resnet101-63fe2227.pth", 224, 0.875, "bilinear", "bsd-3-clause"),
    ("resnet152.a1_in1k", "hf-gh:v0.1-rsb-weights/resnet152_a1_0-2eee8a7a.pth", 224, 0.95, "bicubic", "apache-2.0"),
    ("resnet152.a1h_in1k", "rw-gh:v0.1-rsb-weights/resnet152_a1h-dc400468.pth", 224, 0.95, "bicubic", "apache-2.0"),
    ("resnet152.a2_in1k", "hf-gh:v0.1-rsb-weights/resnet152_a2_0-b4c6978f.pth", 224, 0.95, "bicubic", "apache-2.0"),
    ("resnet152.a3_in1k", "hf-gh:v0.1-rsb-weights/resnet152_a3_0-134d4688.pth", 160, 0.95, "bicubic", "apache-2.0"),
    ("resnet152.gluon_in1k", "gluon:gluon_resnet152_v1b-c1edb0dd.pth", 224, 0.875, "bicubic", "apache-2.0"),
    ("resnet152.tv2_in1k", "tv:resnet152-f82ba261.pth", 176, 0.875, "bilinear", "bsd-3-clause"),
    ("resnet152.tv_in1k", "tv:resnet152-394f9c45.pth", 224, 0.875, "bilinear", "bsd-3-clause"),
]


_ROWS = [
    *(_torchvision(*row) for row in _TORCHVISION),
    *(_timm(*row) for row in _TIMM),
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
