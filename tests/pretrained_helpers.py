"""A torchvision ResNet-18 checkpoint with random weights, for the fine-tuning tests of train and the CLI."""

import sys

import pytest


@pytest.fixture(scope="session")
def resnet18_pth(tmp_path_factory):
    """`(path, tensors)`: a torchvision-format `.pth` state dict of a random ResNet-18 and its numpy tensors."""
    sys.modules.setdefault("triton", None)  # the CUDA build of torch imports triton, which can crash beside TensorFlow
    missing = "{} is not installed (pip install .[weights-test])"
    torch = pytest.importorskip("torch", reason=missing.format("torch"))
    torchvision = pytest.importorskip("torchvision", reason=missing.format("torchvision"))
    torch.manual_seed(18)
    module = torchvision.models.resnet18()
    path = tmp_path_factory.mktemp("weights") / "resnet18.pth"
    torch.save(module.state_dict(), path)
    return str(path), {name: tensor.numpy() for name, tensor in module.state_dict().items()}
