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
import math
import os
import pickle
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import numpy as np

from ..checked_npz import CheckedNpz, NpzError, open_regular_file
from . import aclimdb, storage
from .aclimdb import tokenize

URL = "https://ai.stanford.edu/~amaas/data/sentiment/aclImdb_v1.tar.gz"
MD5 = "7c2ac02c03563afcf9b574c7e56c153a"
ARCHIVE = "aclImdb_v1.tar.gz"

__all__ = ["load_data", "get_word_index", "tokenize", "encode", "decode", "TextEncoding"]


def find_source(path=None) -> Path:
    """The first of: path, $RNNKIT_DATA, the cached official archive, a fresh download."""
    for given, what in ((path, "path"), (os.environ.get("RNNKIT_DATA") or None, "RNNKIT_DATA")):
        if given is not None:
            source = Path(given).expanduser()
            if not source.exists():
                raise FileNotFoundError(f"{what}={given}: no such file or directory")
            if not (source.is_file() or source.is_dir()):  # a FIFO or a device would block or never end
                raise ValueError(f"{what}={given}: not a regular file or a directory")
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


MAX_PICKLE_BYTES = 2**26  # Keras' imdb.npz holds about 17 MB of pickled reviews
_PICKLED_DTYPES = {"O", "O4", "O8", "b1", "i1", "i2", "i4", "i8", "u1", "u2", "u4", "u8", "f4", "f8"}


class _PendingDtype:
    """numpy.dtype as a pickle describes it: one of a few plain types, nothing else."""

    def __init__(self, name, align=False, copy=True):
        if not isinstance(name, str) or name not in _PICKLED_DTYPES:
            raise pickle.UnpicklingError(f"refusing the dtype {name!r} in a dataset file")
        self.dtype = np.dtype(name)

    def __setstate__(self, state):
        if isinstance(state, tuple) and len(state) > 1 and state[1] in ("<", ">"):
            self.dtype = self.dtype.newbyteorder(state[1])


class _PendingArray:
    """An ndarray as a pickle describes it, built only once its shape, dtype and data agree (NumPy's own
    __setstate__ trusts them: an object array of a huge shape with a short list allocates the shape,
    then crashes)."""

    def __setstate__(self, state):
        if not (isinstance(state, tuple) and len(state) == 5):
            raise pickle.UnpicklingError("an array whose state is not (version, shape, dtype, order, data)")
        _, shape, dtype, fortran_order, data = state
        if not (isinstance(shape, tuple) and all(type(d) is int and d >= 0 for d in shape)):
            raise pickle.UnpicklingError(f"an array of shape {shape!r}")
        if not isinstance(dtype, _PendingDtype):
            raise pickle.UnpicklingError("an array without a plain dtype")
        dtype, size = dtype.dtype, math.prod(shape)
        if dtype.hasobject:
            if not isinstance(data, list) or len(data) != size:
                raise pickle.UnpicklingError(f"an object array of shape {shape} with "
                                             f"{len(data) if isinstance(data, list) else 'no list of'} elements")
            array = np.empty(size, dtype=object)
            for i, item in enumerate(data):
                array[i] = item.array if isinstance(item, _PendingArray) else item
        else:
            if not isinstance(data, bytes) or len(data) != size * dtype.itemsize:
                raise pickle.UnpicklingError(f"a {dtype} array of shape {shape} with the wrong number of bytes")
            array = np.frombuffer(data, dtype=dtype).copy()
        self.array = array.reshape(shape, order="F" if fortran_order else "C")


def _reconstruct(cls, shape, typecode):
    if cls is not np.ndarray:
        raise pickle.UnpicklingError(f"refusing to build {cls!r} from a dataset file")
    return _PendingArray()


def _scalar(dtype, data):
    if not isinstance(dtype, _PendingDtype) or dtype.dtype.hasobject or not isinstance(data, bytes) \
            or len(data) != dtype.dtype.itemsize:
        raise pickle.UnpicklingError("a malformed NumPy scalar")
    return np.frombuffer(data, dtype=dtype.dtype)[0].item()


def _latin1_bytes(text, encoding):
    """How pickle protocol 2 writes bytes under Python 3: _codecs.encode(text, 'latin1')."""
    if not isinstance(text, str) or encoding != "latin1":
        raise pickle.UnpicklingError("refusing _codecs.encode other than of text to latin1 bytes")
    return text.encode("latin1")


