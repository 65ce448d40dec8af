"""Recurrent kernels side by side: rnnkit, the NumPy reference and PyTorch (when installed).

    python bench/bench_kernels.py                 # the tutorial shape and the sweep, ~3 minutes
    python bench/bench_kernels.py --quick         # the tutorial shape only

For SimpleRNN, LSTM and GRU it times the recurrent layer's training step (forward + full backward,
input gradient included) and its inference forward, and a whole model's training step (Embedding ->
RNN -> Dense -> binary cross-entropy -> RMSprop update), at the tutorial's shape (batch 128, 500
timesteps, 32 features, 32 units) and over a sweep of units and batch sizes. rnnkit and PyTorch run
in turns, round after round, all in this one process: each time is the median over the rounds, and
the ratio to PyTorch the median of the rounds' ratios. It reports GFLOP/s (matrix products only), the
fraction of this machine's single-precision matmul peak (measured here with a large NumPy matmul) and
the ratio to PyTorch; it writes JSON and a Markdown table to --out.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

# NumPy's OpenBLAS keeps its worker threads spinning for a while after each product (the reference's
# many small ones): beside rnnkit's threads on this 2-core machine they made the LSTM training step
# about 50% slower. So this process runs BLAS on one thread (set before NumPy loads it), and the
# matmul peak, which needs every thread, is measured in a child process (--matmul-peak) that keeps the
# caller's setting.
BLAS_THREADS_OF_CALLER = os.environ.get("OPENBLAS_NUM_THREADS")
if "--matmul-peak" not in sys.argv:
    os.environ["OPENBLAS_NUM_THREADS"] = "1"

import numpy as np  # noqa: E402

import rnnkit  # noqa: E402
from rnnkit import kernels, reference  # noqa: E402

GATES = {"simple_rnn": 1, "lstm": 4, "gru": 3}
TORCH_CLASS = {"simple_rnn": "RNN", "lstm": "LSTM", "gru": "GRU"}
TUTORIAL = (128, 500, 32, 32)


def median_seconds(fn, repeats, warmup=1):
    # Other runtimes' worker threads (PyTorch's OpenMP, NumPy's OpenBLAS) spin for a while after their
    # last call and would slow whatever runs next: let them go idle first.
    time.sleep(0.3)
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def side_by_side(fns, repeats, pause=0.1, window=0.05):
    """Seconds per call of each function, taking turns: {name: [seconds per round]}.

    This machine's speed drifts by tens of percent over seconds (other tenants), so the functions
    compared run in alternation, round after round (the order flips every round), and their ratio is
    taken round by round: both sides of a ratio ran within a fraction of a second of each other. In a
    round, a function runs once untimed after a pause, then back to back for about `window` seconds
    (at least twice), timed, as in a training loop: the pause lets the previous function's worker
    threads go idle (see median_seconds), and the untimed call and the window let its own threads and
    this virtual machine's CPUs wake up (after a pause they take milliseconds to come up to speed).
    """
    times = {name: [] for name in fns}
    for round_ in range(repeats):
        names = list(fns) if round_ % 2 == 0 else list(reversed(fns))
        for name in names:
            time.sleep(pause)
            start = time.perf_counter()
            fns[name]()
            calls = max(2, min(100, int(window / max(time.perf_counter() - start, 1e-6))))
            start = time.perf_counter()
            for _ in range(calls):
                fns[name]()
            times[name].append((time.perf_counter() - start) / calls)
    return times


def summary(times):
    """Median ms per function and, with PyTorch among them, the median of the per-round ratios."""
    out = {"ms": {name: 1000 * statistics.median(ts) for name, ts in times.items()}}
    if "torch" in times:
        out["speedup_vs_torch"] = statistics.median(t / r for t, r in zip(times["torch"], times["rnnkit"]))
    return out


def matmul_peak_gflops():
    """Single-precision GEMM throughput of this machine, as NumPy's BLAS reaches it, on all threads."""
    a = np.random.default_rng(0).standard_normal((2048, 2048), dtype=np.float32)
    seconds = median_seconds(lambda: a @ a, 7)
    return 2 * 2048**3 / seconds / 1e9


def matmul_peak_in_child():
    """matmul_peak_gflops() in a child process with BLAS threads as the caller had them."""
    env = dict(os.environ)
    del env["OPENBLAS_NUM_THREADS"]
    if BLAS_THREADS_OF_CALLER is not None:
        env["OPENBLAS_NUM_THREADS"] = BLAS_THREADS_OF_CALLER
    child = subprocess.run([sys.executable, __file__, "--matmul-peak"], env=env, check=True, capture_output=True,
                           text=True)
    return float(child.stdout)


def layer_flops(cell, batch, timesteps, features, units):
    """Matrix-product FLOPs of one forward; a backward is twice that (input, state and weight gradients)."""
    return 2.0 * batch * timesteps * (features + units) * GATES[cell] * units


