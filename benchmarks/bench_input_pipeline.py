"""Input pipeline throughput and memory: images/s delivered, peak RSS for N faces.

Usage: python benchmarks/bench_input_pipeline.py [--faces 10000] [--size 96] [--batch 64]

Each measurement runs in a fresh process so peak RSS figures do not mix:
  import-only : `import tensorflow` and frlib, nothing else (the floor)
  memory      : crops loaded into RAM (uint8), then one epoch
  disk        : crops read batch by batch from the on-disk cache (frlib.cropstore), one epoch
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time


def child(mode: str, folder: str, size: int, batch: int, faces: int) -> dict:
    import numpy as np

    import frlib.pipeline as pipeline  # noqa: F401  (imports tensorflow)
    from frlib.config import Config
    from frlib.data import FaceDataset

    result = {"mode": mode}
    if mode != "import-only":
        from frlib.cropstore import open_crops

        path = os.path.join(folder, "crops.npy")
        crops = open_crops(path, in_memory_mb=float("inf") if mode == "memory" else 0)
        labels = {
            t: np.load(os.path.join(folder, f"{t}.npy"))
            for t in ("emotion", "age", "ethnicity", "gender")
        }
        split = {"train": np.arange(faces), "val": np.arange(0), "test": np.arange(0)}
        data = FaceDataset(
            crops, labels, np.arange(faces).astype(str), [], np.zeros(faces), split, {}
        )
        config = Config(image_size=size, batch_size=batch)
        ds = pipeline.make_dataset(data, "train", config)
        for _ in ds.take(3):  # warm-up: tracing, thread pools
            pass
        start, seen = time.perf_counter(), 0
        for images, _ in ds:
            seen += int(images.shape[0])
        result["images_per_s"] = seen / (time.perf_counter() - start)
    result["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return result


def make_faces(folder: str, faces: int, size: int) -> None:
    """Random uint8 crops written straight to disk in chunks (never all in RAM)."""
    import numpy as np

    rng = np.random.default_rng(0)
    crops = np.lib.format.open_memmap(
        os.path.join(folder, "crops.npy"), "w+", np.uint8, (faces, size, size, 3)
    )
    for start in range(0, faces, 2000):
        stop = min(faces, start + 2000)
        crops[start:stop] = rng.integers(0, 256, (stop - start, size, size, 3), dtype=np.uint8)
    crops.flush()
    for task, k in (("emotion", 5), ("age", 5), ("ethnicity", 6), ("gender", 2)):
        np.save(os.path.join(folder, f"{task}.npy"), rng.integers(-1, k, faces).astype(np.int32))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--faces", type=int, default=10000)
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--folder", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args.child, args.folder, args.size, args.batch, args.faces)))
        return
    with tempfile.TemporaryDirectory() as folder:
        make_faces(folder, args.faces, args.size)
        rows = []
        for mode in ("import-only", "memory", "disk"):
            cmd = [
                sys.executable,
                __file__,
                "--child",
                mode,
                "--folder",
                folder,
                "--faces",
                str(args.faces),
                "--size",
                str(args.size),
                "--batch",
                str(args.batch),
            ]
            out = subprocess.run(cmd, capture_output=True, text=True, check=True)
            rows.append(json.loads(out.stdout.strip().splitlines()[-1]))
    crops_mb = args.faces * args.size * args.size * 3 / 2**20
    floor = rows[0]["peak_rss_mb"]
    print(
        f"{args.faces} faces at {args.size}x{args.size}, batch {args.batch}; "
        f"uint8 crops = {crops_mb:.0f} MB"
    )
    print(f"{'mode':<12}{'images/s':>10}{'peak RSS MB':>13}{'over import':>13}")
    for row in rows:
        ips = f"{row['images_per_s']:.0f}" if "images_per_s" in row else "-"
        print(
            f"{row['mode']:<12}{ips:>10}{row['peak_rss_mb']:>13.0f}{row['peak_rss_mb'] - floor:>13.0f}"
        )
    held = rows[1]["peak_rss_mb"] - rows[2]["peak_rss_mb"]
    print(
        f"RAM held for the crops (memory - disk): {held:.0f} MB = {held / crops_mb:.2f} x the "
        "uint8 crops (target <= ~1)"
    )
    print(
        f"disk mode over import: {rows[2]['peak_rss_mb'] - floor:.0f} MB of tf.data buffers, "
        "whatever the number of faces (compare --faces 2000 and 20000)"
    )


if __name__ == "__main__":
    main()
