"""Variable-length sequences, masks, go_backwards, Bidirectional, return_state, dropout."""

import re

import numpy as np
import pytest

from rnnkit import kernels, reference
from rnnkit.layers import GRU, LSTM, Bidirectional, Dense, Embedding, Masking, SimpleRNN
from rnnkit.models import Sequential
from rnnkit.utils import set_random_seed

from cells import (
    CELLS,
    assert_close,
    backward,
    forward,
    gradient_names,
    loss_gradients,
    make_problem,
    numerical_gradient,
    state_names,
)

LAYERS = {"simple_rnn": SimpleRNN, "lstm": LSTM, "gru": GRU}
LENGTHS = [7, 3, 0, 7, 1]  # full, short, nothing real, full, one step


def padded(x, lengths, padding):
    """Each sequence's first `length` steps placed before or after zeros."""
    out = np.zeros_like(x)
    for b, n in enumerate(lengths):
        if n:
            out[b, -n:] = x[b, :n] if padding == "pre" else 0
            out[b, :n] = x[b, :n] if padding == "post" else out[b, :n]
    return out


def real_steps(lengths, timesteps, padding):
    return [range(timesteps - n, timesteps) if padding == "pre" else range(n) for n in lengths]


# --- kernels -------------------------------------------------------------------------------------


@pytest.mark.parametrize("padding", ["pre", "post"])
@pytest.mark.parametrize("cell", CELLS)
def test_padded_batch_with_lengths_equals_each_sequence_alone(cell, padding):
    p = make_problem(cell, 5, 7, 3, 4, initial_state=True)
    x = padded(p["x"], LENGTHS, padding)
    fwd = forward(kernels, cell, dict(p, x=x), lengths=LENGTHS, padding=padding)
    d_out = np.random.default_rng(1).standard_normal(fwd.outputs.shape)
    d_h = np.random.default_rng(2).standard_normal(fwd.h.shape)
    grads = backward(kernels, cell, fwd, d_out, d_h)
    summed = {name: 0 for name in ("dkernel", "drecurrent_kernel", "dbias")}
    for b, (n, steps) in enumerate(zip(LENGTHS, real_steps(LENGTHS, 7, padding))):
        states = {k: p[k][b : b + 1] for k in ("h0", "c0") if k in p}
        if n == 0:  # no real step: the initial state comes out; outputs are zeros
            np.testing.assert_array_equal(fwd.h[b], p["h0"][b])
            np.testing.assert_array_equal(fwd.outputs[b], 0)
            np.testing.assert_allclose(grads.dh0[b], d_h[b], rtol=1e-12)
            assert not grads.dx[b].any()
            continue
        alone_p = dict(p, x=p["x"][b : b + 1, :n], **states)
        alone = forward(kernels, cell, alone_p)
        steps = list(steps)
        np.testing.assert_allclose(fwd.outputs[b, steps], alone.outputs[0], rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(fwd.h[b], alone.h[0], rtol=1e-10, atol=1e-12)
        # the padded steps' outputs: zeros before the first real step, the last output after it
        padded_steps = [t for t in range(7) if t not in steps]
        expected_pad = 0 if padding == "pre" else alone.h[0]
        np.testing.assert_allclose(fwd.outputs[b, padded_steps], np.broadcast_to(expected_pad, (len(padded_steps), 4)))
        d_alone_out = d_out[b : b + 1, steps].copy()
        if padding == "post":  # the padded outputs repeat the last output: their gradient joins it
            d_alone_out[0, -1] += d_out[b, padded_steps].sum(axis=0)
        g = backward(kernels, cell, alone, d_alone_out, d_h[b : b + 1])
        np.testing.assert_allclose(grads.dx[b, steps], g.dx[0], rtol=1e-10, atol=1e-12)
        assert not grads.dx[b, padded_steps].any()
        np.testing.assert_allclose(grads.dh0[b], g.dh0[0], rtol=1e-10, atol=1e-12)
        for name in summed:
            summed[name] = summed[name] + getattr(g, name)
    for name, total in summed.items():
        np.testing.assert_allclose(getattr(grads, name), total, rtol=1e-10, atol=1e-12, err_msg=name)


@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["f64", "f32"])
@pytest.mark.parametrize("padding", ["pre", "post"])
@pytest.mark.parametrize("cell", CELLS)
def test_lengths_and_recurrent_mask_match_the_reference(cell, padding, dtype):
    p = make_problem(cell, 6, 9, 4, 7, dtype=dtype, initial_state=True)
    lengths = [9, 0, 4, 9, 1, 6]
    keep = (np.random.default_rng(5).random((6, 7)) >= 0.3) / 0.7
    for recurrent_mask in (None, keep.astype(dtype)):
        options = dict(lengths=lengths, padding=padding, recurrent_mask=recurrent_mask)
        fwd = forward(kernels, cell, p, **options)
        p64 = {k: v.astype(np.float64) for k, v in p.items()}
        ref = forward(reference, cell, p64, **dict(options, recurrent_mask=None if recurrent_mask is None else keep))
        rtol = 1e-10 if dtype == np.float64 else 1e-4
        assert_close(fwd.outputs, ref.outputs, rtol, "outputs")
        for name in state_names(cell):
            assert_close(getattr(fwd, name), getattr(ref, name), rtol, name)
        d = loss_gradients(cell, fwd, "both")
        grads = backward(kernels, cell, fwd, *d)
        ref_grads = backward(reference, cell, ref, *[None if a is None else a.astype(np.float64) for a in d])
        for name in gradient_names(cell):
            assert_close(getattr(grads, name), getattr(ref_grads, name), rtol, name)


