"""Tests of keras_resnet.training.distribute.

Anything that needs a fresh runtime (logical devices, a JAX backend, a cluster)
runs in a subprocess with a timeout. The multi-worker clusters run in a network
namespace of their own when `unshare` allows it, because TensorFlow's gRPC
server listens on every interface of the machine.
"""

import csv
import functools
import importlib.util
import json
import os
import shutil
import signal
import subprocess
import sys
import time

import keras
import numpy as np
import pytest

from keras_resnet.training import distribute

TIMEOUT = 150  # seconds for one subprocess or cluster run

# A ResNet-8 (one basic block per stage) for 16x16 inputs, shared by the subprocess scripts.
_COMMON = """
import json, os, sys, time
import keras, numpy as np
from keras_resnet import ResNet
from keras_resnet import recipes
from keras_resnet.training import distribute, run_folder, trainer

RESNET8 = {"block": "basic", "depths": (1, 1, 1), "widths": (16, 32, 64), "stem": "cifar", "shortcut": "A"}
rng = np.random.default_rng(0)
"""

_REPLICAS = (
    """
import os

backend = os.environ["KERAS_BACKEND"]
if backend == "tensorflow":
    import tensorflow as tf

    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
"""
    + _COMMON
    + """
def build():
    model = ResNet(RESNET8, input_shape=(16, 16, 3), classes=10)
    for layer in model.layers:
        if isinstance(layer, keras.layers.BatchNormalization) and backend == "tensorflow":
            layer.trainable = False
    return model

x, y = rng.random((16, 16, 16, 3), "float32"), rng.integers(0, 10, 16)
recipe = recipes.Recipe(batch_size=16, lr=0.1, schedule="step", total_steps=6)
report, weights = {}, {}
for name, per_replica in (("none", 16), ("mirrored", 8)):
    keras.utils.set_random_seed(0)
    model, scaled, replication = trainer.distributed_model(
        build, recipe, strategy=name, per_replica_batch_size=per_replica, jit_compile=True)
    history = model.fit(x, y, batch_size=scaled.batch_size, epochs=6, shuffle=False, verbose=0).history
    weights[name] = model.get_weights()
    report[name] = {"loss": history["loss"], "batch_size": scaled.batch_size, "lr": scaled.lr,
                    "replicas": replication.num_replicas, "jit_compile": bool(model.jit_compile)}
report["weight_difference"] = max(
    float(np.max(np.abs(a - b))) for a, b in zip(weights["none"], weights["mirrored"]))
print("REPORT", json.dumps(report))
"""
)

# A worker of a 2-worker cluster: argv = run folder, output folder, epochs, epoch after which the chief
# stops (and waits to be killed), or -1.
_WORKER = (
    _COMMON
    + """
keras.utils.set_random_seed(0)
directory, out, epochs, stop_after = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
replication = distribute.replicate("auto")
index = json.loads(os.environ["TF_CONFIG"])["task"]["index"]
with open(os.path.join(out, f"pid-{index}"), "w") as handle:
    handle.write(str(os.getpid()))


class Report(keras.callbacks.Callback):
    def on_epoch_end(self, epoch, logs=None):
        with open(os.path.join(out, f"epochs-{index}"), "a") as handle:
            handle.write(f"{epoch}\\n")
        if epoch == stop_after and replication.is_chief:
            time.sleep(600)


run = trainer.distributed_model(
    lambda: ResNet(RESNET8, input_shape=(16, 16, 3), classes=4),
    recipes.Recipe(batch_size=16, lr=0.05, schedule="step", total_steps=4 * epochs),
    strategy=replication, per_replica_batch_size=8)
import tensorflow as tf

x, y = rng.random((64, 16, 16, 3), "float32"), rng.integers(0, 4, 64).astype("int32")
train = distribute.shard_dataset(tf.data.Dataset.from_tensor_slices((x, y)).batch(run.recipe.batch_size), "data")
callbacks = run_folder.run_callbacks(run.recipe, directory, is_chief=replication.is_chief, save_best=False,
                                  tensorboard=False)
run.model.fit(train, epochs=epochs, callbacks=[*callbacks, Report()], verbose=0)
np.savez(os.path.join(out, f"weights-{index}.npz"), *run.model.get_weights())
with open(os.path.join(out, f"done-{index}"), "w") as handle:
    json.dump({"iterations": int(run.model.optimizer.iterations.numpy()), "replicas": replication.num_replicas,
               "workers": replication.num_workers, "chief": replication.is_chief,
               "jit_compile": bool(run.model.jit_compile)}, handle)
"""
)

