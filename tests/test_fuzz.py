"""Property-based fuzzing of the native boundary: every call of rnnkit.kernels and of the layers
either returns what the NumPy reference returns or raises ValueError/TypeError/IndexError/MemoryError
with a message that names the argument at fault. No crash, no hang, no silently wrong result.

CI runs a bounded number of examples per test, derandomized so that a run is repeatable;
RNNKIT_FUZZ_EXAMPLES=5000 runs more, with fresh random examples each time."""

from __future__ import annotations

import os
import re

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from rnnkit import kernels, reference
from rnnkit.layers import GRU, LSTM, Dense, Embedding, SimpleRNN
from rnnkit.models import Sequential

from cells import CELLS, GATES, assert_close

EXTRA_EXAMPLES = os.environ.get("RNNKIT_FUZZ_EXAMPLES")
FUZZ = settings(
    max_examples=int(EXTRA_EXAMPLES or 100),
    derandomize=EXTRA_EXAMPLES is None,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
ALLOWED_ERRORS = (ValueError, TypeError, IndexError, MemoryError)
TOLERANCE = {np.float32: 2e-4, np.float64: 1e-10}
WRONG_DTYPES = (np.float16, np.int32, np.int64, np.bool_, object, np.complex128)

pytestmark = pytest.mark.filterwarnings("ignore::RuntimeWarning")  # the reference's arithmetic on inf and NaN


def expect_error(call, *names):
    """call() must raise an allowed error whose message names one of `names`."""
    with pytest.raises(ALLOWED_ERRORS) as info:
        call()
    message = str(info.value)
    assert any(re.search(rf"\b{re.escape(n)}\b", message) for n in names), f"{message!r} names none of {names}"


def with_layout(a, layout):
    """The same values as a, stored differently: a view the kernel must not misread."""
    if layout == "transposed" and a.ndim >= 2:
        return np.ascontiguousarray(np.swapaxes(a, 0, -1)).swapaxes(0, -1)
    if layout == "sliced":
        wide = np.repeat(a[..., None], 2, axis=-1)  # every other element of a bigger array
        return wide[..., 0]
    if layout == "reversed" and a.ndim >= 1:
        return np.flip(np.flip(a, 0).copy(), 0)  # negative stride on the first axis
    return a


def retyped(a, dtype):
    if dtype is object:
        return a.astype(object)
    if dtype is np.complex128:
        return a.astype(np.complex128)
    return a.astype(dtype)


@st.composite
def kernel_calls(draw):
    """One forward call: its arguments, and the argument deliberately made wrong (None if none is; a
    tuple when the error may name either of two)."""
    cell = draw(st.sampled_from(CELLS))
    dtype = draw(st.sampled_from([np.float32, np.float64]))
    batch, timesteps, features, units = (draw(st.integers(1, 4)) for _ in range(4))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    g = GATES[cell]
    args = {
        "x": rng.standard_normal((batch, timesteps, features)),
        "kernel": rng.standard_normal((features, g * units)) / np.sqrt(features),
        "recurrent_kernel": rng.standard_normal((units, g * units)) / np.sqrt(units),
        "bias": rng.standard_normal((2, 3 * units) if cell == "gru" else (g * units,)) * 0.1,
    }
    if draw(st.booleans()):
        args["h0"] = rng.standard_normal((batch, units))
        if cell == "lstm" and draw(st.booleans()):
            args["c0"] = rng.standard_normal((batch, units))
    args = {k: v.astype(dtype) for k, v in args.items()}
    if draw(st.booleans()):
        args["lengths"] = rng.integers(0, timesteps + 1, batch)
        args["padding"] = draw(st.sampled_from(["pre", "post"]))
    if draw(st.booleans()):  # NaN and inf in the input: they propagate, nothing more
        flat = args["x"].reshape(-1)
        flat[draw(st.integers(0, flat.size - 1))] = draw(st.sampled_from([np.nan, np.inf, -np.inf]))
    for name in list(args):
        if isinstance(args[name], np.ndarray):
            args[name] = with_layout(args[name], draw(st.sampled_from(["plain", "transposed", "sliced", "reversed"])))

    fault = draw(st.sampled_from([None, "dtype", "shape", "empty", "missing", "not_an_array", "lengths", "padding"]))
    culprit = None
    if fault == "dtype":
        culprit = draw(st.sampled_from([n for n in args if n not in ("lengths", "padding")]))
        wrong = draw(st.sampled_from(WRONG_DTYPES + ((np.float64 if dtype == np.float32 else np.float32),)))
        args[culprit] = retyped(args[culprit], wrong)
    elif fault == "shape":
        culprit = draw(st.sampled_from([n for n in args if n != "padding"]))
        a = args[culprit]
        axis = -1 if culprit == "x" else 0  # one feature, or one row, too many
        if draw(st.booleans()):
            args[culprit] = a[..., None]
        else:
            args[culprit] = np.concatenate([a, np.take(a, [0], axis)], axis)
            culprit = ("x", "kernel") if culprit == "x" else culprit  # either side of the mismatch
    elif fault == "empty":
        axis = draw(st.sampled_from([0, 1, 2, "units"]))
        if axis == "units":
            culprit = "recurrent_kernel"
            args["recurrent_kernel"] = args["recurrent_kernel"][:0, :0]
        else:
            culprit = "x"
            args["x"] = np.take(args["x"], [], axis=axis)
    elif fault == "missing":
        culprit = draw(st.sampled_from(["x", "kernel", "recurrent_kernel", "bias"]))
        del args[culprit]
    elif fault == "not_an_array":
        culprit = draw(st.sampled_from(["x", "kernel", "recurrent_kernel", "bias"]))
        args[culprit] = draw(st.sampled_from(["weights", {"a": 1}, object()]))
    elif fault == "lengths":
        culprit = "lengths"
        args["lengths"] = draw(st.sampled_from([np.array([timesteps + 1] * batch), np.array([-1] * batch),
                                                np.full(batch, 1.5), np.zeros(batch + 1, np.int64)]))
    elif fault == "padding":
        culprit = "padding"
        args["padding"] = draw(st.sampled_from(["middle", "PRE", ""]))
    return cell, args, culprit


def call_forward(module, cell, args):
    return getattr(module, f"{cell}_forward")(**args)


def contiguous_copy(args):
    return {k: np.ascontiguousarray(v) if isinstance(v, np.ndarray) else v for k, v in args.items()}


def backward_of(module, cell, fwd, d):
    fn = getattr(module, f"{cell}_backward")
    return fn(fwd, d["d_outputs"], d["d_h"], d["d_c"]) if cell == "lstm" else fn(fwd, d["d_outputs"], d["d_h"])


@FUZZ
@given(kernel_calls(), st.data())
def test_kernel_calls_match_the_reference_or_raise_an_error_naming_the_argument(call, data):
    cell, args, culprit = call
    if culprit is not None:
        expect_error(lambda: call_forward(kernels, cell, args), *np.atleast_1d(culprit))
        return
    fwd = call_forward(kernels, cell, args)
    ref = call_forward(reference, cell, contiguous_copy(args))
    dtype = args["x"].dtype.type
    finite = bool(np.isfinite(args["x"]).all())
    for name in ["outputs", "h"] + (["c"] if cell == "lstm" else []):
        if finite:
            assert_close(getattr(fwd, name), getattr(ref, name), TOLERANCE[dtype], name)
        else:  # NaN where the reference has NaN; elsewhere the same numbers
            np.testing.assert_array_equal(np.isnan(getattr(fwd, name)), np.isnan(getattr(ref, name)))

    # the backward, from gradients that are sometimes wrong themselves
    rng = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1)))
    d = {"d_outputs": rng.standard_normal(fwd.outputs.shape).astype(dtype),
         "d_h": rng.standard_normal(fwd.h.shape).astype(dtype),
         "d_c": rng.standard_normal(fwd.h.shape).astype(dtype) if cell == "lstm" else None}
    for name in list(d):
        if d[name] is not None and data.draw(st.booleans()):
            d[name] = None
    bad = data.draw(st.sampled_from([None] + [n for n in d if d[n] is not None]))
    if bad is not None:
        d[bad] = data.draw(st.sampled_from([d[bad][..., None], d[bad].astype(np.int64), d[bad].astype(np.complex64),
                                            d[bad].astype(np.float64 if dtype == np.float32 else np.float32)]))
        expect_error(lambda: backward_of(kernels, cell, fwd, d), bad)
        return
    d = {k: None if v is None else with_layout(v, data.draw(st.sampled_from(["plain", "transposed", "reversed"])))
         for k, v in d.items()}
    grads = backward_of(kernels, cell, fwd, d)
    if not finite:
        return  # NaN spreads through the weight gradients; the forward's NaN pattern was checked above
    ref_grads = backward_of(reference, cell, ref, contiguous_copy(d))
    for name in ["dx", "dkernel", "drecurrent_kernel", "dbias", "dh0"] + (["dc0"] if cell == "lstm" else []):
        assert_close(getattr(grads, name), getattr(ref_grads, name), TOLERANCE[dtype] * 10, name)


