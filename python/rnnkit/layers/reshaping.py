"""Flatten, as in ``keras.layers``."""

from __future__ import annotations

import math

from .base import Layer


class Flatten(Layer):
    """(batch, d1, d2, ...) -> (batch, d1 * d2 * ...). Masks stop here."""

    def compute_output_shape(self, input_shape):
        return (None,) if any(d is None for d in input_shape) else (math.prod(input_shape),)

    def forward(self, inputs, *, training=False, mask=None):
        x = self.cast_inputs(inputs)
        self._shape = x.shape
        return x.reshape(x.shape[0], -1)

    def backward(self, d_outputs):
        return d_outputs.reshape(self._shape)

    def compute_mask(self, inputs, mask):
        return None