# Starts one worker per TF_CONFIG of `local_cluster(2)`: argv = the worker's command line.
_LAUNCHER = """
import os, subprocess, sys
from keras_resnet.training.distribute import local_cluster

workers = [subprocess.Popen([sys.executable, *sys.argv[1:]], env={**os.environ, "TF_CONFIG": config})
           for config in local_cluster(2)]
sys.exit(max(worker.wait() for worker in workers))
"""


def _environment(**extra):
    return {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "PYTHONUNBUFFERED": "1", **extra}


def _run_script(script, **env):
    result = subprocess.run(
        [sys.executable, "-c", script], env=_environment(**env), capture_output=True, text=True, timeout=TIMEOUT
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-5000:]
    line = next(line for line in result.stdout.splitlines() if line.startswith("REPORT "))
    return json.loads(line[len("REPORT ") :])


# ---------------------------------------------------------------------------------------------
# In-process checks


def test_unknown_strategy_names_the_allowed_ones():
    with pytest.raises(
        ValueError,
        match=r"^strategy must be one of 'auto', 'mirrored', 'multiworker', "
        r"'none'; received 'tpu'$",
    ):
        distribute.replicate("tpu")


def test_auto_without_cluster_is_the_default_strategy(monkeypatch):
    monkeypatch.delenv("TF_CONFIG", raising=False)
    replication = distribute.replicate("auto")
    assert (replication.kind, replication.num_replicas, replication.num_workers, replication.is_chief) == (
        "none",
        1,
        1,
        True,
    )
    assert distribute.replicate(replication) is replication


@pytest.mark.parametrize("tf_config", ["", '{"task": {"type": "worker", "index": 0}}'])
def test_multiworker_needs_a_cluster_in_tf_config(monkeypatch, tf_config):
    monkeypatch.setenv("TF_CONFIG", tf_config)
    with pytest.raises(ValueError, match="strategy 'multiworker' needs TF_CONFIG naming the cluster"):
        distribute.replicate("multiworker")


def test_malformed_tf_config_is_refused(monkeypatch):
    monkeypatch.setenv("TF_CONFIG", "worker=127.0.0.1:2222")
    with pytest.raises(ValueError, match="TF_CONFIG must be a JSON object .* received 'worker=127.0.0.1:2222'"):
        distribute.replicate("auto")


def _replication(num_replicas, is_chief=True):
    return distribute.Replication("mirrored", None, num_replicas, 1, is_chief, ())


def test_per_replica_batch_must_be_positive():
    with pytest.raises(ValueError, match="per_replica_batch_size must be a positive integer; received 0"):
        _replication(2).global_batch_size(0)


def test_shard_dataset_sets_the_policy():
    import tensorflow as tf

    dataset = tf.data.Dataset.range(8).batch(4)
    for policy, expected in (
        ("data", tf.data.experimental.AutoShardPolicy.DATA),
        ("file", tf.data.experimental.AutoShardPolicy.FILE),
    ):
        sharded = distribute.shard_dataset(dataset, policy)
        assert sharded.options().experimental_distribute.auto_shard_policy == expected
        assert list(sharded.as_numpy_iterator())[0].tolist() == [0, 1, 2, 3]
    with pytest.raises(ValueError, match="policy must be one of 'data', 'file'; received 'auto'"):
        distribute.shard_dataset(dataset, "auto")


def _tiny_model():
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)])
    model.compile(keras.optimizers.SGD(0.1), keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    return model


def test_with_strategy_needs_a_compiled_model():
    with pytest.raises(ValueError, match="build_fn must return a compiled keras.Model"):
        distribute.with_strategy(lambda: keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)]), "none")


