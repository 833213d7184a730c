"""Charts for the notebooks: the data's classes and faces, training curves and test scores.

Every function returns a matplotlib Figure, closed in pyplot so that a notebook shows it once,
as the cell's result, and a loop of plots leaves no figure open. Picture grids: `frlib.gallery`.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from frlib.data import FaceDataset
from frlib.evaluate import GROUP_TASKS
from frlib.labels import TASKS
from frlib.summary import class_counts, faces_per_image


def figure(ncols: int, nrows: int = 1, size=(4.0, 3.0), **subplots) -> tuple[Figure, np.ndarray]:
    """A Figure with an nrows x ncols array of axes, each about `size` inches."""
    import matplotlib.pyplot as plt  # pyplot sets up the notebook's figure display

    width, height = size[0] * ncols, size[1] * nrows
    fig, axes = plt.subplots(
        nrows, ncols, figsize=(width, height), layout="constrained", squeeze=False, **subplots
    )
    plt.close(fig)  # shown once, as the cell's result, not a second time by pyplot
    return fig, axes


def grid(count: int, ncols: int, size=(3.0, 3.0)) -> tuple[Figure, np.ndarray]:
    """A Figure with `count` axes in rows of `ncols`, frames and ticks off."""
    ncols = max(1, min(ncols, count))
    fig, axes = figure(ncols, max(1, math.ceil(count / ncols)), size)
    for ax in axes.flat:
        ax.axis("off")
    return fig, axes.flat


def _keep_one_legend(axes) -> None:
    for ax in list(axes)[1:]:
        if ax.get_legend() is not None:
            ax.get_legend().remove()


def plot_class_counts(data: FaceDataset) -> Figure:
    """Faces per class of each task, one bar per split ('missing' = no label for that task)."""
    import seaborn as sns

    counts = class_counts(data)
    fig, axes = figure(len(TASKS), size=(3.6, 3.2))
    for ax, task in zip(axes[0], TASKS, strict=True):
        sns.barplot(counts[counts.task == task], x="class", y="faces", hue="split", ax=ax)
        ax.set(title=task, xlabel="")
        ax.tick_params(axis="x", labelrotation=60)
    _keep_one_legend(axes[0])
    fig.suptitle("Faces per class and split")
    return fig


def plot_faces_per_image(data: FaceDataset) -> Figure:
    """How many source images hold 1, 2, 3... faces."""
    counts = faces_per_image(data)
    sizes = sorted(counts)
    fig, axes = figure(1, size=(5, 3))
    ax = axes[0, 0]
    ax.bar(sizes, [counts[s] for s in sizes], color="tab:blue")
    ax.set_xticks(sizes)
    ax.set(title="Faces per image", xlabel="faces in the image", ylabel="images")
    return fig


def plot_face_sizes(data: FaceDataset) -> Figure:
    """Histogram of face widths in source-image pixels, with the median marked."""
    fig, axes = figure(1, size=(5, 3))
    ax = axes[0, 0]
    ax.hist(data.face_px, bins=30, color="tab:blue")
    if len(data.face_px):
        median = float(np.median(data.face_px))
        ax.axvline(median, color="black", linestyle="--", label=f"median {median:.0f} px")
        ax.legend()
    ax.set(title="Face sizes", xlabel="face width in the source image (px)", ylabel="faces")
    return fig


def plot_history(run_dir: str | os.PathLike) -> Figure:
    """Loss (top row) and accuracy (bottom row) of each task per epoch, train against val."""
    from frlib.train import read_history

    history = read_history(run_dir)
    fig, axes = figure(len(TASKS), 2, size=(3.4, 2.6), sharex=True)
    for col, task in enumerate(TASKS):
        for row, metric in enumerate(("loss", "accuracy")):
            ax = axes[row, col]
            for prefix, style in (("", "o-"), ("val_", "s--")):
                key = f"{prefix}{task}_{metric}"
                if key in history:
                    label = "val" if prefix else "train"
                    ax.plot(history.epoch + 1, history[key], style, markersize=3, label=label)
            ax.set_title(f"{task} {metric}")
        axes[1, col].set_xlabel("epoch")
    axes[0, 0].legend()
    fig.suptitle(f"Training curves of {Path(run_dir).name}")
    return fig


def plot_confusions(report: dict) -> Figure:
    """One confusion matrix per task (rows: true class, columns: predicted), with counts."""
    import seaborn as sns

    fig, axes = figure(len(TASKS), size=(4.2, 3.8))
    for ax, task in zip(axes[0], TASKS, strict=True):
        entry = report[task]
        names = entry["classes"]
        matrix = np.asarray(entry["confusion"])
        sns.heatmap(matrix, annot=True, fmt="d", cmap="Blues", cbar=False, square=True, ax=ax)
        ax.set_xticks(np.arange(len(names)) + 0.5, names, rotation=60)
        ax.set_yticks(np.arange(len(names)) + 0.5, names, rotation=0)
        ax.set(title=f"{task}: accuracy {entry['accuracy']:.2f}", xlabel="predicted", ylabel="true")
    return fig


def baseline_f1(entry: dict) -> list[float]:
    """Per-class F1 of always answering the baseline class: 2s/(s+N) for it, 0 for the rest."""
    support = np.asarray(entry["class_support"], dtype=float)
    total = support.sum()
    f1 = np.zeros_like(support)
    b = entry["classes"].index(entry["baseline_class"])
    if total:
        f1[b] = 2 * support[b] / (support[b] + total)
    return f1.tolist()


def plot_f1_vs_baseline(report: dict) -> Figure:
    """Per-class F1 of the model beside the majority-class baseline's, one panel per task."""
    import pandas as pd
    import seaborn as sns

    fig, axes = figure(len(TASKS), size=(3.6, 3.2), sharey=True)
    for ax, task in zip(axes[0], TASKS, strict=True):
        entry = report[task]
        rows = [
            {"class": name, "F1": value, "F1 of": source}
            for source, values in (
                ("model", entry["f1"]),
                ("majority baseline", baseline_f1(entry)),
            )
            for name, value in zip(entry["classes"], values, strict=True)
        ]
        sns.barplot(pd.DataFrame(rows), x="class", y="F1", hue="F1 of", ax=ax)
        title = f"{task}: macro-F1 {entry['macro_f1']:.2f} vs {entry['baseline_macro_f1']:.2f}"
        ax.set(title=title, xlabel="", ylim=(0, 1))
        ax.tick_params(axis="x", labelrotation=60)
    _keep_one_legend(axes[0])
    return fig


