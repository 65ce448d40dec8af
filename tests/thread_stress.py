"""Kernel calls whose part counts change from call to call, on more threads than this machine has cores.

Run as a script (``python tests/thread_stress.py --threads 3 8 --rounds 2000``) by test_thread_pool.py, in a
child process so that a hang is a timeout and a crash an exit status, not a lost test session. Each round
runs every cell forward and backward over batches whose row groups give 2, 3 or all parts, on dense and
token inputs, and compares every array bit for bit with the same call on one thread. Prints one line,
``ok <calls>``, or exits 1 naming the first array that differs.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import fields

import numpy as np

import rnnkit
from rnnkit import kernels

GATES = {"simple_rnn": 1, "lstm": 4, "gru": 3}
# Row groups of 8: batch 9 runs on 2 parts, 17 on 3, 64 on 8, 130 on 17 (each capped by the threads); short
# calls alternating from 2 parts to more are where a pool that mixes up its jobs goes wrong.
BATCHES = (9, 17, 9, 64, 9, 130)
TIMESTEPS, FEATURES, UNITS, VOCABULARY = 3, 6, 16, 50


def problems(seed=0):
    rng = np.random.default_rng(seed)
    out = []
    for cell, g in GATES.items():
        weights = dict(
            kernel=rng.standard_normal((FEATURES, g * UNITS)).astype(np.float32) * 0.4,
            recurrent_kernel=rng.standard_normal((UNITS, g * UNITS)).astype(np.float32) * 0.25,
            bias=(rng.standard_normal((2, 3 * UNITS) if cell == "gru" else (g * UNITS,)) * 0.1).astype(np.float32),
        )
        embeddings = rng.standard_normal((VOCABULARY, FEATURES)).astype(np.float32)
        for batch in BATCHES:
            dense = rng.standard_normal((batch, TIMESTEPS, FEATURES)).astype(np.float32)
            ids = rng.integers(0, VOCABULARY, (batch, TIMESTEPS))
            lengths = rng.integers(0, TIMESTEPS + 1, batch)
            d_h = rng.standard_normal((batch, UNITS)).astype(np.float32)
            out.append((cell, dict(weights, x=dense), dict(lengths=lengths), d_h))
            out.append((cell, dict(weights, x=ids, embeddings=embeddings), {}, d_h))
    return out


def run(cell, arrays, options, d_h):
    """Every array a forward and its backward give, in a fixed order."""
    arrays = dict(arrays)
    fwd = getattr(kernels, f"{cell}_forward")(arrays.pop("x"), arrays.pop("kernel"), arrays.pop("recurrent_kernel"),
                                              arrays.pop("bias"), **arrays, **options)
    d_outputs = np.ones_like(fwd.outputs)
    grads = getattr(kernels, f"{cell}_backward")(fwd, d_outputs, d_h)
    results = [("outputs", fwd.outputs), ("h", fwd.h)]
    values = [(f.name, getattr(grads, f.name)) for f in fields(grads)]
    return results + [(name, value) for name, value in values if isinstance(value, np.ndarray)]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, nargs="+", default=[3, 8])
    parser.add_argument("--rounds", type=int, default=300)
    args = parser.parse_args(argv)
    cases = problems()
    rnnkit.set_num_threads(1)
    expected = [run(*case) for case in cases]
    calls = 0
    for round_ in range(args.rounds):
        # Threads alternate too: a pool that grew for 8 runs a 3-thread job next.
        rnnkit.set_num_threads(args.threads[round_ % len(args.threads)])
        for case, want in zip(cases, expected):
            got = run(*case)
            calls += 2
            for (name, a), (_, b) in zip(got, want):
                if a.tobytes() != b.tobytes():
                    print(f"{case[0]} batch {len(case[1]['x'])} on {rnnkit.get_num_threads()} threads: {name} differs "
                          f"from one thread's in round {round_}", file=sys.stderr)
                    return 1
    print("ok", calls)
    return 0


if __name__ == "__main__":
    sys.exit(main())
