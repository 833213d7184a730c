"""Score a trained run on an exported npz of faces, with whatever Keras backend is installed.

Loads RUN/model.keras with `frlib.predict.load_model`, decodes the JPEG crops of an npz written
by benchmarks/export_faces.py and prints per-task accuracy and macro-F1 beside the majority
baseline. If RUN/check.npz exists (benchmarks/device_train.py writes it), first checks that
this backend's probabilities on its crops equal the ones the training backend saved.

    python benchmarks/eval_npz.py RUN [--data data/heldout/utkface.npz] [--split test]
"""

from __future__ import annotations

import argparse
import io
import json
from pathlib import Path

import numpy as np
from PIL import Image

from frlib.evaluate import evaluate_predictions, predict_probs
from frlib.labels import TASKS
from frlib.predict import load_model

ROOT = Path(__file__).resolve().parents[1]

SPLITS = ("train", "val", "test")


def load_npz(path, split: str = "test"):
    """Decoded uint8 crops, labels per task and source names of one split of an exported npz."""
    raw = np.load(path, allow_pickle=True)
    rows = np.arange(len(raw["jpeg"]))
    if split != "all":
        rows = np.flatnonzero(raw["split"] == SPLITS.index(split))
    images = np.stack(
        [np.asarray(Image.open(io.BytesIO(b)).convert("RGB")) for b in raw["jpeg"][rows]]
    )
    labels = {t: raw[t][rows].astype(np.int32) for t in TASKS}
    sources = raw["sources"][raw["source"][rows]]
    return images, labels, sources


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("run", help="folder with model.keras (and config.json)")
    parser.add_argument("--data", default=str(ROOT / "data" / "heldout" / "utkface.npz"))
    parser.add_argument("--split", default="test", choices=(*SPLITS, "all"))
    parser.add_argument("--tolerance", type=float, default=1e-4)
    parser.add_argument("--json", help="write the report here")
    args = parser.parse_args(argv)
    run = Path(args.run)
    model = load_model(run)
    status = 0
    if (run / "check.npz").is_file():
        check = np.load(run / "check.npz")
        probs = predict_probs(model, check["images"])
        diff = max(float(np.abs(probs[t] - check[t]).max()) for t in TASKS)
        ok = diff <= args.tolerance
        status = 0 if ok else 1
        print(
            f"check.npz: max |p - p_{check['backend']}| = {diff:.2e} on {len(check['images'])}"
            f" crops: {'OK' if ok else 'MISMATCH'}"
        )
    images, labels, _ = load_npz(args.data, args.split)
    report = evaluate_predictions(predict_probs(model, images), labels)
    print(f"{args.data} ({args.split}: {len(images)} faces)")
    for task in TASKS:
        r = report[task]
        if r["support"]:
            print(
                f"  {task:9s} n={r['support']:5d} acc {r['accuracy']:.3f} macro-F1"
                f" {r['macro_f1']:.3f} (majority {r['baseline_accuracy']:.3f}/"
                f"{r['baseline_macro_f1']:.3f})"
            )
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=1))
    return status


if __name__ == "__main__":
    raise SystemExit(main())
