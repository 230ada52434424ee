import argparse
import csv
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import keras
import numpy as np
import pytest

import keras_resnet.recipes  # noqa: F401  (registers the optimizer the checkpoints hold)
from keras_resnet.cli import build_parser, main
from keras_resnet.training import plotting, run_folder
from keras_resnet.training.callbacks import resume_epoch

ENV = {**os.environ, "KERAS_BACKEND": "tensorflow", "TF_CPP_MIN_LOG_LEVEL": "2", "PYTHONUNBUFFERED": "1"}
PNG = b"\x89PNG\r\n\x1a\n"


def cli(*args, timeout=240, cwd=None):
    return subprocess.run(
        [sys.executable, "-m", "keras_resnet.cli", *args],
        env=ENV,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def test_help_lists_the_subcommands():
    result = cli("--help")
    assert result.returncode == 0
    for command in ("train", "evaluate", "summary", "plot"):
        assert re.search(rf"^\s+{command}\s+\w", result.stdout, re.MULTILINE), result.stdout


@pytest.mark.parametrize("command", ["train", "evaluate", "summary", "plot"])
def test_help_documents_every_flag(command, capsys):
    with pytest.raises(SystemExit) as exit_status:
        main([command, "--help"])
    assert exit_status.value.code == 0
    text = capsys.readouterr().out
    commands = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    for action in commands.choices[command]._actions:
        assert action.help, f"{command} {action.option_strings or action.dest} has no help"
        assert (action.option_strings or [action.metavar])[-1] in text
    assert command != "train" or {"--model", "--dataset", "--epochs", "--batch-size", "--lr", "--output"} <= set(
        re.findall(r"--[a-z-]+", text)
    )


def test_a_bad_model_name_exits_with_2_and_one_clear_line():
    result = cli("train", "--model", "resnet21")
    assert result.returncode == 2
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("keras-resnet train: error: argument --model: invalid choice: 'resnet21'")
    assert "'resnet20'" in last


def test_a_library_error_is_one_line_without_traceback(tmp_path):
    result = cli("train", "--dataset", f"folder:{tmp_path}", "--output", str(tmp_path / "run"))
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines()[-1] == (
        "keras-resnet train: error: dataset 'folder:PATH' needs PATH/train (and PATH/validation or PATH/val, "
        "else the last 10% of each class of PATH/train validate), each with one sub-folder per class; received "
        f"'folder:{tmp_path}'"
    )


def test_summary_of_resnet50_and_the_model_table():
    single = cli("summary", "resnet50")
    assert single.returncode == 0, single.stderr
    # torchvision's resnet50 has 25,557,032 parameters; ours are all trainable but BN statistics.
    assert re.search(r"trainable parameters:\s+25,557,032$", single.stdout, re.MULTILINE), single.stdout
    assert re.search(r"multiply-adds:\s+3\.86 GMACs", single.stdout), single.stdout
    table = cli("summary", "resnet18", "resnet50", "resnet50v2", "plain20", "resnet110")
    assert table.returncode == 0, table.stderr
    rows = {line.split()[0]: line.split() for line in table.stdout.strip().splitlines()[1:]}
    assert rows["resnet50"][1:] == ["50", "224", "25,610,152", "25,557,032", "3.86", "yes"]
    assert rows["resnet18"][1] == "18" and rows["resnet18"][-1] == "no"
    assert rows["resnet50v2"][-1] == "yes" and rows["plain20"][-1] == "no"
    assert rows["resnet110"][1:3] == ["110", "32"] and rows["resnet110"][4] == "1,727,962"


def _write_log(path, train_accuracy, val_accuracy):
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["epoch", "accuracy", "loss", "val_accuracy", "val_loss"])
        for epoch, (train, val) in enumerate(zip(train_accuracy, val_accuracy)):
            writer.writerow([epoch, train, 1 - train, val, 1 - val])


def test_plot_writes_a_figure_of_several_logs(tmp_path):
    _write_log(tmp_path / "plain20.csv", [0.3, 0.5, 0.6], [0.3, 0.45, 0.55])
    _write_log(tmp_path / "resnet20.csv", [0.4, 0.7, 0.9], [0.4, 0.65, 0.85])
    output = tmp_path / "fig4.png"
    result = cli(
        "plot",
        str(tmp_path / "plain20.csv"),
        str(tmp_path / "resnet20.csv"),
        "--output",
        str(output),
        "--steps-per-epoch",
        "391",
    )
    assert result.returncode == 0, result.stderr
    assert output.read_bytes()[:8] == PNG


