"""The kernels on packed sequences (packed=True): only the real steps, in PyTorch's PackedSequence order."""

import numpy as np
import pytest

from rnnkit import kernels, reference

from cells import (
    CELLS,
    assert_close,
    assert_same_bits,
    backward,
    forward,
    gradient_names,
    make_problem,
    state_names,
    train_step,
    with_each_thread_count,
)

LENGTHS = [4, 9, 0, 4, 1, 9]  # unsorted, ties, an empty sequence


def packed_order(lengths):
    """(batch index, step) of each packed row: step after step, the running sequences longest first,
    ties in batch order."""
    rank = sorted(range(len(lengths)), key=lambda b: -lengths[b])  # sorted() is stable
    return [(b, t) for t in range(max(lengths)) for b in rank if lengths[b] > t]


def reversed_real_steps(x, lengths):
    """Each post-padded sequence's real steps in reverse order: what a reverse run reads."""
    out = np.zeros_like(x)
    for b, n in enumerate(lengths):
        out[b, :n] = x[b, :n][::-1]
    return out


def time_of(b, t, lengths, reverse):
    return lengths[b] - 1 - t if reverse else t


@pytest.mark.parametrize("reverse", [False, True], ids=["forward", "reverse"])
@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["f64", "f32"])
@pytest.mark.parametrize("cell", CELLS)
def test_packed_rows_match_the_reference_on_padded_sequences(cell, dtype, reverse):
    p = make_problem(cell, 6, 9, 4, 5, dtype=dtype, initial_state=True)
    rows = packed_order(LENGTHS)
    x_packed = np.stack([p["x"][b, t] for b, t in rows])
    keep = ((np.random.default_rng(5).random((6, 5)) >= 0.3) / 0.7).astype(dtype)
    for mask in (None, keep):
        fwd = forward(kernels, cell, dict(p, x=x_packed), lengths=LENGTHS, packed=True, reverse=reverse,
                      recurrent_mask=mask)
        p64 = {k: v.astype(np.float64) for k, v in p.items()}
        x_ref = reversed_real_steps(p64["x"], LENGTHS) if reverse else p64["x"]
        ref = forward(reference, cell, dict(p64, x=x_ref), lengths=LENGTHS, padding="post",
                      recurrent_mask=None if mask is None else keep.astype(np.float64))
        rtol = 1e-10 if dtype == np.float64 else 1e-4
        # packed row i holds the output of step t of sequence b, at its own time in a reverse run
        order = [(b, time_of(b, t, LENGTHS, reverse)) for b, t in rows]
        assert fwd.outputs.shape == (len(rows), 5)
        assert_close(fwd.outputs, np.stack([ref.outputs[b, t] for b, t in order]), rtol, "outputs")
        for name in state_names(cell):
            assert_close(getattr(fwd, name), getattr(ref, name), rtol, name)
        rng = np.random.default_rng(1)
        d_out = rng.standard_normal(fwd.outputs.shape).astype(dtype)
        d_h = rng.standard_normal(fwd.h.shape).astype(dtype)
        grads = backward(kernels, cell, fwd, d_out, d_h)
        d_out_padded = np.zeros(ref.outputs.shape)
        for i, (b, t) in enumerate(order):
            d_out_padded[b, t] = d_out[i]
        ref_grads = backward(reference, cell, ref, d_out_padded, d_h.astype(np.float64))
        assert grads.dx.shape == x_packed.shape
        assert_close(grads.dx, np.stack([ref_grads.dx[b, t] for b, t in order]), rtol, "dx")
        for name in gradient_names(cell)[1:]:
            assert_close(getattr(grads, name), getattr(ref_grads, name), rtol, name)


