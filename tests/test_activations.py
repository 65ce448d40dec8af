"""The kernels' own float32 tanh and sigmoid (cpp/simd/activations.hpp) against float64, over the
whole range a gate sees and at its ends, read through one-step layers that apply nothing else:
a SimpleRNN with an identity kernel gives tanh(x); a GRU whose update gate reads x, with h0 = 1 and a
candidate of tanh(0) = 0, gives z = sigmoid(x)."""

import numpy as np

from rnnkit import kernels

UNITS = 16
EPS = np.finfo(np.float32).eps


def float32_grid():
    """Every 1024th float32 in [-30, 30] (both signs; zero and subnormals too) and a few far values."""
    positive = np.arange(0, np.float32(30).view(np.int32), 1024, dtype=np.int32).view(np.float32)
    far = np.array([45, 80, 200, 1e30], np.float32)
    x = np.concatenate([positive, far, -positive, -far])
    return np.pad(x, (0, -len(x) % UNITS))


def kernel_tanh(x):
    identity = np.eye(UNITS, dtype=np.float32)
    zeros = np.zeros((UNITS, UNITS), np.float32)
    out = kernels.simple_rnn_forward(x.reshape(-1, 1, UNITS), identity, zeros, np.zeros(UNITS, np.float32),
                                     save_for_backward=False)
    return out.outputs.reshape(-1)


def kernel_sigmoid(x):
    kernel = np.zeros((UNITS, 3 * UNITS), np.float32)
    kernel[:, :UNITS] = np.eye(UNITS)  # x reaches the update gate z only
    zeros = np.zeros((UNITS, 3 * UNITS), np.float32)
    rows = x.reshape(-1, 1, UNITS)
    h0 = np.ones((len(rows), UNITS), np.float32)
    out = kernels.gru_forward(rows, kernel, zeros, np.zeros((2, 3 * UNITS), np.float32), h0,
                              save_for_backward=False)
    return out.outputs.reshape(-1)  # z * 1 + (1 - z) * tanh(0)


def test_float32_tanh_is_within_a_few_ulp_of_float64_tanh():
    x = float32_grid()
    want = np.tanh(x.astype(np.float64))
    got = kernel_tanh(x)
    relative = np.abs(got - want) / np.maximum(np.abs(want), np.finfo(np.float32).tiny)
    assert relative.max() < 6 * EPS, f"worst at x = {x[relative.argmax()]}"
    nonzero = x != 0  # (the layer's product adds +0 to -0)
    np.testing.assert_array_equal(np.sign(got[nonzero]), np.sign(x[nonzero]))  # odd


def test_float32_sigmoid_is_within_1e_7_of_float64_and_relatively_close_in_the_tails():
    x = float32_grid()
    with np.errstate(over="ignore"):
        want = 1 / (1 + np.exp(-x.astype(np.float64)))
    got = kernel_sigmoid(x)
    assert np.abs(got - want).max() < 1.2e-7
    # relative error grows with |x| (the rounding of x log2(e)), yet stays small where gates live:
    # 1/2 + tanh(x/2)/2 had no relative accuracy at all below x = -17 (it stopped at 6e-8)
    gate_range = np.abs(x) <= 20
    relative = np.abs(got[gate_range] - want[gate_range]) / want[gate_range]
    assert relative.max() < 1.2e-6, f"worst at x = {x[gate_range][relative.argmax()]}"
    assert np.all((got >= 0) & (got <= 1))


def test_float32_tanh_gives_its_limits_at_infinity_and_keeps_nan():
    x = np.zeros((3, UNITS), np.float32)  # one special value a row: inf times the kernel's zeros is NaN
    x[:, 0] = [np.inf, -np.inf, np.nan]
    got = kernel_tanh(x.reshape(-1)).reshape(3, UNITS)[:, 0]
    assert abs(got[0] - 1) <= EPS and abs(got[1] + 1) <= EPS and np.isnan(got[2])


def test_float32_sigmoid_gives_its_limits_at_the_largest_floats_and_keeps_nan():
    """(Through the GRU an infinite x would also reach the candidate as inf times 0.) x log2(e)
    overflows to infinity there, which the clamp must turn into a limit, not a NaN."""
    big = np.finfo(np.float32).max
    x = np.zeros((3, UNITS), np.float32)
    x[:, 0] = [big, -big, np.nan]
    got = kernel_sigmoid(x.reshape(-1)).reshape(3, UNITS)[:, 0]
    assert abs(got[0] - 1) <= EPS and 0 <= got[1] < 1e-30 and np.isnan(got[2])
