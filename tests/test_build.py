"""The build's description, the thread setting and, in a portable build, the run-time SIMD dispatch."""

import os
import subprocess
import sys

import numpy as np
import pytest

import rnnkit
from rnnkit import kernels


def python(code, **env):
    full_env = dict(os.environ)
    full_env.update(env)
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=full_env)


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
