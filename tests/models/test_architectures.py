import re

import pytest

from keras_resnet.models.architectures import ARCHITECTURES, Architecture, cifar, get_architecture
from keras_resnet.models.resnet import block_plan


@pytest.mark.parametrize(
    "name, depth",
    [
        ("resnet18", 18),
        ("resnet34", 34),
        ("resnet50", 50),
        ("resnet101", 101),
        ("resnet152", 152),
        ("resnet200", 200),
        ("resnet20", 20),
        ("resnet32", 32),
        ("resnet44", 44),
        ("resnet56", 56),
        ("resnet110", 110),
        ("resnet1202", 1202),
    ],
)
def test_table_depths_match_model_names(name, depth):
    assert ARCHITECTURES[name].depth == depth


def test_cifar_rows_follow_the_paper():
    arch = cifar(3)
    assert arch.widths == (16, 32, 64)
    assert arch.shortcut == "A"
    assert arch.total_stride == 4
    assert ARCHITECTURES["resnet50"].total_stride == 32


def test_get_architecture_accepts_names_dicts_and_rows():
    assert get_architecture("ResNet50") is ARCHITECTURES["resnet50"]
    row = {"block": "basic", "depths": [1, 1], "widths": [8, 16], "stem": "cifar"}
    assert get_architecture(row).depths == (1, 1)


@pytest.mark.parametrize(
    "fields, argument",
    [
        ({"block": "wide", "depths": (1,)}, "block must be one of 'basic', 'bottleneck'; received 'wide'"),
        ({"block": "basic", "depths": ()}, "depths must be a non-empty"),
        ({"block": "basic", "depths": (1, 0)}, "received (1, 0)"),
        (
            {"block": "basic", "depths": (1, 1), "widths": (8,)},
            "widths must be 2 positive integers, one per stage; received (8,)",
        ),
        ({"block": "basic", "depths": (1,), "stem": "tiny"}, "stem must be one of"),
        ({"block": "basic", "depths": (1,), "shortcut": "D"}, "shortcut must be one of 'A', 'B', 'C'; received 'D'"),
    ],
)
def test_invalid_rows_are_refused_up_front(fields, argument):
    with pytest.raises(ValueError, match=re.escape(argument)):
        Architecture(**fields)


def test_unknown_name_lists_the_allowed_ones():
    with pytest.raises(ValueError, match="architecture must be .* 'resnet50'.*received 'resnet51'"):
        get_architecture("resnet51")
    with pytest.raises(ValueError, match="architecture dict accepts the fields"):
        get_architecture({"block": "basic", "depth": 3})


def test_block_plan_paper_and_keras_v2_layouts():
    arch = ARCHITECTURES["resnet50"]
    first = [(p.stage, p.index, p.strides) for p in block_plan(arch) if p.strides > 1]
    assert first == [(1, 0, 2), (2, 0, 2), (3, 0, 2)]
    # keras.applications ResNetV2 strides the last block of conv2, conv3, conv4.
    last = [(p.stage, p.index, p.strides) for p in block_plan(arch, downsample_at="last") if p.strides > 1]
    assert last == [(0, 2, 2), (1, 3, 2), (2, 5, 2)]


def test_block_plan_output_stride_turns_strides_into_dilation():
    arch = ARCHITECTURES["resnet50"]
    plan = block_plan(arch, output_stride=8)
    assert [p.strides for p in plan if p.strides > 1] == [2]
    conv4 = [p for p in plan if p.stage == 2]
    conv5 = [p for p in plan if p.stage == 3]
    # torchvision's rule: the first block keeps the previous dilation.
    assert (conv4[0].previous_dilation, conv4[0].dilation, conv4[1].dilation) == (1, 2, 2)
    assert (conv5[0].previous_dilation, conv5[0].dilation) == (2, 4)
    with pytest.raises(ValueError, match="output_stride must be one of 32, 16, 8; received 4"):
        block_plan(arch, output_stride=4)
    with pytest.raises(ValueError, match="downsample_at must be one of 'first', 'last'"):
        block_plan(arch, downsample_at="middle")
