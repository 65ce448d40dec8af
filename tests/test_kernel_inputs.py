"""What the kernels do with bad, odd and concurrent input: a clear exception or a correct result."""

import re

import numpy as np
import pytest

import rnnkit
from rnnkit import kernels, reference

from cells import (
    CELLS,
    GATES,
    backward,
    forward,
    loss_gradients,
    make_problem,
    state_names,
)


def call(cell, p, **overrides):
    q = dict(p, **overrides)
    return forward(kernels, cell, q)


@pytest.mark.parametrize("cell", CELLS)
def test_x_with_wrong_ndim_names_x_and_the_expected_layout(cell):
    p = make_problem(cell, 2, 3, 4, 5)
    expected = re.escape("x: expected a 3-D array (batch, timesteps, features), got shape (2, 3)")
    with pytest.raises(ValueError, match=expected):
        call(cell, p, x=p["x"][:, :, 0])


@pytest.mark.parametrize("cell", CELLS)
def test_kernel_that_does_not_match_x_names_both_shapes(cell):
    p = make_problem(cell, 2, 3, 4, 5)
    g = GATES[cell]
    bad = np.zeros((3, g * 5))
    gates = "units" if g == 1 else f"{g}*units"
    expected = re.escape(f"kernel: expected shape (features, {gates}) = (4, {g * 5}), got (3, {g * 5})")
    with pytest.raises(ValueError, match=expected):
        call(cell, p, kernel=bad)


@pytest.mark.parametrize("cell", CELLS)
def test_recurrent_kernel_that_is_not_units_by_gates_units(cell):
    p = make_problem(cell, 2, 3, 4, 5)
    with pytest.raises(ValueError, match=r"recurrent_kernel: expected shape \(units, .*\) = \(5, \d+\), got \(5, 6\)"):
        call(cell, p, recurrent_kernel=np.zeros((5, 6)))


@pytest.mark.parametrize("cell", CELLS)
def test_bias_of_the_wrong_shape(cell):
    p = make_problem(cell, 2, 3, 4, 5)
    with pytest.raises(ValueError, match=r"bias: expected"):
        call(cell, p, bias=np.zeros(7))


def test_gru_bias_must_be_two_rows_as_in_keras_reset_after():
    p = make_problem("gru", 2, 3, 4, 5)
    expected = "bias: expected a 2-D array (2, 3*units) = (2, 15), got a 1-D array of shape (15,)"
    with pytest.raises(ValueError, match=re.escape(expected)):
        call("gru", p, bias=np.zeros(15))


@pytest.mark.parametrize("cell", CELLS)
def test_initial_state_of_the_wrong_shape(cell):
    p = make_problem(cell, 2, 3, 4, 5)
    with pytest.raises(ValueError, match=re.escape("h0: expected shape (batch, units) = (2, 5), got (5, 2)")):
        call(cell, p, h0=np.zeros((5, 2)))


@pytest.mark.parametrize("dtype", [np.int64, np.int32, np.bool_, np.float16, np.complex128, object])
@pytest.mark.parametrize("cell", CELLS)
def test_x_that_is_not_float32_or_float64_is_a_type_error(cell, dtype):
    p = make_problem(cell, 2, 3, 4, 5)
    with pytest.raises(TypeError, match=r"x: expected a float32 or float64 array, got dtype"):
        call(cell, p, x=p["x"].astype(dtype))


@pytest.mark.parametrize("cell", CELLS)
def test_mixing_float32_and_float64_is_an_error_not_a_cast(cell):
    p = make_problem(cell, 2, 3, 4, 5, dtype=np.float32)
    with pytest.raises(TypeError, match=r"recurrent_kernel: dtype float64 does not match x's float32"):
        call(cell, p, recurrent_kernel=p["recurrent_kernel"].astype(np.float64))
    with pytest.raises(TypeError, match=r"kernel: dtype float64 does not match x's float32"):
        call(cell, p, kernel=p["kernel"].astype(np.float64))


@pytest.mark.parametrize("shape", [(0, 3, 4), (2, 0, 4), (2, 3, 0)], ids=["batch0", "timesteps0", "features0"])
@pytest.mark.parametrize("cell", CELLS)
def test_empty_batch_or_sequence_is_a_value_error(cell, shape):
    p = make_problem(cell, 2, 3, 4, 5)
    g = GATES[cell]
    overrides = dict(x=np.zeros(shape))
    if shape[2] == 0:
        overrides["kernel"] = np.zeros((0, g * 5))
    with pytest.raises(ValueError, match=r"x: expected at least one sequence of at least one timestep"):
        call(cell, p, **overrides)


@pytest.mark.parametrize("cell", CELLS)
def test_zero_units_is_a_value_error(cell):
    p = make_problem(cell, 2, 3, 4, 5)
    with pytest.raises(ValueError, match=r"recurrent_kernel: expected a 2-D array .* units >= 1"):
        call(cell, p, recurrent_kernel=np.zeros((0, 0)))


@pytest.mark.parametrize("cell", CELLS)
def test_non_array_arguments_are_type_errors(cell):
    p = make_problem(cell, 2, 3, 4, 5)
    with pytest.raises(TypeError, match=r"x: expected a float32 or float64 array"):
        call(cell, p, x="not an array")
    with pytest.raises(TypeError, match=r"kernel: dtype"):
        call(cell, p, kernel=None)


@pytest.mark.parametrize("cell", CELLS)
def test_lists_of_floats_are_accepted_as_float64(cell):
    p = make_problem(cell, 2, 3, 4, 5)
    fwd = call(cell, p, x=p["x"].tolist())
    np.testing.assert_array_equal(fwd.outputs, call(cell, p).outputs)


