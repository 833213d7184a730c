"""The multi-task network: a backbone and one named softmax head per task."""

from __future__ import annotations

import keras
from keras import layers, regularizers

from frlib.config import Config
from frlib.labels import TASKS
from frlib.losses import MacroF1, MaskedAccuracy, MaskedSparseCrossentropy

BACKBONES = ("resnet", "tcs2019", "mobilenetv3", "efficientnetb0")
# Keras' default 0.99 needs hundreds of steps before the moving statistics that inference
# uses are right; small datasets and short runs get far fewer.
BN_MOMENTUM = 0.9


def _tcs2019(inputs, config: Config):
    """The 2019 challenge network's trunk, layer for layer (5x5 convs, 5x5 pools)."""
    x = layers.Rescaling(1 / 255.0)(inputs)
    x = layers.Conv2D(32, 5, activation="relu", padding="same")(x)
    x = layers.MaxPooling2D(5, padding="same")(x)
    for filters in (64, 128, 64):
        x = layers.Conv2D(filters, 5, activation="relu", padding="same")(x)
        x = layers.MaxPooling2D(5, padding="same")(x)
    x = layers.Conv2D(32, 5, activation="relu", padding="same")(x)
    x = layers.GlobalAveragePooling2D()(x)
    x = layers.Dense(128, activation="relu", kernel_regularizer=regularizers.l2(1e-3))(x)
    x = layers.BatchNormalization(momentum=BN_MOMENTUM)(x)
    return layers.Dropout(0.2)(x)


def _residual_block(x, filters: int, stride: int):
    shortcut = x
    y = layers.Conv2D(filters, 3, strides=stride, padding="same", use_bias=False)(x)
    y = layers.BatchNormalization(momentum=BN_MOMENTUM)(y)
    y = layers.ReLU()(y)
    y = layers.Conv2D(filters, 3, padding="same", use_bias=False)(y)
    y = layers.BatchNormalization(momentum=BN_MOMENTUM, gamma_initializer="zeros")(y)
    if stride != 1 or shortcut.shape[-1] != filters:
        shortcut = layers.Conv2D(filters, 1, strides=stride, use_bias=False)(shortcut)
        shortcut = layers.BatchNormalization(momentum=BN_MOMENTUM)(shortcut)
    return layers.ReLU()(layers.Add()([shortcut, y]))


def _resnet(inputs, config: Config):
    """A small ResNet: BatchNorm everywhere, one residual block per stage, trains from scratch."""
    widths = [config.width * 2**i for i in range(4)]
    x = layers.Rescaling(1 / 127.5, offset=-1.0)(inputs)
    x = layers.Conv2D(widths[0], 3, strides=2, padding="same")(x)
    x = layers.ReLU()(layers.BatchNormalization(momentum=BN_MOMENTUM)(x))
    for i, width in enumerate(widths):
        x = _residual_block(x, width, stride=1 if i == 0 else 2)
    x = layers.GlobalAveragePooling2D()(x)
    return layers.Dropout(config.dropout)(x)


def _application(inputs, config: Config):
    """MobileNetV3-Small or EfficientNet-B0 from keras.applications, ImageNet weights if asked."""
    build = {
        "mobilenetv3": keras.applications.MobileNetV3Small,
        "efficientnetb0": keras.applications.EfficientNetB0,
    }[config.backbone]
    kwargs = dict(include_top=False, input_shape=inputs.shape[1:], pooling="avg")
    try:
        net = build(weights=config.weights, **kwargs)
    except Exception as exc:  # offline, or a size the weights do not exist for
        if config.weights is None:
            raise
        print(f"ImageNet weights unavailable ({type(exc).__name__}); training from scratch.")
        net = build(weights=None, **kwargs)
    return layers.Dropout(config.dropout)(net(inputs))


def build_model(
    config: Config,
    class_weights: dict[str, list[float]] | None = None,
    *,
    jit_compile: bool = False,
):
    """Build and compile the model: a backbone, then one named softmax head per task.

    Layers take Keras' global dtype policy (mixed precision: see frlib.scale); the heads always
    compute and return float32.

    Args:
        config: backbone, image size, dropout, learning rate, loss weights, label smoothing.
        class_weights: optional per-class loss weights per task (from the training split).
        jit_compile: XLA-compile the train step (frlib.scale.use_jit decides).
    Returns:
        A compiled keras.Model with outputs named after the tasks.
    """
    if config.backbone not in BACKBONES:
        raise ValueError(f"unknown backbone {config.backbone!r}: choose one of {BACKBONES}")
    inputs = keras.Input((config.image_size, config.image_size, 3), name="image")
    trunk = {"tcs2019": _tcs2019, "resnet": _resnet}.get(config.backbone, _application)
    features = trunk(inputs, config)
    outputs = {}
    for task, classes in TASKS.items():
        if config.backbone == "tcs2019":
            h = layers.Dense(32, activation="relu", kernel_regularizer=regularizers.l2(1e-3))(
                features
            )
            h = layers.Dropout(0.2)(h)
        else:
            h = layers.Dense(64, activation="relu", name=f"{task}_hidden")(features)
        outputs[task] = layers.Dense(
            len(classes), activation="softmax", dtype="float32", name=task
        )(h)
    model = keras.Model(inputs, outputs, name=f"frlib_{config.backbone}")
    compile_model(model, config, class_weights, jit_compile=jit_compile)
    return model


def compile_model(
    model,
    config: Config,
    class_weights: dict[str, list[float]] | None = None,
    *,
    jit_compile: bool = False,
):
    """Compile with masked losses, per-task metrics and loss weights, all keyed by task name."""
    weights = class_weights or {}
    model.compile(
        optimizer=keras.optimizers.AdamW(config.learning_rate, weight_decay=config.weight_decay),
        loss={
            t: MaskedSparseCrossentropy(len(c), weights.get(t), config.label_smoothing)
            for t, c in TASKS.items()
        },
        loss_weights={t: float(config.loss_weights.get(t, 1.0)) for t in TASKS},
        metrics={t: [MaskedAccuracy(), MacroF1(len(c))] for t, c in TASKS.items()},
        jit_compile=jit_compile,
    )
    return model
