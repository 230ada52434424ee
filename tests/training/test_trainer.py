import csv
import json
import math
import os
import shutil
import warnings

import keras
import numpy as np
import pytest

import keras_resnet as kr
from keras_resnet import data, recipes
from keras_resnet.data import shapes
from keras_resnet.models import pretrained
from keras_resnet.training import distribute, run_folder, trainer

EPOCHS, TRAIN_SIZE, BATCH = 4, 1600, 32
STEPS_PER_EPOCH = math.ceil(TRAIN_SIZE / BATCH)  # the last batch is partial


@pytest.fixture(scope="module")
def shapes_run(tmp_path_factory):
    """ResNet-20 trained briefly on the embedded shapes, with a run folder."""
    output = tmp_path_factory.mktemp("run")
    result = trainer.train(
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
    scores = trainer.evaluate_run(str(output / "last.keras"), "shapes", train_size=TRAIN_SIZE, validation_size=500)
    assert scores["count"] == 500
    assert scores["top1_accuracy"] == pytest.approx(result["val_accuracy"], abs=1e-6)
    assert scores["top1_error"] == pytest.approx(1 - scores["top1_accuracy"])
    # Five classes: the true class is always among the top five.
    assert scores["top5_accuracy"] == 1.0


def test_a_backup_of_other_arguments_is_refused(tmp_path):
    (tmp_path / "backup").mkdir()
    (tmp_path / "run.json").write_text(json.dumps({"model": "plain20"}))
    with pytest.raises(ValueError, match="holds the backup of an unfinished run with other arguments"):
        trainer.train("resnet20", "shapes", epochs=1, train_size=64, validation_size=16, output_dir=str(tmp_path))


def test_a_fresh_run_starts_a_new_log(tmp_path):
    (tmp_path / "log.csv").write_text("epoch,accuracy\n0,0.5\n1,0.6\n2,0.7\n")
    trainer.train(
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
    result = trainer.train("resnet20", f"folder:{tmp_path}", augmentation="cifar", epochs=1, batch_size=32, verbose=0)
    assert result["model"].output_shape == (None, 3)
    assert result["steps"] == 2
    splits = data.datasets(f"folder:{tmp_path}", batch_size=16, augmentation="imagenet", image_size=24)
    assert splits.class_names == ("cross", "ring", "square")
    assert next(iter(splits.train))[0].shape == (16, 24, 24, 3)


def test_a_pair_of_pipelines_trains_with_the_batch_size_it_was_built_with():
    splits = data.datasets("shapes", batch_size=16, train_size=48, validation_size=16)
    pair = splits.train, splits.validation
    result = trainer.train("resnet20", pair, epochs=1, batch_size=16, classes=5, verbose=0)
    assert result["steps"] == 3
    assert result["recipe"].lr == pytest.approx(0.1 * 16 / 128)
    with pytest.raises(ValueError, match="takes batch_size .* received batch_size=None"):
        trainer.train("resnet20", pair, epochs=1, classes=5)


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
    result = trainer.train("resnet20", pair, epochs=2, batch_size=16, classes=3, verbose=0)
    assert result["model"].output_shape == (None, 3) and result["steps"] == 6
    with pytest.raises(ValueError, match="needs classes .*; received classes=None"):
        trainer.train("resnet20", pair, epochs=1, batch_size=16)
    from keras_resnet.models.builders import ResNet20

    built = ResNet20(input_shape=(16, 16, 3), classes=3)
    assert trainer.train(built, pair, epochs=1, batch_size=16, verbose=0)["steps"] == 3


def test_a_pipeline_of_unknown_length_is_refused_without_steps_per_epoch():
    train, validation = _plain_pipelines()
    unknown = train.filter(lambda x, y: True)
    with pytest.raises(ValueError, match="cardinality is unknown.*pass steps_per_epoch"):
        trainer.train("resnet20", (unknown, validation), epochs=1, batch_size=16, classes=3)
    with pytest.raises(ValueError, match="cardinality is infinite.*pass steps_per_epoch"):
        trainer.train("resnet20", (train.repeat(), validation), batch_size=16, classes=3)
    result = trainer.train(
        "resnet20", (train.repeat(), validation), epochs=2, batch_size=16, classes=3, steps_per_epoch=2, verbose=0
    )
    assert (result["steps"], result["epochs"]) == (4, 2)


def test_datasets_are_cifar_pipelines_with_the_shapes_classes():
    splits = data.datasets("shapes", batch_size=16, train_size=48, validation_size=20)
    train, validation = splits.train, splits.validation
    assert splits.class_names == shapes.CLASS_NAMES and splits.test is None
    images, labels = next(iter(train))
    assert images.shape == (16, 32, 32, 3) and images.dtype == "float32"
    # The per-pixel mean of the training images is subtracted.
    assert abs(float(np.mean(images))) < 0.1
    assert [int(validation.cardinality()), int(train.cardinality())] == [2, 3]


def test_training_data_is_augmented_and_validation_data_is_not():
    splits = data.datasets("shapes", batch_size=8, train_size=8, validation_size=8, seed=1)
    train, validation = splits.train, splits.validation
    first, second = (next(iter(train))[0].numpy() for _ in range(2))
    assert not np.allclose(np.sort(first.ravel()), np.sort(second.ravel()))
    np.testing.assert_array_equal(next(iter(validation))[0], next(iter(validation))[0])


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda: data.datasets("folder:/nonexistent"), "needs PATH/train \\(and PATH/validation or PATH/val"),
        (lambda: data.datasets("cifar10", train_size=10), "apply to dataset='shapes' only"),
        (lambda: data.datasets("shapes", augmentation="mixup"), "augmentation must be one of"),
        (lambda: data.datasets(""), "dataset must be"),
        (lambda: trainer.train("resnet20", epochs=0), "epochs must be a positive integer; received 0"),
        (lambda: trainer.train("resnet21"), "model must be one of"),
        (lambda: trainer.evaluate_run("missing.keras"), "received 'missing.keras'"),
        (lambda: trainer.evaluate_run(keras.Sequential(), method="five_crop"), "method must be one of"),
    ],
)
def test_bad_arguments_name_the_argument_and_the_value(call, message):
    with pytest.raises(ValueError, match=message):
        call()


