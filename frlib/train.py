"""Training: one call turns a config into a run directory that can be reloaded or resumed."""

from __future__ import annotations

import csv
import dataclasses
import math
import os
from collections.abc import Callable
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


def label_counts(labels: dict[str, np.ndarray]) -> dict[str, list[int]]:
    """Faces per class of each task (missing labels left out)."""
    return {
        task: np.bincount(labels[task][labels[task] != MISSING], minlength=len(classes)).tolist()
        for task, classes in TASKS.items()
    }


def weights_from_counts(counts: dict[str, list[int]]) -> dict[str, list[float]]:
    """Balanced per-class loss weights, capped so a 6-face class can't explode."""
    result = {}
    for task, per_class in counts.items():
        per_class = np.asarray(per_class, dtype=float)
        total, k = per_class.sum(), len(per_class)
        weights = np.where(per_class > 0, total / (k * np.maximum(per_class, 1)), 1.0)
        result[task] = [
            round(float(w), 4) for w in np.clip(weights, 1 / MAX_CLASS_WEIGHT, MAX_CLASS_WEIGHT)
        ]
    return result


def class_weights(labels: dict[str, np.ndarray]) -> dict[str, list[float]]:
    """Balanced per-class loss weights from training labels, capped so a 6-face class can't explode."""
    return weights_from_counts(label_counts(labels))


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


@dataclasses.dataclass
class _Inputs:
    """What training reads: batches per split, and the facts about them saved with the run."""

    batches: Callable  # (split, global batch size) -> tf.data.Dataset
    sizes: dict[str, int]  # faces per split
    train_counts: dict[str, list[int]]  # faces per class of each task, training split
    split: dict[str, list[str]]  # group keys per split
    report: dict


SPLIT_FIELDS = ("data", "seed", "val_fraction", "test_fraction")


def _saved_split(config: Config, run: Path) -> dict | None:
    """The split of an earlier (interrupted) run in `run`, if it was drawn for the same data.

    Raises:
        ValueError: `run` holds a run of other data or another seed: use a new --out.
    """
    if not (run / "split.json").is_file():
        return None
    if (run / "config.json").is_file():
        saved = Config.load(run / "config.json")
        changed = [f for f in SPLIT_FIELDS if getattr(saved, f) != getattr(config, f)]
        if changed:
            raise ValueError(
                f"{run} holds a run with other {', '.join(changed)}; resuming it would mix "
                "splits. Choose a new --out (or delete that folder)."
            )
    return read_json(run / "split.json")


def _inputs(config: Config, run: Path, data: FaceDataset | None) -> _Inputs:
    """Stream the shards of a `tfrecord:DIR` spec (split baked in), else prepare the data."""
    from frlib.pipeline import make_dataset
    from frlib.records_io import read_meta, read_tfrecords, tfrecord_dir

    folder = tfrecord_dir(config.data) if data is None else None
    if folder:
        meta = read_meta(folder)
        return _Inputs(
            lambda split, batch: read_tfrecords(folder, split, config, batch_size=batch),
            meta["counts"],
            meta["label_counts"]["train"],
            meta["split"],
            meta["report"],
        )
    saved_split = _saved_split(config, run)
    data = data or prepare(config, split=saved_split)
    train = data.split["train"]
    return _Inputs(
        lambda split, batch: make_dataset(data, split, config, batch_size=batch),
        {name: len(rows) for name, rows in data.split.items()},
        label_counts({t: v[train] for t, v in data.labels.items()}),
        split_keys(data.groups, data.split),
        data.report,
    )


def _batches(inputs: _Inputs, batch: int, replicas: int) -> tuple:
    """Train and val batches of at most `batch` faces that split evenly across the replicas.

    With several replicas every batch must: an uneven last batch can leave a replica with no
    faces (BatchNorm's statistics of nothing are NaN, and TF 2.21 fails on an empty batch),
    and Keras builds the model by averaging the first batch's per-replica parts, which fails
    when they differ in size. So the batch is a multiple of the replicas, no bigger than the
    split, and the last few faces (fewer than one batch) are left out of each pass.
    """
    result = []
    for split in ("train", "val"):
        size = min(batch, inputs.sizes[split] // replicas * replicas)
        if size == 0:
            raise ValueError(
                f"{split} split has {inputs.sizes[split]} faces, fewer than the {replicas} replicas"
            )
        batches = inputs.batches(split, size)
        result.append(batches.rebatch(size, drop_remainder=True) if replicas > 1 else batches)
    return tuple(result)


def _save_run_files(run: Path, config: Config, inputs: _Inputs, weights) -> None:
    run.mkdir(parents=True, exist_ok=True)
    config.save(run / "config.json")
    write_json(run / "vocabulary.json", vocabulary())
    write_json(run / "split.json", inputs.split)
    write_json(run / "class_weights.json", weights)
    majority = {task: int(np.argmax(counts)) for task, counts in inputs.train_counts.items()}
    write_json(run / "majority.json", majority)
    write_json(run / "report.json", inputs.report)


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

    The strategy, mixed precision and XLA come from `config` (frlib.scale); the global batch is
    `config.batch_size` per replica. Data: `config.data`'s specs, or with a single
    `tfrecord:DIR` spec the shards exported there (streamed; their split is used).

    Args:
        config: the run's config; `config.out` is the run directory.
        data: an already prepared dataset (default: `prepare(config)`, reusing a saved split).
        verbose: Keras progress (1 = bar, 2 = one line per epoch).
    Returns:
        The run directory, holding model.keras, config.json, vocabulary.json, split.json,
        class_weights.json, report.json, run.json (strategy, replicas, precision),
        history.csv, checkpoints/ and logs/.
    """
    from frlib.model import build_model
    from frlib.scale import strategy_scope
    from frlib.sources import absolute_spec

    config = config.replace(data=[absolute_spec(spec) for spec in config.data])
    run = Path(config.out)
    set_seed(config.seed)
    inputs = _inputs(config, run, data)
    if not inputs.sizes.get("train") or not inputs.sizes.get("val"):
        raise ValueError(f"not enough faces to train: splits {inputs.sizes}")
    weights = weights_from_counts(inputs.train_counts)
    _save_run_files(run, config, inputs, weights)
    with strategy_scope(config) as scale:  # puts the float32 policy back on exit
        batch = config.batch_size * scale.replicas
        write_json(run / "run.json", {**scale.describe(), "global_batch": batch})
        model = build_model(
            config, weights if config.class_weights else None, jit_compile=scale.jit_compile
        )
        train_batches, val_batches = _batches(inputs, batch, scale.replicas)
        model.fit(
            train_batches,
            validation_data=val_batches,
            epochs=config.epochs,
            callbacks=_callbacks(run, config, verbose),
            verbose=verbose,
            shuffle=False,  # the tf.data pipeline shuffles (train only)
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
