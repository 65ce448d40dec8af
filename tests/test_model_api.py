"""The Keras-style API: the tutorial's code, summary, weights in Keras' layout, optimizers, losses."""

import io
import re

import numpy as np
import pytest

from rnnkit import kernels
from rnnkit.layers import GRU, LSTM, Dense, Embedding, Input, SimpleRNN
from rnnkit.losses import BinaryCrossentropy, MeanSquaredError, SparseCategoricalCrossentropy
from rnnkit.models import Sequential
from rnnkit.optimizers import SGD, Adam, RMSprop
from rnnkit.utils import set_random_seed


def summary_text(model):
    lines = []
    model.summary(print_fn=lines.append)
    return "\n".join(lines)


def test_tutorial_stacked_simple_rnn_summary_counts_328320_params():
    model = Sequential()
    model.add(Embedding(10000, 32))
    model.add(SimpleRNN(32, return_sequences=True))
    model.add(SimpleRNN(32, return_sequences=True))
    model.add(SimpleRNN(32, return_sequences=True))
    model.add(SimpleRNN(32))
    text = summary_text(model)
    assert "Total params: 328,320" in text
    assert "Trainable params: 328,320" in text
    assert "(None, None, 32)" in text and "(None, 32)" in text
    assert [layer.count_params() for layer in model.layers] == [320000, 2080, 2080, 2080, 2080]


def test_tutorial_lstm_snippet_runs_and_reports_keras_history_keys():
    rng = np.random.default_rng(0)
    x_train = rng.integers(0, 10000, (300, 40))
    y_train = rng.integers(0, 2, 300)
    model = Sequential()
    model.add(Embedding(10000, 32))
    model.add(LSTM(32))
    model.add(Dense(1, activation="sigmoid"))
    model.compile(optimizer="rmsprop", loss="binary_crossentropy", metrics=["acc"])
    history = model.fit(x_train, y_train, epochs=2, batch_size=128, validation_split=0.2, verbose=0)
    assert set(history.history) == {"loss", "acc", "val_loss", "val_acc"}
    assert all(len(v) == 2 for v in history.history.values())
    assert 0.0 <= history.history["val_acc"][-1] <= 1.0


def test_accuracy_metric_name_follows_what_compile_was_given():
    set_random_seed(0)
    model = Sequential([Embedding(10, 4), GRU(3), Dense(1, activation="sigmoid")])
    model.compile(optimizer="adam", loss="binary_crossentropy", metrics=["accuracy"])
    x = np.random.default_rng(1).integers(0, 10, (20, 5))
    h = model.fit(x, np.arange(20) % 2, epochs=1, validation_data=(x, np.arange(20) % 2), verbose=0)
    assert set(h.history) == {"loss", "accuracy", "val_loss", "val_accuracy"}


def test_input_and_input_shape_are_optional_as_in_keras():
    a = Sequential([Input(shape=(7,)), Embedding(50, 4), SimpleRNN(3)])
    b = Sequential([Embedding(50, 4, input_length=7), SimpleRNN(3)])
    c = Sequential([LSTM(5, input_shape=(7, 4)), Dense(2)])
    d = Sequential([LSTM(5), Dense(2)])
    assert a.built and b.built and c.built and not d.built
    assert "(None, 7, 4)" in summary_text(a) and "(None, 7, 4)" in summary_text(b)
    assert "0 (unbuilt)" in summary_text(d)
    d.predict(np.zeros((2, 7, 4), np.float32))
    assert d.built and d.count_params() == c.count_params()


def test_weights_have_keras_shapes_and_order():
    model = Sequential([Embedding(100, 8), SimpleRNN(5, return_sequences=True), LSTM(6, return_sequences=True),
                        GRU(7), Dense(1, activation="sigmoid")])
    shapes = [w.shape for w in model.get_weights()]
    assert shapes == [(100, 8), (8, 5), (5, 5), (5,), (5, 24), (6, 24), (24,), (6, 21), (7, 21), (2, 21), (7, 1), (1,)]
    lstm = model.layers[2]
    np.testing.assert_array_equal(lstm.get_weights()[2][6:12], 1.0)  # unit_forget_bias
    np.testing.assert_array_equal(np.delete(lstm.get_weights()[2], np.s_[6:12]), 0.0)


def test_keras_default_initializers():
    set_random_seed(3)
    model = Sequential([Embedding(1000, 16), LSTM(32), Dense(1)])
    emb, kernel, recurrent, _, dense_kernel, dense_bias = model.get_weights()
    assert np.abs(emb).max() <= 0.05 and emb.std() > 0.02  # uniform(-0.05, 0.05)
    limit = np.sqrt(6 / (16 + 128))  # glorot_uniform over (features, 4*units)
    assert np.abs(kernel).max() <= limit and np.abs(kernel).max() > 0.9 * limit
    np.testing.assert_allclose(recurrent @ recurrent.T, np.eye(32), atol=1e-5)  # orthogonal rows
    assert not dense_bias.any()


