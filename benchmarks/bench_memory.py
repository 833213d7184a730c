"""Peak memory of one training epoch: in-memory crops, memory-mapped crops, streamed TFRecords.

Writes N random faces (uint8 crops, random labels, 5% of each task missing) as a crops.npy
file and as TFRecord shards, a chunk at a time so making them never holds them all in RAM.
Then, each in a fresh Python so nothing mixes, iterates one shuffled epoch of the train
batches and reports peak RSS (getrusage ru_maxrss) next to `import tensorflow` alone.
Linux carries a parent's RSS at fork into the child's ru_maxrss, so the faces are made in a
subprocess too and this driver stays small.

  in-memory  np.load the crops into RAM, then frlib.pipeline.make_dataset
  memmap     np.load(mmap_mode="r"), as frlib.data.prepare gives them, then make_dataset
  tfrecord   frlib.records_io.read_tfrecords: shards streamed through a bounded shuffle buffer

With psutil installed it also samples RSS minus its file-backed part ("anon"): a memmap's
pages count in RSS but are page cache the kernel can drop; anonymous memory can't be.

    python benchmarks/bench_memory.py [--faces 10000 100000] [--image-size 96]
        [--shards 16] [--batch-size 64] [--shuffle-buffer 10000] [--augment]
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

CHUNK = 2048
MODES = ("in-memory", "memmap", "tfrecord")


def make_faces(folder: Path, n: int, size: int, shards: int, seed: int = 0) -> None:
    """Random crops and labels as crops.npy + labels.npz, and as TFRecord shards, in chunks."""
    from frlib.labels import TASKS
    from frlib.records_io import write_tfrecords

    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    crops = np.lib.format.open_memmap(
        folder / "crops.npy", mode="w+", dtype=np.uint8, shape=(n, size, size, 3)
    )
    for start in range(0, n, CHUNK):
        stop = min(start + CHUNK, n)
        crops[start:stop] = rng.integers(0, 256, (stop - start, size, size, 3), dtype=np.uint8)
    crops.flush()
    del crops
    labels = {}
    for task, classes in TASKS.items():
        values = rng.integers(0, len(classes), n).astype(np.int32)
        values[rng.random(n) < 0.05] = -1
        labels[task] = values
    np.savez(folder / "labels.npz", **labels)
    data = _dataset(folder, mmap=True)
    write_tfrecords(data, str(folder / "shards"), shards=shards, splits=("train",), seed=seed)


def _dataset(folder: Path, mmap: bool):
    """A FaceDataset of every face in the train split (no source records: nothing to report)."""
    from frlib.data import FaceDataset

    crops = np.load(folder / "crops.npy", mmap_mode="r" if mmap else None)
    labels = dict(np.load(folder / "labels.npz"))
    n = len(crops)
    empty = np.zeros(0, np.int64)
    split = {"train": np.arange(n), "val": empty, "test": empty}
    groups = np.array([f"bench|{i // 2}" for i in range(n)], dtype=object)
    report = {"splits": {k: int(len(v)) for k, v in split.items()}}
    return FaceDataset(crops, labels, groups, [], np.zeros(n), split, report)


class RssSampler:
    """Samples RSS and its anonymous part (RSS minus file-backed pages) with psutil, if present."""

    def __init__(self, every: float = 0.05):
        try:
            import psutil
        except ImportError:
            self.process = None
            return
        self.process, self.every, self.peak_anon = psutil.Process(), every, 0
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        while not self.stop.is_set():
            info = self.process.memory_info()
            self.peak_anon = max(self.peak_anon, info.rss - info.shared)
            self.stop.wait(self.every)

    def finish(self) -> float | None:
        """Peak anonymous RSS in MB, or None without psutil."""
        if self.process is None:
            return None
        self.stop.set()
        self.thread.join()
        return self.peak_anon / 2**20


def measure(mode: str, folder: Path, args) -> dict:
    """One measurement, meant to run in a fresh Python: peak RSS of import or of one epoch."""
    sampler = RssSampler()
    import tensorflow as tf  # noqa: F401  (the baseline: importing TensorFlow alone)

    faces, started = 0, time.perf_counter()
    if mode != "import":
        from frlib.config import Config

        config = Config(
            image_size=args.image_size,
            batch_size=args.batch_size,
            shuffle_buffer=args.shuffle_buffer,
            augment=args.augment,
        )
        if mode == "tfrecord":
            from frlib.records_io import read_tfrecords

            batches = read_tfrecords(str(folder / "shards"), "train", config, training=True)
        else:
            from frlib.pipeline import make_dataset

            data = _dataset(folder, mmap=mode == "memmap")
            batches = make_dataset(data, "train", config, training=True)
        for images, _ in batches:
            faces += int(images.shape[0])
    seconds = time.perf_counter() - started
    anon = sampler.finish()
    return {
        "mode": mode,
        "faces": faces,
        "seconds": round(seconds, 1),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "peak_anon_mb": None if anon is None else round(anon, 1),
    }


def run_fresh(mode: str, folder: Path, args, faces: int = 0) -> dict:
    """`measure` (or, mode "make", `make_faces`) in a new Python, so its peak RSS is its own."""
    cmd = [sys.executable, __file__, "--measure", mode, "--folder", str(folder)]
    cmd += ["--image-size", str(args.image_size), "--batch-size", str(args.batch_size)]
    cmd += ["--shuffle-buffer", str(args.shuffle_buffer), "--shards", str(args.shards)]
    cmd += ["--faces", str(faces)] + (["--augment"] if args.augment else [])
    result = subprocess.run(cmd, capture_output=True, text=True)
    if result.returncode != 0:
        raise RuntimeError(f"{mode} on {folder} failed:\n{result.stderr[-3000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--faces", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--image-size", type=int, default=96)
    parser.add_argument("--shards", type=int, default=16)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--shuffle-buffer", type=int, default=10_000)
    parser.add_argument("--augment", action="store_true", help="augment as in training (slower)")
    parser.add_argument("--measure", choices=("make", "import", *MODES), help=argparse.SUPPRESS)
    parser.add_argument("--folder", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure == "make":
        make_faces(args.folder, args.faces[0], args.image_size, args.shards)
        print("{}")
        return
    if args.measure:
        print(json.dumps(measure(args.measure, args.folder, args)))
        return

    crop_kb = args.image_size**2 * 3 / 1024
    print(
        f"{args.image_size} px crops ({crop_kb:.0f} KB each), batch {args.batch_size}, "
        f"shuffle buffer {args.shuffle_buffer} (~{args.shuffle_buffer * crop_kb / 1024:.0f} MB), "
        f"augment={args.augment}"
    )
    print(
        f"{'faces':>8} {'mode':>10} {'data MB':>8} {'peak RSS':>9} {'+ import':>9} {'anon':>6}"
        f" {'+ import':>9} {'epoch s':>8}"
    )
    base = run_fresh("import", Path("."), args)
    _print_row(0, base, base, 0.0)
    for n in args.faces:
        with tempfile.TemporaryDirectory(prefix="bench_memory_") as tmp:
            folder = Path(tmp)
            started = time.perf_counter()
            run_fresh("make", folder, args, faces=n)
            print(f"{n:>8} {'(written':>10} in {time.perf_counter() - started:.0f} s)")
            for mode in MODES:
                row = run_fresh(mode, folder, args)
                assert row["faces"] == n, row
                _print_row(n, row, base, n * crop_kb / 1024)
    print(
        "\nMB. peak RSS: getrusage ru_maxrss; '+ import': above `import tensorflow` alone; "
        "anon: sampled peak of RSS less\nfile-backed pages (a memmap's pages are page cache "
        "the kernel can drop; anonymous memory can't be)."
    )


def _print_row(n: int, row: dict, base: dict, data_mb: float) -> None:
    anon, base_anon = row["peak_anon_mb"], base["peak_anon_mb"]
    anon_text = "-" if anon is None else f"{anon:>6.0f} {anon - base_anon:>9.0f}"
    print(
        f"{n:>8} {row['mode']:>10} {data_mb:>8.0f} {row['peak_rss_mb']:>9.0f} "
        f"{row['peak_rss_mb'] - base['peak_rss_mb']:>9.0f} {anon_text} {row['seconds']:>8.1f}",
        flush=True,
    )


if __name__ == "__main__":
    main()
