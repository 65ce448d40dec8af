"""The ground truth for rnnkit.kernels: the same six functions in plain NumPy, one loop over timesteps.

Each forward is the textbook recurrence; each backward walks the same loop in reverse (BPTT). Masking
follows Keras: at a padded step the state carries over and the output repeats the previous output
(zeros before the first real step). Slow on purpose: nothing here is clever.
"""

from __future__ import annotations

import numpy as np

from .results import (
    GRUForward,
    GRUGradients,
    LSTMForward,
    LSTMGradients,
    SimpleRNNForward,
    SimpleRNNGradients,
    check_forward_result,
)


def sigmoid(z):
    with np.errstate(over="ignore"):  # exp(-z) = inf for very negative z gives the right limit, 0
        return 1.0 / (1.0 + np.exp(-z))


def step_mask(lengths, batch, timesteps, padding="pre"):
    """(batch, timesteps) bool, True at the real steps; None when every step is real."""
    if lengths is None:
        return None
    lengths = np.asarray(lengths).reshape(batch, 1)
    t = np.arange(timesteps).reshape(1, timesteps)
    return t >= timesteps - lengths if padding == "pre" else t < lengths


def _real(mask, t):
    """Column mask of step t, broadcastable over units (True everywhere without a mask)."""
    return True if mask is None else mask[:, t, None]


# A SimpleRNN's and a GRU's activation (Keras' `activation`), and its slope from its output y.
ACTIVATIONS = {
    "tanh": (np.tanh, lambda y: 1 - y**2),
    "relu": (lambda z: np.maximum(z, 0), lambda y: (y > 0).astype(y.dtype)),
    "linear": (lambda z: z, lambda y: np.ones_like(y)),
}


def _activation(name):
    if name not in ACTIVATIONS:
        raise ValueError(f"activation: expected one of {sorted(ACTIVATIONS)}, got {name!r}")
    return ACTIVATIONS[name]


PRECISIONS = ("full", "bfloat16")


def to_bfloat16(a):
    """Each element rounded to the nearest bfloat16 (ties to even; subnormals become zeros of their sign,
    NaN stays NaN), in a's float type: what AVX512_BF16's conversions give."""
    a = np.asarray(a)
    u = a.astype(np.float32).view(np.uint32)
    nan = (u & 0x7FFFFFFF) > 0x7F800000
    tiny = (u & 0x7F800000) == 0
    with np.errstate(over="ignore"):
        rounded = u + np.uint32(0x7FFF) + ((u >> 16) & 1)
    rounded = np.where(nan, u | 0x00400000, rounded)
    rounded = np.where(tiny, u & 0x80000000, rounded) & np.uint32(0xFFFF0000)
    return rounded.astype(np.uint32).view(np.float32).astype(a.dtype)


def _product(precision):
    """The layer's matrix product a @ b: as it is, or of a and b rounded to bfloat16 ('bfloat16'; the
    products are then exact and only their sums round)."""
    if precision not in PRECISIONS:
        raise ValueError(f"precision: expected one of {PRECISIONS}, got {precision!r}")
    if precision == "bfloat16":
        return lambda a, b: to_bfloat16(a) @ to_bfloat16(b)
    return lambda a, b: a @ b


class _InputGradient:
    """Where the gradient of x_t @ kernel goes, step by step: dx and dkernel for a dense x; for token
    ids, the gradient of the table E @ kernel summed by token (d_table), turned into dembeddings and
    dkernel at the end, as the kernels do (with bfloat16 products the two orders round differently)."""

    def __init__(self, saved, mm):
        self.x, self.kernel, self.mm = saved["x"], saved["kernel"], mm
        self.embeddings, self.ids = saved["embeddings"], saved["ids"]
        self.dkernel = np.zeros_like(self.kernel)
        if self.embeddings is None:
            self.dx = np.zeros_like(self.x)
        else:
            self.d_table = np.zeros((len(self.embeddings), self.kernel.shape[1]), self.x.dtype)

    def add(self, t, dz):
        if self.embeddings is None:
            self.dx[:, t] = self.mm(dz, self.kernel.T)
            self.dkernel += self.mm(self.x[:, t].T, dz)
        else:
            np.add.at(self.d_table, np.asarray(self.ids)[:, t], dz)

    def result(self):
        """(dx, dkernel, dembeddings)"""
        if self.embeddings is None:
            return self.dx, self.dkernel, None
        return None, self.mm(self.embeddings.T, self.d_table), self.mm(self.d_table, self.kernel.T)


def _start(state, batch, units, dtype):
    return np.zeros((batch, units), dtype) if state is None else np.array(state, dtype=dtype)


def _inputs(x, embeddings):
    """x itself, or the embedding of each token id when an embedding table is given."""
    return x if embeddings is None else embeddings[np.asarray(x)]


# --- SimpleRNN ------------------------------------------------------------------------------------


