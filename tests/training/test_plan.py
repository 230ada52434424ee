"""The plan of a `train` run, checked without training: recipe, schedule, shapes, splits, steps per epoch."""

import math

import numpy as np
import pytest

from keras_resnet.data import shapes
from keras_resnet.training.plan import SHAPES_EPOCHS, plan_run


def test_epochs_stretch_the_papers_schedule_over_the_run():
    plan = plan_run("resnet20", "shapes", epochs=2, batch_size=16, train_size=64, validation_size=16)
    assert (plan.dataset, plan.epochs, plan.steps_per_epoch, plan.image_size) == ("shapes", 2, 4, 32)
    # The paper's drops at 32k and 48k of 64k iterations: at 1/2 and 3/4 of 8 steps.
    assert (plan.recipe.total_steps, plan.recipe.boundaries) == (8, (4, 6))
    assert plan.recipe.lr == pytest.approx(0.1 * 16 / 128)  # linear scaling of the paper's 0.1 at batch 128
    schedule = plan.record()["schedule"]
    assert schedule["drops"] == [
        {"step": 4, "epoch": 1.0, "lr": pytest.approx(0.1 * 16 / 128 / 10)},
        {"step": 6, "epoch": 1.5, "lr": pytest.approx(0.1 * 16 / 128 / 100)},
    ]
    assert plan.record()["recipe"] == repr(plan.recipe) and "total_steps=8" in plan.record()["recipe"]


def test_shapes_defaults_its_epochs_and_a_batch_it_can_fill():
    with pytest.warns(UserWarning, match="batch of 128 images is larger than the 64 training images"):
        plan = plan_run("resnet20", "shapes", train_size=64, validation_size=16)
    assert (plan.epochs, plan.recipe.batch_size, plan.steps_per_epoch) == (SHAPES_EPOCHS, 64, 1)
    assert plan.recipe.total_steps == SHAPES_EPOCHS
    assert (plan.augmentation, plan.classes, plan.class_names) == ("cifar", 5, shapes.CLASS_NAMES)
    assert plan.described == {
        "train": "shapes training images (64 images)",
        "validation": "shapes validation images (16 images)",
    }


def test_cifar_holds_out_validation_and_without_epochs_runs_the_recipes_length(cifar10_files):
    root, _ = cifar10_files
    plan = plan_run("resnet110", "cifar10", batch_size=4, data_dir=str(root))
    assert plan.recipe.error_warmup_lr is not None  # ResNet-110's recipe: warm up at 0.01
    assert plan.steps_per_epoch == math.ceil(len(plan.sources.train) / 4)
    assert plan.epochs == math.ceil(plan.recipe.total_steps / plan.steps_per_epoch)
    assert plan.recipe.total_steps == 64_000 * 128 // 4  # the paper's 64k iterations at batch 128, in images
    assert plan.described["validation"].startswith("hold-out: the last 10% of each class")
    assert set(plan.described) == {"train", "validation", "test"}

    full = plan_run("resnet20", "cifar10", epochs=1, batch_size=4, full_train=True, data_dir=str(root))
    assert plan.sources.validation is not None and full.sources.validation is None
    assert full.steps_per_epoch == 5  # all 20 training images
    assert set(full.described) == {"train", "test"} and full.record()["full_train"] is True
    with pytest.raises(ValueError, match="decays on a validation plateau, which full_train"):
        plan_run("resnet20", "cifar10", recipe="imagenet", batch_size=4, full_train=True, data_dir=str(root))


def _pipelines(count=48, batch_size=16, side=16):
    import tensorflow as tf

    x = np.zeros((count, side, side, 3), "float32")
    y = (np.arange(count) % 3).astype("int32")
    return tuple(tf.data.Dataset.from_tensor_slices((x, y)).batch(batch_size) for _ in range(2))


def test_user_pipelines_are_planned_from_their_length_and_image_size():
    plan = plan_run("resnet20", _pipelines(), epochs=2, batch_size=16, classes=3)
    assert (plan.dataset, plan.steps_per_epoch, plan.image_size, plan.classes) == ("pipelines", 3, 16, 3)
    assert (plan.recipe.total_steps, plan.recipe.boundaries) == (6, (3, 4))
    assert plan.sources is None and plan.augmentation is None and plan.class_names is None
    assert plan.described == {"train": "the given training pipeline", "validation": "the given validation pipeline"}
    assert plan.record()["dataset"] == "pipelines"
    train, validation = _pipelines()
    unknown = plan_run(
        "resnet20", (train.filter(lambda x, y: True), validation), batch_size=16, classes=3, steps_per_epoch=2
    )
    assert unknown.steps_per_epoch == 2


def test_a_folder_of_large_images_gets_the_imagenet_recipe(tmp_path):
    import keras

    for split, count in (("train", 4), ("validation", 2)):
        for name in ("a", "b"):
            (tmp_path / split / name).mkdir(parents=True)
            for index in range(count):
                keras.utils.save_img(tmp_path / split / name / f"{index}.png", np.zeros((80, 80, 3), np.uint8))
    plan = plan_run("resnet18", f"folder:{tmp_path}", epochs=3, batch_size=4)
    assert (plan.augmentation, plan.image_size, plan.recipe.schedule) == ("imagenet", 224, "plateau")
    assert plan.record()["schedule"]["divided_by_10_after_epochs_without_improvement"] == 5
    small = plan_run("resnet18", f"folder:{tmp_path}", epochs=3, batch_size=4, image_size=32, augmentation="cifar")
    assert (small.image_size, small.recipe.schedule) == (32, "step")  # small inputs: the CIFAR recipe
