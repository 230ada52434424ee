"""Every public constructor and function refuses bad arguments with a message that teaches.

One table row per bad call: the error must be a `ValueError` or `TypeError`
whose message names the argument, shows the received value and says what is
allowed. `test_every_public_callable_is_in_the_table` keeps the table
complete: a new public name needs a row here (or a justified exemption).
Property-based tests of the generic builder live in `test_properties.py`.
"""

import inspect
import re

import keras
import numpy as np
import pytest

import keras_resnet as kr
from keras_resnet import _validation, export, recipes
from keras_resnet.models import features
from keras_resnet.training import callbacks, distribute, evaluation, run_folder, trainer

MODULES = (kr, recipes, export, features, distribute, trainer, evaluation, callbacks)

# "What is allowed" is said with one of these.
ALLOWED = re.compile(
    r"must|one of|needs|expects|expected|allowed|only|goes with|exclude|takes|not a|"
    r"cannot|at least|is not in|an existing|the fields are",
    re.I,
)

# Public callables with no row, and why.
EXEMPT = {
    callbacks.StopOnNaN: "takes no arguments",
    trainer.DistributedModel: "a record returned by distributed_model, not built by users",
    distribute.Replication: "a record returned by replicate, not built by users",
}


def tiny_model():
    return kr.ResNet20(input_shape=(32, 32, 3), classes=10, name="tiny")


def compiled_model():
    model = tiny_model()
    recipes.compile_for(model)
    return model


def tensor():
    return keras.Input((32, 32, 16))


def _graph():
    inputs = keras.Input((8, 8, 3))
    return inputs, keras.layers.GlobalAveragePooling2D()(inputs)


