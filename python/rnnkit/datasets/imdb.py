"""The IMDB movie-review sentiment dataset with Keras' API (``keras.datasets.imdb``).

Where the data comes from, first match wins:

1. ``path``: the official ``aclImdb_v1.tar.gz``, any tarball or directory in the same aclImdb layout,
   or Keras' own ``imdb.npz`` (its word index is read from ``imdb_word_index.json`` beside it);
2. the environment variable ``RNNKIT_DATA``, naming any of the same;
3. ``aclImdb_v1.tar.gz`` in the cache directory (``$XDG_CACHE_HOME/rnnkit``, by default
   ``~/.cache/rnnkit``);
4. a download of the official archive from the dataset's home page into that directory, with a
   progress display, checked against its MD5 before it is kept.

Reviews are tokenized by :func:`tokenize` (lower case, ``<br />`` removed, letters and digits with
inner apostrophes, other punctuation dropped) and words ranked by their frequency in the training
set: rank 1 is the most frequent (ties alphabetically; words seen only in the test set rank last).
The parsed corpus is cached next to the archive's cache entry, so only the first load is slow.
"""

from __future__ import annotations

import io
import json
import os
import pickle
import zipfile
from pathlib import Path

import numpy as np

from . import aclimdb, storage
from .aclimdb import tokenize

URL = "https://ai.stanford.edu/~amaas/data/sentiment/aclImdb_v1.tar.gz"
MD5 = "7c2ac02c03563afcf9b574c7e56c153a"
ARCHIVE = "aclImdb_v1.tar.gz"

__all__ = ["load_data", "get_word_index", "tokenize"]


def find_source(path=None) -> Path:
    """The first of: path, $RNNKIT_DATA, the cached official archive, a fresh download."""
    for given, what in ((path, "path"), (os.environ.get("RNNKIT_DATA") or None, "RNNKIT_DATA")):
        if given is not None:
            source = Path(given).expanduser()
            if not source.exists():
                raise FileNotFoundError(f"{what}={given}: no such file or directory")
            return source
    cached = storage.cache_dir() / ARCHIVE
    if cached.exists():
        return cached
    try:
        with storage.locked(cached):
            if cached.exists():  # another process downloaded it while this one waited
                return cached
            return storage.download(URL, cached, MD5)
    except OSError as e:
        raise FileNotFoundError(
            f"The IMDB dataset is not on this machine and downloading it failed ({e}). Download {URL} "
            f"yourself and put it at {cached}, or set RNNKIT_DATA to its path (or to an aclImdb directory)."
        ) from None


def _is_keras_npz(source: Path) -> bool:
    return source.is_file() and zipfile.is_zipfile(source)


class _ArraysOnlyUnpickler(pickle.Unpickler):
    """Keras' imdb.npz stores its ragged reviews as pickled object arrays; allow nothing else."""

    allowed = {("numpy", "ndarray"), ("numpy", "dtype"), ("numpy.core.multiarray", "_reconstruct"),
               ("numpy._core.multiarray", "_reconstruct")}

    def find_class(self, module, name):
        if (module, name) in self.allowed:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"refusing to load {module}.{name} from a dataset file")


def _read_npy(raw):
    """One .npy member: plain arrays without pickle, object arrays through _ArraysOnlyUnpickler."""
    try:
        return np.lib.format.read_array(raw, allow_pickle=False)
    except ValueError:
        raw.seek(0)
        if np.lib.format.read_magic(raw)[0] == 1:
            np.lib.format.read_array_header_1_0(raw)
        else:
            np.lib.format.read_array_header_2_0(raw)
        return _ArraysOnlyUnpickler(raw).load()


def _read_keras_npz(source: Path):
    """(train Split, test Split) from Keras' imdb.npz, whose reviews are word ranks already."""
    arrays = {}
    try:
        with zipfile.ZipFile(source) as archive:
            for name in archive.namelist():
                arrays[name[:-4]] = _read_npy(io.BytesIO(archive.read(name)))
        splits = []
        for s in ("train", "test"):
            reviews = [np.asarray(r, np.int64) for r in arrays[f"x_{s}"]]
            lengths = [len(r) for r in reviews]
            ranks = np.concatenate(reviews).astype(np.int32) if reviews else np.zeros(0, np.int32)
            offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
            splits.append(aclimdb.Split(ranks, offsets, np.asarray(arrays[f"y_{s}"], np.int64)))
    except (KeyError, ValueError, zipfile.BadZipFile, pickle.UnpicklingError, EOFError) as e:
        raise ValueError(f"{source}: not a readable Keras imdb.npz: {e}") from None
    return splits


