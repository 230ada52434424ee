"""`weights="cifar10"`: the ResNet-20 weights shipped in the package load offline, checked, and score their record."""

import json
import shutil
import sys
from pathlib import Path

import keras
import numpy as np
import pytest

import keras_resnet as kr
from keras_resnet.models import shipped

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "benchmarks"))
import ship_cifar10_weights as ship  # noqa: E402

DATA = ROOT.parent / "shared" / "data" / "cifar-10-batches-py"
PATHS = shipped.files("cifar10")
RECORD = json.loads(Path(PATHS["record"]).read_text())

needs_data = pytest.mark.skipif(
    not (DATA / "test_batch").is_file(), reason=f"the CIFAR-10 python batches {DATA} are absent (../shared/data)"
)


def _accuracy(model, images, labels):
    predictions = model.predict(images, batch_size=ship.BATCH_SIZE, verbose=0)
    return int(np.sum(np.argmax(predictions, axis=-1) == labels))


def test_shipped_files_match_their_record():
    assert {key: shipped.sha256(PATHS[key]) for key in ("weights", "mean")} == RECORD["sha256"]
    assert 0.5e6 < Path(PATHS["weights"]).stat().st_size < 2e6
    assert np.load(PATHS["mean"]).shape == (32, 32, 3)
    test = RECORD["test"]
    assert (test["images"], test["correct"] / test["images"]) == (10_000, test["accuracy"])
    assert RECORD["status"] == "final" or RECORD["status"].startswith(f"interim: epoch {RECORD['epochs']} of ")


def test_readme_states_the_shipped_figures():
    readme = (ROOT / "README.md").read_text()
    for text in ship.readme_texts(RECORD):
        assert text in readme


def test_loads_offline_and_records_its_mean(monkeypatch):
    def offline(*args, **kwargs):
        raise AssertionError("weights='cifar10' must not download anything")

    monkeypatch.setattr(keras.utils, "get_file", offline)
    model = kr.ResNet20(weights="cifar10")
    from_file = kr.ResNet20(weights=PATHS["weights"])
    assert all(np.array_equal(a, b) for a, b in zip(model.get_weights(), from_file.get_weights()))
    assert model.preprocessing == {"mean": np.load(PATHS["mean"]).tolist(), "std": 255.0}
    assert not model.includes_preprocessing
    assert kr.get_model("resnet20", weights="cifar10").get_weights()[0].tolist() == model.get_weights()[0].tolist()


def test_include_preprocessing_takes_raw_images_normalised_by_the_shipped_mean():
    images = np.random.default_rng(0).integers(0, 256, (4, 32, 32, 3)).astype("uint8")
    raw = kr.ResNet20(weights="cifar10", include_preprocessing=True)
    plain = kr.ResNet20(weights="cifar10")
    expected = plain.predict((images - np.load(PATHS["mean"])) / 255.0, verbose=0)
    np.testing.assert_allclose(raw.predict(images, verbose=0), expected, atol=1e-5)
    assert raw.includes_preprocessing


def test_include_top_false_is_the_backbone():
    backbone = kr.ResNet20(weights="cifar10", include_top=False)
    assert backbone.output_shape == (None, None, None, 64)
    pooled = kr.ResNet20(weights="cifar10", include_top=False, pooling="avg", input_shape=(32, 32, 3))
    assert pooled.output_shape == (None, 64)
    full = kr.ResNet20(weights="cifar10")
    last = "conv4_block3_2_conv"
    np.testing.assert_array_equal(backbone.get_layer(last).kernel, full.get_layer(last).kernel)


@pytest.mark.parametrize("key", ["weights", "mean"])
def test_a_tampered_file_is_refused(tmp_path, monkeypatch, key):
    for path in PATHS.values():
        shutil.copy(path, tmp_path)
    copy = tmp_path / Path(PATHS[key]).name
    content = bytearray(copy.read_bytes())
    content[-100] ^= 1
    copy.write_bytes(bytes(content))
    monkeypatch.setattr(shipped, "DATA_DIR", str(tmp_path))
    with pytest.raises(ValueError, match=f"{copy.name} has sha256 .* says {RECORD['sha256'][key]}.*reinstall"):
        kr.ResNet20(weights="cifar10")


