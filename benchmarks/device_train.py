"""Train frlib's default model (ResNet) on real faces with Keras 3 on any backend, for a GPU box.

Made for a machine with JAX but no TensorFlow (KERAS_BACKEND=jax): it reads the JPEG crops
that benchmarks/export_faces.py wrote (.devdata/faces.npz), builds the model with
`frlib.model.build_model`, and trains it inside a wrapper model whose first layer augments
on the accelerator (flip, rotation, zoom, translation, brightness, contrast, random
low resolution, random greyscale). Only the inner frlib model is saved, in the
backend-independent .keras format, so `frlib.predict.load_model` reads it under TensorFlow.

The cosine learning-rate schedule runs over the planned epochs: --epochs 0 (the default) plans,
after timing the second epoch, as many epochs as fit in `--minutes` (at most --max-epochs);
--epochs N plans N and cuts the plan if it does not fit. The weights with the lowest val loss
are kept, and saved to model.keras about every --save-every seconds and at the end.

Writes to --out (default $OUT, else runs/device): model.keras, config.json (the frlib Config),
history.csv, log.txt, report.json (test split scores, also per source) and check.npz (32 test
crops with the saved model's probabilities under this backend; benchmarks/eval_npz.py compares
them after loading model.keras elsewhere). A model.keras over 15 MiB is left as
model.keras.part0, .part1, ... (the device tool returns files of at most 16 MiB).

    KERAS_BACKEND=jax python benchmarks/device_train.py --data .devdata/faces.npz \
        --minutes 7.5 --width 48 --batch 512 --out $OUT
    KERAS_BACKEND=jax python benchmarks/device_train.py --minutes 1 --epochs 1 --limit 2000
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import math
import os
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

os.environ.setdefault("KERAS_BACKEND", "jax")

import keras  # noqa: E402
import numpy as np  # noqa: E402
from keras import ops  # noqa: E402
from PIL import Image  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from frlib.config import Config  # noqa: E402
from frlib.evaluate import evaluate_predictions  # noqa: E402
from frlib.labels import MISSING, TASKS  # noqa: E402
from frlib.model import build_model, compile_model  # noqa: E402
from frlib.train import class_weights  # noqa: E402

SPLITS = ("train", "val", "test")
LOG_FILE: list[Path] = []  # set once --out is known


def log(*parts) -> None:
    """Print (flushed) and append to OUT/log.txt, so a run killed at its time limit keeps it."""
    line = " ".join(str(p) for p in parts)
    print(line, flush=True)
    for path in LOG_FILE:
        with path.open("a") as f:
            f.write(line + "\n")


# --- data -------------------------------------------------------------------------------------


def _decode(blob: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(blob)).convert("RGB"))


def load_faces(path: Path, limit: int | None, seed: int):
    """uint8 crops (N, S, S, 3), int32 labels per task, split codes, source codes, metadata."""
    raw = np.load(path, allow_pickle=True)
    n = len(raw["jpeg"])
    rows = np.arange(n)
    if limit and limit < n:
        rows = np.sort(np.random.default_rng(seed).permutation(n)[:limit])
    with ThreadPoolExecutor(max_workers=min(16, os.cpu_count() or 2)) as pool:
        images = np.stack(list(pool.map(_decode, raw["jpeg"][rows], chunksize=256)))
    labels = {t: raw[t][rows].astype(np.int32) for t in TASKS}
    meta = {
        "sources": [str(s) for s in raw["sources"]],
        "specs": [str(s) for s in raw["specs"]] if "specs" in raw.files else [],
    }
    return images, labels, raw["split"][rows], raw["source"][rows], meta


class Batches(keras.utils.PyDataset):
    """Full batches of rows: shuffled anew each epoch for training (the remainder dropped, so
    the compiled step sees one shape), in order and padded with unlabelled blanks otherwise."""

    def __init__(self, images, labels, batch, *, train, seed=0, **kwargs):
        super().__init__(**kwargs)
        self.images, self.labels, self.batch, self.train = images, labels, batch, train
        self.rng = np.random.default_rng(seed)
        n = len(images)
        if train:
            self.order = self.rng.permutation(n)
            self.count = n // batch
        else:
            self.count = math.ceil(n / batch)
            pad = self.count * batch - n
            self.images = np.concatenate([images, np.zeros((pad, *images.shape[1:]), np.uint8)])
            self.labels = {
                t: np.concatenate([v, np.full(pad, MISSING, v.dtype)]) for t, v in labels.items()
            }
            self.order = np.arange(len(self.images))
        self.shuffles = 0

    def __len__(self):
        return self.count

    def __getitem__(self, i):
        rows = self.order[i * self.batch : (i + 1) * self.batch]
        return self.images[rows], {t: v[rows] for t, v in self.labels.items()}

    def on_epoch_end(self):
        if self.train:
            self.order = self.rng.permutation(len(self.images))
            self.shuffles += 1


# --- augmentation on the accelerator ---------------------------------------------------------


class Augment(keras.layers.Layer):
    """Random flip, rotation, zoom, translation (one affine warp), low resolution (down to one
    of `lowres_sizes` px and back up), brightness, contrast and greyscale; per image, in
    keras.ops, so it runs on the accelerator inside the compiled train step. Identity when not
    training. Values stay in [0, 255]."""

    def __init__(
        self,
        size,
        *,
        rotation=10.0,
        zoom=0.1,
        translate=0.08,
        brightness=0.15,
        contrast=0.25,
        grey_prob=0.5,
        lowres_prob=0.4,
        lowres_sizes=(20, 24, 28, 32, 40, 48),
        seed=0,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.size, self.rotation, self.zoom, self.translate = size, rotation, zoom, translate
        self.brightness, self.contrast = brightness, contrast
        self.grey_prob, self.lowres_prob = grey_prob, lowres_prob
        self.lowres_sizes = tuple(s for s in lowres_sizes if s < size)
        self.seed_generator = keras.random.SeedGenerator(seed)

    def _uniform(self, n, low, high):
        return keras.random.uniform((n,), low, high, seed=self.seed_generator)

    def call(self, images, training=None):
        x = ops.cast(images, "float32")
        if not training:
            return x
        n, s = ops.shape(x)[0], self.size
        flip = self._uniform(n, 0.0, 1.0) < 0.5
        x = ops.where(flip[:, None, None, None], ops.flip(x, axis=2), x)
        # One affine warp: output pixel (u, v) reads input A @ ((u, v) - c) + c + t.
        angle = self._uniform(n, -1.0, 1.0) * (self.rotation * math.pi / 180)
        scale = self._uniform(n, 1.0 - self.zoom, 1.0 + self.zoom)
        tx = self._uniform(n, -1.0, 1.0) * (self.translate * s)
        ty = self._uniform(n, -1.0, 1.0) * (self.translate * s)
        cos, sin, c = ops.cos(angle) / scale, ops.sin(angle) / scale, (s - 1) / 2.0
        zero = ops.zeros_like(cos)
        transform = ops.stack(
            [
                cos,
                -sin,
                c - cos * c + sin * c + tx,
                sin,
                cos,
                c - sin * c - cos * c + ty,
                zero,
                zero,
            ],
            axis=1,
        )
        x = ops.image.affine_transform(x, transform, interpolation="bilinear", fill_mode="reflect")
        if self.lowres_prob > 0 and self.lowres_sizes:
            apply = self._uniform(n, 0.0, 1.0) < self.lowres_prob
            pick = ops.cast(self._uniform(n, 0.0, float(len(self.lowres_sizes))) * 0.9999, "int32")
            out = x
            for k, small in enumerate(self.lowres_sizes):
                down = ops.image.resize(x, (small, small), interpolation="bilinear", antialias=True)
                up = ops.image.resize(down, (s, s), interpolation="bilinear")
                out = ops.where((apply & (pick == k))[:, None, None, None], up, out)
            x = out
        x = x + self._uniform(n, -self.brightness, self.brightness)[:, None, None, None] * 255.0
        mean = ops.mean(x, axis=(1, 2, 3), keepdims=True)
        factor = self._uniform(n, 1.0 - self.contrast, 1.0 + self.contrast)[:, None, None, None]
        x = (x - mean) * factor + mean
        grey = ops.sum(x * ops.convert_to_tensor([0.299, 0.587, 0.114]), axis=-1, keepdims=True)
        to_grey = self._uniform(n, 0.0, 1.0) < self.grey_prob
        x = ops.where(to_grey[:, None, None, None], ops.broadcast_to(grey, ops.shape(x)), x)
        return ops.clip(x, 0.0, 255.0)


# --- training ---------------------------------------------------------------------------------


class Plan(keras.callbacks.Callback):
    """Cosine learning rate over the planned epochs (after a linear warm-up), the plan fitted to
    the wall-clock budget, the best weights by val loss kept (and saved now and then), one line
    per epoch printed and written to history.csv.

    With --epochs 0 the plan is made after the second epoch (the first includes compiling), as
    many epochs as fit in the budget (at most --max-epochs); the warm-up covers those epochs, so
    the cosine starts from the final plan. With --epochs N the plan is N, cut if it does not fit.
    """

    def __init__(self, inner, args, train_images, out: Path, save):
        super().__init__()
        self.inner, self.args = inner, args
        self.planned = args.epochs or args.max_epochs
        self.train_images, self.out, self.save = train_images, out, save
        self.start = time.perf_counter()
        self.budget = args.minutes * 60
        self.best, self.best_epoch, self.best_weights = math.inf, -1, None
        self.rows: list[dict] = []
        self.last_save = time.perf_counter()
        self.saved_epoch = -1

    def rate(self, epoch):
        warm = min(self.args.warmup, max(self.planned - 1, 0))
        if epoch < warm:
            return self.args.lr * (epoch + 1) / (warm + 1)
        progress = (epoch - warm + 0.5) / max(self.planned - warm, 1)  # the epoch's middle
        return self.args.lr * 0.5 * (1 + math.cos(math.pi * progress))

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch_start = time.perf_counter()
        self.val_s = 0.0
        self.lr = self.rate(epoch)
        self.model.optimizer.learning_rate = self.lr

    def on_test_begin(self, logs=None):
        self.val_start = time.perf_counter()

    def on_test_end(self, logs=None):
        self.val_s += time.perf_counter() - self.val_start

    def on_epoch_end(self, epoch, logs=None):
        now = time.perf_counter()
        epoch_s, elapsed = now - self.epoch_start, now - self.start
        train_s = epoch_s - self.val_s
        logs = {k: float(v) for k, v in (logs or {}).items()}
        row = {"epoch": epoch, "lr": self.lr, "epoch_s": round(epoch_s, 3)}
        row.update(train_s=round(train_s, 3), images_per_s=round(self.train_images / train_s, 1))
        row.update(logs)
        self.rows.append(row)
        val = logs.get("val_loss", math.inf)
        improved = val < self.best
        if improved:
            self.best, self.best_epoch = val, epoch
            self.best_weights = self.inner.get_weights()
        # Re-plan from the epochs after the first (which includes compiling): the epochs left
        # must fit in what is left of the budget.
        if epoch >= 1:
            recent = [r["epoch_s"] for r in self.rows[1:]][-5:]
            per_epoch = max(sum(recent) / len(recent), 1e-3)
            fits = epoch + 1 + int((self.budget - elapsed) / per_epoch)
            if epoch == 1 and not self.args.epochs:
                self.planned = max(min(fits, self.args.max_epochs), epoch + 1)
                log(
                    f"plan: {self.planned} epochs ({per_epoch:.1f}s each) in {self.args.minutes} min"
                )
            elif fits < self.planned:
                log(f"budget: {self.args.minutes} min fits {fits} of {self.planned} epochs")
                self.planned = max(fits, epoch + 1)
        if epoch + 1 >= self.planned or elapsed >= self.budget:
            self.model.stop_training = True
        tasks = "  ".join(
            f"{t[:3]} {logs.get(f'val_{t}_accuracy', float('nan')):.3f}/"
            f"{logs.get(f'val_{t}_macro_f1', float('nan')):.3f}"
            for t in TASKS
        )
        log(
            f"epoch {epoch + 1:3d}/{self.planned} {epoch_s:6.1f}s "
            f"({row['images_per_s']:.0f} img/s) lr {self.lr:.2e} loss {logs.get('loss', 0):.4f} "
            f"val {val:.4f}{' *' if improved else '  '} acc/F1 {tasks}"
        )
        if improved and now - self.last_save > self.args.save_every:
            self.save(self.best_weights)
            self.last_save, self.saved_epoch = time.perf_counter(), epoch
        self.write_history()

    def write_history(self):
        keys = list(dict.fromkeys(k for r in self.rows for k in r))
        with (self.out / "history.csv").open("w", newline="") as f:
            writer = csv.DictWriter(f, keys)
            writer.writeheader()
            writer.writerows(self.rows)


def predict(model, images, batch):
    """Probabilities per task, in full padded batches (one compiled shape)."""
    count = math.ceil(len(images) / batch)
    pad = count * batch - len(images)
    padded = np.concatenate([images, np.zeros((pad, *images.shape[1:]), np.uint8)])
    out = model.predict(padded, batch_size=batch, verbose=0)
    return {t: np.asarray(out[t])[: len(images)] for t in TASKS}


def split_large(path: Path, limit: int = 15 * 2**20) -> None:
    """Replace a file over `limit` bytes by parts of at most `limit` (the device tool returns
    files of at most 16 MiB); `cat NAME.part* > NAME` joins them again."""
    data = path.read_bytes()
    if len(data) <= limit:
        return
    for i in range(0, len(data), limit):
        path.with_name(f"{path.name}.part{i // limit}").write_bytes(data[i : i + limit])
    path.unlink()
    log(f"{path.name} is {len(data) / 2**20:.1f} MiB: split into {path.name}.part*; join with cat")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", default=str(ROOT / ".devdata" / "faces.npz"))
    parser.add_argument("--out", default=os.environ.get("OUT") or str(ROOT / "runs" / "device"))
    parser.add_argument(
        "--width", type=int, default=48, help="48: 2.9M parameters, an 11 MB model.keras"
    )
    parser.add_argument(
        "--epochs", type=int, default=0, help="planned, cut to the budget; 0: as many as fit"
    )
    parser.add_argument("--max-epochs", type=int, default=200, help="cap for --epochs 0")
    parser.add_argument("--minutes", type=float, default=8.0, help="training wall-clock budget")
    parser.add_argument("--batch", type=int, default=512)
    parser.add_argument("--backbone", default="resnet", help="any frlib backbone, e.g. tcs2019")
    parser.add_argument("--lr", type=float, default=3e-3)
    parser.add_argument("--warmup", type=int, default=3, help="epochs of linear warm-up")
    parser.add_argument("--weight-decay", type=float, default=0.05, help="AdamW, decoupled")
    parser.add_argument("--dropout", type=float, default=0.2)
    parser.add_argument("--label-smoothing", type=float, default=0.0)
    parser.add_argument("--grey-prob", type=float, default=0.5)
    parser.add_argument("--lowres-prob", type=float, default=0.4)
    parser.add_argument(
        "--require-accelerator", action="store_true", help="stop at once if JAX finds no GPU/TPU"
    )
    parser.add_argument("--limit", type=int, default=0, help="use only this many faces (tests)")
    parser.add_argument("--save-every", type=float, default=60.0, help="seconds between saves")
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--seed", type=int, default=42)
    args = parser.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "log.txt").write_text("")
    LOG_FILE.append(out / "log.txt")
    t0 = time.perf_counter()
    backend = keras.backend.backend()
    log(f"keras {keras.__version__} backend {backend}; args {vars(args)}")
    if backend == "jax":
        import jax

        log(f"jax {jax.__version__} devices {jax.devices()}")
        if args.require_accelerator and jax.default_backend() == "cpu":
            log("ERROR: --require-accelerator, but JAX runs on the CPU")
            return 2
    keras.utils.set_random_seed(args.seed)

    images, labels, split, source, meta = load_faces(Path(args.data), args.limit, args.seed)
    size = images.shape[1]
    rows = {name: np.flatnonzero(split == k) for k, name in enumerate(SPLITS)}
    log(
        f"data {args.data}: {len(images)} faces {size}px decoded in {time.perf_counter() - t0:.1f}s;"
        f" splits { {k: len(v) for k, v in rows.items()} }; sources {meta['sources']}"
    )
    part = {name: (images[r], {t: v[r] for t, v in labels.items()}) for name, r in rows.items()}
    weights = class_weights(part["train"][1])
    log(f"class weights {weights}")

    config = Config(
        data=meta["specs"] or [f"npz:{args.data}"],
        out=str(out),
        seed=args.seed,
        image_size=size,
        backbone=args.backbone,
        width=args.width,
        dropout=args.dropout,
        label_smoothing=args.label_smoothing,
        epochs=args.epochs or args.max_epochs,
        batch_size=args.batch,
        learning_rate=args.lr,
        weight_decay=args.weight_decay,
        augment=True,
        grayscale_prob=args.grey_prob,
        strategy="default",
        mixed_precision="float32",
        jit_compile="true",
    )
    inner = build_model(config, weights)
    log(f"model {inner.name}: {inner.count_params():,} parameters, width {args.width}")
    inputs = keras.Input((size, size, 3), name="image")
    augment = Augment(
        size, grey_prob=args.grey_prob, lowres_prob=args.lowres_prob, seed=args.seed, name="augment"
    )
    wrapper = keras.Model(inputs, inner(augment(inputs)), name="train_wrapper")
    compile_model(wrapper, config, weights, jit_compile=True)

    def save(best_weights, path=out / "model.keras"):
        """Save the plain frlib model (not the wrapper) with `best_weights`, atomically."""
        current = inner.get_weights()
        inner.set_weights(best_weights)
        tmp = path.with_name(f".{path.stem}.tmp.keras")
        inner.save(tmp)
        os.replace(tmp, path)
        inner.set_weights(current)

    config.save(out / "config.json")
    train_data = Batches(
        *part["train"], args.batch, train=True, seed=args.seed, workers=args.workers
    )
    val_data = Batches(*part["val"], args.batch, train=False, workers=args.workers)
    plan = Plan(inner, args, train_data.count * args.batch, out, save)
    t_fit = time.perf_counter()
    wrapper.fit(
        train_data,
        validation_data=val_data,
        epochs=args.epochs or args.max_epochs,
        callbacks=[plan, keras.callbacks.TerminateOnNaN()],
        verbose=0,
    )
    fit_s = time.perf_counter() - t_fit
    epochs_run = len(plan.rows)
    speeds = sorted(r["images_per_s"] for r in plan.rows[1:]) or [0]
    log(
        f"trained {epochs_run} epochs in {fit_s:.0f}s, median {speeds[len(speeds) // 2]:.0f}"
        f" train img/s after the first epoch (reshuffled {train_data.shuffles}x); best val"
        f" loss {plan.best:.4f} at epoch {plan.best_epoch + 1}"
    )
    if plan.best_weights is not None:
        inner.set_weights(plan.best_weights)
    else:
        log("WARNING: no finite val loss: saving the last weights")
    config = config.replace(epochs=epochs_run)
    config.save(out / "config.json")
    save(inner.get_weights())
    log(f"saved {out / 'model.keras'} ({(out / 'model.keras').stat().st_size / 2**20:.1f} MB)")

    # Test split: per-task scores with the best weights.
    test_images, test_labels = part["test"]
    probs = predict(inner, test_images, args.batch)
    if any(np.isnan(p).any() for p in probs.values()):
        log("WARNING: NaN in the test probabilities")
    report = evaluate_predictions(probs, test_labels)
    for task in TASKS:
        r = report[task]
        log(
            f"test {task:9s} n={r['support']:5d} acc {r['accuracy']:.3f} macro-F1"
            f" {r['macro_f1']:.3f} (majority {r['baseline_accuracy']:.3f}/"
            f"{r['baseline_macro_f1']:.3f})"
        )
    test_source = source[rows["test"]]
    for k, name in enumerate(meta["sources"]):
        mine = test_source == k
        if mine.any():
            sub = evaluate_predictions(
                {t: p[mine] for t, p in probs.items()}, {t: v[mine] for t, v in test_labels.items()}
            )
            scored = {t: round(sub[t]["accuracy"], 3) for t in TASKS if sub[t]["support"]}
            log(f"test source {name}: accuracy {scored}")
            report[f"source={name}"] = {t: sub[t] for t in TASKS if sub[t]["support"]}
    report["epochs"], report["best_epoch"] = epochs_run, plan.best_epoch + 1
    (out / "report.json").write_text(json.dumps(report, indent=1))

    # The saved file, reloaded here, must give the same probabilities; check.npz lets another
    # backend compare with these.
    from frlib.predict import load_model

    reloaded = load_model(out)
    check = test_images[:32]
    mine = predict(inner, check, 32)
    again = predict(reloaded, check, 32)
    diff = float(np.max(np.concatenate([np.abs(mine[t] - again[t]).ravel() for t in TASKS])))
    log(f"reloaded model.keras: max |p - p_reloaded| = {diff:.2e} (NaN = broken)")
    np.savez(out / "check.npz", images=check, backend=backend, **again)
    split_large(out / "model.keras")
    log(f"total {time.perf_counter() - t0:.0f}s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
