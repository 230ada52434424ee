import importlib
import inspect
import math
import re
import warnings

import keras
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from recipe_helpers import tiny_data, tiny_model

from keras_resnet import recipes
from keras_resnet.training import run_folder


@pytest.fixture
def restore_policy():
    policy = keras.mixed_precision.global_policy()
    yield
    keras.mixed_precision.set_global_policy(policy)


@pytest.mark.parametrize("name", ["cifar10", "cifar100"])
@pytest.mark.parametrize(
    "step, lr", [(0, 0.1), (31_999, 0.1), (32_000, 0.01), (47_999, 0.01), (48_000, 0.001), (63_999, 0.001)]
)
def test_cifar_schedule_divides_by_10_at_32k_and_48k(name, step, lr):
    assert float(recipes.learning_rate_schedule(name)(step)) == pytest.approx(lr, rel=1e-6)
    assert recipes.recipe_for(name).total_steps == 64_000


@pytest.mark.parametrize("batch_size", [64, 256, 1024])
def test_imagenet_lr_scales_linearly_with_batch(batch_size):
    optimizer = recipes.optimizer_for("imagenet", batch_size=batch_size)
    assert isinstance(optimizer.learning_rate, keras.Variable)  # plateau: a float PlateauDecay sets
    assert float(optimizer.learning_rate) == pytest.approx(0.1 * batch_size / 256)
    total_steps = recipes.recipe_for("imagenet", batch_size=batch_size).total_steps
    assert total_steps == 600_000 * 256 // batch_size


def test_batch_size_rescales_cifar_iterations_unless_overridden():
    half = recipes.recipe_for("cifar10", batch_size=64)
    assert (half.lr, half.boundaries, half.total_steps) == (0.05, (64_000, 96_000), 128_000)
    chosen = recipes.recipe_for("cifar10", batch_size=64, lr=0.2, boundaries=(10, 20))
    assert (chosen.lr, chosen.boundaries) == (0.2, (10, 20))


def test_epochs_cover_the_paper_runs():
    assert recipes.RECIPES["cifar10"].epochs(50_000) == 164
    assert recipes.RECIPES["imagenet"].epochs(1_281_167) == 120


@pytest.mark.parametrize("step", [0, 2_500, 5_000, 10_000])
def test_cosine_schedule(step):
    schedule = recipes.learning_rate_schedule("cifar10", schedule="cosine", total_steps=10_000)
    assert float(schedule(step)) == pytest.approx(0.05 * (1 + math.cos(math.pi * step / 10_000)), abs=1e-7)


@pytest.mark.parametrize("step, lr", [(0, 0.0), (250, 0.025), (999, 0.0999), (1_000, 0.1), (32_000, 0.01)])
def test_linear_warmup_ramps_into_the_step_schedule(step, lr):
    schedule = recipes.learning_rate_schedule("cifar10", warmup_steps=1_000)
    assert float(schedule(step)) == pytest.approx(lr, abs=1e-7)


@settings(max_examples=40, deadline=None)
@given(st.lists(st.integers(1, 10_000), min_size=0, max_size=4, unique=True), st.integers(0, 12_000))
def test_step_decay_counts_the_boundaries_passed(boundaries, step):
    boundaries = sorted(boundaries)
    expected = 0.1 * 0.1 ** sum(step >= b for b in boundaries)
    assert float(recipes.StepDecay(0.1, boundaries)(step)) == pytest.approx(expected, rel=1e-5)


def test_optimizer_momentum_and_nesterov():
    optimizer = recipes.optimizer_for("cifar10")
    assert (optimizer.momentum, optimizer.nesterov, optimizer.l2) == (0.9, False, 1e-4)
    assert recipes.optimizer_for("cifar10", nesterov=True, momentum=0.8).nesterov


def reference_sgd(w, lr, momentum, l2, nesterov, steps):
    """torch.optim.SGD(weight_decay=l2) on a zero loss gradient."""
    buf = None
    for _ in range(steps):
        grad = l2 * w
        buf = grad if buf is None else momentum * buf + grad
        w = w - lr * (grad + momentum * buf if nesterov else buf)
    return w


@pytest.mark.parametrize("nesterov", [False, True])
def test_weight_decay_touches_kernels_only_as_coupled_l2(nesterov):
    model = tiny_model()
    before = {v.path: v.numpy() for v in model.trainable_variables}
    optimizer = recipes.L2SGD(learning_rate=0.5, momentum=0.9, nesterov=nesterov, l2=0.1)
    for _ in range(3):
        optimizer.apply([keras.ops.zeros(v.shape) for v in model.trainable_variables], model.trainable_variables)
    for variable in model.trainable_variables:
        start = before[variable.path]
        if variable.name == "kernel":
            expected = reference_sgd(start, 0.5, 0.9, 0.1, nesterov, steps=3)
            assert not np.allclose(expected, start)
        else:
            expected = start
        np.testing.assert_allclose(variable.numpy(), expected, rtol=1e-5, err_msg=variable.path)


