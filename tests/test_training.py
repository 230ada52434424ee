import csv
import json
import math
import os
import shutil
import warnings

import keras
import numpy as np
import pytest

from keras_resnet import distribute, presets, shapes, training

EPOCHS, TRAIN_SIZE, BATCH = 6, 2000, 32
STEPS_PER_EPOCH = math.ceil(TRAIN_SIZE / BATCH)  # the last batch is partial


@pytest.fixture(scope="module")
def shapes_run(tmp_path_factory):
    """ResNet-20 trained briefly on the embedded shapes, with a run folder."""
    output = tmp_path_factory.mktemp("run")
    result = training.train(
        "resnet20",
        "shapes",
        epochs=EPOCHS,
        batch_size=BATCH,
        train_size=TRAIN_SIZE,
        validation_size=500,
        output_dir=str(output),
        verbose=0,
    )
    return result, output


def test_training_on_the_embedded_shapes_beats_chance_clearly(shapes_run):
    result, _ = shapes_run
    chance = 1 / len(shapes.CLASS_NAMES)
    assert result["val_accuracy"] > 2.5 * chance, result["history"]["val_accuracy"]
    # Learning, not luck: the training error falls over the run.
    accuracies = result["history"]["accuracy"]
    assert accuracies[-1] > accuracies[0] + 0.2


def test_the_recipe_is_the_papers_step_schedule_stretched_to_the_run(shapes_run):
    result, _ = shapes_run
    recipe = result["recipe"]
    total = EPOCHS * STEPS_PER_EPOCH
    assert result["steps"] == total == recipe.total_steps
    # The paper drops the rate at 32k and 48k of 64k iterations: at 1/2 and 3/4 of the run.
    assert recipe.boundaries == (round(total / 2), round(total * 3 / 4))
    # Linear scaling of the paper's 0.1 at batch 128; its momentum and decay.
    assert recipe.lr == pytest.approx(0.1 * BATCH / 128)
    assert (recipe.momentum, recipe.weight_decay) == (0.9, 1e-4)


