"""Losses and metrics with Keras' definitions: averaged over every element of per-timestep outputs,
clipped probabilities differentiated as clipped, from_logits, sample weights and masks, and what
train_on_batch and test_on_batch return. Where Keras is installed, compared with Keras itself."""

import numpy as np
import pytest

import rnnkit.layers as rl
from rnnkit import losses, metrics
from rnnkit.layers import LSTM, Dense, Embedding
from rnnkit.models import Sequential
from rnnkit.optimizers import SGD
from rnnkit.utils import set_random_seed

from keras_peer import keras, needs_keras

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


def sequence_data(seed=0, n=64, steps=10):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, steps, 3)).astype(np.float32)
    y = (x[..., :1] > 0).astype(np.float32)  # (n, steps, 1): a label per timestep
    return x, y


def per_step_model(lib, loss="binary_crossentropy", units=1, activation="sigmoid", **compile_args):
    layers = [lib.LSTM(8, return_sequences=True), lib.Dense(units, activation=activation)]
    if keras is not None and lib is keras.layers:
        model = keras.Sequential([keras.Input((10, 3))] + layers)
    else:
        model = Sequential(layers)
    model.compile(optimizer=compile_args.pop("optimizer", "rmsprop"), loss=loss, **compile_args)
    return model


def twins(**kwargs):
    """A Keras model and an rnnkit model of the same per-timestep architecture and weights."""
    keras.utils.set_random_seed(0)
    k = per_step_model(keras.layers, **kwargs)
    r = per_step_model(rl, **kwargs)
    r.build((10, 3))
    r.set_weights([np.asarray(w) for w in k.get_weights()])
    return k, r


def test_per_timestep_accuracy_is_a_fraction_of_all_elements():
    x, y = sequence_data()
    set_random_seed(0)
    model = per_step_model(rl, metrics=["acc"])
    history = model.fit(x, y, epochs=2, batch_size=16, validation_split=0.25, verbose=0)
    for key in ("acc", "val_acc"):
        assert all(0.0 <= v <= 1.0 for v in history.history[key]), history.history[key]
    loss, acc = model.evaluate(x, y)
    predicted = model.predict(x) > 0.5
    assert acc == pytest.approx(np.mean(predicted == (y > 0.5)))


def test_sparse_categorical_crossentropy_takes_a_label_per_timestep():
    x, y = sequence_data()
    labels = y[..., 0].astype(np.int64) + (x[..., 1] > 0)  # (64, 10) classes 0..2
    set_random_seed(0)
    model = per_step_model(rl, loss="sparse_categorical_crossentropy",
                           units=3, activation="softmax", metrics=["acc"])
    loss, acc = model.train_on_batch(x, labels)
    assert np.isfinite(loss) and 0 <= acc <= 1


def test_binary_crossentropy_of_an_unbounded_output_moves_weights_by_the_clipped_function():
    """Dense(1) without a sigmoid: where the output lies outside [1e-7, 1 - 1e-7] the clipped loss is
    flat, so one SGD step cannot throw the bias to 50000."""
    rng = np.random.default_rng(1)
    x, y = rng.standard_normal((32, 4)), rng.integers(0, 2, 32)
    model = Sequential([Dense(1, input_shape=(4,), dtype="float64")])
    model.compile(SGD(learning_rate=0.1), "binary_crossentropy")
    model.layers[0].params["bias"][...] = -2.0  # every output below 0: all clipped
    model.layers[0].params["kernel"][...] = 0.0
    model.train_on_batch(x, y)
    assert model.layers[0].params["bias"][0] == pytest.approx(-2.0)


def test_losses_give_the_gradient_of_their_value():
    rng = np.random.default_rng(2)
    cases = [
        (losses.BinaryCrossentropy(), rng.uniform(0.05, 0.95, (4, 5, 2)), rng.uniform(0, 1, (4, 5, 2))),
        (losses.BinaryCrossentropy(from_logits=True), rng.standard_normal((4, 3)), rng.integers(0, 2, (4, 3))),
        (losses.CategoricalCrossentropy(), rng.uniform(0.1, 1, (6, 4)), np.eye(4)[rng.integers(0, 4, 6)]),
        (losses.CategoricalCrossentropy(from_logits=True), rng.standard_normal((6, 4)), rng.dirichlet([1] * 4, 6)),
        (losses.SparseCategoricalCrossentropy(), rng.uniform(0.1, 1, (3, 5, 4)), rng.integers(0, 4, (3, 5))),
        (losses.SparseCategoricalCrossentropy(from_logits=True), rng.standard_normal((6, 4)), rng.integers(0, 4, 6)),
        (losses.MeanSquaredError(), rng.standard_normal((5, 3)), rng.standard_normal((5, 3))),
        (losses.MeanAbsoluteError(), rng.standard_normal((5, 3)), rng.standard_normal((5, 3))),
    ]
    weights = rng.uniform(0.5, 2, 3)
    for loss, y_pred, y_true in cases:
        for sample_weight in (None, np.resize(weights, y_pred.shape[0])):
            _, grad = loss.value_and_gradient(y_true, y_pred, sample_weight)
            numeric = np.zeros_like(y_pred)
            for i in np.ndindex(y_pred.shape):
                step = np.zeros_like(y_pred)
                step[i] = 1e-6
                numeric[i] = (loss.value_and_gradient(y_true, y_pred + step, sample_weight)[0]
                              - loss.value_and_gradient(y_true, y_pred - step, sample_weight)[0]) / 2e-6
            np.testing.assert_allclose(grad, numeric, rtol=1e-5, atol=1e-8, err_msg=f"{type(loss).__name__}")


