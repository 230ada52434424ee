"""The public constructors, one registered row each, and `get_model` to build one by name."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

from keras_resnet.models import shipped
from keras_resnet.models import weights as weights_lib
from keras_resnet.models.architectures import ARCHITECTURES
from keras_resnet.models.model import ResNetModel
from keras_resnet.models.resnet import ResNet

_CONSTRUCTOR_DOC = """Instantiates {title}.

    {summary}

    Args:
        include_top: add global average pooling and the classifier.
        weights: `None`, {weights_doc}, a pretrained name of
            `keras_resnet.models.pretrained.names_for("{architecture}")` or the path
            of a weights file (also a torch `.pth` / `.safetensors` file or a
            keras-hub preset folder).
        input_tensor: optional Keras tensor to build the model on.
        input_shape: input shape without the batch axis; defaults to
            `{default_shape}` with `include_top`, else any size.
        pooling: with `include_top=False`: `None`, `"avg"` or `"max"`.
        classes: classifier width (default {default_classes}).
        classifier_activation: `"softmax"`, `None` for logits, or any
            activation; computed in float32 under mixed precision.
        name: model name (default `"{model_name}"`).
        **kwargs: switches of `keras_resnet.ResNet`: `shortcut`,
            `stride_in`, `downsample_at`, `output_stride`,
            `pool_padding`, `zero_init_residual`, `bn_epsilon`, `bn_momentum`,
            `include_preprocessing` (take raw 0-255 images of any size),
            `preprocessing`.

    Returns:
        A `keras_resnet.ResNetModel`; with `include_top=True` compiled with
        the `"{recipe}"` recipe (see `keras_resnet.ResNet`), so
        `model.fit(ds)` trains it straight away.

    Example:

    >>> model = {function}(input_shape=(64, 64, 3), classes=10)
    >>> model.output_shape
    (None, 10)
    """


_RESNET_ARGUMENTS = inspect.signature(ResNet).parameters
_CONSTRUCTOR_ARGUMENTS = (
    "include_top",
    "weights",
    "input_tensor",
    "input_shape",
    "pooling",
    "classes",
    "classifier_activation",
    "name",
)

MODELS: dict[str, Callable[..., ResNetModel]] = {}
"""Every public constructor by its lower-case name, filled by `_register`."""


def _register(function_name: str, architecture: str, *, preact: bool = False, plain: bool = False):
    """Defines the public constructor `function_name` and adds it to `MODELS`.

    The constructor carries `architecture` (its key of `ARCHITECTURES`), `preact`, `plain` and
    `has_imagenet_weights` (keras.applications publishes its weights).
    """
    arch = ARCHITECTURES[architecture]
    model_name = function_name.lower()

    def constructor(*args: Any, **kwargs: Any) -> ResNetModel:
        arguments = dict(signature.bind(*args, **kwargs).arguments)
        switches = arguments.pop("kwargs", {})
        return ResNet(arch, preact=preact, plain=plain, **{"name": model_name, **arguments, **switches})

    # The signature is `ResNet`'s own arguments (annotations, defaults) with the name as default.
    signature = inspect.Signature(
        [
            _RESNET_ARGUMENTS[key].replace(
                kind=inspect.Parameter.POSITIONAL_OR_KEYWORD,
                default=model_name if key == "name" else _RESNET_ARGUMENTS[key].default,
            )
            for key in _CONSTRUCTOR_ARGUMENTS
        ]
        + [inspect.Parameter("kwargs", inspect.Parameter.VAR_KEYWORD, annotation="Any")],
        return_annotation="ResNetModel",
    )
    constructor.__signature__ = signature
    imagenet = not plain and weights_lib.has_imagenet_weights(architecture, preact=preact)
    kind = "plain network (no shortcuts)" if plain else ("pre-activation ResNet" if preact else "ResNet")
    side = arch.default_size
    constructor.__name__ = constructor.__qualname__ = function_name
    constructor.__doc__ = _CONSTRUCTOR_DOC.format(
        title=f"the {arch.depth}-layer {kind}",
        summary=(
            f"{arch.block.capitalize()} blocks {list(arch.depths)}, widths {list(arch.widths)}, "
            f"{arch.stem} stem, shortcut option {arch.shortcut}."
        ),
        weights_doc=(
            '`"imagenet"` (the keras.applications weights, converted exactly)'
            if imagenet
            else '`"cifar10"` (weights shipped in the package, offline; see `keras_resnet.models.shipped`)'
            if shipped.SHIPPED.get("cifar10") == architecture and not (preact or plain)
            else "(no published ImageNet weights for this network)"
        ),
        default_shape=(side, side, 3),
        default_classes=arch.default_classes,
        recipe="cifar10" if arch.stem == "cifar" else "imagenet",
        model_name=model_name,
        function=function_name,
        architecture=architecture,
    )
    constructor.architecture = architecture
    constructor.preact = preact
    constructor.plain = plain
    constructor.has_imagenet_weights = imagenet
    MODELS[model_name] = constructor
    return constructor


def _family(pattern: str, depths: tuple[int, ...], **switches: bool) -> tuple[Callable[..., ResNetModel], ...]:
    """Registers one constructor per depth: `_family("ResNet{}V2", (50,), preact=True)` is ResNet50V2 of resnet50."""
    return tuple(_register(pattern.format(depth), f"resnet{depth}", **switches) for depth in depths)


_IMAGENET_DEPTHS = (18, 34, 50, 101, 152, 200)
_CIFAR_DEPTHS = (20, 32, 44, 56, 110, 1202)

ResNet18, ResNet34, ResNet50, ResNet101, ResNet152, ResNet200 = _family("ResNet{}", _IMAGENET_DEPTHS)
ResNet18V2, ResNet34V2, ResNet50V2, ResNet101V2, ResNet152V2, ResNet200V2 = _family(
    "ResNet{}V2", _IMAGENET_DEPTHS, preact=True
)
ResNet20, ResNet32, ResNet44, ResNet56, ResNet110, ResNet1202 = _family("ResNet{}", _CIFAR_DEPTHS)
PlainNet18, PlainNet34 = _family("PlainNet{}", (18, 34), plain=True)
Plain20, Plain32, Plain44, Plain56, Plain110 = _family("Plain{}", _CIFAR_DEPTHS[:5], plain=True)


def get_model(name: str, **kwargs: Any) -> ResNetModel:
    """Builds a model by its lower-case name, e.g. `get_model("resnet20")`.

    Args:
        name: a key of `MODELS` (`"resnet50"`, `"resnet50v2"`, `"plain20"`, ...).
        **kwargs: arguments of the constructor.

    Returns:
        A `ResNetModel`.

    Example:

    >>> get_model("resnet20").output_shape
    (None, 10)
    """
    key = str(name).lower()
    if key not in MODELS:
        raise ValueError(f"model must be one of {', '.join(sorted(MODELS))}; received {name!r}")
    return MODELS[key](**kwargs)
