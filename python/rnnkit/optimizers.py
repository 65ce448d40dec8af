"""RMSprop, Adam and SGD with Keras' defaults and update rules (``keras.optimizers``), and Keras'
gradient clipping: ``clipvalue`` (each element to [-v, v]), ``clipnorm`` (each gradient to that
norm at most) and ``global_clipnorm`` (all gradients together)."""

from __future__ import annotations

import numpy as np

from . import kernels


class Optimizer:
    name = ""
    slots = ()  # per-weight state arrays, each shaped like its weight

    def __init__(self, learning_rate: float = 0.001, clipnorm: float | None = None, clipvalue: float | None = None,
                 global_clipnorm: float | None = None, **kwargs) -> None:
        if "lr" in kwargs:
            raise TypeError(f"{type(self).__name__}: `lr` is Keras 2's name; Keras 3 and rnnkit call it "
                            f"`learning_rate`")
        if kwargs:
            raise TypeError(f"{type(self).__name__}: unsupported arguments {sorted(kwargs)}")
        if sum(v is not None for v in (clipnorm, clipvalue, global_clipnorm)) > 1:
            raise ValueError(f"{type(self).__name__}: only one of clipnorm, clipvalue and global_clipnorm can be set")
        for name, value in (("clipnorm", clipnorm), ("clipvalue", clipvalue), ("global_clipnorm", global_clipnorm)):
            if value is not None and not float(value) > 0:
                raise ValueError(f"{type(self).__name__}: {name} must be positive, got {value}")
        self.learning_rate = float(learning_rate)
        self.clipnorm = None if clipnorm is None else float(clipnorm)
        self.clipvalue = None if clipvalue is None else float(clipvalue)
        self.global_clipnorm = None if global_clipnorm is None else float(global_clipnorm)
        self.iterations = 0
        self.state = None  # list (one per weight) of dict slot -> array

    def _clipped(self, grads):
        """The gradients clipped as Keras clips them (the one clipping set)."""
        if self.clipnorm is not None:
            return [g * self.clipnorm / max(float(np.sqrt(np.sum(g * g))), self.clipnorm) for g in grads]
        if self.global_clipnorm is not None:
            norm = float(np.sqrt(sum(np.sum(g * g) for g in grads)))
            return [g * (self.global_clipnorm * min(1.0 / norm if norm else np.inf, 1.0 / self.global_clipnorm))
                    for g in grads]
        return [np.clip(g, -self.clipvalue, self.clipvalue) for g in grads]

    def apply(self, weights, grads) -> None:
        """One update of every weight in place, from the gradients of the same order."""
        if self.state is None:
            self.state = [{s: np.zeros_like(w) for s in self.slots} for w in weights]
        if len(self.state) != len(weights):
            raise ValueError(f"{type(self).__name__}: built for {len(self.state)} weights, got {len(weights)}")
        grads = [g.astype(w.dtype, copy=False) for w, g in zip(weights, grads)]
        if self.clipnorm is not None or self.clipvalue is not None or self.global_clipnorm is not None:
            grads = [g.astype(w.dtype, copy=False) for w, g in zip(weights, self._clipped(grads))]
        for w, g, s in zip(weights, grads, self.state):
            self.update(w, g, s)
        self.iterations += 1

    def update(self, weight, grad, slots) -> None:
        raise NotImplementedError

    def get_config(self) -> dict:
        config = {"learning_rate": self.learning_rate}
        for name in ("clipnorm", "clipvalue", "global_clipnorm"):
            if getattr(self, name) is not None:
                config[name] = getattr(self, name)
        return config

    # State, for saving and loading a model mid-training.
    def get_state(self) -> list:
        return [] if self.state is None else [s[name] for s in self.state for name in self.slots]

    def set_state(self, arrays, iterations, weights) -> None:
        arrays = list(arrays)
        if not arrays:
            self.state, self.iterations = None, int(iterations)
            return
        if len(arrays) != len(weights) * len(self.slots):
            raise ValueError(f"{type(self).__name__}: saved state has {len(arrays)} arrays, "
                             f"expected {len(weights) * len(self.slots)}")
        for i, (a, w) in enumerate(zip(arrays, (w for w in weights for _ in self.slots))):
            name = self.slots[i % len(self.slots)]
            if np.shape(a) != w.shape:
                raise ValueError(f"{type(self).__name__}: saved '{name}' has shape {np.shape(a)}, weight has {w.shape}")
            if np.asarray(a).dtype != w.dtype:
                raise ValueError(f"{type(self).__name__}: saved '{name}' is {np.asarray(a).dtype}, weight is {w.dtype}")
        it = iter(arrays)
        self.state = [{name: np.array(next(it), dtype=w.dtype) for name in self.slots} for w in weights]
        self.iterations = int(iterations)


