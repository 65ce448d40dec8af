""".keras files both ways: rnnkit writes what Keras 3 opens, and reads what Keras 3 wrote (a file Keras
saved is kept under tests/data, so the reader is tested without Keras too); bad files are ValueErrors."""

import io
import json
import re
import zipfile
from pathlib import Path

import numpy as np
import pytest

import rnnkit
from rnnkit.layers import GRU, LSTM, Bidirectional, Concatenate, Dense, Dropout, Embedding, SimpleRNN
from rnnkit.models import load_model

from keras_peer import keras, needs_keras

h5py = pytest.importorskip("h5py")
DATA = Path(__file__).parent / "data"


def ids(seed=0, batch=16, steps=7, vocabulary=20):
    x = np.random.default_rng(seed).integers(1, vocabulary, (batch, steps)).astype(np.int32)
    x[: batch // 4, :3] = 0  # padding for the masks
    return x


def expected_predictions(name):
    """The token ids and the predictions Keras made on them when it wrote the file beside."""
    saved = json.loads((DATA / name).read_text())
    return {"x": np.asarray(saved["x"], np.int32), "y": np.asarray(saved["y"], np.float32)}


def trained_sequential(optimizer="adam"):
    rnnkit.utils.set_random_seed(0)
    model = rnnkit.Sequential([Embedding(20, 4, mask_zero=True), Bidirectional(LSTM(3, return_sequences=True)),
                               GRU(3, return_sequences=True), SimpleRNN(2), Dropout(0.2),
                               Dense(1, activation="sigmoid")])
    model.compile(optimizer, "binary_crossentropy", metrics=["acc"])
    model.fit(ids(), np.arange(16) % 2, epochs=2, batch_size=8, verbose=0)
    return model


def trained_encoder_decoder():
    rnnkit.utils.set_random_seed(0)
    encoder_ids, decoder_x = rnnkit.Input((7,), dtype="int32", name="ids"), rnnkit.Input((5, 3), name="dec")
    _, h, c = LSTM(3, return_state=True)(Embedding(20, 4, mask_zero=True)(encoder_ids))
    sequence = LSTM(3, return_sequences=True)(decoder_x, initial_state=[h, c])
    label = Dense(1, activation="sigmoid", name="label")(Concatenate()([GRU(2)(sequence), h]))
    model = rnnkit.Model([encoder_ids, decoder_x], [label, Dense(2, name="steps")(sequence)])
    model.compile("rmsprop", ["binary_crossentropy", "mse"], metrics=[["acc"], []])
    xs = [ids(), np.random.default_rng(1).standard_normal((16, 5, 3)).astype(np.float32)]
    model.fit(xs, [np.arange(16)[:, None] % 2, np.zeros((16, 5, 2))], epochs=2, batch_size=8, verbose=0)
    return model, xs


def assert_same_optimizer_state(a, b):
    assert a.optimizer.iterations == b.optimizer.iterations
    for x, y in zip(a.optimizer.get_state(), b.optimizer.get_state(), strict=True):
        np.testing.assert_array_equal(x, y)


@needs_keras
@pytest.mark.parametrize("optimizer", ["adam", "rmsprop", "sgd"])
def test_keras_opens_a_sequential_model_rnnkit_saved_and_predicts_the_same(tmp_path, optimizer):
    model = trained_sequential(optimizer)
    model.save(tmp_path / "m.keras")
    theirs = keras.models.load_model(tmp_path / "m.keras")
    np.testing.assert_allclose(theirs.predict(ids(1), verbose=0), model.predict(ids(1), verbose=0), atol=1e-6)
    assert int(theirs.optimizer.iterations.numpy()) == model.optimizer.iterations
    # and back: Keras' own file gives rnnkit the same model, optimizer state included
    theirs.save(tmp_path / "k.keras")
    again = load_model(tmp_path / "k.keras")
    np.testing.assert_allclose(again.predict(ids(1), verbose=0), model.predict(ids(1), verbose=0), atol=1e-6)
    assert_same_optimizer_state(again, model)


@needs_keras
def test_functional_encoder_decoder_round_trips_through_keras(tmp_path):
    model, xs = trained_encoder_decoder()
    model.save(tmp_path / "f.keras")
    theirs = keras.models.load_model(tmp_path / "f.keras")
    for a, b in zip(theirs.predict(xs, verbose=0), model.predict(xs, verbose=0), strict=True):
        np.testing.assert_allclose(a, b, atol=1e-6)
    theirs.save(tmp_path / "k.keras")  # Keras writes the Embedding's mask as a NotEqual node
    again = load_model(tmp_path / "k.keras")
    for a, b in zip(again.predict(xs, verbose=0), model.predict(xs, verbose=0), strict=True):
        np.testing.assert_allclose(a, b, atol=1e-6)
    assert_same_optimizer_state(again, model)


def test_a_model_keras_saved_loads_and_predicts_as_keras_did():
    model = load_model(DATA / "keras3_sequential.keras")
    expected = expected_predictions("keras3_sequential_expected.json")
    np.testing.assert_allclose(model.predict(expected["x"], verbose=0), expected["y"], atol=1e-6)
    assert [type(layer).__name__ for layer in model.layers] == ["Embedding", "Bidirectional", "GRU", "Dropout",
                                                                "Dense"]
    assert model.layers[0].mask_zero and model.optimizer.name == "adam" and model.optimizer.iterations == 6


def test_training_continues_the_same_after_a_keras_file_round_trip(tmp_path):
    model = trained_sequential("adam")
    model.save(tmp_path / "m.keras")
    loaded = load_model(tmp_path / "m.keras")
    assert_same_optimizer_state(loaded, model)
    x, y = ids(2), np.arange(16) % 2
    rnnkit.utils.set_random_seed(5)
    model.fit(x, y, epochs=1, batch_size=8, shuffle=False, verbose=0)
    rnnkit.utils.set_random_seed(5)
    loaded.fit(x, y, epochs=1, batch_size=8, shuffle=False, verbose=0)
    for a, b in zip(model.get_weights(), loaded.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)


def test_rnnkit_files_stay_rnnkit_files(tmp_path):
    model = trained_sequential()
    model.save(tmp_path / "m.rnnkit")
    assert not zipfile.ZipFile(tmp_path / "m.rnnkit").namelist().count("config.json")
    np.testing.assert_array_equal(load_model(tmp_path / "m.rnnkit").predict(ids(), verbose=0),
                                  model.predict(ids(), verbose=0))


# --- bad files ------------------------------------------------------------------------------------


def edited(tmp_path, edit_config=None, edit_weights=None, source=DATA / "keras3_sequential.keras"):
    """A copy of a .keras file with its config.json or model.weights.h5 changed."""
    with zipfile.ZipFile(source) as archive:
        members = {name: archive.read(name) for name in archive.namelist()}
    if edit_config:
        config = json.loads(members["config.json"])
        result = edit_config(config)
        members["config.json"] = (result if isinstance(result, str) else json.dumps(config)).encode()
    if edit_weights:
        buffer = io.BytesIO(members["model.weights.h5"])
        with h5py.File(buffer, "r+") as h5:
            edit_weights(h5)
        members["model.weights.h5"] = buffer.getvalue()
    path = tmp_path / "bad.keras"
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return path


def layer_config(config, class_name):
    return next(entry["config"] for entry in config["config"]["layers"] if entry["class_name"] == class_name)


def test_a_truncated_file_is_refused(tmp_path):
    data = (DATA / "keras3_sequential.keras").read_bytes()
    path = tmp_path / "cut.keras"
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match="cut.keras"):
        load_model(path)


