"""Layers that merge several inputs: Concatenate and Add, as in ``keras.layers``."""

from __future__ import annotations

import numpy as np

from .base import Layer


class _Merge(Layer):
    def _check(self, inputs):
        if not isinstance(inputs, (list, tuple)) or len(inputs) < 2:
            raise ValueError(f"{type(self).__name__} '{self.name}': expected a list of at least two inputs")
        return [self.cast_inputs(x) for x in inputs]

    def build(self, input_shape: tuple) -> None:
        if not isinstance(input_shape, list) or len(input_shape) < 2:
            raise ValueError(f"{type(self).__name__} '{self.name}': expected a list of at least two inputs")

    def compute_mask(self, inputs, mask):
        """The steps real in every input (a merged step is real where all are), or None."""
        if mask is None or all(m is None for m in mask):
            return None
        masks = [np.asarray(m, bool) for m in mask if m is not None]
        return np.logical_and.reduce(masks)


class Concatenate(_Merge):
    """Joins its inputs along ``axis`` (the last by default)."""

    def __init__(self, axis: int = -1, **kwargs) -> None:
        super().__init__(**kwargs)
        self.axis = int(axis)

    def _sample_axis(self, rank):
        """The axis counted without the batch axis (a sample's shape has rank dimensions)."""
        axis = self.axis if self.axis < 0 else self.axis - 1
        if not -rank <= axis < rank:
            raise ValueError(f"Concatenate '{self.name}': axis {self.axis} is outside inputs of rank {rank + 1}")
        return axis % rank

    def build(self, input_shape: tuple) -> None:
        super().build(input_shape)
        rank = len(input_shape[0])
        axis = self._sample_axis(rank)
        for shape in input_shape[1:]:
            if len(shape) != rank or any(a != b for i, (a, b) in enumerate(zip(shape, input_shape[0]))
                                         if i != axis and a is not None and b is not None):
                raise ValueError(f"Concatenate '{self.name}': shapes {input_shape} differ outside axis {self.axis}")

    def compute_output_shape(self, input_shape):
        axis = self._sample_axis(len(input_shape[0]))
        sizes = [shape[axis] for shape in input_shape]
        out = list(input_shape[0])
        out[axis] = None if any(s is None for s in sizes) else sum(sizes)
        return tuple(out)

    def forward(self, inputs, *, training=False, mask=None):
        xs = self._check(inputs)
        self._sizes = [x.shape[self.axis if self.axis < 0 else self.axis] for x in xs]
        return np.concatenate(xs, axis=self.axis)

    def backward(self, d_outputs):
        cuts = np.cumsum(self._sizes)[:-1]
        return np.split(d_outputs, cuts, axis=self.axis)

    def get_config(self) -> dict:
        return dict(super().get_config(), axis=self.axis)


class Add(_Merge):
    """The sum of its inputs, all of one shape."""

    def compute_output_shape(self, input_shape):
        return tuple(input_shape[0])

    def forward(self, inputs, *, training=False, mask=None):
        xs = self._check(inputs)
        self._count = len(xs)
        out = xs[0]
        for x in xs[1:]:
            out = out + x
        return out

    def backward(self, d_outputs):
        return [d_outputs] * self._count