def problem(cell, batch, timesteps, features, units, seed=0):
    rng = np.random.default_rng(seed)
    g = GATES[cell]
    return dict(
        x=rng.standard_normal((batch, timesteps, features), dtype=np.float32),
        kernel=(rng.standard_normal((features, g * units)) / np.sqrt(features)).astype(np.float32),
        recurrent_kernel=(rng.standard_normal((units, g * units)) / np.sqrt(units)).astype(np.float32),
        bias=np.zeros((2, 3 * units) if cell == "gru" else (g * units,), np.float32),
    )


def numpy_style(module, cell, p, **options):
    """(training step, inference) of rnnkit.kernels or rnnkit.reference, which share their signatures;
    options go to every forward (e.g. precision='bfloat16')."""
    fwd = getattr(module, f"{cell}_forward")
    bwd = getattr(module, f"{cell}_backward")
    args = (p["x"], p["kernel"], p["recurrent_kernel"], p["bias"])
    d_out = np.ones((p["x"].shape[0], p["x"].shape[1], p["recurrent_kernel"].shape[0]), np.float32)
    infer_kwargs = {"save_for_backward": False} if module is kernels else {}

    def train():
        bwd(fwd(*args, **options), d_out)

    return train, lambda: fwd(*args, **options, **infer_kwargs)


def torch_style(cell, p, autocast=None):
    """(training step, inference) of torch.nn's layer on p's sizes; autocast: a dtype (torch.bfloat16) for
    torch.autocast('cpu') around the layer."""
    import torch

    batch, timesteps, features = p["x"].shape
    units = p["recurrent_kernel"].shape[0]
    layer = getattr(torch.nn, TORCH_CLASS[cell])(features, units, batch_first=True)
    x = torch.tensor(p["x"], requires_grad=True)
    d_out = torch.ones(batch, timesteps, units)

    def autocasting():
        return torch.autocast("cpu", dtype=autocast, enabled=autocast is not None)

    def train():
        layer.zero_grad()
        x.grad = None
        with autocasting():
            out, _ = layer(x)
        out.float().backward(d_out)

    def infer():
        with torch.no_grad(), autocasting():
            layer(x)

    return train, infer


def rnnkit_model(cell, vocab, units):
    from rnnkit.layers import GRU, LSTM, Dense, Embedding, SimpleRNN
    from rnnkit.models import Sequential

    layer = {"simple_rnn": SimpleRNN, "lstm": LSTM, "gru": GRU}[cell](units)
    model = Sequential([Embedding(vocab, 32), layer, Dense(1, activation="sigmoid")])
    model.compile(optimizer="rmsprop", loss="binary_crossentropy")
    return model


def model_steps(cell, batch, timesteps, units, with_torch, repeats):
    """Seconds of whole-model training steps, rnnkit and PyTorch side by side, on random token ids."""
    vocab = 10000
    rng = np.random.default_rng(0)
    ids = rng.integers(1, vocab, (batch, timesteps)).astype(np.int32)
    labels = rng.integers(0, 2, batch).astype(np.float32)
    model = rnnkit_model(cell, vocab, units)
    fns = {"rnnkit": lambda: model.train_on_batch(ids, labels)}
    if with_torch:
        import torch

        emb = torch.nn.Embedding(vocab, 32)
        rnn = getattr(torch.nn, TORCH_CLASS[cell])(32, units, batch_first=True)
        dense = torch.nn.Linear(units, 1)
        params = list(emb.parameters()) + list(rnn.parameters()) + list(dense.parameters())
        opt = torch.optim.RMSprop(params, lr=0.001, alpha=0.9, eps=1e-7)
        x, y = torch.tensor(ids, dtype=torch.long), torch.tensor(labels)

        def step():
            opt.zero_grad()
            out_seq, _ = rnn(emb(x))
            loss = torch.nn.functional.binary_cross_entropy_with_logits(dense(out_seq[:, -1]).squeeze(1), y)
            loss.backward()
            opt.step()

        fns["torch"] = step
    return side_by_side(fns, repeats)


def torch_available():
    try:
        import torch

        return torch.__version__
    except ImportError:
        return None


def run(args):
    torch_version = torch_available()
    if torch_version:
        import torch

        torch.set_num_threads(rnnkit.get_num_threads())
    peak = matmul_peak_in_child()
    info = rnnkit.build_info()
    print(f"rnnkit {info['version']} ({info['simd']} kernels, {info['threads']} threads); "
          f"NumPy matmul peak {peak:.0f} GFLOP/s; PyTorch {torch_version or 'not installed'}", flush=True)
    if not torch_version:
        print("PyTorch is not installed: its columns are skipped (pip install torch==2.13.0 for the CPU build)")

    shapes = [TUTORIAL] if args.quick else [TUTORIAL] + [(128, 500, 32, u) for u in (64, 128, 256)] + [
        (b, 500, 32, 32) for b in (1, 32)]
    rows = []
    for shape in shapes:
        for cell in GATES:
            p = problem(cell, *shape)
            flops = layer_flops(cell, *shape)
            tutorial = shape == TUTORIAL
            impls = {"rnnkit": numpy_style(kernels, cell, p)}
            if tutorial and not args.no_reference:
                impls["numpy"] = numpy_style(reference, cell, p)
            if torch_version:
                impls["torch"] = torch_style(cell, p)
            for mode, factor in (("train", 3.0), ("inference", 1.0)):
                pick = 0 if mode == "train" else 1
                timed = {name: fns[pick] for name, fns in impls.items() if name != "numpy"}
                row = {"cell": cell, "batch": shape[0], "timesteps": shape[1], "features": shape[2],
                       "units": shape[3], "mode": mode, **summary(side_by_side(timed, args.repeats))}
                if "numpy" in impls:  # seconds per call: not worth many rounds
                    row["ms"]["numpy"] = 1000 * median_seconds(impls["numpy"][pick], 3)
                row["gflops"] = factor * flops / (row["ms"]["rnnkit"] / 1000) / 1e9
                row["peak_fraction"] = row["gflops"] / peak
                rows.append(row)
                print(format_row(row), flush=True)
        if shape == TUTORIAL:
            for cell in GATES:
                steps = model_steps(cell, *shape[:2], shape[3], bool(torch_version), args.repeats)
                row = {"cell": cell, "batch": shape[0], "timesteps": shape[1], "features": 32, "units": shape[3],
                       "mode": "model train step", **summary(steps)}
                rows.append(row)
                print(format_row(row), flush=True)
    return {"machine": machine(), "build": info, "torch": torch_version, "numpy_matmul_peak_gflops": peak,
            "rows": rows}


