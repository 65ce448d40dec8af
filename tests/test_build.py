"""The build's description, the thread setting and, in a portable build, the run-time SIMD dispatch."""

import os
import subprocess
import sys

import numpy as np
import pytest

import rnnkit
from rnnkit import kernels

from cells import backward, forward, gradient_names, loss_gradients, make_problem


def python(code, **env):
    full_env = dict(os.environ)
    full_env.update(env)
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=full_env)


def test_rnnkit_num_threads_sets_the_default():
    done = python("import rnnkit; print(rnnkit.get_num_threads())", RNNKIT_NUM_THREADS="3")
    assert done.stdout.strip() == "3"
    bad = python("import rnnkit", RNNKIT_NUM_THREADS="many")
    assert bad.returncode != 0 and "RNNKIT_NUM_THREADS must be a positive integer, got 'many'" in bad.stderr


def test_default_thread_count_is_the_cores_this_process_may_use():
    done = python("import rnnkit, os; print(rnnkit.get_num_threads(), len(os.sched_getaffinity(0)))",
                  RNNKIT_NUM_THREADS="")
    threads, cores = done.stdout.split()
    assert threads == cores


def test_simd_build_in_use_is_reported():
    info = rnnkit.build_info()
    assert info["build"] in ("native", "portable")
    assert info["simd"] in info["simd_available"]
    if info["build"] == "native":
        assert info["simd"] == "native" and "-march=native" in info["flags"]


def test_rnnkit_isa_that_is_not_compiled_in_fails_the_import_clearly():
    done = python("import rnnkit", RNNKIT_ISA="sse9")
    assert done.returncode != 0 and "RNNKIT_ISA=sse9: not compiled into this build" in done.stderr


portable = pytest.mark.skipif(rnnkit.build_info()["build"] != "portable", reason="needs a portable build")


@portable
@pytest.mark.parametrize("isa", ["generic", "avx2", "avx512"])
def test_each_simd_build_runs_when_chosen_and_agrees_with_the_others(isa):
    if isa not in rnnkit.build_info()["simd_available"]:
        pytest.skip(f"this CPU cannot run {isa}")
    code = ("import rnnkit, numpy as np; from rnnkit import kernels; print(rnnkit.build_info()['simd']); "
            "rng = np.random.default_rng(0); x = rng.standard_normal((3, 7, 5)); "
            "print(repr(float(kernels.lstm_forward(x, rng.standard_normal((5, 24)), rng.standard_normal((6, 24)), "
            "np.zeros(24)).outputs.sum())))")
    done = python(code, RNNKIT_ISA=isa)
    assert done.returncode == 0, done.stderr
    chosen, total = done.stdout.split()
    assert chosen == isa
    rng = np.random.default_rng(0)
    x = rng.standard_normal((3, 7, 5))
    here = kernels.lstm_forward(x, rng.standard_normal((5, 24)), rng.standard_normal((6, 24)), np.zeros(24))
    np.testing.assert_allclose(float(total), here.outputs.sum(), rtol=1e-12)


def test_token_path_and_lengths_give_the_same_bits_for_any_thread_count():
    previous = rnnkit.get_num_threads()
    try:
        for cell in ("simple_rnn", "lstm", "gru"):
            p = make_problem(cell, 45, 70, 6, 19, dtype=np.float32, initial_state=True)
            table = np.random.default_rng(1).standard_normal((40, 6)).astype(np.float32)
            ids = np.random.default_rng(2).integers(0, 40, (45, 70))
            lengths = np.random.default_rng(3).integers(0, 71, 45)
            runs = []
            for n in (1, 2, 3):
                rnnkit.set_num_threads(n)
                fwd = forward(kernels, cell, dict(p, x=ids), embeddings=table, lengths=lengths, padding="post")
                runs.append((fwd, backward(kernels, cell, fwd, *loss_gradients(cell, fwd, "both"))))
            for fwd, grads in runs[1:]:
                np.testing.assert_array_equal(fwd.outputs, runs[0][0].outputs)
                for name in gradient_names(cell)[1:] + ["dembeddings"]:
                    np.testing.assert_array_equal(getattr(grads, name), getattr(runs[0][1], name), err_msg=name)
    finally:
        rnnkit.set_num_threads(previous)