@pytest.mark.parametrize("cell", CELLS)
def test_recurrent_mask_with_token_inputs_matches_the_reference(cell):
    p = make_problem(cell, 4, 6, 3, 5, initial_state=True)
    table = np.random.default_rng(3).standard_normal((12, 3))
    ids = np.random.default_rng(4).integers(0, 12, (4, 6))
    keep = (np.random.default_rng(6).random((4, 5)) >= 0.5) * 2.0
    options = dict(embeddings=table, recurrent_mask=keep, lengths=[6, 2, 0, 5], padding="post")
    fwd = forward(kernels, cell, dict(p, x=ids), **options)
    ref = forward(reference, cell, dict(p, x=ids), **options)
    np.testing.assert_allclose(fwd.outputs, ref.outputs, rtol=1e-10, atol=1e-12)
    d = loss_gradients(cell, fwd, "both")
    grads, ref_grads = backward(kernels, cell, fwd, *d), backward(reference, cell, ref, *d)
    for name in gradient_names(cell)[1:] + ["dembeddings"]:
        np.testing.assert_allclose(getattr(grads, name), getattr(ref_grads, name), rtol=1e-10, atol=1e-12,
                                   err_msg=name)


@pytest.mark.parametrize("cell", CELLS)
def test_reference_with_recurrent_mask_matches_finite_differences(cell):
    p = make_problem(cell, 2, 4, 2, 3, initial_state=True, seed=3)
    keep = np.array([[2.0, 0.0, 2.0], [0.0, 2.0, 2.0]])
    options = dict(recurrent_mask=keep, lengths=[4, 2], padding="pre")
    fwd = forward(reference, cell, p, **options)
    rng = np.random.default_rng(8)
    w_out, w_h = rng.standard_normal(fwd.outputs.shape), rng.standard_normal(fwd.h.shape)
    grads = backward(reference, cell, fwd, w_out, w_h)

    def loss():
        f = forward(reference, cell, p, **options)
        return np.sum(f.outputs * w_out) + np.sum(f.h * w_h)

    inputs = {"dx": "x", "dkernel": "kernel", "drecurrent_kernel": "recurrent_kernel", "dbias": "bias", "dh0": "h0"}
    for name, key in inputs.items():
        np.testing.assert_allclose(getattr(grads, name), numerical_gradient(loss, p[key]), rtol=1e-6, atol=1e-8,
                                   err_msg=name)


