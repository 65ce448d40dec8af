"""Pooling over timesteps, as in ``keras.layers``: MaxPooling1D, GlobalMaxPooling1D and
GlobalAveragePooling1D, for (batch, timesteps, channels) inputs."""

from __future__ import annotations

import numpy as np

from .base import Layer


def _check_3d(layer, x):
    if x.ndim != 3:
        raise ValueError(f"{type(layer).__name__} '{layer.name}': expected inputs (batch, timesteps, channels), "
                         f"got shape {x.shape}")


class MaxPooling1D(Layer):
    """The maximum over windows of ``pool_size`` steps, every ``strides`` (= pool_size) steps;
    padding 'valid' (whole windows only) or 'same' (ceil(steps / strides) outputs)."""

    def __init__(self, pool_size: int | tuple = 2, strides: int | tuple | None = None, padding: str = "valid",
                 data_format: str | None = None, **kwargs) -> None:
        super().__init__(**kwargs)
        if data_format not in (None, "channels_last"):
            raise ValueError("MaxPooling1D: rnnkit takes (batch, timesteps, channels) inputs, data_format="
                             "'channels_last'")
        self.pool_size = int(pool_size)
        self.strides = int(strides) if strides is not None else self.pool_size
        if padding not in ("valid", "same"):
            raise ValueError(f"MaxPooling1D: padding must be 'valid' or 'same', got {padding!r}")
        self.padding = padding

    def _lengths(self, steps):
        if self.padding == "valid":
            out = (steps - self.pool_size) // self.strides + 1
            return max(out, 0), 0
        out = -(-steps // self.strides)
        pad = max((out - 1) * self.strides + self.pool_size - steps, 0)
        return out, pad // 2

    def compute_output_shape(self, input_shape):
        steps, channels = input_shape[-2], input_shape[-1]
        return (None if steps is None else self._lengths(steps)[0], channels)

    def forward(self, inputs, *, training=False, mask=None):
        x = self.cast_inputs(inputs)
        _check_3d(self, x)
        out_steps, left = self._lengths(x.shape[1])
        right = max((out_steps - 1) * self.strides + self.pool_size - x.shape[1] - left, 0)
        padded = np.pad(x, ((0, 0), (left, right), (0, 0)), constant_values=-np.inf)
        starts = np.arange(out_steps) * self.strides
        windows = padded[:, starts[:, None] + np.arange(self.pool_size)]  # (batch, out, pool, channels)
        self._argmax = windows.argmax(axis=2)
        self._rows = starts[None, :, None] + self._argmax - left  # the input step each maximum came from
        self._shape = x.shape
        return np.take_along_axis(windows, self._argmax[:, :, None], axis=2)[:, :, 0]

    def backward(self, d_outputs):
        dx = np.zeros(self._shape, dtype=d_outputs.dtype)
        batch = np.arange(self._shape[0])[:, None, None]
        channel = np.arange(self._shape[2])[None, None, :]
        np.add.at(dx, (batch, self._rows, channel), d_outputs)
        return dx

    def compute_mask(self, inputs, mask):
        return None

    def get_config(self) -> dict:
        return dict(super().get_config(), pool_size=self.pool_size, strides=self.strides, padding=self.padding)


class _GlobalPooling1D(Layer):
    def __init__(self, data_format: str | None = None, keepdims: bool = False, **kwargs) -> None:
        super().__init__(**kwargs)
        if data_format not in (None, "channels_last"):
            raise ValueError(f"{type(self).__name__}: rnnkit takes (batch, timesteps, channels) inputs")
        self.keepdims = bool(keepdims)

    def compute_output_shape(self, input_shape):
        return (1, input_shape[-1]) if self.keepdims else (input_shape[-1],)

    def compute_mask(self, inputs, mask):
        return None

    def _shaped(self, out):
        return out[:, None, :] if self.keepdims else out

    def _unshaped(self, d):
        return d[:, 0, :] if self.keepdims else d

    def get_config(self) -> dict:
        return dict(super().get_config(), keepdims=self.keepdims)


class GlobalMaxPooling1D(_GlobalPooling1D):
    """The maximum over all timesteps of each channel."""

    def forward(self, inputs, *, training=False, mask=None):
        x = self.cast_inputs(inputs)
        _check_3d(self, x)
        self._argmax = x.argmax(axis=1)
        self._shape = x.shape
        return self._shaped(np.take_along_axis(x, self._argmax[:, None, :], axis=1)[:, 0, :])

    def backward(self, d_outputs):
        dx = np.zeros(self._shape, dtype=d_outputs.dtype)
        np.put_along_axis(dx, self._argmax[:, None, :], self._unshaped(d_outputs)[:, None, :], axis=1)
        return dx


class GlobalAveragePooling1D(_GlobalPooling1D):
    """The mean over the timesteps of each channel; with a mask, over the real steps only (Keras)."""

    def forward(self, inputs, *, training=False, mask=None):
        x = self.cast_inputs(inputs)
        _check_3d(self, x)
        if mask is None:
            self._weights = np.full(x.shape[:2], 1.0 / x.shape[1], dtype=x.dtype)
        else:
            m = np.asarray(mask, x.dtype)
            self._weights = m / m.sum(axis=1, keepdims=True)
        return self._shaped(np.einsum("btc,bt->bc", x, self._weights))

    def backward(self, d_outputs):
        return self._unshaped(d_outputs)[:, None, :] * self._weights[:, :, None]
