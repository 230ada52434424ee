"""Every use of a private Keras entry point, fenced in one module; each function names what it relies on.

`tests/test_keras_compat.py` tests each use; `setup.cfg` pins the Keras releases they passed on.
"""

import contextlib
import sys

import keras


def flatten_layers(model):
    """Every layer of `model`, nested models' included (Keras: `Layer._flatten_layers()`)."""
    return list(model._flatten_layers())


@contextlib.contextmanager
def graph_recursion_room(outputs):
    """Raises the recursion limit by 3 frames per operation of the graph ending in `outputs`, for the duration.

    Keras maps a functional graph recursively, one frame per operation: ResNet-1202 exceeds the default 1000.
    Keras: `keras.src.ops.function._build_map_helper`, `_keras_history`, `_inbound_nodes`.
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
    """The activation that computes `model`'s first output, read through nested models; `None` if unreadable.

    Keras: a symbolic tensor's `_keras_history.operation`, the layer or model that produced it.
    """
    layer = model
    while isinstance(layer, keras.Model):
        try:
            layer = layer.outputs[0]._keras_history.operation
        except (AttributeError, IndexError, ValueError):  # never called: read its last layer
            layer = layer.layers[-1] if layer.layers else None
    if isinstance(layer, keras.layers.Softmax):
        return keras.activations.softmax
    return getattr(layer, "activation", None)


def override_steps(model, train_step=None, test_step=None):
    """Makes `fit`/`evaluate` run these steps (Keras compiles `self.train_step`/`self.test_step` then)."""
    if train_step is not None:
        model.train_step = train_step
    if test_step is not None:
        model.test_step = test_step


def override_symbolic_build(model, build):
    """Makes the TensorFlow trainer call `build(iterator=..., data_batch=...)` to build `model` before `fit`.

    Keras: `Trainer._maybe_symbolic_build`, called under a `tf.distribute` strategy before the first step.
    """
    model._maybe_symbolic_build = build


def epoch_iterator_element_spec(iterator):
    """The `tf.TypeSpec` of one batch `fit` iterates (Keras: `TFEpochIterator.data_adapter.get_tf_dataset()`)."""
    return iterator.data_adapter.get_tf_dataset().element_spec


def symbolic_build(model, data_batch):
    """Builds `model`, loss, metrics, optimizer from `data_batch`, tensors or specs (Keras: `_symbolic_build`)."""
    model._symbolic_build(data_batch=data_batch)


def optimizer_variable_index(optimizer, variable):
    """The optimizer's index of `variable` or its replica component (Keras: `BaseOptimizer._get_variable_index`)."""
    return optimizer._get_variable_index(variable)


def saving_class_key(class_name):
    """How `save_weights` files key a layer of class `class_name` (Keras: `keras.src.utils.naming`)."""
    from keras.src.utils.naming import to_snake_case

    return to_snake_case(class_name)


def with_imagenet_class_index(index, function, *args, **kwargs):
    """Calls `function(*args, **kwargs)` with `keras.applications`' ImageNet class index set to `index`.

    Keras: the module global `keras.src.applications.imagenet_utils.CLASS_INDEX`, put back afterwards.
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
    """Class decorator: a `keras.callbacks.ModelCheckpoint` subclass whose saves go through `cls.write(filepath)`.

    Formatting, `best` and `save_freq` stay Keras'. Keras: `ModelCheckpoint._save_model`, `_get_file_path`
    and `_should_save_model` (the `save_best_only` decision).
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

    Keras: `Model._initial_epoch`, read by `fit` after `on_train_begin` (as `BackupAndRestore` sets it).
    """
    if not hasattr(model, "_initial_epoch"):
        raise AttributeError(
            f"keras {keras.__version__} changed keras.Model: it has no private attribute _initial_epoch, which "
            "fit read after on_train_begin to resume at a backup's epoch; use a Keras release that setup.cfg names"
        )
    model._initial_epoch = int(epoch)
