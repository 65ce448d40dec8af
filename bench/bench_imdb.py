"""IMDB training epochs side by side: rnnkit and PyTorch, the same model, optimizer and data.

    RNNKIT_DATA=../shared/data/aclImdb_v1_labeled.tar.gz python bench/bench_imdb.py [--models lstm,gru]

The tutorial's setup: 10,000 words, reviews padded or cut to 500 tokens, Embedding(10000, 32) ->
<cell>(32) -> Dense(1, sigmoid), RMSprop (lr 0.001, rho 0.9, eps 1e-7), binary cross-entropy, batch
128; an epoch trains on 20,000 reviews and validates on 5,000. Each framework runs in its own process
(so peak memory is its own), the frameworks alternate, and the table reports the median epoch time,
the peak resident memory and the last validation accuracy. Writes JSON and a Markdown table to --out.
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


def rnnkit_epochs(cell, epochs, seed):
    from rnnkit.layers import GRU, LSTM, Dense, Embedding, SimpleRNN
    from rnnkit.models import Sequential
    from rnnkit.utils import set_random_seed

    set_random_seed(seed)
    x, y, xv, yv = load()
    layer = {"simple_rnn": SimpleRNN, "lstm": LSTM, "gru": GRU}[cell](32)
    model = Sequential([Embedding(10000, 32), layer, Dense(1, activation="sigmoid")])
    model.compile(optimizer="rmsprop", loss="binary_crossentropy", metrics=["acc"])
    seconds, val_acc = [], None
    for _ in range(epochs):
        start = time.perf_counter()
        history = model.fit(x, y, epochs=1, batch_size=128, validation_data=(xv, yv), verbose=0)
        seconds.append(time.perf_counter() - start)
        val_acc = history.history["val_acc"][-1]
    return seconds, val_acc


def torch_epochs(cell, epochs, seed, threads):
    import torch

    torch.manual_seed(seed)
    torch.set_num_threads(threads)
    x, y, xv, yv = load()
    x, y = torch.tensor(x, dtype=torch.long), torch.tensor(y, dtype=torch.float32)
    xv, yv = torch.tensor(xv, dtype=torch.long), torch.tensor(yv, dtype=torch.float32)
    embedding = torch.nn.Embedding(10000, 32)
    rnn = getattr(torch.nn, {"simple_rnn": "RNN", "lstm": "LSTM", "gru": "GRU"}[cell])(32, 32, batch_first=True)
    dense = torch.nn.Linear(32, 1)
    params = list(embedding.parameters()) + list(rnn.parameters()) + list(dense.parameters())
    optimizer = torch.optim.RMSprop(params, lr=0.001, alpha=0.9, eps=1e-7)

    def logits(batch):
        out, _ = rnn(embedding(batch))
        return dense(out[:, -1]).squeeze(1)

    seconds, val_acc = [], None
    for _ in range(epochs):
        start = time.perf_counter()
        order = torch.randperm(len(x))
        for i in range(0, len(x), 128):
            idx = order[i : i + 128]
            optimizer.zero_grad()
            loss = torch.nn.functional.binary_cross_entropy_with_logits(logits(x[idx]), y[idx])
            loss.backward()
            optimizer.step()
        with torch.no_grad():
            correct = sum(int(((logits(xv[i : i + 128]) > 0).float() == yv[i : i + 128]).sum())
                          for i in range(0, len(xv), 128))
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
    parser.add_argument("--models", default="lstm,gru,simple_rnn")
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
    frameworks = ["rnnkit"] + (["torch"] if torch_version else [])
    rows = []
    for cell in args.models.split(","):
        runs = {f: [] for f in frameworks}
        for _ in range(args.rounds):
            for f in frameworks:
                runs[f].append(run_worker(f, cell, args.epochs, 1, threads))
        row = {"cell": cell}
        for f, results in runs.items():
            epoch_seconds = [s for r in results for s in r["seconds"]]
            row[f] = {"median_epoch_s": statistics.median(epoch_seconds), "epochs": epoch_seconds,
                      "peak_mb": max(r["peak_mb"] for r in results), "val_acc": results[-1]["val_acc"]}
        if "torch" in row:
            row["speedup_vs_torch"] = row["torch"]["median_epoch_s"] / row["rnnkit"]["median_epoch_s"]
        rows.append(row)
        print(json.dumps(row), flush=True)
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
             "| model | rnnkit s/epoch | PyTorch s/epoch | rnnkit vs PyTorch | rnnkit peak MB | PyTorch peak MB |",
             "| --- | --- | --- | --- | --- | --- |"]
    for r in result["rows"]:
        t = r.get("torch")
        lines.append(f"| {r['cell']} | {r['rnnkit']['median_epoch_s']:.2f} | "
                     + (f"{t['median_epoch_s']:.2f} | {r['speedup_vs_torch']:.2f}x | " if t else "- | - | ")
                     + f"{r['rnnkit']['peak_mb']:.0f} | " + (f"{t['peak_mb']:.0f} |" if t else "- |"))
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    if os.environ.get("RNNKIT_DATA") is None and len(sys.argv) > 1 and sys.argv[1] != WORKER:
        print("note: RNNKIT_DATA is not set; the loader will look in its cache or download the dataset")
    np.seterr(all="ignore")
    main()
