"""Weights of torchvision, timm, keras-hub and akamaster's CIFAR zoo, loaded exactly.

No machine here reaches the hosts of those files, so each test builds the source network with random
weights in its own framework (random BN statistics too), saves it in the source's file format, loads
it through `weights=` and compares logits. Torch, timm and keras-hub are large optional packages
(`pip install .[weights-test]`, as CI does); where one is missing its tests skip saying so.
"""

import dataclasses
import hashlib
import os
import sys

import keras
import numpy as np
import pytest

import keras_resnet as kr
from keras_resnet.models import pretrained
from keras_resnet.models.architectures import ARCHITECTURES
from keras_resnet.models.layers import ZeroPadShortcut
from keras_resnet.models.pretrained import catalog

sys.modules.setdefault("triton", None)  # the CUDA build of torch imports triton, which can crash beside TensorFlow
torch = pytest.importorskip("torch", reason="torch is not installed (pip install .[weights-test])")

SIZE = 64  # the stem and every strided convolution see even and odd sizes (64 -> 32 -> 16 -> 8 -> 4 -> 2)


def _images(size=SIZE, seed=0):
    return np.random.default_rng(seed).uniform(-1, 1, (1, size, size, 3)).astype("float32")


def _randomize_bn(module, seed):
    generator = torch.Generator().manual_seed(seed)
    for layer in module.modules():
        if isinstance(layer, torch.nn.BatchNorm2d):
            for tensor, low, high in (
                (layer.running_mean, -0.5, 0.5),
                (layer.running_var, 0.5, 2.0),
                (layer.weight.data, 0.5, 1.5),
                (layer.bias.data, -0.2, 0.2),
            ):
                tensor.copy_(torch.rand(tensor.shape, generator=generator) * (high - low) + low)
    return module.eval()


def _torch_logits(module, images):
    with torch.no_grad():
        return module(torch.from_numpy(images.transpose(0, 3, 1, 2))).numpy()


def _relative_error(out, ref):
    return float(np.abs(out - ref).max() / np.abs(ref).max())


# --- torchvision -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def torchvision_files(tmp_path_factory):
    torchvision = pytest.importorskip("torchvision", reason="torchvision is not installed")
    folder = tmp_path_factory.mktemp("torchvision")
    files = {}
    for depth in (18, 50):
        torch.manual_seed(depth)
        module = _randomize_bn(getattr(torchvision.models, f"resnet{depth}")(), depth)
        path = str(folder / f"resnet{depth}.pth")
        torch.save(module.state_dict(), path)
        files[depth] = (path, _torch_logits(module, _images()))
    return files


@pytest.fixture(scope="module")
def keras_models():
    """One logits model per ImageNet depth, built once; tests load weights into it."""
    cache = {}

    def model(depth):
        if depth not in cache:
            cache[depth] = kr.get_model(
                f"resnet{depth}", stride_in="3x3", input_shape=(SIZE, SIZE, 3), classifier_activation=None
            )
        return cache[depth]

    return model


def _load_and_predict(model, path):
    """Loads a file through the same resolution `weights=` uses, and runs the model eagerly."""
    resolved = pretrained.resolve(path, architecture=model.name, include_top=True, classes=1000, switches={})
    assert resolved.switches["stride_in"] == "3x3"  # a local torch file implies torchvision's "v1.5"
    pretrained.load(model, resolved)
    return keras.ops.convert_to_numpy(model(_images()))


# One network per block kind: deeper ones only repeat blocks, whose names map by the same rule.
@pytest.mark.parametrize("depth", [18, 50])
def test_torchvision_state_dict_gives_torchvision_logits(torchvision_files, keras_models, depth):
    path, reference = torchvision_files[depth]
    assert _relative_error(_load_and_predict(keras_models(depth), path), reference) < 1e-4


