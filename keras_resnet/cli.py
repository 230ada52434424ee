"""The `keras-resnet` command: train, evaluate, summarise, plot and export models, time them.

Every subcommand is a thin layer over a library function; its `ValueError`s and `OSError`s are printed as one
line and exit with status 2, as argparse does for bad flags.
"""

import argparse
import json
import os
import re
import sys

import keras

from keras_resnet import accelerate, benchmark, export, recipes
from keras_resnet._validation import is_positive_int
from keras_resnet.data import AUGMENTATIONS, folder_source
from keras_resnet.models.builders import MODELS, get_model
from keras_resnet.models.summary import model_summary
from keras_resnet.training import distribute, evaluation, plan, trainer
from keras_resnet.training.plotting import plot_curves

PROG = "keras-resnet"


def _positive_int(text):
    try:
        value = int(text)
    except ValueError:
        value = None
    if not is_positive_int(value):
        raise argparse.ArgumentTypeError(f"must be a positive integer; received {text!r}")
    return value


def _add_dataset_arguments(parser, default, default_seed):
    parser.add_argument(
        "--dataset",
        default=default,
        help="shapes (embedded, no download), cifar10, cifar100, folder:PATH (PATH/train and PATH/validation with one "
        "sub-folder per class; without PATH/validation the last 10%% of each class of PATH/train validates; images "
        f"of at most 64 pixels get the CIFAR augmentation, recipe) or a tensorflow-datasets name (default: {default})",
    )
    parser.add_argument(
        "--data-dir",
        help="folder of the CIFAR python batch files or of prepared tensorflow-datasets data; nothing is downloaded",
    )
    parser.add_argument(
        "--image-size", type=_positive_int, help="input side (default: 32 with CIFAR, 224 with ImageNet augmentation)"
    )
    parser.add_argument(
        "--augmentation",
        choices=AUGMENTATIONS,
        help="cifar: pad, crop, flip; imagenet: scale augmentation, crop, flip (default: cifar for small images)",
    )
    parser.add_argument("--train-size", type=_positive_int, help="shapes only: training images (default 6000)")
    parser.add_argument("--validation-size", type=_positive_int, help="shapes only: validation images (default 1000)")
    parser.add_argument(
        "--seed",
        type=int,
        default=default_seed,
        help=f"seed of the weights, data order, augmentation and shapes images (default: {default_seed})",
    )


def _dataset_options(args):
    return {name: getattr(args, name) for name in plan.DATASET_OPTIONS if getattr(args, name) is not None}


