"""Training steps per second of a ResNet-20 with and without XLA, on one device and under MirroredStrategy.

Every configuration runs in a fresh process (TensorFlow's logical devices are fixed when it starts): the
machine's CPU is split into 2 logical devices, and a CIFAR ResNet-20 (32x32 inputs, 10 classes, the
`cifar10` recipe's L2SGD) trains on random in-memory images at a global batch of 64. Each process trains
`--warmup` untimed steps (tracing and compiling), then `--repeats` timed runs of `--steps` steps. The
configurations run in turn, `--rounds` times, so that a load which comes and goes touches them alike. The
table shows the best steps per second of all timed runs (the least disturbed by other processes) and the
median CPU time per step of the process, all its threads (the work a step costs, whatever the load).

- `none`: one device; `mirrored`: `MirroredStrategy` over the 2 logical CPUs, 32 images per replica.
- XLA `off` / `on`: `jit_compile` asked of `keras_resnet.training.trainer.distributed_model`, which keeps XLA on
  one device. Under MirroredStrategy it turns XLA off (with a warning), so `mirrored` + `on` would time the
  `off` run again; instead `on` there sets `model.jit_compile = True` after the helper, as a plain
  `model.compile(jit_compile=True)` under the strategy would: what Keras 3 does with XLA there.

Usage:
    python benchmarks/distribute_xla.py [--steps 10] [--repeats 5] [--warmup 3] [--rounds 2] [--write]

`--write` appends the table to benchmarks/RESULTS.md.
"""

import argparse
import datetime
import json
import os
import platform
import re
import statistics
import subprocess
import sys
import time
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "RESULTS.md"
BATCH_SIZE = 64
CONFIGS = (("none", "off"), ("none", "on"), ("mirrored", "off"), ("mirrored", "on"))


def child(strategy, jit, steps, repeats, warmup):
    """Trains in this process and prints one JSON line: steps per second, or the error."""
    import tensorflow as tf

    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    import numpy as np

    from keras_resnet import recipes
    from keras_resnet.training import distribute, trainer

    recipe = recipes.recipe_for("cifar10", batch_size=BATCH_SIZE)
    model, _, replication = trainer.distributed_model(
        "resnet20", recipe, strategy=strategy, jit_compile=jit == "on", input_shape=(32, 32, 3), classes=10
    )
    model.jit_compile = jit == "on"
    rng = np.random.default_rng(0)
    images = rng.random((BATCH_SIZE * 8, 32, 32, 3), dtype="float32")
    labels = rng.integers(0, 10, BATCH_SIZE * 8).astype("int32")
    train = tf.data.Dataset.from_tensor_slices((images, labels)).batch(BATCH_SIZE).repeat()
    train = distribute.shard_dataset(train, "data")
    result = {
        "strategy": strategy,
        "jit": jit,
        "replicas": replication.num_replicas,
        "jit_compile": bool(model.jit_compile),
    }
    try:
        start = time.perf_counter()
        model.fit(train, steps_per_epoch=warmup, epochs=1, verbose=0)
        result["warmup_s"] = time.perf_counter() - start
        result["steps_per_s"], result["cpu_s_per_step"] = [], []
        for _ in range(repeats):
            start, cpu = time.perf_counter(), time.process_time()
            model.fit(train, steps_per_epoch=steps, epochs=1, verbose=0)
            result["steps_per_s"].append(steps / (time.perf_counter() - start))
            result["cpu_s_per_step"].append((time.process_time() - cpu) / steps)
    except Exception as error:  # XLA under MirroredStrategy fails inside Keras; report how
        lines = [line.strip() for line in str(error).splitlines() if line.strip() and not line[0].isspace()]
        reason = next((line for line in lines if "device" in line or "implemented" in line), lines[0])
        result["error"] = f"{type(error).__name__}: {re.sub(r' [(]defined @ [^)]*[)]', '', reason)}"
    print("RESULT", json.dumps(result), flush=True)


def run_all(args):
    """Runs every configuration `args.rounds` times; returns one row per configuration."""
    timings = ("steps_per_s", "cpu_s_per_step", "warmup_s")
    rows = {config: {"strategy": config[0], "jit": config[1], **{name: [] for name in timings}} for config in CONFIGS}
    env = {**os.environ, "KERAS_BACKEND": "tensorflow", "TF_CPP_MIN_LOG_LEVEL": "2"}
    for _ in range(args.rounds):
        for config, row in rows.items():
            command = [
                sys.executable,
                __file__,
                "--child",
                *config,
                "--steps",
                str(args.steps),
                "--repeats",
                str(args.repeats),
                "--warmup",
                str(args.warmup),
            ]
            output = subprocess.run(command, env=env, capture_output=True, text=True, timeout=600).stdout
            line = next((line for line in output.splitlines() if line.startswith("RESULT ")), None)
            result = json.loads(line[len("RESULT ") :]) if line else {"error": "no result (the process crashed)"}
            print(config, result, flush=True)
            row["warmup_s"] += [result.pop("warmup_s")] if "warmup_s" in result else []
            for name in timings[:2]:
                row[name] += result.pop(name, [])
            row.update(result)
    summaries = {"steps_per_s": max, "cpu_s_per_step": statistics.median, "warmup_s": statistics.median}
    return [
        {**row, **{name: summary(row[name]) if row[name] else None for name, summary in summaries.items()}}
        for row in rows.values()
    ]