class _ArraysOnlyUnpickler(pickle.Unpickler):
    """Keras' imdb.npz stores its ragged reviews as pickled object arrays of lists of ints; allow
    nothing but arrays, plain dtypes and scalars, each built only after it is checked."""

    allowed = {("numpy", "ndarray"): np.ndarray, ("numpy", "dtype"): _PendingDtype,
               ("numpy.core.multiarray", "_reconstruct"): _reconstruct,
               ("numpy._core.multiarray", "_reconstruct"): _reconstruct,
               ("numpy.core.multiarray", "scalar"): _scalar, ("numpy._core.multiarray", "scalar"): _scalar,
               ("_codecs", "encode"): _latin1_bytes}

    def find_class(self, module, name):
        if (module, name) in self.allowed:
            return self.allowed[module, name]
        raise pickle.UnpicklingError(f"refusing to load {module}.{name} from a dataset file")


def _keras_member(npz, name):
    """Member `name` of Keras' imdb.npz as an array: plain, or unpickled by _ArraysOnlyUnpickler."""
    dtype, shape = npz.spec(name)
    if not dtype.hasobject:
        return npz.read(name)
    shape, data = npz.pickled(name, MAX_PICKLE_BYTES)
    loaded = _ArraysOnlyUnpickler(io.BytesIO(data)).load()
    if not isinstance(loaded, _PendingArray) or loaded.array.shape != shape:
        raise ValueError(f"{name}: the pickle does not hold the {shape} array its header declares")
    return loaded.array


def _review_ranks(review, where):
    ranks = np.asarray(review)
    if ranks.ndim != 1 or (ranks.size and ranks.dtype.kind not in "iu"):
        raise ValueError(f"{where} is not a list of integer word ids")
    if ranks.size and (ranks.min() < 1 or ranks.max() >= 2**31):
        raise ValueError(f"{where} has word id {ranks.min() if ranks.min() < 1 else ranks.max()}, outside "
                         f"[1, 2**31)")
    return ranks.astype(np.int32)


def _read_keras_npz(source: Path):
    """(train Split, test Split) from Keras' imdb.npz, whose reviews are word ranks already."""
    try:
        with CheckedNpz(source) as npz:
            splits = []
            for s in ("train", "test"):
                reviews, labels = _keras_member(npz, f"x_{s}"), _keras_member(npz, f"y_{s}")
                if reviews.ndim not in (1, 2) or labels.ndim != 1 or len(labels) != len(reviews):
                    raise ValueError(f"x_{s} {reviews.shape} and y_{s} {labels.shape} are not one label per review")
                if labels.dtype.kind not in "biu" or not np.isin(labels, (0, 1)).all():
                    raise ValueError(f"y_{s} holds labels other than 0 and 1: {np.unique(labels)[:5].tolist()}")
                ranks = [_review_ranks(r, f"review {i} of x_{s}") for i, r in enumerate(reviews)]
                offsets = np.concatenate([[0], np.cumsum([len(r) for r in ranks])]).astype(np.int64)
                flat = np.concatenate(ranks) if ranks else np.zeros(0, np.int32)
                splits.append(aclimdb.Split(flat, offsets, labels.astype(np.int64)))
    except FileNotFoundError:
        raise
    except (ValueError, OSError, KeyError, TypeError, OverflowError, EOFError, RecursionError,
            pickle.UnpicklingError) as e:
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


def load_data(path=None, num_words: int | None = None, skip_top: int = 0, maxlen: int | None = None, seed: int = 113,
              start_char: int | None = 1, oov_char: int | None = 2, index_from: int = 3) -> tuple:
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
        return _read_word_index(index_file)
    if source.suffix == ".json":
        return _read_word_index(source)
    words = aclimdb.cached_corpus(source, storage.cache_dir()).words
    return {w: i + 1 for i, w in enumerate(words)}


MAX_WORD_INDEX_BYTES = 2**26


def _refuse_constant(name):
    raise ValueError(f"{name} is not a number JSON allows")


def _read_word_index(path: Path) -> dict:
    """Keras' imdb_word_index.json: a JSON object of word -> rank >= 1."""
    try:
        with open_regular_file(path) as f:
            text = f.read(MAX_WORD_INDEX_BYTES + 1)
        if len(text) > MAX_WORD_INDEX_BYTES:
            raise ValueError(f"more than {MAX_WORD_INDEX_BYTES} bytes")
        index = json.loads(text.decode("utf-8"), parse_constant=_refuse_constant)
        if not isinstance(index, dict) or not all(type(v) is int and v >= 1 for v in index.values()):
            raise ValueError("not a JSON object of word -> rank (an integer >= 1)")
    except FileNotFoundError:
        raise
    except (NpzError, ValueError, OSError, RecursionError) as e:
        raise ValueError(f"{path}: not a readable word index: {e}") from None
    return {str(k): v for k, v in index.items()}


