"""Conv1D, as in ``keras.layers``: a 1-D convolution over the timesteps of (batch, timesteps,
channels) inputs, with Keras' weight layout (kernel (kernel_size, channels, filters), bias (filters))
and padding rules ('valid', 'same', 'causal')."""

from __future__ import annotations

import numpy as np

from .. import activations, initializers
from .base import Layer, check_units


class Conv1D(Layer):
    def __init__(self, filters: int, kernel_size: int | tuple, strides: int | tuple = 1, padding: str = "valid",
                 data_format: str | None = None, dilation_rate: int | tuple = 1, groups: int = 1,
                 activation: str | None = None, use_bias: bool = True, kernel_initializer="glorot_uniform",
                 bias_initializer="zeros", **kwargs) -> None:
        super().__init__(**kwargs)
        self.filters = check_units("Conv1D filters", filters)
        self.kernel_size = int(kernel_size[0] if isinstance(kernel_size, (list, tuple)) else kernel_size)
        self.strides = int(strides[0] if isinstance(strides, (list, tuple)) else strides)
        self.dilation_rate = int(dilation_rate[0] if isinstance(dilation_rate, (list, tuple)) else dilation_rate)
        if min(self.kernel_size, self.strides, self.dilation_rate) < 1:
            raise ValueError("Conv1D: kernel_size, strides and dilation_rate must be positive")
        if padding not in ("valid", "same", "causal"):
            raise ValueError(f"Conv1D: padding must be 'valid', 'same' or 'causal', got {padding!r}")
        if data_format not in (None, "channels_last"):
            raise ValueError("Conv1D: rnnkit takes (batch, timesteps, channels) inputs, data_format='channels_last'")
        if groups != 1:
            raise ValueError("Conv1D: rnnkit supports groups=1 only")
        self.padding = padding
        self.activation = activations.check(activation)
        self.use_bias = bool(use_bias)
        self.kernel_initializer = initializers.get(kernel_initializer)
        self.bias_initializer = initializers.get(bias_initializer)

    def build(self, input_shape: tuple) -> None:
        channels = input_shape[-1]
        if channels is None:
            raise ValueError(f"Conv1D '{self.name}': the channel dimension must be known, got {input_shape}")
        self.add_weight("kernel", (self.kernel_size, channels, self.filters), self.kernel_initializer)
        if self.use_bias:
            self.add_weight("bias", (self.filters,), self.bias_initializer)

    def _span(self):
        return self.dilation_rate * (self.kernel_size - 1) + 1

    def _padding(self, steps):
        """(output steps, zeros before, zeros after)."""
        span = self._span()
        if self.padding == "valid":
            return max((steps - span) // self.strides + 1, 0), 0, 0
        if self.padding == "causal":
            return (steps + span - 1 - span) // self.strides + 1, span - 1, 0
        out = -(-steps // self.strides)
        total = max((out - 1) * self.strides + span - steps, 0)
        return out, total // 2, total - total // 2

    def compute_output_shape(self, input_shape):
        steps = input_shape[-2]
        return (None if steps is None else self._padding(steps)[0], self.filters)

    def forward(self, inputs, *, training=False, mask=None):
        x = self.cast_inputs(inputs)
        if x.ndim != 3:
            raise ValueError(f"Conv1D '{self.name}': expected inputs (batch, timesteps, channels), got {x.shape}")
        out_steps, before, after = self._padding(x.shape[1])
        padded = np.pad(x, ((0, 0), (before, after), (0, 0)))
        # rows of the padded input each output step reads: (out_steps, kernel_size)
        self._rows = np.arange(out_steps)[:, None] * self.strides + np.arange(self.kernel_size) * self.dilation_rate
        patches = padded[:, self._rows]  # (batch, out_steps, kernel_size, channels)
        self._patches = patches.reshape(x.shape[0] * out_steps, -1)
        kernel = self.params["kernel"].reshape(-1, self.filters)
        z = self._patches @ kernel
        if self.use_bias:
            z += self.params["bias"]
        z = z.reshape(x.shape[0], out_steps, self.filters)
        self._padded_shape, self._before, self._steps = padded.shape, before, x.shape[1]
        self.logits = z
        self._y = activations.FORWARD[self.activation](z)
        return self._y

    def backward(self, d_outputs):
        return self.backward_from_logits(activations.BACKWARD[self.activation](self._y, d_outputs))

    def backward_from_logits(self, d_logits):
        dz = d_logits.reshape(-1, self.filters).astype(self.dtype, copy=False)
        self.grads["kernel"] = (self._patches.T @ dz).reshape(self.params["kernel"].shape)
        if self.use_bias:
            self.grads["bias"] = dz.sum(axis=0)
        d_patches = (dz @ self.params["kernel"].reshape(-1, self.filters).T).reshape(
            self._padded_shape[0], self._rows.shape[0], self.kernel_size, self._padded_shape[2])
        d_padded = np.zeros(self._padded_shape, dtype=dz.dtype)
        np.add.at(d_padded, (slice(None), self._rows), d_patches)
        return d_padded[:, self._before : self._before + self._steps]

    def compute_mask(self, inputs, mask):
        return None

    def get_config(self) -> dict:
        return dict(super().get_config(), filters=self.filters, kernel_size=self.kernel_size, strides=self.strides,
                    padding=self.padding, dilation_rate=self.dilation_rate, activation=self.activation,
                    use_bias=self.use_bias, kernel_initializer=initializers.name_of(self.kernel_initializer),
                    bias_initializer=initializers.name_of(self.bias_initializer))
