"""One test per private Keras entry point that `keras_resnet/_keras_compat.py` relies on.

Each test exercises the Keras behaviour itself (not only that a name exists) and, when it breaks, fails with
a message naming the Keras release and the change, so a Keras upgrade shows at once which function of
`_keras_compat` to adapt. `setup.cfg` pins the Keras releases these tests passed on.
"""

import contextlib
import sys

import h5py
import keras
import numpy as np
import pytest

from keras_resnet import _keras_compat


@contextlib.contextmanager
def keras_still(behaviour, function):
    """Turns any failure inside the block into one message naming the Keras change."""
    try:
        yield
    except Exception as error:  # noqa: BLE001 - any break of the contract is the same news
        pytest.fail(
            f"Keras {keras.version()} no longer {behaviour} ({type(error).__name__}: {error}). "
            f"Adapt keras_resnet._keras_compat.{function.__name__} and the Keras range in setup.cfg.",
            pytrace=False,
        )


def tiny_model(name="tiny"):
    inputs = keras.Input((4,))
    x = keras.layers.Dense(3)(inputs)
    x = keras.layers.BatchNormalization()(x)
    return keras.Model(inputs, keras.layers.Dense(2)(x), name=name)


def tiny_data(count=8):
    rng = np.random.default_rng(0)
    return rng.random((count, 4), dtype="float32"), rng.integers(0, 2, count).astype("int32")


def test_flatten_layers_reaches_into_nested_models():
    inner = tiny_model("inner")
    inputs = keras.Input((4,))
    outer = keras.Model(inputs, keras.layers.Dense(2)(inner(inputs)), name="outer")
    with keras_still("lists nested layers with Layer._flatten_layers()", _keras_compat.flatten_layers):
        layers = _keras_compat.flatten_layers(outer)
        assert layers[0] is outer
        assert inner in layers
        assert all(layer in layers for layer in inner.layers)
        assert any(isinstance(layer, keras.layers.BatchNormalization) for layer in layers)


def test_output_activation_follows_the_output_tensor_into_nested_models():
    inner = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2, activation="softmax")])
    inputs = keras.Input((4,))
    outer = keras.Model(inputs, inner(keras.layers.Dense(4)(inputs)))
    logits = keras.Model(inputs, keras.layers.Dense(2)(inner(inputs)))
    with keras_still(
        "records the producing layer as a symbolic tensor's _keras_history.operation", _keras_compat.output_activation
    ):
        assert _keras_compat.output_activation(outer) is keras.activations.softmax
        assert _keras_compat.output_activation(logits) is keras.activations.linear
        assert _keras_compat.output_activation(keras.Sequential([keras.layers.Dense(2)])) is keras.activations.linear


def test_override_steps_is_what_fit_and_evaluate_run():
    model = tiny_model()
    model.compile("sgd", "sparse_categorical_crossentropy")
    train_step, test_step = model.train_step, model.test_step
    calls = []

    def counted_train_step(data):
        calls.append("train")
        return {**train_step(data), "marker": 1.0}

    def counted_test_step(data):
        calls.append("test")
        return {**test_step(data), "marker": 2.0}

    _keras_compat.override_steps(model, train_step=counted_train_step, test_step=counted_test_step)
    x, y = tiny_data()
    with keras_still(
        "runs a train_step/test_step set on the model instance in fit/evaluate", _keras_compat.override_steps
    ):
        history = model.fit(x, y, batch_size=4, epochs=1, verbose=0)
        result = model.evaluate(x, y, batch_size=4, verbose=0, return_dict=True)
        assert history.history["marker"] == [1.0]
        assert result["marker"] == 2.0
        assert "train" in calls and "test" in calls


@pytest.fixture(scope="module")
def symbolic_build_call():
    """What fit passes to `_maybe_symbolic_build` under a tf.distribute strategy, with the spec it yields."""
    tf = pytest.importorskip("tensorflow")
    if keras.backend.backend() != "tensorflow":
        pytest.skip("the symbolic build hook is the TensorFlow trainer's")
    with tf.distribute.OneDeviceStrategy("/cpu:0").scope():
        model = tiny_model()
        model.compile("sgd", "sparse_categorical_crossentropy", metrics=["accuracy"])
    received = {}

    def build(iterator=None, data_batch=None):
        received.update(iterator=iterator, data_batch=data_batch)
        if iterator is not None:
            received["spec"] = _keras_compat.epoch_iterator_element_spec(iterator)
        with model.distribute_strategy.scope():
            _keras_compat.symbolic_build(model, received.get("spec", data_batch))

    _keras_compat.override_symbolic_build(model, build)
    x, y = tiny_data()
    try:
        model.fit(x, y, batch_size=4, epochs=1, verbose=0)
    except Exception as error:  # noqa: BLE001 - reported by the tests that use the call
        received["error"] = error
    return model, received


