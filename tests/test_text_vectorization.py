"""TextVectorization against Keras' documented behaviour (its docstring's examples, its standardize and
split rules, its vocabulary order), as a model's first layer, saved and loaded with the model."""

import time

import numpy as np
import pytest

import rnnkit
from rnnkit.layers import LSTM, Dense, Embedding, TextVectorization


def test_keras_docstring_example_adapted_vocabulary():
    layer = TextVectorization(max_tokens=5000, output_mode="int", output_sequence_length=4)
    layer.adapt(["foo bar", "bar baz", "baz bada boom"])
    np.testing.assert_array_equal(layer([["foo qux bar"], ["qux baz"]]), [[4, 1, 3, 0], [1, 2, 0, 0]])


def test_keras_docstring_example_given_vocabulary():
    layer = TextVectorization(max_tokens=5000, output_sequence_length=4, vocabulary=["earth", "wind", "and", "fire"])
    assert layer.get_vocabulary() == ["", "[UNK]", "earth", "wind", "and", "fire"]
    assert layer.get_vocabulary(include_special_tokens=False) == ["earth", "wind", "and", "fire"]
    assert layer.vocabulary_size() == 6
    np.testing.assert_array_equal(layer(["Earth, wind and FIRE!", "fire and earth michigan"]),
                                  [[2, 3, 4, 5], [5, 4, 2, 1]])


def test_vocabulary_is_ordered_by_count_then_by_token_in_reverse_and_capped_by_max_tokens():
    layer = TextVectorization(max_tokens=5)
    layer.adapt(["b a c", "a b d", "a e"])  # a 3, b 2, then c d e once each: e, d, c
    assert layer.get_vocabulary() == ["", "[UNK]", "a", "b", "e"]


def test_standardize_lowercases_ascii_only_and_strips_keras_punctuation():
    layer = TextVectorization(vocabulary=["dont", "émile", "Émile", "café", "a-b"])  # the default standardize
    # tf.strings.lower lowercases ASCII letters only; the apostrophe and '-' are punctuation, '…' is not
    assert layer.tokenize(["DON'T Émile CAFÉ a-b…"]) == [["dont", "Émile", "cafÉ", "ab…"]]
    np.testing.assert_array_equal(layer(["DON'T Émile"]), [[2, 4]])
    assert TextVectorization(standardize="lower").tokenize(["It's OK."]) == [["it's", "ok."]]
    assert TextVectorization(standardize="strip_punctuation").tokenize(["It's OK."]) == [["Its", "OK"]]
    assert TextVectorization(standardize=None).tokenize(["It's OK."]) == [["It's", "OK."]]


def test_split_whitespace_collapses_runs_of_ascii_whitespace_only():
    layer = TextVectorization(standardize=None)
    assert layer.tokenize(["  a\t\tb\n c\u00a0d  "]) == [["a", "b", "c\u00a0d"]]
    assert TextVectorization(standardize=None, split="character").tokenize(["ab c"]) == [["a", "b", " ", "c"]]
    assert TextVectorization(standardize=None, split=None).tokenize(["ab c"]) == [["ab c"]]


def test_without_output_sequence_length_the_batch_pads_to_its_longest_text_at_the_end():
    layer = TextVectorization(vocabulary=["a", "b"])
    np.testing.assert_array_equal(layer(["a", "b b a", ""]), [[2, 0, 0], [3, 3, 2], [0, 0, 0]])
    assert layer(["a"]).dtype == np.int64


def test_output_sequence_length_keeps_the_first_tokens():
    layer = TextVectorization(vocabulary=["a", "b"], output_sequence_length=2)
    np.testing.assert_array_equal(layer(["a b a b", "b"]), [[2, 3], [3, 0]])


def test_bytes_are_read_as_utf8_and_other_inputs_are_refused():
    layer = TextVectorization(vocabulary=["é"])
    np.testing.assert_array_equal(layer([b"\xc3\xa9"]), [[2]])
    with pytest.raises(ValueError, match="text 0 is not valid UTF-8"):
        layer([b"\xff"])
    with pytest.raises(TypeError, match="expected strings, got int"):
        layer([3])
    with pytest.raises(ValueError, match=r"shape \(batch,\) or \(batch, 1\), got shape \(1, 2\)"):
        layer([["a", "b"]])


