"""rnnkit.torch against torch.nn, and against calling rnnkit.kernels directly, side by side.

    python bench/bench_torch.py            # ~2 minutes
    python bench/bench_torch.py --repeats 5

At the tutorial's shape (batch 128, 500 timesteps, 32 features, 32 units) it times, for torch.nn.RNN,
LSTM and GRU and their rnnkit.torch replacements on the same weights, a training step of the layer
(forward, then backward of the whole output sequence, input gradient included) and an inference
forward (torch.no_grad). The same step through rnnkit.kernels (NumPy arrays, Keras' layout) shows what
the PyTorch adapter costs. A last row trains an LSTM on a PackedSequence whose lengths follow IMDB's
reviews. All run in turns in this one process (bench_kernels.side_by_side); ratios are medians of
per-round ratios. It writes torch.json and torch.md to --out.
"""

from __future__ import annotations

import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
# isort: off
from bench_kernels import TUTORIAL, comparison_main, machine, machine_line, side_by_side, table  # noqa: E402
import numpy as np  # noqa: E402
# isort: on

import rnnkit  # noqa: E402
from rnnkit import kernels  # noqa: E402

try:
    import torch
    from torch.nn.utils.rnn import PackedSequence, pack_padded_sequence

    import rnnkit.torch as rt
except ImportError:
    sys.exit("bench_torch needs PyTorch: pip install torch==2.13.0 (the CPU build)")

CELLS = {"RNN": "simple_rnn", "LSTM": "lstm", "GRU": "gru"}


def imdb_lengths(batch, rng):
    """Review lengths cut at 500 tokens, drawn from a log-normal fitted to IMDB's 25,000 training
    reviews (log-length mean 5.25, deviation 0.64: median 175 tokens, 8% of reviews longer than 500)."""
    return np.clip(np.round(rng.lognormal(5.25, 0.64, batch)), 1, 500).astype(np.int64)


def kernel_arrays(layer):
    """The layer's weights in the kernels' (Keras) layout, as rnnkit.torch hands them over."""
    from rnnkit.torch.function import keras_weights

    w = [p.detach().numpy() for p in (layer.weight_ih_l0, layer.weight_hh_l0, layer.bias_ih_l0, layer.bias_hh_l0)]
    return [np.ascontiguousarray(a) for a in keras_weights(layer.cell, *w)]


def contenders(name, batch, timesteps, features, units, lengths=None):
    """{implementation: (training step, inference)} for one cell on one batch."""
    torch.manual_seed(0)
    reference = getattr(torch.nn, name)(features, units, batch_first=True)
    ours = getattr(rt, name)(features, units, batch_first=True)
    ours.load_state_dict(reference.state_dict())
    x = torch.randn(batch, timesteps, features, requires_grad=True)
    if lengths is not None:  # packed once, as a data loader would; its rows take the input gradient
        packed = pack_padded_sequence(x.detach(), torch.from_numpy(lengths), batch_first=True, enforce_sorted=False)
        x = packed.data.requires_grad_()
        packed = PackedSequence(x, packed.batch_sizes, packed.sorted_indices, packed.unsorted_indices)

    def source():
        return x if lengths is None else packed

    # Gradients of ones for every real output: made once, as bench_kernels does.
    d_out = torch.ones(batch, timesteps, units) if lengths is None else torch.ones(int(lengths.sum()), units)

    def module_step(layer):
        def train():
            layer.zero_grad()
            x.grad = None
            out, _ = layer(source())
            (out if lengths is None else out.data).backward(d_out)

        def infer():
            with torch.no_grad():
                layer(source())

        return train, infer

    cell = CELLS[name]
    kernel, recurrent_kernel, bias = kernel_arrays(ours)
    # The kernels read a PackedSequence's rows as they are, given the lengths in its sorted order.
    x_np = x.detach().numpy()
    forward, backward = getattr(kernels, f"{cell}_forward"), getattr(kernels, f"{cell}_backward")
    options = {} if lengths is None else {"lengths": lengths[packed.sorted_indices.numpy()], "packed": True}
    d_out_np = d_out.numpy()

    def kernels_train():
        backward(forward(x_np, kernel, recurrent_kernel, bias, **options), d_out_np)

    def kernels_infer():
        forward(x_np, kernel, recurrent_kernel, bias, save_for_backward=False, **options)

    return {"torch.nn": module_step(reference), "rnnkit.torch": module_step(ours),
            "rnnkit.kernels": (kernels_train, kernels_infer)}


