"""Data-parallel training: one model replicated over devices and worker processes.

`replicate` turns a strategy name into a `Replication`: a `tf.distribute`
strategy on TensorFlow, a `keras.distribution.DataParallel` on JAX.
`with_strategy` builds a compiled model inside it and keeps its replicas in
step; `shard_dataset` tells tf.data how to split the input between workers;
`local_cluster` writes the `TF_CONFIG` of worker processes on one machine.
Runs are assembled from these in `keras_resnet.training.trainer`
(`distributed_model`, `scale_recipe`, `train`), with the run callbacks of
`keras_resnet.training.run_callbacks(..., is_chief=replication.is_chief)`.

```python
from keras_resnet import data
from keras_resnet.training import distribute
from keras_resnet import recipes
from keras_resnet.training import trainer

run = trainer.distributed_model("resnet20", "cifar10", per_replica_batch_size=128,
                                 input_shape=(32, 32, 3), classes=10)
splits = data.datasets("cifar10", batch_size=run.recipe.batch_size, data_dir="~/data")  # 45k train, 5k held out
run.model.fit(
    distribute.shard_dataset(splits.train, "data"),
    validation_data=distribute.shard_dataset(splits.validation, "data"),
    epochs=run.recipe.epochs(45_000),
    callbacks=run_folder.run_callbacks(run.recipe, "runs/resnet20", is_chief=run.replication.is_chief),
)
```

**Strategies.** `strategy` is one of `STRATEGIES`:

- `"auto"`: on TensorFlow `"multiworker"` when `TF_CONFIG` names a cluster,
  `"mirrored"` with several GPUs, else `"none"`; on JAX `"multiworker"` after
  `keras.distribution.initialize()`, `"mirrored"` with several devices, else
  `"none"`.
- `"mirrored"`: TensorFlow's `MirroredStrategy` over all local GPUs (over the
  logical CPUs when there is no GPU); JAX's `DataParallel` over all devices.
- `"multiworker"`: TensorFlow's `MultiWorkerMirroredStrategy`, cluster and
  task from `TF_CONFIG`; JAX's `DataParallel` over every process's devices.
- `"none"`: TensorFlow's default strategy; no distribution on JAX.

**Batch and learning rate.** With `per_replica_batch_size`, the global batch
is `per_replica_batch_size * num_replicas` and the recipe's learning rate
grows linearly with it (Goyal et al. 2017), its step counts shrink, so the
same number of epochs is trained (`keras_resnet.training.trainer.scale_recipe`).

**Batch normalization.** Under tf.distribute each replica normalises with the
statistics of its own share of the batch. Keras 3 would then let every
replica keep moving averages of its own (tf.keras averaged them when read);
models readied here average them across all replicas after every step, so
every replica and worker holds the same weights. On JAX, `DataParallel` runs
one SPMD program: the statistics span the global batch, and training matches
a single device.

**Input.** `shard_dataset(dataset, "data")` for in-memory sets and folders of
image files (every worker reads everything and keeps its share of the
batches); `"file"` for sets stored in at least as many record files as there
are workers (each worker reads its own files; a worker left without files
gets no data).

**Checkpoints.** Every worker saves at the same points, as Keras's
multi-worker guide does (reading distributed variables may take every
worker), but only the chief writes into the run's folder; the others write to
temporary folders that are deleted (`keras_resnet.training.run_callbacks`
with `is_chief`). The backup folder must be on a file system that every
worker mounts.

**XLA** (`jit_compile`). Keras 3.15 resolves its own `jit_compile="auto"` to
off on a CPU-only machine and under any `tf.distribute` strategy; an explicit
`True` is kept, and Keras then compiles the whole train step, `strategy.run`
over every replica included, as one XLA cluster. `with_strategy` (and so
`keras_resnet.training.trainer.distributed_model`) keeps XLA on where that cluster
compiles, and off where it cannot (with a warning when `jit_compile=True` was
asked); its `"auto"` (the default) also leaves it off on a CPU-only machine,
where it is slower than TensorFlow's oneDNN kernels:

- One device (`"none"`): XLA on (with `"auto"`, only on a machine with an
  accelerator).
- Several local devices (`"mirrored"`): off. Keras's single cluster cannot
  reach the other replicas' variables (`InvalidArgumentError: Trying to
  access resource ... located in device CPU:1 from device CPU:0`).
- One CPU per worker (`"multiworker"`): off. XLA has no collective ops for
  CPU devices (`Collectives are not yet implemented for CPU devices when
  compiling with XLA`).
- One GPU per worker (`"multiworker"`): on; XLA has collective ops for GPUs.

On JAX every step is compiled by `jax.jit`, with or without distribution
(`jit_compile=False` runs it eagerly). The measurements behind these choices,
and what the strategies cost on a CPU, are in `benchmarks/RESULTS.md`
("XLA under tf.distribute").

**Keras 3.15 and `MultiWorkerMirroredStrategy`.** Plain `model.fit` fails with
more than one worker (keras-team/keras#20585): Keras averages the first
distributed input batch across workers to learn its shapes (a tuple, which the
collective cannot reduce) and averages the per-replica logs with `axis=0`
(they are scalars). Models readied here take the shapes from the dataset's
element spec and give their logs a leading axis of one. Under any strategy,
read replicated variables with `.numpy()`: `int(model.optimizer.iterations)`
raises `TypeError`.

TensorFlow and JAX are imported inside the functions.
"""

import contextlib
import functools
import json
import os
import socket
import typing
import warnings

import keras

