"""Export real faces as compact JPEG crops for training on a machine without frlib's data stack.

Reads the real data with frlib's own loaders (`frlib.data.prepare`: crops, labels and the split
grouped by source image) and writes, in the repo root (ignored by git: /.devdata/):

  .devdata/faces.npz    training data: FairFace + the emotion folders, with the prepared split
  data/heldout/utkface.npz  evaluation only: UTKFace, a source the model never trains on
                            (outside .devdata/, so it does not travel with the training data)

Each npz holds `jpeg` (object array: one JPEG per crop; greyscale crops as one-channel JPEGs),
`emotion`, `age`, `ethnicity`, `gender` (int8 class ids, -1 = missing), `split` (int8: 0 train,
1 val, 2 test) and `source` (int8: index into the `sources` array). `image_size` and
`quality` are stored too, and `specs`: the frlib data specs. benchmarks/device_train.py reads faces.npz.

Needs the real data under ../shared/data (or --data-root); skips cleanly without it.

    python benchmarks/export_faces.py [--image-size 64] [--quality 90] [--max-mb 55]
"""

from __future__ import annotations

import argparse
import io
import os
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from frlib.config import Config, default_cache_dir  # noqa: E402
from frlib.data import prepare  # noqa: E402
from frlib.labels import TASKS  # noqa: E402

SPLITS = ("train", "val", "test")


def is_grey(crop: np.ndarray, tolerance: int = 2) -> bool:
    """True when the three channels are (nearly) equal: a greyscale photo stored as RGB."""
    c = crop.astype(np.int16)
    return bool(np.abs(c[..., 0] - c[..., 1]).max() <= tolerance) and bool(
        np.abs(c[..., 1] - c[..., 2]).max() <= tolerance
    )


def encode(crop: np.ndarray, quality: int) -> tuple[bytes, bool]:
    """JPEG bytes of one uint8 RGB crop; greyscale crops as one-channel JPEGs (a third the size)."""
    grey = is_grey(crop)
    image = Image.fromarray(crop[..., 0] if grey else crop, "L" if grey else "RGB")
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=quality, optimize=True)
    return buffer.getvalue(), grey


def portable(spec: str) -> str:
    """A data spec with its path relative to the repo root, as Config's defaults are."""
    kind, _, location = spec.partition(":")
    return f"{kind}:{os.path.relpath(location, ROOT)}"


def export(specs: list[str], path: Path, args, *, split_all: str | None = None) -> dict:
    """Prepare `specs` with frlib and write them to `path`; returns a summary."""
    start = time.perf_counter()
    config = Config(data=specs, image_size=args.image_size, cache_dir=args.cache_dir)
    data = prepare(config, progress=False)
    prepared_s = time.perf_counter() - start
    n = len(data)
    split = np.full(n, -1, np.int8)
    if split_all is None:
        for code, name in enumerate(SPLITS):
            split[data.split[name]] = code
    else:
        split[:] = SPLITS.index(split_all)
    kinds = sorted({str(g).split("|", 1)[0] for g in data.groups})
    source = np.array([kinds.index(str(g).split("|", 1)[0]) for g in data.groups], np.int8)
    jpegs = np.empty(n, dtype=object)
    grey = np.zeros(n, bool)
    for i in range(n):
        jpegs[i], grey[i] = encode(np.asarray(data.crops[i]), args.quality)
    path.parent.mkdir(parents=True, exist_ok=True)
    labels = {t: data.labels[t].astype(np.int8) for t in TASKS}
    np.savez(
        path,
        jpeg=jpegs,
        split=split,
        source=source,
        sources=np.array(kinds),
        specs=np.array([portable(spec) for spec in specs]),
        image_size=np.int32(args.image_size),
        quality=np.int32(args.quality),
        **labels,
    )
    summary = {
        "faces": n,
        "prepare_s": round(prepared_s, 1),
        "jpeg_mb": round(sum(len(b) for b in jpegs) / 2**20, 2),
        "file_mb": round(path.stat().st_size / 2**20, 2),
        "splits": {name: int((split == k).sum()) for k, name in enumerate(SPLITS)},
        "sources": {
            kind: {
                "faces": int((source == k).sum()),
                "greyscale": round(float(grey[source == k].mean()), 3),
            }
            for k, kind in enumerate(kinds)
        },
        "labelled": {t: int((v >= 0).sum()) for t, v in labels.items()},
    }
    print(f"{path.relative_to(ROOT)}: {summary}", flush=True)
    return summary


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data-root", default=str(ROOT.parent / "shared" / "data"))
    parser.add_argument("--out", default=str(ROOT / ".devdata"))
    parser.add_argument("--heldout", default=str(ROOT / "data" / "heldout" / "utkface.npz"))
    parser.add_argument("--image-size", type=int, default=64)
    parser.add_argument("--quality", type=int, default=90)
    parser.add_argument("--max-mb", type=float, default=55.0, help="lower quality until under")
    parser.add_argument("--cache-dir", default=default_cache_dir())
    args = parser.parse_args(argv)
    root, out = Path(args.data_root), Path(args.out)
    needed = [root / "fairface", root / "emotions", root / "utkface"]
    if not all(p.is_dir() for p in needed):
        print(f"skipped: real data not found under {root}")
        return 0
    train_specs = [
        f"fairface:{root / 'fairface'}",
        f"folders:{root / 'emotions'}",
        "nonfaces:data/nonfaces?images=2500",  # emotion=not_face: real sets have no non-faces
    ]
    while True:
        summary = export(train_specs, out / "faces.npz", args)
        if summary["file_mb"] <= args.max_mb or args.quality <= 50:
            break
        args.quality -= 5
        print(f"over {args.max_mb} MB: quality {args.quality}", flush=True)
    export([f"utkface:{root / 'utkface'}"], Path(args.heldout), args, split_all="test")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
