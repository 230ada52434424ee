"""benchmarks/torchvision_speed.py: torchvision's model of a library contender, timed as keras_resnet.benchmark
times the library's, and left out (with the reason) where torchvision has no such model or is absent."""

import sys
from pathlib import Path

import pytest

from keras_resnet import benchmark

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import torchvision_speed  # noqa: E402


def library(model, mode="train"):
    return benchmark.Contender(model, model, mode, 2, 1e6, prepare=lambda: None, step=lambda steps: None)


@pytest.mark.parametrize("mode", ["train", "inference"])
def test_torchvision_contender_times_the_same_model_and_batch(mode):
    if not torchvision_speed.available():
        pytest.skip("torch or torchvision is not installed")
    (contender,) = torchvision_speed.contenders([library("resnet18", mode)], 32, log=pytest.fail)
    assert (contender.name, contender.model, contender.mode, contender.batch_size) == (
        "torchvision",
        "resnet18",
        mode,
        2,
    )
    rows = benchmark.run([contender], rounds=1, steps=1, log=lambda line: None)
    assert len(rows) == 1 and rows[0]["median_images_per_s"] > 0


def test_a_model_torchvision_lacks_or_a_missing_torch_is_reported(monkeypatch):
    lines = []
    assert torchvision_speed.contenders([library("resnet20")], 32, log=lines.append) == []
    monkeypatch.setattr(torchvision_speed, "available", lambda: False)
    assert torchvision_speed.contenders([library("resnet50")], 32, log=lines.append) == []
    assert lines == [
        "torchvision: skipped, it has no resnet20",
        "torchvision: skipped, torch or torchvision is not importable",
    ]


def test_the_script_is_keras_resnet_benchmark_with_torchvision_added(monkeypatch, tmp_path, capsys):
    calls = []
    monkeypatch.setattr(
        benchmark, "benchmark", lambda models, **options: calls.append((models, options)) or {"rows": []}
    )
    assert (
        torchvision_speed.main(["--model", "resnet18", "--batch-size", "8", "--output", str(tmp_path / "b.json")]) == 0
    )
    ((models, options),) = calls
    assert models == ["resnet18"] and options["batch_size"] == 8 and options["extra"] is torchvision_speed.contenders
    assert "| model | mode | contender |" in capsys.readouterr().out