@pytest.mark.parametrize("depth", [18, 50])
def test_weights_argument_takes_a_torch_file(torchvision_files, depth):
    path, reference = torchvision_files[depth]
    model = kr.get_model(f"resnet{depth}", weights=path, input_shape=(SIZE, SIZE, 3), classifier_activation=None)
    assert _relative_error(model.predict(_images(), verbose=0), reference) < 1e-4
    assert model.get_layer("conv3_block1_1_conv" if depth == 18 else "conv3_block1_2_conv").strides == (2, 2)
    assert model.preprocessing["crop_size"] == 224 and model.preprocessing["resize_size"] == 256


def test_backbone_without_top_gives_torchvision_features(torchvision_files):
    path, _ = torchvision_files[18]
    module = __import__("torchvision").models.resnet18()
    module.load_state_dict(torch.load(path, weights_only=True))
    module.fc = torch.nn.Identity()
    model = kr.ResNet18(weights=path, include_top=False, pooling="avg")
    assert _relative_error(model.predict(_images(), verbose=0), _torch_logits(module.eval(), _images())) < 1e-4


def test_other_architecture_is_refused_with_the_list_and_nothing_loaded(torchvision_files):
    model = kr.ResNet34(input_shape=(SIZE, SIZE, 3))
    before = [np.array(w) for w in model.get_weights()]
    path, _ = torchvision_files[18]
    with pytest.raises(
        ValueError, match=r"32 layer\(s\) did not match:\n  conv2_block3_1_conv: no tensor layer1.2.conv1 in"
    ):
        pretrained.load(
            model, pretrained.resolve(path, architecture="resnet34", include_top=True, classes=1000, switches={})
        )
    assert all(np.array_equal(a, b) for a, b in zip(before, model.get_weights()))
    with pytest.raises(ValueError, match="did not match"):
        kr.ResNet18(weights=torchvision_files[50][0])


def test_missing_tensor_is_refused(torchvision_files, tmp_path):
    state = torch.load(torchvision_files[18][0], weights_only=True)
    del state["layer4.1.bn2.running_var"]
    path = str(tmp_path / "broken.pth")
    torch.save(state, path)
    with pytest.raises(ValueError, match=r"conv5_block2_2_bn: layer4.1.bn2 in the weights lacks some of its tensors"):
        kr.ResNet18(weights=path)


def test_switches_the_weights_contradict_are_refused(torchvision_files):
    with pytest.raises(ValueError, match=r"stride_in must be '3x3' for weights=.*received stride_in='1x1'"):
        kr.ResNet50(weights=torchvision_files[50][0], stride_in="1x1")
    with pytest.raises(ValueError, match=r"classes must be 1000 .*received classes=10.*include_top=False"):
        kr.ResNet18(weights=torchvision_files[18][0], classes=10)


def test_catalog_name_loads_from_keras_cache_with_its_hash(torchvision_files, tmp_path, monkeypatch):
    path, reference = torchvision_files[18]
    entry = catalog.find("resnet18", "torchvision_v1")
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    os.makedirs(tmp_path / "models")
    cached = tmp_path / "models" / entry.file_name
    with open(path, "rb") as file:
        cached.write_bytes(file.read())
    with pytest.raises(ValueError, match=r"has sha256 .* expected f37072fd"):
        kr.ResNet18(weights="torchvision_v1")
    digest = hashlib.sha256(cached.read_bytes()).hexdigest()
    monkeypatch.setitem(catalog.CATALOG, ("resnet18", "torchvision_v1"), dataclasses.replace(entry, file_hash=digest))
    model = kr.ResNet18(weights="torchvision_v1", input_shape=(SIZE, SIZE, 3), classifier_activation=None)
    assert _relative_error(model.predict(_images(), verbose=0), reference) < 1e-4


def test_offline_error_names_file_url_and_place(tmp_path, monkeypatch):
    entry = catalog.find("resnet50", "torchvision_v2")
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    monkeypatch.setitem(
        catalog.CATALOG,
        ("resnet50", "torchvision_v2"),
        dataclasses.replace(entry, url=f"http://127.0.0.1:9/{entry.file_name}"),
    )
    with pytest.raises(OSError, match=r"file resnet50-11ad3fa6.pth .*download http://127.0.0.1:9/resnet50-11ad3fa6"):
        kr.ResNet50(weights="torchvision_v2", include_top=False)


