"""IMDB training epochs side by side: rnnkit and PyTorch, the same model, optimizer and data.

    RNNKIT_DATA=../shared/data/aclImdb_v1_labeled.tar.gz python bench/bench_imdb.py [--models lstm,gru]

The tutorial's setup: 10,000 words, reviews padded or cut to 500 tokens, Embedding(10000, 32) ->
<cell>(32) -> Dense(1, sigmoid), RMSprop (lr 0.001, rho 0.9, eps 1e-7), binary cross-entropy, batch
128; an epoch trains on 20,000 reviews and validates on 5,000. A model named <cell>_masked skips the
padding: rnnkit with Embedding(mask_zero=True), PyTorch with pack_padded_sequence (its way to do the
same), and the table adds how much faster than the unmasked model it is. Each run is its own process
(so peak memory is its own); the runs of all models and frameworks take turns, round after round, so
that the machine's slow spells fall on all alike. The table reports the median epoch time, the peak
resident memory and the last validation accuracy. Writes JSON and a Markdown table to --out.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

WORKER = "--worker"


def load(maxlen=500, num_words=10000):
    from rnnkit.datasets import imdb
    from rnnkit.preprocessing.sequence import pad_sequences

    (x, y), _ = imdb.load_data(num_words=num_words)
    x = pad_sequences(x, maxlen=maxlen)
    return x[:20000], y[:20000], x[20000:], y[20000:]


def cell_and_masking(model_name):
    """'lstm' -> ('lstm', False); 'lstm_masked' -> ('lstm', True)."""
    cell, masked = model_name.removesuffix("_masked"), model_name.endswith("_masked")
    if cell not in ("simple_rnn", "lstm", "gru"):
        raise SystemExit(f"unknown model {model_name!r}: expected simple_rnn, lstm or gru, optionally + '_masked'")
    return cell, masked


def rnnkit_epochs(model_name, epochs, seed):
    from rnnkit.layers import GRU, LSTM, Dense, Embedding, SimpleRNN
    from rnnkit.models import Sequential
    from rnnkit.utils import set_random_seed

    cell, masked = cell_and_masking(model_name)
    set_random_seed(seed)
    x, y, xv, yv = load()
    layer = {"simple_rnn": SimpleRNN, "lstm": LSTM, "gru": GRU}[cell](32)
    model = Sequential([Embedding(10000, 32, mask_zero=masked), layer, Dense(1, activation="sigmoid")])
    model.compile(optimizer="rmsprop", loss="binary_crossentropy", metrics=["acc"])
    seconds, val_acc = [], None
    for _ in range(epochs):
        start = time.perf_counter()
        history = model.fit(x, y, epochs=1, batch_size=128, validation_data=(xv, yv), verbose=0)
        seconds.append(time.perf_counter() - start)
        val_acc = history.history["val_acc"][-1]
    return seconds, val_acc


def post_padded(x):
    """Pre-padded rows moved to the front, and their lengths: what pack_padded_sequence takes."""
    lengths = (x != 0).sum(axis=1)
    out = np.zeros_like(x)
    for row, (ids, n) in enumerate(zip(x, lengths)):
        out[row, :n] = ids[len(ids) - n :]
    return out, np.maximum(lengths, 1)  # PyTorch refuses empty sequences


def torch_epochs(model_name, epochs, seed, threads):
    import torch

    cell, masked = cell_and_masking(model_name)
    torch.manual_seed(seed)
    torch.set_num_threads(threads)
    x, y, xv, yv = load()
    lengths = lengths_v = None
    if masked:
        (x, lengths), (xv, lengths_v) = post_padded(x), post_padded(xv)
        lengths, lengths_v = torch.tensor(lengths), torch.tensor(lengths_v)
    x, y = torch.tensor(x, dtype=torch.long), torch.tensor(y, dtype=torch.float32)
    xv, yv = torch.tensor(xv, dtype=torch.long), torch.tensor(yv, dtype=torch.float32)
    embedding = torch.nn.Embedding(10000, 32)
    rnn = getattr(torch.nn, {"simple_rnn": "RNN", "lstm": "LSTM", "gru": "GRU"}[cell])(32, 32, batch_first=True)
    dense = torch.nn.Linear(32, 1)
    params = list(embedding.parameters()) + list(rnn.parameters()) + list(dense.parameters())
    optimizer = torch.optim.RMSprop(params, lr=0.001, alpha=0.9, eps=1e-7)

    def logits(batch, batch_lengths=None):
        if batch_lengths is None:
            out, _ = rnn(embedding(batch))
            return dense(out[:, -1]).squeeze(1)
        packed = torch.nn.utils.rnn.pack_padded_sequence(embedding(batch), batch_lengths, batch_first=True,
                                                         enforce_sorted=False)
        _, state = rnn(packed)
        h = state[0] if isinstance(state, tuple) else state
        return dense(h[-1]).squeeze(1)

    def rows(lengths_all, idx):
        return None if lengths_all is None else lengths_all[idx]

    seconds, val_acc = [], None
    for _ in range(epochs):
        start = time.perf_counter()
        order = torch.randperm(len(x))
        for i in range(0, len(x), 128):
            idx = order[i : i + 128]
            optimizer.zero_grad()
            loss = torch.nn.functional.binary_cross_entropy_with_logits(logits(x[idx], rows(lengths, idx)), y[idx])
            loss.backward()
            optimizer.step()
        with torch.no_grad():
            correct = sum(int(((logits(xv[i : i + 128], rows(lengths_v, slice(i, i + 128))) > 0).float()
                               == yv[i : i + 128]).sum()) for i in range(0, len(xv), 128))
        seconds.append(time.perf_counter() - start)
        val_acc = correct / len(xv)
    return seconds, val_acc


def worker(framework, cell, epochs, seed, threads):
    import resource

    import rnnkit

    rnnkit.set_num_threads(threads)
    if framework == "rnnkit":
        seconds, val_acc = rnnkit_epochs(cell, epochs, seed)
    else:
        seconds, val_acc = torch_epochs(cell, epochs, seed, threads)
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"seconds": seconds, "val_acc": val_acc, "peak_mb": peak_mb}))


def run_worker(framework, cell, epochs, seed, threads):
    done = subprocess.run([sys.executable, __file__, WORKER, framework, cell, str(epochs), str(seed), str(threads)],
                          capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"{framework} {cell} failed:\n{done.stderr[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main():
    if len(sys.argv) > 1 and sys.argv[1] == WORKER:
        framework, cell, epochs, seed, threads = sys.argv[2:7]
        worker(framework, cell, int(epochs), int(seed), int(threads))
        return
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", default="lstm,lstm_masked,gru,gru_masked,simple_rnn,simple_rnn_masked",
                        help="cells, each optionally + '_masked'")
    parser.add_argument("--skip-torch", action="store_true", help="time rnnkit only")
    parser.add_argument("--epochs", type=int, default=3, help="epochs per process")
    parser.add_argument("--rounds", type=int, default=2, help="processes per framework, alternating")
    parser.add_argument("--out", default="bench/results")
    args = parser.parse_args()
    import rnnkit

    threads = rnnkit.get_num_threads()
    try:
        import torch

        torch_version = torch.__version__
    except ImportError:
        torch_version = None
        print("PyTorch is not installed: only rnnkit is timed (pip install torch==2.13.0 for the CPU build)")
    load()  # parse and cache the dataset before anything is timed
    frameworks = ["rnnkit"] + (["torch"] if torch_version and not args.skip_torch else [])
    models = args.models.split(",")
    for cell in models:
        cell_and_masking(cell)
    # Every round runs every model and framework once, so that the machine's slow spells fall on all of
    # them alike: the ratios come from runs interleaved in time.
    runs = {(cell, f): [] for cell in models for f in frameworks}
    for _ in range(args.rounds):
        for cell in models:
            for f in frameworks:
                runs[cell, f].append(run_worker(f, cell, args.epochs, 1, threads))
                print(f"{cell} {f}: {runs[cell, f][-1]}", flush=True)
    rows = []
    for cell in models:
        row = {"cell": cell}
        for f in frameworks:
            results = runs[cell, f]
            epoch_seconds = [s for r in results for s in r["seconds"]]
            row[f] = {"median_epoch_s": statistics.median(epoch_seconds), "epochs": epoch_seconds,
                      "peak_mb": max(r["peak_mb"] for r in results), "val_acc": results[-1]["val_acc"]}
        if "torch" in row:
            row["speedup_vs_torch"] = row["torch"]["median_epoch_s"] / row["rnnkit"]["median_epoch_s"]
        unmasked = next((r for r in rows if r["cell"] == cell.removesuffix("_masked")), None)
        if cell.endswith("_masked") and unmasked:
            row["speedup_vs_unmasked"] = unmasked["rnnkit"]["median_epoch_s"] / row["rnnkit"]["median_epoch_s"]
        rows.append(row)
    result = {"threads": threads, "torch": torch_version, "cpu": cpu_name(), "rows": rows}
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "imdb.json").write_text(json.dumps(result, indent=2) + "\n")
    (out / "imdb.md").write_text(markdown(result))
    print(markdown(result))


def cpu_name():
    try:
        with open("/proc/cpuinfo") as f:
            return next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        return "unknown CPU"


def markdown(result):
    lines = [f"{result['cpu']}, {result['threads']} threads; PyTorch {result['torch'] or 'not installed'}. "
             "Median seconds per epoch (20,000 training + 5,000 validation reviews, 500 tokens, batch 128).", "",
             "A `_masked` model skips the padding (rnnkit: `mask_zero=True`; PyTorch: `pack_padded_sequence`).", "",
             "| model | rnnkit s/epoch | PyTorch s/epoch | rnnkit vs PyTorch | masked vs unmasked (rnnkit) "
             "| rnnkit peak MB | PyTorch peak MB |",
             "| --- | --- | --- | --- | --- | --- | --- |"]
    for r in result["rows"]:
        t = r.get("torch")
        lines.append(f"| {r['cell']} | {r['rnnkit']['median_epoch_s']:.2f} | "
                     + (f"{t['median_epoch_s']:.2f} | {r['speedup_vs_torch']:.2f}x | " if t else "- | - | ")
                     + (f"{r['speedup_vs_unmasked']:.2f}x | " if "speedup_vs_unmasked" in r else "- | ")
                     + f"{r['rnnkit']['peak_mb']:.0f} | " + (f"{t['peak_mb']:.0f} |" if t else "- |"))
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    if os.environ.get("RNNKIT_DATA") is None and len(sys.argv) > 1 and sys.argv[1] != WORKER:
        print("note: RNNKIT_DATA is not set; the loader will look in its cache or download the dataset")
    np.seterr(all="ignore")
    main()
