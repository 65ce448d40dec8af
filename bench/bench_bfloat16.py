"""mixed_bfloat16 against float32, and against PyTorch's bfloat16 autocast, side by side.

    python bench/bench_bfloat16.py            # ~2 minutes
    python bench/bench_bfloat16.py --repeats 5

At the tutorial's shape (batch 128, 500 steps, 32 features, 32 units, 2 threads) it times the IMDB
model (Embedding(10000, 32) -> LSTM(32) -> Dense(1), RMSprop) training step and inference under the
float32 and mixed_bfloat16 policies (each model trained WARM_UP_STEPS steps first), then the LSTM
layer alone (forward + backward of the whole output
sequence, and inference) with precision='bfloat16' against torch.nn.LSTM under
torch.autocast('cpu', dtype=torch.bfloat16). It says which bfloat16 products ran (AVX512_BF16 or
emulated) and measures the CPU's multiply-add rate for float32 FMAs and bfloat16 pairs
(--peak-only: that alone). Ratios are medians of per-round ratios. Writes bfloat16.json and
bfloat16.md to --out.
"""

from __future__ import annotations

import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
# isort: off
from bench_kernels import (  # noqa: E402
    TUTORIAL,
    comparison_main,
    machine,
    machine_line,
    numpy_style,
    problem,
    side_by_side,
    table,
    torch_style,
)
import numpy as np  # noqa: E402
# isort: on

import rnnkit  # noqa: E402
from rnnkit import kernels  # noqa: E402


def imdb_model(policy):
    from rnnkit.layers import LSTM, Dense, Embedding
    from rnnkit.models import Sequential

    rnnkit.utils.set_random_seed(0)
    model = Sequential([Embedding(10000, 32), LSTM(32, dtype=policy), Dense(1, activation="sigmoid")])
    model.compile(optimizer="rmsprop", loss="binary_crossentropy")
    return model


# Training steps each model takes before it is timed. An untrained model's first steps here have
# gradients that fade into subnormal numbers, which make float32 several times slower on some CPUs
# (docs/performance.md) while the bfloat16 rounding flushes them: that would be no measure of the products.
WARM_UP_STEPS = 40


def model_steps(batch, timesteps):
    """{policy: (training step, inference)} of the IMDB model on random token ids, after WARM_UP_STEPS."""
    rng = np.random.default_rng(0)
    ids = rng.integers(1, 10000, (batch, timesteps)).astype(np.int32)
    labels = rng.integers(0, 2, batch).astype(np.float32)
    out = {}
    for policy in ("float32", "mixed_bfloat16"):
        model = imdb_model(policy)
        for _ in range(WARM_UP_STEPS):
            model.train_on_batch(ids, labels)
        out[policy] = (lambda m=model: m.train_on_batch(ids, labels),
                       lambda m=model: m.predict_on_batch(ids))
    return out


def layer_steps(batch, timesteps, features, units):
    """{name: (training step, inference)} of the LSTM layer: rnnkit's kernels and, when installed,
    torch.nn.LSTM under bfloat16 autocast."""
    p = problem("lstm", batch, timesteps, features, units)
    out = {"rnnkit float32": numpy_style(kernels, "lstm", p),
           "rnnkit bfloat16": numpy_style(kernels, "lstm", p, precision="bfloat16")}
    try:
        import torch
    except ImportError:
        return out
    torch.set_num_threads(rnnkit.get_num_threads())
    out["torch bfloat16 autocast"] = torch_style("lstm", p, autocast=torch.bfloat16)
    return out


def multiply_add_rates() -> dict:
    """G multiply-adds per second of one core: float32 FMAs and bfloat16 pair dot products (when the
    CPU has them), from a native helper when a compiler is at hand; {} otherwise."""
    import shutil
    import subprocess
    import tempfile

    compiler = shutil.which("c++") or shutil.which("g++")
    source = Path(__file__).with_name("multiply_add_rate.cpp")
    if compiler is None or not source.exists():
        return {}
    with tempfile.TemporaryDirectory() as tmp:
        exe = Path(tmp) / "rate"
        built = subprocess.run([compiler, "-O2", "-o", str(exe), str(source)], capture_output=True, text=True)
        if built.returncode != 0:
            return {}
        done = subprocess.run([str(exe)], capture_output=True, text=True, timeout=120)
    rates = {}
    for line in done.stdout.splitlines():
        key, _, value = line.partition(" ")
        rates[key] = float(value)
    return rates


def run(repeats):
    batch, timesteps, features, units = TUTORIAL
    rows = []

    def add(kind, mode, times, baseline, contender):
        ms = {name: 1000 * statistics.median(t) for name, t in times.items()}
        ratio = statistics.median(b / c for b, c in zip(times[baseline], times[contender]))
        rows.append({"what": kind, "mode": mode, "ms": ms, "baseline": baseline, "contender": contender,
                     "speedup": ratio})
        print(f"{kind:>6} {mode:<10} " + "  ".join(f"{k} {v:8.2f} ms" for k, v in ms.items()) +
              f"  {contender} vs {baseline}: {ratio:.2f}x", flush=True)

    steps = model_steps(batch, timesteps)
    for mode, pick in (("train", 0), ("inference", 1)):
        add("model", mode, side_by_side({k: v[pick] for k, v in steps.items()}, repeats), "float32",
            "mixed_bfloat16")
    layers = layer_steps(batch, timesteps, features, units)
    for mode, pick in (("train", 0), ("inference", 1)):
        times = side_by_side({k: v[pick] for k, v in layers.items()}, repeats)
        add("layer", mode, {k: times[k] for k in ("rnnkit float32", "rnnkit bfloat16")}, "rnnkit float32",
            "rnnkit bfloat16")
        if "torch bfloat16 autocast" in times:
            add("layer", mode, {k: times[k] for k in ("torch bfloat16 autocast", "rnnkit bfloat16")},
                "torch bfloat16 autocast", "rnnkit bfloat16")
    try:
        import torch

        torch_version = torch.__version__
    except ImportError:
        torch_version = None
    return {"machine": machine(), "build": rnnkit.build_info(), "torch": torch_version, "shape": TUTORIAL,
            "multiply_add_rates": multiply_add_rates(), "rows": rows}


def markdown(result):
    rates = result["multiply_add_rates"]
    rate_text = ", ".join(f"{k} {v:.0f}" for k, v in rates.items()) if rates else "not measured"
    first = machine_line(result, f"bfloat16 products: {result['build']['bfloat16']}; G multiply-adds/s per core: "
                                 f"{rate_text}; PyTorch {result['torch'] or 'not installed'}. Batch 128, 500 "
                                 "steps, 32 features, 32 units; median ms per call.")
    return table(first, ["what", "step", "baseline", "ms", "contender", "ms", "contender vs baseline"],
                 [[r["what"], r["mode"], r["baseline"], f"{r['ms'][r['baseline']]:.2f}", r["contender"],
                   f"{r['ms'][r['contender']]:.2f}", f"{r['speedup']:.2f}x"] for r in result["rows"]])


def main():
    if "--peak-only" in sys.argv:
        print(multiply_add_rates())
        return
    comparison_main(__doc__, "bfloat16", run, markdown)


if __name__ == "__main__":
    main()
