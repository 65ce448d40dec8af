"""Metrics, as in ``keras.metrics``: a running mean over every sample seen since the last reset.

A metric function gives a value per element (accuracies and errors averaged over the last axis, as
Keras does); the metric averages those over each sample, weighs samples by their sample weights and
masked steps by zero, and keeps a total and a count, so per-timestep outputs are averaged over every
element, not counted per element and divided by the samples. ``'acc'`` and ``'accuracy'`` become
binary, sparse categorical or categorical accuracy by the shapes of the labels and predictions, as in
Keras. A prediction with a NaN in it is wrong whatever the label (Keras would read NaN > 0.5 as 0).
"""

from __future__ import annotations

from typing import Any, Callable

import numpy as np

from .losses import MeanAbsoluteError as _MAELoss
from .losses import MeanSquaredError as _MSELoss


def _samplewise(values, sample_weight):
    """Keras' reduce_to_samplewise_values: values (and weights) reduced to one per sample."""
    if sample_weight is not None:
        sw = np.asarray(sample_weight, np.float64)
        if values.ndim == sw.ndim + 1 and values.shape[-1] == 1:
            values = values[..., 0]
        elif sw.ndim == values.ndim + 1 and sw.shape[-1] == 1:
            sw = sw[..., 0]
        if values.ndim > sw.ndim:
            values = values.mean(axis=tuple(range(sw.ndim, values.ndim)))
        sw = np.broadcast_to(sw, values.shape)
        values = values * sw
        if sw.ndim > 1:
            sw = sw.mean(axis=tuple(range(1, sw.ndim)))
        sample_weight = sw
    if values.ndim > 1:
        values = values.mean(axis=tuple(range(1, values.ndim)))
    return values, sample_weight


class Metric:
    """A value accumulated over batches: update_state, result, reset_state."""

    name = "metric"

    def __init__(self, name: str | None = None, dtype: str | None = None) -> None:
        if name is not None:
            self.name = name
        self.reset_state()

    def reset_state(self) -> None:
        self.total, self.count = 0.0, 0.0

    def result(self) -> float:
        return self.total / self.count if self.count else 0.0

    # for saving a run mid-epoch (BackupAndRestore)
    def get_state(self):
        return [float(self.total), float(self.count)]

    def set_state(self, state):
        self.total, self.count = (float(v) for v in state)


class Mean(Metric):
    name = "mean"

    def update_state(self, values: Any, sample_weight: Any = None) -> None:
        values, sample_weight = _samplewise(np.asarray(values, np.float64), sample_weight)
        self.total += float(np.sum(values))
        self.count += float(np.sum(sample_weight)) if sample_weight is not None else float(
            values.shape[0] if values.ndim else 1)


class MeanMetricWrapper(Mean):
    """The running mean of fn(y_true, y_pred), a value per element."""

    def __init__(self, fn: Callable, name: str | None = None, dtype: str | None = None, **kwargs) -> None:
        self._fn, self._fn_kwargs = fn, kwargs
        super().__init__(name=name or getattr(fn, "__name__", "metric"), dtype=dtype)

    def update_state(self, y_true: Any, y_pred: Any, sample_weight: Any = None, mask: Any = None) -> None:
        values = self._fn(y_true, y_pred, **self._fn_kwargs)
        if mask is not None:  # masked elements weigh 0 (Keras' apply_mask with reduction "sum")
            mask = np.asarray(mask, np.float64)
            if sample_weight is not None:
                sw = np.asarray(sample_weight, np.float64)
                sw = sw.reshape(sw.shape + (1,) * (mask.ndim - sw.ndim)) if sw.ndim < mask.ndim else sw
                mask = mask * sw
            sample_weight = mask
        super().update_state(values, sample_weight)


def _labels_like(y_true, y_pred):
    y_true = np.asarray(y_true)
    if y_true.ndim == y_pred.ndim - 1:
        y_true = y_true[..., None]
    return y_true


def _nan_rows(y_pred):
    return np.isnan(y_pred).any(axis=-1)


def binary_accuracy(y_true: Any, y_pred: Any, threshold: float = 0.5) -> np.ndarray:
    y_pred = np.asarray(y_pred)
    y_true = _labels_like(y_true, y_pred)
    right = (y_true == (y_pred > threshold)) & ~np.isnan(y_pred)
    return right.mean(axis=-1)


def categorical_accuracy(y_true: Any, y_pred: Any) -> np.ndarray:
    y_pred = np.asarray(y_pred)
    right = np.argmax(np.asarray(y_true), axis=-1) == np.argmax(y_pred, axis=-1)
    return (right & ~_nan_rows(y_pred)).astype(np.float64)


