"""Deployment speed: rnnkit's inference against onnxruntime running the same model exported to ONNX.

    python bench/bench_onnx.py               # needs onnx and onnxruntime

For the tutorial's model (Embedding(10000, 32) -> SimpleRNN/LSTM/GRU(32) -> Dense(1, sigmoid)), with and
without mask_zero, it times one prediction of a batch of 128 reviews of 500 tokens (IMDB-like lengths,
padded in front): rnnkit's model.predict_on_batch and onnxruntime's session.run on the exported file,
both on the same threads, in turns in this one process (bench_kernels.side_by_side). It writes
onnx.json and onnx.md to --out.
"""

from __future__ import annotations

import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
# isort: off
from bench_kernels import comparison_main, machine, machine_line, side_by_side, table  # noqa: E402
import numpy as np  # noqa: E402
# isort: on

import rnnkit  # noqa: E402
from rnnkit.layers import GRU, LSTM, Dense, Embedding, SimpleRNN  # noqa: E402
from rnnkit.preprocessing.sequence import pad_sequences  # noqa: E402

try:
    import onnxruntime as ort
except ImportError:
    sys.exit("bench_onnx needs onnxruntime and onnx: pip install onnxruntime onnx")

CELLS = {"simple_rnn": SimpleRNN, "lstm": LSTM, "gru": GRU}


def reviews(batch=128, maxlen=500, seed=0):
    """Token ids of IMDB-like lengths (log-normal: median 175 tokens), padded in front to maxlen."""
    rng = np.random.default_rng(seed)
    lengths = np.clip(np.round(rng.lognormal(5.25, 0.64, batch)), 1, maxlen).astype(int)
    return pad_sequences([rng.integers(1, 10000, n) for n in lengths], maxlen=maxlen).astype(np.int32)


def contenders(cell, masked, x, directory):
    rnnkit.utils.set_random_seed(0)
    model = rnnkit.Sequential([Embedding(10000, 32, mask_zero=masked), CELLS[cell](32), Dense(1, activation="sigmoid")])
    model.build((x.shape[1],))
    path = Path(directory) / f"{cell}{'_masked' if masked else ''}.onnx"
    model.export(path, format="onnx")
    options = ort.SessionOptions()
    options.intra_op_num_threads = rnnkit.get_num_threads()
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    ours, theirs = model.predict_on_batch(x), session.run(None, {"input": x})[0]
    assert np.abs(ours - theirs).max() < 1e-4, "the exported model predicts otherwise"
    return {"rnnkit": lambda: model.predict_on_batch(x), "onnxruntime": lambda: session.run(None, {"input": x})}


def run(repeats):
    x = reviews()
    rows = []
    with tempfile.TemporaryDirectory() as directory:
        for cell in CELLS:
            for masked in (False, True):
                times = side_by_side(contenders(cell, masked, x, directory), repeats)
                ms = {name: 1000 * statistics.median(t) for name, t in times.items()}
                ratio = statistics.median(o / r for o, r in zip(times["onnxruntime"], times["rnnkit"]))
                rows.append({"model": cell + ("_masked" if masked else ""), "ms": ms, "speedup_vs_onnxruntime": ratio})
                print(f"{rows[-1]['model']:>18}  rnnkit {ms['rnnkit']:7.2f} ms  onnxruntime {ms['onnxruntime']:7.2f} ms"
                      f"  {ratio:5.2f}x", flush=True)
    info = rnnkit.build_info()
    return {"machine": machine(), "build": info, "onnxruntime": ort.__version__, "rows": rows}


def markdown(result):
    what = "One prediction of 128 reviews of 500 tokens, Embedding(10000, 32) -> cell(32) -> Dense(1); median ms."
    return table(machine_line(result, f"onnxruntime {result['onnxruntime']} on as many threads. {what}"),
                 ["model", "rnnkit ms", "onnxruntime ms", "rnnkit vs onnxruntime"],
                 [[r["model"], f"{r['ms']['rnnkit']:.2f}", f"{r['ms']['onnxruntime']:.2f}",
                   f"{r['speedup_vs_onnxruntime']:.2f}x"] for r in result["rows"]])


def main():
    comparison_main(__doc__, "onnx", run, markdown)


if __name__ == "__main__":
    main()