def test_plot_draws_error_dashed_for_training_and_solid_for_validation(tmp_path, monkeypatch):
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot

    _write_log(tmp_path / "a.csv", [0.5, 0.8], [0.4, 0.6])
    drawn = []
    monkeypatch.setattr(pyplot, "close", drawn.append)
    plotting.plot_curves([str(tmp_path / "a.csv")], str(tmp_path / "a.png"), steps_per_epoch=10)
    (axes,) = drawn[0].axes
    train, validation = axes.lines
    assert (train.get_linestyle(), validation.get_linestyle()) == ("--", "-")
    assert list(train.get_xdata()) == [10, 20]
    assert list(train.get_ydata()) == pytest.approx([50, 20])
    assert list(validation.get_ydata()) == pytest.approx([60, 40])


def test_read_log_keeps_the_last_row_of_a_repeated_epoch(tmp_path):
    (tmp_path / "log.csv").write_text("epoch,accuracy\n0,0.1\n1,0.2\n1,0.3\n2,0.4\n")
    assert plotting.read_log(tmp_path / "log.csv") == {"epoch": [0, 1, 2], "accuracy": [0.1, 0.3, 0.4]}


def _steps(output):
    return int(keras.saving.load_model(output / "last.keras").optimizer.iterations)


def _logged_epochs(output):
    if not (output / "log.csv").exists():
        return []
    with open(output / "log.csv") as handle:
        return [int(row["epoch"]) for row in csv.DictReader(handle)]


class _Interrupt(Exception):
    pass