@pytest.mark.parametrize("cell", CELLS)
def test_bad_lengths_and_masks_are_clear_errors(cell):
    p = make_problem(cell, 3, 5, 2, 4)
    with pytest.raises(ValueError, match=re.escape("lengths[1] = 6 is outside [0, timesteps=5]")):
        forward(kernels, cell, p, lengths=[5, 6, 1])
    with pytest.raises(ValueError, match=re.escape("lengths[2] = -1 is outside [0, timesteps=5]")):
        forward(kernels, cell, p, lengths=[5, 2, -1])
    with pytest.raises(ValueError, match=re.escape("lengths: expected shape (batch,) = (3,), got (2,)")):
        forward(kernels, cell, p, lengths=[5, 2])
    with pytest.raises(TypeError, match="lengths: expected an integer array, got dtype float64"):
        forward(kernels, cell, p, lengths=[5.0, 2.0, 1.0])
    with pytest.raises(ValueError, match="padding: expected 'pre' or 'post', got 'middle'"):
        forward(kernels, cell, p, lengths=[5, 2, 1], padding="middle")
    with pytest.raises(ValueError, match=re.escape("recurrent_mask: expected shape (batch, units) = (3, 4)")):
        forward(kernels, cell, p, recurrent_mask=np.ones((3, 5)))
    layer = LAYERS[cell](4, dtype="float64")
    layer.ensure_built((5, 2))
    with pytest.raises(ValueError, match=re.escape("expected a mask of shape (batch, timesteps) = (3, 5), got (3, 4)")):
        layer.forward(p["x"], mask=np.ones((3, 4), bool))


# --- layers ----------------------------------------------------------------------------------------


def masked_model(cell, padding, go_backwards=False, bidirectional=False, return_sequences=False):
    set_random_seed(2)
    layer = LAYERS[cell](4, return_sequences=return_sequences, go_backwards=go_backwards, dtype="float64")
    if bidirectional:
        layer = Bidirectional(layer, dtype="float64")
    return Sequential([Embedding(20, 3, mask_zero=True, dtype="float64"), layer])


def layer_gradients(model, x, d):
    (out,), _ = model._run_forward([x], True)
    model._run_backward([d], [False])
    return out, [g.copy() for layer in model.layers for g in layer.grads.values()]


@pytest.mark.parametrize("variant", ["plain", "go_backwards", "bidirectional"])
@pytest.mark.parametrize("padding", ["pre", "post"])
@pytest.mark.parametrize("cell", CELLS)
def test_masked_layer_equals_each_sequence_alone(cell, padding, variant):
    """Embedding(mask_zero=True) -> cell, last output: a padded batch gives each sequence's result
    and, summed, its weight gradients."""
    lengths = [6, 2, 4, 1]
    ids = np.random.default_rng(0).integers(1, 20, (4, 6))
    batch = padded(ids, lengths, padding)
    model = masked_model(cell, padding, variant == "go_backwards", variant == "bidirectional")
    model.build((None, 6))
    d = np.random.default_rng(1).standard_normal((4, model.layers[-1].compute_output_shape((6, 3))[-1]))
    out, grads = layer_gradients(model, batch, d)
    total = None
    for b, n in enumerate(lengths):
        alone, g = layer_gradients(model, ids[b : b + 1, :n], d[b : b + 1])
        np.testing.assert_allclose(out[b], alone[0], rtol=1e-10, atol=1e-12)
        total = g if total is None else [t + gi for t, gi in zip(total, g)]
    for got, want in zip(grads, total):
        np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("cell", CELLS)
