"""Bad input to the Keras-style API: a clear error, never a crash or a silently wrong result."""

import re

import numpy as np
import pytest

from rnnkit.layers import GRU, LSTM, Dense, Embedding, SimpleRNN
from rnnkit.models import Sequential, load_model


def compiled(loss="binary_crossentropy"):
    model = Sequential([Embedding(100, 4), SimpleRNN(3), Dense(1, activation="sigmoid")])
    model.compile(optimizer="rmsprop", loss=loss, metrics=["acc"])
    return model


def test_token_id_at_or_above_input_dim_names_the_id_and_the_limit():
    x = np.zeros((4, 6), np.int64)
    x[2, 3] = 100
    with pytest.raises(IndexError, match=re.escape("token id 100 at position (2, 3) is outside [0, 100)")):
        compiled().fit(x, np.zeros(4), verbose=0)


def test_negative_token_id_is_an_error():
    x = np.zeros((4, 6), np.int32)
    x[0, 5] = -1
    with pytest.raises(IndexError, match=re.escape("token id -1 at position (0, 5) is outside [0, 100)")):
        compiled().predict(x)


def test_label_count_must_match_sample_count():
    with pytest.raises(ValueError, match="different numbers of samples: 4 and 3"):
        compiled().fit(np.zeros((4, 6), int), np.zeros(3), verbose=0)


@pytest.mark.parametrize("labels", [[0, 1, 2, 1], [0.5, 0, 1.5, 1], [-1, 0, 0, 1]])
def test_binary_crossentropy_labels_must_lie_in_0_1(labels):
    with pytest.raises(ValueError, match=r"binary_crossentropy: labels must be in \[0, 1\], got"):
        compiled().fit(np.zeros((4, 6), int), np.array(labels), verbose=0)


def test_fit_evaluate_before_compile_is_a_clear_error():
    model = Sequential([Embedding(100, 4), SimpleRNN(3), Dense(1)])
    with pytest.raises(RuntimeError, match="You must compile your model before training/testing"):
        model.fit(np.zeros((4, 6), int), np.zeros(4))
    with pytest.raises(RuntimeError, match="You must compile"):
        model.evaluate(np.zeros((4, 6), int), np.zeros(4))


def test_empty_x_is_an_error():
    with pytest.raises(ValueError, match=r"x is empty \(shape \(0, 6\)\)"):
        compiled().fit(np.zeros((0, 6), int), np.zeros(0), verbose=0)
    with pytest.raises(ValueError, match=r"x is empty"):
        compiled().predict(np.zeros((0, 6), int))


def test_float_x_where_token_ids_are_expected_is_a_type_error():
    with pytest.raises(TypeError, match=r"takes integer token ids, got a float64 array"):
        compiled().fit(np.zeros((4, 6)), np.zeros(4), verbose=0)


def test_unknown_names_and_arguments():
    with pytest.raises(ValueError, match="unknown optimizer 'adamw'"):
        Sequential([Dense(1)]).compile(optimizer="adamw", loss="mse")
    with pytest.raises(ValueError, match="unknown loss 'hinge'"):
        Sequential([Dense(1)]).compile(loss="hinge")
    with pytest.raises(ValueError, match="unknown metric 'auc'"):
        Sequential([Dense(1)]).compile(loss="mse", metrics=["auc"])
    with pytest.raises(TypeError, match=r"Unrecognized keyword arguments passed to LSTM: \['unit'\]"):
        LSTM(3, unit=4)
    with pytest.raises(ValueError, match="units must be a positive integer, got 0"):
        LSTM(0)
    with pytest.raises(ValueError, match=r"LSTM: rnnkit's kernels implement activation in \('tanh',\)"):
        LSTM(3, activation="relu")
    with pytest.raises(ValueError, match="GRU: rnnkit's kernels implement activation in"):
        GRU(3, activation="elu")


@pytest.mark.parametrize("damage", ["truncate", "flip", "garbage", "empty"])
def test_corrupt_or_truncated_model_file_is_a_clear_error(tmp_path, damage):
    model = compiled()
    model.build((None, 6))
    path = tmp_path / "m.rnnkit"
    model.save(path)
    data = path.read_bytes()
    if damage == "truncate":
        path.write_bytes(data[: len(data) // 2])
    elif damage == "flip":
        middle = len(data) // 2
        path.write_bytes(data[:middle] + bytes([data[middle] ^ 0xFF]) + data[middle + 1 :])
    elif damage == "garbage":
        path.write_bytes(b"not a model at all")
    else:
        path.write_bytes(b"")
    with pytest.raises(ValueError, match=re.escape(str(path))):
        load_model(path)


def test_missing_model_file_is_file_not_found(tmp_path):
    with pytest.raises(FileNotFoundError):
        load_model(tmp_path / "nope.rnnkit")