def _splits(source: Path):
    if _is_keras_npz(source):
        return _read_keras_npz(source)
    if source.is_file() and source.name == ARCHIVE and source.parent == storage.cache_dir():
        if not aclimdb.cache_path(source, storage.cache_dir()).exists():
            storage.check_md5(source, MD5)  # our own download, or a copy put there by hand
    corpus = aclimdb.cached_corpus(source, storage.cache_dir())
    return corpus.train, corpus.test


def load_data(path=None, num_words=None, skip_top=0, maxlen=None, seed=113, start_char=1, oov_char=2, index_from=3):
    """``((x_train, y_train), (x_test, y_test))``, 25,000 reviews each, as Keras returns them.

    Each review is a list of word ids: ``start_char``, then each word's rank + ``index_from``. Ids
    at or above ``num_words`` or below ``skip_top`` become ``oov_char`` (or are dropped when it is
    None); reviews of ``maxlen`` ids or more are left out. Both splits are shuffled with ``seed``.
    Labels are 0 (negative) and 1 (positive).
    """
    train, test = _splits(find_source(path))
    rng = np.random.RandomState(seed)
    shuffled = []
    for split in (train, test):
        order = np.arange(len(split))
        rng.shuffle(order)
        shuffled.append((split, order))

    def reviews(split, order):
        out = []
        for i in order:
            ids = split.ranks[split.offsets[i] : split.offsets[i + 1]].astype(np.int64) + index_from
            out.append(ids if start_char is None else np.concatenate([[start_char], ids]))
        return out, split.labels[order]

    (xs_train, y_train), (xs_test, y_test) = (reviews(s, o) for s, o in shuffled)
    if maxlen:
        keep_train = [i for i, x in enumerate(xs_train) if len(x) < maxlen]
        keep_test = [i for i, x in enumerate(xs_test) if len(x) < maxlen]
        if not keep_train or not keep_test:
            raise ValueError(f"After filtering for sequences shorter than maxlen={maxlen}, no sequence was kept. "
                             f"Increase maxlen.")
        xs_train, y_train = [xs_train[i] for i in keep_train], y_train[keep_train]
        xs_test, y_test = [xs_test[i] for i in keep_test], y_test[keep_test]
    xs = xs_train + xs_test
    if not num_words:
        num_words = max(int(x.max()) for x in xs if len(x))
    kept = []
    for x in xs:
        inside = (x >= skip_top) & (x < num_words)
        kept.append((np.where(inside, x, oov_char) if oov_char is not None else x[inside]).tolist())
    n = len(xs_train)
    return (_object_array(kept[:n]), y_train), (_object_array(kept[n:]), y_test)


def _object_array(lists):
    out = np.empty(len(lists), dtype=object)
    out[:] = lists
    return out


def get_word_index(path=None) -> dict:
    """word -> rank (1 = most frequent), the ranks ``load_data`` encodes reviews with. To decode a
    review: ``{rank + index_from: word}`` (ids 0, 1 and 2 are padding, start and out-of-vocabulary)."""
    source = find_source(path)
    if _is_keras_npz(source):
        index_file = source.with_name("imdb_word_index.json")
        if not index_file.exists():
            raise FileNotFoundError(f"{source} is Keras' imdb.npz; its word index is expected at {index_file}")
        with open(index_file, encoding="utf-8") as f:
            return {str(k): int(v) for k, v in json.load(f).items()}
    if source.suffix == ".json":
        with open(source, encoding="utf-8") as f:
            return {str(k): int(v) for k, v in json.load(f).items()}
    words = aclimdb.cached_corpus(source, storage.cache_dir()).words
    return {w: i + 1 for i, w in enumerate(words)}
