"""Model, weight and training-state files that are damaged or made to hurt: each raises ValueError
naming the file, quickly, without allocating more than the arrays the file really holds."""

import io
import json
import os
import subprocess
import sys
import time
import tracemalloc
import zipfile

import numpy as np
import pytest

from rnnkit.layers import LSTM, Dense, Embedding
from rnnkit.models import Sequential, load_model
from rnnkit.utils import set_random_seed


def saved_model(tmp_path):
    set_random_seed(0)
    model = Sequential([Embedding(20, 4), LSTM(3), Dense(1, activation="sigmoid")])
    model.compile("rmsprop", "binary_crossentropy", metrics=["acc"])
    rng = np.random.default_rng(0)
    model.fit(rng.integers(0, 20, (16, 5)), rng.integers(0, 2, 16), epochs=1, batch_size=8, verbose=0)
    path = tmp_path / "model.rnnkit"
    model.save(path)
    return model, path


def members(path):
    with np.load(path) as data:
        return str(data["__header__"]), [data[n] for n in sorted(n for n in data.files if n.startswith("array_"))]


def write(path, header_text, arrays):
    """An archive as rnnkit writes one, with any header text and arrays."""
    with open(path, "wb") as f:  # a file object: np.savez would add .npz to a name
        np.savez(f, __header__=np.array(header_text), **{f"array_{i:05d}": a for i, a in enumerate(arrays)})
    return path


def rewritten(tmp_path, edit_header=None, edit_arrays=None, name="hostile.rnnkit"):
    _, path = saved_model(tmp_path)
    text, arrays = members(path)
    header = json.loads(text)
    if edit_header:
        header = edit_header(header)
    if edit_arrays:
        arrays = edit_arrays(arrays)
    return write(tmp_path / name, header if isinstance(header, str) else json.dumps(header), arrays)


def assert_refused_quickly(path, match=None, load=load_model, seconds=1.0, megabytes=20):
    tracemalloc.start()
    began = time.perf_counter()
    try:
        with pytest.raises(ValueError, match=match) as error:
            load(path)
        elapsed, (_, peak) = time.perf_counter() - began, tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert str(path) in str(error.value)
    assert elapsed < seconds, f"took {elapsed:.2f} s"
    assert peak < megabytes * 2**20, f"allocated {peak / 2**20:.0f} MB"


@pytest.mark.parametrize("header", ["[1, 2]", "3", "null", '"a string"'])
def test_a_header_that_is_not_a_json_object_is_refused(tmp_path, header):
    assert_refused_quickly(rewritten(tmp_path, edit_header=lambda h: header), "not an object")


def test_a_deeply_nested_header_is_refused(tmp_path):
    assert_refused_quickly(rewritten(tmp_path, edit_header=lambda h: "[" * 100_000 + "]" * 100_000))


def test_infinity_and_nan_in_the_header_are_refused(tmp_path):
    def infinite_units(header):
        header["model"]["layers"][1]["config"]["units"] = 3
        return json.dumps(header).replace('"units": 3', '"units": Infinity')

    assert_refused_quickly(rewritten(tmp_path, edit_header=infinite_units), "Infinity")


@pytest.mark.parametrize("units", [10**12, 5000, -3, 2.5, "3", True])
def test_a_layer_larger_or_other_than_its_arrays_is_refused_before_it_is_built(tmp_path, units):
    def edit(header):
        header["model"]["layers"][1]["config"]["units"] = units
        return header

    assert_refused_quickly(rewritten(tmp_path, edit_header=edit))


def test_an_embedding_claiming_a_huge_vocabulary_is_refused_before_it_is_built(tmp_path):
    def edit(header):
        header["model"]["layers"][0]["config"]["input_dim"] = 10**9
        return header

    assert_refused_quickly(rewritten(tmp_path, edit_header=edit), "more than the file holds")


@pytest.mark.parametrize("dtype", [np.int64, np.complex64, np.float16, np.bool_])
def test_weight_arrays_of_another_dtype_are_refused_not_cast(tmp_path, dtype):
    def edit(arrays):
        arrays[2] = (arrays[2] * 10).astype(dtype)
        return arrays

    assert_refused_quickly(rewritten(tmp_path, edit_arrays=edit), "is |dtype")


def test_optimizer_state_of_another_shape_is_refused(tmp_path):
    def edit(arrays):
        arrays[-1] = np.zeros(arrays[-1].size + 1, arrays[-1].dtype)
        return arrays

    assert_refused_quickly(rewritten(tmp_path, edit_arrays=edit), "optimizer state")


