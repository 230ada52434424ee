"""The CIFAR benchmarks compare like with like: the plain-Keras reference reads the same images of the CIFAR-10
python batches as the library's `cifar10` data set and has the library's ResNet-20, recipe and normalisation, and
both scripts run end to end on a few real images (benchmarks/cifar_reproduction.py, benchmarks/degradation.py)."""

import json
import pickle
import sys
from pathlib import Path

import keras
import numpy as np
import pytest

import keras_resnet as kr

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import cifar_reproduction as bench
import degradation

needs_data = pytest.mark.skipif(
    not all((bench.DATA / name).is_file() for name in bench.BATCH_FILES),
    reason=f"the CIFAR-10 python batches {bench.DATA} are absent (../shared/data)",
)


def test_reference_resnet20_has_the_library_layers():
    reference = bench.reference_resnet20()
    library = kr.ResNet20(input_shape=(32, 32, 3), classes=10)

    def shapes(model):
        return sorted(tuple(weight.shape) for weight in model.weights)

    assert reference.count_params() == library.count_params()
    assert shapes(reference) == shapes(library)


def test_reference_l2_regularizer_is_the_coupled_decay_of_l2sgd():
    """One SGD step with `L2(l2 / 2)` kernel regularizers moves the weights as `L2SGD(l2=l2)` does."""
    l2 = bench.L2
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(8, 5)).astype("float32"), rng.integers(0, 3, 8)

    def model(regularizer):
        keras.utils.set_random_seed(1)
        return keras.Sequential([keras.Input((5,)), keras.layers.Dense(3, kernel_regularizer=regularizer)])

    plain, regularized = model(None), model(keras.regularizers.L2(l2 / 2))
    loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    plain.compile(optimizer=kr.L2SGD(learning_rate=10.0, momentum=0.9, l2=l2), loss=loss)
    regularized.compile(optimizer=keras.optimizers.SGD(learning_rate=10.0, momentum=0.9), loss=loss)
    start = [w.copy() for w in plain.get_weights()]
    for network in (plain, regularized):
        network.fit(x, y, batch_size=8, epochs=2, verbose=0, shuffle=False)
    assert not np.allclose(plain.get_weights()[0], start[0])
    for ours, theirs in zip(plain.get_weights(), regularized.get_weights()):
        np.testing.assert_allclose(ours, theirs, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("batch_size, epochs, steps_per_epoch", [(128, 10, 352), (64, 3, 5)])
def test_reference_schedule_drops_where_the_library_recipe_does(batch_size, epochs, steps_per_epoch):
    total, boundaries = bench.step_schedule(epochs, steps_per_epoch)
    recipe = kr.recipes.recipe_for("cifar10", batch_size=batch_size, total_steps=total, boundaries=boundaries)
    library = kr.recipes.learning_rate_schedule(recipe)
    reference = bench.reference_schedule(batch_size, boundaries)
    steps = sorted({0, total, *range(0, total, 37), *(b + d for b in boundaries for d in (-1, 0, 1))})
    np.testing.assert_allclose([float(reference(s)) for s in steps], [float(library(s)) for s in steps], rtol=1e-6)
    assert boundaries[0] == round(total / 2)


@needs_data
@pytest.mark.parametrize("sizes", [bench.split_sizes(), bench.split_sizes(3, 2)], ids=["45k-5k", "3-and-2-per-class"])
def test_library_and_reference_select_the_same_images_labels_and_pixel_mean(sizes):
    """The library's `cifar10` hold-out split and the reference's own lines pick the same images, in file order."""
    library = bench.library_sources(bench.DATA, sizes)
    *reference, class_names = bench.reference_split(bench.DATA, *sizes)
    assert library[0].class_names == tuple(class_names)
    for source, (images, labels), per_class in zip(library, reference, sizes):
        assert images.shape == (10 * per_class, 32, 32, 3)
        assert np.bincount(labels).tolist() == [per_class] * 10
        assert np.array_equal(np.asarray(source.tensors[0]), images)
        assert np.array_equal(np.asarray(source.tensors[1]), labels)
    statistics = kr.data.image_statistics(library[0])
    np.testing.assert_allclose(bench.reference_pixel_mean(reference[0][0]), statistics["pixel_mean"], rtol=1e-6)


@needs_data
def test_reference_split_holds_out_the_last_500_images_of_each_class():
    (train, train_labels), (validation, validation_labels), _ = bench.reference_split(bench.DATA)
    assert len(train) == 45000 and len(validation) == 5000
    with open(bench.DATA / "data_batch_5", "rb") as handle:
        last = pickle.load(handle, encoding="bytes")
    # The last batch's final image of each class is the last validation image of that class.
    for label in range(10):
        row = last[b"data"][max(np.flatnonzero(np.array(last[b"labels"]) == label))]
        np.testing.assert_array_equal(
            validation[validation_labels == label][-1], row.reshape(3, 32, 32).transpose(1, 2, 0)
        )


@needs_data
def test_reference_pipeline_serves_the_library_pipeline_images():
    """Same images, labels, per-pixel mean and normalisation: the evaluation batches are equal."""
    sizes = bench.split_sizes(3)
    train_source, validation_source = bench.library_sources(bench.DATA, sizes)
    (train_images, _), (images, labels), _ = bench.reference_split(bench.DATA, *sizes)
    statistics = kr.data.image_statistics(train_source)
    pixel_mean = bench.reference_pixel_mean(train_images)
    library = kr.data.cifar_pipeline(validation_source, training=False, batch_size=30, statistics=statistics)
    reference = bench.reference_dataset(images, labels, pixel_mean, training=False, batch_size=30, seed=0)
    (ours_x, ours_y), (theirs_x, theirs_y) = next(iter(library)), next(iter(reference))
    np.testing.assert_array_equal(ours_y, theirs_y)
    np.testing.assert_allclose(ours_x, theirs_x, atol=1e-6)
    assert float(np.abs(theirs_x).max()) > 0.1


@needs_data
def test_reference_training_augmentation_pads_crops_and_flips():
    (images, labels), _, _ = bench.reference_split(bench.DATA, 1, 1)
    mean = np.zeros((32, 32, 3), np.float32)
    plain = next(iter(bench.reference_dataset(images[:1], labels[:1], mean, training=False, batch_size=1, seed=0)))
    keras.utils.set_random_seed(0)
    augmented = bench.reference_dataset(images[:1], labels[:1], mean, training=True, batch_size=1, seed=0)
    crops = [batch[0][0].numpy() for batch in augmented.repeat(20)]
    assert all(crop.shape == (32, 32, 3) for crop in crops)
    assert any(not np.array_equal(crop, plain[0][0].numpy()) for crop in crops)
    # A 4-pixel zero padding: some crops hold a black border (0 / 255 after the zero mean).
    assert any((crop[0] == 0).all() or (crop[:, 0] == 0).all() or (crop[-1] == 0).all() for crop in crops)


@pytest.mark.parametrize("script", [bench, degradation], ids=["cifar_reproduction", "degradation"])
def test_scripts_refuse_a_data_folder_without_the_batch_files(script, tmp_path, capsys):
    (tmp_path / "batches.meta").write_bytes(b"")
    with pytest.raises(SystemExit):
        script.main(["--data", str(tmp_path), "--output", str(tmp_path / "out")])
    error = capsys.readouterr().err
    assert "--data must be the folder of the CIFAR-10 python batches" in error
    assert "lacks data_batch_1, data_batch_2, data_batch_3, data_batch_4, data_batch_5, test_batch" in error
    assert not (tmp_path / "out" / bench.RECORDS).exists()


@needs_data
def test_both_scripts_run_end_to_end_and_write_their_reports(tmp_path):
    output = tmp_path / "pair"
    text = bench.main(["--epochs", "1", "--limit", "2", "--batch-size", "10", "--output", str(output)])
    records = [json.loads(line) for line in (output / bench.RECORDS).read_text().splitlines()]
    assert [(r["event"], r["run"]) for r in records] == [
        ("start", "library"),
        ("epoch", "library"),
        ("end", "library"),
        ("start", "reference"),
        ("epoch", "reference"),
        ("end", "reference"),
    ]
    epochs = {r["run"]: r for r in records if r["event"] == "epoch"}
    for record in epochs.values():
        assert {"val_accuracy", "accuracy", "loss", "seconds", "loadavg", "lr"} <= set(record)
        assert record["lr"] == pytest.approx(0.1 * 10 / 128)
    assert "cross_entropy" in epochs["reference"]
    assert records[0]["train_images"] == records[0]["validation_images"] == 20
    assert records[0]["train_per_class"] == records[0]["validation_per_class"] == 2
    assert (
        f"20 training / 20 validation images of the CIFAR-10 python batches in {bench.DATA}: per class, the first 2 "
        "of the 4500 training images and the first 2 of the 500 held-out ones"
    ) in text
    row = next(line for line in text.splitlines() if line.startswith("| 1 |"))
    difference = 100 * (epochs["library"]["val_accuracy"] - epochs["reference"]["val_accuracy"])
    assert f"{difference:+.2f}" in row
    assert (output / bench.REPORT).read_text() == text

    folder = tmp_path / "degradation"
    text = degradation.main(
        [
            "--epochs",
            "3",
            "--warmup-epochs",
            "1",
            "--per-class",
            "2",
            "--validation-per-class",
            "1",
            "--batch-size",
            "10",
            "--models",
            "Plain20",
            "--output",
            str(folder),
        ]
    )
    assert (folder / degradation.FIGURE).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "| 1 | " in text and "| 3 | " in text and "Plain20" in text
    assert "linear warm-up from 0 over the first 1 epoch," in text
    assert "20 training / 10 validation images of the CIFAR-10 python batches" in text
    # The warm-up reaches the optimizer: lr 0 when the first epoch starts, the recipe's full rate at the second
    # (2 steps an epoch, 6 in all: the recipe's first drop is at step 3).
    lrs = [r["lr"] for r in bench.read_runs(folder / bench.RECORDS)["Plain20"]["epochs"].values()]
    assert lrs[:2] == [0.0, pytest.approx(0.1 * 10 / 128)]


def test_report_keeps_only_the_latest_run_of_each_side(tmp_path):
    records = tmp_path / bench.RECORDS
    start = {
        "event": "start",
        "time": "2026-11-30T00:00:00+00:00",
        "command": "c",
        "machine": "m",
        "versions": "v",
        "epochs": 2,
        "batch_size": 128,
        "seed": 0,
        "train_images": 45000,
        "validation_images": 5000,
        "params": 1,
        "loadavg": [1, 1, 1],
    }

    def epoch(run, number, accuracy):
        return {
            "event": "epoch",
            "run": run,
            "epoch": number,
            "val_accuracy": accuracy,
            "accuracy": 0.5,
            "loss": 1.0,
            "cross_entropy": 1.0,
            "lr": 0.1,
            "seconds": 60,
            "loadavg": [2, 2, 2],
        }

    for record in (
        {**start, "run": "library"},
        epoch("library", 1, 0.30),
        {**start, "run": "library"},
        epoch("library", 1, 0.50),
        {**start, "run": "reference"},
        epoch("reference", 1, 0.40),
    ):
        bench.append_record(records, record)
    text = bench.report(records)
    assert "| 1 | 0.1 | 50.00 | 40.00 | +10.00 |" in text
    # Records written before the scripts read the batches describe the JPEG folder they ran on.
    assert "45000 training / 5000 validation images of the CIFAR-10 JPEGs (per class files 0000-4499 train" in text
    assert "unfinished: 1 of 2 epochs" in text
