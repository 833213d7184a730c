"""Score the shipped model (model_data/model) for its model card, on real held-out faces.

    python benchmarks/evaluate_shipped.py [--run model_data/model]

Needs the exports of benchmarks/export_faces.py (.devdata/faces.npz: the held-out test split of
FairFace + emotion folders + non-faces; data/heldout/utkface.npz: a source never trained on)
and ../shared/data/dataturks for the two DataTurks photos we have. Writes RUN/evaluation.json
and prints the tables of model_data/MODEL_CARD.md.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from bench_accuracy import degrade
from eval_npz import ROOT, load_npz

from frlib.evaluate import evaluate_predictions, predict_probs
from frlib.files import write_json
from frlib.labels import TASKS
from frlib.predict import load_model


def table(name: str, report: dict) -> list[str]:
    """Markdown rows: task, faces, accuracy, macro-F1 beside the majority baseline."""
    rows = []
    for task in TASKS:
        r = report[task]
        if r["support"]:
            rows.append(
                f"| {name} | {task} | {r['support']} | {r['accuracy']:.3f} | {r['macro_f1']:.3f} "
                f"| {r['baseline_accuracy']:.3f} | {r['baseline_macro_f1']:.3f} |"
            )
    return rows


def group_rows(name: str, report: dict) -> list[str]:
    rows = []
    for group, tasks in report["groups"].items():
        cells = [
            f"{tasks[t]['accuracy']:.3f} ({tasks[t]['support']})" if t in tasks else "–"
            for t in ("age", "ethnicity", "gender")
        ]
        rows.append(f"| {name} | {group} | " + " | ".join(cells) + " |")
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--run", default=str(ROOT / "model_data" / "model"))
    args = parser.parse_args()
    model = load_model(args.run)
    images, labels, sources = load_npz(ROOT / ".devdata" / "faces.npz", "test")
    utk_images, utk_labels, _ = load_npz(ROOT / "data" / "heldout" / "utkface.npz", "all")
    sets = {
        "test (FairFace + emotions + non-faces)": (images, labels),
        "test, greyscale at 24 px": (degrade(images, True, 24), labels),
        "UTKFace (never trained on)": (utk_images, utk_labels),
    }
    reports, lines = {}, []
    for name, (crops, truth) in sets.items():
        probs = predict_probs(model, crops)
        reports[name] = evaluate_predictions(probs, truth)
        lines += table(name, reports[name])
        if "greyscale" not in name:  # real faces called not_face
            faces = sources != "nonfaces" if "test" in name else np.ones(len(crops), bool)
            called = np.argmax(probs["emotion"][faces], axis=1) == TASKS["emotion"].index(
                "not_face"
            )
            reports[name]["real_faces_called_not_face"] = float(called.mean())
            lines.append(
                f"| {name} | real faces called not_face | {int(faces.sum())} | "
                f"{called.mean():.3f} | | | |"
            )
    write_json(Path(args.run) / "evaluation.json", reports)
    print("| data | task | faces | accuracy | macro-F1 | majority acc | majority F1 |")
    print("|---|---|---|---|---|---|---|")
    print("\n".join(lines))
    print("\n| data | group | age acc (n) | ethnicity acc (n) | gender acc (n) |")
    print("|---|---|---|---|---|")
    for name in ("test (FairFace + emotions + non-faces)", "UTKFace (never trained on)"):
        print("\n".join(group_rows(name, reports[name])))


if __name__ == "__main__":
    main()