# (callable, call, argument, received value as the message writes it)
CASES = [
    (kr.Architecture, lambda: kr.Architecture("wide", (2, 2, 2, 2)), "block", "'wide'"),
    (kr.Architecture, lambda: kr.Architecture("basic", (2, 0, 2, 2)), "depths", "(2, 0, 2, 2)"),
    (kr.AtomicBackupAndRestore, lambda: kr.AtomicBackupAndRestore("", save_freq="often"), "backup_dir", "''"),
    (kr.AtomicModelCheckpoint, lambda: kr.AtomicModelCheckpoint("last.keras", save_freq="often"), "save_freq", "often"),
    (kr.ErrorWarmUp, lambda: kr.ErrorWarmUp(0.1, max_error=80), "max_error", "80"),
    (kr.L2SGD, lambda: kr.L2SGD(l2=-1.0), "l2", "-1.0"),
    (kr.LayerSettings, lambda: kr.LayerSettings(bn_epsilon=-1.0), "bn_epsilon", "-1.0"),
    (kr.LayerSettings, lambda: kr.LayerSettings(data_format="NHWC"), "data_format", "'NHWC'"),
    (kr.PlateauDecay, lambda: kr.PlateauDecay(factor=2.0), "factor", "2.0"),
    (kr.ResNet, lambda: kr.ResNet("resnet51"), "architecture", "'resnet51'"),
    (kr.ResNet, lambda: kr.ResNet("resnet50", pooling="mean", include_top=False), "pooling", "'mean'"),
    (kr.ResNet, lambda: kr.ResNet("resnet50", stride_in="2x2"), "stride_in", "'2x2'"),
    (kr.ResNet, lambda: kr.ResNet("resnet50", input_shape=(32, 32)), "input_shape", "(32, 32)"),
    (kr.ResNet, lambda: kr.ResNet("resnet50", weights="imagenet", classes=10), "classes", "10"),
    (kr.ZeroPadShortcut, lambda: kr.ZeroPadShortcut(0), "filters", "0"),
    (kr.ReverseChannels, lambda: kr.ReverseChannels(data_format="nhwc"), "data_format", "'nhwc'"),
    (kr.ResNetModel, lambda: kr.ResNetModel(*_graph(), feature_levels="C5"), "feature_levels", "'C5'"),
    (kr.block_plan, lambda: kr.block_plan(kr.get_architecture("resnet50"), output_stride=12), "output_stride", "12"),
    (
        kr.block_plan,
        lambda: kr.block_plan(kr.get_architecture("resnet50"), downsample_at="middle"),
        "downsample_at",
        "'middle'",
    ),
    (kr.cifar, lambda: kr.cifar(0), "n", "0"),
    (
        kr.cifar_preprocessing,
        lambda: kr.cifar_preprocessing({"mean": [0.5]}, normalization="batch"),
        "normalization",
        "'batch'",
    ),
    (kr.compile_for, lambda: kr.compile_for(tiny_model(), "cifar11"), "recipe", "'cifar11'"),
    (kr.compile_for, lambda: kr.compile_for(tiny_model(), mixed_precision="float8"), "mixed_precision", "'float8'"),
    (kr.conv_bn, lambda: kr.conv_bn(tensor(), 0, 3, kr.LayerSettings(), name="c"), "filters", "0"),
    (kr.count_macs, lambda: kr.count_macs("resnet50"), "model", "'resnet50'"),
    (kr.datasets, lambda: kr.datasets("mnist2"), "dataset", "'mnist2'"),
    (kr.datasets, lambda: kr.datasets(batch_size=0), "batch_size", "0"),
    (kr.decode_predictions, lambda: kr.decode_predictions(np.zeros((2, 10))), "preds", "(2, 10)"),
    (kr.export_saved_model, lambda: kr.export_saved_model(tiny_model(), "out", top_k=0), "top_k", "0"),
    (kr.feature_extractor, lambda: kr.feature_extractor("resnet20", levels=["P9"]), "levels", "'P9'"),
    (kr.feature_info, lambda: kr.feature_info("resnet20"), "model", "'resnet20'"),
    (kr.freeze, lambda: kr.freeze("resnet20"), "model", "'resnet20'"),
    (kr.get_architecture, lambda: kr.get_architecture("resnet51"), "architecture", "'resnet51'"),
    (kr.get_model, lambda: kr.get_model("resnet51"), "model", "'resnet51'"),
    (kr.has_imagenet_weights, lambda: kr.has_imagenet_weights(50), "architecture", "50"),
    (kr.imagenet_weights_path, lambda: kr.imagenet_weights_path("resnet51"), "name", "'resnet51'"),
    (kr.load_weights, lambda: kr.load_weights(tiny_model(), "missing.weights.h5"), "weights", "'missing.weights.h5'"),
    (kr.model_summary, lambda: kr.model_summary("resnet20"), "model", "'resnet20'"),
    (kr.plot_curves, lambda: kr.plot_curves([], "curves.png"), "logs", "empty list"),
    (kr.plot_curves, lambda: kr.plot_curves(["log.csv"], "curves.png", steps_per_epoch=0), "steps_per_epoch", "0"),
    (kr.preprocess_input, lambda: kr.preprocess_input(np.zeros((1, 8, 8, 3)), mode="tf2"), "mode", "'tf2'"),
    (
        kr.preprocess_input_v2,
        lambda: kr.preprocess_input_v2(np.zeros((1, 8, 8, 3)), data_format="NHWC"),
        "data_format",
        "'NHWC'",
    ),
    (kr.read_log, lambda: kr.read_log("missing.csv"), "path", "'missing.csv'"),
    (
        kr.residual_block,
        lambda: kr.residual_block(tensor(), 16, kr.LayerSettings(), name="b", block="wide"),
        "block",
        "'wide'",
    ),
    (kr.shortcut_kind, lambda: kr.shortcut_kind("D", 16, 32, 2), "shortcut", "'D'"),
    (kr.train, lambda: kr.train("resnet51"), "model", "'resnet51'"),
    (kr.train, lambda: kr.train(epochs=0, strategy="none"), "epochs", "0"),
    (kr.transfer_weights, lambda: kr.transfer_weights("resnet20", tiny_model()), "source", "'resnet20'"),
    (kr.unfreeze, lambda: kr.unfreeze(tiny_model(), stages=[9]), "stages", "9"),
    (recipes.LinearWarmUp, lambda: recipes.LinearWarmUp(0.1, warmup_steps=-1), "warmup_steps", "-1"),
    (recipes.Recipe, lambda: recipes.Recipe(128, 0.1, "linear", 100), "schedule", "'linear'"),
    (
        recipes.SmoothedSparseCategoricalCrossentropy,
        lambda: recipes.SmoothedSparseCategoricalCrossentropy(label_smoothing=1.5),
        "label_smoothing",
        "1.5",
    ),
    (recipes.StepDecay, lambda: recipes.StepDecay(0.1, [30, 10]), "boundaries", "[30, 10]"),
    (run_folder.run_callbacks, lambda: run_folder.run_callbacks("cifar10", monitor=3), "monitor", "3"),
    (run_folder.run_callbacks, lambda: run_folder.run_callbacks("cifar10", is_chief="yes"), "is_chief", "'yes'"),
    (recipes.learning_rate_schedule, lambda: recipes.learning_rate_schedule("cifar10", lr=0), "lr", "0"),
    (recipes.optimizer_for, lambda: recipes.optimizer_for("cifar10", momentum=1.0), "momentum", "1.0"),
    (recipes.recipe_for, lambda: recipes.recipe_for("cifar10", epochs=3), "epochs", "epochs=3"),
    (export.export, lambda: export.export(tiny_model(), "out", format="tflite"), "format", "'tflite'"),
    (
        export.export_litert,
        lambda: export.export_litert(tiny_model(), "out.tflite", quantization="int8"),
        "representative_data",
        "None",
    ),
    (export.export_onnx, lambda: export.export_onnx(tiny_model(), "out.onnx", opset=13), "opset", "13"),
    (export.format_for, lambda: export.format_for("out", format="tflite"), "format", "'tflite'"),
    (
        callbacks.ClusterBackupAndRestore,
        lambda: callbacks.ClusterBackupAndRestore("backup", is_chief="yes"),
        "is_chief",
        "'yes'",
    ),
    (callbacks.DeleteOnTrainEnd, lambda: callbacks.DeleteOnTrainEnd(""), "directory", "''"),
    (callbacks.resume_epoch, lambda: callbacks.resume_epoch(None), "backup_dir", "None"),
    (
        trainer.distributed_model,
        lambda: trainer.distributed_model("resnet20", jit_compile="yes"),
        "jit_compile",
        "'yes'",
    ),
    (distribute.local_cluster, lambda: distribute.local_cluster(0), "num_workers", "0"),
    (distribute.replicate, lambda: distribute.replicate("tpu"), "strategy", "'tpu'"),
    (
        trainer.scale_recipe,
        lambda: trainer.scale_recipe("cifar10", "none", per_replica_batch_size=0),
        "per_replica_batch_size",
        "0",
    ),
    (distribute.shard_dataset, lambda: distribute.shard_dataset(None, "rows"), "policy", "'rows'"),
    (
        distribute.with_strategy,
        lambda: distribute.with_strategy(compiled_model, "none", jit_compile="yes"),
        "jit_compile",
        "'yes'",
    ),
    (trainer.evaluate_run, lambda: trainer.evaluate_run("missing.keras"), "model", "'missing.keras'"),
    (trainer.evaluate_run, lambda: trainer.evaluate_run(tiny_model(), method="five_crop"), "method", "'five_crop'"),
    (evaluation.center_crop, lambda: evaluation.center_crop(np.zeros((8, 8, 3)), 16), "size", "16"),
    (evaluation.evaluate, lambda: evaluation.evaluate(tiny_model(), [], method="five_crop"), "method", "'five_crop'"),
    (evaluation.resize_shorter_side, lambda: evaluation.resize_shorter_side(np.zeros((8, 8, 3)), 0), "size", "0"),
    (evaluation.top_k_error, lambda: evaluation.top_k_error(np.zeros((4, 10)), np.zeros(3)), "scores", "(4, 10)"),
    (evaluation.top_k_error, lambda: evaluation.top_k_error(np.zeros((4, 10)), np.zeros(4), k=0), "k", "0"),
] + [
    # Every named constructor goes through the same checks; each gets one row.
    (constructor, lambda constructor=constructor: constructor(pooling="mean", include_top=False), "pooling", "'mean'")
    for constructor in kr.MODELS.values()
]


