"""Where datasets live on disk: the cache directory, checksums, and downloads that never leave a
half-written file behind."""

from __future__ import annotations

import contextlib
import hashlib
import os
import sys
import time
import urllib.request
from pathlib import Path

from ..saving import atomic_write


def cache_dir() -> Path:
    """``$XDG_CACHE_HOME/rnnkit``, by default ``~/.cache/rnnkit``."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "rnnkit"


@contextlib.contextmanager
def locked(path):
    """Holds an exclusive lock, across processes, on ``<path>.lock`` while the body runs: when two
    processes need the same file at once, one makes it while the other waits and then uses it. Where
    the lock file cannot be created (a read-only directory) the body runs unlocked: every write is
    atomic anyway, so the worst case is work done twice."""
    lock_path = Path(f"{path}.lock")
    try:
        lock_path.parent.mkdir(parents=True, exist_ok=True)
        lock_file = open(lock_path, "a+b")
    except OSError:
        yield
        return
    with lock_file:
        _lock(lock_file)
        try:
            yield
        finally:
            _unlock(lock_file)


if os.name == "nt":
    import msvcrt

    def _lock(f):
        f.seek(0)
        while True:
            try:
                msvcrt.locking(f.fileno(), msvcrt.LK_LOCK, 1)  # retries for 10 s, then raises
                return
            except OSError:
                continue

    def _unlock(f):
        f.seek(0)
        msvcrt.locking(f.fileno(), msvcrt.LK_UNLCK, 1)
else:
    import fcntl

    def _lock(f):
        fcntl.flock(f.fileno(), fcntl.LOCK_EX)

    def _unlock(f):
        fcntl.flock(f.fileno(), fcntl.LOCK_UN)


def md5_of(path) -> str:
    digest = hashlib.md5()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def check_md5(path, expected: str) -> None:
    got = md5_of(path)
    if got != expected:
        raise ValueError(f"{path}: checksum mismatch (MD5 {got}, expected {expected}): the file is damaged or "
                         f"not the expected one; delete it and try again")


class _Progress:
    """``name: 12.3/84.1 MB (15%)`` on stderr, redrawn in place on a terminal, every 10% otherwise."""

    def __init__(self, name, total):
        self.name, self.total, self.done = name, total, 0
        self.tty = sys.stderr.isatty()
        self.last_tenth = -1
        self.last_draw = 0.0

    def update(self, n):
        self.done += n
        mb = f"{self.done / 1e6:.1f}" + (f"/{self.total / 1e6:.1f} MB ({100 * self.done // self.total}%)"
                                          if self.total else " MB")
        if self.tty:
            if time.monotonic() - self.last_draw > 0.1:
                self.last_draw = time.monotonic()
                sys.stderr.write(f"\rDownloading {self.name}: {mb}")
        elif self.total and 10 * self.done // self.total > self.last_tenth:
            self.last_tenth = 10 * self.done // self.total
            sys.stderr.write(f"Downloading {self.name}: {mb}\n")

    def close(self):
        if self.tty:
            sys.stderr.write("\n")


def download(url: str, destination, md5: str, timeout: float = 60.0) -> Path:
    """Fetches url to destination with a progress display. The bytes go to a temporary file that is
    renamed into place only once their MD5 matches, so an interrupted or corrupted download leaves no
    file behind."""
    destination = Path(destination)
    destination.parent.mkdir(parents=True, exist_ok=True)

    def fetch(out):
        digest = hashlib.md5()
        with urllib.request.urlopen(url, timeout=timeout) as response:
            progress = _Progress(destination.name, int(response.headers.get("Content-Length") or 0))
            for block in iter(lambda: response.read(1 << 16), b""):
                digest.update(block)
                out.write(block)
                progress.update(len(block))
            progress.close()
        if digest.hexdigest() != md5:
            raise ValueError(f"{url}: checksum mismatch (MD5 {digest.hexdigest()}, expected {md5}); nothing was saved")

    atomic_write(destination, fetch)
    return destination
