"""Training and inference throughput of the library's models on this machine: `keras-resnet benchmark`.

`library` (uint8 images augmented on the device), `keras.applications` (same model and policy, float32
images) and, on JAX, a `jitted step` on a device-resident batch (the ceiling) are timed in interleaved rounds,
so that a slow moment hits all alike; medians are reported.
"""

from __future__ import annotations

import dataclasses
import json
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from typing import Any

import keras
import numpy as np

from keras_resnet import accelerate
from keras_resnet._validation import check_choice as _check_choice
from keras_resnet._validation import check_positive_int as _check_positive
from keras_resnet.data import augment
from keras_resnet.models.builders import get_model
from keras_resnet.models.summary import count_macs
from keras_resnet.models.weights import KERAS_APPLICATIONS

__all__ = [
    "MODES",
    "Contender",
    "benchmark",
    "classes_for",
    "contenders",
    "environment",
    "matmul_peak",
    "run",
    "table",
    "write_json",
]

MODES = ("train", "inference")
# keras.applications models train as their documentation does: Keras' own compile settings.
_FIT_DEFAULTS = {"jit_compile": "auto", "steps_per_execution": 1}


def classes_for(image_size: int) -> int:
    """The classes of a benchmarked model: ImageNet's 1000 above 64 pixels, CIFAR-10's 10 at and below."""
    return 1000 if image_size > 64 else 10


def _sync(value):
    """Waits until an asynchronously computed tensor (JAX, GPU) is ready."""
    keras.ops.convert_to_numpy(keras.ops.reshape(value, (-1,))[:1])


def matmul_peak(dtype: str = "bfloat16", *, size: int | None = None, repeats: int | None = None) -> float:
    """The measured matrix-product throughput of the default device, in FLOP/s (2 x size^3 per product).

    Args:
        dtype: the compute type, e.g. `"bfloat16"` or `"float32"`.
        size: side of the square matrices; defaults to 8192 on accelerators and 1024 on CPUs.
        repeats: products timed after one warm-up; defaults to 50 on accelerators, 5 on CPUs.
    """
    accelerated = accelerate.device_kind()[0] != "cpu"
    size = size or (8192 if accelerated else 1024)
    repeats = repeats or (50 if accelerated else 5)
    _check_positive("size", size)
    _check_positive("repeats", repeats)
    a = keras.random.normal((size, size), dtype=dtype, seed=0)
    b = keras.random.normal((size, size), dtype=dtype, seed=1)
    _sync(keras.ops.matmul(a, b))
    start = time.perf_counter()
    for _ in range(repeats):
        c = keras.ops.matmul(a, b)
    _sync(c)
    return 2 * size**3 * repeats / (time.perf_counter() - start)


@dataclasses.dataclass
class Contender:
    """One thing to time: `prepare()` compiles and warms it up, `time(steps)` returns the seconds of `steps` steps.

    Args:
        name: label in the table (`"library"`, `"keras.applications"`, ...).
        model, mode, batch_size: the keras_resnet model name, `"train"` or `"inference"`, images per step.
        macs: multiply-adds per image of one forward pass.
        prepare: function of no arguments, run once before the rounds.
        step: function of `steps` that runs them and waits for the device.
    """

    name: str
    model: str
    mode: str
    batch_size: int
    macs: float
    prepare: Callable[[], None] = dataclasses.field(kw_only=True)
    step: Callable[[int], None] = dataclasses.field(kw_only=True)

    def time(self, steps: int) -> float:
        start = time.perf_counter()
        self.step(steps)
        return time.perf_counter() - start


def _library_model(name, image_size, kind, uint8_input):
    net = get_model(name, input_shape=(image_size, image_size, 3), classes=classes_for(image_size))
    if not uint8_input:
        return net, net
    inputs = keras.Input((image_size, image_size, 3), dtype="uint8")
    options = {"scale_range": (image_size, round(image_size * 480 / 256)), "resize_size": image_size}
    x = augment.Augmentation(
        kind, image_size=image_size, mean=127.5, std=64.0, seed=0, **(options if kind == "imagenet" else {})
    )(inputs)
    return keras.Model(inputs, net(x), name=f"{name}_on_device_augmentation"), net


def _in_memory(count, image_size, dtype, classes, seed=0):
    rng = np.random.default_rng(seed)
    if dtype == "uint8":
        images = rng.integers(0, 256, (count, image_size, image_size, 3), dtype=np.uint8)
    else:
        images = rng.standard_normal((count, image_size, image_size, 3), dtype=np.float32)
    return images, rng.integers(0, classes, count).astype("int32")