def _group_table(groups: dict, group_task: str):
    """Accuracy and support of every task (columns) within each class of `group_task` (rows)."""
    import pandas as pd

    names = [g for g in groups if g.startswith(f"{group_task}=")]
    index = [g.split("=", 1)[1] for g in names]

    def table(field):
        values = [[groups[g].get(t, {}).get(field, np.nan) for t in TASKS] for g in names]
        return pd.DataFrame(values, index=index, columns=list(TASKS), dtype=float)

    return table("accuracy"), table("support")


def plot_groups(report: dict) -> Figure:
    """Each task's test accuracy within each ethnicity and each gender (n = faces in the cell)."""
    import seaborn as sns

    fig, axes = figure(len(GROUP_TASKS), size=(4.6, 3.6))
    for ax, group_task in zip(axes[0], GROUP_TASKS, strict=True):
        accuracy, support = _group_table(report.get("groups", {}), group_task)
        ax.set(title=f"Accuracy by {group_task}")
        if accuracy.empty:
            ax.text(0.5, 0.5, f"no {group_task} labels in the test split", ha="center")
            continue
        notes = [
            [f"{a:.2f}\nn={n:.0f}" if n == n else "" for a, n in zip(ra, rs, strict=True)]
            for ra, rs in zip(accuracy.values, support.values, strict=True)
        ]
        sns.heatmap(accuracy, annot=np.array(notes), fmt="", vmin=0, vmax=1, cmap="RdYlGn", ax=ax)
        ax.set(xlabel="task", ylabel=group_task)
    return fig
