"""Training curves in the paper's style (Fig. 4, 6): training error dashed, validation error solid, one colour a run."""

from __future__ import annotations

import csv
import os
from collections.abc import Sequence
from typing import Any

from keras_resnet._validation import check_int as _check_int

_NOT_TOP1 = ("top", "_k_", "sparse_top")


def read_log(path: str | os.PathLike) -> dict[str, list[float]]:
    """Reads a `keras.callbacks.CSVLogger` file into columns, keeping the last row of an epoch logged twice.

    Args:
        path: path of the CSV file.

    Returns:
        A dict from column name to a list of floats, one per epoch (`"epoch"` counts from 0).

    Example:

    >>> columns = read_log("runs/resnet20/log.csv")  # doctest: +SKIP
    >>> columns["val_accuracy"][-1]  # doctest: +SKIP
    0.91
    """
    if not os.path.isfile(path):
        raise ValueError(f"path must be an existing CSV log; received {os.fspath(path)!r}")
    with open(path, newline="") as handle:
        rows = list(csv.DictReader(handle))
    if not rows or "epoch" not in rows[0]:
        raise ValueError(f"path must be a CSV log with an 'epoch' column; received {os.fspath(path)!r}")
    by_epoch = {int(float(row["epoch"])): row for row in rows}
    ordered = [by_epoch[epoch] for epoch in sorted(by_epoch)]
    return {key: [_to_float(row[key]) for row in ordered] for key in rows[0]}


def _to_float(text):
    try:
        return float(text)
    except (TypeError, ValueError):
        return float("nan")


def _accuracy_key(columns):
    """The top-1 training accuracy among logged metric names, e.g. `"accuracy"` (not `"top5_accuracy"`)."""
    candidates = [
        name
        for name in columns
        if "acc" in name and not name.startswith("val_") and not any(t in name for t in _NOT_TOP1)
    ]
    if not candidates:
        raise ValueError(f"columns must include an accuracy metric; received {sorted(columns)!r}")
    return "accuracy" if "accuracy" in candidates else candidates[0]


def plot_curves(
    logs: Any,
    output: str | os.PathLike,
    *,
    labels: Sequence[str] | None = None,
    steps_per_epoch: int | None = None,
    title: str | None = None,
) -> str | os.PathLike:
    """Draws training (dashed) and validation (solid) error of one or more runs.

    Args:
        logs: a CSV log path, a `History.history`-like dict of lists, or a list of them (one curve pair each).
        output: path of the image to write (`.png`, `.pdf`, `.svg`).
        labels: one legend label per log; defaults to the file (or folder) names, `"run 1"`, ... for dicts.
        steps_per_epoch: iterations per epoch to draw against iterations, as the paper does; `None`: epochs.
        title: optional figure title.

    Returns:
        `output`.

    Example:

    >>> plot_curves(["runs/plain20/log.csv", "runs/resnet20/log.csv"],
    ...             "curves.png")  # doctest: +SKIP
    'curves.png'
    """
    _check_int("steps_per_epoch", steps_per_epoch, optional=True)
    logs = list(logs) if isinstance(logs, (list, tuple)) else [logs]
    if not logs:
        raise ValueError("logs must name at least one log; received an empty list")
    labels = _default_labels(logs) if labels is None else list(labels)
    if len(labels) != len(logs):
        raise ValueError(f"labels must hold one label per log ({len(logs)}); received {labels!r}")
    runs = [read_log(log) if isinstance(log, (str, os.PathLike)) else log for log in logs]

    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot

    figure, axes = pyplot.subplots(figsize=(6, 4))
    for index, (run, label) in enumerate(zip(runs, labels)):
        key = _accuracy_key(run)
        steps = [epoch * (steps_per_epoch or 1) for epoch in _epochs(run)]
        colour = f"C{index}"
        axes.plot(steps, _error(run[key]), "--", color=colour, linewidth=1)
        if f"val_{key}" in run:
            axes.plot(steps, _error(run[f"val_{key}"]), "-", color=colour, linewidth=2, label=label)
        else:
            axes.plot([], [], "-", color=colour, linewidth=2, label=label)
    axes.set_xlabel("epochs" if steps_per_epoch is None else "iterations")
    axes.set_ylabel("error (%)")
    axes.grid(alpha=0.3)
    axes.legend(title="dashed: training, solid: validation", fontsize="small", title_fontsize="small")
    if title:
        axes.set_title(title)
    figure.tight_layout()
    figure.savefig(output, dpi=120)
    pyplot.close(figure)
    return output


def _default_labels(logs):
    paths = [os.fspath(log) if isinstance(log, (str, os.PathLike)) else None for log in logs]
    stems = [os.path.splitext(os.path.basename(p))[0] if p else f"run {i + 1}" for i, p in enumerate(paths)]
    if len(set(stems)) == len(stems):
        return stems
    return [os.path.basename(os.path.dirname(os.path.abspath(p))) if p else s for p, s in zip(paths, stems)]


def _epochs(run):
    # Keras counts epochs from 0; a point is drawn at the end of its epoch.
    epochs = run.get("epoch", range(len(next(iter(run.values())))))
    return [epoch + 1 for epoch in epochs]


def _error(accuracies):
    return [100 * (1 - a) for a in accuracies]
