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
    r_loss, _ = r.train_on_batch(x, y)
    assert r_loss == pytest.approx(k_loss, rel=1e-5)
    for mine, theirs in zip(r.get_weights(), k.get_weights()):
        np.testing.assert_allclose(mine, np.asarray(theirs), rtol=1e-4, atol=1e-6)
