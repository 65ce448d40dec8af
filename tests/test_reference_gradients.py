"""The NumPy reference's backward against central finite differences of its own forward (float64)."""

import numpy as np
import pytest

from rnnkit import reference

from cells import CELLS, backward, forward, gradient_names, make_problem, numerical_gradient, state_names


def linear_loss(cell, fwd, weights):
    """sum(outputs * w_out) + sum(h * w_h) (+ sum(c * w_c)): its gradients are the weights themselves."""
    total = np.sum(fwd.outputs * weights["outputs"])
    for name in state_names(cell):
        total += np.sum(getattr(fwd, name) * weights[name])
    return total


@pytest.mark.parametrize("lengths", [None, [3, 1, 0]], ids=["full", "masked"])
@pytest.mark.parametrize("cell", CELLS)
def test_reference_backward_matches_finite_differences(cell, lengths):
    p = make_problem(cell, 3, 4, 2, 3, initial_state=True, seed=7)
    kwargs = {} if lengths is None else {"lengths": lengths, "padding": "post"}
    fwd = forward(reference, cell, p, **kwargs)
    rng = np.random.default_rng(3)
    weights = {"outputs": rng.standard_normal(fwd.outputs.shape)}
    for name in state_names(cell):
        weights[name] = rng.standard_normal(fwd.h.shape)
    grads = backward(
        reference, cell, fwd, weights["outputs"], weights["h"], weights.get("c") if cell == "lstm" else None
    )

    def loss():
        return linear_loss(cell, forward(reference, cell, p, **kwargs), weights)

    inputs = {"dx": "x", "dkernel": "kernel", "drecurrent_kernel": "recurrent_kernel", "dbias": "bias",
              "dh0": "h0", "dc0": "c0"}
    for name in gradient_names(cell):
        numeric = numerical_gradient(loss, p[inputs[name]])
        np.testing.assert_allclose(getattr(grads, name), numeric, rtol=1e-6, atol=1e-8, err_msg=name)
