"""The functional API: Input, layers called on symbolic tensors, Model(inputs, outputs) with several
inputs and outputs, states passed between recurrent layers, masks through the graph, the fused
Embedding inside a graph, eager layer calls, summary, training and saving. Compared with Keras where
it is installed."""

import numpy as np
import pytest

import rnnkit
from rnnkit import layers
from rnnkit.models import Model, Sequential, load_model
from rnnkit.utils import set_random_seed

from keras_peer import keras, needs_keras

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


def encoder_decoder(lib, input_fn, model_fn, vocab=30, units=6):
    """The encoder-decoder of the Keras RNN guide: the encoder's final states start the decoder."""
    encoder_in = input_fn(shape=(None,), dtype="int32")
    encoded = lib.Embedding(vocab, 8, mask_zero=True)(encoder_in)
    _, h, c = lib.LSTM(units, return_state=True)(encoded)
    decoder_in = input_fn(shape=(None,), dtype="int32")
    decoded = lib.Embedding(vocab, 8)(decoder_in)
    decoded = lib.LSTM(units, return_sequences=True)(decoded, initial_state=[h, c])
    out = lib.Dense(vocab, activation="softmax")(decoded)
    return model_fn([encoder_in, decoder_in], out)


def seq2seq_data(seed=0, n=24, steps=7, vocab=30):
    rng = np.random.default_rng(seed)
    source = rng.integers(1, vocab, (n, steps))
    source[:, :2] = 0  # padding the mask skips
    target_in = rng.integers(1, vocab, (n, steps))
    target_out = np.roll(target_in, -1, axis=1)
    return source, target_in, target_out


def test_an_encoder_decoder_trains_predicts_and_round_trips_through_a_file(tmp_path):
    set_random_seed(0)
    model = encoder_decoder(layers, rnnkit.Input, Model)
    model.compile("adam", "sparse_categorical_crossentropy", metrics=["acc"])
    source, target_in, target_out = seq2seq_data()
    history = model.fit([source, target_in], target_out, epochs=3, batch_size=8, verbose=0)
    assert history.history["loss"][-1] < history.history["loss"][0]
    predicted = model.predict([source, target_in])
    assert predicted.shape == (24, 7, 30)
    path = tmp_path / "seq2seq.rnnkit"
    model.save(path)
    loaded = load_model(path)
    np.testing.assert_array_equal(loaded.predict([source, target_in]), predicted)
    assert [layer.name for layer in loaded.layers] == [layer.name for layer in model.layers]
    assert loaded.evaluate([source, target_in], target_out) == model.evaluate([source, target_in], target_out)


def test_states_and_their_gradients_flow_between_layers():
    """The decoder's loss trains the encoder too: through initial_state, its weights get gradients."""
    set_random_seed(1)
    model = encoder_decoder(layers, rnnkit.Input, Model)
    model.compile("sgd", "sparse_categorical_crossentropy")
    source, target_in, target_out = seq2seq_data(1)
    encoder = next(layer for layer in model.layers if isinstance(layer, layers.LSTM) and layer.return_state)
    before = [w.copy() for w in encoder.get_weights()]
    model.train_on_batch([source, target_in], target_out)
    assert all(not np.array_equal(a, b) for a, b in zip(before, encoder.get_weights()))


def test_several_inputs_and_outputs_with_losses_weights_and_metrics_by_name():
    set_random_seed(2)
    text = rnnkit.Input((9,), dtype="int32", name="text")
    numbers = rnnkit.Input((4,), name="numbers")
    encoded = layers.GRU(5)(layers.Embedding(40, 6)(text))
    merged = layers.Concatenate()([encoded, layers.Dense(3, activation="relu")(numbers)])
    label = layers.Dense(1, activation="sigmoid", name="label")(merged)
    score = layers.Dense(1, name="score")(merged)
    model = Model(inputs=[text, numbers], outputs=[label, score])
    model.compile("rmsprop", loss={"label": "binary_crossentropy", "score": "mse"},
                  loss_weights={"label": 1.0, "score": 0.5}, metrics={"label": ["acc"]})
    rng = np.random.default_rng(3)
    x = {"text": rng.integers(0, 40, (50, 9)), "numbers": rng.standard_normal((50, 4))}
    y = {"label": rng.integers(0, 2, 50), "score": rng.standard_normal(50)}
    history = model.fit(x, y, epochs=2, batch_size=10, validation_split=0.2, verbose=0)
    assert set(history.history) == {"loss", "label_loss", "score_loss", "label_acc", "val_loss",
                                    "val_label_loss", "val_score_loss", "val_label_acc"}
    logs = model.evaluate(x, y, return_dict=True)
    assert logs["loss"] == pytest.approx(logs["label_loss"] + 0.5 * logs["score_loss"], rel=1e-5)
    label_pred, score_pred = model.predict(x)
    assert label_pred.shape == (50, 1) and score_pred.shape == (50, 1)
    assert model.get_layer("label").units == 1 and model.metrics_names[0] == "loss"


