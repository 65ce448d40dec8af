"""rnnkit.datasets.imdb.encode/decode and TextEncoding: a review's raw text encodes to its load_data ids."""

import numpy as np
import pytest

from rnnkit.datasets import aclimdb, imdb

from tiny_imdb import REVIEWS, write_tarball


@pytest.fixture(autouse=True)
def own_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))


def raw_texts_in_load_data_order(source, split, seed=113):
    """The split's raw review texts in the order load_data returns them: the loader's documented order
    (negative then positive, by id), shuffled by one generator, the training split first."""
    found = list(aclimdb._reviews(source))
    rng = np.random.RandomState(seed)
    for s in ("train", "test"):
        reviews = sorted((label == "pos", review_id, text) for s_, label, review_id, text in found if s_ == s)
        order = np.arange(len(reviews))
        rng.shuffle(order)
        if s == split:
            return [reviews[i][2] for i in order]


@pytest.mark.parametrize("num_words", [None, 6])
def test_encoding_the_tiny_datasets_texts_gives_load_data_ids(tmp_path, num_words):
    source = write_tarball(tmp_path, REVIEWS)
    (x_train, _), (x_test, _) = imdb.load_data(path=source, num_words=num_words)
    for split, expected in (("train", x_train), ("test", x_test)):
        texts = raw_texts_in_load_data_order(source, split)
        assert imdb.encode(texts, num_words=num_words, path=source) == [list(x) for x in expected]


def test_encode_pads_and_cuts_in_front_with_maxlen(tmp_path):
    source = write_tarball(tmp_path, REVIEWS)
    ids = imdb.encode(["a movie", "great movie great movie great"], maxlen=4, path=source)
    assert ids.shape == (2, 4) and ids.dtype == np.int32
    encoding = imdb.TextEncoding.from_dataset(source)
    movie, a, great = (encoding.encode([w])[0][1] for w in ("movie", "a", "great"))
    assert ids.tolist() == [[0, 1, a, movie], [movie, great, movie, great]]


def test_unknown_words_are_out_of_vocabulary_and_decode_shows_them(tmp_path):
    source = write_tarball(tmp_path, REVIEWS)
    encoding = imdb.TextEncoding.from_dataset(source, num_words=6)  # ids 4 and 5: the two most frequent words
    ids = encoding.encode(["Movie, a zebra; BAD!"])[0]
    assert ids == [1, 4, 5, 2, 2]  # start, movie (rank 1), a (rank 2), zebra unknown, bad (rank 3) beyond num_words
    assert encoding.decode(ids) == "movie a ? ?"
    assert encoding.decode([0, 0] + ids, unknown="[UNK]") == "movie a [UNK] [UNK]"


def test_decode_then_encode_round_trips_ids_of_known_words(tmp_path):
    source = write_tarball(tmp_path, REVIEWS)
    (x_train, _), _ = imdb.load_data(path=source)
    for review in x_train:
        assert imdb.encode([imdb.decode(review, path=source)], path=source)[0] == list(review)


def test_text_encoding_config_round_trip_and_bad_configs():
    encoding = imdb.TextEncoding(["movie", "a"], num_words=10, maxlen=5)
    assert imdb.TextEncoding.from_config(encoding.get_config()) == encoding
    for bad in ({"words": "movie"}, {"words": ["a"], "maxlen": -1}, {"words": ["a"], "padding": "middle"},
                {"words": ["a"], "exec": "x"}, {"num_words": 3}, ["a"]):
        with pytest.raises(ValueError):
            imdb.TextEncoding.from_config(bad)
    with pytest.raises(TypeError, match="one string"):
        encoding.encode("a movie")


def test_encoding_the_real_test_reviews_gives_load_data_ids(real_data):
    (_, _), (x_test, _) = imdb.load_data(num_words=10000)
    texts = raw_texts_in_load_data_order(real_data and imdb.find_source(), "test")
    encoded = imdb.encode(texts, num_words=10000)
    assert len(encoded) == 25000
    mismatched = [i for i, (got, want) in enumerate(zip(encoded, x_test)) if got != list(want)]
    assert not mismatched, f"{len(mismatched)} reviews differ, the first {mismatched[:5]}"
