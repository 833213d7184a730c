"""Model: the 2019 reference layer for layer, named heads, masked losses and metrics."""

import keras
import numpy as np
import pytest

from frlib.config import Config
from frlib.labels import TASKS
from frlib.losses import MacroF1, MaskedAccuracy, MaskedSparseCrossentropy
from frlib.model import build_model
from frlib.train import class_weights


def test_tcs2019_is_the_2019_network():
    model = build_model(Config(backbone="tcs2019", image_size=299))
    convs = [layer for layer in model.layers if isinstance(layer, keras.layers.Conv2D)]
    pools = [layer for layer in model.layers if isinstance(layer, keras.layers.MaxPooling2D)]
    assert [c.filters for c in convs] == [32, 64, 128, 64, 32]
    assert all(c.kernel_size == (5, 5) for c in convs)
    assert len(pools) == 4 and all(p.pool_size == (5, 5) for p in pools)
    assert model.input_shape == (None, 299, 299, 3)
    # 532k in the 2019 description; our fourth (gender) head adds the rest.
    assert 530_000 < model.count_params() < 540_000


@pytest.mark.parametrize("backbone", ["resnet", "mobilenetv3"])
def test_outputs_are_named_per_task(backbone):
    model = build_model(Config(backbone=backbone, image_size=64, weights=None))
    out = model(np.zeros((2, 64, 64, 3), np.float32))
    assert set(out) == set(TASKS)
    for task, classes in TASKS.items():
        assert out[task].shape == (2, len(classes))
        assert np.allclose(np.asarray(out[task]).sum(1), 1.0, atol=1e-4)


def test_unknown_backbone_is_a_clear_error():
    with pytest.raises(ValueError, match="unknown backbone"):
        build_model(Config(backbone="vgg99"))


def test_offline_imagenet_weights_fall_back(monkeypatch, capsys):
    def refuse(*args, **kwargs):
        raise OSError("no network")

    monkeypatch.setattr(keras.utils, "get_file", refuse)
    build_model(Config(backbone="mobilenetv3", image_size=64, weights="imagenet"))
    assert "training from scratch" in capsys.readouterr().out


def test_masked_loss_ignores_missing_labels():
    loss = MaskedSparseCrossentropy(3)
    pred = np.array([[0.7, 0.2, 0.1], [0.1, 0.1, 0.8], [0.3, 0.3, 0.4]], np.float32)
    alone = float(loss(np.array([0]), pred[:1]))
    assert alone == pytest.approx(-np.log(0.7), rel=1e-5)
    # Adding examples without this head's label changes nothing.
    assert float(loss(np.array([0, -1, -1]), pred)) == pytest.approx(alone, rel=1e-5)
    # A batch with no label at all gives zero loss, not NaN.
    assert float(loss(np.array([-1, -1, -1]), pred)) == 0.0


def test_class_weights_scale_the_loss():
    weighted = MaskedSparseCrossentropy(2, class_weights=[1.0, 3.0])
    pred = np.array([[0.5, 0.5]], np.float32)
    plain = float(MaskedSparseCrossentropy(2)(np.array([1]), pred))
    assert float(weighted(np.array([1]), pred)) == pytest.approx(3 * plain, rel=1e-5)


def test_metrics_count_labelled_examples_only():
    acc, f1 = MaskedAccuracy(), MacroF1(3)
    y = np.array([0, 1, -1, 2])
    pred = np.eye(3, dtype=np.float32)[[0, 1, 1, 1]]
    acc.update_state(y, pred)
    f1.update_state(y, pred)
    assert float(acc.result()) == pytest.approx(2 / 3)
    # Class 0: F1 1; class 1: P 1/2 R 1 -> 2/3; class 2: 0.
    assert float(f1.result()) == pytest.approx((1 + 2 / 3 + 0) / 3, rel=1e-5)


def test_class_weights_are_balanced_and_capped():
    labels = {t: np.full(100, -1) for t in TASKS}
    labels["gender"] = np.array([0] * 90 + [1] * 10)
    labels["emotion"] = np.array([0] * 999 + [1])[:100]
    weights = class_weights(labels)
    assert weights["gender"] == pytest.approx([100 / 180, 100 / 20], rel=1e-3)
    assert max(weights["emotion"]) <= 10.0
    assert weights["age"] == [1.0] * 5