def test_weight_decay_zero_leaves_kernels_alone():
    model = tiny_model()
    kernel = model.layers[0].kernel.numpy()
    optimizer = recipes.optimizer_for("cifar10", weight_decay=0.0)
    optimizer.apply([keras.ops.zeros(v.shape) for v in model.trainable_variables], model.trainable_variables)
    np.testing.assert_array_equal(model.layers[0].kernel.numpy(), kernel)


def smoothed_cross_entropy(probabilities, label, smoothing):
    target = np.full(probabilities.shape, smoothing / probabilities.size)
    target[label] += 1 - smoothing
    return -np.sum(target * np.log(probabilities))


@pytest.mark.parametrize("sparse_labels", [True, False])
def test_label_smoothing_reaches_the_loss(sparse_labels):
    model = tiny_model(activation="softmax")
    recipes.compile_for(model, "cifar10", label_smoothing=0.1, sparse_labels=sparse_labels)
    probabilities = np.array([[0.7, 0.2, 0.1]], "float32")
    label = np.array([0]) if sparse_labels else np.array([[1.0, 0.0, 0.0]], "float32")
    assert float(model.loss(label, probabilities)) == pytest.approx(
        smoothed_cross_entropy(probabilities[0], 0, 0.1), rel=1e-5
    )


@pytest.mark.parametrize("activation, from_logits", [("softmax", False), (None, True)])
def test_from_logits_is_inferred_from_the_last_layer(activation, from_logits):
    model = tiny_model(activation=activation)
    recipes.compile_for(model, "cifar10")
    assert model.loss.get_config()["from_logits"] is from_logits


def wrapped(activation):
    """A model around a nested classifier, as `augment`'s docstring builds one: its last layer is the model."""
    inner = tiny_model(activation=activation)
    inputs = keras.Input((8, 8, 3))
    return keras.Model(inputs, inner(keras.layers.Rescaling(1 / 255)(inputs)))


@pytest.mark.parametrize(
    "make_model, from_logits",
    [
        (lambda: wrapped("softmax"), False),
        (lambda: wrapped(None), True),
        (lambda: keras.Sequential([tiny_model(), keras.layers.Activation("softmax")]), False),
        (lambda: keras.Sequential([tiny_model(), keras.layers.Softmax()]), False),
    ],
)
def test_from_logits_is_inferred_from_the_output_through_nested_models(make_model, from_logits):
    model = make_model()
    recipes.compile_for(model, "cifar10")
    assert model.loss.get_config()["from_logits"] is from_logits


def test_imagenet_reports_top5():
    model = tiny_model()
    recipes.compile_for(model, "imagenet")
    x, y = tiny_data(8)
    assert {"accuracy", "top5_accuracy"} <= set(model.evaluate(x, y, verbose=0, return_dict=True))


@pytest.mark.parametrize(
    "recipe, overrides, pattern",
    [
        ("cifar1O", {}, r"recipe must be one of 'cifar10'.* or a Recipe; received recipe='cifar1O'"),
        (["imagenet"], {}, r"recipe must be one of .*; received recipe=\['imagenet'\]"),
        (
            "cifar10",
            {"schedule": "linear"},
            r"schedule must be one of 'step', 'cosine', 'plateau'; received 'linear'",
        ),
        (
            "cifar10",
            {"learning_rate": 0.1},
            r"learning_rate is not a recipe field; received learning_rate=0.1; the fields are batch_size, lr",
        ),
        ("cifar10", {"lr": 0}, r"lr must be a positive number; received lr=0"),
        ("cifar10", {"batch_size": 12.5}, r"batch_size must be a positive integer; received 12.5"),
        ("imagenet", {"batch_size": 0}, r"batch_size must be a positive integer; received 0"),
        ("cifar10", {"boundaries": (48_000, 32_000)}, r"boundaries must be increasing positive integers"),
        ("cifar10", {"label_smoothing": 1.0}, r"label_smoothing must be a number in \[0, 1\); received"),
        ("imagenet", {"warmup_steps": 10}, r"warmup_steps must be 0 with schedule='plateau'"),
        ("cifar10", {"warmup_steps": 64_000}, r"warmup_steps must be an integer from 0 to 63999 \(below total_steps\)"),
    ],
)
def test_bad_values_name_argument_value_and_allowed(recipe, overrides, pattern):
    with pytest.raises(ValueError, match=pattern):
        recipes.recipe_for(recipe, **overrides)