def test_set_weights_then_predict_matches_the_kernels_with_the_same_arrays():
    """A model given Keras-layout weights computes exactly the documented formulas."""
    set_random_seed(5)
    model = Sequential([Embedding(30, 6), LSTM(4), Dense(1, activation="sigmoid")])
    weights = [np.random.default_rng(i).standard_normal(w.shape).astype(np.float32) * 0.3
               for i, w in enumerate(model.get_weights())]
    model.set_weights(weights)
    ids = np.random.default_rng(9).integers(0, 30, (3, 8))
    emb, k, rk, b, dk, db = weights
    h = kernels.lstm_forward(emb[ids], k, rk, b).h
    expected = 1 / (1 + np.exp(-(h @ dk + db)))
    np.testing.assert_allclose(model.predict(ids), expected, rtol=1e-6)


def test_set_weights_rejects_wrong_count_and_shape():
    model = Sequential([Embedding(30, 6), LSTM(4)])
    with pytest.raises(ValueError, match="expects 4 weight arrays, got 3"):
        model.set_weights(model.get_weights()[:3])
    bad = model.get_weights()
    bad[1] = np.zeros((6, 4))
    with pytest.raises(ValueError, match=r"weight 'kernel' has shape \(6, 16\), got \(6, 4\)"):
        model.set_weights(bad)


def one_update(optimizer, w0, g):
    w = np.array(w0, np.float64)
    optimizer.apply([w], [np.array(g, np.float64)])
    return w


def test_rmsprop_keras_defaults_and_update_rule():
    opt = RMSprop()
    assert (opt.learning_rate, opt.rho, opt.epsilon) == (0.001, 0.9, 1e-7)
    w0, g = np.array([1.0, -2.0]), np.array([0.5, 0.1])
    v = 0.1 * g**2
    np.testing.assert_allclose(one_update(opt, w0, g), w0 - 0.001 * g / np.sqrt(v + 1e-7), rtol=1e-12)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_rmsprop_fused_update_equals_the_numpy_formula_over_steps(dtype):
    """The plain RMSprop step runs fused in C++: the same weights and velocity as the formula in NumPy."""
    rng = np.random.default_rng(0)
    w_fused = rng.standard_normal((37, 5)).astype(dtype)
    w, v = w_fused.copy(), np.zeros_like(w_fused)
    optimizer = RMSprop(0.01)
    rtol = 1e-6 if dtype == np.float32 else 1e-14
    for step in range(5):
        g = rng.standard_normal(w.shape).astype(dtype)
        optimizer.apply([w_fused], [g])
        v = v * dtype(0.9) + dtype(1 - 0.9) * g * g
        w -= dtype(0.01) * g / np.sqrt(v + dtype(1e-7))
        np.testing.assert_allclose(w_fused, w, rtol=rtol, atol=0, err_msg=f"step {step}")
        np.testing.assert_allclose(optimizer.state[0]["velocity"], v, rtol=rtol, err_msg=f"step {step}")


def test_rmsprop_fused_update_refuses_arrays_it_cannot_update_in_place():
    from rnnkit import kernels

    w, g, v = np.ones((4, 3)), np.ones((4, 3)), np.zeros((4, 3))
    with pytest.raises(ValueError, match="weight: expected a writeable, C-contiguous array"):
        kernels.rmsprop_update(np.ones((3, 4)).T, g, v, 0.1, 0.9, 1e-7)
    with pytest.raises(TypeError, match="velocity: dtype float32 does not match weight's float64"):
        kernels.rmsprop_update(w, g, v.astype(np.float32), 0.1, 0.9, 1e-7)
    with pytest.raises(ValueError, match=re.escape("grad: expected shape (weight's shape) = (4, 3), got (3, 4)")):
        kernels.rmsprop_update(w, np.ones((3, 4)), v, 0.1, 0.9, 1e-7)
    with pytest.raises(ValueError, match="expected three separate arrays"):
        kernels.rmsprop_update(w, g, w, 0.1, 0.9, 1e-7)
    # a strided weight still trains: the optimizer falls back to the NumPy expressions
    strided = np.ones((3, 4)).T
    RMSprop(0.1).apply([strided], [np.ones((4, 3))])
    np.testing.assert_allclose(strided, 1 - 0.1 / np.sqrt(0.1 + 1e-7), rtol=1e-12)


def test_adam_update_rule_with_bias_correction():
    opt = Adam(learning_rate=0.01)
    w0, g = np.array([1.0, -2.0]), np.array([0.5, 0.1])
    w1 = one_update(opt, w0, g)
    m, v = 0.1 * g, 0.001 * g**2
    alpha = 0.01 * np.sqrt(1 - 0.999) / (1 - 0.9)
    np.testing.assert_allclose(w1, w0 - alpha * m / (np.sqrt(v) + 1e-7), rtol=1e-12)


def test_sgd_with_momentum_update_rule():
    opt = SGD(learning_rate=0.1, momentum=0.9)
    w = np.array([1.0])
    opt.apply([w], [np.array([1.0])])
    opt.apply([w], [np.array([1.0])])
    # m1 = -0.1, w1 = 0.9; m2 = 0.9 * -0.1 - 0.1 = -0.19, w2 = 0.71
    np.testing.assert_allclose(w, [0.71], rtol=1e-12)