def test_an_interrupted_train_resumes_to_the_weights_of_an_uninterrupted_run(tmp_path, capsys, monkeypatch):
    # Killed with SIGKILL at every point of an epoch: tests/training/test_crash_safety.py. Here: the command again.
    args = ["train", "--model", "resnet20", "--batch-size", "16", "--epochs", "2", "--seed", "3", "--verbose", "2"]
    args += ["--image-size", "16", "--train-size", "64", "--validation-size", "16"]
    steps_per_epoch = 64 // 16
    assert main([*args, "--output", str(tmp_path / "whole")]) == 0
    output = tmp_path / "killed"
    callbacks = run_folder.run_callbacks

    class InterruptAfterFirstEpoch(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            raise _Interrupt  # after the callbacks before it: the backup of the first epoch is committed

    with monkeypatch.context() as patch:
        patch.setattr(run_folder, "run_callbacks", lambda *a, **k: [*callbacks(*a, **k), InterruptAfterFirstEpoch()])
        with pytest.raises(_Interrupt):
            main([*args, "--output", str(output)])
    assert resume_epoch(output / "backup") == 1
    capsys.readouterr()

    assert main([*args, "--output", str(output)]) == 0
    printed = capsys.readouterr().out
    assert "Epoch 1/2" not in printed and "Epoch 2/2" in printed, printed
    assert _logged_epochs(output) == [0, 1]
    assert _steps(output) == _steps(tmp_path / "whole") == 2 * steps_per_epoch
    assert f"{2 * steps_per_epoch} optimizer steps" in printed
    assert re.search(
        r"^  validation accuracy: \d\.\d{4} \(error .* on shapes validation images \(16 images\)", printed, re.MULTILINE
    )
    whole, killed = (keras.saving.load_model(path / "last.keras") for path in (tmp_path / "whole", output))
    for mine, theirs in zip(
        [*killed.weights, *killed.optimizer.variables], [*whole.weights, *whole.optimizer.variables]
    ):
        np.testing.assert_allclose(mine.numpy(), theirs.numpy(), rtol=1e-6, atol=1e-7, err_msg=mine.path)
    assert not (output / "backup").exists()


def test_export_and_evaluate_of_a_run_checkpoint_use_what_the_run_recorded(tmp_path, capsys):
    from keras_resnet.data import shapes
    from keras_resnet.training import trainer

    run = tmp_path / "run"
    options = dict(train_size=32, validation_size=16, image_size=16)
    trainer.train("resnet20", "shapes", epochs=1, batch_size=16, output_dir=str(run), verbose=0, **options)
    assert not (run / "preprocessing.json").exists()  # the normalisation is inside the checkpoint
    capsys.readouterr()

    # Free-size input (it resizes itself): served at the run's image size, with the run's class names.
    assert main(["export", "--checkpoint", str(run / "last.keras"), "--output", str(tmp_path / "serving")]) == 0
    metadata = json.loads((tmp_path / "serving" / "assets" / "metadata.json").read_text())
    assert metadata["class_names"] == list(shapes.CLASS_NAMES)
    assert metadata["image_size"] == [16, 16]
    # The format follows the extension when --format is not given.
    assert main(["export", "--checkpoint", str(run / "last.keras"), "--output", str(tmp_path / "m.onnx")]) == 0
    assert (tmp_path / "m.onnx").is_file()

    # No data set flags: the run's data set, options and seed, from the run.json beside the checkpoint.
    assert main(["evaluate", "--checkpoint", str(run / "last.keras")]) == 0
    assert "16 images of shapes validation images (16 images) (shapes)" in capsys.readouterr().out


def test_cifar_data_errors_name_the_data_dir_flag(tmp_path, capsys):
    missing = tmp_path / "missing"
    assert main(["train", "--dataset", "cifar10", "--data-dir", str(missing), "--output", str(tmp_path / "r")]) == 2
    error = capsys.readouterr().err
    assert "--data-dir" in error and f"data_dir {str(missing)!r} does not exist" in error
    assert error.count("\n") == 1


def test_help_says_what_epochs_does_to_the_schedule(capsys):
    with pytest.raises(SystemExit):
        main(["train", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "stretched or squeezed" in text and "run.json records the schedule" in text and "--overwrite" in text


def test_train_weights_fine_tunes_them_and_refuses_another_networks_in_one_line(tmp_path, capsys, resnet18_pth):
    path, _ = resnet18_pth
    run = tmp_path / "run"
    data = ["--dataset", "shapes", "--train-size", "16", "--validation-size", "8", "--image-size", "32"]
    fit = ["--batch-size", "8", "--epochs", "1", "--verbose", "0", *data]
    assert main(["train", "--model", "resnet18", "--weights", path, "--output", str(run), *fit]) == 0
    assert json.loads((run / "run.json").read_text())["weights"] == path
    assert main(["evaluate", "--checkpoint", str(run / "last.keras")]) == 0
    assert "8 images of shapes validation images (8 images) (shapes)" in capsys.readouterr().out

    # The layers that did not match, listed on the error's one line.
    assert main(["train", "--model", "resnet34", "--weights", path, "--output", str(tmp_path / "r34"), *fit]) == 2
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and f"The weights {path} do not match model 'resnet34'; nothing was loaded" in error
    assert "conv2_block3_1_conv: no tensor layer1.2.conv1 in the weights; " in error
    # A catalog name of another network, refused naming this one's.
    assert main(["train", "--model", "resnet18", "--weights", "timm/resnet50.a1_in1k", *data]) == 2
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and "pretrained names for resnet18: 'torchvision_v1', " in error
    assert "'timm/resnet18.a1_in1k'" in error and "('timm/resnet50.a1_in1k' fills resnet50)" in error


CIFAR10_BATCHES = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "cifar-10-batches-py"


def test_evaluate_a_named_model_with_weights_and_refuses_weights_with_a_checkpoint(tmp_path, capsys):
    data = ["--dataset", "shapes", "--train-size", "16", "--validation-size", "8", "--image-size", "32"]
    assert main(["evaluate", "--model", "resnet20", "--weights", "cifar10", *data]) == 0
    assert "8 images of shapes validation images (8 images) (shapes)" in capsys.readouterr().out
    assert main(["evaluate", "--model", "resnet32", "--weights", "cifar10", *data]) == 2
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and "weights='cifar10' fits only resnet20" in error
    checkpoint = tmp_path / "m.keras"
    assert main(["evaluate", "--checkpoint", str(checkpoint), "--weights", "cifar10", *data]) == 2
    assert "--weights goes with --model" in capsys.readouterr().err


@pytest.mark.slow
@pytest.mark.skipif(
    not (CIFAR10_BATCHES / "test_batch").is_file(), reason=f"the CIFAR-10 batches {CIFAR10_BATCHES} are absent"
)
def test_evaluate_reproduces_the_shipped_cifar10_test_error_in_one_command(capsys):
    """The README's one-liner prints the test accuracy and error the shipped weights' record states."""
    from keras_resnet.models import shipped

    test = json.loads(Path(shipped.files("cifar10")["record"]).read_text())["test"]
    data = ["--dataset", "cifar10", "--data-dir", str(CIFAR10_BATCHES), "--split", "test"]
    assert main(["evaluate", "--model", "resnet20", "--weights", "cifar10", *data]) == 0
    out = capsys.readouterr().out
    assert "10000 images of the cifar10 test set (10000 images) (cifar10)" in out
    assert f"top-1 accuracy: {test['accuracy']:.4f} (error {100 * test['error']:.2f}%)" in out