@pytest.mark.parametrize("cell", CELLS)
def test_packed_inference_and_last_state_only_equal_training(cell):
    p = make_problem(cell, 6, 9, 4, 5, initial_state=True)
    x_packed = np.stack([p["x"][b, t] for b, t in packed_order(LENGTHS)])
    args = dict(p, x=x_packed)
    for reverse in (False, True):
        trained = forward(kernels, cell, args, lengths=LENGTHS, packed=True, reverse=reverse)
        inferred = forward(kernels, cell, args, lengths=LENGTHS, packed=True, reverse=reverse,
                           save_for_backward=False)
        last_only = forward(kernels, cell, args, lengths=LENGTHS, packed=True, reverse=reverse,
                            return_sequences=False)
        np.testing.assert_array_equal(inferred.outputs, trained.outputs)
        assert last_only.outputs is None
        for name in state_names(cell):
            np.testing.assert_array_equal(getattr(inferred, name), getattr(trained, name))
            np.testing.assert_array_equal(getattr(last_only, name), getattr(trained, name))


@pytest.mark.parametrize("cell", CELLS)
def test_packed_results_do_not_depend_on_the_thread_count(cell):
    lengths = np.random.default_rng(3).integers(1, 60, 64)
    p = make_problem(cell, 64, 60, 8, 16, dtype=np.float32)
    x_packed = np.stack([p["x"][b, t] for b, t in packed_order(list(lengths))])
    step = lambda n: train_step(cell, dict(p, x=x_packed), lengths=lengths, packed=True, reverse=True)  # noqa: E731
    assert_same_bits(cell, with_each_thread_count(step))


def test_packed_arguments_are_checked():
    p = make_problem("lstm", 3, 4, 2, 3)
    k, rk, b = p["kernel"], p["recurrent_kernel"], p["bias"]
    x = np.zeros((7, 2))
    with pytest.raises(ValueError, match="lengths: packed=True needs"):
        kernels.lstm_forward(x, k, rk, b, packed=True)
    with pytest.raises(ValueError, match="add up to 6, x has 7"):
        kernels.lstm_forward(x, k, rk, b, lengths=[3, 2, 1], packed=True)
    with pytest.raises(ValueError, match=r"lengths\[1\] = -1 is outside \[0, the rows of x=7\]"):
        kernels.lstm_forward(x, k, rk, b, lengths=[5, -1, 3], packed=True)
    with pytest.raises(ValueError, match=r"lengths: expected a 1-D array \(batch,\), got shape \(1, 3\)"):
        kernels.lstm_forward(x, k, rk, b, lengths=[[4, 2, 1]], packed=True)
    with pytest.raises(TypeError, match="lengths: expected an integer array"):
        kernels.lstm_forward(x, k, rk, b, lengths=[4.0, 2.0, 1.0], packed=True)
    with pytest.raises(ValueError, match=r"x: packed, expected a 2-D array \(rows, features\)"):
        kernels.lstm_forward(p["x"], k, rk, b, lengths=[4, 4, 4], packed=True)
    with pytest.raises(ValueError, match="reverse: runs packed sequences"):
        kernels.lstm_forward(p["x"], k, rk, b, reverse=True)
    with pytest.raises(ValueError, match="at least one sequence of at least one timestep"):
        kernels.lstm_forward(np.zeros((0, 2)), k, rk, b, lengths=[0, 0], packed=True)
    with pytest.raises(ValueError, match="packed: takes a dense x"):
        kernels.lstm_forward(np.zeros((7,), np.int32), None, rk, b, lengths=[4, 2, 1], packed=True,
                             embeddings=np.zeros((5, 2)))
    with pytest.raises(ValueError, match="kernel: expected"):
        kernels.lstm_forward(np.zeros((7, 3)), k, rk, b, lengths=[4, 2, 1], packed=True)
    fwd = kernels.lstm_forward(x, k, rk, b, lengths=[4, 2, 1], packed=True)
    with pytest.raises(ValueError, match=r"d_outputs: expected a 2-D array \(rows, units\) = \(7, 3\)"):
        kernels.lstm_backward(fwd, np.zeros((3, 4, 3)))