def simple_rnn_forward(x, kernel, recurrent_kernel, bias, h0=None, *, lengths=None, padding="pre", embeddings=None,
                       recurrent_mask=None, activation="tanh", precision="full"):
    f, _ = _activation(activation)
    mm = _product(precision)
    ids, x = x, _inputs(x, embeddings)
    batch, timesteps, _ = x.shape
    units = recurrent_kernel.shape[0]
    mask = step_mask(lengths, batch, timesteps, padding)
    rmask = 1 if recurrent_mask is None else recurrent_mask  # recurrent dropout: what the product reads
    h = _start(h0, batch, units, x.dtype)
    output = np.zeros((batch, units), x.dtype)
    outputs, steps = [], []
    for t in range(timesteps):
        h_new = f(mm(x[:, t], kernel) + mm(h * rmask, recurrent_kernel) + bias)
        steps.append((h, h_new))
        real = _real(mask, t)
        h = np.where(real, h_new, h)
        output = np.where(real, h_new, output)
        outputs.append(output)
    saved = dict(x=x, kernel=kernel, recurrent_kernel=recurrent_kernel, mask=mask, steps=steps, ids=ids,
                 embeddings=embeddings, rmask=rmask, activation=activation, precision=precision)
    return SimpleRNNForward(np.stack(outputs, axis=1), h, saved)


def simple_rnn_backward(fwd, d_outputs=None, d_h=None):
    check_forward_result(fwd, SimpleRNNForward, "rnnkit.reference.simple_rnn_forward", dict)
    s = fwd.saved
    x, kernel, recurrent_kernel, mask = s["x"], s["kernel"], s["recurrent_kernel"], s["mask"]
    batch, timesteps, _ = x.shape
    dh = _start(d_h, batch, recurrent_kernel.shape[0], x.dtype)
    d_prev_output = np.zeros_like(dh)  # gradient reaching output_{t-1} through a padded step
    mm = _product(s["precision"])
    inputs = _InputGradient(s, mm)
    drecurrent_kernel = np.zeros_like(recurrent_kernel)
    dbias = np.zeros(kernel.shape[1], x.dtype)
    for t in reversed(range(timesteps)):
        h_prev, h_new = s["steps"][t]
        d_output = d_prev_output + (0 if d_outputs is None else d_outputs[:, t])
        real = _real(mask, t)
        d_new = np.where(real, d_output + dh, 0)
        d_prev_output = np.where(real, 0, d_output)
        dz = d_new * _activation(s["activation"])[1](h_new)
        inputs.add(t, dz)
        drecurrent_kernel += mm((h_prev * s["rmask"]).T, dz)
        dbias += dz.sum(axis=0)
        dh = mm(dz, recurrent_kernel.T) * s["rmask"] + np.where(real, 0, dh)
    dx, dkernel, dembeddings = inputs.result()
    return SimpleRNNGradients(dx, dkernel, drecurrent_kernel, dbias, dh, dembeddings)


# --- LSTM (gates i, f, c, o) ------------------------------------------------------------------------


def lstm_forward(x, kernel, recurrent_kernel, bias, h0=None, c0=None, *, lengths=None, padding="pre",
                 embeddings=None, recurrent_mask=None, precision="full"):
    mm = _product(precision)
    ids, x = x, _inputs(x, embeddings)
    batch, timesteps, _ = x.shape
    units = recurrent_kernel.shape[0]
    mask = step_mask(lengths, batch, timesteps, padding)
    rmask = 1 if recurrent_mask is None else recurrent_mask  # recurrent dropout: what the product reads
    h = _start(h0, batch, units, x.dtype)
    c = _start(c0, batch, units, x.dtype)
    output = np.zeros((batch, units), x.dtype)
    outputs, steps = [], []
    for t in range(timesteps):
        z = mm(x[:, t], kernel) + mm(h * rmask, recurrent_kernel) + bias
        i = sigmoid(z[:, :units])
        f = sigmoid(z[:, units : 2 * units])
        g = np.tanh(z[:, 2 * units : 3 * units])
        o = sigmoid(z[:, 3 * units :])
        c_new = f * c + i * g
        h_new = o * np.tanh(c_new)
        steps.append((h, c, i, f, g, o, c_new))
        real = _real(mask, t)
        h = np.where(real, h_new, h)
        c = np.where(real, c_new, c)
        output = np.where(real, h_new, output)
        outputs.append(output)
    saved = dict(x=x, kernel=kernel, recurrent_kernel=recurrent_kernel, mask=mask, steps=steps, ids=ids,
                 embeddings=embeddings, rmask=rmask, precision=precision)
    return LSTMForward(np.stack(outputs, axis=1), h, c, saved)


