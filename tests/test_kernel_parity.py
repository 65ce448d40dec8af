"""Every activation and gradient of the C++ kernels against the NumPy reference."""

import numpy as np
import pytest

from rnnkit import kernels, reference

from cells import CELLS, assert_close, backward, forward, gradient_names, loss_gradients, make_problem, state_names

# (batch, timesteps, features, units): ones everywhere, units that are not a multiple of any SIMD
# width, one feature, and one long sequence.
SHAPES = [
    (1, 1, 1, 1),
    (1, 6, 3, 7),
    (4, 1, 5, 33),
    (3, 9, 1, 7),
    (5, 8, 4, 33),
    (37, 5, 6, 16),
    (2, 1000, 3, 7),
]
TOLERANCE = {np.float64: 1e-10, np.float32: 1e-4}


def check_against_reference(cell, shape, dtype, initial_state, source, **options):
    p = make_problem(cell, *shape, dtype=dtype, initial_state=initial_state)
    # The reference runs in float64 from the same (possibly float32) numbers: the ground truth.
    p64 = {k: v.astype(np.float64) for k, v in p.items()}
    fwd = forward(kernels, cell, p, **options)
    ref = forward(reference, cell, p64, **options)
    rtol = TOLERANCE[dtype]
    assert fwd.outputs.dtype == dtype
    assert_close(fwd.outputs, ref.outputs, rtol, "outputs")
    for name in state_names(cell):
        assert_close(getattr(fwd, name), getattr(ref, name), rtol, name)

    d_outputs, d_h, d_c = loss_gradients(cell, fwd, source)
    grads = backward(kernels, cell, fwd, d_outputs, d_h, d_c)
    up = lambda a: None if a is None else a.astype(np.float64)  # noqa: E731
    ref_grads = backward(reference, cell, ref, up(d_outputs), up(d_h), up(d_c))
    for name in gradient_names(cell):
        got, want = getattr(grads, name), getattr(ref_grads, name)
        assert got.dtype == dtype, name
        assert_close(got, want, rtol, name)


@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["f64", "f32"])
@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: "x".join(map(str, s)))
@pytest.mark.parametrize("cell", CELLS)
def test_forward_and_gradients_match_reference(cell, shape, dtype):
    check_against_reference(cell, shape, dtype, initial_state=False, source="both")


@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["f64", "f32"])
@pytest.mark.parametrize("source", ["outputs", "state", "both"])
@pytest.mark.parametrize("initial_state", [False, True], ids=["zero_state", "given_state"])
@pytest.mark.parametrize("cell", CELLS)
def test_gradients_from_each_source_with_and_without_initial_state(cell, initial_state, source, dtype):
    check_against_reference(cell, (3, 11, 4, 7), dtype, initial_state, source)


@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["f64", "f32"])
@pytest.mark.parametrize("shape", [(1, 6, 3, 7), (5, 8, 4, 33), (37, 30, 6, 16)], ids=lambda s: "x".join(map(str, s)))
@pytest.mark.parametrize("activation", ["relu", "linear"])
@pytest.mark.parametrize("cell", ["simple_rnn", "gru"])
def test_relu_and_linear_activations_match_reference(cell, activation, shape, dtype):
    check_against_reference(cell, shape, dtype, initial_state=True, source="both", activation=activation)


@pytest.mark.parametrize("activation", ["relu", "linear"])
@pytest.mark.parametrize("cell", ["simple_rnn", "gru"])
def test_relu_and_linear_activations_with_tokens_lengths_and_a_recurrent_mask_match_reference(cell, activation):
    p = token_problem(cell, 9, 12, 20, 4, 7, np.float64)
    rng = np.random.default_rng(4)
    options = dict(embeddings=p["embeddings"], lengths=rng.integers(0, 13, 9), padding="post",
                   recurrent_mask=(rng.random((9, 7)) > 0.3) / 0.7, activation=activation)
    fwd, ref = forward(kernels, cell, p, **options), forward(reference, cell, p, **options)
    assert_close(fwd.outputs, ref.outputs, 1e-10, "outputs")
    d = loss_gradients(cell, fwd, "both")
    grads, ref_grads = backward(kernels, cell, fwd, *d), backward(reference, cell, ref, *d)
    for name in gradient_names(cell)[1:] + ["dembeddings"]:
        assert_close(getattr(grads, name), getattr(ref_grads, name), 1e-10, name)