def test_a_mask_weighs_the_real_steps_as_keras_does():
    values_shape = (2, 4)
    mask = np.array([[True, True, False, False], [True, True, True, True]])
    weights = losses.element_weights(values_shape, mask=mask)
    np.testing.assert_allclose(weights, np.where(mask, 8 / 6, 0))


def test_train_and_test_on_batch_return_the_loss_then_the_metrics():
    rng = np.random.default_rng(3)
    x, y = rng.integers(0, 20, (16, 7)), rng.integers(0, 2, 16)
    set_random_seed(0)
    model = Sequential([Embedding(20, 4), LSTM(3), Dense(1, activation="sigmoid")])
    model.compile("rmsprop", "binary_crossentropy", metrics=["acc"])
    loss, acc = model.train_on_batch(x, y)
    assert 0 <= acc <= 1 and acc * 16 == pytest.approx(round(acc * 16))
    assert isinstance(model.test_on_batch(x, y), list)
    assert set(model.test_on_batch(x, y, return_dict=True)) == {"loss", "acc"}
    model.compile("rmsprop", "binary_crossentropy")
    assert isinstance(model.train_on_batch(x, y), float) and isinstance(model.test_on_batch(x, y), float)
    assert model.metrics_names == ["loss"]


def test_accuracy_name_picks_binary_sparse_or_categorical_accuracy_by_shapes():
    assert type(metrics.get("acc", (8,), (8, 1))).__name__ == "BinaryAccuracy"
    assert type(metrics.get("accuracy", (8,), (8, 3))).__name__ == "SparseCategoricalAccuracy"
    assert type(metrics.get("acc", (8, 3), (8, 3))).__name__ == "CategoricalAccuracy"
    assert metrics.get("acc", (8,), (8, 1)).name == "acc"


@needs_keras
@pytest.mark.parametrize("loss, units, activation", [("binary_crossentropy", 1, "sigmoid"),
                                                     ("sparse_categorical_crossentropy", 3, "softmax"),
                                                     ("mse", 1, None), ("mae", 1, "tanh")])
def test_per_timestep_training_matches_keras(loss, units, activation):
    x, y = sequence_data(4)
    labels = y[..., 0].astype(np.int64) + (x[..., 1] > 0) if loss.startswith("sparse") else y
    k, r = twins(loss=loss, units=units, activation=activation, metrics=["acc"] if units > 1 or loss.startswith(
        "binary") else ["mae"])
    for _ in range(2):
        k_logs = [float(np.asarray(v)) for v in k.train_on_batch(x, labels)]
        r_logs = r.train_on_batch(x, labels)
        np.testing.assert_allclose(r_logs, k_logs, rtol=2e-5, atol=1e-6)
    for mine, theirs in zip(r.get_weights(), k.get_weights()):
        np.testing.assert_allclose(mine, np.asarray(theirs), rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(r.evaluate(x, labels), k.evaluate(x, labels, verbose=0), rtol=2e-5, atol=1e-6)


@needs_keras
def test_binary_crossentropy_without_a_sigmoid_matches_keras():
    rng = np.random.default_rng(5)
    x, y = rng.standard_normal((32, 4)).astype(np.float32), rng.integers(0, 2, 32).astype(np.float32)
    keras.utils.set_random_seed(1)
    k = keras.Sequential([keras.Input((4,)), keras.layers.Dense(1)])
    k.compile(keras.optimizers.SGD(0.1), "binary_crossentropy", metrics=["acc"])
    r = Sequential([Dense(1, input_shape=(4,))])
    r.compile(SGD(0.1), "binary_crossentropy", metrics=["acc"])
    r.set_weights([np.asarray(w) for w in k.get_weights()])
    for _ in range(3):
        np.testing.assert_allclose(r.train_on_batch(x, y), [float(np.asarray(v)) for v in k.train_on_batch(x, y)],
                                   rtol=1e-5, atol=1e-6)
    for mine, theirs in zip(r.get_weights(), k.get_weights()):
        np.testing.assert_allclose(mine, np.asarray(theirs), rtol=1e-5, atol=1e-6)


@needs_keras
@pytest.mark.parametrize("loss", [losses.BinaryCrossentropy(from_logits=True), losses.CategoricalCrossentropy(),
                                  losses.CategoricalCrossentropy(from_logits=True), losses.MeanAbsoluteError()])
def test_loss_values_with_sample_weights_match_keras(loss):
    rng = np.random.default_rng(6)
    if isinstance(loss, losses.CategoricalCrossentropy):
        y_pred = rng.uniform(0.05, 1, (6, 4)).astype(np.float32)
        y_true = np.eye(4, dtype=np.float32)[rng.integers(0, 4, 6)]
    else:
        y_pred = rng.standard_normal((6, 3)).astype(np.float32)
        y_true = rng.integers(0, 2, (6, 3)).astype(np.float32)
    weights = rng.uniform(0.1, 2, 6).astype(np.float32)
    theirs = getattr(keras.losses, type(loss).__name__)(from_logits=loss.from_logits) if hasattr(
        loss, "from_logits") and not isinstance(loss, losses.MeanAbsoluteError) else keras.losses.MeanAbsoluteError()
    expected = float(np.asarray(theirs(y_true, y_pred, sample_weight=weights)))
    assert loss(y_true, y_pred, sample_weight=weights) == pytest.approx(expected, rel=1e-5)
