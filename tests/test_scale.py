"""Scale: strategy, precision and XLA choices; a mirrored run trains, reloads and resumes."""

import csv
import json
import os
import subprocess
import sys
import time

import keras
import numpy as np
import pytest
import tensorflow as tf

from frlib.config import Config
from frlib.labels import TASKS
from frlib.losses import MaskedSparseCrossentropy
from frlib.model import build_model
from frlib.predict import load_model
from frlib.scale import configure_precision, get_strategy, strategy_scope, tpu_address, use_jit

TPU_ENV = ("TPU_NAME", "COLAB_TPU_ADDR", "TPU_ACCELERATOR_TYPE")


@pytest.fixture
def no_tpu_env(monkeypatch):
    for name in TPU_ENV:
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def float32_after():
    yield
    keras.mixed_precision.set_global_policy("float32")


def test_default_strategy_has_one_replica():
    strategy = get_strategy("default")
    assert strategy is tf.distribute.get_strategy()
    assert strategy.num_replicas_in_sync == 1


def test_unknown_strategy_is_a_clear_error():
    with pytest.raises(ValueError, match="unknown strategy 'gpu9'"):
        get_strategy("gpu9")


def test_no_tpu_is_found_fast_and_quietly(no_tpu_env, capsys):
    started = time.perf_counter()
    assert tpu_address() is None
    assert not isinstance(get_strategy("auto"), tf.distribute.TPUStrategy)
    with pytest.raises(RuntimeError, match="no TPU was found"):
        get_strategy("tpu")
    assert time.perf_counter() - started < 5
    assert capsys.readouterr().out == ""


def test_tpu_address_comes_from_the_environment(no_tpu_env, monkeypatch):
    monkeypatch.setenv("COLAB_TPU_ADDR", "10.0.0.2:8470")
    assert tpu_address() == "grpc://10.0.0.2:8470"
    monkeypatch.setenv("TPU_NAME", "my-tpu")
    assert tpu_address() == "my-tpu"
    monkeypatch.delenv("TPU_NAME")
    monkeypatch.delenv("COLAB_TPU_ADDR")
    monkeypatch.setenv("TPU_ACCELERATOR_TYPE", "v2-8")
    assert tpu_address() == "local"


def test_auto_precision_on_cpu_is_float32(float32_after):
    assert configure_precision(Config(mixed_precision="auto")) == "float32"
    assert keras.mixed_precision.global_policy().name == "float32"


def test_unknown_precision_is_a_clear_error():
    with pytest.raises(ValueError, match="unknown mixed_precision 'half'"):
        configure_precision(Config(mixed_precision="half"))


def test_bfloat16_policy_keeps_heads_and_loss_in_float32(float32_after):
    config = Config.smoke(mixed_precision="mixed_bfloat16", width=4, image_size=32)
    assert configure_precision(config) == "mixed_bfloat16"
    assert keras.mixed_precision.global_policy().name == "mixed_bfloat16"
    model = build_model(config)
    assert model.get_layer("emotion_hidden").compute_dtype == "bfloat16"
    out = model(np.zeros((2, 32, 32, 3), np.float32))
    for task, classes in TASKS.items():
        assert out[task].dtype == "float32", task
        loss = MaskedSparseCrossentropy(len(classes))(np.array([0, -1]), out[task])
        assert loss.dtype == "float32"


def test_strategy_scope_puts_the_policy_back(float32_after):
    with strategy_scope(Config(strategy="default", mixed_precision="mixed_bfloat16")) as scale:
        assert keras.mixed_precision.global_policy().name == "mixed_bfloat16"
        assert scale.replicas == 1 and scale.jit_compile is False
        assert scale.describe()["precision"] == "mixed_bfloat16"
    assert keras.mixed_precision.global_policy().name == "float32"


@pytest.mark.parametrize(
    "value, expected",
    [("auto", False), ("true", True), ("False", False), (True, True), (False, False), ("1", True)],
)
def test_use_jit_parses_the_config(value, expected):
    assert use_jit(Config(jit_compile=value)) is expected  # "auto" is False on a CPU


def test_use_jit_rejects_nonsense():
    with pytest.raises(ValueError, match="jit_compile 'maybe'"):
        use_jit(Config(jit_compile="maybe"))


# Logical devices must be configured before TensorFlow starts: a fresh Python per run.
MIRRORED_RUN = """
import json, sys
import numpy as np
import tensorflow as tf

cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)

from frlib.config import Config
from frlib.model import build_model
from frlib.scale import get_strategy
from frlib.train import train

tmp, epochs = sys.argv[1], int(sys.argv[2])
config = Config.smoke(
    strategy="mirrored", data=[f"synthetic:{tmp}/syn?images=40"], epochs=epochs, out=f"{tmp}/run"
)
run = train(config, verbose=0)
strategy = get_strategy("mirrored")
with strategy.scope():
    model = build_model(config)
model.load_weights(run / "checkpoints" / "best.keras")
probs = model.predict(np.load(f"{tmp}/batch.npy"), verbose=0)
np.savez(f"{tmp}/probs.npz", **probs)
print(json.dumps({"replicas": strategy.num_replicas_in_sync}))
"""


def _mirrored_run(tmp_path, epochs: int) -> dict:
    script = tmp_path / "mirrored_run.py"
    script.write_text(MIRRORED_RUN)
    env = {**os.environ, "FRLIB_CACHE": str(tmp_path / "cache")}
    result = subprocess.run(
        [sys.executable, str(script), str(tmp_path), str(epochs)],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


def _epochs(history) -> list[int]:
    with history.open() as f:
        return [int(row["epoch"]) for row in csv.DictReader(f)]


def test_mirrored_training_on_two_cpus_reloads_and_resumes(tmp_path):
    batch = np.random.default_rng(0).integers(0, 256, (8, 64, 64, 3)).astype(np.float32)
    np.save(tmp_path / "batch.npy", batch)
    run = tmp_path / "run"

    assert _mirrored_run(tmp_path, epochs=2) == {"replicas": 2}
    info = json.loads((run / "run.json").read_text())
    assert info["strategy"] == "MirroredStrategy" and info["replicas"] == 2
    assert info["global_batch"] == 2 * 32 and info["precision"] == "float32"
    assert _epochs(run / "history.csv") == [0, 1]

    reloaded = load_model(run)(batch)  # one device here: the file doesn't depend on the strategy
    saved = np.load(tmp_path / "probs.npz")
    for task in TASKS:
        np.testing.assert_allclose(np.asarray(reloaded[task]), saved[task], atol=1e-5)

    assert _mirrored_run(tmp_path, epochs=3) == {"replicas": 2}
    assert _epochs(run / "history.csv") == [0, 1, 2]  # resumed after epoch 1: none repeated