def _fit_contender(name, net, setup, images, *, model, mode, batch_size, macs):
    """Times `net.fit` (or `net.predict`) over batches of in-memory `images`."""
    x, y = images

    def run_steps(count):
        n = count * batch_size
        if mode == "train":
            net.fit(x[:n], y[:n], batch_size=batch_size, epochs=1, shuffle=True, verbose=0)
            _sync(net.trainable_variables[0].value)
        else:
            _sync(net.predict(x[:n], batch_size=batch_size, verbose=0))

    def prepare():
        keras.utils.set_random_seed(0)
        net.compile(
            optimizer=keras.optimizers.SGD(0.01, momentum=0.9),
            loss=keras.losses.SparseCategoricalCrossentropy(),
            **setup,
        )
        run_steps(max(2, setup["steps_per_execution"]))

    return Contender(name, model, mode, batch_size, macs, prepare=prepare, step=run_steps)


def _jitted_contender(net, image_size, *, model, mode, batch_size, macs):
    import jax

    x = jax.device_put(np.asarray(_in_memory(batch_size, image_size, "float32", 10)[0]))
    y = jax.device_put(np.zeros((batch_size,), "int32"))
    loss_fn = keras.losses.SparseCategoricalCrossentropy()
    optimizer = keras.optimizers.SGD(0.01, momentum=0.9)
    state = {}

    def loss_and_updates(trainable, non_trainable):
        outputs, non_trainable = net.stateless_call(trainable, non_trainable, x, training=True)
        return loss_fn(y, outputs), non_trainable

    def train_step(variables):
        trainable, non_trainable, optimizer_variables = variables
        (loss, non_trainable), grads = jax.value_and_grad(loss_and_updates, has_aux=True)(trainable, non_trainable)
        trainable, optimizer_variables = optimizer.stateless_apply(optimizer_variables, grads, trainable)
        return loss, (trainable, non_trainable, optimizer_variables)

    def infer_step(variables):
        return net.stateless_call(variables[0], variables[1], x, training=False)[0], variables

    def prepare():
        optimizer.build(net.trainable_variables)
        groups = (net.trainable_variables, net.non_trainable_variables, optimizer.variables)
        state["variables"] = tuple([v.value for v in group] for group in groups)
        state["step"] = jax.jit(train_step if mode == "train" else infer_step, donate_argnums=0)
        run_steps(2)

    def run_steps(count):
        variables = state["variables"]
        for _ in range(count):
            out, variables = state["step"](variables)
        state["variables"] = variables
        jax.block_until_ready(out)

    return Contender("jitted step", model, mode, batch_size, macs, prepare=prepare, step=run_steps)


def contenders(
    model: str,
    *,
    mode: str = "train",
    batch_size: int = 256,
    image_size: int = 224,
    steps: int = 10,
    precision: str = "auto",
    peers: bool = True,
    ceiling: bool = True,
    log: Callable[[str], None] = print,
) -> list[Contender]:
    """The contenders `benchmark` times for one model and mode, the library's first; sets the dtype policy.

    `contenders("resnet50")` on JAX names `library`, `keras.applications` and `jitted step`.

    Args:
        model, mode, batch_size, image_size, precision: as in `benchmark`, for one model and mode.
        steps: steps per timed round (the in-memory data holds this many batches).
        peers: whether to add keras.applications' model of the same name, where it has one.
        ceiling: whether to add the jitted device-resident step (JAX only).
        log: prints one line, for each contender left out.
    """
    _check_choice("mode", mode, MODES)
    for argument, value in (("batch_size", batch_size), ("image_size", image_size), ("steps", steps)):
        _check_positive(argument, value)
    options = accelerate.acceleration(precision=precision).apply(verbose=False).compile_options()
    kind = "cifar" if image_size <= 64 else "imagenet"
    model_name = model.lower()
    wrapped, net = _library_model(model_name, image_size, kind, uint8_input=True)
    common = {"model": model_name, "mode": mode, "batch_size": batch_size, "macs": count_macs(net)}
    count = steps * batch_size
    found = [_fit_contender("library", wrapped, options, _in_memory(count, image_size, "uint8", 10), **common)]
    peer = KERAS_APPLICATIONS.get(model_name)
    if peers and peer:
        shape = (image_size, image_size, 3)
        other = getattr(keras.applications, peer)(weights=None, input_shape=shape, classes=classes_for(image_size))
        images = _in_memory(count, image_size, "float32", 10)
        found.append(_fit_contender("keras.applications", other, _FIT_DEFAULTS, images, **common))
    elif peers:
        log(f"keras.applications: skipped, it has no {model_name}")
    if ceiling and keras.backend.backend() == "jax":
        found.append(_jitted_contender(_library_model(model_name, image_size, kind, False)[0], image_size, **common))
    elif ceiling:
        log(f"jitted step: skipped, it needs the jax backend (running {keras.backend.backend()})")
    return found


