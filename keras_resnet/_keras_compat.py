"""Every use of a private Keras entry point, fenced in one module.

The rest of the package calls only public Keras plus the functions here. Each function names the private
Keras method or module it relies on, and `tests/test_keras_compat.py` has one test per use that fails with
a message naming the Keras change when a Keras release breaks it. `setup.cfg` pins the Keras releases
those tests passed on.
"""

import contextlib
import sys

import keras


def flatten_layers(model):
    """Every layer of `model`, `model` and the layers of nested models included.

    Keras: `Layer._flatten_layers()`. Public `model.layers` stops at the first level of nesting.
    """
    return list(model._flatten_layers())


@contextlib.contextmanager
def graph_recursion_room(outputs):
    """Python stack room for Keras to map the functional graph that ends in `outputs`.

    Keras maps a functional model's graph recursively, one Python frame per operation along a path, so
    ResNet-1202 (about 4,000 operations deep) exceeds Python's default recursion limit of 1000 whenever the
    caller's own stack is not shallow (under pytest, in a notebook). The limit is raised by three frames per
    operation for the duration and put back after.

    Keras: `keras.src.ops.function._build_map_helper` (the recursion) and a symbolic tensor's
    `_keras_history` and the operation's `_inbound_nodes` (read to count the operations, without recursion).
    """
    pending, nodes = list(keras.tree.flatten(outputs)), set()
    while pending:
        history = getattr(pending.pop(), "_keras_history", None)
        if history is None or (id(history.operation), history.node_index) in nodes:
            continue
        nodes.add((id(history.operation), history.node_index))
        pending.extend(history.operation._inbound_nodes[history.node_index].input_tensors)
    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(limit + 3 * len(nodes))
    try:
        yield
    finally:
        sys.setrecursionlimit(limit)


def output_activation(model):
    """The activation function that computes `model`'s (first) output, read through nested models.

    Follows the output tensor back to the layer that produced it: when that is a model called as a layer (a
    ResNet inside an augmentation model), into that model's own output, and so on. `Activation` and
    `Softmax` layers and layers with an `activation` attribute (`Dense`, `Conv2D`) are read; a model that
    was never called on an input is read from its last layer.

    Keras: a symbolic tensor's `_keras_history.operation`, the layer or model that produced it.

    Args:
        model: a `keras.Model`.

    Returns:
        The activation function (e.g. `keras.activations.softmax`, or `keras.activations.linear` for
        logits), or `None` when the producing layer has none that this can read (a `Lambda`, a subclassed
        model).
    """
    layer = model
    while isinstance(layer, keras.Model):
        try:
            layer = layer.outputs[0]._keras_history.operation
        except (AttributeError, IndexError, ValueError):  # never called: no symbolic output
            layer = layer.layers[-1] if layer.layers else None
    if isinstance(layer, keras.layers.Softmax):
        return keras.activations.softmax
    return getattr(layer, "activation", None)


def override_steps(model, train_step=None, test_step=None):
    """Makes `fit` and `evaluate` of `model` run these step functions instead of its own.

    Keras: `fit` compiles `self.train_step` (`evaluate`, `self.test_step`) when it builds its train (test)
    function, so an instance attribute set before then is the step that runs.
    """
    if train_step is not None:
        model.train_step = train_step
    if test_step is not None:
        model.test_step = test_step


def override_symbolic_build(model, build):
    """Makes the TensorFlow trainer call `build(iterator=..., data_batch=...)` to build `model` before `fit`.

    Keras: the TensorFlow trainer's `Trainer._maybe_symbolic_build(iterator=None, data_batch=None)`, called by
    `fit` and `evaluate` under a `tf.distribute` strategy before the first step.
    """
    model._maybe_symbolic_build = build


def epoch_iterator_element_spec(iterator):
    """The `tf.TypeSpec` structure of one batch of the data that `fit` iterates over.

    Keras: the `TFEpochIterator` passed to `_maybe_symbolic_build` keeps its data adapter in `.data_adapter`,
    whose `get_tf_dataset()` is the `tf.data.Dataset` of batches.
    """
    return iterator.data_adapter.get_tf_dataset().element_spec


