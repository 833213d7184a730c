"""Evaluation: per-task accuracy, macro-F1, per-class scores, confusion and the majority baseline."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from frlib.labels import MISSING, TASKS

GROUP_TASKS = ("ethnicity", "gender")


def confusion(true: np.ndarray, pred: np.ndarray, k: int) -> np.ndarray:
    """k x k counts, rows = true class, columns = predicted class."""
    return np.bincount(true * k + pred, minlength=k * k).reshape(k, k)


def scores(matrix: np.ndarray) -> dict:
    """Accuracy, macro-F1 (over classes present in truth or prediction) and per-class scores."""
    tp = np.diag(matrix).astype(float)
    support, predicted = matrix.sum(1), matrix.sum(0)
    precision = np.divide(tp, predicted, out=np.zeros_like(tp), where=predicted > 0)
    recall = np.divide(tp, support, out=np.zeros_like(tp), where=support > 0)
    denom = support + predicted
    f1 = np.divide(2 * tp, denom, out=np.zeros_like(tp), where=denom > 0)
    total = matrix.sum()
    return {
        "accuracy": float(tp.sum() / total) if total else float("nan"),
        "macro_f1": float(f1[denom > 0].mean()) if (denom > 0).any() else float("nan"),
        "support": int(total),
        "precision": precision.tolist(),
        "recall": recall.tolist(),
        "f1": f1.tolist(),
        "class_support": support.astype(int).tolist(),
    }


def evaluate_predictions(
    probs: dict[str, np.ndarray],
    labels: dict[str, np.ndarray],
    majority: dict[str, int] | None = None,
) -> dict:
    """Score predicted probabilities against labels (MISSING ignored), baseline beside each task.

    Args:
        probs: (N, classes) probabilities per task.
        labels: class id per face per task.
        majority: the baseline's constant class per task (default: the most common label here).
    Returns:
        {task: {accuracy, macro_f1, support, baseline_accuracy, baseline_macro_f1, classes,
        per-class precision/recall/f1, confusion}, "groups": {...}}.
    """
    report = {}
    predicted = {t: np.argmax(p, axis=1) for t, p in probs.items()}
    for task, classes in TASKS.items():
        known = labels[task] != MISSING
        true, pred = labels[task][known], predicted[task][known]
        k = len(classes)
        matrix = confusion(true, pred, k)
        entry = {"classes": list(classes), **scores(matrix), "confusion": matrix.tolist()}
        if majority and task in majority:
            base_class = majority[task]
        else:
            base_class = int(np.bincount(true, minlength=k).argmax()) if len(true) else 0
        base = scores(confusion(true, np.full_like(true, base_class), k))
        entry.update(
            baseline_class=classes[base_class],
            baseline_accuracy=base["accuracy"],
            baseline_macro_f1=base["macro_f1"],
        )
        report[task] = entry
    report["groups"] = group_breakdown(predicted, labels)
    return report


def group_breakdown(predicted: dict[str, np.ndarray], labels: dict[str, np.ndarray]) -> dict:
    """Each task's accuracy and support within each ethnicity and each gender, where labelled."""
    out: dict = {}
    for group_task in GROUP_TASKS:
        for gid, gname in enumerate(TASKS[group_task]):
            in_group = labels[group_task] == gid
            row = {}
            for task in TASKS:
                known = in_group & (labels[task] != MISSING)
                if known.any():
                    hits = predicted[task][known] == labels[task][known]
                    row[task] = {"accuracy": float(hits.mean()), "support": int(known.sum())}
            if row:
                out[f"{group_task}={gname}"] = row
    return out


def predict_probs(model, images: np.ndarray, batch_size: int = 256) -> dict[str, np.ndarray]:
    """Probabilities per task for uint8 crops, batch by batch (never the whole set as float32)."""
    parts: dict[str, list[np.ndarray]] = {t: [] for t in TASKS}
    for start in range(0, len(images), batch_size):
        batch = np.asarray(images[start : start + batch_size], dtype=np.float32)
        out = model.predict_on_batch(batch)
        for task in TASKS:
            parts[task].append(np.asarray(out[task]))
    return {
        t: np.concatenate(p) if p else np.zeros((0, len(TASKS[t])), np.float32)
        for t, p in parts.items()
    }


def evaluate_run(run_dir, data: list[str] | None = None, split: str = "test") -> dict:
    """Evaluate a run directory on its own test split, or on all faces of other `data` specs.

    Args:
        run_dir: a directory written by `frlib.train.train`.
        data: specs to evaluate on; default the run's own data, restricted to `split`.
        split: which split of the run's own data to score.
    Returns:
        The report of `evaluate_predictions`, plus "data" and "split" keys.
    """
    from frlib.config import Config
    from frlib.files import read_json
    from frlib.predict import load_model
    from frlib.sources import absolute_spec

    run = Path(run_dir)
    config = Config.load(run / "config.json")
    data = None if data is None else [absolute_spec(spec) for spec in data]
    own = data is None or data == [absolute_spec(spec) for spec in config.data]
    if not own:
        config = config.replace(data=list(data))
    crops, labels = _faces_to_score(config, run, split if own else None)
    probs = predict_probs(load_model(run), crops)
    majority_path = run / "majority.json"
    majority = read_json(majority_path) if majority_path.is_file() else None
    report = evaluate_predictions(probs, labels, majority)
    report["data"] = list(config.data)
    report["split"] = split if own else "all"
    return report


def _faces_to_score(config, run: Path, split: str | None):
    """Crops and labels of the run's `split` (its saved split), or of all faces when None."""
    from frlib.data import prepare
    from frlib.files import read_json
    from frlib.records_io import read_examples, tfrecord_dir

    folder = tfrecord_dir(config.data)
    if folder is not None:  # the split is baked into the shards
        batches = list(read_examples(folder, split or "test", config.image_size))
        crops = np.concatenate([b["image"].numpy() for b in batches]) if batches else []
        labels = {t: np.concatenate([b[t].numpy() for b in batches]) for t in TASKS}
        return np.asarray(crops, np.uint8).reshape(-1, *([config.image_size] * 2), 3), labels
    saved = read_json(run / "split.json")
    dataset = prepare(config, split=saved if split else None, progress=False)
    if split:
        rows = dataset.split[split]
    else:  # other data: leave out any face of an image the run trained or validated on
        seen = set(saved.get("train", [])) | set(saved.get("val", []))
        rows = np.array([i for i, g in enumerate(dataset.groups) if str(g) not in seen], int)
        if len(rows) < len(dataset):
            print(f"left out {len(dataset) - len(rows)} faces of images the run trained on")
    crops = dataset.crops[rows] if len(rows) else np.zeros((0, *dataset.crops.shape[1:]), np.uint8)
    return crops, {t: v[rows] for t, v in dataset.labels.items()}


def report_table(report: dict):
    """One row per task: accuracy and macro-F1 beside the majority baseline (a pandas DataFrame)."""
    import pandas as pd

    rows = [
        {
            "task": t,
            "support": report[t]["support"],
            "accuracy": report[t]["accuracy"],
            "baseline_accuracy": report[t]["baseline_accuracy"],
            "macro_f1": report[t]["macro_f1"],
            "baseline_macro_f1": report[t]["baseline_macro_f1"],
        }
        for t in TASKS
    ]
    return pd.DataFrame(rows).set_index("task").round(3)
