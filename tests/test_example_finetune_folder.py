"""Tests of examples/finetune_folder.py: the preprocessing follows the weights, the folder is checked first."""

import importlib.util
import pathlib
import sys

import numpy as np
import pytest

pytest.importorskip("tensorflow")

import keras_resnet as kr  # noqa: E402
from keras_resnet import shapes  # noqa: E402

EXAMPLE = pathlib.Path(__file__).resolve().parents[1] / "examples" / "finetune_folder.py"


@pytest.fixture(scope="module")
def example():
    spec = importlib.util.spec_from_file_location("finetune_folder", EXAMPLE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    path = tmp_path_factory.mktemp("shapes")
    shapes.save_folder(path, 8, 4, classes=("cross", "ring"), image_size=40)
    return path


def test_the_preprocessing_is_the_one_the_backbone_records(example):
    backbone = kr.ResNet18(include_top=False, pooling="avg", input_shape=(32, 32, 3))
    assert example.preprocessing_for(backbone) == "caffe"
    backbone.record(preprocessing="tf")  # what ResNet50V2(weights="imagenet") records
    assert example.preprocessing_for(backbone) == "tf"


@pytest.mark.parametrize("preprocessing", ["caffe", "tf"])
def test_pipelines_preprocess_as_the_weights_record(example, folder, preprocessing):
    (_, validation), class_names = example.pipelines(folder, 32, 4, preprocessing)
    images, _ = next(iter(validation))
    mean, std, reverse_channels = kr.normalization.preprocessing_constants(preprocessing)
    pixels = np.asarray(images)[..., ::-1] * std + mean if reverse_channels else np.asarray(images) * std + mean
    assert class_names == ("cross", "ring")
    assert pixels.min() >= -1e-3 and pixels.max() <= 255 + 1e-3
    if preprocessing == "tf":
        assert float(np.min(images)) >= -1.0 and float(np.max(images)) <= 1.0


def test_a_folder_without_validation_is_refused_before_anything_trains(example, folder, tmp_path, monkeypatch, capsys):
    (tmp_path / "train").symlink_to(folder / "train")

    def fit(*args, **kwargs):
        raise AssertionError("trained before checking --folder")

    monkeypatch.setattr(example, "fit", fit)
    monkeypatch.setattr(sys, "argv", ["finetune_folder.py", "--folder", str(tmp_path), "--output", str(tmp_path / "o")])
    with pytest.raises(SystemExit):
        example.main()
    assert (
        f"--folder must hold train and validation sub-folders of class folders; received '{tmp_path}', which has "
        "no validation" in capsys.readouterr().err
    )


def test_pretrained_weights_preprocess_with_their_statistics_and_their_crop(example, folder, resnet18_pth, monkeypatch):
    backbone = kr.ResNet18(weights=resnet18_pth[0], include_top=False, pooling="avg", input_shape=(32, 32, 3))
    preprocessing = example.preprocessing_for(backbone)
    assert preprocessing["mean"] == pytest.approx([255 * m for m in kr.pretrained.catalog.IMAGENET_MEAN])
    (_, validation), _ = example.pipelines(folder, 32, 4, preprocessing)
    images = np.asarray(next(iter(validation))[0])
    pixels = images * np.asarray(preprocessing["std"]) + np.asarray(preprocessing["mean"])
    assert pixels.min() >= -1e-3 and pixels.max() <= 255 + 1e-3 and np.abs(images).max() < 3
    # The validation centre crop follows the record: torchvision_v2's 232 / 224.
    calls = []
    monkeypatch.setattr(kr.data, "imagenet_pipeline", lambda source, **options: calls.append(options))
    example.pipelines(folder, 224, 4, {**preprocessing, "resize_size": 232, "crop_size": 224})
    assert [call["resize_size"] for call in calls] == [232, 232]


def test_a_backbone_that_normalises_itself_gets_raw_pixels(example, folder):
    backbone = kr.ResNet18(include_top=False, pooling="avg", include_preprocessing=True, input_shape=(32, 32, 3))
    assert example.preprocessing_for(backbone) is None
    (train, validation), _ = example.pipelines(folder, 32, 4, example.preprocessing_for(backbone))
    for images in (np.asarray(next(iter(split))[0]) for split in (train, validation)):
        assert images.min() >= 0 and images.max() > 100 and images.max() <= 255