@pytest.mark.filterwarnings("ignore:invalid value encountered:RuntimeWarning")  # the reference's inf - inf
@pytest.mark.parametrize(
    "dtype, tol", [(np.float64, dict(rtol=1e-10, atol=1e-12)), (np.float32, dict(rtol=1e-4, atol=1e-5))]
)
@pytest.mark.parametrize("cell", CELLS)
def test_nan_and_inf_propagate_like_the_reference(cell, dtype, tol):
    p = make_problem(cell, 4, 6, 3, 17, dtype=dtype)
    p["x"][1, 2, 0] = np.nan
    p["x"][2, 3, 1] = np.inf
    p["x"][3, 1, 2] = -np.inf
    fwd = forward(kernels, cell, p)
    ref = forward(reference, cell, p)
    assert np.isnan(fwd.outputs[1, 2:]).all()
    assert np.isfinite(fwd.outputs[0]).all()
    np.testing.assert_allclose(fwd.outputs, ref.outputs, equal_nan=True, **tol)
    d = loss_gradients(cell, fwd, "both")
    grads = backward(kernels, cell, fwd, *d)
    ref_grads = backward(reference, cell, ref, *d)
    np.testing.assert_allclose(grads.dx[0], ref_grads.dx[0], **tol)  # an untouched sequence
    assert np.isnan(grads.dx[1, :3]).any()


@pytest.mark.parametrize("cell", CELLS)
def test_strided_fortran_and_byteswapped_inputs_give_the_contiguous_result(cell):
    p = make_problem(cell, 3, 5, 4, 6, initial_state=True)
    expected = forward(kernels, cell, p)
    wide = make_problem(cell, 6, 10, 8, 6, initial_state=True)
    wide["x"][::2, ::2, ::2] = p["x"]
    odd = dict(
        p,
        x=wide["x"][::2, ::2, ::2],
        kernel=np.asfortranarray(p["kernel"]),
        recurrent_kernel=p["recurrent_kernel"].astype(p["recurrent_kernel"].dtype.newbyteorder(">")),
        h0=p["h0"][::-1][::-1],
    )
    assert not odd["x"].flags.c_contiguous and not odd["kernel"].flags.c_contiguous
    got = forward(kernels, cell, odd)
    np.testing.assert_array_equal(got.outputs, expected.outputs)
    for name in state_names(cell):
        np.testing.assert_array_equal(getattr(got, name), getattr(expected, name))


@pytest.mark.parametrize("cell", CELLS)
def test_backward_rejects_gradients_of_the_wrong_shape_or_type(cell):
    p = make_problem(cell, 2, 3, 4, 5)
    fwd = forward(kernels, cell, p)
    with pytest.raises(ValueError, match=re.escape("d_outputs: expected shape (batch, timesteps, units) = (2, 3, 5)")):
        backward(kernels, cell, fwd, d_outputs=np.zeros((2, 3, 4)))
    with pytest.raises(ValueError, match=re.escape("d_h: expected a 2-D array (batch, units) = (2, 5), got a 1-D")):
        backward(kernels, cell, fwd, d_h=np.zeros((2,)))
    with pytest.raises(TypeError, match=r"d_h: dtype float32 does not match the forward call's float64"):
        backward(kernels, cell, fwd, d_h=np.zeros((2, 5), np.float32))


@pytest.mark.parametrize("cell", CELLS)
def test_backward_rejects_a_forward_from_elsewhere(cell):
    p = make_problem(cell, 2, 3, 4, 5)
    with pytest.raises(TypeError, match=r"fwd: expected the result of rnnkit.kernels"):
        backward(kernels, cell, forward(reference, cell, p), d_h=np.zeros((2, 5)))
    with pytest.raises(TypeError, match=r"fwd: expected the result of rnnkit.reference"):
        backward(reference, cell, forward(kernels, cell, p), d_h=np.zeros((2, 5)))
    other = "gru" if cell != "gru" else "lstm"
    with pytest.raises(TypeError, match=r"fwd: expected"):
        backward(kernels, cell, forward(kernels, other, make_problem(other, 2, 3, 4, 5)))


def test_build_info_describes_the_build():
    info = rnnkit.build_info()
    assert info["version"] == rnnkit.__version__
    assert info["float_types"] == ("float32", "float64")
    assert info["simd"] in info["simd_available"]
    assert info["threads"] == rnnkit.get_num_threads()
    assert "-O3" in info["flags"] and info["compiler"]


@pytest.mark.parametrize("cell", CELLS)
def test_token_inputs_are_checked(cell):
    p = make_problem(cell, 2, 3, 4, 5)
    table = np.random.default_rng(0).standard_normal((10, 4))
    ids = np.array([[1, 2, 3], [4, 5, 10]])
    with pytest.raises(IndexError, match=re.escape("token id 10 at position (1, 2) is outside [0, 10)")):
        forward(kernels, cell, dict(p, x=ids), embeddings=table)
    with pytest.raises(TypeError, match=r"x: expected integer token ids, got dtype float64"):
        forward(kernels, cell, dict(p, x=ids.astype(float)), embeddings=table)
    with pytest.raises(ValueError, match=r"x: with embeddings, expected token ids of shape \(batch, timesteps\)"):
        forward(kernels, cell, dict(p, x=(ids % 10)[:, :, None]), embeddings=table)
    with pytest.raises(TypeError, match=r"kernel: dtype float32 does not match embeddings's float64"):
        forward(kernels, cell, dict(p, x=ids % 10, kernel=p["kernel"].astype(np.float32)), embeddings=table)
    with pytest.raises(ValueError, match=r"kernel: expected shape \(features, .*\) = \(3, \d+\), got \(4, "):
        forward(kernels, cell, dict(p, x=ids % 10), embeddings=table[:, :3])
