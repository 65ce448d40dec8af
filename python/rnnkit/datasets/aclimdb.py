"""The Large Movie Review Dataset in its original layout (aclImdb/{train,test}/{pos,neg}/<id>_<rating>.txt),
read from a tarball or a directory, tokenized, ranked by word frequency, and cached as arrays.

Reviews are taken in a fixed order (each split: neg then pos, each by file id), the one that
``load_data``'s seeded shuffle starts from.
"""

from __future__ import annotations

import hashlib
import os
import re
import sys
import tarfile
import zlib
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..checked_npz import CheckedNpz, NpzError, open_regular_file
from ..saving import atomic_write
from . import storage

CACHE_VERSION = 1
_TOKEN = re.compile(r"[^\W_]+(?:'[^\W_]+)*")
_REVIEW = re.compile(r"(?:^|/)(train|test)/(pos|neg)/(\d+)_\d+\.txt$")


def tokenize(text: str) -> list:
    """Lower-cased words: ``<br />`` line breaks become spaces, a word is a run of letters or digits
    (any script) with inner apostrophes kept ("don't", "it's"), and all other punctuation is dropped."""
    return _TOKEN.findall(text.lower().replace("<br />", " "))


@dataclass
class Split:
    ranks: np.ndarray  # int32, all reviews' word ranks one after another
    offsets: np.ndarray  # int64, review i is ranks[offsets[i]:offsets[i+1]]
    labels: np.ndarray  # int64, 0 negative, 1 positive

    def __len__(self):
        return len(self.labels)


@dataclass
class Corpus:
    words: list  # words[r - 1] has rank r: 1 is the most frequent word of the training set
    train: Split
    test: Split


# A review of the real dataset has at most 14 KB; these bound what a damaged or hostile one can cost.
MAX_REVIEW_BYTES = 2**20
MAX_TOTAL_BYTES = 2**30


class _Budget:
    """Counts the bytes of review text read, against MAX_TOTAL_BYTES."""

    def __init__(self, source):
        self.source, self.left = source, MAX_TOTAL_BYTES

    def text(self, name, size, read):
        if size > MAX_REVIEW_BYTES:
            raise ValueError(f"{self.source}: {name} has {size} bytes, more than the {MAX_REVIEW_BYTES} a review "
                             f"may have")
        self.left -= size
        if self.left < 0:
            raise ValueError(f"{self.source}: more than {MAX_TOTAL_BYTES} bytes of reviews")
        data = read(MAX_REVIEW_BYTES + 1)
        if len(data) != size:
            raise ValueError(f"{self.source}: {name} changed size while it was read")
        try:
            return data.decode("utf-8")
        except UnicodeDecodeError as e:
            raise ValueError(f"{self.source}: {name} is not UTF-8 text (byte {data[e.start]:#04x} at offset "
                             f"{e.start})") from None


def _reviews(source: Path):
    """(split, label, id, text) of every labeled review in a directory or tar archive. Reviews must be
    regular files of at most MAX_REVIEW_BYTES of UTF-8 text: anything else raises ValueError naming it."""
    budget = _Budget(source)
    if source.is_dir():
        for path in source.rglob("*.txt"):
            m = _REVIEW.search(path.as_posix())
            if m:
                name = path.relative_to(source).as_posix()
                try:
                    with open_regular_file(path, "file") as f:
                        text = budget.text(name, os.fstat(f.fileno()).st_size, f.read)
                except (NpzError, OSError) as e:
                    raise ValueError(f"{source}: {name}: {e.strerror if isinstance(e, OSError) else e}") from None
                yield m.group(1), m.group(2), int(m.group(3)), text
        return
    try:
        with open_regular_file(source, "file") as raw, tarfile.open(fileobj=raw) as archive:
            for member in archive:
                m = _REVIEW.search(member.name)
                if not m:
                    continue
                if not member.isfile():
                    raise ValueError(f"{source}: {member.name} is not a regular file")
                text = budget.text(member.name, member.size, archive.extractfile(member).read)
                yield m.group(1), m.group(2), int(m.group(3)), text
    except (tarfile.TarError, EOFError, zlib.error, OSError, NpzError) as e:
        reason = " ".join(str(e).split())  # tarfile's reasons run over several lines
        raise ValueError(f"{source}: not a readable aclImdb archive (truncated or corrupted?): {reason}") from None


