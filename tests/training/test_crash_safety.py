"""Runs killed with SIGKILL at chosen points resume to exactly the state of an uninterrupted run.

Each run is a subprocess calling `keras_resnet.training.trainer.train`; a test-only
driver (below, not part of the library) kills its own process with SIGKILL at
a given point: after an optimizer step, during validation, halfway through
writing a checkpoint file (the temporary file is left half-written), or right
after a checkpoint file is committed. The chain of killed and resumed runs
must end with the weights, optimizer slots, learning rate, best checkpoint
and log of the uninterrupted run.
"""

import json
import os
import signal
import subprocess
import sys
import zipfile

import h5py
import keras
import numpy as np

from keras_resnet.training.callbacks import resume_epoch

DRIVER = r"""
import json, os, signal, sys

import keras

from keras_resnet.training import backup, run_folder, trainer

# KILL_AT: "step:N" (optimizer step N), "validation:N" (the Nth validation batch of this process),
# "write:FILE:N" (halfway through the Nth write of a file whose name contains FILE) or "replace:FILE:N"
# (right after that write is committed).
kind, *target, count = os.environ.get("KILL_AT", "none:0").split(":")
target, count = (target or [""])[0], int(count)
calls = {"write": 0, "validation": 0}
atomic = backup._replace_atomically


def kill():
    os.kill(os.getpid(), signal.SIGKILL)


def replace_and_maybe_die(path, write):
    if kind not in ("write", "replace") or target not in os.path.basename(path):
        return atomic(path, write)
    calls["write"] += 1
    if kind == "write" and calls["write"] == count:
        def write_half(temporary):
            write(temporary)
            with open(temporary, "r+b") as handle:
                handle.truncate(os.path.getsize(temporary) // 2)
            kill()
        return atomic(path, write_half)
    atomic(path, write)
    if kind == "replace" and calls["write"] == count:
        kill()


class KillAtStep(keras.callbacks.Callback):
    def on_train_batch_end(self, batch, logs=None):
        if kind == "step" and int(self.model.optimizer.iterations.numpy()) == count:
            kill()

    def on_test_batch_end(self, batch, logs=None):
        calls["validation"] += 1
        if kind == "validation" and calls["validation"] == count:
            kill()


backup._replace_atomically = replace_and_maybe_die
run_callbacks = run_folder.run_callbacks
run_folder.run_callbacks = lambda *a, **k: [KillAtStep()] + run_callbacks(*a, **k)
result = trainer.train("resnet20", "shapes", epochs=2, batch_size=16, image_size=16, train_size=32,
                        validation_size=16, output_dir=sys.argv[1], verbose=0)
print(json.dumps({"steps": result["steps"]}))
"""

# Each point kills the run that resumes from the previous one (2 epochs of 2 steps; per epoch the run
# writes last.keras, best.keras when it improves, then the backup's weights and its metadata, the commit).
# Each pair: the kill point and the epoch the backup left behind resumes at.
KILL_POINTS = [
    ("step:1", 0),  # during epoch 1
    ("write:last:1", 0),  # halfway through last.keras of epoch 1
    ("replace:weights.h5:1", 0),  # backup weights of epoch 1 committed, its metadata not
    ("write:training_metadata:1", 0),  # halfway through the backup's metadata
    ("replace:training_metadata:1", 1),  # epoch 1 committed
    ("replace:last:1", 1),  # last.keras of epoch 2 written, its backup not: epoch 2 is redone
    ("write:weights.h5:1", 1),  # halfway through the backup's weights of epoch 2
    ("validation:1", 1),  # during the validation of epoch 2
]


def _run(output_dir, kill_at=None):
    env = {**os.environ, "KILL_AT": kill_at or "none:0", "TF_CPP_MIN_LOG_LEVEL": "3"}
    return subprocess.run(
        [sys.executable, "-c", DRIVER, str(output_dir)], env=env, capture_output=True, text=True, timeout=300
    )


def _check_complete(output_dir):
    """Every file a resume or a user would read is complete; temporaries are never named."""
    backup = output_dir / "backup"
    metadata = backup / "training_metadata.json"
    if metadata.exists():
        name = json.loads(metadata.read_text())["weights"]
        assert not name.startswith(".tmp-")
        with h5py.File(backup / name, "r") as weights:  # a truncated file does not open
            assert len(weights.keys()) > 0
    for checkpoint in ("best.keras", "last.keras"):
        if (output_dir / checkpoint).exists():
            with zipfile.ZipFile(output_dir / checkpoint) as archive:
                assert archive.testzip() is None


def _state(path):
    """Weights and optimizer variables (iterations, learning rate, momentum slots) of a checkpoint."""
    model = keras.saving.load_model(path)
    return {variable.path: variable.numpy() for variable in [*model.weights, *model.optimizer.variables]}


def _assert_same_state(resumed, reference):
    assert resumed.keys() == reference.keys()
    for name, value in reference.items():
        np.testing.assert_allclose(resumed[name], value, rtol=1e-6, atol=1e-7, err_msg=name)


def test_killed_runs_resume_to_the_uninterrupted_state(tmp_path):
    reference_dir = tmp_path / "reference"
    reference = _run(reference_dir)
    assert reference.returncode == 0, reference.stderr[-3000:]
    expected = json.loads(reference.stdout.splitlines()[-1])["steps"]
    assert expected == 4

    output_dir = tmp_path / "killed"
    for kill_at, resumes_at in KILL_POINTS:
        killed = _run(output_dir, kill_at)
        assert killed.returncode == -signal.SIGKILL, (kill_at, killed.stderr[-3000:])
        assert resume_epoch(output_dir / "backup") == resumes_at, kill_at
        _check_complete(output_dir)
        if kill_at.startswith("write"):  # the half-written temporary is there, and ignored
            assert [name for _, _, names in os.walk(output_dir) for name in names if name.startswith(".tmp-")]
    resumed = _run(output_dir)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert json.loads(resumed.stdout.splitlines()[-1])["steps"] == expected
    for checkpoint in ("last.keras", "best.keras"):
        _assert_same_state(_state(output_dir / checkpoint), _state(reference_dir / checkpoint))
    assert (output_dir / "log.csv").read_text().count("\n") == (reference_dir / "log.csv").read_text().count("\n")