def symbolic_build(model, data_batch):
    """Builds `model`, its compiled loss and metrics and its optimizer from the shapes of `data_batch`.

    Keras: `Trainer._symbolic_build(data_batch=...)`; `data_batch` may be tensors or `tf.TypeSpec`s.
    """
    model._symbolic_build(data_batch=data_batch)


def optimizer_variable_index(optimizer, variable):
    """The position of `variable` in the list the optimizer was built with, as `update_step` receives it.

    Keras: `BaseOptimizer._get_variable_index(variable)`; under `tf.distribute`, `update_step` receives a
    replica's component of a variable, which this maps back too.
    """
    return optimizer._get_variable_index(variable)


def saving_class_key(class_name):
    """The snake-case name under which Keras's `save_weights` files key a layer of class `class_name`.

    Keras: `keras.src.utils.naming.to_snake_case`, used by `keras.src.saving.saving_lib`.
    """
    from keras.src.utils.naming import to_snake_case

    return to_snake_case(class_name)


def with_imagenet_class_index(index, function, *args, **kwargs):
    """Calls `function(*args, **kwargs)` with `keras.applications`' ImageNet class index set to `index`.

    `keras.applications.*.decode_predictions` then decode with `index` instead of downloading theirs.
    Keras: the module global `keras.src.applications.imagenet_utils.CLASS_INDEX`, which `decode_predictions`
    fills on first use; its previous value is put back afterwards.
    """
    from keras.src.applications import imagenet_utils

    saved = imagenet_utils.CLASS_INDEX
    imagenet_utils.CLASS_INDEX = index
    try:
        return function(*args, **kwargs)
    finally:
        imagenet_utils.CLASS_INDEX = saved


_CHECKPOINT_METHODS = ("_save_model", "_get_file_path", "_should_save_model")


def route_checkpoint_saves(cls):
    """Class decorator: a `keras.callbacks.ModelCheckpoint` subclass whose saves go through `cls.write`.

    Private Keras: `ModelCheckpoint._save_model(epoch, batch, logs)`, which `on_epoch_end` and
    `on_train_batch_end` call for every save, `_get_file_path(epoch, batch, logs)` (formats `filepath`) and
    `_should_save_model(epoch, batch, logs, filepath)` (the `save_best_only` decision; it updates `best`).
    Keras writes the file with `model.save`/`save_weights` in place; the decorated class's
    `write(filepath)` writes it instead, and everything else (formatting, `best`, `save_freq`) stays Keras'.

    Args:
        cls: a subclass of `keras.callbacks.ModelCheckpoint` with a `write(filepath)` method.

    Returns:
        `cls`, its `_save_model` replaced.
    """
    missing = [
        name for name in _CHECKPOINT_METHODS if not callable(getattr(keras.callbacks.ModelCheckpoint, name, None))
    ]
    if missing:
        raise ImportError(
            f"keras {keras.__version__} changed keras.callbacks.ModelCheckpoint: it has no private method(s) "
            f"{missing}, through which keras_resnet writes checkpoints atomically; use a Keras release that "
            "setup.cfg names"
        )

    def _save_model(self, epoch, batch, logs):
        filepath = self._get_file_path(epoch, batch, logs)
        if self._should_save_model(epoch, batch, logs, filepath):
            self.write(filepath)

    cls._save_model = _save_model
    return cls


def set_initial_epoch(model, epoch):
    """Makes the `fit` running now start at `epoch`; call it from a callback's `on_train_begin`.

    Private Keras: `Model._initial_epoch`, which `fit` reads after `on_train_begin` (as
    `keras.callbacks.BackupAndRestore` sets it).

    Args:
        model: the `keras.Model` being fitted.
        epoch: int, the first epoch to run.
    """
    if not hasattr(model, "_initial_epoch"):
        raise AttributeError(
            f"keras {keras.__version__} changed keras.Model: it has no private attribute _initial_epoch, which "
            "fit read after on_train_begin to resume at a backup's epoch; use a Keras release that setup.cfg names"
        )
    model._initial_epoch = int(epoch)
