"""Losses with their gradients, as in ``keras.losses``, with Keras' definitions and reduction.

Each loss computes a value per element from the labels and the predictions (for the cross-entropies
and the mean errors, averaged over the last axis as Keras does), multiplies those by the sample
weights and by the output's mask (masked steps weigh 0, the others total/valid, as Keras' apply_mask),
and reduces them with ``reduction='sum_over_batch_size'``: the sum divided by the number of elements.
The gradient is that of exactly this value. Probabilities are clipped to [1e-7, 1 - 1e-7] as Keras
clips them, and differentiated as clipped: where the clip holds, the gradient is zero.

A loss after its matching output activation (binary cross-entropy after a sigmoid, the categorical
cross-entropies after a softmax) is computed by the model from the pre-activation logits: the same
value in the normal range, stable for any logit, and its gradient simply ``probabilities - labels``.
``from_logits=True`` reads the predictions themselves as logits.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .activations import sigmoid

EPSILON = 1e-7  # Keras' backend epsilon
REDUCTIONS = ("sum_over_batch_size", "sum", "mean")


def align_ranks(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Keras' squeeze_or_expand_to_same_rank: when the ranks differ by one and the longer one ends in a
    size-1 axis, a rank-1 array gains that axis and a longer one loses it."""
    if a.ndim == b.ndim + 1 and a.shape[-1] == 1:
        return (a, b[..., None]) if b.ndim == 1 else (a[..., 0], b)
    if b.ndim == a.ndim + 1 and b.shape[-1] == 1:
        return (a[..., None], b) if a.ndim == 1 else (a, b[..., 0])
    return a, b


def element_weights(values_shape, sample_weight=None, mask=None, dtype=np.float64):
    """Weights for the per-element values, or None for plain averaging: the sample weights (one per
    sample, spread over its steps, or one per element) times, with a mask, total/valid at the real
    elements and 0 at the masked ones (Keras' apply_mask)."""
    values_shape = tuple(values_shape)
    weights = None
    if mask is not None:
        mask = np.broadcast_to(np.asarray(mask, bool), values_shape)
        valid = int(mask.sum())
        weights = np.where(mask, mask.size / valid if valid else 0.0, 0.0)
    if sample_weight is not None:
        sw = np.asarray(sample_weight, dtype)
        while sw.ndim > len(values_shape) and sw.shape[-1] == 1:
            sw = sw[..., 0]
        sw = sw.reshape(sw.shape + (1,) * (len(values_shape) - sw.ndim))
        try:
            sw = np.broadcast_to(sw, values_shape)
        except ValueError:
            raise ValueError(f"sample weights of shape {np.shape(sample_weight)} do not fit the outputs' "
                             f"{values_shape}: give one per sample or one per element") from None
        weights = sw if weights is None else weights * sw
    return weights


class Loss:
    """Base class: a subclass defines the per-element value and its gradient."""

    name = "loss"
    fused_activation = None  # the output activation whose logits this loss takes directly

    def __init__(self, from_logits: bool = False, reduction: str = "sum_over_batch_size",
                 name: str | None = None) -> None:
        if reduction not in REDUCTIONS:
            raise ValueError(f"{type(self).__name__}: reduction must be one of {REDUCTIONS}, got {reduction!r} "
                             f"(rnnkit trains on a reduced loss)")
        self.from_logits = bool(from_logits)
        self.reduction = reduction
        if name is not None:
            self.name = name

    # --- to define ---------------------------------------------------------------------------------

    def targets(self, y_true, y_pred_shape):
        """The labels as the loss reads them, checked against predictions of this shape."""
        raise NotImplementedError

    def elements(self, y, y_pred):
        """(values, d values / d y_pred) for probabilities (or predictions) y_pred."""
        raise NotImplementedError

    def elements_from_logits(self, y, logits):
        """(values, d values / d logits) where the predictions are the fused activation of logits."""
        raise NotImplementedError(f"{self.name} has no logits form")

    # --- what the model and users call ----------------------------------------------------------------

    def value_and_gradient(self, y_true, y_pred, sample_weight=None, mask=None, logits=None):
        """(loss, d loss / d y_pred), or d loss / d logits when ``logits`` (the fused activation's input) are
        given or the loss reads its predictions as logits (from_logits=True)."""
        y = self.targets(y_true, y_pred.shape)
        if logits is not None:
            values, grad = self.elements_from_logits(y, logits)
        elif self.from_logits:
            values, grad = self.elements_from_logits(y, y_pred)
        else:
            values, grad = self.elements(y, y_pred)
        weights = element_weights(values.shape, sample_weight, mask, values.dtype)
        count = 1 if self.reduction == "sum" else max(values.size, 1)
        if weights is None:  # plain averaging: divided as such, so the common case keeps its exact bits
            total = np.sum(values) if self.reduction == "sum" else np.mean(values)
            return float(total), (grad / count).astype(y_pred.dtype, copy=False)
        total = np.sum(values * weights) / count
        d_values = (weights / count).reshape(weights.shape + (1,) * (grad.ndim - weights.ndim))
        return float(total), (grad * d_values).astype(y_pred.dtype, copy=False)

    def __call__(self, y_true: Any, y_pred: Any, sample_weight: Any = None) -> float:
        y_pred = np.asarray(y_pred, dtype=np.result_type(np.asarray(y_pred).dtype, np.float32))
        return self.value_and_gradient(y_true, y_pred, sample_weight)[0]

    def get_config(self) -> dict:
        return {"name": self.name, "from_logits": self.from_logits, "reduction": self.reduction}


