"""Each chart and picture grid draws from the smoke dataset, a smoke run or a scored report."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle

from frlib import gallery, plots
from frlib.evaluate import evaluate_predictions
from frlib.files import write_json
from frlib.labels import TASKS
from frlib.train import read_history


def titles(fig: Figure) -> list[str]:
    return [ax.get_title() for ax in fig.axes if ax.get_title()]


def bar_total(ax) -> float:
    return sum(bar.get_height() for container in ax.containers for bar in container)


@pytest.fixture(scope="module")
def report(smoke_data):
    """A scored report of random predictions on the smoke test split (no model needed)."""
    rows = smoke_data.split["test"]
    rng = np.random.default_rng(0)
    probs = {t: rng.dirichlet(np.ones(len(c)), size=len(rows)) for t, c in TASKS.items()}
    return evaluate_predictions(probs, {t: v[rows] for t, v in smoke_data.labels.items()})


def test_class_counts_count_every_face_once_per_task(smoke_data):
    fig = plots.plot_class_counts(smoke_data)
    assert titles(fig) == list(TASKS)
    for ax in fig.axes:  # classes plus 'missing', over all splits
        assert bar_total(ax) == len(smoke_data)


def test_faces_per_image_adds_up_to_the_faces(smoke_data):
    fig = plots.plot_faces_per_image(smoke_data)
    (ax,) = fig.axes
    assert ax.get_title() == "Faces per image"
    sizes = [bar.get_x() + bar.get_width() / 2 for bar in ax.patches]
    counts = [bar.get_height() for bar in ax.patches]
    assert sum(counts) == len(set(smoke_data.groups))
    assert round(sum(s * c for s, c in zip(sizes, counts, strict=True))) == len(smoke_data)


def test_face_sizes_histogram_holds_every_face(smoke_data):
    fig = plots.plot_face_sizes(smoke_data)
    (ax,) = fig.axes
    assert ax.get_title() == "Face sizes"
    assert "px" in ax.get_xlabel()
    assert sum(bar.get_height() for bar in ax.patches) == len(smoke_data)


def test_source_images_draw_a_box_per_face(smoke_data):
    fig = gallery.show_source_images(smoke_data, n=4)
    shown = [ax for ax in fig.axes if ax.images]
    assert len(shown) == 4
    images = list(dict.fromkeys(r.image for r in smoke_data.records))[:4]
    for ax, image in zip(shown, images, strict=True):
        boxes = [p for p in ax.patches if isinstance(p, Rectangle)]
        assert len(boxes) == sum(r.image == image for r in smoke_data.records)
        assert ax.get_title() in image
        assert all(" / " in t.get_text() for t in ax.texts)  # the four labels of each face


def test_crops_per_class_give_a_row_per_class(smoke_data):
    fig = gallery.show_crops_per_class(smoke_data, "gender", per_class=3)
    assert len(fig.axes) == 2 * 3
    assert fig.axes[0].get_ylabel().startswith("male")
    assert fig.axes[3].get_ylabel().startswith("female")
    assert all(ax.images for ax in fig.axes)


def test_history_plots_train_and_val_per_task(smoke_run):
    fig = plots.plot_history(smoke_run)
    expected = [f"{t} {m}" for m in ("loss", "accuracy") for t in TASKS]
    assert sorted(titles(fig)) == sorted(expected)
    for ax in fig.axes:
        assert [line.get_label() for line in ax.lines] == ["train", "val"]
        assert len(ax.lines[0].get_xdata()) == len(read_history(smoke_run))  # one point an epoch


def test_confusions_show_counts_with_class_names(report):
    fig = plots.plot_confusions(report)
    assert [t.split(":")[0] for t in titles(fig)] == list(TASKS)
    for ax, (task, classes) in zip(fig.axes, TASKS.items(), strict=True):
        assert [label.get_text() for label in ax.get_xticklabels()] == list(classes)
        counts = [int(t.get_text()) for t in ax.texts]
        assert counts == np.asarray(report[task]["confusion"]).ravel().tolist()


def test_baseline_f1_only_scores_the_baseline_class():
    entry = {"classes": ["a", "b", "c"], "class_support": [6, 3, 1], "baseline_class": "a"}
    assert plots.baseline_f1(entry) == pytest.approx([2 * 6 / (6 + 10), 0, 0])


def test_f1_vs_baseline_has_model_and_baseline_bars(report):
    fig = plots.plot_f1_vs_baseline(report)
    assert all("macro-F1" in t for t in titles(fig))
    for ax, classes in zip(fig.axes, TASKS.values(), strict=True):
        assert len(ax.containers) == 2  # model, majority baseline
        assert all(len(c) == len(classes) for c in ax.containers)


def test_groups_show_accuracy_per_ethnicity_and_gender(report):
    fig = plots.plot_groups(report)
    assert [t for t in titles(fig)] == ["Accuracy by ethnicity", "Accuracy by gender"]
    gender = fig.axes[titles(fig).index("Accuracy by gender")]
    assert [t.get_text() for t in gender.get_yticklabels()] == ["male", "female"]
    assert any("n=" in t.get_text() for t in gender.texts)


def test_groups_say_when_there_are_none():
    fig = plots.plot_groups({"groups": {}})
    assert any("no gender labels" in t.get_text() for ax in fig.axes for t in ax.texts)


def test_test_predictions_mark_errors_in_red(smoke_run):
    fig = gallery.show_test_predictions(smoke_run, n=8)
    faces = [ax for ax in fig.axes if ax.images]
    assert len(faces) == 8
    for ax in faces:
        lines = [t for t in ax.texts]
        assert [t.get_text().split(":")[0] for t in lines] == list(TASKS)
        red = [t for t in lines if t.get_color() == gallery.WRONG]
        assert all("(" in t.get_text() for t in red)  # the true label, in brackets
        frame = ax.spines["top"].get_edgecolor()
        assert (frame[:3] == (1.0, 0.0, 0.0)) == bool(red)


def test_test_predictions_say_so_when_the_test_images_are_gone(smoke_run, tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    shutil.copy(smoke_run / "config.json", run)
    write_json(run / "split.json", {"train": [], "val": [], "test": ["synthetic|/gone.png"]})
    with pytest.raises(ValueError, match="none of the test images .* are in"):
        gallery.show_test_predictions(run, n=2)
