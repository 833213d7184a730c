"""Masked multi-task losses and metrics: a head learns and is scored only where it has a label."""

from __future__ import annotations

import keras
from keras import ops


def _mask(y_true):
    y_true = ops.reshape(ops.cast(y_true, "int32"), (-1,))
    mask = ops.cast(y_true >= 0, "float32")
    return ops.maximum(y_true, 0), mask


@keras.saving.register_keras_serializable(package="frlib")
class MaskedSparseCrossentropy(keras.losses.Loss):
    """Sparse categorical cross-entropy over labelled examples only (label -1 = missing).

    The mean is over labelled examples of the batch, so a head's loss does not shrink when
    other heads' examples fill the batch. Optional per-class weights and label smoothing.
    """

    def __init__(self, num_classes, class_weights=None, label_smoothing=0.0, **kwargs):
        kwargs.setdefault("reduction", "sum")
        super().__init__(**kwargs)
        self.num_classes = int(num_classes)
        self.class_weights = None if class_weights is None else [float(w) for w in class_weights]
        self.label_smoothing = float(label_smoothing)

    def call(self, y_true, y_pred):
        labels, mask = _mask(y_true)
        y_pred = ops.cast(y_pred, "float32")
        target = ops.one_hot(labels, self.num_classes)
        if self.label_smoothing:
            target = target * (1 - self.label_smoothing) + self.label_smoothing / self.num_classes
        per_example = keras.losses.categorical_crossentropy(target, y_pred)
        if self.class_weights is not None:
            per_example = per_example * ops.take(ops.convert_to_tensor(self.class_weights), labels)
        weights = mask / ops.maximum(ops.sum(mask), 1.0)
        return per_example * weights

    def get_config(self):
        return {
            **super().get_config(),
            "num_classes": self.num_classes,
            "class_weights": self.class_weights,
            "label_smoothing": self.label_smoothing,
        }


@keras.saving.register_keras_serializable(package="frlib")
class MaskedAccuracy(keras.metrics.Metric):
    """Accuracy over labelled examples only."""

    def __init__(self, name="accuracy", **kwargs):
        super().__init__(name=name, **kwargs)
        self.correct = self.add_variable(shape=(), initializer="zeros", name="correct")
        self.count = self.add_variable(shape=(), initializer="zeros", name="count")

    def update_state(self, y_true, y_pred, sample_weight=None):
        labels, mask = _mask(y_true)
        hit = ops.cast(ops.equal(ops.argmax(y_pred, axis=-1), labels), "float32")
        self.correct.assign_add(ops.sum(hit * mask))
        self.count.assign_add(ops.sum(mask))

    def result(self):
        return self.correct / ops.maximum(self.count, 1.0)

    def reset_state(self):
        self.correct.assign(0.0)
        self.count.assign(0.0)


@keras.saving.register_keras_serializable(package="frlib")
class MacroF1(keras.metrics.Metric):
    """Macro-averaged F1 over labelled examples, from a running confusion matrix.

    Classes that never occur (neither true nor predicted) are left out of the average.
    """

    def __init__(self, num_classes, name="macro_f1", **kwargs):
        super().__init__(name=name, **kwargs)
        self.num_classes = int(num_classes)
        shape = (self.num_classes, self.num_classes)
        self.matrix = self.add_variable(shape=shape, initializer="zeros", name="confusion")

    def update_state(self, y_true, y_pred, sample_weight=None):
        labels, mask = _mask(y_true)
        predicted = ops.argmax(y_pred, axis=-1)
        true_1h = ops.one_hot(labels, self.num_classes) * mask[:, None]
        pred_1h = ops.one_hot(predicted, self.num_classes)
        self.matrix.assign_add(ops.matmul(ops.transpose(true_1h), pred_1h))

    def result(self):
        tp = ops.diagonal(self.matrix)
        support = ops.sum(self.matrix, axis=1)
        predicted = ops.sum(self.matrix, axis=0)
        f1 = 2 * tp / ops.maximum(support + predicted, 1.0)
        present = ops.cast((support + predicted) > 0, "float32")
        return ops.sum(f1 * present) / ops.maximum(ops.sum(present), 1.0)

    def reset_state(self):
        # ops.zeros, not zeros_like(variable): JAX cannot take a Keras Variable there.
        self.matrix.assign(ops.zeros(self.matrix.shape, self.matrix.dtype))

    def get_config(self):
        return {**super().get_config(), "num_classes": self.num_classes}
