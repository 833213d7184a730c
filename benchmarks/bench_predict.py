"""Prediction latency: one 640x480 photo with 3 faces, detection included, and batch images/s.

Usage: python benchmarks/bench_predict.py [--model RUN_DIR] [--runs 30]
Without --model it uses the shipped model, else trains a 1-epoch smoke model to time.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np


def _model(path: str | None) -> Path:
    from frlib.predict import SHIPPED_MODEL

    if path:
        return Path(path)
    if (SHIPPED_MODEL / "model.keras").is_file():
        return SHIPPED_MODEL
    from frlib.config import Config
    from frlib.train import train

    tmp = Path(tempfile.mkdtemp())
    return train(Config.smoke(out=str(tmp / "run"), epochs=1, image_size=96), verbose=0)


def timed(fn, runs: int) -> np.ndarray:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return np.array(times) * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model")
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--batch", type=int, default=16)
    args = parser.parse_args()
    from frlib.detect import compose_faces, detect_faces
    from frlib.predict import Predictor

    predictor = Predictor.load(_model(args.model))
    photo, _ = compose_faces()
    for _ in range(3):  # warm-up: graph tracing, cascade load
        predictor.predict(photo)
    detect = timed(lambda: detect_faces(photo), args.runs)
    single = timed(lambda: predictor.predict(photo), args.runs)
    photos = [compose_faces(seed=i)[0] for i in range(args.batch)]
    predictor.predict_many(photos[:2])
    batch = timed(lambda: predictor.predict_many(photos), max(3, args.runs // 10))
    size = predictor.config.image_size
    print(f"model: {predictor.run_dir} ({predictor.config.backbone}, {size}px crops)")
    print(f"detection only, 640x480: median {np.median(detect):.1f} ms")
    print(
        f"predict one 640x480 photo, 3 faces: median {np.median(single):.1f} ms, "
        f"p90 {np.percentile(single, 90):.1f} ms (target < 100 ms)"
    )
    print(
        f"batch of {args.batch} photos: {args.batch / (np.median(batch) / 1000):.1f} images/s "
        f"({3 * args.batch / (np.median(batch) / 1000):.1f} faces/s)"
    )


if __name__ == "__main__":
    main()