def _command(commands, name, run, summary, description):
    parser = commands.add_parser(name, help=summary, description=description)
    parser.set_defaults(run=run)
    return parser


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of `keras-resnet`: `train`, `evaluate`, `summary`, `plot`, `export`, `benchmark`.

    Example:

    >>> build_parser().parse_args(["summary", "resnet50"]).models
    ['resnet50']
    """
    parser = argparse.ArgumentParser(
        prog=PROG, description="Residual networks (He et al. 2015) for Keras 3: train, evaluate, summarise, plot."
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    train = _command(
        commands,
        "train",
        _train,
        "train a model with the paper's recipe for the data set",
        "Train a model with the paper's recipe for the data set. Writes best.keras and last.keras (raw images in: "
        "the run's normalisation and class names are inside), log.csv, curves.png and run.json to --output; "
        "re-running the same command after an interrupt resumes from the last finished epoch.",
    )
    train.add_argument(
        "--model",
        default="resnet20",
        choices=sorted(MODELS),
        metavar="NAME",
        help=f"one of {', '.join(MODELS)} (default: %(default)s)",
    )
    _add_dataset_arguments(train, "shapes", 0)
    train.add_argument(
        "--weights",
        metavar="NAME",
        help="fine-tune from pretrained weights: a name such as torchvision_v2 or timm/resnet50.a1_in1k "
        "(keras_resnet.models.pretrained.names_for(MODEL)), a .pth or .safetensors file, a keras-hub preset folder or "
        "imagenet; the backbone normalises raw images as its weights record and gets a new classifier for the "
        "data set's classes (default image size: the weights' crop size; default: random weights)",
    )
    train.add_argument(
        "--epochs",
        type=_positive_int,
        help="epochs; the recipe's whole learning-rate schedule is stretched or squeezed to them (its drops at "
        "the same fractions of the run: a 2-epoch CIFAR run ends at lr 0.001); run.json records the schedule "
        f"that ran (default: the recipe's length, 64k iterations for CIFAR; {plan.SHAPES_EPOCHS} for shapes)",
    )
    train.add_argument(
        "--batch-size", type=_positive_int, help="batch size (default: the recipe's; the learning rate scales with it)"
    )
    train.add_argument("--lr", type=float, help="base learning rate (default: the recipe's)")
    train.add_argument("--weight-decay", type=float, help="L2 weight decay (default: the recipe's, 1e-4)")
    train.add_argument(
        "--recipe",
        choices=sorted(recipes.RECIPES),
        help="training recipe (default: cifar10/cifar100 for CIFAR-like data, imagenet otherwise)",
    )
    train.add_argument("--output", help="folder of the run's files (default: runs/MODEL-DATASET)")
    train.add_argument(
        "--strategy",
        choices=distribute.STRATEGIES,
        default="auto",
        help="auto: multiworker when TF_CONFIG names a cluster, mirrored with several GPUs, else none; mirrored: "
        "all local GPUs; multiworker: the workers of TF_CONFIG (run the command on each; only worker 0 writes "
        "--output); none: one device (default: %(default)s)",
    )
    train.add_argument(
        "--per-replica-batch-size", type=_positive_int, help="images per replica and step, instead of --batch-size"
    )
    train.add_argument(
        "--full-train",
        action="store_true",
        help="cifar10/cifar100: train on all 50,000 training images and report only the final model's test error "
        "(the paper's tables); by default the last 10%% of each class validates (best.keras, plateaus)",
    )
    train.add_argument(
        "--overwrite",
        action="store_true",
        help="train afresh when --output holds a finished run (default: refuse, to keep its files)",
    )
    train.add_argument(
        "--verbose",
        type=int,
        choices=(0, 1, 2),
        default=1,
        help="0: silent, 1: progress bars, 2: one line per epoch (default: %(default)s)",
    )

    evaluate = _command(
        commands,
        "evaluate",
        _evaluate,
        "top-1 and top-5 accuracy of a checkpoint",
        "Top-1 and top-5 accuracy and error of a .keras checkpoint, or of a named model with --weights, on the "
        "validation or test split. Without --dataset, a checkpoint of keras-resnet train is scored on what its run "
        "trained on (the run.json beside it: data set, options, seed); flags given override the run's.",
    )
    source = evaluate.add_mutually_exclusive_group(required=True)
    source.add_argument("--checkpoint", help="a .keras file, e.g. runs/resnet20-shapes/best.keras")
    source.add_argument("--model", metavar="NAME", help="a model name, with --weights, e.g. resnet20 --weights cifar10")
    evaluate.add_argument("--weights", help="with --model: cifar10 (ResNet20's shipped weights), imagenet or a file")
    _add_dataset_arguments(evaluate, None, None)
    evaluate.add_argument(
        "--method",
        choices=evaluation.METHODS,
        default="center",
        help="center: one view per image; ten_crop, multi_scale: the paper's ImageNet testing (ImageNet "
        "augmentation only) (default: %(default)s)",
    )
    evaluate.add_argument("--batch-size", type=_positive_int, default=128, help="batch size (default: %(default)s)")
    evaluate.add_argument(
        "--split",
        choices=("validation", "test"),
        default="validation",
        help="validation (for CIFAR the hold-out of training) or test (CIFAR's test set) (default: %(default)s)",
    )

    summary = _command(
        commands,
        "summary",
        _summary,
        "layers, parameters and multiply-adds of models",
        "Layers, parameters and multiply-adds (the paper's FLOPs) of one model, or a table of several models.",
    )
    summary.add_argument("models", nargs="*", metavar="MODEL", help=f"model names: {', '.join(MODELS)}")
    summary.add_argument("--all", action="store_true", help="a table of every model")
    summary.add_argument(
        "--input-size", type=_positive_int, help="input side (default: 224 for ImageNet networks, 32 for CIFAR ones)"
    )

    plot = _command(
        commands,
        "plot",
        _plot,
        "training curves from CSV logs",
        "Training (dashed) and validation (solid) error of one or more CSV logs on one figure, "
        "as in the paper's Fig. 4.",
    )
    plot.add_argument("logs", nargs="+", metavar="LOG.csv", help="CSV logs written by keras-resnet train")
    plot.add_argument("--output", default="curves.png", help="image to write (default: %(default)s)")
    plot.add_argument("--labels", nargs="+", help="one legend label per log (default: the file or folder names)")
    plot.add_argument("--steps-per-epoch", type=_positive_int, help="draw against iterations instead of epochs")
    plot.add_argument("--title", help="figure title")
    _add_export_command(commands)
    _add_benchmark_command(commands)
    return parser


def _add_benchmark_command(commands):
    """`keras-resnet benchmark`: keras_resnet.benchmark on the command line."""
    bench = _command(
        commands,
        "benchmark",
        _benchmark,
        "training and inference throughput against keras.applications",
        "Training and inference throughput on this machine (images/s, medians of interleaved rounds, MFU "
        "against a measured matmul peak) of models against keras.applications and, on JAX, the jitted "
        "device-resident step. Prints a table and writes JSON.",
    )
    bench.add_argument(
        "--model",
        nargs="+",
        default=["resnet50"],
        choices=sorted(MODELS),
        metavar="NAME",
        help="one or more model names (default: %(default)s)",
    )
    bench.add_argument(
        "--mode",
        nargs="+",
        default=["train"],
        choices=benchmark.MODES,
        help="train and/or inference (default: %(default)s)",
    )
    bench.add_argument("--batch-size", type=_positive_int, default=256, help="images per step (default: %(default)s)")
    bench.add_argument(
        "--image-size",
        type=_positive_int,
        default=224,
        help="input side; 64 and below use CIFAR augmentation (default: %(default)s)",
    )
    bench.add_argument(
        "--precision",
        default="auto",
        choices=("auto", *accelerate.PRECISIONS),
        help="dtype policy; auto: the device's (keras_resnet.accelerate) (default: %(default)s)",
    )
    bench.add_argument(
        "--rounds", type=_positive_int, default=5, help="interleaved timed rounds (default: %(default)s)"
    )
    bench.add_argument("--steps", type=_positive_int, default=10, help="steps per round (default: %(default)s)")
    bench.add_argument("--no-peers", action="store_true", help="time the library's models only")
    bench.add_argument("--no-ceiling", action="store_true", help="leave out the jitted device-resident step (JAX)")
    bench.add_argument("--output", default="benchmark.json", help="JSON file to write (default: %(default)s)")


def _benchmark(args):
    results = benchmark.benchmark(
        args.model,
        modes=args.mode,
        batch_size=args.batch_size,
        image_size=args.image_size,
        precision=args.precision,
        rounds=args.rounds,
        steps=args.steps,
        peers=not args.no_peers,
        ceiling=not args.no_ceiling,
        output=args.output,
        extra=getattr(args, "extra", None),  # benchmarks/torchvision_speed.py sets it
    )
    print(benchmark.table(results))
    print(f"wrote {args.output}")


# Flags of `train` passed to `trainer.train` under their own names.
_TRAIN_FLAGS = (
    *("epochs", "batch_size", "lr", "weight_decay", "recipe", "seed", "strategy", "per_replica_batch_size"),
    *("verbose", "full_train", "overwrite", "weights"),
)


def _train(args):
    output = args.output or os.path.join("runs", f"{args.model}-{_slug(args.dataset)}")
    options = {name: getattr(args, name) for name in _TRAIN_FLAGS}
    result = trainer.train(args.model, args.dataset, output_dir=output, **options, **_dataset_options(args))
    print(f"{result['epochs']} epochs, {result['steps']} optimizer steps; final model:")
    for split, key in (("validation", "val_accuracy"), ("test", "test_accuracy")):
        if (value := result[key]) is not None:
            print(f"  {split} accuracy: {value:.4f} (error {100 * (1 - value):.2f}%) on {result['splits'][split]}")
    print(f"run files: {', '.join(path for name, path in result['files'].items() if os.path.exists(path))}")


def _slug(dataset):
    name = dataset.removeprefix("folder:").rstrip("/\\")
    return re.sub(r"[^A-Za-z0-9_.]+", "-", os.path.basename(name) if dataset.startswith("folder:") else name)


def _evaluate(args):
    options = {name: getattr(args, name) for name in ("method", "batch_size", "seed", "split")}
    if args.checkpoint and args.weights:
        raise ValueError(f"--weights goes with --model; received --weights {args.weights} with --checkpoint")
    model = args.checkpoint or get_model(args.model, weights=args.weights, include_preprocessing=True)
    result = trainer.evaluate_run(model, args.dataset, **options, **_dataset_options(args))
    print(f"{result['count']} images of {result['split']} ({result['dataset']}), {args.method}")
    for k in (1, 5):
        print(f"top-{k} accuracy: {result[f'top{k}_accuracy']:.4f} (error {100 * result[f'top{k}_error']:.2f}%)")


def _summary(args):
    names = list(MODELS) if args.all else args.models
    if not names:
        raise ValueError("summary needs model names or --all; received neither")
    options = {} if args.input_size is None else {"input_shape": (args.input_size, args.input_size, 3)}
    rows = [
        (name.lower(), model_summary(get_model(name, **options)), MODELS[name.lower()].has_imagenet_weights)
        for name in names
    ]
    if len(rows) == 1 and not args.all:
        name, figures, weights = rows[0]
        print(f"{name}: input {'x'.join(str(d) for d in figures['input_shape'])}")
        print(f"  layers:               {figures['layers']:,}")
        print(f"  parameters:           {figures['params']:,}")
        print(f"  trainable parameters: {figures['trainable_params']:,}")
        print(f"  multiply-adds:        {figures['gmacs']} GMACs ({figures['macs']:,})")
        print(f"  ImageNet weights:     {'yes' if weights else 'no'}")
        return
    header = ("model", "depth", "input", "params", "trainable", "GMACs", "ImageNet weights")
    lines = [header] + [
        (
            name,
            re.search(r"\d+", name).group(),
            str(figures["input_shape"][0]),
            f"{figures['params']:,}",
            f"{figures['trainable_params']:,}",
            f"{figures['gmacs']:.2f}",
            "yes" if weights else "no",
        )
        for name, figures, weights in rows
    ]
    widths = [max(map(len, column)) for column in zip(*lines)]
    for name, *cells in lines:
        print("  ".join([name.ljust(widths[0]), *(cell.rjust(w) for cell, w in zip(cells, widths[1:]))]).rstrip())


def _plot(args):
    plot_curves(args.logs, args.output, labels=args.labels, steps_per_epoch=args.steps_per_epoch, title=args.title)
    print(f"wrote {args.output}")


def _add_export_command(commands):
    parser = _command(
        commands,
        "export",
        _export,
        "export for TensorFlow Serving (SavedModel), LiteRT (TFLite) or ONNX Runtime, preprocessing inside",
        "Export a .keras checkpoint or a named model. saved_model: a SavedModel whose signatures take raw images "
        "(uint8 arrays or encoded JPEG/PNG bytes), apply the model's preprocessing and return probabilities and "
        "the top-k classes (consumers need TensorFlow only). litert: a .tflite file of builtin ops, uint8 "
        "images in, float32 or int8. onnx: an .onnx file, uint8 images in. Nothing is overwritten.",
    )
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--checkpoint", metavar="FILE", help="a .keras file, e.g. runs/resnet20-shapes/best.keras")
    source.add_argument("--model", metavar="NAME", help="a model name such as resnet50 (see --weights)")
    parser.add_argument("--weights", help="with --model: 'imagenet' or a weights file (default: random weights)")
    parser.add_argument(
        "--format",
        choices=tuple(export.FORMATS),
        help="what to write (default: from --output's extension: .tflite litert, .onnx onnx, else saved_model)",
    )
    parser.add_argument(
        "--output",
        required=True,
        metavar="PATH",
        help="a new or empty folder (saved_model) or file (litert, onnx) to write",
    )
    parser.add_argument(
        "--preprocessing",
        metavar="MODE",
        help='caffe, tf, none, or a JSON file {"mean": ..., "std": ..., "channel_order": ...} '
        "(see keras_resnet.export.cifar_preprocessing) (default: the model's own record: a checkpoint of "
        "keras-resnet train carries its run's normalisation)",
    )
    parser.add_argument(
        "--image-size", type=int, metavar="SIDE", help="side of the served images (default: the model's input size)"
    )
    parser.add_argument("--from-logits", action="store_true", help="the model outputs logits: apply a softmax")
    served = parser.add_argument_group("saved_model options")
    served.add_argument("--class-names", metavar="FILE", help="class names, a line each, by id (default: 0, 1, ...)")
    served.add_argument("--top-k", type=int, metavar="K", help="how many best classes to return (default: 5)")
    served.add_argument("--crop-to-aspect-ratio", action="store_true", help="centre-crop, do not stretch")
    served.add_argument("--version", type=int, metavar="N", help="write OUTPUT/N/, the TensorFlow Serving layout")
    litert = parser.add_argument_group("litert options")
    litert.add_argument("--quantization", choices=("int8",), help="post-training int8 (needs --representative-data)")
    litert.add_argument(
        "--representative-data",
        metavar="DIR",
        help="int8: a folder of training images in class sub-folders (the first 200 calibrate the int8 ranges)",
    )
    parser.add_argument_group("onnx options").add_argument("--opset", type=int, metavar="N", help="opset (default: 17)")
    return parser


def _export(args):
    """Runs `keras-resnet export`: loads the model, passes the options given on the line to `export`."""
    if args.checkpoint:
        if args.weights:
            raise ValueError(f"--weights goes with --model; received --weights {args.weights} with --checkpoint")
        if not os.path.isfile(args.checkpoint):
            raise ValueError(f"--checkpoint must be an existing .keras file; received {args.checkpoint!r}")
        model = keras.saving.load_model(args.checkpoint, compile=False, safe_mode=True)
    else:
        model = get_model(args.model, weights=args.weights)
    options = {}
    # Without the flag, `export` applies the model's recorded preprocessing.
    if args.preprocessing is not None and args.preprocessing.endswith(".json"):
        with open(args.preprocessing, encoding="utf-8") as file:
            options["preprocessing"] = json.load(file)
    elif args.preprocessing is not None:
        options["preprocessing"] = None if args.preprocessing == "none" else args.preprocessing
    if args.class_names:
        with open(args.class_names, encoding="utf-8") as file:
            options["class_names"] = file.read().splitlines()
    if args.representative_data:
        options["representative_data"] = folder_source(args.representative_data)
    given = ("image_size", "top_k", "version", "quantization", "opset", "from_logits", "crop_to_aspect_ratio")
    options.update({name: value for name in given if (value := getattr(args, name)) is not None and value is not False})
    format = export.format_for(args.output, args.format)
    written = export.export(model, args.output, format, **options)
    if format != "saved_model":
        quantized = ", int8" if args.quantization else ""
        print(f"wrote {written} ({format}{quantized}): uint8 images [batch, height, width, 3] in, probabilities out")
        return
    height, width = written["image_size"]
    folder = args.output if args.version is None else os.path.join(args.output, str(args.version))
    print(
        f"wrote {folder}: signatures serving_default (images: uint8 [batch, height, width, 3]), "
        f"serving_bytes (image_bytes: encoded images [batch]), serving_litert and metadata; served at "
        f"{height}x{width}, {len(written['class_names'])} classes, top {written['top_k']}"
    )


def _one_line(error):
    """An error's message on one line, as argparse's: a list under it (e.g. unmatched layers) joined by "; "."""
    first, *listed = [line.strip() for line in str(error).splitlines()] or [""]
    return f"{first} {'; '.join(listed)}".strip()


def main(argv: list[str] | None = None) -> int:
    """Runs the `keras-resnet` command.

    Args:
        argv: the arguments after the program name; defaults to `sys.argv[1:]`.

    Returns:
        The exit status: 0, or 2 after a library error (printed as one line) or bad flags (argparse).

    Example:

    >>> main(["summary", "resnet20"])  # doctest: +SKIP
    resnet20: input 32x32x3
    ...
    """
    args = build_parser().parse_args(argv)
    try:
        args.run(args)
    except (ValueError, OSError) as error:
        print(f"{PROG} {args.command}: error: {_one_line(error)}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
