"""Dropout and SpatialDropout1D, as in ``keras.layers``: in training, each input is kept with
probability 1 - rate and scaled by 1/(1 - rate); at inference they pass inputs through."""

from __future__ import annotations

import numpy as np

from ..utils.random import get_rng
from .base import Layer


class Dropout(Layer):
    """``noise_shape`` (batch axis included, None for "as the input") drops whole slices together;
    ``seed`` gives the layer a generator of its own, otherwise rnnkit's (set_random_seed)."""

    def __init__(self, rate: float, noise_shape: tuple | None = None, seed: int | None = None, **kwargs) -> None:
        super().__init__(**kwargs)
        self.rate = float(rate)
        if not 0.0 <= self.rate < 1.0:
            raise ValueError(f"{type(self).__name__}: rate must be in [0, 1), got {rate}")
        self.noise_shape = None if noise_shape is None else tuple(noise_shape)
        self.seed = seed
        self._rng = None if seed is None else np.random.default_rng(seed)

    def _noise_shape(self, shape):
        if self.noise_shape is None:
            return shape
        return tuple(shape[i] if n is None else n for i, n in enumerate(self.noise_shape))

    def forward(self, inputs, *, training=False, mask=None):
        x = self.cast_inputs(inputs)
        self._keep = None
        if not training or self.rate == 0:
            return x
        rng = self._rng if self._rng is not None else get_rng()
        self._keep = ((rng.random(self._noise_shape(x.shape)) >= self.rate) / (1.0 - self.rate)).astype(x.dtype)
        return x * self._keep

    def backward(self, d_outputs):
        return d_outputs if self._keep is None else d_outputs * self._keep

    def get_config(self) -> dict:
        return dict(super().get_config(), rate=self.rate, noise_shape=None if self.noise_shape is None else list(
            self.noise_shape), seed=self.seed)


class SpatialDropout1D(Dropout):
    """Drops whole channels of a (batch, timesteps, channels) input: the same for every step."""

    def __init__(self, rate: float, seed: int | None = None, **kwargs) -> None:
        super().__init__(rate, seed=seed, **kwargs)

    def _noise_shape(self, shape):
        if len(shape) != 3:
            raise ValueError(f"SpatialDropout1D '{self.name}': expected inputs (batch, timesteps, channels), "
                             f"got shape {shape}")
        return (shape[0], 1, shape[2])

    def get_config(self) -> dict:
        config = super().get_config()
        config.pop("noise_shape")
        return config
