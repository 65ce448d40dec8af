"""Weight initializers with Keras' names, classes and formulas (``keras.initializers``).

An initializer is called as ``init(shape, dtype)``. Without a seed it draws from rnnkit's generator
(``rnnkit.utils.set_random_seed``); with ``seed=`` it draws from its own, the same values each call.
Fans follow Keras: for a kernel of shape (..., in, out) the receptive field is the product of the
leading dimensions, fan_in = in x field, fan_out = out x field.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from .utils.random import get_rng


def compute_fans(shape):
    shape = tuple(int(d) for d in shape)
    if len(shape) == 0:
        return 1.0, 1.0
    if len(shape) == 1:
        return float(shape[0]), float(shape[0])
    field = math.prod(shape[:-2]) if len(shape) > 2 else 1
    return float(shape[-2] * field), float(shape[-1] * field)


class Initializer:
    seed = None

    def _rng(self):
        return np.random.default_rng(self.seed) if self.seed is not None else get_rng()

    def get_config(self) -> dict:
        return {}

    def __call__(self, shape: tuple, dtype: str = "float32") -> np.ndarray:
        raise NotImplementedError


class Zeros(Initializer):
    def __call__(self, shape: tuple, dtype: str = "float32") -> np.ndarray:
        return np.zeros(shape, dtype)


class Ones(Initializer):
    def __call__(self, shape: tuple, dtype: str = "float32") -> np.ndarray:
        return np.ones(shape, dtype)


class Constant(Initializer):
    def __init__(self, value: float = 0.0) -> None:
        self.value = float(value)

    def __call__(self, shape: tuple, dtype: str = "float32") -> np.ndarray:
        return np.full(shape, self.value, dtype)

    def get_config(self) -> dict:
        return {"value": self.value}


class RandomUniform(Initializer):
    def __init__(self, minval: float = -0.05, maxval: float = 0.05, seed: int | None = None) -> None:
        self.minval, self.maxval, self.seed = float(minval), float(maxval), seed

    def __call__(self, shape: tuple, dtype: str = "float32") -> np.ndarray:
        return self._rng().uniform(self.minval, self.maxval, shape).astype(dtype)

    def get_config(self) -> dict:
        return {"minval": self.minval, "maxval": self.maxval, "seed": self.seed}


class RandomNormal(Initializer):
    def __init__(self, mean: float = 0.0, stddev: float = 0.05, seed: int | None = None) -> None:
        self.mean, self.stddev, self.seed = float(mean), float(stddev), seed

    def __call__(self, shape: tuple, dtype: str = "float32") -> np.ndarray:
        return self._rng().normal(self.mean, self.stddev, shape).astype(dtype)

    def get_config(self) -> dict:
        return {"mean": self.mean, "stddev": self.stddev, "seed": self.seed}


def _truncated_normal(rng, shape, mean, stddev):
    """Normal draws, those beyond two standard deviations drawn again (Keras' truncated normal)."""
    values = rng.standard_normal(shape)
    while True:
        outside = np.abs(values) > 2
        if not outside.any():
            return mean + stddev * values
        values[outside] = rng.standard_normal(int(outside.sum()))


class TruncatedNormal(RandomNormal):
    def __call__(self, shape: tuple, dtype: str = "float32") -> np.ndarray:
        return _truncated_normal(self._rng(), shape, self.mean, self.stddev).astype(dtype)


class VarianceScaling(Initializer):
    """Variance scale / n, n the fan_in, fan_out or their mean; from a uniform or a truncated normal."""

    def __init__(self, scale: float = 1.0, mode: str = "fan_in", distribution: str = "truncated_normal",
                 seed: int | None = None) -> None:
        if mode not in ("fan_in", "fan_out", "fan_avg"):
            raise ValueError(f"VarianceScaling: mode must be fan_in, fan_out or fan_avg, got {mode!r}")
        if distribution not in ("truncated_normal", "untruncated_normal", "uniform"):
            raise ValueError(f"VarianceScaling: unknown distribution {distribution!r}")
        self.scale, self.mode, self.distribution, self.seed = float(scale), mode, distribution, seed

    def __call__(self, shape: tuple, dtype: str = "float32") -> np.ndarray:
        fan_in, fan_out = compute_fans(shape)
        n = max(1.0, {"fan_in": fan_in, "fan_out": fan_out, "fan_avg": (fan_in + fan_out) / 2}[self.mode])
        rng = self._rng()
        if self.distribution == "uniform":
            limit = math.sqrt(3.0 * self.scale / n)  # one rounding: Glorot's sqrt(6 / (fan_in + fan_out)) exactly
            return rng.uniform(-limit, limit, shape).astype(dtype)
        if self.distribution == "untruncated_normal":
            return (rng.standard_normal(shape) * math.sqrt(self.scale / n)).astype(dtype)
        stddev = math.sqrt(self.scale / n) / 0.87962566103423978  # of a normal truncated at two standard deviations
        return _truncated_normal(rng, shape, 0.0, stddev).astype(dtype)

    def get_config(self) -> dict:
        return {"scale": self.scale, "mode": self.mode, "distribution": self.distribution, "seed": self.seed}


def _variance_scaling(name, scale, mode, distribution):
    class Named(VarianceScaling):
        def __init__(self, seed: int | None = None) -> None:
            super().__init__(scale, mode, distribution, seed)

        def get_config(self) -> dict:
            return {"seed": self.seed}

    Named.__name__ = Named.__qualname__ = name
    return Named


GlorotUniform = _variance_scaling("GlorotUniform", 1.0, "fan_avg", "uniform")
GlorotNormal = _variance_scaling("GlorotNormal", 1.0, "fan_avg", "truncated_normal")
HeUniform = _variance_scaling("HeUniform", 2.0, "fan_in", "uniform")
HeNormal = _variance_scaling("HeNormal", 2.0, "fan_in", "truncated_normal")
LecunUniform = _variance_scaling("LecunUniform", 1.0, "fan_in", "uniform")
LecunNormal = _variance_scaling("LecunNormal", 1.0, "fan_in", "truncated_normal")


class Orthogonal(Initializer):
    """Rows (or columns, whichever are fewer) orthonormal, times gain, as Keras' Orthogonal."""

    def __init__(self, gain: float = 1.0, seed: int | None = None) -> None:
        self.gain, self.seed = float(gain), seed

    def __call__(self, shape: tuple, dtype: str = "float32") -> np.ndarray:
        rows, cols = shape[0], int(np.prod(shape[1:]))
        a = self._rng().standard_normal((max(rows, cols), min(rows, cols)))
        q, r = np.linalg.qr(a)
        q *= np.sign(np.diag(r))
        if rows < cols:
            q = q.T
        return (self.gain * q).reshape(shape).astype(dtype)

    def get_config(self) -> dict:
        return {"gain": self.gain, "seed": self.seed}


class Identity(Initializer):
    def __init__(self, gain: float = 1.0) -> None:
        self.gain = float(gain)

    def __call__(self, shape: tuple, dtype: str = "float32") -> np.ndarray:
        if len(shape) != 2:
            raise ValueError(f"Identity: expected a 2-D shape, got {shape}")
        return (self.gain * np.eye(*shape)).astype(dtype)

    def get_config(self) -> dict:
        return {"gain": self.gain}


CLASSES = {cls.__name__: cls for cls in (Zeros, Ones, Constant, RandomUniform, RandomNormal, TruncatedNormal,
                                         VarianceScaling, GlorotUniform, GlorotNormal, HeUniform, HeNormal,
                                         LecunUniform, LecunNormal, Orthogonal, Identity)}
_BY_NAME = {
    "zeros": Zeros, "ones": Ones, "constant": Constant, "random_uniform": RandomUniform, "uniform": RandomUniform,
    "random_normal": RandomNormal, "normal": RandomNormal, "truncated_normal": TruncatedNormal,
    "variance_scaling": VarianceScaling, "glorot_uniform": GlorotUniform, "glorot_normal": GlorotNormal,
    "he_uniform": HeUniform, "he_normal": HeNormal, "lecun_uniform": LecunUniform, "lecun_normal": LecunNormal,
    "orthogonal": Orthogonal, "identity": Identity,
}

# aliases Keras exports too
zeros, ones = Zeros, Ones


def get(identifier: Any) -> Initializer:
    """An initializer from a name ('glorot_uniform', ...), a class, an instance, a saved config, or any
    callable (shape, dtype) -> array."""
    if isinstance(identifier, str):
        if identifier not in _BY_NAME:
            raise ValueError(f"unknown initializer {identifier!r}; known: {', '.join(sorted(_BY_NAME))}")
        return _BY_NAME[identifier]()
    if isinstance(identifier, dict):
        cls = CLASSES.get(identifier.get("class_name"))
        if cls is None:
            raise ValueError(f"unknown initializer {identifier.get('class_name')!r} in a saved model")
        return cls(**identifier.get("config", {}))
    if isinstance(identifier, type) and issubclass(identifier, Initializer):
        return identifier()
    if callable(identifier):
        return identifier
    raise ValueError(f"an initializer must be a name, an rnnkit.initializers object or a callable, got {identifier!r}")


def serialize(initializer: Any) -> str | dict:
    """What a saved model records: Keras' name for a default-configured initializer, else its class and
    configuration."""
    if not isinstance(initializer, Initializer):
        raise ValueError(f"initializer {initializer!r} is not an rnnkit.initializers object; a model using it "
                         f"cannot be saved")
    config = initializer.get_config()
    for name, cls in _BY_NAME.items():
        if type(initializer) is cls and config == cls().get_config():
            return name
    return {"class_name": type(initializer).__name__, "config": config}


name_of = serialize  # the name layers' configs have used