def test_the_run_folder_holds_checkpoints_log_and_curves(shapes_run):
    result, output = shapes_run
    with open(output / "log.csv") as handle:
        rows = list(csv.DictReader(handle))
    assert [int(row["epoch"]) for row in rows] == list(range(EPOCHS))
    assert float(rows[-1]["val_accuracy"]) == pytest.approx(result["val_accuracy"], abs=1e-6)
    assert (output / "curves.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert not (output / "backup").exists(), "a finished run keeps no backup"
    last = keras.saving.load_model(output / "last.keras")
    assert int(last.optimizer.iterations) == result["steps"]
    assert last.output_shape == (None, len(shapes.CLASS_NAMES))


def test_evaluate_a_checkpoint_agrees_with_the_training_run(shapes_run):
    result, output = shapes_run
    scores = training.evaluate_run(str(output / "last.keras"), "shapes", train_size=TRAIN_SIZE, validation_size=500)
    assert scores["count"] == 500
    assert scores["top1_accuracy"] == pytest.approx(result["val_accuracy"], abs=1e-6)
    assert scores["top1_error"] == pytest.approx(1 - scores["top1_accuracy"])
    # Five classes: the true class is always among the top five.
    assert scores["top5_accuracy"] == 1.0


def test_a_backup_of_other_arguments_is_refused(tmp_path):
    (tmp_path / "backup").mkdir()
    (tmp_path / "run.json").write_text(json.dumps({"model": "plain20"}))
    with pytest.raises(ValueError, match="holds the backup of an unfinished run with other arguments"):
        training.train("resnet20", "shapes", epochs=1, train_size=64, validation_size=16, output_dir=str(tmp_path))


def test_a_fresh_run_starts_a_new_log(tmp_path):
    (tmp_path / "log.csv").write_text("epoch,accuracy\n0,0.5\n1,0.6\n2,0.7\n")
    training.train(
        "resnet20",
        "shapes",
        epochs=1,
        batch_size=32,
        train_size=64,
        validation_size=16,
        output_dir=str(tmp_path),
        verbose=0,
    )
    with open(tmp_path / "log.csv") as handle:
        assert [row["epoch"] for row in csv.DictReader(handle)] == ["0"]


def test_a_folder_of_images_trains_with_its_class_names(tmp_path):
    shapes.save_folder(str(tmp_path), 64, 16, classes=("ring", "cross", "square"))
    result = training.train("resnet20", f"folder:{tmp_path}", augmentation="cifar", epochs=1, batch_size=32, verbose=0)
    assert result["model"].output_shape == (None, 3)
    assert result["steps"] == 2
    splits = training.datasets(f"folder:{tmp_path}", batch_size=16, augmentation="imagenet", image_size=24)
    assert splits.class_names == ("cross", "ring", "square")
    assert next(iter(splits.train))[0].shape == (16, 24, 24, 3)


def test_a_pair_of_pipelines_trains_with_the_batch_size_it_was_built_with():
    splits = training.datasets("shapes", batch_size=16, train_size=48, validation_size=16)
    pair = splits.train, splits.validation
    result = training.train("resnet20", pair, epochs=1, batch_size=16, classes=5, verbose=0)
    assert result["steps"] == 3
    assert result["recipe"].lr == pytest.approx(0.1 * 16 / 128)
    with pytest.raises(ValueError, match="takes batch_size .* received batch_size=None"):
        training.train("resnet20", pair, epochs=1, classes=5)


def _plain_pipelines(count=48, batch_size=16, classes=3):
    """A user's own tf.data pipelines: no keras_resnet, no attributes."""
    import tensorflow as tf

    rng = np.random.default_rng(0)
    x = rng.uniform(-1, 1, (count, 16, 16, 3)).astype("float32")
    y = (np.arange(count) % classes).astype("int32")
    return tuple(tf.data.Dataset.from_tensor_slices((x, y)).batch(batch_size).prefetch(1) for _ in range(2))


def test_plain_user_pipelines_train_with_the_class_count_from_an_argument_or_the_model():
    pair = _plain_pipelines()
    assert not hasattr(pair[0], "class_names")
    result = training.train("resnet20", pair, epochs=2, batch_size=16, classes=3, verbose=0)
    assert result["model"].output_shape == (None, 3) and result["steps"] == 6
    with pytest.raises(ValueError, match="needs classes .*; received classes=None"):
        training.train("resnet20", pair, epochs=1, batch_size=16)
    from keras_resnet.models import ResNet20

    built = ResNet20(input_shape=(16, 16, 3), classes=3)
    assert training.train(built, pair, epochs=1, batch_size=16, verbose=0)["steps"] == 3


def test_a_pipeline_of_unknown_length_is_refused_without_steps_per_epoch():
    train, validation = _plain_pipelines()
    unknown = train.filter(lambda x, y: True)
    with pytest.raises(ValueError, match="cardinality is unknown.*pass steps_per_epoch"):
        training.train("resnet20", (unknown, validation), epochs=1, batch_size=16, classes=3)
    with pytest.raises(ValueError, match="cardinality is infinite.*pass steps_per_epoch"):
        training.train("resnet20", (train.repeat(), validation), batch_size=16, classes=3)
    result = training.train(
        "resnet20", (train.repeat(), validation), epochs=2, batch_size=16, classes=3, steps_per_epoch=2, verbose=0
    )
    assert (result["steps"], result["epochs"]) == (4, 2)


def test_datasets_are_cifar_pipelines_with_the_shapes_classes():
    splits = training.datasets("shapes", batch_size=16, train_size=48, validation_size=20)
    train, validation = splits.train, splits.validation
    assert splits.class_names == shapes.CLASS_NAMES and splits.test is None
    images, labels = next(iter(train))
    assert images.shape == (16, 32, 32, 3) and images.dtype == "float32"
    # The per-pixel mean of the training images is subtracted.
    assert abs(float(np.mean(images))) < 0.1
    assert [int(validation.cardinality()), int(train.cardinality())] == [2, 3]


def test_training_data_is_augmented_and_validation_data_is_not():
    splits = training.datasets("shapes", batch_size=8, train_size=8, validation_size=8, seed=1)
    train, validation = splits.train, splits.validation
    first, second = (next(iter(train))[0].numpy() for _ in range(2))
    assert not np.allclose(np.sort(first.ravel()), np.sort(second.ravel()))
    np.testing.assert_array_equal(next(iter(validation))[0], next(iter(validation))[0])


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda: training.datasets("folder:/nonexistent"), "needs PATH/train \\(and PATH/validation or PATH/val"),
        (lambda: training.datasets("cifar10", train_size=10), "apply to dataset='shapes' only"),
        (lambda: training.datasets("shapes", augmentation="mixup"), "augmentation must be one of"),
        (lambda: training.datasets(""), "dataset must be"),
        (lambda: training.train("resnet20", epochs=0), "epochs must be a positive integer; received 0"),
        (lambda: training.train("resnet21"), "model must be one of"),
        (lambda: training.evaluate_run("missing.keras"), "received 'missing.keras'"),
        (lambda: training.evaluate_run(keras.Sequential(), method="five_crop"), "method must be one of"),
    ],
)
def test_bad_arguments_name_the_argument_and_the_value(call, message):
    with pytest.raises(ValueError, match=message):
        call()