from keras_resnet import _keras_compat
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
    """How training is replicated: the strategy, its replicas and workers.

    Build one with `replicate`.

    Attributes:
        kind: the resolved strategy name: `"mirrored"`, `"multiworker"` or
            `"none"`.
        strategy: the `tf.distribute.Strategy` (TensorFlow), the
            `keras.distribution.DataParallel` (JAX), or `None`.
        num_replicas: replicas in the whole cluster; the global batch is split
            between them.
        num_workers: processes in the cluster (1 without `"multiworker"`).
        is_chief: whether this process writes the run's files.
        devices: the local devices that hold a replica (empty for the default
            placement of `"none"`).

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
    devices: tuple

    def scope(self):
        """The context in which to create the model, optimizer and metrics.

        Returns:
            The strategy's (or distribution's) scope, or a no-op context.

        Example:

        ```python
        with replicate("mirrored").scope():
            model = keras_resnet.ResNet20()
        ```
        """
        return contextlib.nullcontext() if self.strategy is None else self.strategy.scope()

    def global_batch_size(self, per_replica_batch_size):
        """The batch the input pipeline must yield for a per-replica batch.

        Args:
            per_replica_batch_size: int, examples per replica and step.

        Returns:
            int, `per_replica_batch_size * num_replicas`.

        Example:

        ```python
        replicate("none").global_batch_size(128)  # 128
        ```
        """
        _check_positive("per_replica_batch_size", per_replica_batch_size)
        return per_replica_batch_size * self.num_replicas


def replicate(strategy="auto"):
    """Resolves a strategy name for this process and backend.

    On TensorFlow a name resolves once per process (TensorFlow allows one
    `MultiWorkerMirroredStrategy`, created before any other TensorFlow work);
    a `"multiworker"` process reads its cluster from `TF_CONFIG`. On JAX the
    result is installed with `keras.distribution.set_distribution`, so `fit`
    splits every batch between the devices. See the module docstring for what
    each name means.

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


def with_strategy(build_fn, strategy="auto", *, jit_compile="auto"):
    """Builds a compiled model inside a strategy's scope and readies it to train.

    `build_fn` runs in the scope, so the model's, the optimizer's and the
    metrics' variables are replicated; the optimizer is built there too.
    Then XLA is set as the module docstring says; under several
    tf.distribute replicas, the train step also averages the batch-norm
    moving statistics across replicas, and with several workers it gets the
    Keras 3.15 work-arounds (see the module docstring).

    Args:
        build_fn: a function of no arguments returning a compiled
            `keras.Model`.
        strategy: one of `STRATEGIES` or a `Replication`.
        jit_compile: `True` compiles the train step with XLA (TensorFlow)
            or `jax.jit` (JAX) wherever that works under the strategy, and
            warns where it does not; `"auto"` does the same without the
            warning, and leaves XLA off on a CPU-only TensorFlow machine;
            `False` never compiles. Ignored on torch.

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
    """Whether the train step can and should be compiled (see the module docstring's XLA table)."""
    _check_choice("jit_compile", jit_compile, (True, False, "auto"))
    if not jit_compile or keras.backend.backend() != "tensorflow":
        return bool(jit_compile)
    import tensorflow as tf

    if len(replication.devices) > 1:
        blocker = (
            "Keras compiles the step of all local replicas as one XLA cluster, which cannot reach "
            "the variables of the other devices"
        )
    elif replication.kind == "multiworker" and "GPU" not in replication.devices[0].upper():
        blocker = "XLA has no collective ops for CPU devices"
    else:
        return jit_compile is True or any(device.device_type != "CPU" for device in tf.config.list_physical_devices())
    if jit_compile is True:
        warnings.warn(f"jit_compile=True is turned off under strategy {replication.kind!r}: {blocker}", stacklevel=3)
    return False


def _adapt_train_step(model, replication):
    """Keeps the replicas of a tf.distribute model identical and works around Keras 3.15 bugs."""
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
        # keras-team/keras#20585: Keras averages a distributed batch across workers to learn its
        # shapes, which fails for an (x, y) tuple; the dataset's element spec has them.
        if iterator is not None:
            data_batch = _keras_compat.epoch_iterator_element_spec(iterator)
        with model.distribute_strategy.scope():
            _keras_compat.symbolic_build(model, data_batch)

    _keras_compat.override_steps(model, train_step=replicated_train_step)
    if across_workers:
        _keras_compat.override_steps(model, test_step=lambda data: with_batch_axis(test_step(data)))
        _keras_compat.override_symbolic_build(model, symbolic_build)


def shard_dataset(dataset, policy):
    """Sets how `tf.distribute` splits a dataset between workers.

    Args:
        dataset: a `tf.data.Dataset` yielding global batches.
        policy: `"data"`: every worker runs the whole pipeline and keeps its
            share of each batch (in-memory sets, folders of image files);
            `"file"`: each worker reads its own files (sets stored in at least
            as many record files as there are workers, e.g. tensorflow-datasets'
            ImageNet).

    Returns:
        The dataset with its auto-shard policy set (and its `class_names`,
        if it had them).

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


def local_cluster(num_workers=2):
    """`TF_CONFIG` values for a cluster of worker processes on this machine.

    The workers listen on free ports of 127.0.0.1 (TensorFlow's gRPC server
    binds every interface of the machine: run the workers in a network
    namespace of their own to keep them on the loopback).

    Args:
        num_workers: int, the number of worker processes.

    Returns:
        A list of JSON strings, the `TF_CONFIG` of worker 0 (the chief), 1, ...

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