def lstm_backward(fwd, d_outputs=None, d_h=None, d_c=None):
    check_forward_result(fwd, LSTMForward, "rnnkit.reference.lstm_forward", dict)
    s = fwd.saved
    x, kernel, recurrent_kernel, mask = s["x"], s["kernel"], s["recurrent_kernel"], s["mask"]
    batch, timesteps, _ = x.shape
    units = recurrent_kernel.shape[0]
    dh = _start(d_h, batch, units, x.dtype)
    dc = _start(d_c, batch, units, x.dtype)
    d_prev_output = np.zeros_like(dh)
    mm = _product(s["precision"])
    inputs = _InputGradient(s, mm)
    drecurrent_kernel = np.zeros_like(recurrent_kernel)
    dbias = np.zeros(kernel.shape[1], x.dtype)
    for t in reversed(range(timesteps)):
        h_prev, c_prev, i, f, g, o, c_new = s["steps"][t]
        d_output = d_prev_output + (0 if d_outputs is None else d_outputs[:, t])
        real = _real(mask, t)
        dh_new = np.where(real, d_output + dh, 0)
        dc_new = np.where(real, dc, 0)
        d_prev_output = np.where(real, 0, d_output)
        tanh_c = np.tanh(c_new)
        dc_new = dc_new + dh_new * o * (1 - tanh_c**2)
        dz = np.concatenate(
            [
                dc_new * g * i * (1 - i),
                dc_new * c_prev * f * (1 - f),
                dc_new * i * (1 - g**2),
                dh_new * tanh_c * o * (1 - o),
            ],
            axis=1,
        )
        inputs.add(t, dz)
        drecurrent_kernel += mm((h_prev * s["rmask"]).T, dz)
        dbias += dz.sum(axis=0)
        dh = mm(dz, recurrent_kernel.T) * s["rmask"] + np.where(real, 0, dh)
        dc = dc_new * f + np.where(real, 0, dc)
    dx, dkernel, dembeddings = inputs.result()
    return LSTMGradients(dx, dkernel, drecurrent_kernel, dbias, dh, dc, dembeddings)


# --- GRU (gates z, r, h; reset_after=True, bias (2, 3*units)) ---------------------------------------


def gru_forward(x, kernel, recurrent_kernel, bias, h0=None, *, lengths=None, padding="pre", embeddings=None,
                recurrent_mask=None, activation="tanh", precision="full"):
    f, _ = _activation(activation)
    mm = _product(precision)
    ids, x = x, _inputs(x, embeddings)
    batch, timesteps, _ = x.shape
    units = recurrent_kernel.shape[0]
    mask = step_mask(lengths, batch, timesteps, padding)
    rmask = 1 if recurrent_mask is None else recurrent_mask  # recurrent dropout: what the product reads
    h = _start(h0, batch, units, x.dtype)
    output = np.zeros((batch, units), x.dtype)
    outputs, steps = [], []
    for t in range(timesteps):
        xz, xr, xh = np.split(mm(x[:, t], kernel) + bias[0], 3, axis=1)
        mz, mr, mh = np.split(mm(h * rmask, recurrent_kernel) + bias[1], 3, axis=1)
        z = sigmoid(xz + mz)
        r = sigmoid(xr + mr)
        hh = f(xh + r * mh)
        h_new = z * h + (1 - z) * hh
        steps.append((h, z, r, hh, mh))
        real = _real(mask, t)
        h = np.where(real, h_new, h)
        output = np.where(real, h_new, output)
        outputs.append(output)
    saved = dict(x=x, kernel=kernel, recurrent_kernel=recurrent_kernel, mask=mask, steps=steps, ids=ids,
                 embeddings=embeddings, rmask=rmask, activation=activation, precision=precision)
    return GRUForward(np.stack(outputs, axis=1), h, saved)


def gru_backward(fwd, d_outputs=None, d_h=None):
    check_forward_result(fwd, GRUForward, "rnnkit.reference.gru_forward", dict)
    s = fwd.saved
    x, kernel, recurrent_kernel, mask = s["x"], s["kernel"], s["recurrent_kernel"], s["mask"]
    batch, timesteps, _ = x.shape
    units = recurrent_kernel.shape[0]
    dh = _start(d_h, batch, units, x.dtype)
    d_prev_output = np.zeros_like(dh)
    mm = _product(s["precision"])
    inputs = _InputGradient(s, mm)
    drecurrent_kernel = np.zeros_like(recurrent_kernel)
    dbias = np.zeros((2, kernel.shape[1]), x.dtype)
    for t in reversed(range(timesteps)):
        h_prev, z, r, hh, mh = s["steps"][t]
        d_output = d_prev_output + (0 if d_outputs is None else d_outputs[:, t])
        real = _real(mask, t)
        dh_new = np.where(real, d_output + dh, 0)
        d_prev_output = np.where(real, 0, d_output)
        dz = dh_new * (h_prev - hh) * z * (1 - z)
        dxh = dh_new * (1 - z) * _activation(s["activation"])[1](hh)
        dr = dxh * mh * r * (1 - r)
        d_input = np.concatenate([dz, dr, dxh], axis=1)  # gradient of x_t @ kernel + bias[0]
        d_recurrent = np.concatenate([dz, dr, dxh * r], axis=1)  # of h_{t-1} @ recurrent_kernel + bias[1]
        inputs.add(t, d_input)
        drecurrent_kernel += mm((h_prev * s["rmask"]).T, d_recurrent)
        dbias[0] += d_input.sum(axis=0)
        dbias[1] += d_recurrent.sum(axis=0)
        dh = mm(d_recurrent, recurrent_kernel.T) * s["rmask"] + dh_new * z + np.where(real, 0, dh)
    dx, dkernel, dembeddings = inputs.result()
    return GRUGradients(dx, dkernel, drecurrent_kernel, dbias, dh, dembeddings)
