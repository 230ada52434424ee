"""Device-aware training settings (precision, `jit_compile`, `steps_per_execution`, data parallelism), chosen once."""

from __future__ import annotations

import dataclasses

import keras

from keras_resnet._validation import check_choice as _check_choice
from keras_resnet._validation import check_int as _check_int

__all__ = ["PRECISIONS", "Acceleration", "acceleration", "device_kind"]

PRECISIONS = ("float32", "mixed_float16", "mixed_bfloat16")
_ACCELERATED_STEPS = 8
_printed = set()


@dataclasses.dataclass(frozen=True)
class Acceleration:
    """The training settings chosen for a machine; build one with `acceleration()`.

    Attributes:
        backend: the Keras backend.
        device, device_count: `"gpu"`, `"tpu"` or `"cpu"` (the kind of the first device), and how many.
        precision: the dtype policy to build models under, one of `PRECISIONS`.
        jit_compile, steps_per_execution: for `model.compile` (see `compile_options`).
        data_parallel: whether `apply()` distributes over the devices (JAX only).
    """

    backend: str
    device: str
    device_count: int
    precision: str
    jit_compile: bool
    steps_per_execution: int
    data_parallel: bool

    def compile_options(self) -> dict:
        """The arguments of `model.compile` this setup chooses: `jit_compile` and `steps_per_execution`."""
        return {"jit_compile": self.jit_compile, "steps_per_execution": self.steps_per_execution}

    def describe(self) -> str:
        """One line naming the device and every choice, e.g. `cpu x1 (tensorflow): float32, jit_compile=False, ...`."""
        parallel = ", DataParallel" if self.data_parallel else ""
        return (
            f"{self.device} x{self.device_count} ({self.backend}): {self.precision}, "
            f"jit_compile={self.jit_compile}, steps_per_execution={self.steps_per_execution}{parallel}"
        )

    def apply(self, *, verbose: bool = True) -> Acceleration:
        """Sets the global dtype policy and the distribution, and returns `self`; call it before building the model.

        With `verbose`, prints `describe()` the first time this choice is applied in the process.
        """
        keras.config.set_dtype_policy(self.precision)
        if self.data_parallel:
            from keras_resnet.training import distribute  # the one place that distributes

            distribute.replicate("mirrored")
        line = self.describe()
        if verbose and line not in _printed:
            _printed.add(line)
            print(f"keras_resnet: {line} (override with keras_resnet.accelerate.acceleration arguments)")
        return self


def device_kind() -> tuple[str, int, float | None]:
    """`(kind, count, compute_capability)` of the accelerators the Keras backend sees.

    Kind is `"gpu"`, `"tpu"` or `"cpu"`, capability `None` if unknown: `('gpu', 8, 9.0)` on an 8-GPU H100 host.
    """
    backend = keras.backend.backend()
    if backend == "jax":
        import jax

        devices = jax.local_devices()
        kind = {"gpu": "gpu", "cuda": "gpu", "rocm": "gpu", "tpu": "tpu"}.get(devices[0].platform.lower(), "cpu")
        capability = getattr(devices[0], "compute_capability", None)
        # Forced host devices (--xla_force_host_platform_device_count) share one CPU.
        return kind, len(devices) if kind != "cpu" else 1, float(capability) if capability else None
    if backend == "tensorflow":
        import tensorflow as tf

        gpus = tf.config.list_physical_devices("GPU")
        if gpus:
            details = tf.config.experimental.get_device_details(gpus[0])
            capability = details.get("compute_capability")
            return "gpu", len(gpus), float(f"{capability[0]}.{capability[1]}") if capability else None
        return "cpu", 1, None
    if backend == "torch":
        import torch

        if torch.cuda.is_available():
            major, minor = torch.cuda.get_device_capability(0)
            return "gpu", torch.cuda.device_count(), float(f"{major}.{minor}")
    return "cpu", 1, None


def acceleration(
    *,
    precision: str = "auto",
    jit_compile: bool | str = "auto",
    steps_per_execution: int | str = "auto",
    data_parallel: bool | str = "auto",
) -> Acceleration:
    """An `Acceleration` of the fastest correct training settings for this machine; every choice can be overridden.

    Args:
        precision: one of `PRECISIONS`, or `"auto"`: a global dtype policy other than float32 if set, else
            bfloat16 on TPUs and GPUs of compute capability >= 8.0, float16 on older GPUs, float32 on CPUs.
        jit_compile: `"auto"` (on JAX, and on TensorFlow accelerators: oneDNN beats XLA on CPU), or a bool.
        steps_per_execution: `"auto"` (8 on accelerators, 1 on CPUs) or a positive int.
        data_parallel: `"auto"` (JAX with several accelerators) or a bool; `True` needs the JAX backend.

    Example:

    >>> setup = acceleration(precision="float32", steps_per_execution=2)
    >>> setup.precision, setup.steps_per_execution
    ('float32', 2)
    """
    _check_choice("precision", precision, ("auto", *PRECISIONS))
    _check_choice("jit_compile", jit_compile, ("auto", True, False))
    _check_choice("data_parallel", data_parallel, ("auto", True, False))
    if steps_per_execution != "auto":
        _check_int("steps_per_execution", steps_per_execution, context=" or 'auto'")
    backend = keras.backend.backend()
    if data_parallel is True and backend != "jax":
        raise ValueError(
            f"data_parallel=True needs the jax backend; received backend {backend!r}. On tensorflow use "
            "keras_resnet.training.distribute.replicate('mirrored')."
        )
    kind, count, capability = device_kind()
    accelerated = kind != "cpu"
    if precision == "auto" and keras.config.dtype_policy().name != "float32":
        precision = keras.config.dtype_policy().name  # a policy the user set keeps its say
    if precision == "auto":
        if not accelerated:
            precision = "float32"
        else:
            precision = "mixed_float16" if capability is not None and capability < 8.0 else "mixed_bfloat16"
    if jit_compile == "auto":
        jit_compile = backend == "jax" or (backend == "tensorflow" and accelerated)
    if steps_per_execution == "auto":
        steps_per_execution = _ACCELERATED_STEPS if accelerated else 1
    if data_parallel == "auto":
        data_parallel = backend == "jax" and accelerated and count > 1
    return Acceleration(backend, kind, count, precision, bool(jit_compile), steps_per_execution, data_parallel)
