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
import sys
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from frlib.evaluate import evaluate_predictions, predict_probs  # noqa: E402
from frlib.labels import TASKS  # noqa: E402
from frlib.predict import load_model  # noqa: E402

SPLITS = ("train", "val", "test")


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
    raw = np.load(args.data, allow_pickle=True)
    rows = np.arange(len(raw["jpeg"]))
    if args.split != "all":
        rows = np.flatnonzero(raw["split"] == SPLITS.index(args.split))
    images = np.stack(
        [np.asarray(Image.open(io.BytesIO(b)).convert("RGB")) for b in raw["jpeg"][rows]]
    )
    labels = {t: raw[t][rows].astype(np.int32) for t in TASKS}
    report = evaluate_predictions(predict_probs(model, images), labels)
    print(f"{args.data} ({args.split}: {len(rows)} faces)")
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
