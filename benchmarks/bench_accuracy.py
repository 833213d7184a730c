"""Which default model? Train candidates on real faces with the same CPU budget and compare.

Usage: python benchmarks/bench_accuracy.py [--minutes 20] [--size 64] [--candidates ...]

Needs the real data in ../shared/data (FairFace 20k + emotion folders; UTKFace as a source the
models never train on); skips cleanly when it is absent. Every candidate sees the same data,
split, augmentation and input size, and trains for the same wall-clock budget on this CPU.
Scores: held-out test split (FairFace + emotions), UTKFace (another source), and the same
test split turned greyscale and shrunk to 24 px (real users' faces are small and often grey).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent.parent / "shared" / "data"
CANDIDATES = {
    "tcs2019": dict(backbone="tcs2019"),
    "resnet": dict(backbone="resnet"),
    "resnet-ls": dict(backbone="resnet", label_smoothing=0.1),
    "resnet-nocw": dict(backbone="resnet", class_weights=False),
    "mobilenetv3": dict(backbone="mobilenetv3"),
    "efficientnetb0": dict(backbone="efficientnetb0"),
}


def degrade(crops: np.ndarray, grey: bool, small: int | None) -> np.ndarray:
    """Greyscale and/or shrink-then-enlarge a batch of uint8 crops."""
    from frlib.images import resize

    out = np.asarray(crops).astype(np.float32)
    if grey:
        out = np.repeat(out @ np.array([0.299, 0.587, 0.114], np.float32), 3).reshape(out.shape)
    out = np.clip(out, 0, 255).astype(np.uint8)
    if small:
        out = np.stack([resize(resize(c, small), crops.shape[1]) for c in out])
    return out


def score(model, crops, labels, majority) -> dict:
    from frlib.evaluate import evaluate_predictions, predict_probs

    return evaluate_predictions(predict_probs(model, crops), labels, majority)


def train_for(config, minutes: float) -> Path:
    """One epoch to time it, then as many more as the budget allows (the run resumes)."""
    from frlib.train import train

    start = time.perf_counter()
    run = train(config.replace(epochs=1), verbose=0)
    per_epoch = time.perf_counter() - start
    epochs = max(1, int(minutes * 60 / per_epoch))
    if epochs > 1:
        run = train(config.replace(epochs=epochs, patience=epochs), verbose=0)
    print(f"  {config.backbone}: {epochs} epochs of ~{per_epoch:.0f} s", flush=True)
    return run


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--minutes", type=float, default=20.0, help="training budget per model")
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--candidates", nargs="+", default=["tcs2019", "resnet", "mobilenetv3"])
    parser.add_argument("--data-root", type=Path, default=ROOT)
    args = parser.parse_args()
    if not (args.data_root / "fairface").is_dir():
        print(f"skipped: real face data not found at {args.data_root} (see its README)")
        return 0
    from frlib.config import Config
    from frlib.data import prepare
    from frlib.files import read_json
    from frlib.labels import TASKS
    from frlib.predict import load_model

    work = Path(tempfile.mkdtemp(prefix="bench-accuracy-"))
    base = Config(
        data=[f"fairface:{args.data_root / 'fairface'}", f"folders:{args.data_root / 'emotions'}"],
        image_size=args.size,
        grayscale_prob=0.5,
        batch_size=64,
    )
    data = prepare(base, progress=False)
    other = prepare(base.replace(data=[f"utkface:{args.data_root / 'utkface'}"]), progress=False)
    test = data.split["test"]
    test_crops, test_labels = (
        np.asarray(data.crops[test]),
        {t: v[test] for t, v in data.labels.items()},
    )
    sets = {
        "test": (test_crops, test_labels),
        "test-grey-24px": (degrade(test_crops, True, 24), test_labels),
        "utkface": (np.asarray(other.crops), other.labels),
    }
    print(
        f"train {len(data.split['train'])} / val {len(data.split['val'])} / test {len(test)} "
        f"faces at {args.size} px; UTKFace {len(other)} faces; {args.minutes} min per model"
    )
    rows = []
    for name in args.candidates:
        config = base.replace(out=str(work / name), **CANDIDATES[name])
        run = train_for(config, args.minutes)
        model, majority = load_model(run), read_json(run / "majority.json")
        for set_name, (crops, labels) in sets.items():
            report = score(model, crops, labels, majority)
            rows += [(name, set_name, t, report[t]) for t in TASKS if report[t]["support"]]
            if name == args.candidates[0]:
                rows += [
                    (
                        "baseline",
                        set_name,
                        t,
                        {
                            "accuracy": report[t]["baseline_accuracy"],
                            "macro_f1": report[t]["baseline_macro_f1"],
                            "support": report[t]["support"],
                        },
                    )
                    for t in TASKS
                    if report[t]["support"]
                ]
    print(f"\n{'model':<14}{'eval set':<16}{'task':<11}{'accuracy':>9}{'macro-F1':>10}{'faces':>7}")
    for name, set_name, task, r in sorted(rows, key=lambda r: (r[1], r[2], r[0])):
        print(
            f"{name:<14}{set_name:<16}{task:<11}{r['accuracy']:>9.3f}{r['macro_f1']:>10.3f}"
            f"{r['support']:>7}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
