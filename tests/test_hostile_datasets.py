"""Datasets that are damaged or made to hurt: ``imdb.load_data`` raises ValueError naming the file and
the member, quickly and in bounded memory, instead of hanging, crashing or loading something wrong."""

import io
import json
import os
import pickle
import resource
import subprocess
import sys
import tarfile
import textwrap
import zipfile

import numpy as np
import pytest

from rnnkit.datasets import aclimdb, imdb, storage

from tiny_imdb import REVIEWS, write_tarball, write_tree


@pytest.fixture(autouse=True)
def isolated_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.delenv("RNNKIT_DATA", raising=False)


def load_in_child(path, memory_gb=3, timeout=60):
    """load_data(path) in a child process with its address space capped: a hang is a timeout and a
    runaway allocation a MemoryError, neither a stuck or swapping test session. Returns the message of
    the ValueError it raised."""
    code = textwrap.dedent("""
        import sys
        from rnnkit.datasets import imdb
        try:
            imdb.load_data(path=sys.argv[1])
        except ValueError as e:
            print("ValueError:", e)
        else:
            print("loaded")
    """)

    def cap_memory():
        limit = memory_gb * 2**30
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))

    try:
        done = subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True, text=True,
                              timeout=timeout, preexec_fn=cap_memory, env=dict(os.environ))
    except subprocess.TimeoutExpired:
        pytest.fail(f"loading {path} did not finish in {timeout} s")
    assert done.returncode == 0, f"exit status {done.returncode}: {done.stderr[-2000:]}"
    assert done.stdout.startswith("ValueError: "), done.stdout
    return done.stdout


@pytest.mark.parametrize("kind", ["a FIFO", "a symlink to /dev/zero"])
def test_a_review_that_is_not_a_regular_file_is_refused_naming_it(tmp_path, kind):
    tree = write_tree(tmp_path)
    odd = tree / "train" / "pos" / "99_10.txt"
    if kind == "a FIFO":
        os.mkfifo(odd)
    else:
        odd.symlink_to("/dev/zero")
    message = load_in_child(tree)
    assert "train/pos/99_10.txt" in message and "not a regular file" in message


@pytest.mark.parametrize("kind", ["a FIFO", "/dev/zero"])
def test_a_data_path_that_is_not_a_regular_file_or_directory_is_refused(tmp_path, kind):
    path = "/dev/zero" if kind == "/dev/zero" else tmp_path / "data.tar.gz"
    if kind == "a FIFO":
        os.mkfifo(path)
    assert "not a regular file or a directory" in load_in_child(path)


class Repeated(io.RawIOBase):
    """size bytes of one letter, made as they are read."""

    def __init__(self, size):
        self.left = size

    def readable(self):
        return True

    def readinto(self, buffer):
        n = min(len(buffer), self.left)
        buffer[:n] = b"a" * n
        self.left -= n
        return n


def test_a_gzip_bomb_review_is_refused_before_it_is_inflated(tmp_path):
    size = 256 * 2**20
    bomb = tmp_path / "bomb.tar.gz"
    with tarfile.open(bomb, "w:gz", compresslevel=1) as tar:
        info = tarfile.TarInfo("aclImdb/train/pos/0_9.txt")
        info.size = size
        tar.addfile(info, io.BufferedReader(Repeated(size)))
    assert bomb.stat().st_size < 2 * 2**20
    message = load_in_child(bomb, memory_gb=1)
    assert "aclImdb/train/pos/0_9.txt has 268435456 bytes, more than the 1048576 a review may have" in message


def test_a_review_that_is_not_utf8_names_its_member(tmp_path):
    tree = write_tree(tmp_path)
    (tree / "test" / "neg" / "4_1.txt").write_bytes(b"Caf\xe9 au lait, \xff awful.")
    with pytest.raises(ValueError, match=r"test/neg/4_1.txt is not UTF-8 text \(byte 0xe9 at offset 3\)"):
        imdb.load_data(path=tree)


def keras_npz(path, x_train=None, y_train=None, x_test=None, y_test=None):
    rng = np.random.default_rng(0)

    def ragged(n):
        out = np.empty(n, dtype=object)
        for i in range(n):
            out[i] = rng.integers(1, 20, int(rng.integers(1, 6))).tolist()
        return out

    arrays = dict(x_train=ragged(4) if x_train is None else x_train, y_train=np.array([0, 1, 1, 0]),
                  x_test=ragged(3) if x_test is None else x_test, y_test=np.array([1, 0, 1]))
    arrays.update({k: v for k, v in (("y_train", y_train), ("y_test", y_test)) if v is not None})
    with open(path, "wb") as f:
        np.savez(f, **arrays)
    return path


@pytest.mark.parametrize("protocol", [2, 3, 4])
def test_a_plain_keras_npz_loads_whatever_pickle_protocol_wrote_it(tmp_path, protocol):
    reviews = np.empty(4, dtype=object)
    reviews[:] = [[1, 5], [7], [2, 3, 4], [9, 9]]
    path = tmp_path / "imdb.npz"
    with zipfile.ZipFile(path, "w") as z:
        for name, array in (("x_train", reviews), ("y_train", np.array([0, 1, 1, 0])), ("x_test", reviews[:3]),
                            ("y_test", np.array([1, 0, 1]))):
            member = io.BytesIO()
            header = {"descr": np.lib.format.dtype_to_descr(array.dtype), "fortran_order": False,
                      "shape": array.shape}
            np.lib.format.write_array_header_1_0(member, header)
            member.write(pickle.dumps(array, protocol=protocol) if array.dtype.hasobject else array.tobytes())
            z.writestr(f"{name}.npy", member.getvalue())
    (x, y), (xt, yt) = imdb.load_data(path=path, num_words=100, start_char=None, index_from=0)
    assert sorted(map(list, x)) == sorted(map(list, reviews)) and sorted(y) == [0, 0, 1, 1] and len(xt) == 3