def test_optimizers_by_name_and_instance():
    set_random_seed(0)
    for opt in ("rmsprop", "adam", "sgd", RMSprop(0.01), Adam(), SGD(momentum=0.5)):
        model = Sequential([Embedding(10, 3), SimpleRNN(2), Dense(1, activation="sigmoid")])
        model.compile(optimizer=opt, loss="binary_crossentropy")
        before = model.get_weights()
        model.fit(np.ones((4, 3), int), np.array([0, 1, 0, 1]), verbose=0)
        assert any(not np.array_equal(a, b) for a, b in zip(before, model.get_weights())), opt


def test_binary_crossentropy_from_logits_equals_the_probability_form_and_stays_finite():
    bce = BinaryCrossentropy()
    z = np.array([[-3.0], [0.2], [4.0]])
    y = np.array([[0.0], [1.0], [1.0]])
    p = 1 / (1 + np.exp(-z))
    v1, d1 = bce.value_and_gradient(y, p, logits=z)
    v2, d2 = bce.value_and_gradient(y, p)
    np.testing.assert_allclose(v1, v2, rtol=1e-9)
    np.testing.assert_allclose(d1, d2 * p * (1 - p), rtol=1e-7)
    big, grad = bce.value_and_gradient(np.array([[0.0]]), np.array([[1.0]]), logits=np.array([[1000.0]]))
    assert big == pytest.approx(1000.0) and np.isfinite(grad).all()


def test_sparse_categorical_crossentropy_and_mse():
    scce = SparseCategoricalCrossentropy()
    z = np.array([[1.0, 2.0, 0.5], [0.0, -1.0, 3.0]])
    y = np.array([1, 2])
    p = np.exp(z) / np.exp(z).sum(axis=1, keepdims=True)
    value, d = scce.value_and_gradient(y, p, logits=z)
    assert value == pytest.approx(-np.mean(np.log(p[[0, 1], y])))
    onehot = np.eye(3)[y]
    np.testing.assert_allclose(d, (p - onehot) / 2, rtol=1e-12)
    value, d = MeanSquaredError().value_and_gradient(np.array([[1.0], [2.0]]), np.array([[1.5], [1.0]]))
    assert value == pytest.approx((0.25 + 1.0) / 2)
    np.testing.assert_allclose(d, [[0.5], [-1.0]])


def test_softmax_classifier_trains_with_sparse_categorical_crossentropy():
    set_random_seed(2)
    rng = np.random.default_rng(2)
    x = rng.integers(1, 4, (300, 6))
    y = x[:, 0] - 1  # the first token names the class
    model = Sequential([Embedding(4, 8), GRU(8), Dense(3, activation="softmax")])
    model.compile(optimizer=Adam(0.02), loss="sparse_categorical_crossentropy", metrics=["acc"])
    model.fit(x, y, epochs=15, batch_size=30, verbose=0)
    assert model.evaluate(x, y)[1] > 0.95
    np.testing.assert_allclose(model.predict(x).sum(axis=1), 1.0, rtol=1e-5)


def test_evaluate_returns_loss_alone_without_metrics_and_predict_batches():
    set_random_seed(0)
    model = Sequential([Embedding(10, 3), SimpleRNN(2), Dense(1, activation="sigmoid")])
    model.compile(optimizer="rmsprop", loss="binary_crossentropy")
    x = np.random.default_rng(0).integers(0, 10, (70, 4))
    y = np.arange(70) % 2
    assert isinstance(model.evaluate(x, y), float)
    assert model.evaluate(x, y, return_dict=True).keys() == {"loss"}
    np.testing.assert_allclose(model.predict(x, batch_size=7), model.predict(x, batch_size=70), rtol=1e-6)
    assert model.predict(x).shape == (70, 1)


def test_progress_shows_a_bar_on_a_terminal_and_a_line_per_epoch_elsewhere(monkeypatch):
    set_random_seed(0)
    model = Sequential([Embedding(10, 3), SimpleRNN(2), Dense(1, activation="sigmoid")])
    model.compile(optimizer="rmsprop", loss="binary_crossentropy", metrics=["acc"])
    x = np.random.default_rng(0).integers(0, 10, (64, 4))
    y = np.arange(64) % 2

    class Terminal(io.StringIO):
        def isatty(self):
            return True

    for stream, expect in ((Terminal(), "bar"), (io.StringIO(), "lines")):
        monkeypatch.setattr("sys.stdout", stream)
        model.fit(x, y, epochs=2, batch_size=16, validation_split=0.25)
        out = stream.getvalue()
        if expect == "bar":
            assert "Epoch 1/2\n" in out and "\r3/3 [==============================] - " in out
            assert "ms/step - loss: " in out and " - val_acc: " in out
        else:
            lines = out.strip().split("\n")
            assert len(lines) == 2 and "\r" not in out
            assert lines[0].startswith("Epoch 1/2 - 3 steps - ") and "ms/step - loss: " in lines[0]
            assert "val_loss: " in lines[1] and "val_acc: " in lines[1]
