"""A diverging run: TerminateOnNaN stops it, accuracy does not pass NaN predictions off as right, and
ModelCheckpoint says why it saves nothing."""

import numpy as np
import pytest

from rnnkit import metrics
from rnnkit.callbacks import ModelCheckpoint, TerminateOnNaN
from rnnkit.layers import LSTM, Dense, Embedding
from rnnkit.models import Sequential
from rnnkit.optimizers import SGD
from rnnkit.utils import set_random_seed


def diverging_model():
    set_random_seed(0)
    model = Sequential([Embedding(20, 4), LSTM(3), Dense(1, activation="sigmoid")])
    model.compile(SGD(learning_rate=1e30), "binary_crossentropy", metrics=["acc"])
    return model


def data(n=64):
    rng = np.random.default_rng(1)
    return rng.integers(1, 20, (n, 7)), rng.integers(0, 2, n)


def test_terminate_on_nan_stops_training_in_the_epoch_whose_loss_became_nan(capsys):
    x, y = data()
    model, guard = diverging_model(), TerminateOnNaN()
    with np.errstate(over="ignore", invalid="ignore"):
        history = model.fit(x, y, epochs=5, batch_size=8, callbacks=[guard], verbose=0)
    assert len(history.history["loss"]) == 1 and np.isnan(history.history["loss"][0])
    epoch, batch = guard.terminated_at
    assert epoch == 0 and f"Batch {batch}: Invalid loss, terminating training" in capsys.readouterr().out


def test_accuracy_counts_nan_predictions_as_wrong():
    y_true = np.array([0, 0, 1, 1])
    np.testing.assert_array_equal(metrics.binary_accuracy(y_true, np.array([[np.nan], [0.2], [np.nan], [0.9]])),
                                  [0, 1, 0, 1])
    np.testing.assert_array_equal(
        metrics.sparse_categorical_accuracy(np.array([0, 1]), np.array([[0.9, np.nan], [0.1, 0.9]])), [0, 1])


def test_a_model_with_nan_weights_scores_zero_accuracy_not_the_share_of_negatives():
    x, y = data()
    model = diverging_model()
    model.build((7,))
    model.set_weights([np.full_like(w, np.nan) for w in model.get_weights()])
    loss, acc = model.evaluate(x, y)
    assert np.isnan(loss) and acc == 0.0


def test_model_checkpoint_save_best_only_warns_when_the_monitored_value_is_nan(tmp_path):
    x, y = data()
    path = tmp_path / "best.rnnkit"
    with np.errstate(over="ignore", invalid="ignore"), pytest.warns(UserWarning, match="val_loss is nan"):
        diverging_model().fit(x, y, epochs=2, batch_size=8, validation_split=0.25, verbose=0,
                              callbacks=[ModelCheckpoint(path, save_best_only=True)])
    assert not path.exists()