def test_unknown_name_lists_the_names():
    with pytest.raises(ValueError, match=r"pretrained names for resnet18: 'torchvision_v1', 'timm/resnet18"):
        kr.ResNet18(weights="torchvision_v3")
    with pytest.raises(ValueError, match=r"'timm/resnet50.a1_in1k' fills resnet50"):
        kr.ResNet18(weights="timm/resnet50.a1_in1k")
    for missing in ("missing/resnet18.pth", "resnet18.safetensors"):
        with pytest.raises(ValueError, match=f"weights must be an existing file; received weights='{missing}'"):
            kr.ResNet18(weights=missing)


def test_preprocessing_travels_into_the_model():
    entry = catalog.find("resnet50", "torchvision_v2")
    recorded = pretrained.Pretrained("x", "torch", entry.switches, entry.preprocessing, 1000).recorded_preprocessing
    assert recorded["resize_size"] == 232 and recorded["crop_size"] == 224
    np.testing.assert_allclose(recorded["mean"], [123.675, 116.28, 103.53])
    model = kr.ResNet18(include_top=False, include_preprocessing=True, preprocessing=recorded)
    assert model.get_layer("preprocessing_resize").get_config()["height"] == 232
    assert model.get_layer("preprocessing_crop").get_config()["height"] == 224
    assert model.preprocessing["interpolation"] == "bilinear" and model.includes_preprocessing
    image = np.random.default_rng(1).uniform(0, 255, (1, 300, 260, 3)).astype("float32")
    assert model.predict(image, verbose=0).shape == (1, 7, 7, 512)


def test_in_model_preprocessing_of_loaded_weights(torchvision_files):
    path, _ = torchvision_files[18]
    model = kr.ResNet18(weights=path, include_preprocessing=True, input_shape=(32, 32, 3))
    assert model.get_layer("preprocessing_resize").get_config()["height"] == round(32 * 256 / 224)
    raw = np.full((1, 40, 40, 3), 127.0, "float32")
    plain = kr.ResNet18(weights=path, input_shape=(32, 32, 3))
    normalised = (np.full((1, 32, 32, 3), 127.0 / 255) - catalog.IMAGENET_MEAN) / catalog.IMAGENET_STD
    np.testing.assert_allclose(
        model.predict(raw, verbose=0), plain.predict(normalised.astype("float32"), verbose=0), rtol=1e-4, atol=1e-6
    )


# --- timm --------------------------------------------------------------------------------------


@pytest.mark.parametrize("depth", [18, 50])
def test_timm_safetensors_gives_timm_logits(keras_models, depth, tmp_path):
    timm = pytest.importorskip("timm", reason="timm is not installed")
    safetensors_torch = pytest.importorskip("safetensors.torch", reason="safetensors is not installed")
    torch.manual_seed(depth + 1)
    module = _randomize_bn(timm.create_model(f"resnet{depth}", pretrained=False), depth + 1)
    path = str(tmp_path / f"resnet{depth}.safetensors")
    safetensors_torch.save_file(module.state_dict(), path)
    assert _relative_error(_load_and_predict(keras_models(depth), path), _torch_logits(module, _images())) < 1e-4


# --- the catalog against the sources' own lists --------------------------------------------------


