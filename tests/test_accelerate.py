"""keras_resnet.accelerate: the device-aware choice, its overrides, and the GPU settings trained on the CPU."""

import os
import subprocess
import sys
from pathlib import Path

import keras
import numpy as np
import pytest

import keras_resnet
from keras_resnet import accelerate, recipes

ROOT = Path(__file__).resolve().parents[1]
GPU_LIKE = accelerate.Acceleration(keras.backend.backend(), "gpu", 1, "mixed_bfloat16", False, 2, False)


def test_on_a_cpu_it_keeps_float32_one_step_per_call_and_tensorflows_own_kernels():
    setup = accelerate.acceleration()
    assert (setup.device, setup.precision, setup.steps_per_execution, setup.data_parallel) == (
        "cpu",
        "float32",
        1,
        False,
    )
    # Measured: XLA trains 3x slower than oneDNN on a CPU (benchmarks/RESULTS.md); JAX always compiles.
    assert setup.jit_compile is (keras.backend.backend() == "jax")
    assert setup.compile_options() == {"jit_compile": setup.jit_compile, "steps_per_execution": 1}


def test_every_choice_can_be_overridden_and_bad_values_are_named():
    setup = accelerate.acceleration(precision="mixed_bfloat16", jit_compile=True, steps_per_execution=4)
    assert (setup.precision, setup.jit_compile, setup.steps_per_execution) == ("mixed_bfloat16", True, 4)
    with pytest.raises(
        ValueError,
        match="precision must be one of 'auto', 'float32', 'mixed_float16', 'mixed_bfloat16'; received 'bf16'",
    ):
        accelerate.acceleration(precision="bf16")
    with pytest.raises(ValueError, match="steps_per_execution must be a positive integer or 'auto'; received 0"):
        accelerate.acceleration(steps_per_execution=0)
    if keras.backend.backend() != "jax":
        with pytest.raises(ValueError, match="data_parallel=True needs the jax backend"):
            accelerate.acceleration(data_parallel=True)


def test_apply_sets_the_policy_and_prints_the_choice_once(capsys):
    setup = accelerate.acceleration(precision="mixed_bfloat16", steps_per_execution=3)
    setup.apply()
    setup.apply()
    assert keras.config.dtype_policy().name == "mixed_bfloat16"
    printed = capsys.readouterr().out
    assert printed.count(setup.describe()) == 1 and "mixed_bfloat16" in printed and "steps_per_execution=3" in printed


def test_compile_for_uses_the_machines_choice_and_accepts_another():
    model = keras_resnet.ResNet20(input_shape=(32, 32, 3), classes=10)
    recipes.compile_for(model, "cifar10")
    assert model.steps_per_execution == accelerate.acceleration().steps_per_execution
    recipes.compile_for(model, "cifar10", acceleration=GPU_LIKE)
    assert model.steps_per_execution == 2 and model.jit_compile is False


def test_the_gpu_settings_train_correctly_on_the_cpu():
    GPU_LIKE.apply(verbose=False)
    model = keras_resnet.ResNet20(input_shape=(16, 16, 3), classes=10)
    recipes.compile_for(model, recipes.recipe_for("cifar10", batch_size=4), acceleration=GPU_LIKE)
    # 16-bit convolutions, a float32 classifier and a float32 loss.
    assert model.get_layer("conv1_conv").compute_dtype == "bfloat16"
    assert model.get_layer("predictions").compute_dtype == "float32"
    rng = np.random.default_rng(0)
    x, y = rng.uniform(0, 1, (16, 16, 16, 3)).astype("float32"), rng.integers(0, 10, 16)
    history = model.fit(x, y, batch_size=4, epochs=2, verbose=0).history
    assert np.all(np.isfinite(history["loss"]))
    assert int(keras.ops.convert_to_numpy(model.optimizer.iterations)) == 8  # 4 steps per epoch, 2 per call
    assert model.predict(x[:4], verbose=0).dtype == np.float32


@pytest.mark.slow
def test_jax_data_parallel_with_bfloat16_trains_over_two_devices():
    pytest.importorskip("jax", reason="needs the jax backend")
    code = (
        "import numpy as np, keras, keras_resnet\n"
        "from keras_resnet import accelerate, recipes\n"
        "setup = accelerate.acceleration(precision='mixed_bfloat16', data_parallel=True, steps_per_execution=2)\n"
        "setup.apply()\n"
        "model = keras_resnet.ResNet20(input_shape=(32, 32, 3), classes=10)\n"
        "recipes.compile_for(model, recipes.recipe_for('cifar10', batch_size=8), acceleration=setup)\n"
        "x = np.random.default_rng(0).uniform(0, 1, (32, 32, 32, 3)).astype('float32')\n"
        "h = model.fit(x, np.arange(32) % 10, batch_size=8, epochs=1, verbose=0).history\n"
        "import jax\n"
        "print('DEVICES', jax.device_count(), 'LOSS', h['loss'][-1],\n"
        "      type(keras.distribution.distribution()).__name__)\n"
    )
    env = {
        **os.environ,
        "KERAS_BACKEND": "jax",
        "XLA_FLAGS": "--xla_force_host_platform_device_count=2",
        "PYTHONPATH": str(ROOT),
    }
    result = subprocess.run(
        [sys.executable, "-c", code], check=False, capture_output=True, text=True, timeout=600, env=env
    )
    assert result.returncode == 0, result.stderr[-3000:]
    line = next(line for line in result.stdout.splitlines() if line.startswith("DEVICES"))
    devices, _, loss, distribution = line.split()[1:]
    assert devices == "2" and np.isfinite(float(loss)) and distribution == "DataParallel"
    assert "cpu x1 (jax): mixed_bfloat16, jit_compile=True, steps_per_execution=2, DataParallel" in result.stdout