def test_vocabulary_given_with_special_tokens_a_file_or_repeated():
    assert TextVectorization(vocabulary=["", "[UNK]", "x"]).get_vocabulary() == ["", "[UNK]", "x"]
    with pytest.raises(ValueError, match="repeats"):
        TextVectorization(vocabulary=["x", "y", "x"])
    with pytest.raises(ValueError, match="it may only come first"):
        TextVectorization(vocabulary=["x", "[UNK]"])
    with pytest.raises(ValueError, match="more than max_tokens=3"):
        TextVectorization(max_tokens=3, vocabulary=["x", "y"])


def test_vocabulary_file_one_token_per_line(tmp_path):
    path = tmp_path / "vocab.txt"
    path.write_text("earth\nwind\n", encoding="utf-8")
    assert TextVectorization(vocabulary=str(path)).get_vocabulary() == ["", "[UNK]", "earth", "wind"]
    path.write_bytes(b"ok\n\xff\n")
    with pytest.raises(ValueError, match="cannot read the vocabulary file"):
        TextVectorization(vocabulary=path)


@pytest.mark.parametrize("option", [dict(output_mode="multi_hot"), dict(output_mode="tf_idf"), dict(ngrams=2),
                                    dict(pad_to_max_tokens=True), dict(sparse=True), dict(ragged=True),
                                    dict(standardize=str.lower), dict(split=str.split)])
def test_other_modes_raise_not_implemented(option):
    with pytest.raises(NotImplementedError, match="TextVectorization"):
        TextVectorization(**option)


def separable_texts(n, seed=0):
    rng = np.random.default_rng(seed)
    good, bad, filler = ["great", "superb", "wonderful"], ["awful", "boring", "dreadful"], ["the", "film", "plot"]
    labels = rng.integers(0, 2, n)
    texts = [" ".join(rng.choice((good if y else bad) + filler, 6)) for y in labels]
    return np.array(texts), labels.astype(np.float32)


def test_a_model_reads_raw_text_trains_and_predicts_strings(tmp_path):
    texts, labels = separable_texts(256)
    vectorize = TextVectorization(max_tokens=20, output_sequence_length=6)
    vectorize.adapt(texts)
    model = rnnkit.Sequential([vectorize, Embedding(20, 8), LSTM(8), Dense(1, activation="sigmoid")])
    model.compile("rmsprop", "binary_crossentropy", metrics=["acc"])
    rnnkit.utils.set_random_seed(0)
    history = model.fit(texts, labels, epochs=15, batch_size=32, verbose=0)
    assert history.history["acc"][-1] > 0.95
    probabilities = model.predict(["a great superb film", "awful and boring"], verbose=0)
    assert probabilities[0, 0] > 0.5 > probabilities[1, 0]
    # the same numbers as the model without the layer, on the ids the layer makes
    ids = vectorize(texts[:8])
    tail = rnnkit.Sequential(model.layers[1:])
    np.testing.assert_allclose(tail.predict(ids, verbose=0), model.predict(texts[:8], verbose=0), rtol=1e-6)

    path = tmp_path / "text_model.rnnkit"
    model.save(path)
    loaded = rnnkit.models.load_model(path)
    assert loaded.layers[0].get_vocabulary() == vectorize.get_vocabulary()
    np.testing.assert_array_equal(loaded.predict(texts, verbose=0), model.predict(texts, verbose=0))


def test_functional_model_with_a_string_input():
    vectorize = TextVectorization(vocabulary=["a", "b"], output_sequence_length=3)
    inputs = rnnkit.Input(shape=(1,), dtype="string")
    outputs = Dense(1)(LSTM(2)(Embedding(4, 3)(vectorize(inputs))))
    model = rnnkit.Model(inputs, outputs)
    assert model.predict(np.array([["a b"], ["b"]]), verbose=0).shape == (2, 1)


def test_adapting_on_imdb_sized_text_takes_seconds():
    rng = np.random.default_rng(0)
    words = np.array([f"w{i}" for i in range(20000)])
    # 25,000 reviews of 230 words, as IMDB's training set, Zipf-distributed words
    texts = [" ".join(words[np.minimum(rng.zipf(1.2, 230), 20000) - 1]) + "." for _ in range(25000)]
    layer = TextVectorization(max_tokens=10000)
    start = time.perf_counter()
    layer.adapt(texts)
    assert time.perf_counter() - start < 30  # a few seconds here; a generous bound for slow CI machines
    assert layer.vocabulary_size() == 10000 and layer.get_vocabulary()[2] == "w0"