def test_catalog_matches_torchvision_weights_enums():
    torchvision = pytest.importorskip("torchvision", reason="torchvision is not installed")
    listed = {(a, n) for (a, n), e in catalog.CATALOG.items() if e.source == "torchvision"}
    expected = set()
    for depth in (18, 34, 50, 101, 152):
        for weights in getattr(torchvision.models, f"ResNet{depth}_Weights"):
            name = "torchvision_" + weights.name.rsplit("_", 1)[1].lower()
            expected.add((f"resnet{depth}", name))
            entry = catalog.find(f"resnet{depth}", name)
            assert entry.url == weights.url and weights.url.endswith(f"-{entry.file_hash}.pth")
            assert entry.top1 == weights.meta["_metrics"]["ImageNet-1K"]["acc@1"]
            transform = weights.transforms()
            assert entry.preprocessing["crop_size"] == transform.crop_size[0]
            assert entry.preprocessing["resize_size"] == transform.resize_size[0]
            assert entry.preprocessing["interpolation"] == transform.interpolation.value
            assert tuple(entry.preprocessing["mean"]) == tuple(transform.mean)
    assert listed == expected


def test_catalog_matches_timm_pretrained_cfgs():
    timm = pytest.importorskip("timm", reason="timm is not installed")
    listed = {n for (a, n), e in catalog.CATALOG.items() if e.source == "timm"}
    expected = set()
    for name in timm.list_pretrained("resnet*"):
        if name.split(".")[0] not in ("resnet18", "resnet34", "resnet50", "resnet101", "resnet152"):
            continue
        cfg = timm.models.get_pretrained_cfg(name).to_dict()
        if cfg["num_classes"] != 1000:
            continue
        expected.add(f"timm/{name}")
        entry = catalog.find(name.split(".")[0], f"timm/{name}")
        assert entry.url in (cfg["url"], f"https://huggingface.co/{cfg['hf_hub_id']}/resolve/main/model.safetensors")
        assert entry.preprocessing["crop_size"] == cfg["input_size"][1]
        assert entry.preprocessing["resize_size"] == int(cfg["input_size"][1] / cfg["crop_pct"])
        assert (entry.preprocessing["interpolation"], entry.licence) == (cfg["interpolation"], cfg["license"])
        assert tuple(entry.preprocessing["mean"]) == tuple(cfg["mean"])
    assert listed == expected


def test_catalog_matches_keras_hub_presets():
    presets = pytest.importorskip("keras_hub.src.models.resnet.resnet_presets", reason="keras-hub is not installed")
    for (_, name), entry in catalog.CATALOG.items():
        if entry.source == "keras_hub":
            assert presets.backbone_presets[name.split("/", 1)[1]]["kaggle_handle"] == entry.url


# --- keras-hub ---------------------------------------------------------------------------------


def _keras_hub_preset(folder, depth, preact, seed):
    keras_hub = pytest.importorskip("keras_hub", reason="keras-hub is not installed")
    arch = ARCHITECTURES[f"resnet{depth}"]
    keras.utils.set_random_seed(seed)
    backbone = keras_hub.models.ResNetBackbone(
        input_conv_filters=[64],
        input_conv_kernel_sizes=[7],
        stackwise_num_filters=[64, 128, 256, 512],
        stackwise_num_blocks=list(arch.depths),
        stackwise_num_strides=[1, 2, 2, 2],
        block_type=f"{arch.block}_block",
        use_pre_activation=preact,
    )
    rng = np.random.default_rng(seed)
    for layer in backbone.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            gamma, beta, mean, var = layer.get_weights()
            layer.set_weights(
                [
                    rng.uniform(0.5, 1.5, gamma.shape),
                    rng.uniform(-0.2, 0.2, beta.shape),
                    rng.uniform(-0.5, 0.5, mean.shape),
                    rng.uniform(0.5, 2.0, var.shape),
                ]
            )
    classifier = keras_hub.models.ImageClassifier(backbone=backbone, num_classes=1000, activation=None)
    classifier.save_to_preset(str(folder))
    return classifier.predict(_images(), verbose=0)