def test_override_symbolic_build_gets_fits_iterator_whose_spec_is_the_batch_structure(symbolic_build_call):
    import tensorflow as tf

    _, received = symbolic_build_call
    with keras_still(
        "calls Trainer._maybe_symbolic_build(iterator=...) from fit under a tf.distribute strategy",
        _keras_compat.override_symbolic_build,
    ):
        assert "error" not in received, received.get("error")
        assert received.get("iterator") is not None, "fit did not call the hook with an iterator"
    with keras_still(
        "keeps the data adapter of fit's epoch iterator in .data_adapter (get_tf_dataset())",
        _keras_compat.epoch_iterator_element_spec,
    ):
        x_spec, y_spec = received["spec"]
        assert isinstance(x_spec, tf.TensorSpec) and x_spec.shape[-1] == 4
        assert isinstance(y_spec, tf.TensorSpec) and y_spec.dtype == tf.int32


def test_symbolic_build_builds_metrics_and_optimizer_from_a_spec():
    tf = pytest.importorskip("tensorflow")
    model = tiny_model()
    model.compile("sgd", "sparse_categorical_crossentropy", metrics=["accuracy"])
    spec = (tf.TensorSpec((None, 4), tf.float32), tf.TensorSpec((None,), tf.int32))
    with keras_still(
        "builds a compiled model, its metrics and optimizer with Trainer._symbolic_build(data_batch=)",
        _keras_compat.symbolic_build,
    ):
        assert not model.optimizer.built
        _keras_compat.symbolic_build(model, spec)
        assert model.optimizer.built
        assert "accuracy/total" in [variable.path for variable in model.metrics_variables]


def test_optimizer_variable_index_is_the_build_position():
    variables = [keras.Variable(np.zeros(shape, "float32"), name=f"v{i}") for i, shape in enumerate([(2,), (3,), (1,)])]
    optimizer = keras.optimizers.SGD(momentum=0.9)
    optimizer.build(variables)
    with keras_still(
        "maps a variable to its build position with BaseOptimizer._get_variable_index",
        _keras_compat.optimizer_variable_index,
    ):
        assert [_keras_compat.optimizer_variable_index(optimizer, v) for v in variables] == [0, 1, 2]
        # The position indexes the optimizer's own slots, as update_step reads them.
        assert [tuple(m.shape) for m in optimizer.momentums] == [(2,), (3,), (1,)]


def test_optimizer_variable_index_maps_a_replica_component_back():
    # Under tf.distribute, update_step receives each replica's tf.Variable, not the keras.Variable.
    tf = pytest.importorskip("tensorflow")
    if keras.backend.backend() != "tensorflow":
        pytest.skip("tf.distribute is the TensorFlow backend's")
    seen = []

    class Recording(keras.optimizers.SGD):
        def update_step(self, gradient, variable, learning_rate):
            seen.append(_keras_compat.optimizer_variable_index(self, variable))
            super().update_step(gradient, variable, learning_rate)

    strategy = tf.distribute.MirroredStrategy(["/cpu:0"])
    with strategy.scope():
        variables = [keras.Variable(np.zeros(shape, "float32")) for shape in [(2,), (3,)]]
        optimizer = Recording(0.1)
        optimizer.build(variables)

    @tf.function
    def step():
        strategy.run(lambda: optimizer.apply_gradients([(tf.ones(v.shape), v) for v in variables]))

    with keras_still(
        "maps the per-replica variable update_step receives to its build position",
        _keras_compat.optimizer_variable_index,
    ):
        step()
        assert seen == [0, 1]


def test_saving_class_key_names_the_layers_of_a_weights_file(tmp_path):
    model = tiny_model()
    path = str(tmp_path / "tiny.weights.h5")
    model.save_weights(path)
    with h5py.File(path, "r") as file:
        keys = set(file["layers"])
    expected, seen = set(), {}
    for layer in model.layers:
        base = _keras_compat.saving_class_key(type(layer).__name__)
        count = seen.get(base, 0)
        seen[base] = count + 1
        expected.add(base if count == 0 else f"{base}_{count}")
    with keras_still(
        "keys the layers of a .weights.h5 file by keras.src.utils.naming.to_snake_case(class name)",
        _keras_compat.saving_class_key,
    ):
        assert {"dense", "dense_1", "batch_normalization"} <= keys
        assert keys <= expected, f"file keys {sorted(keys)}, expected among {sorted(expected)}"


