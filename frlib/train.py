"""Training: one call turns a config into a run directory that can be reloaded or resumed."""

from __future__ import annotations

import csv
import math
import os
from pathlib import Path

import keras
import numpy as np

from frlib.config import Config
from frlib.data import FaceDataset, prepare
from frlib.files import read_json, write_json
from frlib.labels import MISSING, TASKS, vocabulary
from frlib.splits import split_keys

MAX_CLASS_WEIGHT = 10.0


def set_seed(seed: int) -> None:
    """Seed Python, NumPy and TensorFlow from the run's one seed."""
    keras.utils.set_random_seed(seed)


def class_weights(labels: dict[str, np.ndarray]) -> dict[str, list[float]]:
    """Balanced per-class loss weights from training labels, capped so a 6-face class can't explode."""
    result = {}
    for task, classes in TASKS.items():
        known = labels[task][labels[task] != MISSING]
        counts = np.bincount(known, minlength=len(classes)).astype(float)
        weights = np.where(counts > 0, len(known) / (len(classes) * np.maximum(counts, 1)), 1.0)
        result[task] = [
            round(float(w), 4) for w in np.clip(weights, 1 / MAX_CLASS_WEIGHT, MAX_CLASS_WEIGHT)
        ]
    return result


def _schedule(config: Config):
    """Cosine decay by epoch: a pure function of the epoch, so a resumed run gets the same rates."""

    def rate(epoch: int, _lr=None) -> float:
        return config.learning_rate * 0.5 * (1 + math.cos(math.pi * epoch / max(config.epochs, 1)))

    return rate


def _best_so_far(history: Path) -> float:
    """Lowest val_loss already logged: a resumed run keeps the best checkpoint it had."""
    if not history.is_file():
        return math.inf
    with history.open() as f:
        values = [float(row["val_loss"]) for row in csv.DictReader(f) if row.get("val_loss")]
    return min(values, default=math.inf)


def _callbacks(run: Path, config: Config, verbose: int) -> list:
    best = keras.callbacks.ModelCheckpoint(run / "checkpoints" / "best.keras", save_best_only=True)
    best.best = _best_so_far(run / "history.csv")
    return [
        keras.callbacks.BackupAndRestore(str(run / "backup"), delete_checkpoint=False),
        keras.callbacks.ModelCheckpoint(run / "checkpoints" / "last.keras"),
        best,
        keras.callbacks.CSVLogger(str(run / "history.csv"), append=True),
        keras.callbacks.TensorBoard(str(run / "logs"), write_graph=False),
        keras.callbacks.LearningRateScheduler(_schedule(config)),
        keras.callbacks.EarlyStopping(patience=config.patience, restore_best_weights=False),
    ]


def _save_run_files(run: Path, config: Config, data: FaceDataset, weights) -> None:
    run.mkdir(parents=True, exist_ok=True)
    config.save(run / "config.json")
    write_json(run / "vocabulary.json", vocabulary())
    write_json(run / "split.json", split_keys(data.groups, data.split))
    write_json(run / "class_weights.json", weights)
    train = data.split["train"]
    majority = {}
    for task, classes in TASKS.items():
        known = data.labels[task][train]
        known = known[known != MISSING]
        majority[task] = (
            int(np.bincount(known, minlength=len(classes)).argmax()) if len(known) else 0
        )
    write_json(run / "majority.json", majority)
    write_json(run / "report.json", data.report)


def read_history(run_dir):
    """A run's history.csv as a DataFrame, one row per epoch (a resumed epoch's last entry)."""
    import pandas as pd

    history = pd.read_csv(Path(run_dir) / "history.csv")
    return history.drop_duplicates("epoch", keep="last").sort_values("epoch")


def save_model(model, path: Path) -> None:
    """Save a .keras file atomically: a killed save never leaves a broken model behind."""
    tmp = path.with_name(f".{path.stem}.{os.getpid()}.tmp.keras")
    model.save(tmp)
    os.replace(tmp, path)


def train(config: Config, *, data: FaceDataset | None = None, verbose: int | str = "auto") -> Path:
    """Train `config` into the run directory `config.out`, resuming it if it was interrupted.

    Args:
        config: the run's config; `config.out` is the run directory.
        data: an already prepared dataset (default: `prepare(config)`, reusing a saved split).
        verbose: Keras progress (1 = bar, 2 = one line per epoch).
    Returns:
        The run directory, holding model.keras, config.json, vocabulary.json, split.json,
        class_weights.json, report.json, history.csv, checkpoints/ and logs/.
    """
    from frlib.model import build_model
    from frlib.pipeline import make_dataset
    from frlib.scale import strategy_scope

    run = Path(config.out)
    saved_split = read_json(run / "split.json") if (run / "split.json").is_file() else None
    set_seed(config.seed)
    data = data or prepare(config, split=saved_split)
    if len(data.split["train"]) == 0 or len(data.split["val"]) == 0:
        raise ValueError(f"not enough faces to train: splits {data.report['splits']}")
    weights = class_weights({t: v[data.split["train"]] for t, v in data.labels.items()})
    _save_run_files(run, config, data, weights)
    with strategy_scope(config) as replicas:
        model = build_model(config, weights if config.class_weights else None)
    batch = config.batch_size * replicas
    model.fit(
        make_dataset(data, "train", config, batch_size=batch),
        validation_data=make_dataset(data, "val", config, batch_size=batch),
        epochs=config.epochs,
        callbacks=_callbacks(run, config, verbose),
        verbose=verbose,
    )
    best = run / "checkpoints" / "best.keras"
    if best.is_file():
        model.load_weights(best)
    save_model(model, run / "model.keras")
    return run


def ensure_run(config: Config, *, verbose: int | str = "auto") -> Path:
    """`config.out` if it already holds a trained model, else `train(config)` into it."""
    run = Path(config.out)
    if (run / "model.keras").is_file():
        return run
    return train(config, verbose=verbose)
