"""Runs killed with SIGKILL at chosen points resume from their last complete state.

Each run is a subprocess calling `keras_resnet.training.train`; a test-only
driver (below, not part of the library) kills its own process with SIGKILL at
a given point: after an optimizer step, halfway through writing a checkpoint
file (the temporary file is left half-written), or right after a checkpoint
file is committed (between the backup's weights and its metadata, or between
the backup and `last.keras`).
"""

import json
import os
import signal
import subprocess
import sys
import zipfile

import h5py
DRIVER = r'''
import json, os, signal, sys

import keras

from keras_resnet import callbacks, training

kind, _, count = os.environ.get("KILL_AT", "none:0").partition(":")
count = int(count)
calls = {"write": 0, "replace": 0}
atomic = callbacks._replace_atomically


def kill():
    os.kill(os.getpid(), signal.SIGKILL)


def replace_and_maybe_die(path, write):
    calls["write"] += 1
    if kind == "write" and calls["write"] == count:
        def write_half(temporary):
            write(temporary)
            with open(temporary, "r+b") as handle:
                handle.truncate(os.path.getsize(temporary) // 2)
            kill()
        return atomic(path, write_half)
    atomic(path, write)
    calls["replace"] += 1
    if kind == "replace" and calls["replace"] == count:
        kill()


class KillAtStep(keras.callbacks.Callback):
    def on_train_batch_end(self, batch, logs=None):
        if kind == "step" and int(self.model.optimizer.iterations.numpy()) == count:
            kill()


callbacks._replace_atomically = replace_and_maybe_die
cluster_callbacks = training.distribute.cluster_callbacks
training.distribute.cluster_callbacks = lambda *a, **k: [KillAtStep()] + cluster_callbacks(*a, **k)
result = training.train("resnet20", "shapes", epochs=4, batch_size=16, image_size=16, train_size=32,
                        validation_size=16, output_dir=sys.argv[1], verbose=0)
print(json.dumps({"steps": result["steps"]}))
'''

# Each point kills the run that resumes from the previous one; the counters
# count from the start of each process (steps: the optimizer's, restored).
KILL_POINTS = [
    "step:1",  # during epoch 1
    "write:1",  # halfway through the backup's weights of epoch 1
    "replace:1",  # backup weights committed, its metadata not
    "write:2",  # halfway through the backup's metadata
    "replace:2",  # backup of epoch 1 committed, the .keras checkpoints not
    "step:3",  # during epoch 2
    "write:3",  # halfway through the first .keras checkpoint of epoch 2
    "step:5",  # during epoch 3
    "replace:3",  # after the first .keras checkpoint of epoch 3
    "step:7",  # during epoch 4
    "replace:1",  # between the backup's weights and metadata of epoch 4
    "write:1",  # halfway through the backup's weights of epoch 4
]


def _run(output_dir, kill_at=None):
    env = {**os.environ, "KILL_AT": kill_at or "none:0", "TF_CPP_MIN_LOG_LEVEL": "3"}
    return subprocess.run([sys.executable, "-c", DRIVER, str(output_dir)], env=env,
                          capture_output=True, text=True, timeout=120)


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


def test_killed_runs_resume_to_the_uninterrupted_step_count(tmp_path):
    reference = _run(tmp_path / "reference")
    assert reference.returncode == 0, reference.stderr[-3000:]
    expected = json.loads(reference.stdout.splitlines()[-1])["steps"]
    assert expected == 8

    output_dir = tmp_path / "killed"
    for kill_at in KILL_POINTS:
        killed = _run(output_dir, kill_at)
        assert killed.returncode == -signal.SIGKILL, (kill_at, killed.stderr[-3000:])
        _check_complete(output_dir)
        if kill_at.startswith("write"):  # the half-written temporary is there, and ignored
            assert [name for _, _, names in os.walk(output_dir) for name in names if name.startswith(".tmp-")]
    resumed = _run(output_dir)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert json.loads(resumed.stdout.splitlines()[-1])["steps"] == expected