@dataclass
class TextEncoding:
    """How ``load_data`` turns a review into ids, as an object that encodes any text the same way and
    travels with a model (``rnnkit imdb`` saves it in the model file, ``rnnkit predict`` uses it).

    ``words[r - 1]`` is the word of rank r (1 = most frequent); a text's ids are ``start_char``, then
    each word's rank + ``index_from``, ids at or above ``num_words`` and unknown words becoming
    ``oov_char``; with ``maxlen``, the ids are padded or cut as ``pad_sequences`` does by default
    (``padding`` and ``truncating`` 'pre', padding id 0).
    """

    words: list
    num_words: Optional[int] = None
    maxlen: Optional[int] = None
    start_char: Optional[int] = 1
    oov_char: Optional[int] = 2
    index_from: int = 3
    padding: str = "pre"
    truncating: str = "pre"

    def __post_init__(self):
        if not isinstance(self.words, list) or not all(isinstance(w, str) for w in self.words):
            raise ValueError("TextEncoding: words must be a list of strings")
        for name in ("num_words", "maxlen", "start_char", "oov_char", "index_from"):
            value = getattr(self, name)
            optional = name != "index_from"
            if (value is None and not optional) or (value is not None and (type(value) is not int or value < 0)):
                raise ValueError(f"TextEncoding: {name} must be {'None or ' if optional else ''}an integer >= 0, "
                                 f"got {value!r}")
        for name in ("padding", "truncating"):
            if getattr(self, name) not in ("pre", "post"):
                raise ValueError(f"TextEncoding: {name} must be 'pre' or 'post', got {getattr(self, name)!r}")
        limit = len(self.words) + self.index_from if self.num_words is None else self.num_words
        self._rank = {w: r + 1 for r, w in enumerate(self.words) if r + 1 + self.index_from < limit}

    @classmethod
    def from_dataset(cls, path=None, num_words=None, maxlen=None, **conventions) -> "TextEncoding":
        """The encoding of ``load_data(path, num_words=num_words)``, keeping only the words it can emit."""
        index = get_word_index(path)
        words = [w for w, _ in sorted(index.items(), key=lambda item: item[1])]
        if num_words:
            words = words[:max(0, num_words - conventions.get("index_from", 3))]
        return cls(words, num_words or None, maxlen, **conventions)

    def encode(self, texts):
        """A list of id lists, one per text; with ``maxlen``, a (texts, maxlen) int32 array."""
        from ..preprocessing.sequence import pad_sequences

        if isinstance(texts, str):
            raise TypeError("encode: expected a list of texts, got one string (wrap it in a list)")
        out = []
        for text in texts:
            if not isinstance(text, str):
                raise TypeError(f"encode: expected strings, got {type(text).__name__}")
            ids = [] if self.start_char is None else [self.start_char]
            for word in tokenize(text):
                rank = self._rank.get(word)
                if rank is not None:
                    ids.append(rank + self.index_from)
                elif self.oov_char is not None:
                    ids.append(self.oov_char)
            out.append(ids)
        if self.maxlen is None:
            return out
        return pad_sequences(out, maxlen=self.maxlen, padding=self.padding, truncating=self.truncating)

    def decode(self, ids, unknown="?") -> str:
        """The words of one sequence of ids, padding (0) and the start id left out, ids without a word
        (out-of-vocabulary) shown as ``unknown``."""
        words = []
        for i in np.asarray(ids).reshape(-1).tolist():
            if i == 0 or i == self.start_char:
                continue
            rank = i - self.index_from
            words.append(self.words[rank - 1] if 1 <= rank <= len(self.words) else unknown)
        return " ".join(words)

    def get_config(self) -> dict:
        return {"words": list(self.words), "num_words": self.num_words, "maxlen": self.maxlen,
                "start_char": self.start_char, "oov_char": self.oov_char, "index_from": self.index_from,
                "padding": self.padding, "truncating": self.truncating}

    @classmethod
    def from_config(cls, config: dict) -> "TextEncoding":
        if not isinstance(config, dict) or set(config) - set(cls.__dataclass_fields__) or "words" not in config:
            raise ValueError(f"not a text encoding: {str(config)[:80]}")
        return cls(**config)


def encode(texts, num_words: int | None = None, maxlen: int | None = None, path=None, start_char: int | None = 1,
           oov_char: int | None = 2, index_from: int = 3) -> list | np.ndarray:
    """Texts as ``load_data(path, num_words=num_words)`` encodes its reviews (the same tokenizer, ranks and
    index conventions): a list of id lists, or with ``maxlen`` a (texts, maxlen) array padded and cut in
    front, as the tutorial pads its reviews."""
    encoding = TextEncoding.from_dataset(path, num_words, maxlen, start_char=start_char, oov_char=oov_char,
                                         index_from=index_from)
    return encoding.encode(texts)


def decode(ids, path=None, start_char=1, index_from=3, unknown="?") -> str:
    """The words of one review's ids from ``load_data`` (padding and the start id left out, ids without a
    word shown as ``unknown``), e.g. ``decode(x_train[0])``."""
    return TextEncoding.from_dataset(path, start_char=start_char, index_from=index_from).decode(ids, unknown)
