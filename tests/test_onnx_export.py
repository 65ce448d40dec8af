"""model.export(path, format='onnx'): onnxruntime running the file predicts what rnnkit predicts (1e-5),
for every cell, masked or not, one direction or both, at any batch size and sequence length."""

import sys

import numpy as np
import pytest

import rnnkit
from rnnkit.layers import GRU, LSTM, Activation, Bidirectional, Conv1D, Dense, Dropout, Embedding, SimpleRNN
from rnnkit.preprocessing.sequence import pad_sequences

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")
CELLS = {"simple_rnn": SimpleRNN, "lstm": LSTM, "gru": GRU}


def token_batch(batch=16, maxlen=10, padding="pre", seed=0):
    rng = np.random.default_rng(seed)
    reviews = [rng.integers(1, 30, n) for n in rng.integers(1, maxlen + 3, batch)]
    return pad_sequences(reviews, maxlen=maxlen, padding=padding, truncating="pre").astype(np.int32)


def with_random_weights(model, seed=0):
    """Every weight, biases included, away from its initial value, so that each one matters."""
    rng = np.random.default_rng(seed)
    model.set_weights([w + 0.2 * rng.standard_normal(w.shape).astype(w.dtype) for w in model.get_weights()])
    return model


def run_onnx(path, x):
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return session.run(None, {"input": x})[0]


@pytest.mark.parametrize("cell", CELLS)
@pytest.mark.parametrize("masked", [False, True])
@pytest.mark.parametrize("bidirectional", [False, True])
def test_onnxruntime_predicts_what_rnnkit_predicts(tmp_path, cell, masked, bidirectional):
    rnnkit.utils.set_random_seed(0)
    first = CELLS[cell](5, return_sequences=True)
    model = rnnkit.Sequential([Embedding(30, 4, mask_zero=masked), Bidirectional(first) if bidirectional else first,
                               Dropout(0.5), CELLS[cell](3), Dense(2, activation="softmax")])
    model.build((10,))
    with_random_weights(model)
    model.export(tmp_path / "model.onnx", format="onnx")
    onnx.checker.check_model(str(tmp_path / "model.onnx"))
    for batch, maxlen, padding in ((16, 10, "pre"), (3, 25, "pre"), (1, 4, "pre"), (9, 12, "post")):
        x = token_batch(batch, maxlen, padding)
        np.testing.assert_allclose(run_onnx(tmp_path / "model.onnx", x), model.predict(x, verbose=0), atol=1e-5)


def test_the_tutorial_model_on_dense_inputs_and_the_relu_rnn(tmp_path):
    rnnkit.utils.set_random_seed(0)
    model = rnnkit.Sequential([SimpleRNN(4, activation="relu", return_sequences=True), LSTM(3, use_bias=False),
                               Dense(1), Activation("sigmoid")])
    model.build((6, 2))
    with_random_weights(model)
    model.export(tmp_path / "dense.onnx")
    x = np.random.default_rng(1).standard_normal((5, 9, 2)).astype(np.float32)
    np.testing.assert_allclose(run_onnx(tmp_path / "dense.onnx", x), model.predict(x, verbose=0), atol=1e-5)


def test_a_sequence_output_exports_unmasked(tmp_path):
    rnnkit.utils.set_random_seed(0)
    model = rnnkit.Sequential([Embedding(30, 4), Bidirectional(GRU(3, return_sequences=True)), Dense(2)])
    model.build((10,))
    with_random_weights(model)
    model.export(tmp_path / "seq.onnx")
    x = token_batch()
    np.testing.assert_allclose(run_onnx(tmp_path / "seq.onnx", x), model.predict(x, verbose=0), atol=1e-5)


@pytest.mark.parametrize("layers, message", [
    ([Embedding(30, 4, mask_zero=True), LSTM(3, return_sequences=True), Dense(1)], "masked sequence"),
    ([Embedding(30, 4), Conv1D(2, 3), LSTM(3)], "Conv1D"),
    ([Embedding(30, 4), LSTM(3, go_backwards=True)], "go_backwards"),
    ([Embedding(30, 4), Bidirectional(LSTM(3), merge_mode="sum")], "merge_mode"),
    ([Embedding(30, 4), GRU(3, activation="relu")], "activation 'relu'"),
])
def test_what_onnx_export_does_not_cover_is_named(tmp_path, layers, message):
    model = rnnkit.Sequential(layers)
    model.build((10,))
    with pytest.raises(NotImplementedError, match=message):
        model.export(tmp_path / "m.onnx")
    assert not (tmp_path / "m.onnx").exists()


def test_other_formats_and_models_are_refused(tmp_path, monkeypatch):
    model = rnnkit.Sequential([Embedding(30, 4), LSTM(3)])
    model.build((10,))
    with pytest.raises(ValueError, match="format='onnx'"):
        model.export(tmp_path / "m", format="tf_saved_model")
    inputs = rnnkit.Input((10,), dtype="int32")
    functional = rnnkit.Model(inputs, LSTM(3)(Embedding(30, 4)(inputs)))
    with pytest.raises(NotImplementedError, match="Sequential"):
        functional.export(tmp_path / "f.onnx")
    monkeypatch.setitem(sys.modules, "onnx", None)
    with pytest.raises(ImportError, match=r"rnnkit\[onnx\]"):
        model.export(tmp_path / "m.onnx")
