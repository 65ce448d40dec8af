"""``rnnkit imdb``: the tutorial's IMDB sentiment experiment from one command.

    rnnkit imdb --model lstm              # Embedding(10000, 32) -> LSTM(32) -> Dense(1, sigmoid)

Defaults are the tutorial's: 10,000 words, reviews padded or cut to 500 tokens, batch 128, RMSprop,
binary cross-entropy, 10 epochs, the last 20% of the training set for validation. The run prints
each epoch, evaluates on the test set, and writes the model, history.json and history.png to --out.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

MODELS = ("simple_rnn", "lstm", "gru")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="rnnkit", description="rnnkit: recurrent networks with C++ kernels")
    commands = parser.add_subparsers(dest="command", required=True)
    imdb = commands.add_parser("imdb", help="train a sentiment classifier on IMDB reviews",
                               formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    imdb.add_argument("--model", choices=MODELS, default="lstm", help="the recurrent layer")
    imdb.add_argument("--epochs", type=int, default=10)
    imdb.add_argument("--batch-size", type=int, default=128)
    imdb.add_argument("--maxlen", type=int, default=500, help="reviews are padded or cut to this many tokens")
    imdb.add_argument("--num-words", type=int, default=10000, help="vocabulary: the most frequent words")
    imdb.add_argument("--units", type=int, default=32)
    imdb.add_argument("--embed-dim", type=int, default=32)
    imdb.add_argument("--mask-zero", action="store_true",
                      help="Embedding(mask_zero=True): padding is masked, and the kernels skip it")
    imdb.add_argument("--bidirectional", action="store_true", help="wrap the recurrent layer in Bidirectional")
    imdb.add_argument("--optimizer", choices=("rmsprop", "adam", "sgd"), default="rmsprop")
    imdb.add_argument("--validation-split", type=float, default=0.2)
    imdb.add_argument("--seed", type=int, default=1, help="same seed, same run")
    imdb.add_argument("--data", default=None, help="aclImdb_v1.tar.gz, an aclImdb directory or Keras' imdb.npz "
                                                   "(default: $RNNKIT_DATA, the cache, or a download)")
    imdb.add_argument("--out", default=None,
                      help="output directory (default: runs/imdb-<model>, e.g. runs/imdb-bidirectional_lstm_masked)")
    imdb.add_argument("--verbose", type=int, choices=(0, 1, 2), default=None,
                      help="1: progress bar, 2: a line per epoch (default: 1 on a terminal, else 2)")
    return parser


def say(message: str) -> None:
    print(message, flush=True)


class EpochTimer:
    """Seconds per epoch, recorded through the callback interface."""

    def __init__(self):
        from .callbacks import Callback

        outer = self

        class _Timer(Callback):
            def on_epoch_begin(self, epoch, logs=None):
                outer.start = time.perf_counter()

            def on_epoch_end(self, epoch, logs=None):
                outer.seconds.append(time.perf_counter() - outer.start)

        self.seconds = []
        self.callback = _Timer()


def run_name(args) -> str:
    """lstm, bidirectional_lstm_masked, ...: names the output directory and the model."""
    return ("bidirectional_" if args.bidirectional else "") + args.model + ("_masked" if args.mask_zero else "")


def build_model(args):
    from .layers import GRU, LSTM, Bidirectional, Dense, Embedding, SimpleRNN
    from .models import Sequential

    cell = {"simple_rnn": SimpleRNN, "lstm": LSTM, "gru": GRU}[args.model]
    model = Sequential(name=f"imdb_{run_name(args)}")
    model.add(Embedding(args.num_words, args.embed_dim, mask_zero=args.mask_zero))
    model.add(Bidirectional(cell(args.units)) if args.bidirectional else cell(args.units))
    model.add(Dense(1, activation="sigmoid"))
    model.compile(optimizer=args.optimizer, loss="binary_crossentropy", metrics=["acc"])
    return model


def plot_history(history: dict, path: Path, title: str) -> bool:
    """Loss and accuracy curves, training vs validation; False when matplotlib is missing."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    epochs = range(1, len(history["loss"]) + 1)
    fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(10, 4))
    for ax, key, label in ((ax_loss, "loss", "loss"), (ax_acc, "acc", "accuracy")):
        ax.plot(epochs, history[key], "o-", label="training")
        if f"val_{key}" in history:
            ax.plot(epochs, history[f"val_{key}"], "s-", label="validation")
        ax.set_xlabel("epoch")
        ax.set_ylabel(label)
        ax.grid(alpha=0.3)
        ax.legend()
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return True


