"""The paper's degradation result (Fig. 6) at a CPU-sized budget, on the original CIFAR-10.

Trains Plain-20, Plain-56, ResNet-20 and ResNet-56 (`keras_resnet.Plain20`, ...) one after the other, each through
the library's named `cifar10` data set, read from the python batches in `--data` (`dataset_sources`,
`take_per_class`, `cifar_pipeline`, as `cifar_reproduction.py` does), and the default "cifar10" recipe compressed
to `--epochs` epochs (`compile_for`: lr 0.1 at batch 128, /10 at 1/2 and 3/4 of the run, momentum 0.9, coupled
L2 1e-4) after the same linear warm-up from 0 over `--warmup-epochs` (default 1, 0 for a 1-epoch run: at so few
iterations a ResNet-56 started at lr 0.1 blows up and stays at chance, see RESULTS.md; 0 gives the recipe
unchanged), on the first `--per-class` training images of each class (of the 4500 the hold-out split trains on)
and validated on the first `--validation-per-class` of the 500 held out of each class (the last in file order).
He et al. report that the deeper plain net has the higher
training error throughout, while the deeper ResNet has the lower one.

Per epoch it appends one JSON line to `OUTPUT/epochs.jsonl` (a killed run keeps its finished epochs); at the end
(or with `--report`, from whatever the file holds) it draws `OUTPUT/degradation.png` (left: plain nets, right:
ResNets; dashed training error, bold validation error, as in the paper) and writes `OUTPUT/results.md`.

Usage:
    python benchmarks/degradation.py --output /tmp/degradation      # about 15 min on a quiet 2-core CPU
    python benchmarks/degradation.py --output /tmp/degradation --report
"""

import argparse
import sys
from pathlib import Path

import cifar_reproduction as bench

MODELS = ("Plain20", "Plain56", "ResNet20", "ResNet56")
PANELS = (("Plain20", "Plain56"), ("ResNet20", "ResNet56"))
FIGURE = "degradation.png"


def curves(run):
    """A run's epochs as the `History.history`-like dict that `keras_resnet.plot_curves` draws."""
    epochs = [run["epochs"][epoch] for epoch in sorted(run["epochs"])]
    return {
        "epoch": [record["epoch"] - 1 for record in epochs],
        "accuracy": [record["accuracy"] for record in epochs],
        "val_accuracy": [record["val_accuracy"] for record in epochs],
    }


def draw(runs, output):
    """Draws the plain and the residual nets side by side (`plot_curves` per panel, joined into one PNG)."""
    import tempfile

    from PIL import Image

    import keras_resnet as kr

    panels = []
    with tempfile.TemporaryDirectory() as folder:
        for index, names in enumerate(PANELS):
            present = [name for name in names if name in runs and runs[name]["epochs"]]
            if not present:
                continue
            path = Path(folder) / f"panel{index}.png"
            kr.plot_curves([curves(runs[name]) for name in present], path, labels=present, title=" vs ".join(present))
            with Image.open(path) as image:
                panels.append(image.convert("RGB"))
    if not panels:
        raise ValueError("runs must hold at least one finished epoch; received none")
    figure = Image.new("RGB", (sum(panel.width for panel in panels), max(panel.height for panel in panels)), "white")
    left = 0
    for panel in panels:
        figure.paste(panel, (left, 0))
        left += panel.width
    figure.save(output, optimize=True)
    return output


def report(records):
    """A markdown section: setup of each run and the training / validation error (%) per epoch of all four."""
    runs = bench.read_runs(records)
    if not runs:
        raise ValueError(f"records must hold at least one started run; received an empty file {records!r}")
    first = next(iter(runs.values()))["start"]
    names = [name for name in MODELS if name in runs]
    lines = [
        f"### Degradation at a CPU budget: {', '.join(names)} ({first['time'][:10]})",
        "",
        f"{first['machine']}; {first['versions']}. Command: `{first['command']}`.",
        (
            f"{bench.data_words(first)}; {first['epochs']} epochs of batch "
            f'{first["batch_size"]}, seed {first["seed"]}; the "cifar10" recipe compressed to the run (lr 0.1, '
            "/10 at 1/2 and 3/4, momentum 0.9, coupled L2 1e-4)" + _warmup_words(first.get("warmup_epochs", 0)) + "."
        ),
        "",
    ]
    for name in names:
        start, end = runs[name]["start"], runs[name]["end"]
        status = (
            f"{end['seconds'] / 60:.1f} min, load average at end {end['loadavg']}"
            if end
            else f"unfinished: {len(runs[name]['epochs'])} of {start['epochs']} epochs"
        )
        lines.append(
            f"- {name}: {start['params']:,} parameters, started {start['time']}, load average at start "
            f"{start['loadavg']}; {status}."
        )
    lines += [
        "",
        "Training error (running mean over the augmented epoch) / validation error, %:",
        "",
        "| epoch | " + " | ".join(names) + " |",
        "| ---: |" + " ---: |" * len(names),
    ]
    epochs = sorted({epoch for name in names for epoch in runs[name]["epochs"]})
    for epoch in epochs:
        cells = []
        for name in names:
            record = runs[name]["epochs"].get(epoch)
            cells.append(
                f"{100 * (1 - record['accuracy']):.2f} / {100 * (1 - record['val_accuracy']):.2f}" if record else ""
            )
        lines.append(f"| {epoch} | " + " | ".join(cells) + " |")
    lines += ["", *_verdicts(runs)]
    return "\n".join(lines) + "\n"


