"""Tiny datasets in the aclImdb layout, built by the tests themselves."""

import tarfile
from pathlib import Path

# (split, label, id, text): word counts over train: movie 4, a 3, great 2, bad 2, ...
REVIEWS = [
    ("train", "pos", 0, "A great movie!<br />Great acting."),
    ("train", "pos", 1, "Movie of the year: don't miss it."),
    ("train", "neg", 0, "A bad, BAD movie."),
    ("train", "neg", 7, "Boring movie; a waste."),
    ("test", "pos", 3, "Great fun, a gem."),
    ("test", "neg", 2, "Unwatchable movie."),
    ("test", "neg", 5, "Bad."),
]

# 600 reviews a small model learns to tell apart by their words
SEPARABLE_REVIEWS = [
    (split, label, i, ("wonderful superb " if label == "pos" else "awful dreadful ") * 3 + f"filler{i % 7}")
    for split in ("train", "test") for label in ("pos", "neg") for i in range(150)
]


def write_tree(root: Path, reviews=REVIEWS) -> Path:
    for split, label, review_id, text in reviews:
        folder = root / "aclImdb" / split / label
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"{review_id}_{8 if label == 'pos' else 2}.txt").write_text(text, encoding="utf-8")
    return root / "aclImdb"


def write_tarball(tmp_path: Path, reviews=REVIEWS) -> Path:
    tree = write_tree(tmp_path / "tree", reviews)
    archive = tmp_path / "tiny.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(tree, arcname="aclImdb")
    return archive