def test_an_unknown_recipe_is_refused():
    with pytest.raises(ValueError, match="recipe must be one of"):
        training.train("resnet20", "shapes", recipe="mnist", train_size=64, validation_size=16)


def test_evaluate_refuses_an_archive_with_a_lambda_layer(tmp_path):
    inputs = keras.Input((32, 32, 3))
    outputs = keras.layers.Dense(2)(keras.layers.GlobalAveragePooling2D()(keras.layers.Lambda(lambda x: x * 2)(inputs)))
    keras.Model(inputs, outputs).save(tmp_path / "lambda.keras")
    with pytest.raises(ValueError, match="safe_mode"):
        training.evaluate_run(tmp_path / "lambda.keras", "shapes", train_size=8, validation_size=8)


def _resident_megabytes():
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("VmRSS:")) / 1024


@pytest.mark.skipif(not os.path.exists("/proc/self/status"), reason="reads VmRSS from /proc")
def test_repeated_fits_do_not_grow_memory():
    # Bound: the allocator's own swings measured here are about 20 MB either way; a leak
    # that retraces the train step on every fit adds about 18 MB per fit (180 MB over 10).
    from keras_resnet import presets
    from keras_resnet.models import ResNet20

    keras.utils.set_random_seed(0)
    model = ResNet20(input_shape=(16, 16, 3), classes=10)
    presets.compile_for(model, "cifar10")
    x = np.random.default_rng(0).uniform(0, 1, (64, 16, 16, 3)).astype("float32")
    y = np.arange(64) % 10
    for _ in range(2):  # warm-up: trace the step, fill the allocator's pools
        model.fit(x, y, batch_size=32, verbose=0)
    start = _resident_megabytes()
    for _ in range(10):
        model.fit(x, y, batch_size=32, verbose=0)
    assert _resident_megabytes() - start < 50


@pytest.fixture(scope="module")
def cifar10_dir(tmp_path_factory):
    """Fake CIFAR-10 python batch files: 5 training batches of 20 images (10 per class in all), a test batch of 20."""
    import pickle

    root = tmp_path_factory.mktemp("cifar") / "cifar-10-batches-py"
    root.mkdir()
    rng = np.random.default_rng(0)
    names = [
        name.encode()
        for name in ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")
    ]
    (root / "batches.meta").write_bytes(pickle.dumps({b"label_names": names}))
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        content = {b"data": rng.integers(0, 256, (20, 3072), dtype=np.uint8), b"labels": list(range(10)) * 2}
        (root / name).write_bytes(pickle.dumps(content))
    return root


