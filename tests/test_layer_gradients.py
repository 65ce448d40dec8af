"""Each layer's backward, and a whole model's, against central finite differences (float64)."""

import numpy as np
import pytest

from rnnkit.layers import GRU, LSTM, Dense, Embedding, SimpleRNN
from rnnkit.models import Sequential
from rnnkit.utils import set_random_seed

from cells import numerical_gradient


def check_layer(layer, x, check_input=True):
    """loss = sum(layer(x) * r) for a fixed random r: compare every weight gradient and d/dx."""
    out = layer.forward(x, training=True)
    r = np.random.default_rng(5).standard_normal(np.shape(out))
    dx = layer.backward(r)

    def loss():
        return float(np.sum(layer.forward(x, training=True) * r))

    for name, w in layer.params.items():
        np.testing.assert_allclose(layer.grads[name], numerical_gradient(loss, w), rtol=1e-6, atol=1e-8,
                                   err_msg=f"{layer.name}.{name}")
    if check_input:
        np.testing.assert_allclose(dx, numerical_gradient(loss, x), rtol=1e-6, atol=1e-8, err_msg=f"{layer.name} dx")


@pytest.mark.parametrize("activation", [None, "sigmoid", "relu", "tanh", "softmax"])
def test_dense_backward_matches_finite_differences(activation):
    set_random_seed(1)
    layer = Dense(4, activation=activation, dtype="float64")
    x = np.random.default_rng(2).standard_normal((5, 3))
    layer.ensure_built(x.shape[1:])
    layer.params["bias"][:] = np.random.default_rng(3).standard_normal(4) * 0.1
    check_layer(layer, x)


def test_dense_over_a_sequence_applies_to_the_last_axis():
    set_random_seed(1)
    layer = Dense(2, activation="tanh", dtype="float64")
    x = np.random.default_rng(2).standard_normal((3, 4, 5))
    layer.ensure_built(x.shape[1:])
    check_layer(layer, x)


def test_embedding_backward_sums_the_rows_each_id_used():
    set_random_seed(1)
    layer = Embedding(7, 3, dtype="float64")
    layer.ensure_built((None,))
    ids = np.array([[1, 2, 1, 0], [6, 1, 1, 2]])
    out = layer.forward(ids)
    np.testing.assert_array_equal(out, layer.params["embeddings"][ids])
    r = np.random.default_rng(5).standard_normal(out.shape)
    assert layer.backward(r) is None
    expected = np.zeros((7, 3))
    np.add.at(expected, ids, r)
    np.testing.assert_allclose(layer.grads["embeddings"], expected, rtol=1e-15)


@pytest.mark.parametrize("return_sequences", [False, True], ids=["last", "sequences"])
@pytest.mark.parametrize("use_bias", [True, False], ids=["bias", "no_bias"])
@pytest.mark.parametrize("cls", [SimpleRNN, LSTM, GRU])
def test_recurrent_layer_backward_matches_finite_differences(cls, use_bias, return_sequences):
    set_random_seed(1)
    layer = cls(3, use_bias=use_bias, return_sequences=return_sequences, dtype="float64")
    x = np.random.default_rng(2).standard_normal((2, 4, 3))
    layer.ensure_built(x.shape[1:])
    if use_bias:
        layer.params["bias"][...] = np.random.default_rng(3).standard_normal(layer.params["bias"].shape) * 0.3
    check_layer(layer, x)


def test_whole_model_gradient_embedding_lstm_dense_binary_crossentropy():
    set_random_seed(4)
    model = Sequential([Embedding(11, 4, dtype="float64"), LSTM(3, dtype="float64"),
                        Dense(1, activation="sigmoid", dtype="float64")])
    model.compile(optimizer="sgd", loss="binary_crossentropy")
    rng = np.random.default_rng(6)
    x = rng.integers(0, 11, (5, 6))
    y = rng.integers(0, 2, 5)
    model.build((None, 6))
    # gradients as train_on_batch computes them, without the update
    (y_pred,), _ = model._run_forward([x], True)
    _, d_logits = model.loss.value_and_gradient(y, y_pred, logits=model.layers[-1].logits)
    model._run_backward([d_logits], [True])

    def loss():
        return model.test_on_batch(x, y)

    for layer in model.layers:
        for name, w in layer.params.items():
            np.testing.assert_allclose(layer.grads[name], numerical_gradient(loss, w), rtol=1e-6, atol=1e-9,
                                       err_msg=f"{layer.name}.{name}")