def test_an_embedding_feeding_only_a_recurrent_layer_is_fused_in_a_graph_with_the_same_results():
    def build(model_fn, input_fn):
        set_random_seed(4)
        ids = input_fn((11,), dtype="int32")
        out = layers.Dense(1, activation="sigmoid")(layers.LSTM(6)(layers.Embedding(25, 5, mask_zero=True)(ids)))
        return model_fn(ids, out)

    rng = np.random.default_rng(5)
    x, y = rng.integers(0, 25, (40, 11)), rng.integers(0, 2, 40)
    functional = build(Model, rnnkit.Input)
    sequential = Sequential([layers.Embedding(25, 5, mask_zero=True), layers.LSTM(6),
                             layers.Dense(1, activation="sigmoid")])
    sequential.build((11,))
    sequential.set_weights(functional.get_weights())
    for model in (functional, sequential):
        model.compile("rmsprop", "binary_crossentropy")
        model.fit(x, y, epochs=2, batch_size=8, shuffle=False, verbose=0)
    assert functional._graph._fused  # the recurrent node read the ids itself
    for a, b in zip(functional.get_weights(), sequential.get_weights()):
        np.testing.assert_array_equal(a, b)


def test_calling_a_layer_on_an_array_runs_it():
    set_random_seed(6)
    inputs = np.random.default_rng(7).standard_normal((32, 10, 8)).astype(np.float32)
    lstm = layers.LSTM(4)
    assert lstm(inputs).shape == (32, 4)
    whole, h, c = layers.LSTM(4, return_sequences=True, return_state=True)(inputs)
    assert whole.shape == (32, 10, 4) and h.shape == c.shape == (32, 4)


def test_summary_lists_each_layer_with_what_it_is_connected_to():
    model = encoder_decoder(layers, rnnkit.Input, Model)
    lines = []
    model.summary(print_fn=lines.append)
    text = "\n".join(lines)
    assert "Connected to" in text and "initial" not in text
    assert f"Total params: {model.count_params():,}" in text


def test_graph_mistakes_are_clear_errors():
    a = rnnkit.Input((3,))
    dense = layers.Dense(2)
    with pytest.raises(NotImplementedError, match="called more than once"):
        Model(a, layers.Add()([dense(a), dense(a)]))
    b = rnnkit.Input((3,))
    with pytest.raises(ValueError, match="depend on the input"):
        Model(a, layers.Add()([layers.Dense(2)(a), layers.Dense(2)(b)]))
    with pytest.raises(TypeError, match="give inputs and outputs"):
        Model()


@needs_keras
def test_an_encoder_decoder_matches_keras():
    import rnnkit.layers as rl

    keras.utils.set_random_seed(0)
    k = encoder_decoder(keras.layers, keras.Input, keras.Model)
    r = encoder_decoder(rl, rnnkit.Input, Model)
    r.set_weights([np.asarray(w) for w in k.get_weights()])
    source, target_in, target_out = seq2seq_data(8)
    np.testing.assert_allclose(r.predict([source, target_in]), np.asarray(k.predict([source, target_in], verbose=0)),
                               rtol=2e-5, atol=1e-6)
    k.compile("rmsprop", "sparse_categorical_crossentropy", metrics=["acc"])
    r.compile("rmsprop", "sparse_categorical_crossentropy", metrics=["acc"])
    for _ in range(2):
        np.testing.assert_allclose(r.train_on_batch([source, target_in], target_out),
                                   [float(np.asarray(v)) for v in k.train_on_batch([source, target_in], target_out)],
                                   rtol=2e-5, atol=1e-6)
    for mine, theirs in zip(r.get_weights(), k.get_weights()):
        np.testing.assert_allclose(mine, np.asarray(theirs), rtol=1e-4, atol=1e-6)