def parse(source: Path) -> Corpus:
    """Reads and tokenizes every review (the slow path: several seconds for the full dataset)."""
    found = {"train": [], "test": []}
    for split, label, review_id, text in _reviews(source):
        found[split].append((label == "pos", review_id, tokenize(text)))
    for split, reviews in found.items():
        if not reviews:
            raise ValueError(f"{source}: no {split} reviews found; expected the aclImdb layout "
                             f"{split}/pos/<id>_<rating>.txt and {split}/neg/<id>_<rating>.txt")
        reviews.sort(key=lambda r: (r[0], r[1]))
    counts = Counter(w for _, _, tokens in found["train"] for w in tokens)
    vocabulary = set(counts).union(w for _, _, tokens in found["test"] for w in tokens)
    words = sorted(vocabulary, key=lambda w: (-counts[w], w))  # ties (and test-only words) alphabetically
    rank = {w: i + 1 for i, w in enumerate(words)}

    def encode(reviews):
        lengths = [len(tokens) for _, _, tokens in reviews]
        ranks = np.fromiter((rank[w] for _, _, tokens in reviews for w in tokens), np.int32, sum(lengths))
        offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
        return Split(ranks, offsets, np.array([int(pos) for pos, _, _ in reviews], np.int64))

    return Corpus(words, encode(found["train"]), encode(found["test"]))


# --- the parsed corpus, cached ---------------------------------------------------------------------


def cache_path(source: Path, directory: Path) -> Path:
    """One cache file per source, named by what identifies its content: path, size, mtime."""
    stat = source.stat()
    key = f"{source.resolve()}|{stat.st_size}|{stat.st_mtime_ns}|{CACHE_VERSION}"
    return directory / f"imdb-corpus-{hashlib.sha256(key.encode()).hexdigest()[:16]}.npz"


def save(corpus: Corpus, path: Path) -> None:
    arrays = {"words": np.array("\n".join(corpus.words))}
    for name, split in (("train", corpus.train), ("test", corpus.test)):
        arrays.update({f"{name}_ranks": split.ranks, f"{name}_offsets": split.offsets, f"{name}_labels": split.labels})
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, lambda f: np.savez(f, **arrays))


# The cache's members and the dtype and rank each must have.
_CACHE_MEMBERS = {f"{split}_{name}": (np.dtype(dtype), 1) for split in ("train", "test")
                  for name, dtype in (("ranks", np.int32), ("offsets", np.int64), ("labels", np.int64))}
MAX_VOCABULARY_BYTES = 2**28


def load(path: Path) -> Corpus:
    """The cached corpus; ValueError if the file is unreadable or inconsistent in any way."""
    try:
        with CheckedNpz(path) as data:
            dtype, shape = data.spec("words")
            if dtype.kind != "U" or shape != () or dtype.itemsize > MAX_VOCABULARY_BYTES:
                raise ValueError(f"words is a {dtype} array of shape {shape}")
            for name, (expected, ndim) in _CACHE_MEMBERS.items():
                dtype, shape = data.spec(name)
                if dtype != expected or len(shape) != ndim:
                    raise ValueError(f"{name} is a {dtype} array of shape {shape}, expected {ndim}-D {expected}")
            words = str(data.read("words")).split("\n")
            splits = [Split(data.read(f"{s}_ranks"), data.read(f"{s}_offsets"), data.read(f"{s}_labels"))
                      for s in ("train", "test")]
    except Exception as e:  # any failure to read means: do not trust this file
        raise ValueError(f"{path}: unreadable corpus cache: {e}") from None
    for split in splits:
        ok = (split.offsets.size == len(split) + 1
              and split.offsets[0] == 0 and split.offsets[-1] == split.ranks.size
              and np.all(np.diff(split.offsets) >= 0) and np.isin(split.labels, (0, 1)).all()
              and (split.ranks.size == 0 or (split.ranks.min() >= 1 and split.ranks.max() <= len(words))))
        if not ok:
            raise ValueError(f"{path}: inconsistent corpus cache")
    return Corpus(words, *splits)


def cached_corpus(source: Path, directory: Path) -> Corpus:
    """The corpus of source, from the cache when a valid one exists; otherwise parsed and cached. A
    cache that cannot be read or does not add up is rebuilt, never trusted."""
    path = cache_path(source, directory)
    with storage.locked(path):  # one process parses; others wait, then read its cache
        if path.exists():
            try:
                return load(path)
            except ValueError as e:
                print(f"rnnkit: rebuilding the IMDB cache ({e})", file=sys.stderr)
        print(f"rnnkit: reading and tokenizing {source} (the first time only)...", file=sys.stderr)
        corpus = parse(source)
        try:
            save(corpus, path)
        except OSError as e:
            print(f"rnnkit: could not write the IMDB cache {path}: {e}", file=sys.stderr)
    return corpus
