"""bfloat16 products (precision='bfloat16'): the kernels against the reference with the same rounding,
on every route the products take."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import rnnkit
from rnnkit import kernels, reference

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
        3.0e38 * 1.2: np.inf,  # overflows to infinity
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
    if "avx2" in rnnkit.build_info()["simd_available"]:
        assert run_worker({"RNNKIT_ISA": "avx2"})["bits"] == default["bits"]
    dot = run_worker({"RNNKIT_BF16": "avx512_bf16"})
    if dot["bfloat16"] != "avx512_bf16":
        pytest.skip("this CPU has no AVX512_BF16: vdpbf16ps could not be compared")
    assert dot["bits"] == default["bits"]


@pytest.mark.parametrize("cell", CELLS)
def test_bfloat16_results_do_not_depend_on_the_thread_count(cell):
    p = make_problem(cell, 64, 40, 24, 16, dtype=np.float32)
    assert_same_bits(cell, with_each_thread_count(lambda n: train_step(cell, p, precision="bfloat16")))
