"""``rnnkit imdb``: the tutorial's IMDB sentiment experiment from one command.

    rnnkit imdb --model lstm              # Embedding(10000, 32) -> LSTM(32) -> Dense(1, sigmoid)

Defaults are the tutorial's: 10,000 words, reviews padded or cut to 500 tokens, batch 128, RMSprop,
binary cross-entropy, 10 epochs, the last 20% of the training set for validation. The run prints
each epoch, evaluates on the test set, and writes the model, history.json and history.png to --out.

Arguments and the output directory are checked before any work: a mistake gets one line and exit
status 2. Ctrl-C or SIGTERM stop training at the end of a batch and save what was trained (exit
status 130 or 143); the training state is backed up in --out after every epoch, and ``--resume``
continues a run that was stopped or killed, bit for bit.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
from pathlib import Path

MODELS = ("simple_rnn", "lstm", "gru")
# Arguments a resumed run must share with the run it resumes (--epochs may grow).
RUN_DEFINING = ("model", "batch_size", "maxlen", "num_words", "units", "embed_dim", "mask_zero", "bidirectional",
                "optimizer", "validation_split", "seed")
IMDB_REVIEWS = 50_000  # train + test, for the memory estimate before the data is read


class UsageError(Exception):
    """A mistake in the command line: reported in one line with exit status 2."""


class DefaultOnceFormatter(argparse.HelpFormatter):
    """Each option's default after its help, once: not for options whose help says it already, nor for
    flags and options without a default."""

    def _get_help_string(self, action):
        text = action.help or ""
        if "default" in text or action.default in (None, False, argparse.SUPPRESS) or not action.option_strings:
            return text
        return f"{text} (default: %(default)s)"


def build_parser() -> argparse.ArgumentParser:
    from . import __version__

    parser = argparse.ArgumentParser(prog="rnnkit", description="rnnkit: recurrent networks with C++ kernels")
    parser.add_argument("--version", action="version", version=f"rnnkit {__version__}")
    commands = parser.add_subparsers(dest="command")
    imdb = commands.add_parser("imdb", help="train a sentiment classifier on IMDB reviews",
                               formatter_class=DefaultOnceFormatter)
    imdb.add_argument("--model", choices=MODELS, default="lstm", help="the recurrent layer")
    imdb.add_argument("--epochs", type=int, default=10, help="passes over the training reviews")
    imdb.add_argument("--batch-size", type=int, default=128, help="reviews per training step")
    imdb.add_argument("--maxlen", type=int, default=500, help="reviews are padded or cut to this many tokens")
    imdb.add_argument("--num-words", type=int, default=10000, help="vocabulary: the most frequent words")
    imdb.add_argument("--units", type=int, default=32, help="the recurrent layer's units")
    imdb.add_argument("--embed-dim", type=int, default=32, help="the size of each word's embedding vector")
    imdb.add_argument("--mask-zero", action="store_true",
                      help="Embedding(mask_zero=True): padding is masked, and the kernels skip it")
    imdb.add_argument("--bidirectional", action="store_true", help="wrap the recurrent layer in Bidirectional")
    imdb.add_argument("--dtype-policy", choices=("float32", "mixed_bfloat16"), default="float32",
                      help="Keras' dtype policy of the layers; mixed_bfloat16: the recurrent layer's matrix products "
                           "take bfloat16 inputs, the weights stay float32")
    imdb.add_argument("--optimizer", choices=("rmsprop", "adam", "sgd"), default="rmsprop",
                      help="the optimizer, with Keras' settings for it")
    imdb.add_argument("--validation-split", type=float, default=0.2,
                      help="the fraction of the training reviews, from the end, held out for validation")
    imdb.add_argument("--seed", type=int, default=1, help="same seed, same run")
    imdb.add_argument("--data", default=None, help="aclImdb_v1.tar.gz, an aclImdb directory or Keras' imdb.npz "
                                                   "(default: $RNNKIT_DATA, the cache, or a download)")
    imdb.add_argument("--out", default=None,
                      help="output directory (default: runs/imdb-<model>, e.g. runs/imdb-bidirectional_lstm_masked)")
    imdb.add_argument("--resume", action="store_true",
                      help="continue the run whose backup is in --out (stopped or killed), bit for bit")
    imdb.add_argument("--verbose", type=int, choices=(0, 1, 2), default=None,
                      help="1: progress bar, 2: a line per epoch (default: 1 on a terminal, else 2)")
    imdb.add_argument("--keep", choices=("best", "last"), default="best",
                      help="the model saved: the epoch with the best val_acc, or the last epoch")
    predict = commands.add_parser(
        "predict", help="classify texts with a trained model: the probability that each is positive",
        description="Prints one line per text: the probability that it is positive, and the label. The model "
                    "is one `rnnkit imdb` saved (it carries its vocabulary) or one whose first layer is a "
                    "TextVectorization.", formatter_class=DefaultOnceFormatter)
    predict.add_argument("model", help="a model file, e.g. runs/imdb-lstm/model.rnnkit")
    predict.add_argument("texts", nargs="*", metavar="TEXT", help="texts to classify; - reads one per line from "
                                                                  "standard input")
    predict.add_argument("--file", default=None, help="a UTF-8 file of texts, one per line (- for standard input)")
    predict.add_argument("--batch-size", type=int, default=128, help="texts per batch")
    parser.commands = {"imdb": imdb, "predict": predict}  # to report a mistake with the subcommand's usage
    return parser


def run_name(args) -> str:
    """lstm, bidirectional_lstm_masked, ...: names the output directory and the model."""
    name = ("bidirectional_" if args.bidirectional else "") + args.model + ("_masked" if args.mask_zero else "")
    return name + ("_bf16" if getattr(args, "dtype_policy", "float32") == "mixed_bfloat16" else "")


def output_dir(args) -> Path:
    return Path(args.out or f"runs/imdb-{run_name(args)}")


def memory_estimate(args) -> int:
    """Bytes the largest arrays of the run take: the padded reviews, the weights with their gradients
    and optimizer state, and what one batch's forward keeps for its backward."""
    gates = {"simple_rnn": 1, "lstm": 4, "gru": 3}[args.model]
    directions = 2 if args.bidirectional else 1
    weights = args.num_words * args.embed_dim + directions * (args.embed_dim + args.units + 2) * gates * args.units
    slots = 2 if args.optimizer == "adam" else 1
    batch = args.batch_size * args.maxlen * directions * (gates + 2) * args.units
    return 4 * (IMDB_REVIEWS * args.maxlen + (2 + slots) * weights + 2 * batch)