def _numbers(y, name, what="labels"):
    y = np.asarray(y)
    if y.dtype.kind not in "biuf":
        raise TypeError(f"{name}: {what} must be numbers, got dtype {y.dtype}")
    return y


def _same_shape(y, y_pred_shape, name):
    """Labels aligned with the predictions by Keras' rank rule, then of the same shape."""
    y_pred_shape = tuple(y_pred_shape)
    if y.ndim == len(y_pred_shape) - 1 and y_pred_shape[-1] == 1:
        y = y[..., None]
    elif y.ndim == len(y_pred_shape) + 1 and y.shape[-1] == 1:
        y = y[..., 0]
    if y.shape != y_pred_shape:
        raise ValueError(f"{name}: labels of shape {y.shape} do not match predictions of shape {y_pred_shape}")
    return y


def _clipped(p):
    """p clipped as Keras clips probabilities, and where the clip leaves it alone (gradient 1, else 0)."""
    return np.clip(p, EPSILON, 1 - EPSILON), (p >= EPSILON) & (p <= 1 - EPSILON)


class BinaryCrossentropy(Loss):
    name = "binary_crossentropy"
    fused_activation = "sigmoid"

    def targets(self, y_true, y_pred_shape):
        y = _numbers(y_true, self.name)
        bad = np.flatnonzero(~((y >= 0) & (y <= 1)))
        if bad.size:
            raise ValueError(f"{self.name}: labels must be in [0, 1], got {y.ravel()[bad[0]]!r} at index {bad[0]}")
        return _same_shape(y, y_pred_shape, self.name)

    def elements(self, y, y_pred):
        p, inside = _clipped(y_pred)
        y = y.astype(p.dtype)
        values = -np.mean(y * np.log(p) + (1 - y) * np.log(1 - p), axis=-1)
        grad = np.where(inside, (p - y) / (p * (1 - p)), 0) / y_pred.shape[-1]
        return values, grad

    def elements_from_logits(self, y, logits):
        z, y = logits, y.astype(logits.dtype)
        # log(1 + e^z) - y z, written without overflow for either sign of z
        values = np.mean(np.maximum(z, 0) - z * y + np.log1p(np.exp(-np.abs(z))), axis=-1)
        return values, (sigmoid(z) - y) / z.shape[-1]


def _softmax_and_log(logits):
    shifted = logits - logits.max(axis=-1, keepdims=True)
    log_sum = np.log(np.exp(shifted).sum(axis=-1, keepdims=True))
    return np.exp(shifted - log_sum), shifted - log_sum


def _categorical_from_probabilities(target, y_pred):
    """Keras' categorical cross-entropy of probabilities: normalized to sum 1, clipped, then
    -sum(target log q); with its gradient through the normalization and the clip."""
    s = y_pred.sum(axis=-1, keepdims=True)
    q = y_pred / s
    qc, inside = _clipped(q)
    values = -np.sum(target * np.log(qc), axis=-1)
    d_q = np.where(inside, -target / qc, 0)  # d values / d q
    grad = (d_q - np.sum(d_q * q, axis=-1, keepdims=True)) / s  # through q = y_pred / sum(y_pred)
    return values, grad


class CategoricalCrossentropy(Loss):
    name = "categorical_crossentropy"
    fused_activation = "softmax"

    def targets(self, y_true, y_pred_shape):
        return _same_shape(_numbers(y_true, self.name), y_pred_shape, self.name)

    def elements(self, y, y_pred):
        return _categorical_from_probabilities(y.astype(y_pred.dtype), y_pred)

    def elements_from_logits(self, y, logits):
        y = y.astype(logits.dtype)
        probabilities, log_probabilities = _softmax_and_log(logits)
        values = -np.sum(y * log_probabilities, axis=-1)
        return values, probabilities * y.sum(axis=-1, keepdims=True) - y


