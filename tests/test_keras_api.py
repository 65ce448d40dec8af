"""What Keras users write beyond the tutorial: top-level spellings, relu/linear recurrent layers,
initializer objects, fit over generators and datasets with class and sample weights, gradient clipping,
more callbacks, and clear errors for what rnnkit does not support. Compared with Keras where installed."""

import csv

import numpy as np
import pytest

import rnnkit
import rnnkit.layers as rl
from rnnkit import initializers
from rnnkit.callbacks import CSVLogger, LambdaCallback, ReduceLROnPlateau
from rnnkit.models import Sequential, load_model
from rnnkit.optimizers import SGD, RMSprop
from rnnkit.utils import set_random_seed

from keras_peer import keras, needs_keras

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


def classifier(units=4, optimizer="rmsprop", metrics=("acc",)):
    set_random_seed(0)
    model = rnnkit.Sequential([rl.Embedding(20, 4), rl.GRU(units), rl.Dense(1, activation="sigmoid")])
    model.compile(optimizer, "binary_crossentropy", metrics=list(metrics))
    return model


def ids(n=40, seed=1):
    rng = np.random.default_rng(seed)
    x = rng.integers(1, 20, (n, 6))
    return x, (x[:, 0] > 10).astype(np.int64)


def test_top_level_spellings_and_model_attributes():
    assert rnnkit.Sequential is Sequential and rnnkit.layers is rl and callable(rnnkit.Input)
    np.testing.assert_array_equal(rnnkit.utils.pad_sequences([[1, 2], [3]], maxlen=3), [[0, 1, 2], [0, 0, 3]])
    np.testing.assert_array_equal(rnnkit.utils.to_categorical([0, 2, 1]), np.eye(3)[[0, 2, 1]])
    model = classifier()
    model.build((6,))
    assert model.get_layer(model.layers[1].name) is model.layers[1] and model.get_layer(index=-1) is model.layers[-1]
    assert len(model.trainable_weights) == 1 + 3 + 2 and model.metrics_names[0] == "loss"
    x, y = ids()
    model.fit(x, y, epochs=1, verbose=0)
    assert model.metrics_names == ["loss", "acc"]


def test_relu_and_linear_recurrent_layers_train_and_save(tmp_path):
    set_random_seed(2)
    rng = np.random.default_rng(2)
    x = rng.standard_normal((32, 12, 3)).astype(np.float32)
    y = x[:, -4:, 0].sum(axis=1)
    model = Sequential([rl.GRU(8, dropout=0.1, recurrent_dropout=0.3, return_sequences=True, input_shape=(None, 3)),
                        rl.GRU(8, activation="relu", dropout=0.1, recurrent_dropout=0.3), rl.Dense(1)])
    model.compile("rmsprop", "mae")
    history = model.fit(x, y, epochs=5, batch_size=8, verbose=0)
    assert history.history["loss"][-1] < history.history["loss"][0]
    model.save(tmp_path / "m.rnnkit")
    loaded = load_model(tmp_path / "m.rnnkit")
    assert loaded.layers[1].activation == "relu"
    np.testing.assert_array_equal(loaded.predict(x), model.predict(x))


@needs_keras
@pytest.mark.parametrize("cell, activation", [("GRU", "relu"), ("GRU", "linear"), ("SimpleRNN", "relu"),
                                              ("SimpleRNN", "linear")])
def test_relu_and_linear_recurrent_layers_match_keras(cell, activation):
    def build(lib):
        return [getattr(lib, cell)(6, activation=activation, return_sequences=True),
                getattr(lib, cell)(5, activation=activation), lib.Dense(1)]

    keras.utils.set_random_seed(3)
    k = keras.Sequential([keras.Input((9, 3))] + build(keras.layers))
    r = Sequential(build(rl))
    r.build((9, 3))
    r.set_weights([np.asarray(w) for w in k.get_weights()])
    x = np.random.default_rng(4).standard_normal((7, 9, 3)).astype(np.float32)
    y = np.random.default_rng(5).standard_normal((7, 1)).astype(np.float32)
    np.testing.assert_allclose(r.predict(x), np.asarray(k.predict(x, verbose=0)), rtol=2e-5, atol=1e-6)
    k.compile("rmsprop", "mse")
    r.compile("rmsprop", "mse")
    assert r.train_on_batch(x, y) == pytest.approx(float(np.asarray(k.train_on_batch(x, y))), rel=2e-5)
    for mine, theirs in zip(r.get_weights(), k.get_weights()):
        np.testing.assert_allclose(mine, np.asarray(theirs), rtol=1e-4, atol=1e-6)


