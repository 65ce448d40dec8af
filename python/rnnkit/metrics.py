"""Accuracy, the one metric the tutorial uses, under Keras' names 'acc' and 'accuracy'."""

from __future__ import annotations

import numpy as np

NAMES = ("acc", "accuracy")


def check(metrics):
    metrics = list(metrics or [])
    for m in metrics:
        if m not in NAMES:
            raise ValueError(f"unknown metric {m!r}; rnnkit knows {', '.join(NAMES)}")
    return metrics


def correct_predictions(y_true, y_pred) -> int:
    """How many predictions are right: thresholded at 0.5 for a single output (as Keras'
    binary_accuracy), the arg-max otherwise (integer labels or one-hot rows). A prediction with a NaN
    in it is wrong whatever the label: NaN > 0.5 is False, and would otherwise pass for a 0."""
    if y_pred.ndim == 1 or y_pred.shape[-1] == 1:
        predicted = y_pred.reshape(-1)
        right = (predicted > 0.5) == (np.asarray(y_true).reshape(-1) > 0.5)
        return int(np.sum(right & ~np.isnan(predicted)))
    predicted = y_pred.argmax(axis=-1)
    labels = y_true if y_true.ndim == predicted.ndim else y_true.argmax(axis=-1)
    return int(np.sum((predicted == labels) & ~np.isnan(y_pred).any(axis=-1)))