def test_xla_on_one_device_is_on_when_asked_and_auto_only_with_an_accelerator():
    import tensorflow as tf

    accelerator = any(device.device_type != "CPU" for device in tf.config.list_physical_devices())
    models = {jit: distribute.with_strategy(_tiny_model, "none", jit_compile=jit) for jit in (True, False, "auto")}
    assert {jit: model.jit_compile for jit, model in models.items()} == {True: True, False: False, "auto": accelerator}
    assert models[True].optimizer.built
    with pytest.raises(ValueError, match="jit_compile must be one of True, False, 'auto'; received 'yes'"):
        distribute.with_strategy(_tiny_model, "none", jit_compile="yes")


def test_local_cluster_gives_each_worker_its_own_port():
    configs = [json.loads(config) for config in distribute.local_cluster(3)]
    workers = configs[0]["cluster"]["worker"]
    assert [config["task"] for config in configs] == [{"type": "worker", "index": i} for i in range(3)]
    assert all(config["cluster"] == {"worker": workers} for config in configs)
    assert len(set(workers)) == 3 and all(worker.startswith("127.0.0.1:") for worker in workers)


def test_importing_needs_no_tensorflow():
    script = "import sys; sys.modules['tensorflow'] = None; import keras_resnet.training.distribute; print('ok')"
    result = subprocess.run(
        [sys.executable, "-c", script],
        env=_environment(KERAS_BACKEND="numpy"),
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
    )
    assert result.stdout.strip() == "ok", result.stderr[-3000:]


# ---------------------------------------------------------------------------------------------
# Replicas on one machine


@pytest.mark.slow
def test_mirrored_over_two_cpus_follows_one_device():
    """MirroredStrategy over 2 logical CPUs trains like one device on the same global batch.

    The replicas split each batch of 16 in halves, compute their loss scaled by the global batch
    and sum their gradients, which is the one-device gradient up to float rounding. Only batch
    normalization breaks the equality: each replica would normalise with the statistics of its
    own half batch. Its layers are frozen here (`trainable=False` runs them in inference mode,
    on their moving averages), so every other layer of the ResNet must agree step by step.
    """
    report = _run_script(_REPLICAS, KERAS_BACKEND="tensorflow")
    single, mirrored = report["none"], report["mirrored"]
    assert (single["replicas"], mirrored["replicas"]) == (1, 2)
    assert single["batch_size"] == mirrored["batch_size"] == 16
    assert single["lr"] == mirrored["lr"]
    assert (single["jit_compile"], mirrored["jit_compile"]) == (True, False)
    np.testing.assert_allclose(mirrored["loss"], single["loss"], rtol=1e-5)
    assert single["loss"][-1] < single["loss"][0]
    assert report["weight_difference"] < 1e-5


@pytest.mark.slow
@pytest.mark.skipif(importlib.util.find_spec("jax") is None, reason="jax is not installed")
def test_jax_data_parallel_follows_one_device():
    """DataParallel over 2 CPU devices trains exactly like one device, batch normalization included.

    On JAX the replicas are one SPMD program over a sharded batch, so the batch statistics span
    the global batch and nothing is frozen.
    """
    report = _run_script(_REPLICAS, KERAS_BACKEND="jax", XLA_FLAGS="--xla_force_host_platform_device_count=2")
    single, parallel = report["none"], report["mirrored"]
    assert (single["replicas"], parallel["replicas"]) == (1, 2)
    assert single["batch_size"] == parallel["batch_size"] == 16
    assert single["jit_compile"] and parallel["jit_compile"]
    # The first step's loss is a forward pass through the same weights: batch statistics over the global
    # batch make it equal. Later steps differ by float summation order only, which training at lr 0.1 on
    # random labels amplifies (measured up to 4e-4 after six steps on a CI machine); per-replica batch
    # statistics would differ from the first step by far more.
    np.testing.assert_allclose(parallel["loss"][:2], single["loss"][:2], rtol=1e-5)
    np.testing.assert_allclose(parallel["loss"], single["loss"], rtol=3e-3)
    assert report["weight_difference"] < 1e-2


# ---------------------------------------------------------------------------------------------
# Two worker processes


@functools.cache
def _namespace_prefix():
    """`unshare` into a network namespace with only the loopback up, or nothing if not allowed."""
    if shutil.which("unshare") and shutil.which("ip"):
        probe = subprocess.run(["unshare", "-rn", "true"], capture_output=True, timeout=30)
        if probe.returncode == 0:
            return ["unshare", "-rn", "sh", "-c", 'ip link set lo up && exec "$@"', "sh"]
    return []