def test_initializers_by_object_and_name_follow_keras_formulas():
    shape = (200, 300)
    assert np.std(initializers.get("he_normal")(shape)) == pytest.approx(np.sqrt(2 / 200), rel=0.05)
    assert np.abs(initializers.get("he_uniform")(shape)).max() <= np.sqrt(6 / 200)
    assert np.std(initializers.get("lecun_normal")(shape)) == pytest.approx(np.sqrt(1 / 200), rel=0.05)
    assert np.abs(initializers.TruncatedNormal(stddev=1.0)((5000,))).max() <= 2.0
    seeded = initializers.GlorotUniform(seed=7)
    np.testing.assert_array_equal(seeded((3, 4)), seeded((3, 4)))
    conv = initializers.get("glorot_uniform")((5, 3, 8))  # fans of a conv kernel: 15 in, 40 out
    assert np.abs(conv).max() <= np.sqrt(6 / (15 + 40))
    layer = rl.Dense(3, kernel_initializer=initializers.RandomNormal(stddev=0.5, seed=1),
                     bias_initializer=initializers.Constant(0.25))
    restored = rl.Dense.from_config(layer.get_config())
    for built in (layer, restored):
        built.ensure_built((4,))
    np.testing.assert_array_equal(layer.params["kernel"], restored.params["kernel"])
    assert (restored.params["bias"] == 0.25).all()


def test_class_weight_is_sample_weight_by_class():
    x, y = ids()
    a, b = classifier(), classifier()
    a.fit(x, y, epochs=2, batch_size=8, shuffle=False, class_weight={0: 1.0, 1: 3.0}, verbose=0)
    b.fit(x, y, epochs=2, batch_size=8, shuffle=False, sample_weight=np.where(y == 1, 3.0, 1.0), verbose=0)
    for u, v in zip(a.get_weights(), b.get_weights()):
        np.testing.assert_array_equal(u, v)