def _fusable(w) -> bool:
    """Whether a fused C++ update can write w in place."""
    return w.dtype in (np.float32, np.float64) and w.flags.c_contiguous and w.flags.writeable


class RMSprop(Optimizer):
    """v = rho v + (1 - rho) g^2;  w -= lr g / sqrt(v + epsilon)  (with momentum: through a velocity)."""

    name = "rmsprop"

    def __init__(self, learning_rate: float = 0.001, rho: float = 0.9, momentum: float = 0.0, epsilon: float = 1e-7,
                 centered: bool = False, **kwargs) -> None:
        super().__init__(learning_rate, **kwargs)
        self.rho, self.momentum, self.epsilon = float(rho), float(momentum), float(epsilon)
        self.centered = bool(centered)
        self.slots = ("velocity",) + (("momentum",) if self.momentum > 0 else ())
        self.slots += ("average_grad",) if centered else ()

    def update(self, w, g, s):
        v = s["velocity"]
        if not self.centered and self.momentum == 0 and _fusable(w):
            # the same arithmetic as below, in one pass over memory instead of nine
            kernels.rmsprop_update(w, g, v, self.learning_rate, self.rho, self.epsilon)
            return
        v *= self.rho
        v += (1 - self.rho) * g * g
        denominator = v + self.epsilon
        if self.centered:
            avg = s["average_grad"]
            avg *= self.rho
            avg += (1 - self.rho) * g
            denominator = denominator - avg * avg
        increment = self.learning_rate * g / np.sqrt(denominator)
        if self.momentum > 0:
            m = s["momentum"]
            m *= self.momentum
            m += increment
            increment = m
        w -= increment

    def get_config(self) -> dict:
        return dict(super().get_config(), rho=self.rho, momentum=self.momentum, epsilon=self.epsilon,
                    centered=self.centered)


class Adam(Optimizer):
    """Bias-corrected moments: w -= lr sqrt(1 - b2^t) / (1 - b1^t) m / (sqrt(v) + epsilon)."""

    name = "adam"
    slots = ("momentum", "velocity")

    def __init__(self, learning_rate: float = 0.001, beta_1: float = 0.9, beta_2: float = 0.999,
                 epsilon: float = 1e-7, **kwargs) -> None:
        super().__init__(learning_rate, **kwargs)
        self.beta_1, self.beta_2, self.epsilon = float(beta_1), float(beta_2), float(epsilon)

    def update(self, w, g, s):
        t = self.iterations + 1
        alpha = self.learning_rate * np.sqrt(1 - self.beta_2**t) / (1 - self.beta_1**t)
        m, v = s["momentum"], s["velocity"]
        m += (g - m) * (1 - self.beta_1)
        v += (g * g - v) * (1 - self.beta_2)
        w -= alpha * m / (np.sqrt(v) + self.epsilon)

    def get_config(self) -> dict:
        return dict(super().get_config(), beta_1=self.beta_1, beta_2=self.beta_2, epsilon=self.epsilon)


class SGD(Optimizer):
    """w -= lr g; with momentum m = momentum m - lr g, w += m (Nesterov: w += momentum m - lr g)."""

    name = "sgd"

    def __init__(self, learning_rate: float = 0.01, momentum: float = 0.0, nesterov: bool = False,
                 **kwargs) -> None:
        super().__init__(learning_rate, **kwargs)
        self.momentum, self.nesterov = float(momentum), bool(nesterov)
        self.slots = ("momentum",) if self.momentum > 0 else ()

    def update(self, w, g, s):
        if self.momentum == 0:
            w -= self.learning_rate * g
            return
        m = s["momentum"]
        m *= self.momentum
        m -= self.learning_rate * g
        if self.nesterov:
            w += self.momentum * m - self.learning_rate * g
        else:
            w += m

    def get_config(self) -> dict:
        return dict(super().get_config(), momentum=self.momentum, nesterov=self.nesterov)


_BY_NAME = {"rmsprop": RMSprop, "adam": Adam, "sgd": SGD}


def get(identifier) -> Optimizer:
    if isinstance(identifier, Optimizer):
        return identifier
    key = identifier.lower() if isinstance(identifier, str) else identifier
    if key not in _BY_NAME:
        raise ValueError(f"unknown optimizer {identifier!r}; known: {', '.join(_BY_NAME)}")
    return _BY_NAME[key]()


def from_config(name, config) -> Optimizer:
    return _BY_NAME[name](**config)
