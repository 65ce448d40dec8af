"""Against real Keras, when it is installed (skipped otherwise): the same weights give the same
predictions, and one RMSprop step moves them the same way.

    pip install keras torch==2.13.0   # Keras 3 on its PyTorch backend, CPU
"""

import os

import numpy as np
import pytest

os.environ.setdefault("KERAS_BACKEND", "torch")
keras = pytest.importorskip("keras")

import rnnkit.layers as rl  # noqa: E402
from rnnkit.models import Sequential  # noqa: E402

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")  # Keras' own, about NumPy 2

CELLS = ["SimpleRNN", "LSTM", "GRU"]


def twin_models(cell, return_sequences_stack=False):
    """A Keras model and an rnnkit model of the same architecture, with the Keras weights copied over."""
    keras.utils.set_random_seed(0)

    def stack(lib, **dtype):
        layers = [lib.Embedding(50, 8)]
        if return_sequences_stack:
            layers.append(getattr(lib, cell)(6, return_sequences=True))
        layers += [getattr(lib, cell)(5), lib.Dense(1, activation="sigmoid")]
        return layers

    k = keras.Sequential([keras.Input((12,), dtype="int32")] + stack(keras.layers))
    r = Sequential(stack(rl))
    r.set_weights([np.asarray(w) for w in k.get_weights()])
    return k, r


def batch(seed=1):
    rng = np.random.default_rng(seed)
    return rng.integers(0, 50, (16, 12)).astype(np.int32), rng.integers(0, 2, 16).astype(np.float32)


@pytest.mark.parametrize("stacked", [False, True], ids=["single", "stacked"])
@pytest.mark.parametrize("cell", CELLS)
def test_keras_weights_give_the_same_predictions(cell, stacked):
    k, r = twin_models(cell, stacked)
    x, _ = batch()
    expected = np.asarray(k.predict(x, verbose=0))
    np.testing.assert_allclose(r.predict(x), expected, rtol=2e-5, atol=1e-6)
    assert r.count_params() == k.count_params()


@pytest.mark.parametrize("cell", CELLS)
def test_one_rmsprop_step_matches_keras(cell):
    k, r = twin_models(cell)
    k.compile(optimizer="rmsprop", loss="binary_crossentropy")
    r.compile(optimizer="rmsprop", loss="binary_crossentropy")
    x, y = batch(2)
    k_loss = float(np.asarray(k.train_on_batch(x, y)))
    r_loss = r.train_on_batch(x, y)  # a scalar without metrics, as Keras returns it
    assert r_loss == pytest.approx(k_loss, rel=1e-5)
    for mine, theirs in zip(r.get_weights(), k.get_weights()):
        np.testing.assert_allclose(mine, np.asarray(theirs), rtol=1e-4, atol=1e-6)


def masked_twins(build, steps=9):
    keras.utils.set_random_seed(0)
    k = keras.Sequential([keras.Input((steps,), dtype="int32")] + build(keras.layers))
    r = Sequential(build(rl))
    r.set_weights([np.asarray(w) for w in k.get_weights()])
    return k, r


def padded_ids(steps=9):
    x = np.random.default_rng(1).integers(1, 30, (6, steps)).astype(np.int32)
    x[0, :4] = 0  # pre-padded
    x[1, 6:] = 0  # post-padded
    x[2, :] = 0  # nothing real
    x[3, [2, 5]] = 0  # holes
    return x


MASKED = {
    "lstm_sequences": lambda L: [L.Embedding(30, 4, mask_zero=True), L.LSTM(3, return_sequences=True)],
    "gru_last": lambda L: [L.Embedding(30, 4, mask_zero=True), L.GRU(3)],
    "simple_rnn_backwards": lambda L: [L.Embedding(30, 4, mask_zero=True),
                                       L.SimpleRNN(3, return_sequences=True, go_backwards=True)],
    "bidirectional_concat": lambda L: [L.Embedding(30, 4, mask_zero=True),
                                       L.Bidirectional(L.LSTM(3, return_sequences=True))],
    "bidirectional_sum": lambda L: [L.Embedding(30, 4, mask_zero=True), L.Bidirectional(L.GRU(3), merge_mode="sum")],
    "bidirectional_mul": lambda L: [L.Embedding(30, 4, mask_zero=True),
                                    L.Bidirectional(L.SimpleRNN(3, return_sequences=True), merge_mode="mul")],
}


@pytest.mark.parametrize("name", MASKED)
def test_masked_layers_match_keras(name):
    k, r = masked_twins(MASKED[name])
    x = padded_ids()
    np.testing.assert_allclose(r.predict(x), np.asarray(k.predict(x, verbose=0)), rtol=1e-5, atol=1e-7)


def test_masking_layer_matches_keras():
    keras.utils.set_random_seed(0)
    k = keras.Sequential([keras.Input((7, 3)), keras.layers.Masking(0.0), keras.layers.LSTM(4)])
    r = Sequential([rl.Masking(0.0, input_shape=(7, 3)), rl.LSTM(4)])
    r.set_weights([np.asarray(w) for w in k.get_weights()])
    x = np.random.default_rng(2).standard_normal((4, 7, 3)).astype(np.float32)
    x[0, :2] = 0
    x[1, 5:] = 0
    x[2, 3] = 0
    np.testing.assert_allclose(r.predict(x), np.asarray(k.predict(x, verbose=0)), rtol=1e-5, atol=1e-7)


def test_one_rmsprop_step_of_a_masked_bidirectional_model_matches_keras():
    def build(L):
        return [L.Embedding(30, 4, mask_zero=True), L.Bidirectional(L.LSTM(3)), L.Dense(1, activation="sigmoid")]

    k, r = masked_twins(build)
    k.compile(optimizer="rmsprop", loss="binary_crossentropy")
    r.compile(optimizer="rmsprop", loss="binary_crossentropy")
    x = padded_ids()
    y = np.array([0, 1, 1, 0, 1, 0], np.float32)
    assert r.train_on_batch(x, y) == pytest.approx(float(np.asarray(k.train_on_batch(x, y))), rel=1e-5)
    for mine, theirs in zip(r.get_weights(), k.get_weights()):
        np.testing.assert_allclose(mine, np.asarray(theirs), rtol=1e-4, atol=1e-6)
