"""pad_sequences against hand-worked cases, with Keras' semantics."""

import numpy as np
import pytest

from rnnkit.preprocessing.sequence import pad_sequences

SEQUENCES = [[1, 2, 3, 4, 5], [6, 7], [], [8]]


@pytest.mark.parametrize(
    "padding, truncating, expected",
    [
        ("pre", "pre", [[3, 4, 5], [0, 6, 7], [0, 0, 0], [0, 0, 8]]),
        ("pre", "post", [[1, 2, 3], [0, 6, 7], [0, 0, 0], [0, 0, 8]]),
        ("post", "pre", [[3, 4, 5], [6, 7, 0], [0, 0, 0], [8, 0, 0]]),
        ("post", "post", [[1, 2, 3], [6, 7, 0], [0, 0, 0], [8, 0, 0]]),
    ],
)
def test_every_padding_and_truncating_combination(padding, truncating, expected):
    out = pad_sequences(SEQUENCES, maxlen=3, padding=padding, truncating=truncating)
    assert out.dtype == np.int32
    np.testing.assert_array_equal(out, expected)


def test_default_maxlen_is_the_longest_and_keras_defaults_pad_before():
    np.testing.assert_array_equal(pad_sequences(SEQUENCES),
                                  [[1, 2, 3, 4, 5], [0, 0, 0, 6, 7], [0, 0, 0, 0, 0], [0, 0, 0, 0, 8]])


def test_value_dtype_and_arrays_as_input():
    out = pad_sequences([np.array([0.5, 1.5]), [2.5]], maxlen=4, dtype="float32", value=-1.0, padding="post")
    assert out.dtype == np.float32
    np.testing.assert_array_equal(out, [[0.5, 1.5, -1, -1], [2.5, -1, -1, -1]])


def test_sequences_of_vectors_keep_their_trailing_shape():
    out = pad_sequences([[[1, 1], [2, 2]], [[3, 3]]], maxlen=3)
    assert out.shape == (2, 3, 2)
    np.testing.assert_array_equal(out[1], [[0, 0], [0, 0], [3, 3]])
    with pytest.raises(ValueError, match="Shape of sample"):
        pad_sequences([[[1, 1]], [[1, 2, 3]]])


def test_maxlen_zero_and_no_sequences():
    assert pad_sequences([[1, 2]], maxlen=0).shape == (1, 0)
    assert pad_sequences([], maxlen=4).shape == (0, 4)


def test_bad_arguments_are_value_errors():
    with pytest.raises(ValueError, match='Padding type "middle" not understood'):
        pad_sequences(SEQUENCES, padding="middle")
    with pytest.raises(ValueError, match='Truncating type "both" not understood'):
        pad_sequences(SEQUENCES, truncating="both")
    with pytest.raises(ValueError, match="must be a list of iterables"):
        pad_sequences([[1], 5])
    with pytest.raises(ValueError, match="maxlen must be a non-negative integer"):
        pad_sequences(SEQUENCES, maxlen=-1)
    with pytest.raises(ValueError, match="cannot hold the string value"):
        pad_sequences(SEQUENCES, value="x")
