"""One direction of one recurrent layer as a torch.autograd.Function over rnnkit's C++ kernels.

torch.nn keeps each layer's weights as ``weight_ih (G*hidden, input)``, ``weight_hh (G*hidden, hidden)``
and two biases ``bias_ih``, ``bias_hh`` (G*hidden,), gates stacked in rows; the kernels take Keras'
layout, ``kernel (input, G*hidden)``, ``recurrent_kernel (hidden, G*hidden)``, gates in columns. The
gate orders agree for LSTM (i, f, g, o); GRU's are r, z, n in torch and z, r, n in Keras, and torch's
GRU applies the reset after the recurrent product, which is Keras' ``reset_after=True``, whose bias is
(2, 3*hidden): the input bias, then the recurrent one. SimpleRNN and LSTM add their two biases into one.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import numpy as np
import torch
from torch.autograd.function import once_differentiable

from .. import kernels

FORWARD = {"rnn": kernels.simple_rnn_forward, "lstm": kernels.lstm_forward, "gru": kernels.gru_forward}
BACKWARD = {"rnn": kernels.simple_rnn_backward, "lstm": kernels.lstm_backward, "gru": kernels.gru_backward}
GATES = {"rnn": 1, "lstm": 4, "gru": 3}


@dataclass(frozen=True)
class PackedLayout:
    """The lengths of a PackedSequence's sequences in its sorted order, longest first. Its data is then
    the kernels' packed order (rnnkit.kernels, packed=True), so the kernels read and write its rows
    where they are; the states go in and come out in that sorted order."""

    lengths: np.ndarray  # (batch,) non-increasing

    @classmethod
    def of(cls, batch_sizes: torch.Tensor) -> "PackedLayout":
        sizes = batch_sizes.numpy().astype(np.int64)
        steps, batch = len(sizes), int(sizes[0])
        # sizes never grow: the sequence of rank r lasts as many steps as there are sizes above r.
        return cls(steps - np.searchsorted(sizes[::-1], np.arange(batch), side="right"))


@dataclass(frozen=True)
class Direction:
    """What a call needs besides tensors: the cell, its activation, the input's layout and lengths."""

    cell: str  # 'rnn', 'lstm' or 'gru'
    activation: str  # 'tanh', or 'relu' for torch.nn.RNN(nonlinearity='relu')
    batch_first: bool  # input (batch, time, features) rather than (time, batch, features)
    reverse: bool  # the backward direction of a bidirectional layer
    packed: Optional[PackedLayout]  # the input is a PackedSequence's data (rows, features), or None;
    # then the states are in its sorted batch order
    save_for_backward: bool  # False when no gradient will be asked for (inference)


def _gru_rows(hidden: int) -> np.ndarray:
    """Row order that turns torch's GRU gates (r, z, n) into Keras' (z, r, n), and back: a swap."""
    return np.concatenate([np.arange(hidden, 2 * hidden), np.arange(hidden), np.arange(2 * hidden, 3 * hidden)])


def keras_weights(cell, w_ih, w_hh, b_ih, b_hh):
    """(kernel, recurrent_kernel, bias) in the kernels' layout from torch.nn's weights (NumPy views where
    no arithmetic is needed; the kernels copy strided arrays themselves)."""
    hidden = w_hh.shape[1]
    if cell == "gru":
        rows = _gru_rows(hidden)
        w_ih, w_hh = w_ih[rows], w_hh[rows]
        if b_ih is None:
            bias = np.zeros((2, 3 * hidden), w_ih.dtype)
        else:
            bias = np.stack([b_ih[rows], b_hh[rows]])
    elif b_ih is None:
        bias = np.zeros(GATES[cell] * hidden, w_ih.dtype)
    else:
        bias = b_ih + b_hh
    return w_ih.T, w_hh.T, bias


