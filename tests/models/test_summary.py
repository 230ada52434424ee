import sys

import pytest

import keras_resnet as kr

# The paper's Table 1, "FLOPs" (multiply-adds) at 224x224.
PAPER_GFLOPS = {"ResNet18": 1.8, "ResNet34": 3.6, "ResNet50": 3.8, "ResNet101": 7.6, "ResNet152": 11.3}


@pytest.mark.parametrize("name, paper", sorted(PAPER_GFLOPS.items()))
def test_multiply_adds_within_5_percent_of_the_paper(name, paper):
    gmacs = kr.count_macs(getattr(kr, name)()) / 1e9
    assert abs(gmacs - paper) / paper < 0.05


def test_counts_scale_with_input_size_and_match_a_hand_count():
    tiny = kr.ResNet(
        {"block": "basic", "depths": (1,), "widths": (4,), "stem": "cifar"}, input_shape=(8, 8, 3), classes=2
    )
    # stem 3x3x3->4, two 3x3x4->4 convs, all at 8x8, then a 4->2 dense.
    assert kr.count_macs(tiny) == 64 * 4 * 27 + 2 * 64 * 4 * 36 + 4 * 2
    assert kr.count_macs(kr.ResNet50(input_shape=(448, 448, 3))) > 3.9 * kr.count_macs(kr.ResNet50())


@pytest.mark.parametrize(
    "plain, residual", [("Plain20", "ResNet20"), ("Plain56", "ResNet56"), ("PlainNet34", "ResNet34")]
)
def test_plain_and_residual_twins_cost_the_same(plain, residual):
    # The paper's twins use option A (parameter-free shortcuts).
    assert kr.count_macs(getattr(kr, plain)()) == kr.count_macs(getattr(kr, residual)(shortcut="A"))


def test_summary_dict_and_fixed_size_requirement():
    summary = kr.model_summary(kr.ResNet50())
    assert summary["trainable_params"] == 25_557_032
    assert summary["params"] > summary["trainable_params"]  # BN moving statistics
    assert summary["gmacs"] == pytest.approx(3.86, abs=0.01)
    with pytest.raises(ValueError, match="fixed input size"):
        kr.count_macs(kr.ResNet50(include_top=False))


@pytest.mark.slow
def test_resnet1202_builds_and_is_counted_at_the_default_recursion_limit():
    """The deepest row of `keras-resnet summary --all`, built at Python's default recursion limit.

    The paper's Table 6 gives ResNet-1202 19.4M parameters.
    """
    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(1000)
    try:
        summary = kr.model_summary(kr.ResNet1202())
    finally:
        sys.setrecursionlimit(limit)
    assert round(summary["trainable_params"] / 1e6, 1) == 19.4
    assert summary["name"] == "resnet1202"