def _public_callables():
    found = {}
    for module in MODULES:
        for name in getattr(module, "__all__", None) or dir(module):
            value = getattr(module, name)
            if not name.startswith("_") and callable(value) and not inspect.ismodule(value):
                found.setdefault(value, f"{module.__name__}.{name}")
    return found


@pytest.mark.parametrize(
    "target, call, argument, received",
    CASES,
    ids=[
        f"{getattr(c[0], '__name__', c[0])}-{c[2]}"
        for c in (case.values if hasattr(case, "values") else case for case in CASES)
    ],
)
def test_bad_arguments_are_refused_with_a_message_that_teaches(target, call, argument, received, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises((ValueError, TypeError)) as error:
        call()
    message = str(error.value)
    assert argument in message, message
    assert received in message, message
    assert ALLOWED.search(message), message


def test_every_public_callable_is_in_the_table():
    covered = {(case.values if hasattr(case, "values") else case)[0] for case in CASES} | set(EXEMPT)
    missing = sorted(name for value, name in _public_callables().items() if value not in covered)
    assert not missing, f"public callables without a validation row in tests/test_validation.py: {missing}"


@pytest.mark.parametrize(
    "check, message",
    [
        (lambda: _validation.check_int("n", 0), "n must be a positive integer; received 0"),
        (lambda: _validation.check_int("n", True), "n must be a positive integer; received True"),
        (lambda: _validation.check_int("n", -1, 0), "n must be a non-negative integer; received -1"),
        (lambda: _validation.check_int("n", 8, 16), "n must be an integer of at least 16; received 8"),
        (
            lambda: _validation.check_int("n", 9, 2, 5, context=" for m=8"),
            "n must be an integer from 2 to 5 for m=8; received 9",
        ),
        (lambda: _validation.check_int("n", 2.0, optional=True), "n must be None or a positive integer; received 2.0"),
        (
            lambda: _validation.check_positive_ints("n", []),
            "n must be a non-empty sequence of positive integers; received []",
        ),
        (
            lambda: _validation.check_positive_ints("n", (1, 2), 3, context=", one per stage"),
            "n must be 3 positive integers, one per stage; received (1, 2)",
        ),
        (
            lambda: _validation.check_positive_ints("n", 4),
            "n must be a non-empty sequence of positive integers; received 4",
        ),
        (lambda: _validation.check_choice("n", "c", ("a", "b")), "n must be one of 'a', 'b'; received 'c'"),
        (
            lambda: _validation.require(False, "n", 1.5, "a number in (0, 1)"),
            "n must be a number in (0, 1); received n=1.5",
        ),
    ],
)
def test_each_kind_of_check_says_what_is_allowed(check, message):
    with pytest.raises(ValueError) as error:
        check()
    assert str(error.value) == message


@pytest.mark.parametrize("value", [1, np.int64(3), 2**40])
def test_integer_checks_accept_python_and_numpy_integers(value):
    _validation.check_int("n", value)
    _validation.check_positive_ints("n", [value, value], 2)
    _validation.check_int("n", None, optional=True)