def physical_memory() -> int:
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (AttributeError, ValueError, OSError):  # not on this platform: no limit known
        return sys.maxsize


def check_writable_directory(out: Path) -> None:
    """Creates out if needed and proves a file can be written there, before hours of training do."""
    try:
        out.mkdir(parents=True, exist_ok=True)
        probe = out / f".rnnkit-write-test.{os.getpid()}"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as e:
        reason = e.strerror or str(e)
        if isinstance(e, (FileExistsError, NotADirectoryError)):
            reason = "it or a directory above it is a file"
        raise UsageError(f"--out {out}: cannot write there ({reason})") from None


def check_imdb_args(args) -> None:
    """Every argument within its range, the data present and the output directory writable."""
    for name, low in (("epochs", 1), ("batch_size", 1), ("maxlen", 1), ("units", 1), ("embed_dim", 1),
                      ("num_words", 4), ("seed", 0)):
        value = getattr(args, name)
        if value < low:
            why = " (ids 0-2 are padding, start and out-of-vocabulary)" if name == "num_words" else ""
            raise UsageError(f"--{name.replace('_', '-')} must be at least {low}{why}, got {value}")
    if not 0.0 <= args.validation_split < 1.0:
        raise UsageError(f"--validation-split must be in [0, 1), got {args.validation_split}")
    needed, available = memory_estimate(args), physical_memory()
    if needed > available:
        raise UsageError(f"this run needs about {needed / 2**30:,.1f} GiB for its arrays and this machine has "
                         f"{available / 2**30:,.1f} GiB: lower --maxlen, --units, --embed-dim, --num-words or "
                         f"--batch-size")
    if args.data is not None:
        data = Path(args.data).expanduser()
        if not data.exists():
            raise UsageError(f"--data {args.data}: no such file or directory")
        if not (data.is_file() or data.is_dir()):
            raise UsageError(f"--data {args.data}: not a regular file or a directory")
    check_writable_directory(output_dir(args))


def check_resume(args, backup_path: Path) -> None:
    """A backup left in --out is resumed only when asked, and only by the same run."""
    from .training_state import describe

    if not backup_path.exists():
        return
    try:
        epoch, step, extra = describe(backup_path)
    except ValueError as e:
        raise UsageError(f"{e}; delete {backup_path.parent} to start over") from None
    where = f"in epoch {epoch + 1}, after batch {step}" if step else f"after epoch {epoch}"
    if not args.resume:
        raise UsageError(f"{backup_path.parent} holds the backup of a run that stopped {where}: add --resume to "
                         f"continue it, or delete {backup_path.parent} to start over")
    config = (extra or {}).get("config", {}) if isinstance(extra, dict) else {}
    for name in RUN_DEFINING:
        if name in config and config[name] != getattr(args, name):
            raise UsageError(f"--resume: the run in {backup_path.parent} was started with --{name.replace('_', '-')} "
                             f"{config[name]}, this command asks for {getattr(args, name)}")


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:  # `rnnkit` alone: what it can do
        parser.print_help()
        return 0
    if args.command == "predict":
        return predict(parser, args)
    from .imdb_run import backup_path, run_imdb

    try:
        check_imdb_args(args)
        check_resume(args, backup_path(output_dir(args)))
    except UsageError as e:
        parser.commands["imdb"].error(str(e))  # usage, the message, exit status 2
    # SIGTERM (what a container or a job scheduler sends) stops the run as Ctrl-C does.
    in_main_thread = threading.current_thread() is threading.main_thread()
    if in_main_thread:
        from .training import raise_keyboard_interrupt

        previous = signal.signal(signal.SIGTERM, raise_keyboard_interrupt)
    try:
        return run_imdb(args, output_dir(args))
    except UsageError as e:  # the data named by --data or $RNNKIT_DATA is not a dataset
        parser.commands["imdb"].error(str(e))
    except KeyboardInterrupt as e:
        name = e.args[0] if e.args and e.args[0] in ("SIGINT", "SIGTERM") else "SIGINT"
        return 128 + signal.Signals[name].value  # the shell's code for a process a signal stopped
    except MemoryError:
        print("rnnkit imdb: out of memory: lower --maxlen, --units or --batch-size", file=sys.stderr)
        return 1
    finally:
        if in_main_thread:
            signal.signal(signal.SIGTERM, previous)


def predict(parser, args) -> int:
    from .predict_run import run_predict

    try:
        if args.batch_size < 1:
            raise UsageError(f"--batch-size must be at least 1, got {args.batch_size}")
        return run_predict(args)
    except UsageError as e:
        parser.commands["predict"].error(str(e))


if __name__ == "__main__":
    sys.exit(main())