# Each block kind of the catalog's keras-hub presets (resnet_{18,50,101,152}_imagenet, resnet_v2_{50,101}_imagenet);
# deeper ones only repeat blocks.
@pytest.mark.parametrize(("depth", "preact"), [(18, False), (50, False), (50, True)])
def test_keras_hub_preset_gives_keras_hub_logits(depth, preact, tmp_path):
    reference = _keras_hub_preset(tmp_path, depth, preact, seed=depth)
    name = f"resnet{depth}{'v2' if preact else ''}"
    model = kr.get_model(name, weights=str(tmp_path), input_shape=(SIZE, SIZE, 3), classifier_activation=None)
    assert _relative_error(model.predict(_images(), verbose=0), reference) < 1e-4
    if preact:  # keras-hub's v2 strides in the first block of a stage and pads its max-pool with -inf
        assert model.get_layer("conv3_block1_2_conv").strides == (2, 2)
        assert model.get_layer("pool1_pad").value == -np.inf


def test_keras_hub_preset_of_another_network_is_refused(tmp_path):
    _keras_hub_preset(tmp_path, 18, False, seed=0)
    with pytest.raises(ValueError, match=r"stackwise_num_blocks: \[2, 2, 2, 2\], resnet34 needs \[3, 4, 6, 3\]"):
        kr.ResNet34(weights=str(tmp_path))


# --- akamaster's CIFAR zoo -----------------------------------------------------------------------


class _AkamasterBlock(torch.nn.Module):
    """akamaster/pytorch_resnet_cifar10's BasicBlock, option A: new channels padded on both sides."""

    def __init__(self, in_planes, planes, stride):
        super().__init__()
        self.conv1 = torch.nn.Conv2d(in_planes, planes, 3, stride, 1, bias=False)
        self.bn1 = torch.nn.BatchNorm2d(planes)
        self.conv2 = torch.nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        self.bn2 = torch.nn.BatchNorm2d(planes)
        self.pad = (stride != 1 or in_planes != planes) and planes // 4

    def forward(self, x):
        out = torch.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        short = x if not self.pad else torch.nn.functional.pad(x[:, :, ::2, ::2], (0, 0, 0, 0, self.pad, self.pad))
        return torch.relu(out + short)


class _AkamasterResNet(torch.nn.Module):
    def __init__(self, n):
        super().__init__()
        self.conv1 = torch.nn.Conv2d(3, 16, 3, 1, 1, bias=False)
        self.bn1 = torch.nn.BatchNorm2d(16)
        blocks, in_planes = [], 16
        for planes, stride in ((16, 1), (32, 2), (64, 2)):
            stage = []
            for index in range(n):
                stage.append(_AkamasterBlock(in_planes, planes, stride if index == 0 else 1))
                in_planes = planes
            blocks.append(torch.nn.Sequential(*stage))
        self.layer1, self.layer2, self.layer3 = blocks
        self.linear = torch.nn.Linear(64, 10)

    def forward(self, x):
        out = torch.relu(self.bn1(self.conv1(x)))
        out = self.layer3(self.layer2(self.layer1(out)))
        return self.linear(out.mean(dim=(2, 3)))


@pytest.mark.parametrize("depth", [20, 32])
def test_akamaster_checkpoint_gives_its_logits(depth, tmp_path):
    torch.manual_seed(depth)
    module = _randomize_bn(_AkamasterResNet((depth - 2) // 6), depth)
    path = str(tmp_path / f"resnet{depth}.th")
    # akamaster saves a training checkpoint of a DataParallel model.
    state = {f"module.{key}": value for key, value in module.state_dict().items()}
    torch.save({"state_dict": state, "best_prec1": 91.7}, path)
    model = kr.get_model(f"resnet{depth}", weights=path, classifier_activation=None)
    images = _images(32, seed=depth)
    assert _relative_error(model.predict(images, verbose=0), _torch_logits(module, images)) < 1e-4
    assert isinstance(model.get_layer("conv3_block1_0_pad"), ZeroPadShortcut)


def test_akamaster_permutation_keeps_channels_distinct():
    permutations = pretrained.convert.akamaster_permutations((16, 32, 64))
    assert [sorted(p.tolist()) for p in permutations] == [list(range(w)) for w in (16, 32, 64)]
    assert permutations[1][:16].tolist() == list(range(8, 24))
