"""Training throughput: images/s through the real tf.data pipeline vs a constant in-memory batch.

Usage:
  python benchmarks/bench_train.py                       # CPU: tcs2019 at 299 px and the default
  python benchmarks/bench_train.py --device gpu --peak-tflops 989
        # GPU: also mixed precision and XLA; prints the fraction of the GPU's peak FLOP/s

The ratio real/constant >= 0.9 means the input pipeline is never the bottleneck.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time


def forward_flops(model) -> float:
    """Multiply-adds x 2 of every Conv2D/DepthwiseConv2D/Dense layer for one image."""
    import keras

    total = 0.0
    for layer in _all_layers(model):
        if isinstance(layer, keras.layers.Conv2D):
            _, h, w, cout = layer.output.shape
            kh, kw = layer.kernel_size
            cin = layer.input.shape[-1] // (layer.groups or 1)
            total += 2.0 * h * w * cout * kh * kw * cin
        elif isinstance(layer, keras.layers.DepthwiseConv2D):
            _, h, w, c = layer.output.shape
            total += 2.0 * h * w * c * layer.kernel_size[0] * layer.kernel_size[1]
        elif isinstance(layer, keras.layers.Dense):
            total += 2.0 * layer.input.shape[-1] * layer.units
    return total


def _all_layers(model):
    import keras

    for layer in model.layers:
        if isinstance(layer, keras.Model):
            yield from _all_layers(layer)
        else:
            yield layer


def throughput(model, dataset, steps: int) -> float:
    """Images/s over `steps` training steps, after a warm-up epoch that traces the graph."""
    model.fit(dataset, steps_per_epoch=3, epochs=1, verbose=0)
    start = time.perf_counter()
    history = model.fit(dataset, steps_per_epoch=steps, epochs=1, verbose=0)
    elapsed = time.perf_counter() - start
    assert history.history["loss"], "training did not run"
    return steps * BATCH[0] / elapsed


BATCH = [16]


def measure(backbone: str, size: int, batch: int, steps: int, precision: str, jit: bool, data):
    import keras
    import tensorflow as tf

    from frlib.config import Config
    from frlib.model import build_model
    from frlib.pipeline import make_dataset

    BATCH[0] = batch
    keras.mixed_precision.set_global_policy(precision)
    config = Config(backbone=backbone, image_size=size, batch_size=batch, seed=0)
    model = build_model(config, jit_compile=jit)
    real = make_dataset(data, "train", config.replace(image_size=size), repeat=True)
    x, y = next(iter(real))
    constant = tf.data.Dataset.from_tensors((x, y)).repeat()
    row = {
        "backbone": backbone,
        "size": size,
        "precision": precision,
        "jit": jit,
        # Best of two runs of each feed: a busy moment of the machine hits neither figure.
        "real": max(throughput(model, real, steps), throughput(model, real, steps)),
        "constant": max(throughput(model, constant, steps), throughput(model, constant, steps)),
        "gflops": forward_flops(model) / 1e9,
    }
    keras.mixed_precision.set_global_policy("float32")
    return row


def _data(size: int, faces: int):
    from frlib.config import Config
    from frlib.data import prepare

    root = tempfile.mkdtemp()
    images = max(40, faces // 2)
    config = Config(
        data=[f"synthetic:{root}/syn?images={images}"],
        cache_dir=f"{root}/cache",
        image_size=size,
        val_fraction=0.05,
        test_fraction=0.05,
    )
    return prepare(config, progress=False)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--device", choices=["cpu", "gpu"], default="cpu")
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument(
        "--peak-tflops", type=float, help="GPU peak (dense fp16/bf16) for the fraction"
    )
    args = parser.parse_args()
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # TensorFlow's start-up chatter
    import tensorflow as tf

    gpus = tf.config.list_physical_devices("GPU")
    if args.device == "gpu" and not gpus:
        raise SystemExit("no GPU visible to TensorFlow: run with --device cpu")
    cases = [("tcs2019", 299, 16), ("resnet", 64, 64)]  # the 2019 network, and the default
    variants = [("float32", False)]
    if args.device == "gpu":
        variants += [("mixed_float16", False), ("mixed_float16", True)]
    rows = []
    for backbone, size, batch in cases:
        data = _data(size, faces=400)
        for precision, jit in variants:
            rows.append(measure(backbone, size, batch, args.steps, precision, jit, data))
    print(f"device: {gpus[0].name if gpus else 'CPU'}; {args.steps} steps per measurement")
    head = f"{'backbone':<10}{'size':>5}{'precision':>15}{'xla':>5}{'real img/s':>12}"
    print(head + f"{'const img/s':>12}{'ratio':>7}{'GFLOP/img':>10}{'TFLOP/s':>9}")
    for r in rows:
        tflops = 3 * r["gflops"] * r["real"] / 1e3  # forward + backward ~ 3x forward
        line = f"{r['backbone']:<10}{r['size']:>5}{r['precision']:>15}{str(r['jit']):>5}"
        line += f"{r['real']:>12.1f}{r['constant']:>12.1f}{r['real'] / r['constant']:>7.2f}"
        line += f"{r['gflops']:>10.3f}{tflops:>9.3f}"
        if args.peak_tflops:
            line += f"  {tflops / args.peak_tflops:.1%} of peak"
        print(line)
    print(
        "2019 reference: ~105 img/s here for tcs2019 at 299 px, batch 16 (its own figure); "
        "~9 img/s on a Colab T4."
    )


if __name__ == "__main__":
    main()
