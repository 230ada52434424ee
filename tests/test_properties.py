"""Property-based checks of the generic builder against closed-form counts."""

import math

import keras
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import keras_resnet as kr


def expected_trainable(block, depths, widths, shortcut, preact, classes):
    """Trainable parameters of a CIFAR-stem network, counted from the table alone."""
    expansion = 4 if block == "bottleneck" else 1
    bn = lambda c: 2 * c  # noqa: E731  gamma and beta
    total = 27 * widths[0] + (widths[0] if preact else bn(widths[0]))
    channels = widths[0]
    for depth, width in zip(depths, widths):
        for _ in range(depth):
            out = width * expansion
            if preact:
                total += bn(channels)
            if block == "basic":
                total += 9 * channels * width + bn(width) + 9 * width * out + (out if preact else bn(out))
            else:
                total += channels * width + bn(width) + 9 * width * width + bn(width)
                total += width * out + (out if preact else bn(out))
            project = shortcut == "C" or (shortcut == "B" and channels != out)
            if project:
                total += channels * out + (out if preact else bn(out))
            channels = out
    if preact:
        total += bn(channels)
    return total + channels * classes + classes


def expected_side(side, strides):
    """Output side: every stride-2 transition halves the map, rounding up."""
    for stride in strides:
        side = math.ceil(side / stride)
    return side


tables = st.fixed_dictionaries(
    {
        "block": st.sampled_from(["basic", "bottleneck"]),
        "depths": st.lists(st.integers(1, 2), min_size=1, max_size=3),
        "width": st.sampled_from([4, 8]),
        "shortcut": st.sampled_from(["A", "B", "C"]),
        "preact": st.booleans(),
        "side": st.integers(8, 20),
        "classes": st.integers(1, 5),
        "strided": st.lists(st.booleans(), min_size=3, max_size=3),
    }
)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(tables)
def test_any_valid_table_builds_the_closed_form_network(table):
    n = len(table["depths"])
    widths = tuple(table["width"] * 2**i for i in range(n))
    strides = (1,) + tuple(2 if s else 1 for s in table["strided"][: n - 1])
    arch = kr.Architecture(
        table["block"], tuple(table["depths"]), widths, stem="cifar", strides=strides, shortcut=table["shortcut"]
    )
    model = kr.ResNet(
        arch,
        preact=table["preact"],
        input_shape=(table["side"], table["side"], 3),
        classes=table["classes"],
        downsample_at="first",
    )
    assert model.output_shape == (None, table["classes"])
    assert kr.model_summary(model)["trainable_params"] == expected_trainable(
        table["block"], table["depths"], widths, table["shortcut"], table["preact"], table["classes"]
    )
    features = kr.ResNet(
        arch,
        preact=table["preact"],
        include_top=False,
        downsample_at="first",
        input_shape=(table["side"], table["side"], 3),
    )
    side = expected_side(table["side"], strides)
    channels = widths[-1] * (4 if table["block"] == "bottleneck" else 1)
    assert features.output_shape == (None, side, side, channels)


invalid_tables = st.one_of(
    st.fixed_dictionaries(
        {"block": st.text(min_size=1).filter(lambda b: b not in ("basic", "bottleneck")), "depths": st.just((1,))}
    ),
    st.fixed_dictionaries(
        {"block": st.just("basic"), "depths": st.lists(st.integers(-3, 0), min_size=1, max_size=3).map(tuple)}
    ),
    st.fixed_dictionaries(
        {
            "block": st.just("basic"),
            "depths": st.just((1, 1)),
            "widths": st.lists(st.integers(1, 8), min_size=3, max_size=4).map(tuple),
        }
    ),
    st.fixed_dictionaries(
        {"block": st.just("basic"), "depths": st.just((1,)), "strides": st.sampled_from([(0,), (2, 2), (1.5,)])}
    ),
    st.fixed_dictionaries(
        {
            "block": st.just("basic"),
            "depths": st.just((1,)),
            "stem": st.text().filter(lambda s: s not in ("imagenet", "cifar")),
        }
    ),
)


@settings(max_examples=40, deadline=None)
@given(invalid_tables)
def test_any_invalid_table_is_refused_before_keras_builds_anything(table):
    before = keras.backend.get_uid("conv2d")
    with pytest.raises(ValueError, match="received"):
        kr.ResNet(table, input_shape=(16, 16, 3))
    assert keras.backend.get_uid("conv2d") == before + 1  # no layer was created in between
