"""The IMDB loader: Keras' semantics on tiny datasets the tests build, the real dataset when
RNNKIT_DATA points at it (CI sets it), and clear errors for missing or damaged files."""

import hashlib
import json
import os
import re
import tarfile

import numpy as np
import pytest

from rnnkit.datasets import aclimdb, imdb, storage
from rnnkit.datasets.imdb import tokenize

from tiny_imdb import REVIEWS, write_tarball, write_tree


@pytest.fixture(autouse=True)
def isolated_cache(tmp_path, monkeypatch):
    """Every test here gets its own cache directory and no RNNKIT_DATA, unless it sets one."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.delenv("RNNKIT_DATA", raising=False)


def expected_order(split):
    """The documented order before shuffling: neg then pos, each by id."""
    rows = [r for r in REVIEWS if r[0] == split]
    return sorted(rows, key=lambda r: (r[1] == "pos", r[2]))


def test_tokenizer_lowercases_drops_breaks_and_punctuation_keeps_inner_apostrophes():
    assert tokenize("Don't MISS it!<br /><br />It's 10/10 -- café") == ["don't", "miss", "it", "it's", "10", "10",
                                                                        "café"]


def test_words_are_ranked_by_training_frequency_ties_alphabetical_test_only_last(tmp_path):
    index = imdb.get_word_index(write_tarball(tmp_path))
    ranked = sorted(index, key=index.get)
    assert ranked[:4] == ["movie", "a", "bad", "great"]  # 4, 3, 2, 2 occurrences in train
    assert ranked[-3:] == ["fun", "gem", "unwatchable"]  # only in the test set
    assert sorted(index.values()) == list(range(1, len(index) + 1))


@pytest.mark.parametrize("source", ["tarball", "directory"])
def test_reviews_decode_back_to_their_words_in_seeded_order(tmp_path, source):
    path = write_tarball(tmp_path) if source == "tarball" else write_tree(tmp_path / "d")
    index = imdb.get_word_index(path)
    (x_train, y_train), (x_test, y_test) = imdb.load_data(path=path, seed=5, num_words=len(index) + 4)
    words = {rank + 3: w for w, rank in index.items()}
    rng = np.random.RandomState(5)
    for x, y, split in ((x_train, y_train, "train"), (x_test, y_test, "test")):
        order = np.arange(len(x))
        rng.shuffle(order)
        rows = [expected_order(split)[i] for i in order]
        for review, label, row in zip(x, y, rows):
            assert isinstance(review, list) and review[0] == 1
            assert [words[i] for i in review[1:]] == tokenize(row[3])
            assert label == (row[1] == "pos")


def test_num_words_skip_top_oov_char_and_index_from_follow_keras(tmp_path):
    path = write_tarball(tmp_path)
    index = imdb.get_word_index(path)
    (x_plain, _), _ = imdb.load_data(path=path, seed=0, num_words=len(index) + 4)
    (x_default, _), _ = imdb.load_data(path=path, seed=0)
    top = len(index) + 3  # Keras' quirk: without num_words the highest id itself is out of vocabulary
    assert [[2 if w == top else w for w in r] for r in x_plain] == list(x_default)
    (x, _), _ = imdb.load_data(path=path, seed=0, num_words=7, skip_top=5, oov_char=9)
    for plain, limited in zip(x_plain, x):
        assert limited == [w if 5 <= w < 7 else 9 for w in plain]  # the start char 1 < skip_top becomes oov too
    (x_dropped, _), _ = imdb.load_data(path=path, seed=0, num_words=7, oov_char=None)
    assert x_dropped[0] == [w for w in x_plain[0] if w < 7]
    (x_shift, _), _ = imdb.load_data(path=path, seed=0, start_char=None, index_from=10, num_words=100)
    assert x_shift[0] == [w - 3 + 10 for w in x_plain[0][1:]]
    assert min(index.values()) + 3 == min(w for review in x_plain for w in review[1:])


def test_maxlen_keeps_reviews_shorter_than_maxlen(tmp_path):
    path = write_tarball(tmp_path)
    (x_all, y_all), (t_all, _) = imdb.load_data(path=path)
    (x, y), (t, _) = imdb.load_data(path=path, maxlen=6)  # train lengths 6, 8, 5, 5 with the start id
    assert [r for r in x_all if len(r) < 6] == list(x) and len(x) == 2
    assert list(t) == [r for r in t_all if len(r) < 6]
    assert list(y) == [label for r, label in zip(x_all, y_all) if len(r) < 6]
    with pytest.raises(ValueError, match="no sequence was kept"):
        imdb.load_data(path=path, maxlen=2)


def test_keras_imdb_npz_with_its_word_index(tmp_path):
    rng = np.random.default_rng(0)
    x_train = np.empty(6, dtype=object)
    x_train[:] = [rng.integers(1, 20, n).tolist() for n in (3, 5, 2, 4, 6, 1)]
    x_test = np.empty(4, dtype=object)
    x_test[:] = [rng.integers(1, 20, n).tolist() for n in (2, 2, 3, 7)]
    path = tmp_path / "imdb.npz"
    np.savez(path, x_train=x_train, y_train=np.array([0, 1, 0, 1, 1, 0]), x_test=x_test, y_test=np.array([1, 0, 1, 0]))
    (tmp_path / "imdb_word_index.json").write_text(json.dumps({f"w{i}": i for i in range(1, 20)}))
    (x, y), (xt, yt) = imdb.load_data(path=path, num_words=15)
    rng = np.random.RandomState(113)
    order = np.arange(6)
    rng.shuffle(order)
    assert list(y) == [[0, 1, 0, 1, 1, 0][i] for i in order]
    assert x[0] == [1] + [w + 3 if w + 3 < 15 else 2 for w in x_train[order[0]]]
    assert len(xt) == 4 and sorted(yt) == [0, 0, 1, 1]
    assert imdb.get_word_index(path)["w7"] == 7


def test_npz_that_would_unpickle_code_is_refused(tmp_path):
    path = tmp_path / "evil.npz"
    payload = np.empty(1, dtype=object)
    payload[0] = os.system  # pickles a reference to a callable
    np.savez(path, x_train=payload, y_train=np.zeros(1), x_test=payload, y_test=np.zeros(1))
    with pytest.raises(ValueError, match="refusing to load"):
        imdb.load_data(path=path)


def test_second_load_comes_from_the_cache(tmp_path, capsys):
    path = write_tarball(tmp_path)
    first = imdb.load_data(path=path)
    assert "tokenizing" in capsys.readouterr().err
    second = imdb.load_data(path=path)
    assert capsys.readouterr().err == ""
    assert list(first[0][0]) == list(second[0][0])


@pytest.mark.parametrize("damage", ["garbage", "inconsistent", "unreadable"])
def test_a_damaged_cache_is_rebuilt_not_trusted(tmp_path, capsys, damage):
    path = write_tarball(tmp_path)
    expected = imdb.load_data(path=path)
    cache = aclimdb.cache_path(path, storage.cache_dir())
    if damage == "garbage":
        cache.write_bytes(b"\x00" * 100)
    elif damage == "inconsistent":
        corpus = aclimdb.load(cache)
        corpus.train.offsets[-1] += 5
        aclimdb.save(corpus, cache)
    else:
        cache.chmod(0)
        if os.access(cache, os.R_OK):
            pytest.skip("running as a user who can read any file")
    capsys.readouterr()
    again = imdb.load_data(path=path)
    assert "rebuilding the IMDB cache" in capsys.readouterr().err
    assert list(map(list, again[0][0])) == list(map(list, expected[0][0]))
    aclimdb.load(cache)  # valid again


def test_missing_source_names_what_is_missing(tmp_path, monkeypatch):
    with pytest.raises(FileNotFoundError, match="path=.*nope.tar.gz: no such file"):
        imdb.load_data(path=tmp_path / "nope.tar.gz")
    monkeypatch.setenv("RNNKIT_DATA", str(tmp_path / "gone"))
    with pytest.raises(FileNotFoundError, match="RNNKIT_DATA=.*gone: no such file"):
        imdb.load_data()


@pytest.mark.parametrize("damage", ["truncated", "not_a_tarball", "no_reviews"])
def test_corrupt_archive_is_a_clear_error(tmp_path, damage):
    good = write_tarball(tmp_path)
    bad = tmp_path / "bad.tar.gz"
    if damage == "truncated":
        bad.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    elif damage == "not_a_tarball":
        bad.write_bytes(b"hello, this is not an archive")
    else:
        with tarfile.open(bad, "w:gz") as tar:
            readme = tmp_path / "README"
            readme.write_text("nothing here")
            tar.add(readme, arcname="aclImdb/README")
    with pytest.raises(ValueError, match=re.escape(str(bad))):
        imdb.load_data(path=bad)


def test_offline_without_data_says_where_to_put_the_archive(monkeypatch):
    def no_network(*args, **kwargs):
        raise OSError("network is unreachable")

    monkeypatch.setattr("urllib.request.urlopen", no_network)
    with pytest.raises(FileNotFoundError, match=r"downloading it failed .*put it at .*rnnkit.*aclImdb_v1\.tar\.gz"):
        imdb.load_data()
    assert not (storage.cache_dir() / "aclImdb_v1.tar.gz").exists()


def test_download_checks_the_md5_and_keeps_only_a_complete_file(tmp_path, capsys):
    source = tmp_path / "payload.bin"
    source.write_bytes(os.urandom(300_000))
    md5 = hashlib.md5(source.read_bytes()).hexdigest()
    target = tmp_path / "dl" / "payload.bin"
    storage.download(source.as_uri(), target, md5)
    assert target.read_bytes() == source.read_bytes()
    assert "Downloading payload.bin" in capsys.readouterr().err
    other = tmp_path / "dl" / "other.bin"
    with pytest.raises(ValueError, match="checksum mismatch"):
        storage.download(source.as_uri(), other, "0" * 32)
    assert sorted(p.name for p in (tmp_path / "dl").iterdir()) == ["payload.bin"]


def test_cached_official_archive_with_a_wrong_checksum_is_refused(tmp_path):
    cached = storage.cache_dir() / "aclImdb_v1.tar.gz"
    cached.parent.mkdir(parents=True)
    cached.write_bytes(write_tarball(tmp_path).read_bytes())  # a valid tarball, but not the official one
    with pytest.raises(ValueError, match="checksum mismatch .* expected 7c2ac02c03563afcf9b574c7e56c153a"):
        imdb.load_data()


# --- the real dataset (the real_data fixture skips unless RNNKIT_DATA is set) ------------------


def test_real_dataset_has_25000_reviews_per_split_half_of_each_label(real_data):
    (x_train, y_train), (x_test, y_test) = imdb.load_data(num_words=10000)
    assert len(x_train) == len(x_test) == 25000
    for y in (y_train, y_test):
        assert np.bincount(y).tolist() == [12500, 12500]
    assert all(review[0] == 1 for review in x_train[:100])
    assert max(max(review) for review in x_train) == 9999


def test_first_training_review_decodes_to_its_text(real_data):
    (x_train, y_train), _ = imdb.load_data()
    index = imdb.get_word_index()
    words = {rank + 3: w for w, rank in index.items()}
    # the same file, found independently: the documented order, shuffled as Keras does with seed 113
    with tarfile.open(real_data) as archive:
        members = [m for m in archive.getmembers() if re.search(r"train/(pos|neg)/\d+_\d+\.txt$", m.name)]
        members.sort(key=lambda m: ("/pos/" in m.name, int(os.path.basename(m.name).split("_")[0])))
        order = np.arange(len(members))
        np.random.RandomState(113).shuffle(order)
        first = members[order[0]]
        text = archive.extractfile(first).read().decode("utf-8")
    assert y_train[0] == ("/pos/" in first.name)
    decoded = [words[i] for i in x_train[0][1:11]]
    assert decoded == tokenize(text)[:10]