def test_cifar_holds_out_a_balanced_tenth_and_reports_the_test_set_separately(cifar10_dir, tmp_path):
    result = training.train(
        "resnet20", "cifar10", data_dir=str(cifar10_dir), epochs=1, batch_size=30, output_dir=str(tmp_path), verbose=0
    )
    # 100 training images, 10 per class: the last one of each class validates.
    assert result["steps_per_epoch"] == 3  # 90 images
    assert result["splits"] == {
        "train": "the cifar10 training set less the hold-out (90 images)",
        "validation": "hold-out: the last 10% of each class of the cifar10 training set (10 images)",
        "test": "the cifar10 test set (20 images)",
    }
    assert result["val_accuracy"] is not None and result["test_accuracy"] is not None
    run = json.loads((tmp_path / "run.json").read_text())
    assert run["results"]["test_accuracy"] == {"value": result["test_accuracy"], "split": result["splits"]["test"]}
    assert run["results"]["validation_accuracy"]["split"].startswith("hold-out")
    # The run's normalisation is next to its checkpoints, and evaluate finds it.
    preprocessing = training.run_preprocessing(tmp_path / "best.keras")
    assert preprocessing == json.loads((tmp_path / "preprocessing.json").read_text())
    assert np.asarray(preprocessing["mean"]).shape == (32, 32, 3) and preprocessing["std"] == 255.0
    scores = training.evaluate_run(tmp_path / "last.keras", "cifar10", data_dir=str(cifar10_dir), split="test")
    assert scores["count"] == 20 and scores["split"] == result["splits"]["test"]
    assert scores["top1_accuracy"] == pytest.approx(result["test_accuracy"], abs=1e-6)


def test_full_train_uses_every_training_image_and_reports_only_the_test_error(cifar10_dir, tmp_path):
    result = training.train(
        "resnet20",
        "cifar10",
        data_dir=str(cifar10_dir),
        epochs=1,
        batch_size=25,
        full_train=True,
        output_dir=str(tmp_path),
        verbose=0,
    )
    assert result["steps_per_epoch"] == 4  # all 100 images
    assert result["val_accuracy"] is None and result["test_accuracy"] is not None
    assert set(result["splits"]) == {"train", "test"}
    assert not (tmp_path / "best.keras").exists() and (tmp_path / "last.keras").exists()
    with pytest.raises(ValueError, match="full_train applies to dataset='cifar10' or 'cifar100'"):
        training.train("resnet20", "shapes", full_train=True, epochs=1, train_size=32, validation_size=16)


def test_a_folder_without_a_validation_folder_holds_out_the_last_tenth_of_each_class(tmp_path):
    for name, shade in (("dark", 40), ("light", 200)):
        folder = tmp_path / "train" / name
        folder.mkdir(parents=True)
        for index in range(20):
            keras.utils.save_img(folder / f"{index:04d}.png", np.full((16, 16, 3), shade, np.uint8))
    splits = training.datasets(f"folder:{tmp_path}", batch_size=64, image_size=16)
    train, validation = splits.train, splits.validation
    ((_, labels),) = validation.as_numpy_iterator()
    assert sorted(labels.tolist()) == [0, 0, 1, 1]
    assert int(train.cardinality()) == 1 and len(next(iter(train))[1]) == 36


def test_images_that_fail_to_decode_are_counted_and_reported_every_epoch(tmp_path):
    for split, count in (("train", 16), ("validation", 4)):
        for name, shade in (("dark", 40), ("light", 200)):
            folder = tmp_path / split / name
            folder.mkdir(parents=True)
            for index in range(count):
                keras.utils.save_img(folder / f"{index:04d}.png", np.full((16, 16, 3), shade, np.uint8))
    # A JPEG start and end marker around garbage: the header check lets it through, decoding fails.
    broken = tmp_path / "train" / "dark" / "0099.jpg"
    broken.write_bytes(b"\xff\xd8\xff\xe0" + bytes(range(256)) * 4 + b"\xff\xd9")
    with pytest.warns(UserWarning, match=r"epoch (\d): 1 image\(s\) failed to decode .*0099\.jpg") as caught:
        result = training.train(
            "resnet20",
            f"folder:{tmp_path}",
            augmentation="cifar",
            image_size=16,
            epochs=2,
            batch_size=17,
            output_dir=str(tmp_path / "run"),
            verbose=0,
        )
    assert [str(w.message)[:7] for w in caught if "failed to decode" in str(w.message)] == ["epoch 1", "epoch 2"]
    assert result["steps"] == 4  # every epoch still has its 33 examples: 2 batches
    assert result["decode_failures"] == {"count": 1, "first": [str(broken)]}
    run = json.loads((tmp_path / "run" / "run.json").read_text())
    assert run["decode_failures"] == result["decode_failures"]