class Batches:
    """A dataset of batches, as keras.utils.PyDataset: __len__ and __getitem__ (and on_epoch_end)."""

    def __init__(self, x, y, batch_size):
        self.x, self.y, self.batch_size, self.epochs_ended = x, y, batch_size, 0

    def __len__(self):
        return -(-len(self.x) // self.batch_size)

    def __getitem__(self, i):
        rows = slice(i * self.batch_size, (i + 1) * self.batch_size)
        return self.x[rows], self.y[rows]

    def on_epoch_end(self):
        self.epochs_ended += 1


def test_generators_and_datasets_train_as_the_same_batches_from_arrays():
    x, y = ids(48)

    def generator():
        while True:
            for i in range(0, 48, 8):
                yield x[i : i + 8], y[i : i + 8]

    from_arrays, from_generator, from_dataset = classifier(), classifier(), classifier()
    from_arrays.fit(x, y, epochs=3, batch_size=8, shuffle=False, validation_data=(x[:16], y[:16]), verbose=0)
    gen_history = from_generator.fit(generator(), steps_per_epoch=6, epochs=3, validation_data=generator(),
                                     validation_steps=2, verbose=0)
    dataset = Batches(x, y, 8)
    from_dataset.fit(dataset, epochs=3, shuffle=False, validation_data=Batches(x[:16], y[:16], 8), verbose=0)
    for other in (from_generator, from_dataset):
        for u, v in zip(from_arrays.get_weights(), other.get_weights()):
            np.testing.assert_array_equal(u, v)
    assert dataset.epochs_ended == 3 and len(gen_history.history["val_loss"]) == 3
    np.testing.assert_array_equal(from_dataset.predict(Batches(x, y, 8)), from_arrays.predict(x))
    assert from_dataset.evaluate(Batches(x, y, 8)) == pytest.approx(from_arrays.evaluate(x, y, batch_size=8))


def test_fit_shuffles_the_order_of_a_datasets_batches_each_epoch_as_keras_does():
    x, y = ids(48)

    class Recorded(Batches):
        def __getitem__(self, i):
            self.seen.append(i)
            return super().__getitem__(i)

    def epochs_seen(seed):
        set_random_seed(seed)
        dataset = Recorded(x, y, 8)
        dataset.seen = []
        classifier().fit(dataset, epochs=3, verbose=0)
        return [dataset.seen[i : i + 6] for i in range(0, 18, 6)]

    seen = epochs_seen(3)
    assert all(sorted(epoch) == list(range(6)) for epoch in seen)
    assert len({tuple(epoch) for epoch in seen}) > 1 and seen[0] != list(range(6))
    assert epochs_seen(3) == seen


def test_a_finite_generator_without_steps_trains_one_pass():
    x, y = ids(24)
    model = classifier()
    history = model.fit(((x[i : i + 8], y[i : i + 8]) for i in range(0, 24, 8)), epochs=3, verbose=0)
    assert len(history.history["loss"]) == 1


def test_gradient_clipping_limits_each_update():
    x, y = ids()
    for optimizer, check in ((SGD(1.0, clipvalue=1e-3), "value"), (SGD(1.0, clipnorm=1e-3), "norm")):
        model = classifier(optimizer=optimizer, metrics=())
        model.build((6,))
        before = model.get_weights()
        model.train_on_batch(x, y)
        for old, new in zip(before, model.get_weights()):
            step = old - new
            if check == "value":
                assert np.abs(step).max() <= 1e-3 + 1e-9
            else:
                assert np.sqrt(np.sum(step.astype(np.float64) ** 2)) <= 1e-3 * (1 + 1e-5)
    with pytest.raises(ValueError, match="only one of clipnorm, clipvalue and global_clipnorm"):
        SGD(clipnorm=1.0, clipvalue=1.0)


def keras_twins(cell, seed):
    """Embedding -> cell -> Dense classifiers in Keras and rnnkit with the same weights."""
    keras.utils.set_random_seed(seed)

    def stack(lib):
        return [lib.Embedding(20, 4), getattr(lib, cell)(4), lib.Dense(1, activation="sigmoid")]

    k = keras.Sequential([keras.Input((6,), dtype="int32")] + stack(keras.layers))
    r = Sequential(stack(rl))
    r.build((6,))
    r.set_weights([np.asarray(w) for w in k.get_weights()])
    return k, r


@needs_keras
@pytest.mark.parametrize("clip", [{"clipnorm": 0.01}, {"clipvalue": 0.002}, {"global_clipnorm": 0.02}])
def test_gradient_clipping_matches_keras(clip):
    k, r = keras_twins("GRU", 6)
    k.compile(keras.optimizers.RMSprop(0.01, **clip), "binary_crossentropy")
    r.compile(RMSprop(0.01, **clip), "binary_crossentropy")
    x, y = ids()
    for _ in range(2):
        k.train_on_batch(x.astype(np.int32), y.astype(np.float32))
        r.train_on_batch(x, y)
    for mine, theirs in zip(r.get_weights(), k.get_weights()):
        np.testing.assert_allclose(mine, np.asarray(theirs), rtol=1e-4, atol=1e-6)


@needs_keras
def test_sample_and_class_weights_match_keras():
    k, r = keras_twins("LSTM", 7)
    for model in (k, r):  # metrics see no sample weights, weighted_metrics do
        model.compile("rmsprop", "binary_crossentropy", metrics=["acc"], weighted_metrics=["binary_accuracy"])
    x, y = ids(32, 8)
    weights = np.random.default_rng(9).uniform(0.2, 2.0, 32).astype(np.float32)
    for weighting in ({"sample_weight": weights}, {"class_weight": {0: 0.5, 1: 2.0}}):
        theirs = k.train_on_batch(x.astype(np.int32), y.astype(np.float32), **weighting)
        np.testing.assert_allclose(r.train_on_batch(x, y, **weighting), [float(np.asarray(v)) for v in theirs],
                                   rtol=2e-5, atol=1e-6)
    for mine, theirs in zip(r.get_weights(), k.get_weights()):
        np.testing.assert_allclose(mine, np.asarray(theirs), rtol=1e-4, atol=1e-6)


@needs_keras
def test_a_generator_and_a_py_dataset_train_as_in_keras():
    x, y = ids(48, 8)
    x32, y32 = x.astype(np.int32), y.astype(np.float32)

    class KerasBatches(keras.utils.PyDataset):
        def __len__(self):
            return 6

        def __getitem__(self, i):
            return x32[i * 8 : (i + 1) * 8], y32[i * 8 : (i + 1) * 8]

    def generator(xs, ys, samples=48):
        while True:
            for i in range(0, samples, 8):
                yield xs[i : i + 8], ys[i : i + 8]

    for source in ("generator", "dataset"):
        k, r = keras_twins("GRU", 8)
        for model in (k, r):
            model.compile(optimizer="sgd", loss="binary_crossentropy", metrics=["acc"])
        if source == "generator":
            # The validation generator cycles over as many batches as validation_steps: Keras 3 replays the
            # batches it peeked at from each validation's start, rnnkit (as Keras 2) continues the generator.
            theirs = k.fit(generator(x32, y32), steps_per_epoch=6, epochs=2, shuffle=False, verbose=0,
                           validation_data=generator(x32, y32, 16), validation_steps=2).history
            mine = r.fit(generator(x, y), steps_per_epoch=6, epochs=2, verbose=0,
                         validation_data=generator(x, y, 16), validation_steps=2).history
        else:
            theirs = k.fit(KerasBatches(), epochs=2, shuffle=False, verbose=0).history
            mine = r.fit(Batches(x, y, 8), epochs=2, shuffle=False, verbose=0).history
        assert set(mine) == set(theirs)
        for key in theirs:
            np.testing.assert_allclose(mine[key], theirs[key], rtol=1e-5, atol=1e-6, err_msg=f"{source} {key}")
        for u, v in zip(r.get_weights(), k.get_weights()):
            np.testing.assert_allclose(u, np.asarray(v), rtol=1e-4, atol=1e-6)


def test_reduce_lr_on_plateau_lambda_callback_and_csv_logger(tmp_path):
    x, y = ids()
    model = classifier(optimizer=SGD(1e-9))  # nothing improves
    calls = []
    log = tmp_path / "log.csv"
    history = model.fit(x, y, epochs=5, verbose=0, validation_split=0.25,
                        callbacks=[ReduceLROnPlateau(monitor="loss", factor=0.5, patience=2, min_delta=1.0),
                                   LambdaCallback(on_epoch_end=lambda epoch, logs: calls.append(epoch)),
                                   CSVLogger(log)])
    # the rate each epoch ran with (Keras logs it before reducing): reduced after epochs 3 and 5
    assert history.history["learning_rate"] == pytest.approx([1e-9, 1e-9, 1e-9, 5e-10, 5e-10])
    assert model.optimizer.learning_rate == pytest.approx(2.5e-10)
    assert calls == [0, 1, 2, 3, 4]
    rows = list(csv.DictReader(open(log)))
    assert [int(r["epoch"]) for r in rows] == [0, 1, 2, 3, 4]
    assert {"loss", "acc", "val_loss", "val_acc", "learning_rate"} <= set(rows[0])


def test_what_rnnkit_does_not_support_is_named_with_the_alternative():
    with pytest.raises(ValueError, match="stateful=True is not supported; carry states"):
        rl.LSTM(4, stateful=True)
    with pytest.raises(ValueError, match=r"time_major=True is not supported.*np.swapaxes"):
        rl.GRU(4, time_major=True)
    with pytest.raises(TypeError, match="`lr` is Keras 2's name"):
        RMSprop(lr=0.01)
    with pytest.raises(ValueError, match="rnnkit needs a loss with its gradient"):
        Sequential([rl.Dense(1)]).compile(loss=lambda y_true, y_pred: y_pred)
    with pytest.raises(NotImplementedError, match="does not share a layer"):
        shared = rl.LSTM(4)
        a, b = rnnkit.Input((5, 3)), rnnkit.Input((5, 3))
        rnnkit.Model([a, b], rl.Concatenate()([shared(a), shared(b)]))

    class Subclassed(rnnkit.Model):
        def __init__(self):
            super().__init__()
            self.dense = rl.Dense(1)

        def call(self, x):
            return self.dense(x)

    with pytest.raises(TypeError, match="does not support subclassing Model"):
        Subclassed()