def test_with_imagenet_class_index_is_what_decode_predictions_reads():
    from keras.src.applications import imagenet_utils

    before = imagenet_utils.CLASS_INDEX
    index = {str(i): [f"n{i:08d}", f"class_{i}"] for i in range(1000)}
    preds = np.zeros((1, 1000), "float32")
    preds[0, [5, 9]] = [0.25, 0.75]
    with keras_still(
        "decodes with the module global imagenet_utils.CLASS_INDEX when it is set",
        _keras_compat.with_imagenet_class_index,
    ):
        decoded = _keras_compat.with_imagenet_class_index(
            index, keras.applications.resnet.decode_predictions, preds, top=2
        )
        assert [name for _, name, _ in decoded[0]] == ["class_9", "class_5"]
        assert imagenet_utils.CLASS_INDEX is before


def test_installed_keras_is_in_the_pinned_range():
    import configparser
    import pathlib

    from packaging.requirements import Requirement

    config = configparser.ConfigParser()
    config.read(pathlib.Path(__file__).resolve().parents[1] / "setup.cfg")
    requirements = [Requirement(line) for line in config["options"]["install_requires"].split("\n") if line.strip()]
    keras_requirement = next(r for r in requirements if r.name == "keras")
    assert keras_requirement.specifier.contains(keras.version()), (
        f"Keras {keras.version()} is outside setup.cfg's tested range {keras_requirement.specifier}: if every "
        "test of tests/test_keras_compat.py passes on it, widen the range; else adapt keras_resnet/_keras_compat.py"
    )


def _tiny_fit(callbacks, epochs=2):
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    model.compile("sgd", "mse")
    x = np.ones((4, 2), "float32")
    return model, model.fit(
        x,
        np.ones((4, 1)),
        validation_data=(x, np.ones((4, 1))),
        epochs=epochs,
        verbose=0,
        batch_size=2,
        callbacks=callbacks,
    )


def test_route_checkpoint_saves_sees_every_save_with_keras_formatting_and_best():
    @_keras_compat.route_checkpoint_saves
    class Recording(keras.callbacks.ModelCheckpoint):
        def write(self, filepath):
            written.append(filepath)

    written = []
    _tiny_fit([Recording("epoch{epoch}.keras")])
    assert written == ["epoch1.keras", "epoch2.keras"], (
        "keras.callbacks.ModelCheckpoint no longer saves through _save_model/_get_file_path: "
        f"keras {keras.__version__} changed how checkpoints are written; received {written}"
    )
    written.clear()
    best = Recording("best.keras", monitor="val_loss", save_best_only=True, initial_value_threshold=-1.0)
    _tiny_fit([best])
    assert written == [] and best.best == -1.0, (
        "ModelCheckpoint._should_save_model no longer decides save_best_only from best: "
        f"keras {keras.__version__} changed it"
    )


def test_set_initial_epoch_makes_fit_start_there():
    seen = []

    class StartAtTwo(keras.callbacks.Callback):
        def on_train_begin(self, logs=None):
            _keras_compat.set_initial_epoch(self.model, 2)

        def on_epoch_begin(self, epoch, logs=None):
            seen.append(epoch)

    _tiny_fit([StartAtTwo()], epochs=4)
    assert seen == [2, 3], (
        f"Model._initial_epoch set in on_train_begin no longer moves fit's first epoch: keras {keras.__version__} "
        f"changed how BackupAndRestore resumes; epochs run: {seen}"
    )


def test_graph_recursion_room_lets_keras_map_a_graph_deeper_than_the_limit():
    x = inputs = keras.Input((2,))
    for _ in range(1200):
        x = keras.layers.Identity()(x)
    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(1000)
    try:
        try:
            keras.Model(inputs, x)
        except RecursionError:
            pass
        else:
            pytest.fail("Keras maps functional graphs without recursion now: graph_recursion_room can go")
        with _keras_compat.graph_recursion_room(x):
            assert sys.getrecursionlimit() > 1000 + 3 * 1200
            model = keras.Model(inputs, x)
        assert sys.getrecursionlimit() == 1000
    finally:
        sys.setrecursionlimit(limit)
    assert len(model.layers) == 1201