def test_an_lstm_takes_tanh_only_and_a_bad_activation_is_named():
    p = make_problem("lstm", 2, 3, 4, 5)
    with pytest.raises(ValueError, match="activation: lstm takes 'tanh', got 'relu'"):
        forward(kernels, "lstm", p, activation="relu")
    with pytest.raises(ValueError, match="activation: gru takes 'tanh', 'relu' or 'linear', got 'elu'"):
        forward(kernels, "gru", make_problem("gru", 2, 3, 4, 5), activation="elu")


@pytest.mark.parametrize("cell", CELLS)
def test_no_loss_gradient_gives_zero_gradients(cell):
    p = make_problem(cell, 2, 4, 3, 5)
    grads = backward(kernels, cell, forward(kernels, cell, p))
    for name in gradient_names(cell):
        assert not np.any(getattr(grads, name)), name


@pytest.mark.parametrize("cell", CELLS)
def test_backward_can_run_twice_on_one_forward(cell):
    p = make_problem(cell, 3, 6, 4, 5, initial_state=True)
    fwd = forward(kernels, cell, p)
    d = loss_gradients(cell, fwd, "both")
    first = backward(kernels, cell, fwd, *d)
    second = backward(kernels, cell, fwd, *d)
    for name in gradient_names(cell):
        np.testing.assert_array_equal(getattr(first, name), getattr(second, name), err_msg=name)


@pytest.mark.parametrize("cell", CELLS)
def test_updating_weights_in_place_after_forward_does_not_change_backward(cell):
    p = make_problem(cell, 3, 6, 4, 5)
    fwd = forward(kernels, cell, p)
    d = loss_gradients(cell, fwd, "both")
    expected = backward(kernels, cell, fwd, *d)
    p["kernel"] *= 2  # an optimizer step on the caller's arrays
    p["recurrent_kernel"] += 1
    again = backward(kernels, cell, fwd, *d)
    for name in gradient_names(cell):
        np.testing.assert_array_equal(getattr(again, name), getattr(expected, name), err_msg=name)


def test_keras_lstm_gate_order_is_i_f_c_o():
    """With only the forget gate's bias large, the cell keeps c0 exactly: f sits in the second block."""
    units = 3
    p = make_problem("lstm", 2, 4, 3, units, initial_state=True)
    p["kernel"][:] = 0
    p["recurrent_kernel"][:] = 0
    p["bias"][:] = -50.0  # i = f = o = 0 (sigmoid(-50) ~ 2e-22)
    p["bias"][units : 2 * units] = 50.0  # f = 1
    fwd = forward(kernels, "lstm", p)
    np.testing.assert_allclose(fwd.c, p["c0"], rtol=1e-12)


def test_keras_gru_bias_rows_are_input_then_recurrent():
    """reset_after=True: the recurrent bias of the h gate is multiplied by r, the input bias is not."""
    units = 2
    p = make_problem("gru", 1, 1, 1, units)
    p["kernel"][:] = 0
    p["recurrent_kernel"][:] = 0
    bias = np.zeros((2, 3 * units))
    bias[0, :units] = -50.0  # z = 0: h_1 = hh
    bias[0, units : 2 * units] = -50.0  # r = 0 (with the recurrent r bias 0)
    bias[1, 2 * units :] = 3.0  # recurrent h bias, multiplied by r = 0: no effect
    bias[0, 2 * units :] = 0.5  # input h bias
    p["bias"] = bias
    fwd = forward(kernels, "gru", p)
    np.testing.assert_allclose(fwd.h, np.tanh(0.5) * np.ones((1, units)), rtol=1e-12)


def token_problem(cell, batch, timesteps, vocabulary, features, units, dtype, seed=0):
    p = make_problem(cell, batch, timesteps, features, units, dtype=dtype, seed=seed, initial_state=True)
    rng = np.random.default_rng(seed + 100)
    p["embeddings"] = rng.standard_normal((vocabulary, features)).astype(dtype)
    p["x"] = rng.integers(0, vocabulary, (batch, timesteps)).astype(np.int32)
    p["x"][0, :3] = min(2, vocabulary - 1)  # a token used more than once in one sequence: its rows add up
    return p


@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["f64", "f32"])
@pytest.mark.parametrize("shape", [(1, 1, 1, 1, 1), (5, 9, 11, 4, 7), (37, 20, 50, 6, 33)],
                         ids=lambda s: "x".join(map(str, s)))
