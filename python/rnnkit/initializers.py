"""Weight initializers with Keras' names and formulas (``keras.initializers``)."""

from __future__ import annotations

import numpy as np

from .utils.random import get_rng


def _fans(shape):
    fan_in, fan_out = (shape[0], shape[1]) if len(shape) == 2 else (np.prod(shape[:-1]), shape[-1])
    return float(fan_in), float(fan_out)


def glorot_uniform(shape, dtype):
    fan_in, fan_out = _fans(shape)
    limit = np.sqrt(6.0 / (fan_in + fan_out))
    return get_rng().uniform(-limit, limit, shape).astype(dtype)


def orthogonal(shape, dtype, gain=1.0):
    """Rows (or columns, whichever are fewer) orthonormal, as Keras' Orthogonal."""
    rows, cols = shape[0], int(np.prod(shape[1:]))
    a = get_rng().standard_normal((max(rows, cols), min(rows, cols)))
    q, r = np.linalg.qr(a)
    q *= np.sign(np.diag(r))
    if rows < cols:
        q = q.T
    return (gain * q).reshape(shape).astype(dtype)


def zeros(shape, dtype):
    return np.zeros(shape, dtype)


def ones(shape, dtype):
    return np.ones(shape, dtype)


def uniform(shape, dtype, minval=-0.05, maxval=0.05):
    """Keras' RandomUniform with its defaults; 'uniform' is what Embedding uses."""
    return get_rng().uniform(minval, maxval, shape).astype(dtype)


_BY_NAME = {
    "glorot_uniform": glorot_uniform,
    "orthogonal": orthogonal,
    "zeros": zeros,
    "ones": ones,
    "uniform": uniform,
    "random_uniform": uniform,
}


def get(identifier):
    """An initializer by name, or a callable (shape, dtype) -> array as given."""
    if callable(identifier):
        return identifier
    if identifier not in _BY_NAME:
        raise ValueError(f"unknown initializer {identifier!r}; known: {', '.join(sorted(_BY_NAME))}")
    return _BY_NAME[identifier]


def name_of(initializer):
    for name, fn in _BY_NAME.items():
        if fn is initializer:
            return name
    raise ValueError(f"initializer {initializer!r} has no name; a model using it cannot be saved")
