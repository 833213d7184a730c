"""Dataset summaries for the console and the notebooks: counts, faces per image, face sizes."""

from __future__ import annotations

from collections import Counter

import numpy as np

from frlib.data import FaceDataset
from frlib.labels import MISSING, TASKS


def class_counts(data: FaceDataset):
    """Faces per task, class and split (missing labels counted as 'missing'): a DataFrame."""
    import pandas as pd

    rows = []
    for split, indices in data.split.items():
        for task, classes in TASKS.items():
            values = data.labels[task][indices]
            counts = np.bincount(values[values != MISSING], minlength=len(classes))
            for name, count in zip(classes, counts, strict=True):
                rows.append({"split": split, "task": task, "class": name, "faces": int(count)})
            rows.append(
                {
                    "split": split,
                    "task": task,
                    "class": "missing",
                    "faces": int((values == MISSING).sum()),
                }
            )
    return pd.DataFrame(rows)


def split_table(data: FaceDataset):
    """Faces and source images per split, and how many images appear in more than one split."""
    import pandas as pd

    owner: dict[str, set[str]] = {}
    rows = []
    for split, indices in data.split.items():
        images = {str(g) for g in data.groups[indices]}
        for image in images:
            owner.setdefault(image, set()).add(split)
        rows.append({"split": split, "faces": len(indices), "images": len(images)})
    table = pd.DataFrame(rows).set_index("split")
    table.attrs["images_in_two_splits"] = sum(len(s) > 1 for s in owner.values())
    return table


def faces_per_image(data: FaceDataset) -> Counter:
    """How many images hold 1, 2, 3... faces."""
    return Counter(Counter(str(g) for g in data.groups).values())


def print_summary(data: FaceDataset) -> None:
    """A short text summary: the report's counts, then class counts per task over all splits."""
    report = data.report
    images = report["images"]
    print(f"images: {images['ok']} ok, {len(images['failed'])} failed")
    for failure in images["failed"][:5]:
        print(f"  failed: {failure['source']}: {failure['reason']}")
    faces = report["faces"]
    print(f"faces: {faces['usable']} usable, {len(faces['skipped'])} skipped")
    for skip in faces["skipped"][:5]:
        print(f"  skipped: line {skip.get('line')}: {skip['reason']}")
    print("splits: " + ", ".join(f"{k} {v}" for k, v in report["splits"].items()))
    if len(data):
        sizes = data.face_px
        print(
            f"face width (source px): median {np.median(sizes):.0f}, "
            f"10%-90% {np.percentile(sizes, 10):.0f}-{np.percentile(sizes, 90):.0f}"
        )
    for task, classes in TASKS.items():
        values = data.labels[task]
        counts = np.bincount(values[values != MISSING], minlength=len(classes))
        parts = ", ".join(f"{c} {n}" for c, n in zip(classes, counts, strict=True))
        print(f"{task}: {parts}, missing {(values == MISSING).sum()}")