@pytest.mark.parametrize("labels", [[0, 1, 7, 0], [0, -3, 1, 0]])
def test_keras_npz_labels_other_than_0_and_1_are_refused(tmp_path, labels):
    with pytest.raises(ValueError, match="y_train holds labels other than 0 and 1"):
        imdb.load_data(path=keras_npz(tmp_path / "imdb.npz", y_train=np.array(labels)))


def test_keras_npz_with_fewer_labels_than_reviews_is_refused(tmp_path):
    with pytest.raises(ValueError, match=r"x_train \(4,\) and y_train \(3,\) are not one label per review"):
        imdb.load_data(path=keras_npz(tmp_path / "imdb.npz", y_train=np.array([0, 1, 1])))


@pytest.mark.parametrize("word_id", [2**31, 2**40, 0, -5])
def test_keras_npz_word_ids_that_do_not_fit_are_refused_not_wrapped(tmp_path, word_id):
    x = np.empty(4, dtype=object)
    x[:] = [[1, 2], [3, word_id], [4], [5, 6]]
    with pytest.raises(ValueError, match=f"review 1 of x_train has word id {word_id}"):
        imdb.load_data(path=keras_npz(tmp_path / "imdb.npz", x_train=x))


class HugeObjectArray:
    """Pickles as an object array of 3e9 elements whose list holds none: NumPy alone would allocate
    22 GiB for it and then crash."""

    def __reduce__(self):
        empty = np.empty(0, dtype=object)
        rebuild, args, state = empty.__reduce__()
        return rebuild, args, (state[0], (3 * 10**9,), state[2], state[3], [])


def test_a_keras_npz_pickle_declaring_a_huge_array_is_refused_before_it_is_allocated(tmp_path):
    good, path = keras_npz(tmp_path / "good.npz"), tmp_path / "imdb.npz"
    member = io.BytesIO()
    np.lib.format.write_array_header_1_0(member, {"descr": "|O", "fortran_order": False, "shape": (1,)})
    member.write(pickle.dumps(HugeObjectArray(), protocol=2))
    with zipfile.ZipFile(good) as original, zipfile.ZipFile(path, "w") as hostile:
        for name in original.namelist():
            hostile.writestr(name, member.getvalue() if name == "x_test.npy" else original.read(name))
    assert "an object array of shape (3000000000,) with 0 elements" in load_in_child(path, memory_gb=2)


def test_a_keras_npz_that_pickles_a_callable_is_refused(tmp_path):
    payload = np.empty(1, dtype=object)
    payload[0] = os.system
    with pytest.raises(ValueError, match="refusing to load"):
        imdb.load_data(path=keras_npz(tmp_path / "evil.npz", x_train=payload, y_train=np.zeros(1, np.int64)))


@pytest.mark.parametrize("damage", ["float offsets", "2-D ranks", "int64 ranks"])
def test_a_cache_with_the_wrong_dtypes_or_ranks_is_rebuilt(tmp_path, capsys, damage):
    path = write_tarball(tmp_path)
    expected = imdb.load_data(path=path)
    cache = aclimdb.cache_path(path, storage.cache_dir())
    with np.load(cache) as data:
        arrays = {k: data[k] for k in data.files}
    if damage == "float offsets":
        arrays["train_offsets"] = arrays["train_offsets"].astype(np.float64)
    elif damage == "2-D ranks":
        arrays["train_ranks"] = arrays["train_ranks"].reshape(1, -1)
    else:
        arrays["test_ranks"] = arrays["test_ranks"].astype(np.int64)
    with open(cache, "wb") as f:
        np.savez(f, **arrays)
    capsys.readouterr()
    again = imdb.load_data(path=path)
    assert "rebuilding the IMDB cache" in capsys.readouterr().err
    assert list(map(list, again[0][0])) == list(map(list, expected[0][0]))
    aclimdb.load(cache)  # valid again
    assert len(REVIEWS) == len(again[0][0]) + len(again[1][0])


@pytest.mark.parametrize("text", ["[" * 100_000 + "]" * 100_000, "[1, 2]", '{"good": 1, "bad": 1.5}',
                                  '{"w": Infinity}'])
def test_a_damaged_word_index_is_refused(tmp_path, text):
    keras_npz(tmp_path / "imdb.npz")
    (tmp_path / "imdb_word_index.json").write_text(text)
    with pytest.raises(ValueError, match="imdb_word_index.json: not a readable word index"):
        imdb.get_word_index(tmp_path / "imdb.npz")


def test_json_word_index_decode_round_trip_still_works(tmp_path):
    keras_npz(tmp_path / "imdb.npz")
    (tmp_path / "imdb_word_index.json").write_text(json.dumps({"good": 1, "film": 2}))
    assert imdb.get_word_index(tmp_path / "imdb.npz") == {"good": 1, "film": 2}