@st.composite
def token_inputs(draw):
    """Token ids in every integer type and layout, some out of range, some not integers at all."""
    batch, timesteps = draw(st.integers(0, 3)), draw(st.integers(0, 5))
    vocabulary = draw(st.integers(1, 12))
    dtype = draw(st.sampled_from([np.int8, np.uint8, np.int16, np.uint16, np.int32, np.uint32, np.int64, np.uint64,
                                  np.bool_, np.float32, np.float64, object, np.complex64]))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    ids = rng.integers(0, vocabulary, (batch, timesteps))
    if batch * timesteps and draw(st.booleans()):
        ids[draw(st.integers(0, batch - 1)), draw(st.integers(0, timesteps - 1))] = draw(
            st.sampled_from([vocabulary, vocabulary + 100, -1, 127, 255]))
    ids = with_layout(retyped(ids, dtype), draw(st.sampled_from(["plain", "transposed", "sliced", "reversed"])))
    if draw(st.integers(0, 9)) == 0:
        ids = ids[..., None]  # one dimension too many
    return ids, vocabulary


@FUZZ
@given(token_inputs(), st.sampled_from(CELLS))
def test_token_ids_into_the_kernels_match_the_reference_or_raise(inputs, cell):
    ids, vocabulary = inputs
    rng = np.random.default_rng(0)
    g, features, units = GATES[cell], 3, 2
    weights = dict(embeddings=rng.standard_normal((vocabulary, features)),
                   kernel=rng.standard_normal((features, g * units)),
                   recurrent_kernel=rng.standard_normal((units, g * units)),
                   bias=np.zeros((2, 3 * units) if cell == "gru" else g * units))
    valid = (ids.dtype.kind in "iu" and ids.ndim == 2 and ids.size > 0
             and (np.asarray(ids) >= 0).all() and (np.asarray(ids) < vocabulary).all())
    forward = getattr(kernels, f"{cell}_forward")
    if not valid:
        expect_error(lambda: forward(ids, **weights), "x", "x (token ids) with embeddings")
        return
    fwd = forward(ids, **weights)
    ref = getattr(reference, f"{cell}_forward")(np.ascontiguousarray(ids).astype(np.int64), **weights)
    assert_close(fwd.outputs, ref.outputs, 1e-10, "outputs")


