"""keras_resnet.benchmark and the device script benchmarks/gpu.py (its --smoke mode on the CPU)."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from keras_resnet import benchmark

ROOT = Path(__file__).resolve().parents[1]
CIFAR = ROOT.parent / "shared" / "data" / "cifar10-jpeg" / "train"


def _fake(name, calls, seconds_per_step):
    """A contender whose rounds take `seconds_per_step` per step, without spending them."""
    contender = benchmark.Contender(
        name, "resnet20", "train", 10, 1_000_000, prepare=lambda: calls.append(f"prepare {name}"), step=None
    )
    contender.time = lambda steps: (calls.append(name), steps * seconds_per_step)[1]
    return contender


def test_run_prepares_everything_first_then_interleaves_rounds_and_takes_medians():
    calls, saved = [], []
    rows = benchmark.run(
        [_fake("library", calls, 0.01), _fake("peer", calls, 0.02)],
        rounds=3,
        steps=5,
        peak_flops=1e9,
        on_round=saved.append,
        log=lambda line: None,
    )
    assert calls == ["prepare library", "prepare peer"] + ["library", "peer"] * 3
    assert len(saved) == 3 and [len(r["images_per_s"]) for r in saved[-1]] == [3, 3]
    library, peer = rows
    assert library["median_images_per_s"] == pytest.approx(1000) and peer["median_images_per_s"] == pytest.approx(500)
    # Training costs 3 forward passes of 2 FLOPs per multiply-add.
    assert library["mfu"] == pytest.approx(1000 * 6 * 1_000_000 / 1e9)
    text = benchmark.table(rows)
    assert "| resnet20 | train | peer | 10 | 500 |" in text and "2.00x" in text


def test_run_stops_at_the_deadline_and_reports_a_contender_that_fails():
    lines = []
    broken = benchmark.Contender("broken", "resnet20", "train", 1, 1, prepare=lambda: 1 / 0, step=lambda s: None)
    rows = benchmark.run([broken], rounds=2, steps=1, log=lines.append)
    assert rows == [] and "broken: failed to prepare: ZeroDivisionError" in lines[0]
    assert benchmark.run([_fake("late", [], 0.1)], rounds=2, steps=1, deadline=0, log=lines.append) == []
    assert "late: skipped, out of time before compiling" in lines


def test_arguments_are_checked_with_the_value_received():
    with pytest.raises(ValueError, match="mode must be one of 'train', 'inference'; received 'fit'"):
        benchmark.contenders("resnet20", mode="fit")
    with pytest.raises(ValueError, match="rounds must be a positive integer; received 0"):
        benchmark.run([], rounds=0)


def test_benchmark_times_extra_contenders_saves_every_round_and_skips_models_past_the_deadline(monkeypatch):
    calls, saved, lines = [], [], []
    monkeypatch.setattr(benchmark, "environment", lambda precision: {"peak_flops": 1e9, "peak_dtype": "float32"})
    monkeypatch.setattr(benchmark, "contenders", lambda model, **options: [_fake(model, calls, 0.01)])
    results = benchmark.benchmark(
        ["resnet20", "resnet56"],
        rounds=2,
        steps=1,
        extra=lambda found, image_size: [_fake(f"{found[0].name} peer at {image_size}", calls, 0.02)],
        on_round=lambda results: saved.append(len(results["rows"])),
        log=lines.append,
    )
    assert [row["name"] for row in results["rows"]] == [
        "resnet20",
        "resnet20 peer at 224",
        "resnet56",
        "resnet56 peer at 224",
    ]
    assert saved == [2, 2, 2, 4, 4, 4]  # each round, then each model's final rows
    late = benchmark.benchmark(["resnet20"], deadline=0, log=lines.append)
    assert late["rows"] == [] and "resnet20 train: skipped, out of time" in lines


def test_matmul_peak_is_a_plausible_flop_rate():
    peak = benchmark.matmul_peak("float32", size=128, repeats=2)
    assert 1e6 < peak < 1e16


@pytest.mark.slow
def test_gpu_script_smoke_mode_runs_every_section_under_jax(tmp_path):
    pytest.importorskip("jax", reason="the device script runs on the jax backend")
    command = [sys.executable, str(ROOT / "benchmarks" / "gpu.py"), str(tmp_path / "out"), "--smoke"]
    if CIFAR.is_dir():
        packed = tmp_path / "cifar.npz"
        subprocess.run(
            [
                sys.executable,
                str(ROOT / "benchmarks" / "pack_cifar.py"),
                str(CIFAR),
                str(packed),
                "--train-per-class",
                "52",
                "--validation-per-class",
                "7",
            ],
            check=True,
            timeout=120,
        )
        command += ["--data", str(packed)]
    # The device has no TensorFlow: every finder reports it absent, as `find_spec` does there (torch asks).
    # torchvision is hidden too (CI installs it for the weights tests): timing it on the CPU would double this test.
    blocker = tmp_path / "sitecustomize.py"
    blocker.write_text(
        "import sys\n"
        "class Absent:\n"
        "    def __init__(self, finder):\n"
        "        self.finder = finder\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name.split('.')[0] in ('tensorflow', 'torchvision'):\n"
        "            return None\n"
        "        return self.finder.find_spec(name, path, target)\n"
        "    def __getattr__(self, attribute):\n"
        "        return getattr(self.finder, attribute)\n"
        "sys.meta_path[:] = [Absent(finder) for finder in sys.meta_path]\n"
    )
    env = {**os.environ, "KERAS_BACKEND": "jax", "PYTHONPATH": os.pathsep.join([str(tmp_path), str(ROOT)])}
    result = subprocess.run(command, check=False, capture_output=True, text=True, timeout=900, env=env)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    first = result.stdout.splitlines()[0]
    assert first.startswith("versions: ") and '"jax"' in first and '"torch"' in first and '"devices"' in first
    saved = json.loads((tmp_path / "out" / "results.json").read_text())
    names = {(row["model"], row["name"]) for row in saved["resnet50_training"]["rows"]}
    assert {("resnet50", "library"), ("resnet50", "keras.applications"), ("resnet50", "jitted step")} <= names
    assert [row["model"] for row in saved["resnet18_101_training"]["rows"]] == ["resnet18"]
    assert "torchvision: skipped, torch or torchvision is not importable" in result.stdout
    if CIFAR.is_dir():
        epochs = saved["cifar10_resnet20"]["epochs"]
        assert [e["epoch"] for e in epochs] == [1, 2] and all(0 <= e["val_accuracy"] <= 1 for e in epochs)
    else:
        assert "cifar: skipped, no packed data file" in result.stdout
    assert "| resnet50 | train | library |" in (tmp_path / "out" / "results.md").read_text()


def test_cli_benchmark_prints_the_table_and_writes_json(tmp_path, capsys):
    from keras_resnet.cli import build_parser, main

    args = build_parser().parse_args(["benchmark", "--model", "resnet18", "resnet50", "--mode", "train", "inference"])
    assert (args.model, args.mode, args.batch_size, args.precision) == (
        ["resnet18", "resnet50"],
        ["train", "inference"],
        256,
        "auto",
    )
    path = tmp_path / "bench.json"
    assert (
        main(
            [
                "benchmark",
                "--model",
                "resnet20",
                "--image-size",
                "32",
                "--batch-size",
                "2",
                "--rounds",
                "1",
                "--steps",
                "1",
                "--no-peers",
                "--no-ceiling",
                "--output",
                str(path),
            ]
        )
        == 0
    )
    out = capsys.readouterr().out
    assert "| resnet20 | train | library | 2 |" in out and f"wrote {path}" in out
    assert json.loads(path.read_text())["rows"][0]["name"] == "library"