@pytest.mark.parametrize("edit, message", [
    (lambda c: c["config"]["layers"].insert(2, {"module": "keras.layers", "class_name": "Conv2D",
                                                "config": {"name": "conv"}}), "layer 'conv' is a Conv2D"),
    (lambda c: layer_config(c, "GRU").update(reset_after=False), "reset_after=False"),
    (lambda c: layer_config(c, "GRU").update(recurrent_activation="hard_sigmoid"), "recurrent_activation"),
    (lambda c: layer_config(c, "Dense").update(kernel_regularizer={"class_name": "L2"}), "kernel_regularizer"),
    (lambda c: layer_config(c, "Embedding").update(dtype="mixed_float16"), "dtype 'mixed_float16'"),
    (lambda c: c.update(class_name="Bogus"), "'Bogus'"),
    (lambda c: json.dumps(c).replace('"units": 4', '"units": NaN'), "NaN"),
    (lambda c: "[" * 100_000 + "]" * 100_000, "bad.keras"),
    (lambda c: layer_config(c, "Dense").update(units=10**9), "bad.keras"),
])
def test_a_config_rnnkit_cannot_build_is_refused_naming_what(tmp_path, edit, message):
    with pytest.raises(ValueError, match=message):
        load_model(edited(tmp_path, edit_config=edit))


