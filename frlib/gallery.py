"""Picture grids for the notebooks: source photos with their boxes, faces per class, test faces.

Like `frlib.plots`, every function returns a matplotlib Figure.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle

from frlib.data import FaceDataset
from frlib.images import ImageError, load_image
from frlib.labels import MISSING, TASKS
from frlib.plots import figure, grid
from frlib.sources import FaceRecord

RIGHT, WRONG, UNKNOWN = "black", "red", "grey"


def short_labels(labels: dict[str, str | None]) -> str:
    """'happy / 20_30 / asian / female', with '?' for a missing label."""
    return " / ".join(labels.get(t) or "?" for t in TASKS)


def local_image(image: str, cache_dir: str | os.PathLike | None = None) -> Path | None:
    """The local file of a record's image: the path itself, or a URL's copy in the download cache."""
    if not image.startswith(("http://", "https://")):
        return Path(image)
    from frlib.config import default_cache_dir
    from frlib.download import cached_path

    return cached_path(image, Path(cache_dir or default_cache_dir()) / "images")


def _draw_photo(ax, image: str, records: list[FaceRecord], cache_dir) -> None:
    """One source photo with every face's box and labels."""
    path = local_image(image, cache_dir)
    ax.set_title(Path(image).name[:40], fontsize=8)
    try:
        rgb = load_image(path if path else image)
    except ImageError as exc:
        ax.text(0.5, 0.5, f"cannot show:\n{exc}", ha="center", va="center", wrap=True, fontsize=7)
        return
    ax.imshow(rgb)
    height, width = rgb.shape[:2]
    for record in records:
        x0, y0, x1, y1 = record.box or (0.0, 0.0, 1.0, 1.0)
        x0, y0, x1, y1 = x0 * width, y0 * height, x1 * width, y1 * height
        ax.add_patch(Rectangle((x0, y0), x1 - x0, y1 - y0, fill=False, color="lime", linewidth=2))
        note = dict(facecolor="black", alpha=0.6, pad=1, linewidth=0)
        ax.text(
            x0, y0, short_labels(record.labels), color="white", fontsize=6, va="bottom", bbox=note
        )


def show_source_images(
    data: FaceDataset, n: int = 6, cache_dir: str | os.PathLike | None = None
) -> Figure:
    """The first `n` source photos with their face boxes and labels (emotion / age / ethnicity / gender).

    Args:
        data: a prepared dataset; its records give the images (local paths or cached URLs).
        n: how many photos.
        cache_dir: the download cache of URL images (default: the config default).
    """
    photos: dict[str, list[FaceRecord]] = {}
    for record in data.records:
        if record.image in photos or len(photos) < n:
            photos.setdefault(record.image, []).append(record)
    fig, axes = grid(len(photos), ncols=3, size=(4.0, 3.6))
    for ax, (image, records) in zip(axes, photos.items(), strict=False):
        _draw_photo(ax, image, records, cache_dir)
    fig.suptitle("Source photos: emotion / age / ethnicity / gender per face")
    return fig


def show_crops_per_class(data: FaceDataset, task: str, per_class: int = 6) -> Figure:
    """A row of face crops for each class of `task`, spread over the dataset (count in the label)."""
    classes = TASKS[task]
    fig, axes = figure(per_class, len(classes), size=(1.2, 1.25))
    for row, name in enumerate(classes):
        faces = np.flatnonzero(data.labels[task] == row)
        picks = faces[np.linspace(0, len(faces) - 1, min(per_class, len(faces))).astype(int)]
        for col, ax in enumerate(axes[row]):
            ax.set_xticks([])
            ax.set_yticks([])
            ax.set_frame_on(False)
            if col < len(picks):
                ax.imshow(data.crops[picks[col]])
        axes[row, 0].set_ylabel(f"{name}\n({len(faces)})", rotation=0, ha="right", va="center")
    fig.suptitle(f"{task}: faces of each class")
    return fig


def _test_faces(run_dir: Path, n: int):
    """The first `n` test faces of a run: crops, true labels and predicted probabilities."""
    from frlib.config import Config
    from frlib.data import prepare
    from frlib.evaluate import predict_probs
    from frlib.files import read_json
    from frlib.predict import load_model

    config = Config.load(run_dir / "config.json")
    data = prepare(config, split=read_json(run_dir / "split.json"), progress=False)
    rows = data.split["test"][:n]
    if len(rows) == 0:
        raise ValueError(
            f"none of the test images in {run_dir / 'split.json'} are in {config.data}: "
            "the data moved or changed since training; evaluate with the data it was trained on"
        )
    crops = np.asarray(data.crops[rows])
    probs = predict_probs(load_model(run_dir), crops)
    return crops, {t: v[rows] for t, v in data.labels.items()}, probs


def _caption(ax, predicted: dict[str, int], true: dict[str, int]) -> bool:
    """Write one line per task under the face, red where wrong; True if any task is wrong."""
    wrong = False
    for line, (task, classes) in enumerate(TASKS.items()):
        guess, truth = predicted[task], true[task]
        text, colour = f"{task}: {classes[guess]}", RIGHT
        if truth == MISSING:
            text, colour = f"{text} (?)", UNKNOWN
        elif guess != truth:
            text, colour, wrong = f"{text} ({classes[truth]})", WRONG, True
        below = (0, -3 - 9 * line)  # points under the picture's bottom-left corner
        ax.annotate(
            text,
            (0, 0),
            xycoords="axes fraction",
            xytext=below,
            textcoords="offset points",
            va="top",
            color=colour,
            fontsize=7,
        )
    return wrong


def show_test_predictions(run_dir: str | os.PathLike, n: int = 16) -> Figure:
    """Test faces of a run with predicted labels; wrong ones in red with the true label in
    brackets, and a red frame round any face with an error ('?' = no true label)."""
    crops, labels, probs = _test_faces(Path(run_dir), n)
    fig, axes = grid(len(crops), ncols=4, size=(2.2, 3.0))
    for i, ax in enumerate(axes):
        if i >= len(crops):
            continue
        ax.axis("on")
        ax.set_xticks([])
        ax.set_yticks([])
        ax.imshow(crops[i])
        predicted = {t: int(np.argmax(probs[t][i])) for t in TASKS}
        wrong = _caption(ax, predicted, {t: int(labels[t][i]) for t in TASKS})
        for spine in ax.spines.values():
            spine.set(color=WRONG if wrong else "white", linewidth=3)
    fig.suptitle(f"Test faces of {Path(run_dir).name}: predicted (true); red = wrong")
    return fig
