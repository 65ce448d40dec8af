"""Losses with their gradients, as in ``keras.losses``: the mean over the batch.

A loss that follows a matching output activation (binary cross-entropy after a sigmoid, sparse
categorical cross-entropy after a softmax) is computed from the pre-activation logits: stable for
any logit, and its gradient is simply ``(probabilities - labels) / n``.
"""

from __future__ import annotations

import numpy as np

from .activations import sigmoid

EPSILON = 1e-7  # Keras' backend epsilon: the clip for probabilities when no logits are at hand


class Loss:
    name = ""
    fused_activation = None  # the output activation whose logits this loss can take directly

    def check_targets(self, y_true, y_pred_shape):
        """y_true as an array the loss can use with predictions of this shape; ValueError if invalid."""
        return np.asarray(y_true)

    def value_and_gradient(self, y_true, y_pred):
        """(loss, d loss / d y_pred)."""
        raise NotImplementedError

    def value_and_gradient_from_logits(self, y_true, logits):
        """(loss, d loss / d logits) where y_pred = fused_activation(logits)."""
        raise NotImplementedError


def _match_columns(y, shape, name):
    """Labels (n,) or (n, 1) for single-output predictions (n, 1)."""
    if y.shape == shape:
        return y
    if len(shape) == 2 and shape[1] == 1 and y.shape == (shape[0],):
        return y.reshape(shape)
    raise ValueError(f"{name}: labels of shape {y.shape} do not match predictions of shape {shape}")


class BinaryCrossentropy(Loss):
    name = "binary_crossentropy"
    fused_activation = "sigmoid"

    def check_targets(self, y_true, y_pred_shape):
        y = np.asarray(y_true)
        if y.dtype.kind not in "biuf":
            raise TypeError(f"{self.name}: labels must be numbers 0 or 1, got dtype {y.dtype}")
        bad = np.flatnonzero((y != 0) & (y != 1))
        if bad.size:
            raise ValueError(f"{self.name}: labels must be 0 or 1, got {y.ravel()[bad[0]]!r} at index {bad[0]}")
        return _match_columns(y, y_pred_shape, self.name)

    def value_and_gradient(self, y_true, y_pred):
        p = np.clip(y_pred, EPSILON, 1 - EPSILON)
        y = y_true.astype(p.dtype)
        loss = -np.mean(y * np.log(p) + (1 - y) * np.log(1 - p))
        grad = (p - y) / (p * (1 - p)) / y.size
        return float(loss), grad.astype(y_pred.dtype)

    def value_and_gradient_from_logits(self, y_true, logits):
        z = logits
        y = y_true.astype(z.dtype)
        # log(1 + e^z) - y z, written without overflow for either sign of z
        loss = np.mean(np.maximum(z, 0) - z * y + np.log1p(np.exp(-np.abs(z))))
        return float(loss), ((sigmoid(z) - y) / y.size).astype(z.dtype)


class SparseCategoricalCrossentropy(Loss):
    name = "sparse_categorical_crossentropy"
    fused_activation = "softmax"

    def check_targets(self, y_true, y_pred_shape):
        y = np.asarray(y_true)
        if y.dtype.kind not in "iu" and not (y.dtype.kind == "f" and np.all(np.mod(y, 1) == 0)):
            raise TypeError(f"{self.name}: labels must be integer class ids, got dtype {y.dtype}")
        y = y.reshape(-1).astype(np.int64)
        classes = y_pred_shape[-1]
        bad = np.flatnonzero((y < 0) | (y >= classes))
        if bad.size:
            raise ValueError(f"{self.name}: label {y[bad[0]]} at index {bad[0]} is outside [0, {classes})")
        if y.shape[0] != y_pred_shape[0]:
            raise ValueError(f"{self.name}: {y.shape[0]} labels for {y_pred_shape[0]} predictions")
        return y

    def value_and_gradient(self, y_true, y_pred):
        n = y_true.shape[0]
        picked = np.clip(y_pred[np.arange(n), y_true], EPSILON, 1.0)
        grad = np.zeros_like(y_pred)
        grad[np.arange(n), y_true] = -1.0 / picked / n
        return float(-np.mean(np.log(picked))), grad

    def value_and_gradient_from_logits(self, y_true, logits):
        n = y_true.shape[0]
        shifted = logits - logits.max(axis=1, keepdims=True)
        log_sum = np.log(np.exp(shifted).sum(axis=1))
        loss = np.mean(log_sum - shifted[np.arange(n), y_true])
        grad = np.exp(shifted - log_sum[:, None])
        grad[np.arange(n), y_true] -= 1
        return float(loss), (grad / n).astype(logits.dtype)


class MeanSquaredError(Loss):
    name = "mse"

    def check_targets(self, y_true, y_pred_shape):
        y = np.asarray(y_true)
        if y.dtype.kind not in "biuf":
            raise TypeError(f"{self.name}: targets must be numbers, got dtype {y.dtype}")
        return _match_columns(y, y_pred_shape, self.name)

    def value_and_gradient(self, y_true, y_pred):
        diff = y_pred - y_true.astype(y_pred.dtype)
        return float(np.mean(diff**2)), (2 * diff / diff.size).astype(y_pred.dtype)


_BY_NAME = {
    "binary_crossentropy": BinaryCrossentropy,
    "sparse_categorical_crossentropy": SparseCategoricalCrossentropy,
    "mse": MeanSquaredError,
    "mean_squared_error": MeanSquaredError,
}


def get(identifier) -> Loss:
    if isinstance(identifier, Loss):
        return identifier
    if isinstance(identifier, type) and issubclass(identifier, Loss):
        return identifier()
    if identifier not in _BY_NAME:
        raise ValueError(f"unknown loss {identifier!r}; known: {', '.join(sorted(_BY_NAME))}")
    return _BY_NAME[identifier]()
