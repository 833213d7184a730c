"""Where and how fast training runs: tf.distribute strategy, precision and XLA, chosen in one place."""

from __future__ import annotations

import contextlib
import dataclasses
import os

import keras
import tensorflow as tf

from frlib.config import Config

STRATEGIES = ("auto", "default", "mirrored", "tpu")
PRECISIONS = ("auto", "float32", "mixed_float16", "mixed_bfloat16")


def tpu_address() -> str | None:
    """Where a TPU is, found without any network call; None on a machine without one.

    $TPU_NAME (Cloud TPU), "grpc://$COLAB_TPU_ADDR" (Colab's old TPU nodes), or "local" on a
    TPU VM (Colab's "TPU v2" runtime, Cloud TPU VMs), which lists TPU devices or sets
    $TPU_ACCELERATOR_TYPE. Probing only then keeps TPUClusterResolver from ever trying the GCE
    metadata server on an ordinary machine.
    """
    if os.environ.get("TPU_NAME"):
        return os.environ["TPU_NAME"]
    if os.environ.get("COLAB_TPU_ADDR"):
        return "grpc://" + os.environ["COLAB_TPU_ADDR"]
    if os.environ.get("TPU_ACCELERATOR_TYPE") or tf.config.list_physical_devices("TPU"):
        return "local"
    return None


def _tpu_strategy(address: str) -> tf.distribute.TPUStrategy:
    resolver = tf.distribute.cluster_resolver.TPUClusterResolver(tpu=address)
    tf.config.experimental_connect_to_cluster(resolver)
    tf.tpu.experimental.initialize_tpu_system(resolver)
    return tf.distribute.TPUStrategy(resolver)


def get_strategy(name: str = "auto") -> tf.distribute.Strategy:
    """TPUStrategy on a TPU, MirroredStrategy with several GPUs (or when asked), else the default.

    "mirrored" on a machine without GPUs mirrors over its logical CPUs (one replica unless
    they were split with tf.config.set_logical_device_configuration, as the tests do).
    """
    if name not in STRATEGIES:
        raise ValueError(f"unknown strategy {name!r}: choose one of {STRATEGIES}")
    address = tpu_address() if name in ("auto", "tpu") else None
    if name == "tpu" and address is None:
        raise RuntimeError(
            "strategy 'tpu' asked for, but no TPU was found (no TPU device, $TPU_NAME or "
            "$COLAB_TPU_ADDR): on Colab pick Runtime > Change runtime type > TPU, or use 'auto'"
        )
    if address is not None:
        try:
            return _tpu_strategy(address)
        except (ValueError, RuntimeError, tf.errors.OpError) as exc:
            if name == "tpu":
                raise RuntimeError(f"could not start the TPU at {address!r}: {exc}") from exc
            print(f"TPU at {address!r} unavailable ({type(exc).__name__}); not using it.")
    gpus = tf.config.list_logical_devices("GPU")
    if name == "mirrored" or (name == "auto" and len(gpus) > 1):
        devices = gpus or tf.config.list_logical_devices("CPU")
        return tf.distribute.MirroredStrategy([d.name for d in devices])
    return tf.distribute.get_strategy()


def accelerator(strategy: tf.distribute.Strategy | None = None) -> str:
    """What `strategy` (default: the current one) computes on: "tpu", "gpu" or "cpu"."""
    strategy = strategy or tf.distribute.get_strategy()
    if isinstance(strategy, tf.distribute.TPUStrategy):
        return "tpu"
    return "gpu" if tf.config.list_logical_devices("GPU") else "cpu"


def configure_precision(config: Config, strategy: tf.distribute.Strategy | None = None) -> str:
    """Set Keras' global dtype policy from `config.mixed_precision`; returns the policy's name.

    "auto" picks mixed_float16 on a GPU, mixed_bfloat16 on a TPU and float32 on a CPU (where
    half precision is slower, not faster). The heads stay float32 (model.py), so the softmax
    and the losses are computed in float32. Affects every model built afterwards: put the
    old policy back with `keras.mixed_precision.set_global_policy(...)` (strategy_scope does).
    """
    name = config.mixed_precision
    if name not in PRECISIONS:
        raise ValueError(f"unknown mixed_precision {name!r}: choose one of {PRECISIONS}")
    if name == "auto":
        name = {"gpu": "mixed_float16", "tpu": "mixed_bfloat16"}.get(
            accelerator(strategy), "float32"
        )
    keras.mixed_precision.set_global_policy(name)
    return name


def use_jit(config: Config, strategy: tf.distribute.Strategy | None = None) -> bool:
    """Whether to XLA-compile the train step: config.jit_compile "auto" → on a GPU or TPU only.

    Accepts True/False or "true"/"false" (also "1"/"0", "yes"/"no", any case).
    """
    value = config.jit_compile
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text == "auto":
        return accelerator(strategy) != "cpu"
    if text in ("true", "1", "yes", "on"):
        return True
    if text in ("false", "0", "no", "off"):
        return False
    raise ValueError(f"jit_compile {value!r}: use 'auto', 'true' or 'false'")


@dataclasses.dataclass(frozen=True)
class Scale:
    """How a run is spread and sped up: what `strategy_scope` yields."""

    strategy: tf.distribute.Strategy
    precision: str
    jit_compile: bool

    @property
    def replicas(self) -> int:
        """Number of model copies: the global batch is config.batch_size times this."""
        return int(self.strategy.num_replicas_in_sync)

    def describe(self) -> dict:
        """A JSON-ready summary, saved as run.json beside the model."""
        return {
            "strategy": type(self.strategy).__name__,
            "replicas": self.replicas,
            "accelerator": accelerator(self.strategy),
            "precision": self.precision,
            "jit_compile": self.jit_compile,
            "tensorflow": tf.__version__,
        }


@contextlib.contextmanager
def strategy_scope(config: Config):
    """Pick the strategy, precision and XLA from `config` and enter the strategy's scope.

    Yields a `Scale`. On exit the global dtype policy is put back as it was, so a notebook's
    later cells build float32 models again.
    """
    strategy = get_strategy(config.strategy)
    previous = keras.mixed_precision.global_policy()
    try:
        precision = configure_precision(config, strategy)
        with strategy.scope():
            yield Scale(strategy, precision, use_jit(config, strategy))
    finally:
        keras.mixed_precision.set_global_policy(previous)


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