def _warmup_words(epochs):
    """How the runs started, in words (records written before `--warmup-epochs` existed had none)."""
    if not epochs:
        return ", no warm-up"
    return f", after a linear warm-up from 0 over the first {epochs} epoch{'s' if epochs > 1 else ''}, the same for all"


def _verdicts(runs):
    """Whether each deeper net trains above or below its shallower twin, epoch by epoch."""
    lines = []
    for shallow, deep in PANELS:
        if shallow not in runs or deep not in runs:
            continue
        common = sorted(set(runs[shallow]["epochs"]) & set(runs[deep]["epochs"]))
        if not common:
            continue
        gaps = [100 * (runs[shallow]["epochs"][e]["accuracy"] - runs[deep]["epochs"][e]["accuracy"]) for e in common]
        above = sum(gap > 0 for gap in gaps)
        lines.append(
            f"- {deep} training error minus {shallow}'s: "
            + ", ".join(f"{gap:+.2f}" for gap in gaps)
            + f" pp (epochs {common[0]}-{common[-1]}); {deep} above in {above} of {len(gaps)} epochs."
        )
    return lines


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--output", required=True, help="folder of epochs.jsonl, results.md and degradation.png")
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--per-class", type=int, default=1000, help="the first N training images per class (of 4500)")
    parser.add_argument(
        "--validation-per-class", type=int, default=100, help="the first N validation images per class (of 500)"
    )
    parser.add_argument("--batch-size", type=int, default=bench.BASE_BATCH)
    parser.add_argument(
        "--warmup-epochs",
        type=int,
        default=None,
        help="epochs of linear warm-up from lr 0, the same for every net (default 1; 0 for a 1-epoch run)",
    )
    parser.add_argument("--models", nargs="+", choices=MODELS, default=list(MODELS))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--data", default=str(bench.DATA), help="the folder of the CIFAR-10 python batch files")
    parser.add_argument("--figure", default=None, help=f"where to write the figure (default OUTPUT/{FIGURE})")
    parser.add_argument("--report", action="store_true", help="only redraw the figure and table from epochs.jsonl")
    args = parser.parse_args(argv)
    for name in ("epochs", "per_class", "validation_per_class", "batch_size"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be a positive integer; received {getattr(args, name)}")
    if args.warmup_epochs is None:
        args.warmup_epochs = 1 if args.epochs > 1 else 0
    if not 0 <= args.warmup_epochs < args.epochs:
        parser.error(f"--warmup-epochs must be an integer in [0, --epochs); received {args.warmup_epochs}")
    output = Path(args.output)
    output.mkdir(parents=True, exist_ok=True)
    records = output / bench.RECORDS
    if not args.report:
        bench.check_data(parser, args.data)
        command = "python benchmarks/degradation.py " + " ".join(sys.argv[1:] if argv is None else argv)
        sizes = bench.split_sizes(args.per_class, args.validation_per_class)
        details = {
            "batch_size": args.batch_size,
            "seed": args.seed,
            "warmup_epochs": args.warmup_epochs,
            **bench.data_details(args.data, sizes),
        }
        for name in args.models:

            def build(name=name):
                return (
                    *bench.library_run(
                        args.data, sizes, args.epochs, args.batch_size, args.seed, name, args.warmup_epochs
                    ),
                    args.epochs,
                    details,
                )

            bench.train_one(name, build, records, command)
    draw(bench.read_runs(records), args.figure or output / FIGURE)
    text = report(records)
    (output / bench.REPORT).write_text(text)
    print(text)
    return text


if __name__ == "__main__":
    main()