def environment(precision: str = "auto") -> dict[str, Any]:
    """Versions, device and matrix peak (in the compute type of `precision`) of this machine, as a dict.

    Keys: versions (`python`, `keras`, the backend's), `device` (e.g. `'cuda x1: NVIDIA H200'`), `cpu_count`,
    `load_average`, `precision`, `peak_flops`, `peak_dtype`.
    """
    setup = accelerate.acceleration(precision=precision)
    found = {
        "python": platform.python_version(),
        "keras": keras.__version__,
        "backend": keras.backend.backend(),
        "cpu_count": os.cpu_count(),
        "load_average": os.getloadavg(),
        "precision": setup.precision,
        "device": f"{setup.device} x{setup.device_count}",
    }
    for module in ("jax", "tensorflow", "torch", "torchvision"):
        if module in sys.modules or module == keras.backend.backend():
            found[module] = getattr(__import__(module), "__version__", "?")
    if keras.backend.backend() == "jax":
        import jax

        found["device"] = f"{jax.devices()[0].platform} x{jax.device_count()}: {jax.devices()[0].device_kind}"
    compute = keras.dtype_policies.DTypePolicy(setup.precision).compute_dtype
    found["peak_flops"] = matmul_peak(compute)
    found["peak_dtype"] = compute
    return found


def run(
    found: list[Contender],
    *,
    rounds: int = 5,
    steps: int = 10,
    peak_flops: float | None = None,
    deadline: float | None = None,
    on_round: Callable[[list[dict]], None] | None = None,
    log: Callable[[str], None] = print,
) -> list[dict[str, Any]]:
    """Prepares every contender, then times interleaved rounds and summarises them.

    Args:
        found: `Contender`s (see `contenders`).
        rounds, steps, deadline, log: as in `benchmark`.
        peak_flops: FLOP/s for MFU (images/s x FLOPs per image / peak; `matmul_peak`); `None` leaves it out.
        on_round: optional function called with the rows after each round (to save partial results).

    Returns:
        A dict per contender that was prepared: `name`, `model`, `mode`, `batch_size`, `macs`, `seconds` and
        `images_per_s` (per round), `median_images_per_s`, `mfu`.
    """
    _check_positive("rounds", rounds)
    _check_positive("steps", steps)
    ready = []
    for contender in found:
        if deadline is not None and time.monotonic() > deadline:
            log(f"{contender.name}: skipped, out of time before compiling")
            continue
        start = time.perf_counter()
        try:
            contender.prepare()
        except Exception as error:  # noqa: BLE001 - a peer that cannot run here (out of memory) is reported
            log(f"{contender.name}: failed to prepare: {type(error).__name__}: {str(error)[:300]}")
            continue
        log(f"{contender.name}: compiled and warmed up in {time.perf_counter() - start:.1f} s")
        ready.append((contender, []))
    rows = []
    for number in range(rounds):
        if deadline is not None and time.monotonic() > deadline:
            log(f"stopped after {number} rounds: out of time")
            break
        for contender, seconds in ready:
            seconds.append(contender.time(steps))
        rows = [_row(contender, seconds, steps, peak_flops) for contender, seconds in ready]
        log(f"round {number + 1}: " + ", ".join(f"{row['name']} {row['images_per_s'][-1]:,.0f}" for row in rows))
        if on_round is not None:
            on_round(rows)
    return rows


def _row(contender, seconds, steps, peak_flops):
    per_second = [steps * contender.batch_size / s for s in seconds]
    median = statistics.median(per_second)
    flops = 2 * contender.macs * (3 if contender.mode == "train" else 1)
    return {
        **{field: getattr(contender, field) for field in ("name", "model", "mode", "batch_size", "macs")},
        "seconds": seconds,
        "images_per_s": per_second,
        "median_images_per_s": median,
        "mfu": median * flops / peak_flops if peak_flops else None,
    }


