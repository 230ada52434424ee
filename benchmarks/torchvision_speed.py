"""keras_resnet's ResNets against torchvision's: `keras-resnet benchmark` with torchvision's model timed beside.

The torchvision contender trains (or infers) the same architecture in PyTorch, eager, autocast to the 16-bit
type of the dtype policy the library's contenders run under, channels_last, on a batch already on the device.
`benchmarks/gpu.py` adds it to its throughput sections; figures are in `benchmarks/RESULTS.md`.

    python benchmarks/torchvision_speed.py --model resnet18 resnet50 --batch-size 128 --output bench.json

takes the flags of `keras-resnet benchmark`.
"""

import os
import sys

TORCHVISION = ("resnet18", "resnet34", "resnet50", "resnet101", "resnet152")


def available():
    """Whether torch and torchvision are importable."""
    sys.modules.setdefault("triton", None)  # the CUDA build of torch imports triton, which can crash beside TensorFlow
    try:
        import torch  # noqa: F401
        import torchvision  # noqa: F401
    except ImportError:
        return False
    return True


def torchvision_contender(library, image_size):
    """A `keras_resnet.benchmark.Contender` timing torchvision's model of the `library` contender."""
    import keras

    available()
    import torch
    import torchvision

    from keras_resnet import benchmark

    device = "cuda" if torch.cuda.is_available() else "cpu"
    half = {"mixed_bfloat16": torch.bfloat16, "mixed_float16": torch.float16}.get(keras.config.dtype_policy().name)
    training = library.mode == "train"
    state = {}

    def prepare():
        torch.manual_seed(0)
        model = getattr(torchvision.models, library.model)(num_classes=benchmark.classes_for(image_size))
        model = model.to(device, memory_format=torch.channels_last).train(training)
        shape = (library.batch_size, 3, image_size, image_size)
        state.update(
            model=model,
            x=torch.randn(*shape, device=device).to(memory_format=torch.channels_last),
            y=torch.randint(0, 10, shape[:1], device=device),
            optimizer=torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9),
        )
        run_steps(2)

    def run_steps(count):
        model, x, y, optimizer = state["model"], state["x"], state["y"], state["optimizer"]
        for _ in range(count):
            with torch.autocast(device, dtype=half or torch.float32, enabled=half is not None):
                if training:
                    loss = torch.nn.functional.cross_entropy(model(x), y)
                else:
                    with torch.inference_mode():
                        model(x)
            if training:
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
        if device == "cuda":
            torch.cuda.synchronize()

    fields = (library.model, library.mode, library.batch_size, library.macs)
    return benchmark.Contender("torchvision", *fields, prepare=prepare, step=run_steps)


def contenders(found, image_size, log=print):
    """The `extra` of `keras_resnet.benchmark.benchmark`: torchvision's model of `found[0]`, when it has one."""
    model = found[0].model
    if model not in TORCHVISION:
        log(f"torchvision: skipped, it has no {model}")
        return []
    if not available():
        log("torchvision: skipped, torch or torchvision is not importable")
        return []
    return [torchvision_contender(found[0], image_size)]


def main(argv=None):
    """`keras-resnet benchmark ARGS` with torchvision's models timed beside (the same flags)."""
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    from keras_resnet import cli

    args = cli.build_parser().parse_args(["benchmark", *(sys.argv[1:] if argv is None else argv)])
    args.extra = contenders
    args.run(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