@pytest.mark.parametrize("cell", CELLS)
def test_token_ids_into_embeddings_match_the_reference(cell, shape, dtype):
    p = token_problem(cell, *shape, dtype=dtype)
    p64 = {k: (v if k == "x" else v.astype(np.float64)) for k, v in p.items()}
    fwd = forward(kernels, cell, p, embeddings=p["embeddings"])
    ref = forward(reference, cell, p64, embeddings=p64["embeddings"])
    rtol = TOLERANCE[dtype]
    assert_close(fwd.outputs, ref.outputs, rtol, "outputs")
    d = loss_gradients(cell, fwd, "both")
    up = lambda a: None if a is None else a.astype(np.float64)  # noqa: E731
    grads = backward(kernels, cell, fwd, *d)
    ref_grads = backward(reference, cell, ref, *map(up, d))
    assert grads.dx is None and ref_grads.dx is None
    assert_close(grads.dembeddings, ref_grads.dembeddings, rtol, "dembeddings")
    for name in gradient_names(cell)[1:]:
        assert_close(getattr(grads, name), getattr(ref_grads, name), rtol, name)


@pytest.mark.parametrize("cell", CELLS)
def test_token_input_equals_looking_up_the_embeddings_first(cell):
    p = token_problem(cell, 6, 12, 30, 5, 8, np.float64)
    ids, table = p["x"], p["embeddings"]
    fused = forward(kernels, cell, p, embeddings=table)
    dense = forward(kernels, cell, dict(p, x=table[ids]))
    np.testing.assert_allclose(fused.outputs, dense.outputs, rtol=1e-12, atol=1e-14)
    d = loss_gradients(cell, fused, "both")
    g_fused, g_dense = backward(kernels, cell, fused, *d), backward(kernels, cell, dense, *d)
    expected = np.zeros_like(table)
    np.add.at(expected, ids, g_dense.dx)
    np.testing.assert_allclose(g_fused.dembeddings, expected, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(g_fused.dkernel, g_dense.dkernel, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(g_fused.dbias, g_dense.dbias, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("cell", CELLS)
def test_embedding_rows_no_token_uses_do_not_reach_the_results(cell):
    """Only the ids a batch holds (at its real steps) are read: an inf or NaN in any other row of the
    table changes nothing, and those rows' gradients are exactly zero."""
    p = token_problem(cell, 4, 6, 20, 3, 5, np.float64)
    p["x"] = p["x"] % 10 + 1  # ids 1..10; 0 pads
    lengths = [6, 3, 0, 5]
    for b, n in enumerate(lengths):
        p["x"][b, : 6 - n] = 0  # pre-padding
    poisoned = p["embeddings"].copy()
    poisoned[11:] = np.nan
    poisoned[0] = np.inf
    clean = p["embeddings"].copy()
    clean[11:] = 0.0
    clean[0] = 0.0
    runs = []
    for table in (poisoned, clean):
        fwd = forward(kernels, cell, p, embeddings=table, lengths=lengths)
        runs.append((fwd, backward(kernels, cell, fwd, *loss_gradients(cell, fwd, "both"))))
    (fwd, grads), (fwd_clean, grads_clean) = runs
    np.testing.assert_array_equal(fwd.outputs, fwd_clean.outputs)
    for name in gradient_names(cell)[1:] + ["dembeddings"]:
        np.testing.assert_array_equal(getattr(grads, name), getattr(grads_clean, name), err_msg=name)
    assert not grads.dembeddings[[0] + list(range(11, 20))].any()


@pytest.mark.parametrize("tokens", [False, True], ids=["dense", "tokens"])
@pytest.mark.parametrize("cell", CELLS)
def test_return_sequences_false_returns_the_same_last_states_and_gradients(cell, tokens):
    p = token_problem(cell, 5, 8, 12, 3, 6, np.float64) if tokens else make_problem(cell, 5, 8, 3, 6,
                                                                                        initial_state=True)
    options = dict(lengths=[8, 3, 0, 5, 8], embeddings=p.get("embeddings"))
    full = forward(kernels, cell, p, **options)
    last = forward(kernels, cell, p, return_sequences=False, **options)
    assert last.outputs is None
    for name in state_names(cell):
        np.testing.assert_array_equal(getattr(last, name), getattr(full, name), err_msg=name)
    d = loss_gradients(cell, full, "state")
    g_full, g_last = backward(kernels, cell, full, *d), backward(kernels, cell, last, *d)
    for name in gradient_names(cell)[1:] + ["dembeddings" if tokens else "dx"]:
        np.testing.assert_array_equal(getattr(g_last, name), getattr(g_full, name), err_msg=name)
