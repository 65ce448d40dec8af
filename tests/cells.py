"""Random problems for the three cells and uniform calls into rnnkit.kernels or rnnkit.reference."""

from __future__ import annotations

import numpy as np

import rnnkit
from rnnkit import kernels, reference

GATES = {"simple_rnn": 1, "lstm": 4, "gru": 3}
CELLS = tuple(GATES)


def make_problem(cell, batch, timesteps, features, units, *, dtype=np.float64, seed=0, initial_state=False):
    """Inputs and weights scaled like Keras' initializers, so gates are neither saturated nor flat."""
    rng = np.random.default_rng(seed)
    g = GATES[cell]
    p = dict(
        x=rng.standard_normal((batch, timesteps, features)),
        kernel=rng.standard_normal((features, g * units)) / np.sqrt(features),
        recurrent_kernel=rng.standard_normal((units, g * units)) / np.sqrt(units),
        bias=rng.standard_normal((2, 3 * units) if cell == "gru" else (g * units,)) * 0.1,
    )
    if initial_state:
        p["h0"] = rng.standard_normal((batch, units)) * 0.5
        if cell == "lstm":
            p["c0"] = rng.standard_normal((batch, units)) * 0.5
    return {k: v.astype(dtype) for k, v in p.items()}


def forward(module, cell, p, **kwargs):
    args = {k: v for k, v in p.items() if k in ("h0", "c0")}
    return getattr(module, f"{cell}_forward")(p["x"], p["kernel"], p["recurrent_kernel"], p["bias"], **args, **kwargs)


def backward(module, cell, fwd, d_outputs=None, d_h=None, d_c=None):
    fn = getattr(module, f"{cell}_backward")
    if cell == "lstm":
        return fn(fwd, d_outputs, d_h, d_c)
    return fn(fwd, d_outputs, d_h)


def gradient_names(cell):
    names = ["dx", "dkernel", "drecurrent_kernel", "dbias", "dh0"]
    return names + ["dc0"] if cell == "lstm" else names


def state_names(cell):
    return ["h", "c"] if cell == "lstm" else ["h"]


def loss_gradients(cell, fwd, source, seed=1):
    """d(loss)/d(outputs) and d(loss)/d(last states) for a random linear loss; source says which are non-zero."""
    rng = np.random.default_rng(seed)
    dtype = fwd.outputs.dtype
    d_outputs = rng.standard_normal(fwd.outputs.shape).astype(dtype) if source in ("outputs", "both") else None
    d_h = rng.standard_normal(fwd.h.shape).astype(dtype) if source in ("state", "both") else None
    d_c = rng.standard_normal(fwd.h.shape).astype(dtype) if cell == "lstm" and source in ("state", "both") else None
    return d_outputs, d_h, d_c


def assert_close(actual, expected, rtol, name=""):
    """Elementwise, relative to the array's own scale: |a - e| <= rtol * (|e| + max|e|)."""
    actual, expected = np.asarray(actual), np.asarray(expected)
    assert actual.shape == expected.shape, f"{name}: shape {actual.shape} != {expected.shape}"
    scale = np.abs(expected).max() if expected.size else 0.0
    np.testing.assert_allclose(actual, expected, rtol=rtol, atol=rtol * scale, err_msg=name)


def numerical_gradient(f, array, eps=1e-6):
    """Central differences of the scalar f() with respect to every element of array (changed in place
    and restored)."""
    grad = np.zeros_like(array, dtype=np.float64)
    for index in np.ndindex(array.shape):
        keep = array[index]
        array[index] = keep + eps
        plus = f()
        array[index] = keep - eps
        minus = f()
        array[index] = keep
        grad[index] = (plus - minus) / (2 * eps)
    return grad


def with_each_thread_count(fn, threads=(1, 2, 3, 4)):
    """[fn(n) for each thread count n], each run with rnnkit set to n threads; the count is restored."""
    previous = rnnkit.get_num_threads()
    try:
        results = []
        for n in threads:
            rnnkit.set_num_threads(n)
            results.append(fn(n))
        return results
    finally:
        rnnkit.set_num_threads(previous)


def train_step(cell, p, **options):
    """The kernels' forward of problem p and its backward from a random loss on outputs and states."""
    fwd = forward(kernels, cell, p, **options)
    return fwd, backward(kernels, cell, fwd, *loss_gradients(cell, fwd, "both"))


def reference_step(cell, p, **options):
    """The reference's forward of problem p, a random loss's gradients on its outputs and states, and the
    reference's backward from them: (forward, loss gradients, gradients), for the kernels to match."""
    ref = forward(reference, cell, p, **options)
    d = loss_gradients(cell, ref, "both")
    return ref, d, backward(reference, cell, ref, *d)


def assert_same_bits(cell, runs):
    """Every (forward, gradients) pair of runs equals the first, bit for bit: outputs, last states and
    every gradient."""
    (first_fwd, first_grads), *rest = runs
    for fwd, grads in rest:
        np.testing.assert_array_equal(fwd.outputs, first_fwd.outputs, err_msg=f"{cell} outputs")
        for name in state_names(cell):
            np.testing.assert_array_equal(getattr(fwd, name), getattr(first_fwd, name), err_msg=f"{cell} {name}")
        for name in gradient_names(cell):
            np.testing.assert_array_equal(getattr(grads, name), getattr(first_grads, name), err_msg=f"{cell} {name}")