def test_masked_sequences_follow_keras_rules_at_padded_steps(cell):
    model = masked_model(cell, "post", return_sequences=True)
    ids = np.array([[3, 4, 5, 0, 0], [0, 0, 7, 8, 0], [0, 0, 0, 0, 0]])
    out = model.predict(ids)
    np.testing.assert_array_equal(out[0, 3], out[0, 2])  # repeats the last output
    np.testing.assert_array_equal(out[0, 4], out[0, 2])
    np.testing.assert_array_equal(out[1, :2], 0)  # zeros before the first real step
    np.testing.assert_array_equal(out[1, 4], out[1, 3])
    np.testing.assert_array_equal(out[2], 0)
    alone = model.predict(np.array([[7, 8]]))
    np.testing.assert_allclose(out[1, 2:4], alone[0], rtol=1e-12)


def check_layer_gradients(layer, x, mask=None, seed=None, rtol=1e-6):
    """Finite differences of sum(outputs * r), redrawing the same dropout masks for every evaluation."""

    def run():
        if seed is not None:
            set_random_seed(seed)
        return layer.forward(x, training=True, mask=mask)

    out = run()
    outs = out if isinstance(out, list) else [out]
    rs = [np.random.default_rng(i).standard_normal(o.shape) for i, o in enumerate(outs)]
    dx = layer.backward(rs if isinstance(out, list) else rs[0])

    def loss():
        o = run()
        return float(sum(np.sum(a * r) for a, r in zip(o if isinstance(o, list) else [o], rs)))

    for name, w in layer.params.items():
        np.testing.assert_allclose(layer.grads[name], numerical_gradient(loss, w), rtol=rtol, atol=1e-8,
                                   err_msg=name)
    np.testing.assert_allclose(dx, numerical_gradient(loss, x), rtol=rtol, atol=1e-8, err_msg="dx")


def holes_mask():
    return np.array([[1, 1, 0, 1, 1], [0, 0, 1, 1, 1], [1, 0, 1, 0, 0]], bool)


@pytest.mark.parametrize("options", [
    dict(go_backwards=True), dict(return_sequences=True), dict(return_state=True),
    dict(return_sequences=True, go_backwards=True, zero_output_for_mask=True),
    dict(dropout=0.4), dict(recurrent_dropout=0.4), dict(dropout=0.3, recurrent_dropout=0.3, return_sequences=True),
], ids=lambda o: "+".join(o))
@pytest.mark.parametrize("cell", CELLS)
def test_recurrent_options_with_masks_match_finite_differences(cell, options):
    set_random_seed(1)
    layer = LAYERS[cell](3, dtype="float64", **options)
    x = np.random.default_rng(2).standard_normal((3, 5, 2))
    layer.ensure_built(x.shape[1:])
    check_layer_gradients(layer, x, mask=holes_mask(), seed=11)


@pytest.mark.parametrize("merge_mode", ["concat", "sum", "mul", "ave"])
@pytest.mark.parametrize("cell", CELLS)
def test_bidirectional_matches_finite_differences(cell, merge_mode):
    set_random_seed(1)
    layer = Bidirectional(LAYERS[cell](3, return_sequences=True, dtype="float64"), merge_mode=merge_mode)
    x = np.random.default_rng(2).standard_normal((3, 5, 2))
    layer.ensure_built(x.shape[1:])
    check_layer_gradients(layer, x, mask=holes_mask())


def test_bidirectional_weights_return_state_and_summary():
    layer = Bidirectional(LSTM(4, return_state=True))
    layer.ensure_built((6, 3))
    assert [w.shape for w in layer.get_weights()] == [(3, 16), (4, 16), (16,)] * 2
    assert layer.count_params() == 2 * (3 * 16 + 4 * 16 + 16)
    out = layer.forward(np.random.default_rng(0).standard_normal((2, 6, 3)).astype(np.float32))
    assert [o.shape for o in out] == [(2, 8), (2, 4), (2, 4), (2, 4), (2, 4)]  # [merged, h_f, c_f, h_b, c_b]
    assert layer.forward_layer.name.startswith("forward_") and layer.backward_layer.go_backwards


