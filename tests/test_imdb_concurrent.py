"""Two processes loading the dataset at the same time, with nothing cached yet: one downloads and
parses, the other waits for it and uses its files; both get the same data and the cache is valid."""

import hashlib
import os
import subprocess
import sys
import textwrap
import time

from rnnkit.datasets import imdb, storage

from tiny_imdb import write_tarball

# Each child waits for the `go` file, so both start together; download and parse are slowed down so
# the two would overlap without the lock. Each prints what it did and a digest of what it loaded.
CHILD = textwrap.dedent("""
    import hashlib, os, sys, time
    import numpy as np
    from rnnkit.datasets import aclimdb, imdb, storage

    go, url, md5 = sys.argv[1:4]
    imdb.URL, imdb.MD5 = url, md5

    def slowly(name, fn):
        def wrapped(*args, **kwargs):
            print(name, flush=True)
            time.sleep(0.5)
            return fn(*args, **kwargs)
        return wrapped

    storage.download = slowly("downloaded", storage.download)
    aclimdb.parse = slowly("parsed", aclimdb.parse)
    print("ready", flush=True)
    while not os.path.exists(go):
        time.sleep(0.005)
    (x_train, y_train), (x_test, y_test) = imdb.load_data(num_words=5)
    digest = hashlib.md5(repr([list(map(list, x_train)), y_train.tolist(), list(map(list, x_test))]).encode())
    print("loaded", digest.hexdigest(), flush=True)
""")


def test_two_processes_loading_at_once_download_and_parse_once(tmp_path):
    archive = write_tarball(tmp_path)
    md5 = hashlib.md5(archive.read_bytes()).hexdigest()
    cache = tmp_path / "cache"
    env = dict(os.environ, XDG_CACHE_HOME=str(cache))
    env.pop("RNNKIT_DATA", None)
    go = tmp_path / "go"
    children = [subprocess.Popen([sys.executable, "-c", CHILD, str(go), archive.as_uri(), md5], env=env,
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    try:
        for child in children:
            assert child.stdout.readline().strip() == "ready"
        go.touch()
        results = [child.communicate(timeout=120) for child in children]
    finally:
        for child in children:
            child.kill()
    for child, (_, err) in zip(children, results):
        assert child.returncode == 0, err
    lines = [line for out, _ in results for line in out.split()]
    assert lines.count("downloaded") == 1
    assert lines.count("parsed") == 1
    digests = {out.split("loaded ")[1].strip() for out, _ in results}
    assert len(digests) == 1
    # the cache the two left behind: the archive, verified, and one valid corpus; no temporary files
    assert storage.md5_of(cache / "rnnkit" / imdb.ARCHIVE) == md5
    assert not [p for p in (cache / "rnnkit").iterdir() if p.name.endswith(".tmp")]


def test_a_waiting_process_uses_the_file_the_lock_holder_made(tmp_path):
    target = tmp_path / "made.bin"
    script = textwrap.dedent(f"""
        import time
        from pathlib import Path
        from rnnkit.datasets import storage
        with storage.locked({str(target)!r}):
            print("locked", flush=True)
            time.sleep(1.0)
            Path({str(target)!r}).write_bytes(b"made")
    """)
    holder = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        start = time.monotonic()
        with storage.locked(target):
            waited = time.monotonic() - start
            assert target.read_bytes() == b"made"
        assert waited > 0.3
    finally:
        holder.wait(timeout=30)
    assert holder.returncode == 0
