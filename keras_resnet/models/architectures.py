"""The paper's architecture table as data: adding a ResNet-8 or a ResNet-200 is one line in `ARCHITECTURES`."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from keras_resnet._validation import check_choice as _check_choice
from keras_resnet._validation import check_positive_int as _check_positive_int
from keras_resnet._validation import check_positive_ints as _check_positive_ints

BLOCKS = ("basic", "bottleneck")
STEMS = ("imagenet", "cifar")
SHORTCUTS = ("A", "B", "C")

EXPANSION = {"basic": 1, "bottleneck": 4}

STEM_STRIDE = {"imagenet": 4, "cifar": 1}


@dataclasses.dataclass(frozen=True)
class Architecture:
    """One row of the paper's architecture table.

    Args:
        block: `"basic"` (3x3, 3x3) or `"bottleneck"` (1x1, 3x3, 1x1 with expansion 4).
        depths: number of blocks in each stage, e.g. `(3, 4, 6, 3)`.
        widths: width of each stage (the bottleneck width for bottleneck blocks).
        stem: `"imagenet"` (7x7/2 conv + 3x3/2 max-pool) or `"cifar"` (one 3x3 conv).
        strides: stride of each stage; defaults to 1 for the first stage and 2 for the others.
        shortcut: `"A"` (zero-padded identity), `"B"` (projection where the shape changes) or
            `"C"` (projections everywhere).
        default_size: input side used when `input_shape` is not given.
        default_classes: number of classes used when `classes` is not given.

    Example:

    >>> arch = Architecture("basic", (1, 1, 1), (16, 32, 64), stem="cifar")
    >>> arch.depth
    8
    """

    block: str
    depths: tuple[int, ...]
    widths: tuple[int, ...] = (64, 128, 256, 512)
    stem: str = "imagenet"
    strides: tuple[int, ...] | None = None
    shortcut: str = "B"
    default_size: int = 224
    default_classes: int = 1000

    def __post_init__(self):
        depths = tuple(self.depths)
        widths = tuple(self.widths)
        strides = (1,) + (2,) * (len(depths) - 1) if self.strides is None else tuple(self.strides)
        object.__setattr__(self, "depths", depths)
        object.__setattr__(self, "widths", widths)
        object.__setattr__(self, "strides", strides)
        _check_choice("block", self.block, BLOCKS)
        _check_choice("stem", self.stem, STEMS)
        _check_choice("shortcut", self.shortcut, SHORTCUTS)
        _check_positive_ints("depths", depths)
        for field, values in (("widths", widths), ("strides", strides)):
            _check_positive_ints(field, values, len(depths), context=", one per stage")
        for field in ("default_size", "default_classes"):
            _check_positive_int(field, getattr(self, field))

    @property
    def expansion(self) -> int:
        return EXPANSION[self.block]

    @property
    def depth(self) -> int:
        """Weighted layers, counted as in the paper (convs + the classifier)."""
        per_block = 2 if self.block == "basic" else 3
        return per_block * sum(self.depths) + 2

    @property
    def stem_stride(self) -> int:
        return STEM_STRIDE[self.stem]

    @property
    def stem_width(self) -> int:
        return 64 if self.stem == "imagenet" else self.widths[0]

    @property
    def total_stride(self) -> int:
        total = self.stem_stride
        for stride in self.strides:
            total *= stride
        return total


def cifar(n: int) -> Architecture:
    """The paper's CIFAR-10 network with `6 * n + 2` layers (basic blocks, option A, `n` per stage).

    Example:

    >>> cifar(3).depth
    20
    """
    return Architecture(
        "basic",
        (n, n, n),
        (16, 32, 64),
        stem="cifar",
        shortcut="A",
        default_size=32,
        default_classes=10,
    )


ARCHITECTURES = {
    "resnet18": Architecture("basic", (2, 2, 2, 2)),
    "resnet34": Architecture("basic", (3, 4, 6, 3)),
    "resnet50": Architecture("bottleneck", (3, 4, 6, 3)),
    "resnet101": Architecture("bottleneck", (3, 4, 23, 3)),
    "resnet152": Architecture("bottleneck", (3, 8, 36, 3)),
    "resnet200": Architecture("bottleneck", (3, 24, 36, 3)),
    "resnet20": cifar(3),
    "resnet32": cifar(5),
    "resnet44": cifar(7),
    "resnet56": cifar(9),
    "resnet110": cifar(18),
    "resnet1202": cifar(200),
}


def get_architecture(architecture: str | Mapping[str, Any] | Architecture) -> Architecture:
    """The `Architecture` of a key of `ARCHITECTURES` (e.g. `"resnet50"`), a dict of its fields, or itself.

    Example:

    >>> get_architecture("resnet50").depths
    (3, 4, 6, 3)
    """
    if isinstance(architecture, Architecture):
        return architecture
    if isinstance(architecture, Mapping):
        try:
            return Architecture(**architecture)
        except TypeError as error:
            fields = ", ".join(f.name for f in dataclasses.fields(Architecture))
            raise ValueError(
                f"architecture dict accepts the fields {fields}; received {architecture!r} ({error})"
            ) from None
    if isinstance(architecture, str) and architecture.lower() in ARCHITECTURES:
        return ARCHITECTURES[architecture.lower()]
    raise ValueError(
        "architecture must be an Architecture, a dict of its fields or one of "
        f"{', '.join(repr(n) for n in ARCHITECTURES)}; received {architecture!r}"
    )