def test_a_zip_bomb_is_refused_without_inflating_it(tmp_path):
    _, path = saved_model(tmp_path)
    text, arrays = members(path)
    header = json.loads(text)
    header["model"]["layers"][0]["config"]["input_dim"] = 2**25  # 512 MB of float32 embeddings, all zeros
    bomb = tmp_path / "bomb.rnnkit"
    with zipfile.ZipFile(bomb, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=9) as z:
        z.writestr("__header__.npy", npy_bytes(np.array(json.dumps(header))))
        with z.open("array_00000.npy", "w", force_zip64=True) as member:
            np.lib.format.write_array_header_2_0(member, {"descr": "<f4", "fortran_order": False,
                                                          "shape": (2**25, 4)})
            chunk = bytes(2**24)
            for _ in range(2**29 // 2**24):
                member.write(chunk)
        for i, a in enumerate(arrays[1:], start=1):
            z.writestr(f"array_{i:05d}.npy", npy_bytes(a))
    assert bomb.stat().st_size < 2**20
    assert_refused_quickly(bomb, "expand")


def npy_bytes(array):
    buffer = io.BytesIO()
    np.lib.format.write_array(buffer, array, allow_pickle=False)
    return buffer.getvalue()


def test_a_pickled_array_is_refused(tmp_path):
    _, path = saved_model(tmp_path)
    text, arrays = members(path)
    hostile = tmp_path / "pickle.rnnkit"
    with zipfile.ZipFile(hostile, "w") as z:
        z.writestr("__header__.npy", npy_bytes(np.array(text)))
        buffer = io.BytesIO()
        np.lib.format.write_array(buffer, np.array([{"a": 1}], dtype=object), allow_pickle=True)
        z.writestr("array_00000.npy", buffer.getvalue())
        for i, a in enumerate(arrays[1:], start=1):
            z.writestr(f"array_{i:05d}.npy", npy_bytes(a))
    assert_refused_quickly(hostile)


def test_every_single_byte_corruption_loads_the_same_model_or_raises_value_error(tmp_path):
    model, path = saved_model(tmp_path)
    good = path.read_bytes()
    x = np.arange(10).reshape(2, 5)
    expected = model.predict(x)
    damaged = tmp_path / "damaged.rnnkit"
    outcomes = set()
    for position in range(0, len(good), 3):
        damaged.write_bytes(good[:position] + bytes([good[position] ^ 0x5A]) + good[position + 1:])
        try:
            loaded = load_model(damaged)
        except ValueError as e:
            assert str(damaged) in str(e)
            outcomes.add("refused")
            continue
        np.testing.assert_array_equal(loaded.predict(x), expected)  # a byte nothing reads: the same model
        outcomes.add("loaded")
    assert "refused" in outcomes


@pytest.mark.parametrize("what", ["a FIFO", "a directory", "/dev/zero"])
def test_a_path_that_is_not_a_regular_file_is_refused_without_blocking(tmp_path, what):
    path = {"a FIFO": tmp_path / "fifo.rnnkit", "a directory": tmp_path, "/dev/zero": "/dev/zero"}[what]
    if what == "a FIFO":
        os.mkfifo(path)
    code = ("import sys; from rnnkit.models import load_model\n"
            "try:\n    load_model(sys.argv[1])\nexcept ValueError as e:\n    print(e)")
    done = subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert f"{path}: not a readable rnnkit file: not a regular file" in done.stdout


def test_load_weights_checks_its_file_the_same_way(tmp_path):
    model, _ = saved_model(tmp_path)
    weights = tmp_path / "weights.rnnkit"
    model.save_weights(weights)
    text, arrays = members(weights)
    arrays[1] = arrays[1].astype(np.complex128) + 1j
    hostile = write(tmp_path / "hostile-weights.rnnkit", text, arrays)
    before = model.get_weights()
    assert_refused_quickly(hostile, "complex128", load=model.load_weights)
    for a, b in zip(model.get_weights(), before):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("encoding", [{"words": 5}, {"words": ["a", 3]}, {"words": [], "maxlen": -1},
                                      {"words": [], "padding": "middle"}, {"words": [], "__class__": "x"}, [1, 2]])
def test_a_malformed_text_encoding_is_refused(tmp_path, encoding):
    def edit(header):
        header["text_encoding"] = encoding
        return header

    assert_refused_quickly(rewritten(tmp_path, edit_header=edit), "hostile.rnnkit: the saved model cannot be rebuilt")


@pytest.mark.parametrize("vocabulary", [7, ["a", 7], ["a", "a"], ["a", "[UNK]"]])
def test_a_malformed_text_vectorization_vocabulary_is_refused(tmp_path, vocabulary):
    def edit(header):
        header["model"]["layers"].insert(0, {"class_name": "TextVectorization",
                                             "config": {"name": "tv", "vocabulary": vocabulary}})
        return header

    assert_refused_quickly(rewritten(tmp_path, edit_header=edit), "hostile.rnnkit: the saved model cannot be rebuilt")