def run_imdb(args) -> dict:
    from . import build_info
    from .datasets import imdb
    from .preprocessing.sequence import pad_sequences
    from .utils import set_random_seed

    out = Path(args.out or f"runs/imdb-{run_name(args)}")
    out.mkdir(parents=True, exist_ok=True)
    set_random_seed(args.seed)
    info = build_info()
    say(f"rnnkit {info['version']} ({info['simd']} kernels, {info['threads']} threads)")

    say("Loading IMDB reviews...")
    start = time.perf_counter()
    (x_train, y_train), (x_test, y_test) = imdb.load_data(path=args.data, num_words=args.num_words)
    x_train = pad_sequences(x_train, maxlen=args.maxlen)
    x_test = pad_sequences(x_test, maxlen=args.maxlen)
    say(f"{len(x_train)} train and {len(x_test)} test reviews, padded to {args.maxlen} tokens "
        f"({time.perf_counter() - start:.1f}s)")

    model = build_model(args)
    model.summary(print_fn=say)
    timer = EpochTimer()
    verbose = args.verbose if args.verbose is not None else (1 if sys.stdout.isatty() else 2)
    try:
        history = model.fit(x_train, y_train, epochs=args.epochs, batch_size=args.batch_size,
                            validation_split=args.validation_split, callbacks=[timer.callback],
                            verbose=verbose).history
    except KeyboardInterrupt:
        model.save(out / "model.rnnkit")
        say(f"Interrupted: saved the model as trained so far to {out / 'model.rnnkit'}")
        raise

    say("Evaluating on the test set...")
    test_loss, test_acc = model.evaluate(x_test, y_test, batch_size=args.batch_size)
    best = int(np.argmax(history["val_acc"])) if "val_acc" in history else None
    result = {
        "model": run_name(args),
        "config": {k: v for k, v in vars(args).items() if k not in ("command",)},
        "history": history,
        "epoch_seconds": timer.seconds,
        "best_val_acc": history["val_acc"][best] if best is not None else None,
        "best_epoch": best + 1 if best is not None else None,
        "test_loss": test_loss,
        "test_acc": test_acc,
        "build": info,
    }
    model.save(out / "model.rnnkit")
    (out / "history.json").write_text(json.dumps(result, indent=2) + "\n")
    title = f"IMDB {run_name(args)}: best val_acc {result['best_val_acc']:.4f}, test acc {test_acc:.4f}"
    plotted = plot_history(history, out / "history.png", title)
    say(f"test_loss: {test_loss:.4f} - test_acc: {test_acc:.4f}")
    if best is not None:
        say(f"best val_acc: {result['best_val_acc']:.4f} (epoch {best + 1}); "
            f"{np.median(timer.seconds):.1f}s per epoch (median)")
    say(f"Wrote {out / 'model.rnnkit'}, {out / 'history.json'}"
        + (f", {out / 'history.png'}" if plotted else
           "; matplotlib is not installed (pip install 'rnnkit[plot]'), so no history.png"))
    return result


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "imdb":
        try:
            run_imdb(args)
        except KeyboardInterrupt:
            return 130  # the shell's code for a Ctrl-C
    return 0


if __name__ == "__main__":
    sys.exit(main())