class _Cluster:
    """Two workers launched on 127.0.0.1, their files and output."""

    def __init__(self, tmp_path, name, epochs, stop_after=-1):
        self.out = tmp_path / name
        self.out.mkdir()
        self.scratch = tmp_path / f"{name}-tmp"
        self.scratch.mkdir()
        worker = tmp_path / "worker.py"
        worker.write_text(_WORKER)
        self.log = open(self.out / "log.txt", "w")  # noqa: SIM115 - open for the workers' lifetime, closed in stop()
        command = [
            sys.executable,
            "-c",
            _LAUNCHER,
            str(worker),
            str(tmp_path / "run"),
            str(self.out),
            str(epochs),
            str(stop_after),
        ]
        self.process = subprocess.Popen(
            _namespace_prefix() + command,
            env=_environment(KERAS_BACKEND="tensorflow", TMPDIR=str(self.scratch)),
            stdout=self.log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def output(self):
        self.log.flush()
        return (self.out / "log.txt").read_text()[-6000:]

    def wait(self):
        assert self.process.wait(timeout=TIMEOUT) == 0, self.output()

    def wait_for_epoch(self, worker, epoch):
        deadline = time.monotonic() + TIMEOUT
        while str(epoch) not in self.epochs(worker):
            assert self.process.poll() is None, self.output()
            assert time.monotonic() < deadline, self.output()
            time.sleep(0.2)

    def epochs(self, worker):
        path = self.out / f"epochs-{worker}"
        return path.read_text().split() if path.exists() else []

    def pid(self, worker):
        return int((self.out / f"pid-{worker}").read_text())

    def weights(self, worker):
        with np.load(self.out / f"weights-{worker}.npz") as arrays:
            return [arrays[key] for key in sorted(arrays.files, key=lambda key: int(key.split("_")[1]))]

    def done(self, worker):
        return json.loads((self.out / f"done-{worker}").read_text())

    def stop(self):
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=30)
        self.log.close()


def _logged_epochs(tmp_path):
    with open(tmp_path / "run" / "log.csv") as handle:
        return [int(row["epoch"]) for row in csv.DictReader(handle)]


def _assert_same_weights(cluster):
    for chief, other in zip(cluster.weights(0), cluster.weights(1), strict=True):
        np.testing.assert_array_equal(chief, other)


@pytest.mark.slow
def test_two_workers_train_in_step(tmp_path):
    cluster = _Cluster(tmp_path, "cluster", epochs=2)
    try:
        cluster.wait()
    finally:
        cluster.stop()
    assert cluster.done(0) == {"iterations": 8, "replicas": 2, "workers": 2, "chief": True, "jit_compile": False}
    assert cluster.done(1)["chief"] is False
    _assert_same_weights(cluster)
    assert cluster.epochs(0) == cluster.epochs(1) == ["0", "1"]
    # The chief wrote the run's files and removed its backup; the other worker left nothing behind.
    assert sorted(path.name for path in (tmp_path / "run").iterdir()) == ["last.keras", "log.csv"]
    assert _logged_epochs(tmp_path) == [0, 1]
    assert list(cluster.scratch.iterdir()) == []


@pytest.mark.slow
def test_cluster_resumes_from_the_backup_after_a_kill(tmp_path):
    first = _Cluster(tmp_path, "first", epochs=4, stop_after=1)
    try:
        first.wait_for_epoch(0, 1)
        os.kill(first.pid(0), signal.SIGKILL)  # the chief, right after its epoch 1
    finally:
        first.stop()  # the other worker waits for the chief in epoch 2's first step
    assert _logged_epochs(tmp_path) == [0, 1]

    second = _Cluster(tmp_path, "second", epochs=4)
    try:
        second.wait()
    finally:
        second.stop()
    assert second.epochs(0) == second.epochs(1) == ["2", "3"]
    assert _logged_epochs(tmp_path) == [0, 1, 2, 3]
    assert second.done(0)["iterations"] == second.done(1)["iterations"] == 16
    _assert_same_weights(second)
    assert not (tmp_path / "run" / "backup").exists()