LAYERS = {"simple_rnn": SimpleRNN, "lstm": LSTM, "gru": GRU}


@FUZZ
@given(st.sampled_from(CELLS), st.integers(1, 3), st.integers(1, 4), st.integers(1, 3),
       st.sampled_from(["plain", "transposed", "sliced", "reversed"]),
       st.sampled_from([None, "dtype", "ndim", "mask", "d_outputs"]), st.booleans(), st.integers(0, 2**32 - 1))
def test_layer_forward_and_backward_match_the_reference_or_raise(cell, batch, timesteps, features, layout, fault,
                                                                   return_sequences, seed):
    rng = np.random.default_rng(seed)
    layer = LAYERS[cell](3, return_sequences=return_sequences, dtype="float64")
    layer.ensure_built((timesteps, features))
    x = with_layout(rng.standard_normal((batch, timesteps, features)), layout)
    mask = rng.random((batch, timesteps)) < 0.7
    if fault == "dtype":
        expect_error(lambda: layer.forward(x.astype(np.int32), training=True), layer.name)
        return
    if fault == "ndim":
        expect_error(lambda: layer.forward(x[0], training=True), layer.name)
        return
    if fault == "mask":
        expect_error(lambda: layer.forward(x, training=True, mask=mask[:, :-1] if timesteps > 1 else mask[None]),
                     "mask")
        return
    out = layer.forward(x, training=True, mask=mask)
    lengths_free = np.ascontiguousarray(x) * mask[..., None]
    p = layer.params
    ref_fwd = getattr(reference, f"{cell}_forward")
    # the reference on each sequence's real steps alone, which is what a mask means
    for i in range(batch):
        steps = np.ascontiguousarray(lengths_free[i : i + 1, mask[i]])
        if steps.shape[1] == 0:
            continue
        ref = ref_fwd(steps, p["kernel"], p["recurrent_kernel"], p["bias"])
        assert_close(out[i, -1] if return_sequences else out[i], ref.h[0], 1e-10, "last output")
    d = rng.standard_normal(out.shape)
    if fault == "d_outputs":
        expect_error(lambda: layer.backward(d[..., None]), "d_outputs", "d_h")
        return
    dx = layer.backward(d)
    assert dx.shape == x.shape
    assert (dx[~mask] == 0).all()  # masked steps get no gradient


@FUZZ
@given(st.sampled_from(CELLS), token_inputs(), st.sampled_from(["ok", "length", "values", "float"]))
def test_model_fit_and_predict_on_fuzzed_ids_work_or_raise_naming_x_or_y(cell, inputs, labels):
    ids, vocabulary = inputs
    model = Sequential([Embedding(vocabulary, 3), LAYERS[cell](2), Dense(1, activation="sigmoid")])
    model.compile(optimizer="rmsprop", loss="binary_crossentropy", metrics=["acc"])
    n = ids.shape[0] if ids.ndim else 0
    y = {"ok": np.arange(n) % 2, "length": np.zeros(n + 1), "values": np.full(n, 3), "float": np.full(n, 0.5)}[labels]
    valid_ids = (ids.dtype.kind in "iu" and ids.ndim == 2 and ids.size > 0
                 and (np.asarray(ids) >= 0).all() and (np.asarray(ids) < vocabulary).all())
    assume(ids.ndim == 2)
    if not valid_ids:
        expect_error(lambda: model.predict(ids, verbose=0), "x")
        expect_error(lambda: model.fit(ids, y, epochs=1, verbose=0), "x")
        return
    predictions = model.predict(ids, verbose=0)
    assert predictions.shape == (n, 1) and np.isfinite(predictions).all()
    if labels != "ok":
        expect_error(lambda: model.fit(ids, y, epochs=1, verbose=0), "x", "labels")
        return
    history = model.fit(ids, y, epochs=1, batch_size=2, verbose=0)
    assert np.isfinite(history.history["loss"]).all()