def table(rows):
    lines = [
        "| strategy | replicas | XLA | best steps/s | images/s | CPU s/step | warm-up (s) |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for row in rows:
        if row.get("error"):
            figures = f"fails: `{row['error'][:200]}` | | | "
        else:
            rate = row["steps_per_s"]
            figures = f"{rate:.2f} | {rate * BATCH_SIZE:.0f} | {row['cpu_s_per_step']:.3f} | {row['warmup_s']:.1f}"
        lines.append(f"| {row['strategy']} | {row.get('replicas', '')} | {row['jit']} | {figures} |")
    return "\n".join(lines)


def conclusion(rows):
    """What the figures say, in words."""
    rate = {(row["strategy"], row["jit"]): row["steps_per_s"] for row in rows}
    cpu = {(row["strategy"], row["jit"]): row["cpu_s_per_step"] for row in rows}
    parts = []
    if rate[("none", "on")] and rate[("none", "off")]:
        speed, work = (values[("none", "on")] / values[("none", "off")] for values in (rate, cpu))
        parts.append(
            f"On one device XLA trains at {speed:.2f}x the speed of TensorFlow's own (oneDNN) kernels, "
            f"at {work:.2f}x their CPU time per step."
        )
    if not rate[("mirrored", "on")]:
        parts.append(
            "Under MirroredStrategy Keras compiles the step of both replicas as one XLA cluster, which "
            "fails, so `distributed_model` turns XLA off there (with a warning)."
        )
    if rate[("mirrored", "off")] and rate[("none", "off")]:
        speed, work = (values[("mirrored", "off")] / values[("none", "off")] for values in (rate, cpu))
        parts.append(
            f"Mirrored over the 2 logical CPUs runs at {speed:.2f}x the speed of one device, at {work:.2f}x "
            "its CPU time per step: both replicas share the same 2 cores, so this measures the strategy's "
            "overhead, not a speed-up."
        )
    return " ".join(parts)


def machine():
    import keras
    import tensorflow as tf

    cpu = platform.processor() or platform.machine()
    if os.path.exists("/proc/cpuinfo"):
        with open("/proc/cpuinfo") as handle:
            names = [line.split(":", 1)[1].strip() for line in handle if line.startswith("model name")]
        cpu = names[0] if names else cpu
    load = ", ".join(f"{value:.1f}" for value in os.getloadavg())
    return (
        f"{cpu}, {os.cpu_count()} cores; Python {platform.python_version()}, TensorFlow {tf.__version__}, "
        f"Keras {keras.__version__}; load average at start {load}"
    )


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    counts = (
        ("steps", 10, "timed steps per run"),
        ("repeats", 5, "timed runs per process"),
        ("warmup", 3, "untimed steps first"),
        ("rounds", 2, "processes per configuration"),
    )
    for name, default, meaning in counts:
        parser.add_argument(f"--{name}", type=int, default=default, help=f"{meaning} (default: %(default)s)")
    parser.add_argument("--write", action="store_true", help="append the results to benchmarks/RESULTS.md")
    parser.add_argument("--child", nargs=2, metavar=("STRATEGY", "JIT"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(*args.child, args.steps, args.repeats, args.warmup)
        return
    about = machine()
    rows = run_all(args)
    command = "python benchmarks/distribute_xla.py " + " ".join(sys.argv[1:])
    section = (
        f"\n## XLA under tf.distribute: ResNet-20 training steps on CPU\n\n"
        f"{datetime.date.today().isoformat()}; {about}.\n`{command.strip()}`; global batch "
        f"{BATCH_SIZE}, 32x32 inputs, the CPU split into 2 logical devices; {args.rounds} x "
        f"{args.repeats} timed runs of {args.steps} steps per configuration, each process after "
        f"{args.warmup} warm-up steps.\n\n{table(rows)}\n\n"
        f"{conclusion(rows)}\n"
    )
    print(section)
    if args.write:
        with open(RESULTS, "a") as handle:
            if handle.tell() == 0:
                handle.write("# Benchmark results\n")
            handle.write(section)


if __name__ == "__main__":
    main()
