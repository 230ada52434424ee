"""Run test code in a fresh interpreter under another Keras backend.

TensorFlow's CPU kernels have no NCHW convolution, so `channels_first` models are checked under JAX,
whose CPU convolutions take either layout; the backend-neutral data helpers are checked under numpy.
"""

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
TESTS = Path(__file__).resolve().parent


def run_under_backend(backend, script):
    """Runs a Python script in a fresh interpreter under Keras' `backend`; fails the test if it fails."""
    env = {**os.environ, "KERAS_BACKEND": backend, "PYTHONPATH": os.pathsep.join([str(TESTS), str(REPO)])}
    result = subprocess.run([sys.executable, "-c", script], cwd=REPO, env=env, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-3000:]


def call_channels_first(*calls):
    """Runs each `"module.function"` of the tests folder in one fresh interpreter under JAX, channels_first."""
    if importlib.util.find_spec("jax") is None:
        pytest.skip("channels_first runs under jax (TensorFlow's CPU kernels have no NCHW convolution); jax is absent")
    lines = ["import importlib, keras", "keras.config.set_image_data_format('channels_first')"]
    for call in calls:
        module, function = call.rsplit(".", 1)
        lines.append(f"getattr(importlib.import_module({module!r}), {function!r})()")
    run_under_backend("jax", "\n".join(lines) + "\n")
