"""The book chapter's other layers: Dropout, SpatialDropout1D, Flatten, Conv1D, MaxPooling1D, the global
poolings, TimeDistributed, Activation, Concatenate and Add. Each backward against finite differences;
outputs and training against Keras where it is installed."""

import numpy as np
import pytest

import rnnkit
import rnnkit.layers as rl
from rnnkit.models import Model, Sequential, load_model
from rnnkit.utils import set_random_seed

from keras_peer import keras, needs_keras
from test_layer_gradients import check_layer

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


def built(layer, shape):
    set_random_seed(1)
    layer.ensure_built(shape[1:])
    for w in layer.params.values():
        w[...] = np.random.default_rng(2).standard_normal(w.shape) * 0.5
    return layer


def sequence(shape, seed=3):
    return np.random.default_rng(seed).standard_normal(shape)


@pytest.mark.parametrize("padding", ["valid", "same", "causal"])
@pytest.mark.parametrize("strides, dilation", [(1, 1), (2, 1), (1, 2)])
def test_conv1d_backward_matches_finite_differences(padding, strides, dilation):
    if padding == "causal" and strides > 1:
        pytest.skip("Keras' causal padding is for strides 1")
    layer = built(rl.Conv1D(3, 3, strides=strides, padding=padding, dilation_rate=dilation, activation="tanh",
                            dtype="float64"), (2, 9, 4))
    check_layer(layer, sequence((2, 9, 4)))


@pytest.mark.parametrize("layer", [
    rl.MaxPooling1D(2), rl.MaxPooling1D(3, strides=2, padding="same"), rl.GlobalMaxPooling1D(),
    rl.GlobalAveragePooling1D(), rl.GlobalAveragePooling1D(keepdims=True), rl.Flatten(), rl.Activation("softmax"),
    rl.TimeDistributed(rl.Dense(2, activation="sigmoid")),
], ids=lambda layer: type(layer).__name__)
def test_pooling_reshaping_and_wrappers_backward_match_finite_differences(layer):
    layer.dtype = "float64"
    if isinstance(layer, rl.TimeDistributed):
        layer.layer.dtype = "float64"
    check_layer(built(layer, (2, 7, 3)), sequence((2, 7, 3)))


def test_merging_layers_pass_each_input_its_gradient():
    a, b = sequence((4, 3), 1), sequence((4, 2), 2)
    concatenate = rl.Concatenate()
    out = concatenate.forward([a, b])
    np.testing.assert_allclose(out, np.concatenate([a, b], axis=-1), rtol=1e-7)  # in the layer's float32
    da, db = concatenate.backward(np.arange(20.0).reshape(4, 5))
    np.testing.assert_array_equal(da, np.arange(20.0).reshape(4, 5)[:, :3])
    add = rl.Add()
    np.testing.assert_allclose(add.forward([a, a, a]), 3 * a, rtol=1e-6)
    assert len(add.backward(np.ones((4, 3)))) == 3


def test_global_average_pooling_averages_the_real_steps_under_a_mask():
    x = sequence((2, 4, 3))
    mask = np.array([[True, True, False, False], [True, True, True, True]])
    out = rl.GlobalAveragePooling1D().forward(x, mask=mask)
    np.testing.assert_allclose(out[0], x[0, :2].mean(axis=0))
    np.testing.assert_allclose(out[1], x[1].mean(axis=0))


def test_dropout_scales_kept_units_in_training_and_passes_through_at_inference():
    x = np.ones((200, 50))
    set_random_seed(0)
    dropped = rl.Dropout(0.4).forward(x, training=True)
    assert set(np.unique(dropped)) == {0.0, np.float32(1 / 0.6)} and abs((dropped == 0).mean() - 0.4) < 0.02
    np.testing.assert_array_equal(rl.Dropout(0.4).forward(x, training=False), x)
    channels = rl.SpatialDropout1D(0.5).forward(np.ones((3, 6, 8)), training=True)
    assert (channels == channels[:, :1, :]).all()  # a channel is dropped at every step or at none


