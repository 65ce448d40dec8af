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


def _start(state, batch, units, dtype):
    return np.zeros((batch, units), dtype) if state is None else np.array(state, dtype=dtype)


def _inputs(x, embeddings):
    """x itself, or the embedding of each token id when an embedding table is given."""
    return x if embeddings is None else embeddings[np.asarray(x)]


def _input_gradient(saved, dx):
    """(dx, dembeddings): with token inputs, dx summed into the rows of the ids that produced it."""
    if saved["embeddings"] is None:
        return dx, None
    dembeddings = np.zeros_like(saved["embeddings"])
    np.add.at(dembeddings, np.asarray(saved["ids"]), dx)
    return None, dembeddings


# --- SimpleRNN ------------------------------------------------------------------------------------


def simple_rnn_forward(x, kernel, recurrent_kernel, bias, h0=None, *, lengths=None, padding="pre", embeddings=None,
                       recurrent_mask=None, activation="tanh"):
    f, _ = _activation(activation)
    ids, x = x, _inputs(x, embeddings)
    batch, timesteps, _ = x.shape
    units = recurrent_kernel.shape[0]
    mask = step_mask(lengths, batch, timesteps, padding)
    rmask = 1 if recurrent_mask is None else recurrent_mask  # recurrent dropout: what the product reads
    h = _start(h0, batch, units, x.dtype)
    output = np.zeros((batch, units), x.dtype)
    outputs, steps = [], []
    for t in range(timesteps):
        h_new = f(x[:, t] @ kernel + (h * rmask) @ recurrent_kernel + bias)
        steps.append((h, h_new))
        real = _real(mask, t)
        h = np.where(real, h_new, h)
        output = np.where(real, h_new, output)
        outputs.append(output)
    saved = dict(x=x, kernel=kernel, recurrent_kernel=recurrent_kernel, mask=mask, steps=steps, ids=ids,
                 embeddings=embeddings, rmask=rmask, activation=activation)
    return SimpleRNNForward(np.stack(outputs, axis=1), h, saved)


def simple_rnn_backward(fwd, d_outputs=None, d_h=None):
    check_forward_result(fwd, SimpleRNNForward, "rnnkit.reference.simple_rnn_forward", dict)
    s = fwd.saved
    x, kernel, recurrent_kernel, mask = s["x"], s["kernel"], s["recurrent_kernel"], s["mask"]
    batch, timesteps, _ = x.shape
    dh = _start(d_h, batch, recurrent_kernel.shape[0], x.dtype)
    d_prev_output = np.zeros_like(dh)  # gradient reaching output_{t-1} through a padded step
    dx = np.zeros_like(x)
    dkernel, drecurrent_kernel = np.zeros_like(kernel), np.zeros_like(recurrent_kernel)
    dbias = np.zeros(kernel.shape[1], x.dtype)
    for t in reversed(range(timesteps)):
        h_prev, h_new = s["steps"][t]
        d_output = d_prev_output + (0 if d_outputs is None else d_outputs[:, t])
        real = _real(mask, t)
        d_new = np.where(real, d_output + dh, 0)
        d_prev_output = np.where(real, 0, d_output)
        dz = d_new * _activation(s["activation"])[1](h_new)
        dx[:, t] = dz @ kernel.T
        dkernel += x[:, t].T @ dz
        drecurrent_kernel += (h_prev * s["rmask"]).T @ dz
        dbias += dz.sum(axis=0)
        dh = (dz @ recurrent_kernel.T) * s["rmask"] + np.where(real, 0, dh)
    dx, dembeddings = _input_gradient(s, dx)
    return SimpleRNNGradients(dx, dkernel, drecurrent_kernel, dbias, dh, dembeddings)


# --- LSTM (gates i, f, c, o) ------------------------------------------------------------------------


def lstm_forward(x, kernel, recurrent_kernel, bias, h0=None, c0=None, *, lengths=None, padding="pre",
                 embeddings=None, recurrent_mask=None):
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
        z = x[:, t] @ kernel + (h * rmask) @ recurrent_kernel + bias
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
                 embeddings=embeddings, rmask=rmask)
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
    dx = np.zeros_like(x)
    dkernel, drecurrent_kernel = np.zeros_like(kernel), np.zeros_like(recurrent_kernel)
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
        dx[:, t] = dz @ kernel.T
        dkernel += x[:, t].T @ dz
        drecurrent_kernel += (h_prev * s["rmask"]).T @ dz
        dbias += dz.sum(axis=0)
        dh = (dz @ recurrent_kernel.T) * s["rmask"] + np.where(real, 0, dh)
        dc = dc_new * f + np.where(real, 0, dc)
    dx, dembeddings = _input_gradient(s, dx)
    return LSTMGradients(dx, dkernel, drecurrent_kernel, dbias, dh, dc, dembeddings)


# --- GRU (gates z, r, h; reset_after=True, bias (2, 3*units)) ---------------------------------------


def gru_forward(x, kernel, recurrent_kernel, bias, h0=None, *, lengths=None, padding="pre", embeddings=None,
                recurrent_mask=None, activation="tanh"):
    f, _ = _activation(activation)
    ids, x = x, _inputs(x, embeddings)
    batch, timesteps, _ = x.shape
    units = recurrent_kernel.shape[0]
    mask = step_mask(lengths, batch, timesteps, padding)
    rmask = 1 if recurrent_mask is None else recurrent_mask  # recurrent dropout: what the product reads
    h = _start(h0, batch, units, x.dtype)
    output = np.zeros((batch, units), x.dtype)
    outputs, steps = [], []
    for t in range(timesteps):
        xz, xr, xh = np.split(x[:, t] @ kernel + bias[0], 3, axis=1)
        mz, mr, mh = np.split((h * rmask) @ recurrent_kernel + bias[1], 3, axis=1)
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
                 embeddings=embeddings, rmask=rmask, activation=activation)
    return GRUForward(np.stack(outputs, axis=1), h, saved)


def gru_backward(fwd, d_outputs=None, d_h=None):
    check_forward_result(fwd, GRUForward, "rnnkit.reference.gru_forward", dict)
    s = fwd.saved
    x, kernel, recurrent_kernel, mask = s["x"], s["kernel"], s["recurrent_kernel"], s["mask"]
    batch, timesteps, _ = x.shape
    units = recurrent_kernel.shape[0]
    dh = _start(d_h, batch, units, x.dtype)
    d_prev_output = np.zeros_like(dh)
    dx = np.zeros_like(x)
    dkernel, drecurrent_kernel = np.zeros_like(kernel), np.zeros_like(recurrent_kernel)
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
        dx[:, t] = d_input @ kernel.T
        dkernel += x[:, t].T @ d_input
        drecurrent_kernel += (h_prev * s["rmask"]).T @ d_recurrent
        dbias[0] += d_input.sum(axis=0)
        dbias[1] += d_recurrent.sum(axis=0)
        dh = (d_recurrent @ recurrent_kernel.T) * s["rmask"] + dh_new * z + np.where(real, 0, dh)
    dx, dembeddings = _input_gradient(s, dx)
    return GRUGradients(dx, dkernel, drecurrent_kernel, dbias, dh, dembeddings)
