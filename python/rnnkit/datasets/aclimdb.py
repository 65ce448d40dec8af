"""The Large Movie Review Dataset in its original layout (aclImdb/{train,test}/{pos,neg}/<id>_<rating>.txt),
read from a tarball or a directory, tokenized, ranked by word frequency, and cached as arrays.

Reviews are taken in a fixed order (each split: neg then pos, each by file id), the one that
``load_data``'s seeded shuffle starts from.
"""

from __future__ import annotations

import hashlib
import re
import sys
import tarfile
import zlib
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np

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


def _reviews(source: Path):
    """(split, label, id, text) of every labeled review in a directory or tar archive."""
    if source.is_dir():
        for path in source.rglob("*.txt"):
            m = _REVIEW.search(path.as_posix())
            if m:
                yield m.group(1), m.group(2), int(m.group(3)), path.read_text(encoding="utf-8")
        return
    try:
        with tarfile.open(source) as archive:
            for member in archive:
                m = _REVIEW.search(member.name)
                if m and member.isfile():
                    text = archive.extractfile(member).read().decode("utf-8")
                    yield m.group(1), m.group(2), int(m.group(3)), text
    except (tarfile.TarError, EOFError, zlib.error, OSError) as e:
        raise ValueError(f"{source}: not a readable aclImdb archive (truncated or corrupted?): {e}") from None


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


def load(path: Path) -> Corpus:
    """The cached corpus; ValueError if the file is unreadable or inconsistent in any way."""
    try:
        with np.load(path, allow_pickle=False) as data:
            words = str(data["words"]).split("\n")
            splits = [Split(data[f"{s}_ranks"], data[f"{s}_offsets"], data[f"{s}_labels"]) for s in ("train", "test")]
    except Exception as e:  # any failure to read means: do not trust this file
        raise ValueError(f"{path}: unreadable corpus cache: {e}") from None
    for split in splits:
        ok = (split.ranks.dtype == np.int32 and split.offsets.ndim == 1 and split.offsets.size == len(split) + 1
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
