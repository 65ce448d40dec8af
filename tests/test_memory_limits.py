"""Requests larger than memory: a MemoryError that says what was too big, raised before anything is
allocated, with sizes computed without integer overflow."""

import re
import resource

import numpy as np
import pytest

from rnnkit import kernels

from cells import CELLS, GATES


def peak_rss_mib():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def token_problem(cell, batch, timesteps, units, features=1):
    g = GATES[cell]
    return dict(
        x=np.zeros((batch, timesteps), np.int32),
        embeddings=np.zeros((1, features), np.float32),
        kernel=np.zeros((features, g * units), np.float32),
        recurrent_kernel=np.zeros((units, g * units), np.float32),
        bias=np.zeros((2, 3 * units) if cell == "gru" else g * units, np.float32),
    )


@pytest.mark.parametrize("cell", CELLS)
def test_records_beyond_memory_raise_memory_error_before_allocating(cell):
    # 64 MB of token ids, but a training forward would keep > 1 TB of records for its backward
    p = token_problem(cell, 4096, 4096, 2048)
    forward = getattr(kernels, f"{cell}_forward")
    forward(**dict(p, x=p["x"][:1, :1]))  # the first call's one-time costs, and the arguments' pages
    before = peak_rss_mib()
    with pytest.raises(MemoryError, match=r"the outputs and the records for the backward would need \d+ MiB, "
                                          r"more than this machine's \d+ MiB of memory"):
        forward(**p)
    with pytest.raises(MemoryError, match=r"the outputs would need \d+ MiB"):
        forward(**p, save_for_backward=False)  # inference still writes 128 GB of outputs
    assert peak_rss_mib() - before < 64, "the refused call allocated memory first"


@pytest.mark.parametrize("cell", CELLS)
def test_inference_of_the_last_state_only_needs_no_memory_per_timestep(cell):
    p = token_problem(cell, 2, 3, 4)
    out = getattr(kernels, f"{cell}_forward")(**p, save_for_backward=False, return_sequences=False)
    assert out.outputs is None and out.h.shape == (2, 4)


def test_a_broadcast_input_larger_than_memory_is_refused_before_its_copy():
    # 2^62 bytes of float32 behind one element: 32-bit size arithmetic would wrap around here
    x = np.broadcast_to(np.zeros(1, np.float32), (2**29, 2**29, 4))
    p = dict(kernel=np.zeros((4, 4), np.float32), recurrent_kernel=np.zeros((1, 4), np.float32),
             bias=np.zeros(4, np.float32))
    with pytest.raises(MemoryError, match=re.escape("rnnkit: a copy of x would need")):
        kernels.lstm_forward(x, **p)


def test_broadcast_token_ids_larger_than_memory_are_refused_before_their_copy():
    ids = np.broadcast_to(np.zeros(1, np.int16), (2**40, 2**20))
    p = token_problem("gru", 1, 1, 2)
    p["x"] = ids
    with pytest.raises(MemoryError, match=re.escape("rnnkit: a copy of x would need")):
        kernels.gru_forward(**p)


def test_broadcast_output_gradients_larger_than_memory_are_refused():
    p = token_problem("simple_rnn", 2, 3, 4)
    fwd = kernels.simple_rnn_forward(**p)
    huge = np.broadcast_to(np.zeros(1, np.float32), (2**29, 2**29, 4))
    with pytest.raises((MemoryError, ValueError), match=r"d_outputs"):
        kernels.simple_rnn_backward(fwd, d_outputs=huge)


def test_small_broadcast_inputs_are_copied_and_correct():
    x = np.broadcast_to(np.arange(3, dtype=np.float64), (2, 5, 3))
    p = dict(kernel=np.full((3, 2), 0.1), recurrent_kernel=np.eye(2) * 0.5, bias=np.zeros(2))
    out = kernels.simple_rnn_forward(x, **p)
    dense = kernels.simple_rnn_forward(np.ascontiguousarray(x), **p)
    np.testing.assert_array_equal(out.outputs, dense.outputs)
