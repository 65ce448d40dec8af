"""bfloat16 products (precision='bfloat16', Keras' mixed_bfloat16 policy): the kernels against the
reference with the same rounding, on every CPU path, and the policy API."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import rnnkit
from rnnkit import kernels, mixed_precision, reference
from rnnkit.layers import GRU, LSTM, Bidirectional, Dense, Embedding, SimpleRNN
from rnnkit.models import Sequential, load_model

from cells import (
    CELLS,
    assert_same_bits,
    backward,
    forward,
    gradient_names,
    loss_gradients,
    make_problem,
    state_names,
    train_step,
    with_each_thread_count,
)
from keras_peer import keras, needs_keras

HERE = Path(__file__).parent


def bits(x):
    return np.asarray(x, np.float32).view(np.uint32)


def test_rounding_to_bfloat16_is_to_nearest_even_with_subnormals_flushed():
    one = 1.0
    ulp = 2.0**-7  # of bfloat16 at 1
    cases = {
        one + ulp / 2: one,  # a tie: to the even neighbour, 1
        one + 3 * ulp / 2: one + 2 * ulp,  # a tie: to the even neighbour, above
        one + ulp / 2 + 2.0**-20: one + ulp,  # past the tie
        -(one + ulp / 4): -one,
        1e-40: 0.0,  # float32 subnormal: a zero
        float(np.finfo(np.float32).max): np.inf,  # past bfloat16's largest: infinity
        np.inf: np.inf,
    }
    got = reference.to_bfloat16(np.array(list(cases), np.float32))
    np.testing.assert_array_equal(got, np.array(list(cases.values()), np.float32))
    assert np.signbit(reference.to_bfloat16(np.float32(-1e-40)))
    assert np.isnan(reference.to_bfloat16(np.float32(np.nan)))
    assert not (bits(reference.to_bfloat16(np.random.default_rng(0).standard_normal(1000))) & 0xFFFF).any()


def assert_bfloat16_close(got, want, name):
    """Agreement to float32 sums almost everywhere; where a value the kernel rounds to bfloat16 lies
    within float32 rounding of a bfloat16 rounding boundary, the two may round it apart: then no more
    than one bfloat16 step (2^-8 relative) separates them."""
    assert got.shape == want.shape, name
    error = np.abs(got - want) / max(np.abs(want).max(), 1e-30)
    assert error.max() < 2.0**-8, f"{name}: {error.max():.2e} apart, more than a bfloat16 step"
    assert np.median(error) < 2e-6 and np.mean(error < 2e-5) > 0.9, f"{name}: not float32 close ({error.max():.2e})"


@pytest.mark.parametrize("inputs", ["dense", "tokens", "lengths_and_dropout"])
@pytest.mark.parametrize("cell", CELLS)
def test_bfloat16_products_match_the_reference_with_the_same_rounding(cell, inputs):
    p = make_problem(cell, 6, 9, 5, 7, dtype=np.float32, initial_state=True)  # odd k: a lone last pair
    options = {}
    if inputs == "tokens":
        table = make_problem(cell, 11, 1, 5, 7, dtype=np.float32, seed=4)["x"][:, 0]
        p["x"] = np.random.default_rng(2).integers(0, 11, (6, 9)).astype(np.int32)
        options["embeddings"] = table
    elif inputs == "lengths_and_dropout":
        options["lengths"] = [9, 0, 4, 9, 1, 6]
        options["padding"] = "post"
        options["recurrent_mask"] = ((np.random.default_rng(5).random((6, 7)) >= 0.3) / 0.7).astype(np.float32)
    fwd = forward(kernels, cell, p, precision="bfloat16", **options)
    p64 = {k: (v.astype(np.float64) if v.dtype.kind == "f" else v) for k, v in p.items()}
    options64 = {k: (np.asarray(v, np.float64) if isinstance(v, np.ndarray) and v.dtype.kind == "f" else v)
                 for k, v in options.items()}
    ref = forward(reference, cell, p64, precision="bfloat16", **options64)
    full = forward(reference, cell, p64, **options64)
    # float32 sums against float64 ones: far closer than full precision is to bfloat16 products
    assert_bfloat16_close(fwd.outputs, ref.outputs, "outputs")
    assert np.abs(fwd.outputs - full.outputs).max() > 1e-3 * np.abs(full.outputs).max()
    for name in state_names(cell):
        assert_bfloat16_close(getattr(fwd, name), getattr(ref, name), name)
    d = loss_gradients(cell, fwd, "both")
    grads = backward(kernels, cell, fwd, *d)
    ref_grads = backward(reference, cell, ref, *[None if a is None else a.astype(np.float64) for a in d])
    for name in gradient_names(cell) + (["dembeddings"] if inputs == "tokens" else []):
        got, want = getattr(grads, name), getattr(ref_grads, name)
        if got is None and want is None:
            continue
        assert_bfloat16_close(got, want, name)


def test_bfloat16_precision_needs_float32_and_a_known_name():
    p = make_problem("lstm", 2, 3, 4, 5)
    with pytest.raises(TypeError, match="precision='bfloat16' rounds float32 products; the arrays are float64"):
        forward(kernels, "lstm", p, precision="bfloat16")
    with pytest.raises(ValueError, match="precision: expected 'full' or 'bfloat16', got 'half'"):
        forward(kernels, "lstm", p, precision="half")
    with pytest.raises(ValueError, match="precision: expected one of"):
        forward(reference, "lstm", p, precision="half")


WORKER = """
import json, sys
import numpy as np
sys.path.insert(0, {tests!r})
import rnnkit
from rnnkit import kernels
from cells import CELLS, backward, forward, gradient_names, loss_gradients, make_problem
out = {{"bfloat16": rnnkit.build_info()["bfloat16"], "bits": {{}}}}
for cell in CELLS:
    for shape in [(6, 9, 5, 7), (37, 11, 33, 20)]:
        p = make_problem(cell, *shape, dtype=np.float32, initial_state=True)
        fwd = forward(kernels, cell, p, precision="bfloat16")
        grads = backward(kernels, cell, fwd, *loss_gradients(cell, fwd, "both"))
        arrays = [fwd.outputs, fwd.h] + [getattr(grads, n) for n in gradient_names(cell)]
        out["bits"][f"{{cell}}{{shape}}"] = [a.view(np.uint32).tobytes().hex() for a in arrays]
