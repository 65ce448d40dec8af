"""Masks: the Masking layer, and how a recurrent layer turns a Keras mask into what its kernel takes.

A mask is (batch, timesteps) bool, True at real steps. Keras' rule for a masked step: the state carries
over and the output repeats the previous output (zeros before the first real step).
"""

from __future__ import annotations

import numpy as np

from .base import Layer


class Masking(Layer):
    """Masks the timesteps whose features all equal ``mask_value``, and zeroes them, as Keras does."""

    def __init__(self, mask_value: float = 0.0, **kwargs) -> None:
        super().__init__(**kwargs)
        self.mask_value = float(mask_value)

    def compute_output_shape(self, input_shape):
        return input_shape

    def compute_mask(self, inputs, mask):
        return np.any(np.asarray(inputs) != self.mask_value, axis=-1)

    def forward(self, inputs, *, training=False, mask=None):
        x = self.cast_inputs(inputs)
        self._keep = self.compute_mask(x, None)[..., None]
        return x * self._keep

    def backward(self, d_outputs):
        return d_outputs * self._keep

    def get_config(self) -> dict:
        return dict(super().get_config(), mask_value=self.mask_value)


def check_mask(mask, batch, timesteps, layer):
    mask = np.asarray(mask)
    if mask.shape != (batch, timesteps):
        raise ValueError(f"{layer}: expected a mask of shape (batch, timesteps) = ({batch}, {timesteps}), "
                         f"got {mask.shape}")
    return mask.astype(bool, copy=False)


def lengths_and_padding(mask):
    """(lengths, 'pre' or 'post') when every row's real steps sit together at one end, else None."""
    timesteps = mask.shape[1]
    lengths = mask.sum(axis=1)
    steps = np.arange(timesteps)
    if np.array_equal(mask, steps >= (timesteps - lengths)[:, None]):
        return lengths, "pre"
    if np.array_equal(mask, steps < lengths[:, None]):
        return lengths, "post"
    return None


class Compression:
    """For a mask with holes: the real steps moved to the front of each row (a post-padded batch the
    kernel runs with lengths), and the way back, with Keras' rule for the masked steps."""

    def __init__(self, mask):
        self.mask = mask
        self.lengths = mask.sum(axis=1)
        self.rows, self.cols = np.nonzero(mask)  # the real steps, row by row, in time order
        row_starts = np.concatenate([[0], np.cumsum(self.lengths)[:-1]])
        self.slots = np.arange(len(self.rows)) - np.repeat(row_starts, self.lengths)  # their compressed positions
        # the output at step t is the compressed output at (real steps up to t) - 1, or zeros before any
        self.count = np.cumsum(mask, axis=1) - 1

    def compress(self, x):
        out = np.zeros_like(x)
        out[self.rows, self.slots] = x[self.rows, self.cols]
        return out

    def expand_outputs(self, outputs):
        batch, timesteps = self.mask.shape
        index = np.maximum(self.count, 0)
        expanded = outputs[np.arange(batch)[:, None], index]
        expanded[self.count < 0] = 0
        return expanded

    def compress_output_gradient(self, d_outputs):
        """The gradient of the compressed outputs: each step's gradient goes to the output it repeats."""
        out = np.zeros_like(d_outputs)
        seen = self.count >= 0
        np.add.at(out, (np.nonzero(seen)[0], self.count[seen]), d_outputs[seen])
        return out

    def expand_input_gradient(self, d_inputs):
        out = np.zeros_like(d_inputs)
        out[self.rows, self.cols] = d_inputs[self.rows, self.slots]
        return out
