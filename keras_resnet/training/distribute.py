"""Data-parallel training: one model replicated over devices and worker processes.

Strategies (`STRATEGIES`): `"mirrored"` replicates over the local GPUs (logical CPUs without one),
`"multiworker"` over the cluster in `TF_CONFIG` (every process on JAX), `"none"` distributes nothing, and
`"auto"` picks `"multiworker"` in a cluster, `"mirrored"` with several devices, else `"none"`. Only the chief
writes the run's folder (`run_callbacks(..., is_chief=...)`); read replicated variables with `.numpy()`.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import socket
import typing
import warnings

import keras

from keras_resnet import _keras_compat, accelerate
from keras_resnet._validation import check_choice as _check_choice
from keras_resnet._validation import check_positive_int as _check_positive

__all__ = [
    "SHARD_POLICIES",
    "STRATEGIES",
    "Replication",
    "local_cluster",
    "replicate",
    "shard_dataset",
    "with_strategy",
]

STRATEGIES = ("auto", "mirrored", "multiworker", "none")
SHARD_POLICIES = ("data", "file")


class Replication(typing.NamedTuple):
    """How training is replicated (build one with `replicate`).

    Attributes:
        kind: the resolved strategy name: `"mirrored"`, `"multiworker"` or `"none"`.
        strategy: a `tf.distribute.Strategy`, a `keras.distribution.DataParallel` (JAX) or `None`.
        num_replicas: replicas in the whole cluster; the global batch is split between them.
        num_workers: processes in the cluster (1 without `"multiworker"`).
        is_chief: whether this process writes the run's files.
        devices: the local devices that hold a replica (empty for the default placement of `"none"`).

    Example:

    ```python
    replication = replicate("auto")
    with replication.scope():
        model = keras_resnet.ResNet20(input_shape=(32, 32, 3), classes=10)
    ```
    """

    kind: str
    strategy: typing.Any
    num_replicas: int
    num_workers: int
    is_chief: bool
    devices: tuple[str, ...]

    def scope(self) -> typing.ContextManager:
        """The scope to create the model, optimizer and metrics in (a no-op context without a strategy)."""
        return contextlib.nullcontext() if self.strategy is None else self.strategy.scope()

    def global_batch_size(self, per_replica_batch_size: int) -> int:
        """The batch the input pipeline must yield per step.

        Example:

        ```python
        replicate("none").global_batch_size(128)  # 128
        ```
        """
        _check_positive("per_replica_batch_size", per_replica_batch_size)
        return per_replica_batch_size * self.num_replicas


def replicate(strategy: str | Replication = "auto") -> Replication:
    """Resolves a strategy name (see the module docstring) for this process and backend.

    On TensorFlow a name resolves once per process; on JAX the result is installed as the global distribution.

    Args:
        strategy: one of `STRATEGIES`, or a `Replication` (returned as it is).

    Returns:
        A `Replication`.

    Example:

    ```python
    replication = replicate("auto")
    replication.num_replicas, replication.is_chief
    ```
    """
    if isinstance(strategy, Replication):
        return strategy
    _check_choice("strategy", strategy, STRATEGIES)
    backend = keras.backend.backend()
    if backend == "tensorflow":
        import tensorflow as tf

        if strategy == "auto" and _tf_config_cluster():
            strategy = "multiworker"
        elif strategy == "auto":
            strategy = "mirrored" if len(tf.config.list_physical_devices("GPU")) > 1 else "none"
        return _tensorflow_replication(strategy)
    if backend == "jax":
        return _jax_replication(strategy)
    if strategy not in ("auto", "none"):
        raise ValueError(
            f"strategy {strategy!r} needs the tensorflow or jax backend; received backend {backend!r}. "
            "Use strategy='none' or set KERAS_BACKEND."
        )
    return Replication("none", None, 1, 1, True, ())


def _tf_config_cluster():
    """The cluster named by `TF_CONFIG`, or an empty dict."""
    text = os.environ.get("TF_CONFIG", "").strip()
    try:
        config = json.loads(text) if text else {}
    except json.JSONDecodeError:
        config = None
    if not isinstance(config, dict):
        raise ValueError(
            'TF_CONFIG must be a JSON object such as {"cluster": {"worker": ["host:port", ...]}, '
            f'"task": {{"type": "worker", "index": 0}}}}; received {text!r}'
        )
    cluster = config.get("cluster") or {}
    return {job: tasks for job, tasks in cluster.items() if tasks}


@functools.cache
def _tensorflow_replication(kind):
    import tensorflow as tf

    if kind == "multiworker":
        cluster = _tf_config_cluster()
        if not cluster:
            raise ValueError(
                "strategy 'multiworker' needs TF_CONFIG naming the cluster and this task; received "
                f"TF_CONFIG={os.environ.get('TF_CONFIG')!r} (see keras_resnet.training.distribute.local_cluster)"
            )
        strategy = tf.distribute.MultiWorkerMirroredStrategy()
        return Replication(
            kind,
            strategy,
            strategy.num_replicas_in_sync,
            sum(len(tasks) for tasks in cluster.values()),
            strategy.extended.should_checkpoint,
            tuple(strategy.extended.worker_devices),
        )
    if kind == "mirrored":
        devices = tf.config.list_logical_devices("GPU") or tf.config.list_logical_devices("CPU")
        strategy = tf.distribute.MirroredStrategy([device.name for device in devices])
        return Replication(
            kind, strategy, strategy.num_replicas_in_sync, 1, True, tuple(strategy.extended.worker_devices)
        )
    return Replication("none", tf.distribute.get_strategy(), 1, 1, True, ())


def _jax_replication(kind):
    import jax

    processes = jax.process_count()
    if kind == "auto":
        kind = "multiworker" if processes > 1 else ("mirrored" if jax.device_count() > 1 else "none")
    if kind == "multiworker" and processes == 1:
        raise ValueError(
            "strategy 'multiworker' on the jax backend needs the processes joined first; received a single "
            "process. Call keras.distribution.initialize(...) at the start of every process."
        )
    if kind == "none":
        keras.distribution.set_distribution(None)
        return Replication("none", None, 1, 1, True, ())
    distribution = keras.distribution.DataParallel()
    keras.distribution.set_distribution(distribution)
    local = tuple(str(device) for device in jax.local_devices())
    return Replication(kind, distribution, jax.device_count(), processes, jax.process_index() == 0, local)


def with_strategy(
    build_fn: typing.Callable[[], keras.Model],
    strategy: str | Replication = "auto",
    *,
    jit_compile: bool | str = "auto",
) -> keras.Model:
    """Builds a compiled model inside a strategy's scope and readies it to train.

    Under several tf.distribute replicas the train step also averages the batch-norm moving statistics across
    replicas (Keras 3 keeps them per replica).

    Args:
        build_fn: a function of no arguments returning a compiled `keras.Model`.
        strategy: one of `STRATEGIES` or a `Replication`.
        jit_compile: `True` compiles the train step wherever the strategy allows and warns where not;
            `"auto"` compiles where `keras_resnet.accelerate.acceleration()` would, silently; `False` never.

    Returns:
        The model `build_fn` returned.

    Example:

    ```python
    def build():
        model = keras_resnet.ResNet20(input_shape=(32, 32, 3), classes=10)
        model.compile("sgd", "sparse_categorical_crossentropy", metrics=["accuracy"])
        return model

    model = with_strategy(build, "auto")
    ```
    """
    replication = replicate(strategy)
    with replication.scope():
        model = build_fn()
        if not isinstance(model, keras.Model) or not model.compiled:
            raise ValueError(
                f"build_fn must return a compiled keras.Model; received {model!r}. Compile it inside "
                "build_fn (e.g. with keras_resnet.recipes.compile_for)."
            )
        model.optimizer.build(model.trainable_variables)
    backend = keras.backend.backend()
    if backend in ("tensorflow", "jax"):
        model.jit_compile = _resolve_jit_compile(jit_compile, replication)
    if backend == "tensorflow" and replication.num_replicas > 1:
        _adapt_train_step(model, replication)
    return model


def _resolve_jit_compile(jit_compile, replication):
    """Whether the train step should and can be compiled under `replication`."""
    _check_choice("jit_compile", jit_compile, (True, False, "auto"))
    wanted = accelerate.acceleration(jit_compile=jit_compile).jit_compile
    if not wanted or keras.backend.backend() != "tensorflow":
        return wanted
    if len(replication.devices) > 1:
        blocker = (
            "Keras compiles the step of all local replicas as one XLA cluster, which cannot reach "
            "the variables of the other devices"
        )
    elif replication.kind == "multiworker" and "GPU" not in replication.devices[0].upper():
        blocker = "XLA has no collective ops for CPU devices"
    else:
        return True
    if jit_compile is True:
        warnings.warn(f"jit_compile=True is turned off under strategy {replication.kind!r}: {blocker}", stacklevel=3)
    return False


def _adapt_train_step(model, replication):
    """Keeps the replicas of a tf.distribute model identical."""
    import tensorflow as tf

    # Keras 3 keeps a replica's batch-norm moving statistics to itself (tf.keras averaged them on read).
    statistics = [
        variable
        for layer in _keras_compat.flatten_layers(model)
        if isinstance(layer, keras.layers.BatchNormalization) and layer.trainable and not layer.synchronized
        for variable in (layer.moving_mean, layer.moving_variance)
    ]
    across_workers = replication.num_workers > 1
    train_step, test_step = model.train_step, model.test_step

    def with_batch_axis(logs):
        # keras-team/keras#20585: with several workers Keras averages the logs along axis 0.
        return {name: tf.expand_dims(value, 0) for name, value in logs.items()} if across_workers else logs

    def replicated_train_step(data):
        logs = train_step(data)
        if statistics:
            # Pinned to this replica's device: TensorFlow reduces a plain tensor towards its device.
            with tf.device(statistics[0].value.device):
                local = [tf.identity(variable.value) for variable in statistics]
            averages = tf.distribute.get_replica_context().all_reduce("MEAN", local)
            for variable, average in zip(statistics, averages):
                variable.assign(average)
        return with_batch_axis(logs)

    def symbolic_build(iterator=None, data_batch=None):
        # keras-team/keras#20585: take the shapes from the element spec, not from a cross-worker average.
        if iterator is not None:
            data_batch = _keras_compat.epoch_iterator_element_spec(iterator)
        with model.distribute_strategy.scope():
            _keras_compat.symbolic_build(model, data_batch)

    _keras_compat.override_steps(model, train_step=replicated_train_step)
    if across_workers:
        _keras_compat.override_steps(model, test_step=lambda data: with_batch_axis(test_step(data)))
        _keras_compat.override_symbolic_build(model, symbolic_build)


def shard_dataset(dataset: typing.Any, policy: str) -> typing.Any:
    """Sets how `tf.distribute` splits a dataset between workers.

    Args:
        dataset: a `tf.data.Dataset` yielding global batches.
        policy: `"data"`: every worker runs the whole pipeline and keeps its share of each batch;
            `"file"`: each worker reads its own files (needs at least one record file per worker).

    Returns:
        The dataset with its auto-shard policy set.

    Example:

    ```python
    splits = keras_resnet.data.datasets("cifar10", batch_size=512, data_dir="~/data")
    train = shard_dataset(splits.train, "data")
    ```
    """
    _check_choice("policy", policy, SHARD_POLICIES)
    import tensorflow as tf

    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = getattr(tf.data.experimental.AutoShardPolicy, policy.upper())
    return dataset.with_options(options)


def local_cluster(num_workers: int = 2) -> list[str]:
    """`TF_CONFIG` values for a cluster of worker processes on this machine, on free ports of 127.0.0.1.

    TensorFlow's gRPC server binds every interface: isolate the workers in a network namespace if that matters.

    Args:
        num_workers: the number of worker processes.

    Returns:
        The JSON `TF_CONFIG` of worker 0 (the chief), 1, ...

    Example:

    ```python
    for config in local_cluster(2):
        subprocess.Popen([sys.executable, "train.py"], env={**os.environ, "TF_CONFIG": config})
    ```
    """
    _check_positive("num_workers", num_workers)
    with contextlib.ExitStack() as stack:
        sockets = [stack.enter_context(socket.socket()) for _ in range(num_workers)]
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        workers = [f"127.0.0.1:{sock.getsockname()[1]}" for sock in sockets]
    return [
        json.dumps({"cluster": {"worker": workers}, "task": {"type": "worker", "index": index}})
        for index in range(num_workers)
    ]