def torch_gradients(cell, grads, hidden):
    """(d weight_ih, d weight_hh, d bias_ih, d bias_hh) from the kernels' gradients."""
    d_ih, d_hh, d_bias = grads.dkernel.T, grads.drecurrent_kernel.T, grads.dbias
    if cell == "gru":
        rows = _gru_rows(hidden)
        return d_ih[rows], d_hh[rows], d_bias[0][rows], d_bias[1][rows]
    return d_ih, d_hh, d_bias, d_bias.copy()  # two tensors: each may become its bias' .grad and grow in place


def _numpy(t):
    return None if t is None else t.detach().numpy()


def _tensor(a) -> torch.Tensor:
    # torch.from_numpy shares memory but takes neither negative strides nor read-only arrays.
    return torch.from_numpy(np.ascontiguousarray(a))


def _to_batch_major(a, direction: Direction):
    """A (batch, time, ...) view of an input in the caller's layout, reversed in time for the backward
    direction: the kernels read a padded sequence in reverse as one padded in front. Packed rows go
    to the kernels as they are."""
    if direction.packed is not None:
        return a
    if not direction.batch_first:
        a = a.swapaxes(0, 1)
    return a[:, ::-1] if direction.reverse else a


def _from_batch_major(a, direction: Direction) -> torch.Tensor:
    if direction.packed is not None:
        return _tensor(a)
    if direction.reverse:
        a = a[:, ::-1]
    if not direction.batch_first:
        a = a.swapaxes(0, 1)
    return _tensor(a)


class RecurrentFunction(torch.autograd.Function):
    """(output, h_n[, c_n]) of one direction of one layer; gradients for x, h0, c0 and the weights."""

    @staticmethod
    def forward(ctx, direction: Direction, x, h0, c0, w_ih, w_hh, b_ih, b_hh):
        ctx.set_materialize_grads(False)
        kernel, recurrent_kernel, bias = keras_weights(direction.cell, *map(_numpy, (w_ih, w_hh, b_ih, b_hh)))
        packed = direction.packed is not None
        states = (_numpy(h0),) + ((_numpy(c0),) if direction.cell == "lstm" else ())
        fwd = FORWARD[direction.cell](_to_batch_major(_numpy(x), direction), kernel, recurrent_kernel, bias, *states,
                                     lengths=direction.packed.lengths if packed else None, packed=packed,
                                     reverse=packed and direction.reverse,
                                     padding="pre" if direction.reverse else "post",
                                     save_for_backward=direction.save_for_backward, activation=direction.activation)
        ctx.direction, ctx.fwd, ctx.hidden = direction, fwd, w_hh.shape[1]
        output = _from_batch_major(fwd.outputs, direction)
        if direction.cell == "lstm":
            return output, _tensor(fwd.h), _tensor(fwd.c)
        return output, _tensor(fwd.h)

    @staticmethod
    @once_differentiable
    def backward(ctx, d_output, d_h, d_c=None):
        direction = ctx.direction
        if not direction.save_for_backward:
            raise RuntimeError("rnnkit.torch: this forward ran without keeping what its backward needs "
                               "(no input required a gradient when it ran)")
        d_output = None if d_output is None else _to_batch_major(d_output.numpy(), direction)
        d_states = (_numpy(d_h),) + ((_numpy(d_c),) if direction.cell == "lstm" else ())
        grads = BACKWARD[direction.cell](ctx.fwd, d_output, *d_states)
        need = ctx.needs_input_grad
        dx = _from_batch_major(grads.dx, direction) if need[1] else None
        dh0 = _tensor(grads.dh0) if need[2] else None
        dc0 = _tensor(grads.dc0) if direction.cell == "lstm" and need[3] else None
        d_ih, d_hh, db_ih, db_hh = (_tensor(g) if wanted else None
                                    for g, wanted in zip(torch_gradients(direction.cell, grads, ctx.hidden), need[4:]))
        return None, dx, dh0, dc0, d_ih, d_hh, db_ih, db_hh