def test_weights_of_the_wrong_shape_or_missing_are_refused(tmp_path):
    def reshape(h5):
        del h5["layers/dense/vars/0"]
        h5["layers/dense/vars/0"] = np.zeros((5, 1), np.float32)  # GRU(4) feeds it: (4, 1)

    with pytest.raises(ValueError, match=r"layers/dense/vars/0 is a float32 array of shape \(5, 1\)"):
        load_model(edited(tmp_path, edit_weights=reshape))

    def drop(h5):
        h5.move("layers/gru/cell/vars/1", "layers/gru/cell/vars/9")

    with pytest.raises(ValueError, match="layers/gru/cell/vars/1 .* is missing"):
        load_model(edited(tmp_path, edit_weights=drop))

    def shrink(h5):  # fewer numbers than the layers need: refused before they are built
        del h5["layers/embedding/vars/0"]
        h5["layers/embedding/vars/0"] = np.zeros((2, 6), np.float32)

    with pytest.raises(ValueError, match="more than the file holds"):
        load_model(edited(tmp_path, edit_weights=shrink))


def test_writing_a_layer_keras_files_do_not_hold_names_it(tmp_path):
    model = rnnkit.Sequential([rnnkit.layers.TextVectorization(vocabulary=["a"]), Embedding(3, 2), LSTM(2)])
    with pytest.raises(ValueError, match="TextVectorization"):
        model.save(tmp_path / "t.keras")
    assert not (tmp_path / "t.keras").exists()


def test_without_h5py_the_error_names_the_extra(tmp_path, monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "h5py", None)
    with pytest.raises(ImportError, match=r"rnnkit\[keras\]"):
        trained_sequential().save(tmp_path / "m.keras")


# --- weights-only files: Keras 2's .h5 and Keras 3's .weights.h5 -----------------------------------


def legacy_architecture():
    model = rnnkit.Sequential([Embedding(30, 5, mask_zero=True), Bidirectional(LSTM(4, return_sequences=True)),
                               GRU(3), Dropout(0.3), Dense(1, activation="sigmoid")])
    model.build((8,))
    return model


def test_weights_of_a_keras_h5_file_load_by_layer_order():
    model = legacy_architecture()
    model.load_weights(DATA / "keras_legacy.h5")  # written by Keras' HDF5 (Keras 2) writer
    expected = expected_predictions("keras_legacy_expected.json")
    np.testing.assert_allclose(model.predict(expected["x"], verbose=0), expected["y"], atol=1e-6)