def test_a_conv1d_gru_model_and_a_time_distributed_tagger_train_save_and_load(tmp_path):
    set_random_seed(4)
    rng = np.random.default_rng(4)
    x = rng.standard_normal((40, 30, 2)).astype(np.float32)
    y = x[:, :, 0].mean(axis=1, keepdims=True)
    model = Sequential([rl.Conv1D(8, 5, activation="relu", input_shape=(None, 2)), rl.MaxPooling1D(3),
                        rl.Conv1D(8, 5, activation="relu"), rl.GRU(8, dropout=0.1), rl.Dense(1)])
    model.compile("rmsprop", "mae")
    history = model.fit(x, y, epochs=4, batch_size=8, verbose=0)
    assert history.history["loss"][-1] < history.history["loss"][0]
    model.save(tmp_path / "conv.rnnkit")
    np.testing.assert_array_equal(load_model(tmp_path / "conv.rnnkit").predict(x), model.predict(x))

    ids = rnnkit.Input((12,), dtype="int32")
    tags = rl.TimeDistributed(rl.Dense(4, activation="softmax"))(rl.LSTM(6, return_sequences=True)(
        rl.Embedding(30, 5, mask_zero=True)(ids)))
    tagger = Model(ids, tags)
    tagger.compile("adam", "sparse_categorical_crossentropy", metrics=["acc"])
    words = rng.integers(1, 30, (50, 12))
    words[:, :3] = 0
    tagger.fit(words, words % 4, epochs=2, batch_size=10, verbose=0)
    tagger.save(tmp_path / "tagger.rnnkit")
    np.testing.assert_array_equal(load_model(tmp_path / "tagger.rnnkit").predict(words), tagger.predict(words))


@needs_keras
def test_conv1d_gru_and_pooling_match_keras():
    def build(lib, input_layer):
        return [input_layer, lib.Conv1D(6, 4, activation="relu", padding="causal", dilation_rate=2),
                lib.MaxPooling1D(2), lib.Conv1D(5, 3, strides=2, padding="same"), lib.SpatialDropout1D(0.2),
                lib.GRU(4, return_sequences=True), lib.GlobalMaxPooling1D(), lib.Dropout(0.3), lib.Dense(1)]

    keras.utils.set_random_seed(0)
    k = keras.Sequential(build(keras.layers, keras.Input((24, 3))))
    r = Sequential(build(rl, rl.Input((24, 3)))[1:])
    r.build((24, 3))
    r.set_weights([np.asarray(w) for w in k.get_weights()])
    x = sequence((10, 24, 3), 9).astype(np.float32)
    np.testing.assert_allclose(r.predict(x), np.asarray(k.predict(x, verbose=0)), rtol=2e-5, atol=1e-6)
    x2 = sequence((10, 24, 3), 10).astype(np.float32)
    out_k, out_r = np.asarray(k.predict(x2, verbose=0)), r.predict(x2)
    np.testing.assert_allclose(out_r, out_k, rtol=2e-5, atol=1e-6)


@needs_keras
def test_time_distributed_flatten_and_merges_match_keras():
    def build(lib, input_fn, model_fn):
        a = input_fn((6, 4))
        b = input_fn((6, 4))
        seq = lib.Concatenate()([lib.TimeDistributed(lib.Dense(3, activation="tanh"))(a), b])
        summed = lib.Add()([lib.LSTM(5, return_sequences=True)(seq), lib.TimeDistributed(lib.Dense(5))(b)])
        out = lib.Dense(2, activation="softmax")(lib.Flatten()(lib.Activation("relu")(summed)))
        return model_fn([a, b], out)

    keras.utils.set_random_seed(1)
    k = build(keras.layers, keras.Input, keras.Model)
    r = build(rl, rnnkit.Input, Model)
    r.set_weights([np.asarray(w) for w in k.get_weights()])
    xs = [sequence((8, 6, 4), 11).astype(np.float32), sequence((8, 6, 4), 12).astype(np.float32)]
    np.testing.assert_allclose(r.predict(xs), np.asarray(k.predict(xs, verbose=0)), rtol=2e-5, atol=1e-6)
    y = np.arange(8) % 2
    k.compile("rmsprop", "sparse_categorical_crossentropy", metrics=["acc"])
    r.compile("rmsprop", "sparse_categorical_crossentropy", metrics=["acc"])
    np.testing.assert_allclose(r.train_on_batch(xs, y), [float(np.asarray(v)) for v in k.train_on_batch(xs, y)],
                               rtol=2e-5, atol=1e-6)
    for mine, theirs in zip(r.get_weights(), k.get_weights()):
        np.testing.assert_allclose(mine, np.asarray(theirs), rtol=1e-4, atol=1e-6)