def sparse_categorical_accuracy(y_true: Any, y_pred: Any) -> np.ndarray:
    y_pred = np.asarray(y_pred)
    y_true = np.asarray(y_true)
    if y_true.ndim == y_pred.ndim and y_true.shape[-1] == 1:
        y_true = y_true[..., 0]
    right = y_true.astype(np.int64) == np.argmax(y_pred, axis=-1)
    return (right & ~_nan_rows(y_pred)).astype(np.float64)


def accuracy(y_true: Any, y_pred: Any) -> np.ndarray:
    y_pred = np.asarray(y_pred)
    return (np.asarray(y_true) == y_pred).astype(np.float64)


def _loss_values(loss_class):
    def fn(y_true: Any, y_pred: Any) -> np.ndarray:
        loss = loss_class()
        y_pred = np.asarray(y_pred, np.float64)
        return loss.elements(loss.targets(y_true, y_pred.shape), y_pred)[0]

    return fn


mean_absolute_error = _loss_values(_MAELoss)
mean_squared_error = _loss_values(_MSELoss)


class BinaryAccuracy(MeanMetricWrapper):
    def __init__(self, name: str = "binary_accuracy", dtype: str | None = None, threshold: float = 0.5) -> None:
        super().__init__(binary_accuracy, name=name, dtype=dtype, threshold=threshold)


class CategoricalAccuracy(MeanMetricWrapper):
    def __init__(self, name: str = "categorical_accuracy", dtype: str | None = None) -> None:
        super().__init__(categorical_accuracy, name=name, dtype=dtype)


class SparseCategoricalAccuracy(MeanMetricWrapper):
    def __init__(self, name: str = "sparse_categorical_accuracy", dtype: str | None = None) -> None:
        super().__init__(sparse_categorical_accuracy, name=name, dtype=dtype)


class Accuracy(MeanMetricWrapper):
    def __init__(self, name: str = "accuracy", dtype: str | None = None) -> None:
        super().__init__(accuracy, name=name, dtype=dtype)


class MeanAbsoluteError(MeanMetricWrapper):
    def __init__(self, name: str = "mean_absolute_error", dtype: str | None = None) -> None:
        super().__init__(mean_absolute_error, name=name, dtype=dtype)


class MeanSquaredError(MeanMetricWrapper):
    def __init__(self, name: str = "mean_squared_error", dtype: str | None = None) -> None:
        super().__init__(mean_squared_error, name=name, dtype=dtype)


_BY_NAME = {
    "binary_accuracy": BinaryAccuracy,
    "categorical_accuracy": CategoricalAccuracy,
    "sparse_categorical_accuracy": SparseCategoricalAccuracy,
    "mae": MeanAbsoluteError,
    "mean_absolute_error": MeanAbsoluteError,
    "mse": MeanSquaredError,
    "mean_squared_error": MeanSquaredError,
}
ACCURACY_NAMES = ("acc", "accuracy")


def check(identifier):
    """ValueError unless compile can make a metric of this (a name, a Metric, a Metric class)."""
    if isinstance(identifier, Metric) or (isinstance(identifier, type) and issubclass(identifier, Metric)):
        return identifier
    if isinstance(identifier, str) and (identifier in _BY_NAME or identifier in ACCURACY_NAMES):
        return identifier
    known = ", ".join(sorted(ACCURACY_NAMES + tuple(_BY_NAME)))
    raise ValueError(f"unknown metric {identifier!r}; rnnkit knows {known}, and rnnkit.metrics.Metric objects")


def get(identifier, y_true_shape, y_pred_shape) -> Metric:
    """The metric compile named, for labels and predictions of these shapes (which decide what 'acc' is)."""
    check(identifier)
    if isinstance(identifier, Metric):
        return identifier
    if isinstance(identifier, type):
        return identifier()
    if identifier in ACCURACY_NAMES:
        if y_pred_shape[-1] == 1:
            return BinaryAccuracy(name=identifier)
        if len(y_true_shape) < len(y_pred_shape) or (y_true_shape[-1] == 1 and y_pred_shape[-1] > 1):
            return SparseCategoricalAccuracy(name=identifier)
        return CategoricalAccuracy(name=identifier)
    return _BY_NAME[identifier](name=identifier)


def spec_name(spec) -> str:
    """The name a saved model records for a metric compile was given."""
    if isinstance(spec, str):
        return spec
    cls = spec if isinstance(spec, type) else type(spec)
    for name, known in _BY_NAME.items():
        if known is cls:
            return name
    raise ValueError(f"the metric {spec!r} is not one rnnkit can save by name")