def row(name, mode, times, adapter_times=None):
    """A table row; the adapter's cost from adapter_times when given (more rounds of rnnkit.torch and
    rnnkit.kernels alone), else from times."""
    adapter_times = adapter_times or times
    ms = {impl: 1000 * statistics.median(ts) for impl, ts in times.items()}
    ms.update({impl: 1000 * statistics.median(ts) for impl, ts in adapter_times.items()})
    ratio = statistics.median(t / r for t, r in zip(times["torch.nn"], times["rnnkit.torch"]))
    overhead = statistics.median(r / k for r, k in zip(adapter_times["rnnkit.torch"],
                                                       adapter_times["rnnkit.kernels"]))
    return {"layer": name, "mode": mode, "ms": ms, "speedup_vs_torch": ratio, "adapter_overhead": overhead - 1}


def format_row(r):
    ms = "  ".join(f"{k} {v:8.2f} ms" for k, v in r["ms"].items())
    return (f"{r['layer']:>12} {r['mode']:<10} {ms}  {r['speedup_vs_torch']:5.2f}x torch.nn  "
            f"adapter {100 * r['adapter_overhead']:+5.1f}%")


def run(repeats):
    torch.set_num_threads(rnnkit.get_num_threads())
    batch, timesteps, features, units = TUTORIAL
    rows = []
    for name in CELLS:
        impls = contenders(name, batch, timesteps, features, units)
        for mode, pick in (("train", 0), ("inference", 1)):
            rows.append(row(name, mode, side_by_side({k: v[pick] for k, v in impls.items()}, repeats)))
            print(format_row(rows[-1]), flush=True)
    lengths = imdb_lengths(batch, np.random.default_rng(0))
    impls = contenders("LSTM", batch, int(lengths.max()), features, units, lengths)
    # torch.nn's packed LSTM takes seconds per step: a few rounds are enough against it; the adapter's
    # cost, a few percent, needs the full count.
    steps = {k: v[0] for k, v in impls.items()}
    against_torch = side_by_side(steps, min(repeats, 3))
    del steps["torch.nn"]
    rows.append(row("packed LSTM", "train", against_torch, side_by_side(steps, 3 * repeats)))
    print(format_row(rows[-1]), flush=True)
    info = rnnkit.build_info()
    return {"machine": machine(), "build": info, "torch": torch.__version__, "shape": TUTORIAL,
            "packed_lengths": {"median": float(np.median(lengths)), "max": int(lengths.max())}, "rows": rows}


def markdown(result):
    return table(machine_line(result, f"PyTorch {result['torch']}. Batch 128, 500 steps, 32 features, 32 units; "
                                      "median ms per call."),
                 ["layer", "step", "torch.nn ms", "rnnkit.torch ms", "rnnkit.torch vs torch.nn", "rnnkit.kernels ms",
                  "adapter cost"],
                 [[r["layer"], r["mode"], f"{r['ms']['torch.nn']:.2f}", f"{r['ms']['rnnkit.torch']:.2f}",
                   f"{r['speedup_vs_torch']:.2f}x", f"{r['ms']['rnnkit.kernels']:.2f}",
                   f"{100 * r['adapter_overhead']:+.1f}%"] for r in result["rows"]])


def main():
    comparison_main(__doc__, "torch", run, markdown)


if __name__ == "__main__":
    main()