FOUR_REPLICAS = distribute.Replication("mirrored", None, 4, 1, True, ())


def test_recipe_scales_with_replicas():
    recipe = training.scale_recipe("cifar10", FOUR_REPLICAS, per_replica_batch_size=128)
    assert (recipe.batch_size, recipe.lr, recipe.total_steps, recipe.boundaries) == (
        512,
        pytest.approx(0.4),
        16_000,
        (8_000, 12_000),
    )
    fixed = training.scale_recipe("cifar10", FOUR_REPLICAS, 128, scale_learning_rate=False)
    assert (fixed.batch_size, fixed.lr, fixed.total_steps) == (512, 0.1, 16_000)
    assert training.scale_recipe("cifar10", FOUR_REPLICAS) == presets.RECIPES["cifar10"]


def test_evaluate_run_normalises_a_checkpoint_as_its_run_did(shapes_run, tmp_path):
    result, output = shapes_run
    shutil.copy(output / "last.keras", tmp_path / "last.keras")
    options = dict(train_size=TRAIN_SIZE, validation_size=500)
    # Without the run's preprocessing.json the statistics are computed again from the same training split.
    recomputed = training.evaluate_run(tmp_path / "last.keras", "shapes", **options)
    assert recomputed["top1_accuracy"] == pytest.approx(result["val_accuracy"], abs=1e-6)
    # With one, its mean is the one subtracted: a mean far off leaves the model guessing one class.
    preprocessing = json.loads((output / "preprocessing.json").read_text())
    shifted = {**preprocessing, "mean": (np.asarray(preprocessing["mean"]) + 1e4).tolist()}
    (tmp_path / "preprocessing.json").write_text(json.dumps(shifted))
    doctored = training.evaluate_run(tmp_path / "last.keras", "shapes", **options)
    assert doctored["top1_accuracy"] < result["val_accuracy"] - 0.2


@pytest.mark.parametrize(
    "recipe, attached, warns", [("imagenet", False, True), ("imagenet", True, False), ("cifar10", False, False)]
)
def test_distributed_model_warns_only_when_a_recipe_needs_callbacks_it_has_not_got(recipe, attached, warns):
    def build(**kwargs):
        return keras.Sequential([keras.Input((4,)), keras.layers.Dense(3, activation="softmax")], **kwargs)

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        run = training.distributed_model(build, recipe, strategy="none", callbacks_attached=attached, name="tiny")
    assert run.model.compiled and run.model.name == "tiny" and run.replication.kind == "none"
    assert any("PlateauDecay" in str(w.message) for w in caught) == warns


def test_ten_crop_evaluation_of_a_named_data_set_scores_every_validation_image(tmp_path):
    from keras_resnet.models import ResNet20

    for split, count in (("train", 2), ("validation", 3)):
        for name, shade in (("dark", 40), ("light", 200)):
            folder = tmp_path / split / name
            folder.mkdir(parents=True)
            for index in range(count):
                keras.utils.save_img(folder / f"{index}.png", np.full((20, 24, 3), shade + index, np.uint8))
    model = ResNet20(input_shape=(16, 16, 3), classes=2)
    scores = training.evaluate_run(
        model, f"folder:{tmp_path}", method="ten_crop", augmentation="imagenet", image_size=16
    )
    assert scores["count"] == 6 and "validation" in scores["split"]
    assert 0.0 <= scores["top1_error"] <= 1.0 and scores["top5_error"] == 0.0  # 2 classes: always in the top 5
