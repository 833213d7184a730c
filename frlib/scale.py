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