def format_row(row):
    ms = "  ".join(f"{k} {v:8.2f} ms" for k, v in row["ms"].items())
    extra = ""
    if "gflops" in row:
        extra += f"  {row['gflops']:6.1f} GFLOP/s ({100 * row['peak_fraction']:4.1f}% of peak)"
    if "speedup_vs_torch" in row:
        extra += f"  {row['speedup_vs_torch']:5.2f}x PyTorch"
    shape = f"B={row['batch']:<3} T={row['timesteps']} H={row['units']:<3}"
    return f"{row['cell']:>10} {shape} {row['mode']:<16} {ms}{extra}"


def machine():
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return {"cpu": cpu, "cores": cores, "python": sys.version.split()[0], "numpy": np.__version__}


def markdown(result):
    def cell(row, key, text):
        return text(row) if key in row else "-"

    first = machine_line(result, f"PyTorch {result['torch'] or 'not installed'}; NumPy matmul peak "
                                 f"{result['numpy_matmul_peak_gflops']:.0f} GFLOP/s. Median ms per call.")
    return table(first, ["cell", "batch", "units", "step", "rnnkit ms", "PyTorch ms", "NumPy ms", "rnnkit vs PyTorch",
                         "GFLOP/s", "of peak"],
                 [[r["cell"], str(r["batch"]), str(r["units"]), r["mode"], f"{r['ms']['rnnkit']:.2f}",
                   cell(r["ms"], "torch", lambda ms: f"{ms['torch']:.2f}"),
                   cell(r["ms"], "numpy", lambda ms: f"{ms['numpy']:.0f}"),
                   cell(r, "speedup_vs_torch", lambda r: f"{r['speedup_vs_torch']:.2f}x"),
                   cell(r, "gflops", lambda r: f"{r['gflops']:.0f}"),
                   cell(r, "peak_fraction", lambda r: f"{100 * r['peak_fraction']:.0f}%")] for r in result["rows"]])


def write_results(directory, stem, result, table) -> None:
    """The result as stem.json and its Markdown table as stem.md in directory."""
    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{stem}.json").write_text(json.dumps(result, indent=2) + "\n")
    (out / f"{stem}.md").write_text(table)
    print(f"\nWrote {out / f'{stem}.json'} and {out / f'{stem}.md'}")


def machine_line(result, rest) -> str:
    """The first line of a results table: the machine and rnnkit's build, then `rest`."""
    m, b = result["machine"], result["build"]
    build = f"rnnkit {b['version']} ({b['simd']} kernels, {b['threads']} threads)"
    return f"Machine: {m['cpu']}, {m['cores']} cores; {build}; {rest}"


def table(first_line, headings, rows) -> str:
    """A Markdown table of rows (lists of cell texts) under a line saying what was measured where."""
    lines = [first_line, "", "| " + " | ".join(headings) + " |", "|" + " --- |" * len(headings)]
    return "\n".join(lines + ["| " + " | ".join(row) + " |" for row in rows]) + "\n"


def comparison_main(doc, stem, run, table) -> None:
    """The command line of a side-by-side comparison script: --repeats rounds, results to --out."""
    parser = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=11, help="rounds per comparison (default: 11)")
    parser.add_argument("--out", default="bench/results", help=f"directory for {stem}.json and {stem}.md")
    args = parser.parse_args()
    result = run(args.repeats)
    write_results(args.out, stem, result, table(result))


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="the tutorial shape only")
    parser.add_argument("--repeats", type=int, default=11)
    parser.add_argument("--no-reference", action="store_true", help="skip the (slow) NumPy reference")
    parser.add_argument("--out", default="bench/results", help="directory for kernels.json and kernels.md")
    parser.add_argument("--matmul-peak", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.matmul_peak:
        print(matmul_peak_gflops())
        return
    result = run(args)
    write_results(args.out, "kernels", result, markdown(result))


if __name__ == "__main__":
    main()