def test_lstm_return_state_gives_output_h_and_c():
    layer = LSTM(4, return_state=True, return_sequences=True)
    layer.ensure_built((5, 3))
    out, h, c = layer.forward(np.random.default_rng(0).standard_normal((2, 5, 3)).astype(np.float32))
    assert out.shape == (2, 5, 4) and h.shape == c.shape == (2, 4)
    np.testing.assert_array_equal(out[:, -1], h)


def test_masking_layer_masks_the_steps_whose_features_equal_the_mask_value():
    set_random_seed(0)
    x = np.random.default_rng(0).standard_normal((3, 5, 2))
    x[0, 3:] = -1.0
    x[1, :2] = -1.0
    model = Sequential([Masking(-1.0, input_shape=(5, 2), dtype="float64"), GRU(3, dtype="float64")])
    short = Sequential([Masking(-1.0, input_shape=(5, 2), dtype="float64"), GRU(3, dtype="float64")])
    short.set_weights(model.get_weights())
    out = model.predict(x)
    np.testing.assert_allclose(out[0], short.predict(x[:1, :3])[0], rtol=1e-12)
    np.testing.assert_allclose(out[1], short.predict(x[1:2, 2:])[0], rtol=1e-12)
    # the mask is a constant of the input (as in Keras): the gradient passes at real steps only
    layer = Masking(-1.0, dtype="float64")
    np.testing.assert_array_equal(layer.forward(x)[0, 3:], 0)
    d = np.random.default_rng(3).standard_normal(x.shape)
    np.testing.assert_array_equal(layer.backward(d), d * layer.compute_mask(x, None)[..., None])


def test_dropout_masks_are_fixed_over_timesteps_and_apply_in_training_only():
    """The layer equals the reference fed x * m and recurrent mask r, both drawn once per batch."""
    set_random_seed(0)
    layer = LSTM(5, dropout=0.4, recurrent_dropout=0.3, return_sequences=True, dtype="float64")
    x = np.random.default_rng(1).standard_normal((4, 6, 3))
    layer.ensure_built(x.shape[1:])
    set_random_seed(9)
    trained = layer.forward(x, training=True)
    rng = np.random.default_rng(9)
    m = (rng.random((4, 3)) >= 0.4) / 0.6
    r = (rng.random((4, 5)) >= 0.3) / 0.7
    ref = reference.lstm_forward(x * m[:, None, :], *layer.get_weights(), recurrent_mask=r)
    np.testing.assert_allclose(trained, ref.outputs, rtol=1e-10)
    plain = reference.lstm_forward(x, *layer.get_weights())
    np.testing.assert_allclose(layer.forward(x, training=False), plain.outputs, rtol=1e-10)
    assert not np.allclose(trained, plain.outputs)


def test_masked_stacked_model_trains_and_ignores_leading_padding():
    set_random_seed(3)
    model = Sequential([Embedding(30, 8, mask_zero=True), LSTM(8, return_sequences=True), GRU(4),
                        Dense(1, activation="sigmoid")])
    model.compile(optimizer="adam", loss="binary_crossentropy", metrics=["acc"])
    x = np.random.default_rng(0).integers(1, 30, (64, 12))
    x[::2, :5] = 0
    y = (x[:, -1] % 2).astype(float)
    history = model.fit(x, y, epochs=3, batch_size=16, verbose=0)
    assert np.isfinite(history.history["loss"]).all()
    # with the mask, the leading padding cannot change the result
    longer = np.concatenate([np.zeros((64, 4), int), x], axis=1)
    np.testing.assert_allclose(model.predict(longer), model.predict(x), rtol=1e-5, atol=1e-6)