def table(results: dict | list[dict]) -> str:
    """A Markdown table of `benchmark` results (the dict or its `rows`): medians, spread, MFU, library vs each."""
    rows = results["rows"] if isinstance(results, dict) else results
    lines = [
        "| model | mode | contender | batch | median images/s | min-max | rounds | MFU | library vs it |",
        "| --- | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    library = {(r["model"], r["mode"]): r["median_images_per_s"] for r in rows if r["name"] == "library"}
    for r in rows:
        mine = library.get((r["model"], r["mode"]))
        mfu = f"{100 * r['mfu']:.1f}%" if r.get("mfu") is not None else "-"
        ratio = f"{mine / r['median_images_per_s']:.2f}x" if mine and r["name"] != "library" else "-"
        lines.append(
            f"| {r['model']} | {r['mode']} | {r['name']} | {r['batch_size']} | {r['median_images_per_s']:,.0f} | "
            f"{min(r['images_per_s']):,.0f}-{max(r['images_per_s']):,.0f} | {len(r['images_per_s'])} | {mfu} | "
            f"{ratio} |"
        )
    return "\n".join(lines)


def benchmark(
    models: Sequence[str] = ("resnet50",),
    *,
    modes: Sequence[str] = ("train",),
    batch_size: int = 256,
    image_size: int = 224,
    precision: str = "auto",
    rounds: int = 5,
    steps: int = 10,
    peers: bool = True,
    ceiling: bool = True,
    output: str | os.PathLike | None = None,
    deadline: float | None = None,
    extra: Callable[[list[Contender], int], list[Contender]] | None = None,
    on_round: Callable[[dict], None] | None = None,
    log: Callable[[str], None] = print,
) -> dict[str, Any]:
    """Times each model and mode's `contenders` in interleaved rounds; the `keras-resnet benchmark` engine.

    Args:
        models, modes: keras_resnet model names; `"train"` and/or `"inference"`.
        batch_size, image_size: images per step, side of the square inputs (CIFAR augmentation up to 64).
        precision: `"auto"` (`keras_resnet.accelerate`) or a dtype policy name.
        rounds, steps: interleaved timed rounds per model and mode; steps per contender and round.
        peers, ceiling: whether to time keras.applications' model; the jitted device-resident step (JAX).
        output: optional path of a JSON file, rewritten after every round.
        deadline: optional `time.monotonic()` value after which nothing new starts.
        extra: optional function `(contenders, image_size) -> more contenders` (e.g. torchvision's).
        on_round: optional function called with the results after every round.
        log: prints one line of progress.

    Returns:
        A dict: `environment` (see `environment`), `settings` and `rows` (see `run`).

    Example:

    ```python
    results = benchmark(["resnet18", "resnet50"], batch_size=128, output="bench.json")
    print(table(results))
    ```
    """
    for mode in modes:
        _check_choice("mode", mode, MODES)
    settings = {"batch_size": batch_size, "image_size": image_size, "steps": steps}
    date = time.strftime("%Y-%m-%d %H:%M:%S %Z")
    results = {
        "environment": environment(precision),
        "settings": {**settings, "rounds": rounds, "precision": precision, "date": date},
        "rows": [],
    }
    peak = results["environment"]["peak_flops"]
    log(f"matmul peak ({results['environment']['peak_dtype']}): {peak / 1e12:.1f} TFLOP/s")
    for model in models:
        for mode in modes:
            if deadline is not None and time.monotonic() > deadline:
                log(f"{model} {mode}: skipped, out of time")
                continue
            done = list(results["rows"])

            def save(rows, done=done):
                results["rows"] = done + rows
                if output:
                    write_json(results, output)
                if on_round is not None:
                    on_round(results)

            found = contenders(model, mode=mode, **settings, precision=precision, peers=peers, ceiling=ceiling, log=log)
            if extra is not None:
                found += extra(found, image_size)
            save(run(found, rounds=rounds, steps=steps, peak_flops=peak, deadline=deadline, on_round=save, log=log))
            keras.backend.clear_session()
    return results


def write_json(results: Any, path: str | os.PathLike) -> None:
    """Writes `results` as JSON through a temporary file, so that a killed run never leaves half a file."""
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(f"{path}.tmp", "w") as handle:
        json.dump(results, handle, indent=1, default=float)
    os.replace(f"{path}.tmp", path)