class SparseCategoricalCrossentropy(Loss):
    name = "sparse_categorical_crossentropy"
    fused_activation = "softmax"

    def targets(self, y_true, y_pred_shape):
        y = np.asarray(y_true)
        if y.dtype.kind not in "iu" and not (y.dtype.kind == "f" and np.all(np.mod(y, 1) == 0)):
            raise TypeError(f"{self.name}: labels must be integer class ids, got dtype {y.dtype}")
        if y.ndim == len(y_pred_shape) and y.shape[-1] == 1:
            y = y[..., 0]
        if y.shape != tuple(y_pred_shape[:-1]):
            raise ValueError(f"{self.name}: labels of shape {y.shape} for predictions of shape {tuple(y_pred_shape)}: "
                             f"expected one class id per prediction, shape {tuple(y_pred_shape[:-1])}")
        y = y.astype(np.int64)
        classes = y_pred_shape[-1]
        bad = np.flatnonzero((y < 0) | (y >= classes))
        if bad.size:
            raise ValueError(f"{self.name}: label {y.ravel()[bad[0]]} at index {bad[0]} is outside [0, {classes})")
        return y

    @staticmethod
    def _one_hot(y, classes, dtype):
        out = np.zeros(y.shape + (classes,), dtype)
        np.put_along_axis(out, y[..., None], 1, axis=-1)
        return out

    def elements(self, y, y_pred):
        return _categorical_from_probabilities(self._one_hot(y, y_pred.shape[-1], y_pred.dtype), y_pred)

    def elements_from_logits(self, y, logits):
        probabilities, log_probabilities = _softmax_and_log(logits)
        values = -np.take_along_axis(log_probabilities, y[..., None], axis=-1)[..., 0]
        grad = probabilities
        np.put_along_axis(grad, y[..., None], np.take_along_axis(grad, y[..., None], axis=-1) - 1, axis=-1)
        return values, grad


class MeanSquaredError(Loss):
    name = "mean_squared_error"

    def targets(self, y_true, y_pred_shape):
        return _same_shape(_numbers(y_true, self.name, "targets"), y_pred_shape, self.name)

    def elements(self, y, y_pred):
        diff = y_pred - y.astype(y_pred.dtype)
        return np.mean(diff**2, axis=-1), 2 * diff / y_pred.shape[-1]


class MeanAbsoluteError(Loss):
    name = "mean_absolute_error"

    def targets(self, y_true, y_pred_shape):
        return _same_shape(_numbers(y_true, self.name, "targets"), y_pred_shape, self.name)

    def elements(self, y, y_pred):
        diff = y_pred - y.astype(y_pred.dtype)
        return np.mean(np.abs(diff), axis=-1), np.sign(diff) / y_pred.shape[-1]


_BY_NAME = {
    "binary_crossentropy": BinaryCrossentropy,
    "categorical_crossentropy": CategoricalCrossentropy,
    "sparse_categorical_crossentropy": SparseCategoricalCrossentropy,
    "mse": MeanSquaredError,
    "mean_squared_error": MeanSquaredError,
    "mae": MeanAbsoluteError,
    "mean_absolute_error": MeanAbsoluteError,
}


def get(identifier) -> Loss:
    """A loss by Keras' name (or class, or instance)."""
    if isinstance(identifier, Loss):
        return identifier
    if isinstance(identifier, type) and issubclass(identifier, Loss):
        return identifier()
    if isinstance(identifier, str) and identifier in _BY_NAME:
        loss = _BY_NAME[identifier]()
        if identifier in ("mse", "mae"):
            loss.name = identifier
        return loss
    if callable(identifier) and getattr(identifier, "__name__", None) in _FUNCTIONS:
        return get(identifier.__name__)
    if callable(identifier):
        name = getattr(identifier, "__name__", identifier)
        raise ValueError(f"loss {name!r}: rnnkit needs a loss with its gradient; use one of "
                         f"{', '.join(sorted(_BY_NAME))} or subclass rnnkit.losses.Loss")
    raise ValueError(f"unknown loss {identifier!r}; known: {', '.join(sorted(_BY_NAME))}")


def from_config(config) -> Loss:
    config = dict(config)
    name = config.get("name")
    cls = _BY_NAME.get(name)
    if cls is None:
        raise ValueError(f"unknown loss {name!r} in a saved model")
    loss = cls(from_logits=config.get("from_logits", False), reduction=config.get("reduction", "sum_over_batch_size"))
    loss.name = name
    return loss


# Keras' function spellings: keras.losses.binary_crossentropy(y_true, y_pred) -> per-element values
def _elementwise(cls):
    def loss_fn(y_true: Any, y_pred: Any, from_logits: bool = False) -> np.ndarray:
        loss = cls(from_logits=from_logits)
        y_pred = np.asarray(y_pred, dtype=np.result_type(np.asarray(y_pred).dtype, np.float32))
        y = loss.targets(y_true, y_pred.shape)
        return (loss.elements_from_logits(y, y_pred) if from_logits else loss.elements(y, y_pred))[0]

    loss_fn.__name__ = cls.name
    return loss_fn


binary_crossentropy = _elementwise(BinaryCrossentropy)
categorical_crossentropy = _elementwise(CategoricalCrossentropy)
sparse_categorical_crossentropy = _elementwise(SparseCategoricalCrossentropy)
mean_squared_error = mse = _elementwise(MeanSquaredError)
mean_absolute_error = mae = _elementwise(MeanAbsoluteError)

_FUNCTIONS = {f.__name__ for f in (binary_crossentropy, categorical_crossentropy, sparse_categorical_crossentropy,
                                   mean_squared_error, mean_absolute_error)}