@pytest.mark.parametrize(
    "build, received",
    [
        (lambda: kr.ResNet32(weights="cifar10"), "received resnet32"),
        (lambda: kr.get_model("resnet56", weights="cifar10"), "received resnet56"),
        (lambda: kr.Plain20(weights="cifar10"), "received resnet20 with plain=True"),
        (lambda: kr.ResNet20(weights="cifar10", shortcut="B"), "received resnet20 with shortcut='B'"),
        (lambda: kr.ResNet(kr.ARCHITECTURES["resnet20"], preact=True, weights="cifar10"), "preact=True"),
        (lambda: kr.ResNet50(weights="cifar10"), "received resnet50"),
        (lambda: kr.ResNet20(weights="cifar100"), "weights='cifar100': the package ships weights for resnet20"),
    ],
)
def test_other_networks_and_data_sets_say_what_exists_and_how_to_train(build, received):
    with pytest.raises(ValueError, match=received) as error:
        build()
    assert "resnet20 weights='cifar10'" in str(error.value)
    assert "keras-resnet train --model resnet56 --dataset cifar10" in str(error.value)


def test_classes_must_be_ten_with_the_classifier():
    with pytest.raises(ValueError, match="classes must be 10 .* received classes=100.*include_top=False"):
        kr.ResNet20(weights="cifar10", classes=100)
    assert kr.ResNet20(weights="cifar10", include_top=False, classes=100, pooling="avg").output_shape == (None, 64)


@pytest.mark.slow
@needs_data
def test_scores_the_recorded_accuracy_on_the_test_batch():
    model = kr.ResNet20(weights="cifar10", include_preprocessing=True)
    images, labels = (np.asarray(tensor) for tensor in kr.data.cifar_source(DATA, split="test").tensors)
    assert images.dtype == np.uint8 and len(labels) == 10_000
    assert _accuracy(model, images, labels) == RECORD["test"]["correct"]


def test_ship_script_writes_files_that_load_and_score_their_record(tmp_path, monkeypatch, cifar10_files):
    data_dir, _ = cifar10_files
    run = tmp_path / "run"
    run.mkdir()
    kr.ResNet20().save(run / "last.keras")
    mean = np.random.default_rng(1).uniform(100, 150, (32, 32, 3)).astype("float32")
    (run / "preprocessing.json").write_text(json.dumps({"mean": mean.tolist(), "std": 255.0}))
    recipe = "Recipe(batch_size=128, lr=0.1, schedule='step', total_steps=64000, boundaries=(32000, 48000))"
    config = {"model": "resnet20", "dataset": "cifar10", "epochs": None, "recipe": recipe, "seed": 0}
    (run / "run.json").write_text(json.dumps({**config, "full_train": True, "data_dir": "DATA"}))
    (run / "log.csv").write_text("epoch,accuracy\n0,0.4\n1,0.5\n2,0.6\n")
    out = tmp_path / "out"
    record = ship.ship(run, data_dir=data_dir, output_dir=out, commit="abc1234", readme=None)
    assert record["status"] == "interim: epoch 3 of 164 (the run continues)"
    assert (record["iterations"], record["commit"]) == (3 * 391, "abc1234")
    assert record["command"] == "keras-resnet train --model resnet20 --dataset cifar10 --data-dir DATA --full-train"
    assert json.loads((out / "resnet20_cifar10.json").read_text()) == record
    with pytest.raises(ValueError, match="--status final needs the whole run"):
        ship.status_text(3, 164, "final")

    monkeypatch.setattr(shipped, "DATA_DIR", str(out))
    model = kr.ResNet20(weights="cifar10", include_preprocessing=True)
    np.testing.assert_array_equal(np.asarray(model.preprocessing["mean"]), mean)
    images, labels = (np.asarray(tensor) for tensor in kr.data.cifar_source(data_dir, split="test").tensors)
    assert _accuracy(model, images, labels) == record["test"]["correct"]