def test_an_unknown_recipe_is_refused():
    with pytest.raises(ValueError, match="recipe must be one of"):
        trainer.train("resnet20", "shapes", recipe="mnist", train_size=64, validation_size=16)


def test_evaluate_refuses_an_archive_with_a_lambda_layer(tmp_path):
    inputs = keras.Input((32, 32, 3))
    outputs = keras.layers.Dense(2)(keras.layers.GlobalAveragePooling2D()(keras.layers.Lambda(lambda x: x * 2)(inputs)))
    keras.Model(inputs, outputs).save(tmp_path / "lambda.keras")
    with pytest.raises(ValueError, match="safe_mode"):
        trainer.evaluate_run(tmp_path / "lambda.keras", "shapes", train_size=8, validation_size=8)


def _resident_megabytes():
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("VmRSS:")) / 1024


@pytest.mark.skipif(not os.path.exists("/proc/self/status"), reason="reads VmRSS from /proc")
def test_repeated_fits_do_not_grow_memory():
    # Bound: the allocator's own swings measured here are about 20 MB either way; a leak
    # that retraces the train step on every fit adds about 18 MB per fit (180 MB over 10).
    from keras_resnet import recipes
    from keras_resnet.models.builders import ResNet20

    keras.utils.set_random_seed(0)
    model = ResNet20(input_shape=(16, 16, 3), classes=10)
    recipes.compile_for(model, "cifar10")
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
    result = trainer.train(
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
    # The run's normalisation and class names are inside its checkpoints, and evaluate reads the run.json.
    best = keras.saving.load_model(tmp_path / "best.keras")
    assert best.includes_preprocessing and np.all(np.asarray(best.preprocessing["std"]) == 255.0)
    assert np.asarray(best.preprocessing["mean"]).shape == (32, 32, 3)
    assert best.class_names == run["class_names"] and len(run["class_names"]) == 10
    scores = trainer.evaluate_run(tmp_path / "last.keras", split="test")
    assert scores["count"] == 20 and scores["split"] == result["splits"]["test"]
    assert scores["top1_accuracy"] == pytest.approx(result["test_accuracy"], abs=1e-6)


def test_full_train_uses_every_training_image_and_reports_only_the_test_error(cifar10_dir, tmp_path):
    result = trainer.train(
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
        trainer.train("resnet20", "shapes", full_train=True, epochs=1, train_size=32, validation_size=16)


def test_a_folder_without_a_validation_folder_holds_out_the_last_tenth_of_each_class(tmp_path):
    for name, shade in (("dark", 40), ("light", 200)):
        folder = tmp_path / "train" / name
        folder.mkdir(parents=True)
        for index in range(20):
            keras.utils.save_img(folder / f"{index:04d}.png", np.full((16, 16, 3), shade, np.uint8))
    splits = data.datasets(f"folder:{tmp_path}", batch_size=64, image_size=16)
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
        result = trainer.train(
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
    recipe = trainer.scale_recipe("cifar10", FOUR_REPLICAS, per_replica_batch_size=128)
    assert (recipe.batch_size, recipe.lr, recipe.total_steps, recipe.boundaries) == (
        512,
        pytest.approx(0.4),
        16_000,
        (8_000, 12_000),
    )
    fixed = trainer.scale_recipe("cifar10", FOUR_REPLICAS, 128, scale_learning_rate=False)
    assert (fixed.batch_size, fixed.lr, fixed.total_steps) == (512, 0.1, 16_000)
    assert trainer.scale_recipe("cifar10", FOUR_REPLICAS) == recipes.RECIPES["cifar10"]


def test_a_checkpoint_out_of_its_run_folder_evaluates_the_same(shapes_run, tmp_path):
    result, output = shapes_run
    shutil.copy(output / "last.keras", tmp_path / "last.keras")
    # No run.json beside it: the data set is given; the normalisation is in the checkpoint.
    scores = trainer.evaluate_run(tmp_path / "last.keras", "shapes", train_size=TRAIN_SIZE, validation_size=500)
    assert scores["top1_accuracy"] == pytest.approx(result["val_accuracy"], abs=1e-6)


@pytest.mark.parametrize(
    "recipe, attached, warns", [("imagenet", False, True), ("imagenet", True, False), ("cifar10", False, False)]
)
def test_distributed_model_fit_warns_only_when_a_recipe_needs_callbacks_it_has_not_got(recipe, attached, warns):
    def build(**kwargs):
        return keras.Sequential([keras.Input((4,)), keras.layers.Dense(3, activation="softmax")], **kwargs)

    run = trainer.distributed_model(build, recipe, strategy="none", name="tiny")
    assert run.model.compiled and run.model.name == "tiny" and run.replication.kind == "none"
    x, y = np.zeros((4, 4), "float32"), np.zeros(4, "int32")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        callbacks = run_folder.run_callbacks(run.recipe) if attached else None
        run.model.fit(x, y, validation_data=(x, y), callbacks=callbacks, verbose=0)
    assert any("PlateauDecay" in str(w.message) for w in caught) == warns


def test_ten_crop_evaluation_of_a_named_data_set_scores_every_validation_image(tmp_path):
    from keras_resnet.models.builders import ResNet20

    for split, count in (("train", 2), ("validation", 3)):
        for name, shade in (("dark", 40), ("light", 200)):
            folder = tmp_path / split / name
            folder.mkdir(parents=True)
            for index in range(count):
                keras.utils.save_img(folder / f"{index}.png", np.full((20, 24, 3), shade + index, np.uint8))
    model = ResNet20(input_shape=(16, 16, 3), classes=2)
    scores = trainer.evaluate_run(
        model, f"folder:{tmp_path}", method="ten_crop", augmentation="imagenet", image_size=16
    )
    assert scores["count"] == 6 and "validation" in scores["split"]
    assert 0.0 <= scores["top1_error"] <= 1.0 and scores["top5_error"] == 0.0  # 2 classes: always in the top 5


def test_a_pipeline_of_unknown_length_gets_steps_per_epoch_batches_every_epoch():
    train, validation = _plain_pipelines()  # 3 batches a pass
    unknown = train.filter(lambda x, y: True)
    result = trainer.train(
        "resnet20", (unknown, validation), epochs=4, batch_size=16, classes=3, steps_per_epoch=2, verbose=0
    )
    assert result["steps"] == 8
    assert all(loss > 0 for loss in result["history"]["loss"])


def test_train_restores_the_global_dtype_policy(monkeypatch):
    from keras_resnet import accelerate

    real = accelerate.acceleration
    monkeypatch.setattr(accelerate, "acceleration", lambda **k: real(**{**k, "precision": "mixed_bfloat16"}))
    result = trainer.train("resnet20", _plain_pipelines(count=16), epochs=1, batch_size=16, classes=3, verbose=0)
    assert result["model"].dtype_policy.name == "mixed_bfloat16"
    assert keras.config.dtype_policy().name == "float32"


class _Interrupt(Exception):
    pass


def _interrupted_after(epoch):
    """`run_callbacks` plus a last callback that stops the process after `epoch`'s backup, as a kill would."""
    run_callbacks = run_folder.run_callbacks

    class Interrupt(keras.callbacks.Callback):
        def on_epoch_end(self, finished, logs=None):
            if finished == epoch:
                raise _Interrupt

    return lambda *a, **k: [*run_callbacks(*a, **k), Interrupt()]


def _last_state(folder):
    model = keras.saving.load_model(folder / "last.keras")
    return [variable.numpy() for variable in [*model.weights, *model.optimizer.variables]]


def _assert_resumes_exactly(tmp_path, monkeypatch, run, interrupt_after=0):
    run(tmp_path / "whole")
    with monkeypatch.context() as patch:
        patch.setattr(run_folder, "run_callbacks", _interrupted_after(interrupt_after))
        with pytest.raises(_Interrupt):
            run(tmp_path / "killed")
    assert (tmp_path / "killed" / "backup").is_dir()
    resumed = run(tmp_path / "killed")
    for mine, theirs in zip(_last_state(tmp_path / "killed"), _last_state(tmp_path / "whole")):
        np.testing.assert_allclose(mine, theirs, rtol=1e-5, atol=1e-6)
    return resumed


def _seeded_pipelines(count=48, batch_size=4, classes=3):
    """A user's pipelines whose stream is the same in every process: a seeded shuffle."""
    import tensorflow as tf

    rng = np.random.default_rng(1)
    x = rng.uniform(0, 1, (count, 16, 16, 3)).astype("float32")
    y = (np.arange(count) % classes).astype("int32")
    train = tf.data.Dataset.from_tensor_slices((x, y)).shuffle(count, seed=5).batch(batch_size)
    return train, tf.data.Dataset.from_tensor_slices((x, y)).batch(batch_size)


def test_a_resumed_run_ends_as_the_uninterrupted_one_with_exact_epochs_at_eight_steps_per_execution(
    tmp_path, monkeypatch
):
    from keras_resnet import accelerate

    real = accelerate.acceleration
    monkeypatch.setattr(accelerate, "acceleration", lambda **k: real(**{**k, "steps_per_execution": 8}))

    def run(folder):  # seeded user pipelines of 12 batches: not a multiple of 8
        return trainer.train(
            "resnet20", _seeded_pipelines(), epochs=2, batch_size=4, classes=3, output_dir=str(folder), verbose=0
        )

    result = _assert_resumes_exactly(tmp_path, monkeypatch, run)
    assert result["steps"] == 2 * 12
    assert result["model"].steps_per_execution == 6  # the largest divisor of 12 up to 8


def _tiny_shapes_run(folder, **options):
    options = {**dict(epochs=1, batch_size=16, image_size=16, train_size=32, validation_size=16, verbose=0), **options}
    return trainer.train("resnet20", "shapes", output_dir=str(folder), **options)


def test_a_finished_run_is_not_overwritten_unless_asked(tmp_path):
    _tiny_shapes_run(tmp_path)
    before = (tmp_path / "last.keras").read_bytes()
    with pytest.raises(ValueError, match="holds a finished run .*overwrite=True"):
        _tiny_shapes_run(tmp_path)
    assert (tmp_path / "last.keras").read_bytes() == before
    _tiny_shapes_run(tmp_path, overwrite=True, seed=1)
    assert (tmp_path / "last.keras").read_bytes() != before


def test_run_json_records_the_schedule_that_ran_and_the_class_names(tmp_path):
    _tiny_shapes_run(tmp_path, epochs=2, train_size=64)
    run = json.loads((tmp_path / "run.json").read_text())
    # The paper's drops at 32k and 48k of 64k iterations, squeezed into 2 epochs of 4 steps.
    assert run["schedule"]["drops"] == [
        {"step": 4, "epoch": 1.0, "lr": pytest.approx(0.1 * 16 / 128 / 10)},
        {"step": 6, "epoch": 1.5, "lr": pytest.approx(0.1 * 16 / 128 / 100)},
    ]
    assert "total_steps=8" in run["recipe"]
    assert run["class_names"] == list(shapes.CLASS_NAMES)


def test_checkpoints_take_raw_images_and_evaluate_reads_the_run(tmp_path):
    options = dict(epochs=2, batch_size=16, image_size=16, train_size=96, validation_size=32, seed=2)
    result = trainer.train("resnet20", "shapes", output_dir=str(tmp_path), verbose=0, **options)
    last = keras.saving.load_model(tmp_path / "last.keras")
    assert last.includes_preprocessing and last.class_names == list(shapes.CLASS_NAMES)
    (_, _), (x_val, y_val), _ = shapes.load_data(train_size=96, validation_size=32, image_size=16, seed=2)
    raw_accuracy = np.mean(np.argmax(last.predict(x_val.astype("float32"), verbose=0), -1) == y_val)
    assert raw_accuracy == pytest.approx(result["val_accuracy"], abs=1e-6)
    scores = trainer.evaluate_run(tmp_path / "last.keras")  # no data set given: the run's, with its options
    assert (scores["dataset"], scores["count"]) == ("shapes", 32)
    assert scores["top1_accuracy"] == pytest.approx(result["val_accuracy"], abs=1e-6)
    assert not (tmp_path / "preprocessing.json").exists()
    with pytest.raises(ValueError, match="dataset is needed: the model has no run.json"):
        trainer.evaluate_run(result["model"])


def test_a_folder_of_small_images_gets_the_cifar_recipe_and_a_batch_it_can_fill(tmp_path):
    shapes.save_folder(str(tmp_path), 40, 8, classes=("ring", "cross", "square"))
    with pytest.warns(UserWarning, match="larger than the 40 training images"):
        result = trainer.train("resnet20", f"folder:{tmp_path}", epochs=1, verbose=0)
    assert result["recipe"].batch_size == 40 and result["steps"] == 1
    assert result["model"].input_shape == (None, None, None, 3)
    assert result["recipe"].lr == pytest.approx(0.1 * 40 / 128)  # the CIFAR recipe, scaled to the batch


def test_the_cifar10_paper_example_never_selects_on_the_test_set(tmp_path, monkeypatch):
    import importlib.util
    import sys

    path = os.path.join(os.path.dirname(__file__), "..", "..", "examples", "cifar10_paper.py")
    spec = importlib.util.spec_from_file_location("cifar10_paper", path)
    example = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(example)
    calls = []

    def fake_train(model, dataset, **options):
        calls.append((model, dataset, options))
        log = tmp_path / f"{model}.csv"
        log.write_text("epoch,accuracy,loss,val_accuracy,val_loss\n0,0.5,1.0,0.5,1.0\n")
        return {"files": {"log": str(log)}, "val_accuracy": 0.5, "test_accuracy": 0.4, "steps_per_epoch": 1}

    monkeypatch.setattr(example, "train", fake_train)
    argv = [
        "cifar10_paper.py",
        "--data-dir",
        "DATA",
        "--output",
        str(tmp_path),
    ]
    monkeypatch.setattr(sys, "argv", argv)
    example.main()
    # The named data set: train() holds out a validation split and reads the test set once, after training.
    assert [(dataset, options["data_dir"]) for _, dataset, options in calls] == [("cifar10", "DATA")] * 2


def test_weights_fine_tune_the_pretrained_backbone_with_a_new_classifier(tmp_path, resnet18_pth):
    path, tensors = resnet18_pth
    options = dict(epochs=1, batch_size=8, image_size=32, train_size=16, validation_size=8)
    # lr 1e-9: the checkpoint's backbone is, to float precision, the one train built.
    result = trainer.train("resnet18", "shapes", weights=path, lr=1e-9, output_dir=str(tmp_path), verbose=0, **options)
    last = keras.saving.load_model(tmp_path / "last.keras")
    for layer, tensor in (("conv1_conv", "conv1.weight"), ("conv5_block2_2_conv", "layer4.1.conv2.weight")):
        kernel = tensors[tensor].transpose(2, 3, 1, 0)  # torch's (out, in, h, w) as Keras's (h, w, in, out)
        np.testing.assert_allclose(last.get_layer(layer).kernel.numpy(), kernel, atol=1e-6)
    np.testing.assert_allclose(last.get_layer("conv1_bn").gamma.numpy(), tensors["bn1.weight"], atol=1e-6)
    # A new classifier for the data set's classes; the weights' normalisation inside, as they record it.
    assert last.get_layer("predictions").kernel.shape == (512, len(shapes.CLASS_NAMES))
    assert last.includes_preprocessing and last.class_names == list(shapes.CLASS_NAMES)
    imagenet = pretrained.catalog
    assert last.preprocessing["mean"] == pytest.approx([255 * m for m in imagenet.IMAGENET_MEAN])
    assert last.preprocessing["std"] == pytest.approx([255 * s for s in imagenet.IMAGENET_STD])
    assert (last.preprocessing["resize_size"], last.preprocessing["crop_size"]) == (256, 224)
    assert json.loads((tmp_path / "run.json").read_text())["weights"] == path
    scores = trainer.evaluate_run(tmp_path / "last.keras")
    assert scores["count"] == 8 and scores["top1_accuracy"] == pytest.approx(result["val_accuracy"], abs=1e-6)


def test_weights_of_another_network_are_refused_naming_those_there_are():
    with pytest.raises(ValueError, match=r"names for resnet18: 'torchvision_v1', .*received weights='timm/resnet50"):
        trainer.train("resnet18", "shapes", weights="timm/resnet50.a1_in1k", epochs=1)
    with pytest.raises(ValueError, match="weights go with a model name and a named data set"):
        trainer.train(keras.Sequential(), "shapes", weights="torchvision_v1", epochs=1)


def test_a_model_that_resizes_then_crops_is_fed_its_resize_size_once():
    pipeline = {"mean": [124.0, 116.0, 104.0], "std": [58.0, 57.0, 57.0], "resize_size": 256, "crop_size": 224}
    cropping = kr.ResNet18(include_preprocessing=True, preprocessing=pipeline, input_shape=(56, 56, 3))
    # Its own transform: resize to 56 * 256 / 224 = 64, centre crop 56. The pipeline hands it 64-pixel squares.
    assert trainer._fed_images(cropping, "imagenet", 56) == {"image_size": 64, "resize_size": 64}
    assert trainer._fed_images(cropping, "cifar", 56) == {"image_size": 64}
    plain = kr.ResNet18(include_preprocessing=True, input_shape=(56, 56, 3))
    assert trainer._fed_images(plain, "imagenet", 56) == {"image_size": 56}
