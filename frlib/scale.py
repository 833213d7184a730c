"""Where training runs: the tf.distribute strategy, chosen in one place."""

from __future__ import annotations

import contextlib

import tensorflow as tf

from frlib.config import Config

STRATEGIES = ("auto", "default", "mirrored", "tpu")


def get_strategy(name: str = "auto") -> tf.distribute.Strategy:
    """TPUStrategy on a TPU, MirroredStrategy with several GPUs (or when asked), else the default."""
    if name not in STRATEGIES:
        raise ValueError(f"unknown strategy {name!r}: choose one of {STRATEGIES}")
    if name in ("auto", "tpu"):
        try:
            resolver = tf.distribute.cluster_resolver.TPUClusterResolver()
            tf.config.experimental_connect_to_cluster(resolver)
            tf.tpu.experimental.initialize_tpu_system(resolver)
            return tf.distribute.TPUStrategy(resolver)
        except (ValueError, RuntimeError, tf.errors.NotFoundError):
            if name == "tpu":
                raise RuntimeError("strategy 'tpu' asked for, but no TPU was found") from None
    gpus = tf.config.list_logical_devices("GPU")
    if name == "mirrored" or (name == "auto" and len(gpus) > 1):
        return tf.distribute.MirroredStrategy()
    return tf.distribute.get_strategy()


@contextlib.contextmanager
def strategy_scope(config: Config):
    """Enter the config's strategy scope; yields the number of replicas (global batch factor)."""
    strategy = get_strategy(config.strategy)
    with strategy.scope():
        yield strategy.num_replicas_in_sync


def use_memory_growth() -> list[str]:
    """Let TensorFlow take GPU memory as it needs it, not all at once; the GPUs' names.

    Call it before anything runs on a GPU: once TensorFlow has set a GPU up, growth is fixed.
    """
    gpus = tf.config.list_physical_devices("GPU")
    for gpu in gpus:
        # A GPU already in use raises RuntimeError: its memory setting can't change any more.
        with contextlib.suppress(RuntimeError):
            tf.config.experimental.set_memory_growth(gpu, True)
    return [tf.config.experimental.get_device_details(g).get("device_name", g.name) for g in gpus]


def describe_devices() -> str:
    """One line: the TensorFlow version and the GPUs it will train on (with memory growth set)."""
    gpus = use_memory_growth()
    if not gpus:
        return (
            f"TensorFlow {tf.__version__} on CPU: no GPU found "
            "(on Colab: Runtime > Change runtime type > GPU)"
        )
    return f"TensorFlow {tf.__version__} on {len(gpus)} GPU(s): {', '.join(gpus)}"