print(json.dumps(out))
"""


def run_worker(env):
    done = subprocess.run([sys.executable, "-c", WORKER.format(tests=str(HERE))], capture_output=True, text=True,
                          env={**os.environ, **env}, timeout=300)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_every_route_of_the_bfloat16_products_gives_the_same_bits():
    default = run_worker({})
    assert default["bfloat16"] in ("avx512_bf16", "float32_fma")
    # the float32 tiles on rounded operands, in this build and in the AVX2 one (no bfloat16 instructions)
    fma = run_worker({"RNNKIT_BF16": "float32_fma"})
    assert fma["bfloat16"] == "float32_fma" and fma["bits"] == default["bits"]
    # the AVX2 build too; not the generic one, whose float32 gate arithmetic (no fused multiply-adds)
    # rounds differently in float32 already
    if rnnkit.build_info()["simd"] != "generic" and "avx2" in rnnkit.build_info()["simd_available"]:
        assert run_worker({"RNNKIT_ISA": "avx2"})["bits"] == default["bits"]
    dot = run_worker({"RNNKIT_BF16": "avx512_bf16"})
    if dot["bfloat16"] != "avx512_bf16":
        pytest.skip("this CPU has no AVX512_BF16: vdpbf16ps could not be compared")
    assert dot["bits"] == default["bits"]


@pytest.mark.parametrize("cell", CELLS)
def test_bfloat16_results_do_not_depend_on_the_thread_count(cell):
    p = make_problem(cell, 64, 40, 24, 16, dtype=np.float32)
    assert_same_bits(cell, with_each_thread_count(lambda n: train_step(cell, p, precision="bfloat16")))


# --- the policy API ----------------------------------------------------------------------------------


@pytest.fixture
def float32_afterwards():
    yield
    mixed_precision.set_global_policy("float32")


def test_policies_follow_keras_names_and_dtypes(float32_afterwards):
    policy = mixed_precision.Policy("mixed_bfloat16")
    assert (policy.name, policy.compute_dtype, policy.variable_dtype) == ("mixed_bfloat16", "bfloat16", "float32")
    assert repr(policy) == '<DTypePolicy "mixed_bfloat16">'
    assert mixed_precision.global_policy() == mixed_precision.DTypePolicy("float32")
    with pytest.raises(ValueError, match="Cannot convert 'mixed_float16' to a dtype policy"):
        mixed_precision.Policy("mixed_float16")
    layer = LSTM(4, dtype="mixed_bfloat16")
    assert (layer.dtype, layer.compute_dtype, layer.variable_dtype) == ("float32", "bfloat16", "float32")
    assert layer.precision == "bfloat16" and LSTM(4).precision == "full"
    mixed_precision.set_global_policy("mixed_bfloat16")
    assert GRU(3).dtype_policy.name == "mixed_bfloat16"
    assert Dense(2).get_config()["dtype"] == "mixed_bfloat16"
    assert LSTM(2, dtype="float64").dtype == "float64"  # an explicit dtype wins over the global policy
    mixed_precision.set_global_policy(None)
    assert SimpleRNN(2).dtype_policy.name == "float32"
    # Keras' serialized form, as .keras files hold it
    keras_form = {"module": "keras", "class_name": "DTypePolicy", "config": {"name": "mixed_bfloat16"}}
    assert LSTM(2, dtype=keras_form).compute_dtype == "bfloat16"


def imdb_like(seed=0):
    rng = np.random.default_rng(seed)
    x = rng.integers(1, 50, (64, 20)).astype(np.int32)
    y = (x[:, :5].mean(axis=1) > 25).astype(np.float32)
    return x, y


@pytest.mark.parametrize("bidirectional", [False, True])
def test_a_mixed_bfloat16_model_runs_its_recurrent_products_in_bfloat16(bidirectional, tmp_path):
    x, y = imdb_like()

    def model(dtype):
        rnnkit.utils.set_random_seed(3)
        layer = LSTM(8, dtype=dtype)
        m = Sequential([Embedding(50, 6), Bidirectional(layer) if bidirectional else layer,
                        Dense(1, activation="sigmoid")])
        m.compile(optimizer="rmsprop", loss="binary_crossentropy")
        m.build((None, 20))
        return m

    mixed, full = model("mixed_bfloat16"), model("float32")
    for a, b in zip(mixed.get_weights(), full.get_weights()):
        assert a.dtype == np.float32
        np.testing.assert_array_equal(a, b)  # the same float32 weights to start from
    out_mixed, out_full = mixed.predict(x, verbose=0), full.predict(x, verbose=0)
    assert out_mixed.dtype == np.float32
    assert 0 < np.abs(out_mixed - out_full).max() < 0.02  # bfloat16 products: close, not equal
    # the recurrent layer's own forward: its kernel call with precision='bfloat16'
    recurrent = mixed.layers[1].forward_layer if bidirectional else mixed.layers[1]
    h = recurrent(np.random.default_rng(1).standard_normal((4, 20, 6)).astype(np.float32))
    params = recurrent.params
    want = kernels.lstm_forward(np.random.default_rng(1).standard_normal((4, 20, 6)).astype(np.float32),
                                params["kernel"], params["recurrent_kernel"], params["bias"],
                                return_sequences=False, precision="bfloat16").h
    np.testing.assert_array_equal(h, want)
    history = mixed.fit(x, y, epochs=2, batch_size=16, verbose=0)
    assert np.isfinite(history.history["loss"]).all()
    assert all(w.dtype == np.float32 for w in mixed.get_weights())
    mixed.save(tmp_path / "m.rnnkit")
    again = load_model(tmp_path / "m.rnnkit")
    recurrent_again = again.layers[1].forward_layer if bidirectional else again.layers[1]
    assert recurrent_again.dtype_policy.name == "mixed_bfloat16"
    np.testing.assert_array_equal(again.predict(x, verbose=0), mixed.predict(x, verbose=0))


@needs_keras
def test_a_mixed_bfloat16_layer_keeps_its_policy_through_a_keras_file(tmp_path):
    x, _ = imdb_like()
    model = Sequential([Embedding(50, 6), LSTM(8, dtype="mixed_bfloat16"), Dense(1, activation="sigmoid")])
    model.build((None, 20))
    model.save(tmp_path / "m.keras")
    theirs = keras.saving.load_model(tmp_path / "m.keras")
    assert theirs.layers[1].dtype_policy.name == "mixed_bfloat16"
    ours = load_model(tmp_path / "m.keras")
    assert ours.layers[1].dtype_policy.name == "mixed_bfloat16"
    np.testing.assert_array_equal(ours.predict(x, verbose=0), model.predict(x, verbose=0))