def test_a_tf_keras_2_weights_file_with_its_variable_names(tmp_path):
    """tf.keras 2 names each array 'layer/cell/kernel:0' and lists them in weight_names, layer by layer."""
    source = legacy_architecture()
    with_weights = [w + 1.0 for w in source.get_weights()]
    source.set_weights(with_weights)
    path = tmp_path / "tf_keras2.h5"
    with h5py.File(path, "w") as h5:
        h5.attrs["layer_names"] = [layer.name.encode() for layer in source.layers]
        for layer in source.layers:
            group = h5.create_group(layer.name)
            names = [f"{layer.name}/{name.replace('/', '_')}:0" for name in layer.params]
            group.attrs["weight_names"] = [n.encode() for n in names]
            for name, array in zip(names, layer.params.values()):
                group.create_dataset(name, data=array)
    model = legacy_architecture()
    model.load_weights(path)
    for a, b in zip(model.get_weights(), with_weights, strict=True):
        np.testing.assert_array_equal(a, b)


def test_weights_that_do_not_fit_the_model_are_refused():
    other = rnnkit.Sequential([Embedding(30, 5), LSTM(4), Dense(1)])
    other.build((8,))
    with pytest.raises(ValueError, match="holds the weights of 4 layers .* has 3 with weights"):
        other.load_weights(DATA / "keras_legacy.h5")
    narrower = rnnkit.Sequential([Embedding(30, 5), Bidirectional(LSTM(4, return_sequences=True)), GRU(2), Dropout(0.3),
                                  Dense(1)])
    narrower.build((8,))
    with pytest.raises(ValueError, match="weight 'kernel' of layer 'gru.*' is float32 \\(8, 6\\)"):
        narrower.load_weights(DATA / "keras_legacy.h5")


@needs_keras
def test_keras_3_weights_files_both_ways(tmp_path):
    model = trained_sequential()
    theirs = keras.models.clone_model(keras.models.load_model(_saved(model, tmp_path)))
    model.save_weights(tmp_path / "ours.weights.h5")
    theirs.load_weights(tmp_path / "ours.weights.h5")
    np.testing.assert_allclose(theirs.predict(ids(3), verbose=0), model.predict(ids(3), verbose=0), atol=1e-6)
    theirs.set_weights([w * 0.5 for w in theirs.get_weights()])
    theirs.save_weights(tmp_path / "theirs.weights.h5")
    model.load_weights(tmp_path / "theirs.weights.h5")
    np.testing.assert_allclose(model.predict(ids(3), verbose=0), theirs.predict(ids(3), verbose=0), atol=1e-6)


def _saved(model, tmp_path):
    model.save(tmp_path / "m.keras")
    return tmp_path / "m.keras"


@needs_keras
def test_convolution_pooling_and_time_distributed_layers_round_trip(tmp_path):
    from rnnkit.layers import Conv1D, Flatten, MaxPooling1D, TimeDistributed

    rnnkit.utils.set_random_seed(0)
    model = rnnkit.Sequential([Embedding(20, 4), Conv1D(3, 3, padding="causal", activation="relu"), MaxPooling1D(2),
                               GRU(3, return_sequences=True), TimeDistributed(Dense(2)), Flatten()])
    model.build((8,))
    model.set_weights([w + 0.1 for w in model.get_weights()])
    # Keras' names, numbered from the second layer of a class made in this process
    assert re.fullmatch(r"conv1d(_\d+)?", model.layers[1].name)
    assert re.fullmatch(r"max_pooling1d(_\d+)?", model.layers[2].name)
    model.save(tmp_path / "c.keras")
    theirs = keras.models.load_model(tmp_path / "c.keras")
    np.testing.assert_allclose(theirs.predict(ids(4, steps=8), verbose=0), model.predict(ids(4, steps=8), verbose=0),
                               atol=1e-6)
    theirs.save(tmp_path / "k.keras")
    again = load_model(tmp_path / "k.keras")
    np.testing.assert_allclose(again.predict(ids(4, steps=8), verbose=0), model.predict(ids(4, steps=8), verbose=0),
                               atol=1e-6)
