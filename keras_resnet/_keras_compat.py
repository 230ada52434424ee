"""Every use of a private Keras entry point, fenced in one module.

The rest of the package calls only public Keras plus the functions here. Each function names the private
Keras method or module it relies on, and `tests/test_keras_compat.py` has one test per use that fails with
a message naming the Keras change when a Keras release breaks it. `setup.cfg` pins the Keras releases
those tests passed on.
"""


def flatten_layers(model):
    """Every layer of `model`, `model` and the layers of nested models included.

    Keras: `Layer._flatten_layers()`. Public `model.layers` stops at the first level of nesting.
    """
    return list(model._flatten_layers())


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