def test_unknown_precision_policy_is_refused():
    with pytest.raises(
        ValueError,
        match="mixed_precision must be one of 'float32', 'mixed_float16', 'mixed_bfloat16'; received 'float16'",
    ):
        recipes.compile_for(tiny_model(), mixed_precision="float16")


@pytest.mark.parametrize("policy, scaled", [("mixed_float16", True), ("mixed_bfloat16", False)])
def test_mixed_precision_sets_the_policy_and_compiles(restore_policy, policy, scaled):
    keras.mixed_precision.set_global_policy(policy)
    model = tiny_model()
    keras.mixed_precision.set_global_policy("float32")
    recipes.compile_for(model, "cifar10", mixed_precision=policy)
    assert keras.mixed_precision.global_policy().name == policy
    assert isinstance(model.optimizer, keras.optimizers.LossScaleOptimizer) is scaled
    x, y = tiny_data(8)
    assert np.isfinite(model.train_on_batch(x, y, return_dict=True)["loss"])


def test_mixed_precision_refuses_a_float32_model(restore_policy):
    with pytest.raises(ValueError, match="needs a model built under that policy.*'float32'"):
        recipes.compile_for(tiny_model(), "cifar10", mixed_precision="mixed_bfloat16")


def test_optimizer_and_schedule_survive_a_keras_file(tmp_path):
    model = tiny_model()
    recipes.compile_for(model, "cifar10", warmup_steps=100, boundaries=(300, 600))
    model.optimizer.build(model.trainable_variables)
    model.save(tmp_path / "model.keras")
    loaded = keras.saving.load_model(tmp_path / "model.keras").optimizer
    assert isinstance(loaded, recipes.L2SGD) and loaded.l2 == 1e-4
    schedule = loaded.get_config()["learning_rate"]
    assert schedule["class_name"] == "LinearWarmUp"
    loaded_schedule = keras.optimizers.schedules.deserialize(schedule)
    for step in (0, 50, 300, 600):
        assert float(loaded_schedule(step)) == pytest.approx(
            float(recipes.learning_rate_schedule("cifar10", warmup_steps=100, boundaries=(300, 600))(step))
        )


def test_resnet20_variables_are_all_decayed_or_exempt():
    builder = getattr(importlib.import_module("keras_resnet"), "ResNet20", None)
    if builder is None:
        pytest.skip("keras_resnet.ResNet20 is not there yet")
    model = builder(input_shape=(32, 32, 3), classes=10)
    recipes.compile_for(model, "cifar10")
    assert {v.name for v in model.trainable_variables} <= {"kernel", "bias", "gamma", "beta"}
    rng = np.random.default_rng(0)
    logs = model.train_on_batch(rng.random((4, 32, 32, 3), dtype="float32"), np.arange(4), return_dict=True)
    assert np.isfinite(logs["loss"])


@pytest.mark.parametrize("name", sorted(set(recipes.__all__) - {"RECIPES"}) + ["Recipe.epochs"])
def test_docstring_examples_run_and_hold(name):
    doc = inspect.getdoc(eval(name, vars(recipes)))
    assert "Args:" in doc  # examples written as doctests run in tests/test_package.py
    for block in re.findall(r"```python\n(.*?)```", doc, re.S):
        # `expression  # number` lines state a result: check it.
        exec(
            re.sub(r"^(\S.*?)  # (-?[\d.]+)$", r"assert abs((\1) - \2) < 1e-6", block, flags=re.M), vars(recipes).copy()
        )


@pytest.mark.parametrize("recipe, missing", [("imagenet", "PlateauDecay"), ("cifar10_resnet110", "ErrorWarmUp")])
def test_fit_warns_when_the_callbacks_of_the_recipe_s_schedule_are_missing(recipe, missing):
    def fit_warnings(model, **kwargs):
        x, y = tiny_data(8)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            model.fit(x, y, validation_data=(x, y), verbose=0, **kwargs)
        return [str(w.message) for w in caught if "compile_for" in str(w.message)]

    model = tiny_model()
    chosen = recipes.compile_for(model, recipe)
    (message,) = fit_warnings(model)
    assert re.search(f"needs the callback\\(s\\) {missing}.*training.run_callbacks\\(recipe\\)", message)
    assert fit_warnings(model, callbacks=run_folder.run_callbacks(chosen)) == []
    recipes.compile_for(model, "cifar10")  # its step schedule lives in the optimizer
    assert fit_warnings(model) == []
    recipes.compile_for(model, recipe)
    model.compile("sgd", "sparse_categorical_crossentropy")  # a later compile ends the check
    assert fit_warnings(model) == []
