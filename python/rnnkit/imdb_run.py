"""The experiment behind ``rnnkit imdb``: load and pad the reviews, train with the training state
backed up in --out after every epoch, evaluate on the test set, write the model, history.json and
history.png. Whatever stops it after a batch has been trained (Ctrl-C, SIGTERM, a NaN loss) leaves a
saved model; a kill leaves the backup that ``--resume`` continues from.
"""

from __future__ import annotations

import functools
import json
import math
import sys
import time
from pathlib import Path

import numpy as np

from . import saving, training_state
from .callbacks import BackupAndRestore, Callback, TerminateOnNaN
from .cli import RUN_DEFINING, UsageError, run_name

BACKUP_DIR = "backup"
BEST_WEIGHTS = "best.weights.rnnkit"  # in BACKUP_DIR: the weights of the epoch with the best val_acc


def backup_path(out: Path) -> Path:
    return out / BACKUP_DIR / BackupAndRestore.FILENAME


def say(message: str) -> None:
    print(message, flush=True)


class RunRecord(Callback):
    """Each epoch's logs and seconds, over every session of a resumed run."""

    def __init__(self):
        super().__init__()
        self.history, self.seconds = {}, []

    def on_epoch_begin(self, epoch, logs=None):
        self.start = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        self.seconds.append(time.perf_counter() - self.start)
        for key, value in (logs or {}).items():
            self.history.setdefault(key, []).append(value)


class RunBackup(BackupAndRestore):
    """The training state plus the run's arguments and record. No backup is written once the loss
    has become NaN, so the last one holds the last finite model."""

    def __init__(self, out: Path, config: dict, record: RunRecord, nan_guard: TerminateOnNaN):
        super().__init__(out / BACKUP_DIR, delete_checkpoint=False)
        self.config, self.record, self.nan_guard = config, record, nan_guard

    def on_train_begin(self, logs=None):
        try:
            super().on_train_begin(logs)
        except ValueError as e:  # a backup this run cannot continue: the user's call what to do with it
            raise UsageError(f"--resume: {e}; delete {self.backup_dir} to start over") from None

    def backup(self):
        if self.nan_guard.terminated_at is None:
            super().backup()

    def extra_state(self):
        return {"config": self.config, "history": self.record.history, "epoch_seconds": self.record.seconds}

    def restore_extra(self, extra):
        history, seconds = (extra or {}).get("history"), (extra or {}).get("epoch_seconds")
        if not isinstance(history, dict) or not isinstance(seconds, list):
            raise ValueError(f"{self.path}: the run's record is missing from its backup")
        self.record.history, self.record.seconds = history, seconds
        epoch, batch = self.restored
        say(f"Resumed from {self.path}, " + (f"in epoch {epoch + 1} after batch {batch}" if batch else
                                              f"after epoch {epoch}"))


class BestWeights(Callback):
    """Saves the weights whenever an epoch ends with the best val_acc so far, over every session of a
    resumed run (the record holds them all), so that the run is judged, and kept, by its best epoch as
    the tutorial judges its models."""

    def __init__(self, path: Path, record: RunRecord):
        super().__init__()
        self.path, self.record = path, record

    def on_epoch_end(self, epoch, logs=None):
        val = self.record.history.get("val_acc", [])
        if val and best_epoch_index(val) == len(val) - 1:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.model.save_weights(self.path)


def best_epoch_index(val_acc: list):
    """The index of the first epoch with the highest finite val_acc, or None."""
    finite = [v if v is not None and math.isfinite(v) else -math.inf for v in val_acc]
    return int(np.argmax(finite)) if finite and max(finite) > -math.inf else None


def build_model(args):
    from .layers import GRU, LSTM, Bidirectional, Dense, Embedding, SimpleRNN
    from .models import Sequential

    cell = {"simple_rnn": SimpleRNN, "lstm": LSTM, "gru": GRU}[args.model]
    model = Sequential(name=f"imdb_{run_name(args)}")
    model.add(Embedding(args.num_words, args.embed_dim, mask_zero=args.mask_zero))
    # the policy of the recurrent layer, whose products it changes; the others compute in float32 anyway
    layer = cell(args.units, dtype=getattr(args, "dtype_policy", "float32"))
    model.add(Bidirectional(layer) if args.bidirectional else layer)
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


def load_reviews(args):
    from .datasets import imdb
    from .preprocessing.sequence import pad_sequences

    say("Loading IMDB reviews...")
    start = time.perf_counter()
    try:
        source = imdb.find_source(args.data)  # resolved once: the run reads it and records which it was
        (x_train, y_train), (x_test, y_test) = imdb.load_data(path=source, num_words=args.num_words)
    except (ValueError, FileNotFoundError) as e:
        raise UsageError("; ".join(line.strip() for line in str(e).splitlines())) from None
    x_train = pad_sequences(x_train, maxlen=args.maxlen)
    x_test = pad_sequences(x_test, maxlen=args.maxlen)
    split_at = int(len(x_train) * (1.0 - args.validation_split))
    if args.validation_split and not 0 < split_at < len(x_train):
        raise UsageError(f"--validation-split {args.validation_split} leaves no reviews on one side of "
                         f"the {len(x_train)} training reviews")
    say(f"{len(x_train)} train and {len(x_test)} test reviews, padded to {args.maxlen} tokens "
        f"({time.perf_counter() - start:.1f}s)")
    return (x_train, y_train), (x_test, y_test), source


def _json_number(value):
    """NaN and inf as null, so that history.json stays standard JSON."""
    return None if isinstance(value, float) and not math.isfinite(value) else value


def write_results(out: Path, args, record: RunRecord, info: dict, data: str, **fields) -> dict:
    val = record.history.get("val_acc", [])
    best = best_epoch_index(val)
    result = {
        "model": run_name(args),
        "config": {k: v for k, v in vars(args).items() if k != "command"},
        "data": data,  # the dataset actually read (--data, $RNNKIT_DATA, the cache or a download)
        "history": {k: [_json_number(v) for v in values] for k, values in record.history.items()},
        "epoch_seconds": record.seconds,
        "best_val_acc": val[best] if best is not None else None,
        "best_epoch": best + 1 if best is not None else None,
        "test_loss": None,  # of the saved model: the best epoch's unless --keep last
        "test_acc": None,
        "build": info,
    }
    result.update({k: _json_number(v) for k, v in fields.items()})
    text = json.dumps(result, indent=2, allow_nan=False) + "\n"
    saving.atomic_write(out / "history.json", lambda f: f.write(text.encode()))
    return result


def run_imdb(args, out: Path) -> int:
    from . import build_info
    from .utils import set_random_seed

    set_random_seed(args.seed)
    info = build_info()
    threads = f"{info['threads']} thread{'s' if info['threads'] != 1 else ''}"
    say(f"rnnkit {info['version']} ({info['simd']} kernels, {threads})")
    (x_train, y_train), (x_test, y_test), source = load_reviews(args)

    model = build_model(args)
    model.text_encoding = text_encoding(args, source)
    model.summary(print_fn=say)
    record, nan_guard = RunRecord(), TerminateOnNaN()
    results = functools.partial(write_results, out, args, record, info, str(source.resolve()))
    backup = RunBackup(out, {name: getattr(args, name) for name in RUN_DEFINING}, record, nan_guard)
    best_path = out / BACKUP_DIR / BEST_WEIGHTS
    verbose = args.verbose if args.verbose is not None else (1 if sys.stdout.isatty() else 2)
    model_path = out / "model.rnnkit"
    try:
        model.fit(x_train, y_train, epochs=args.epochs, batch_size=args.batch_size,
                  validation_split=args.validation_split,
                  callbacks=[record, nan_guard, backup, BestWeights(best_path, record)], verbose=verbose)
    except KeyboardInterrupt as e:
        signal_name = e.args[0] if e.args else "SIGINT"
        if model.optimizer.iterations > 0:  # something was trained: keep it
            model.save(model_path)
            results(completed=False, interrupted=signal_name)
            say(f"Interrupted by {signal_name}: saved the model as trained so far to {model_path}; "
                f"`--resume` continues the run from {backup.path}")
        raise

    status, stopped = 0, {}
    if nan_guard.terminated_at is not None:
        epoch, batch = nan_guard.terminated_at
        stopped = {"terminated_on_nan": {"epoch": epoch + 1, "batch": batch + 1}}
        status = 1
        if not backup_path(out).exists():
            results(completed=False, **stopped)
            say(f"The loss became NaN in epoch {epoch + 1}, batch {batch + 1}, before any epoch ended with a finite "
                f"loss: no model saved (a lower learning rate may help)")
            return status
        last_finite, _, _ = training_state.describe(backup.path)
        training_state.restore(backup.path, model, backup.params)
        stopped["model_epoch"] = last_finite
        say(f"The loss became NaN in epoch {epoch + 1}, batch {batch + 1}: training stopped, and the model kept is "
            f"the one after epoch {last_finite}, the last with a finite loss")

    trained_epochs = stopped.get("model_epoch", len(record.seconds))
    last_weights, best_weights = model.get_weights(), None
    best = best_epoch_index(record.history.get("val_acc", []))
    if best is not None and best + 1 != trained_epochs and best_path.exists():
        model.load_weights(best_path)
        best_weights = model.get_weights()
    kept = "best" if best_weights is not None and args.keep == "best" else "last"
    model.set_weights(best_weights if kept == "best" else last_weights)
    model.save(model_path)  # before the evaluation, which an interruption may cut short
    try:
        say("Evaluating on the test set...")
        model.set_weights(last_weights)
        last_loss, last_acc = model.evaluate(x_test, y_test, batch_size=args.batch_size)
        best_loss, best_acc = (last_loss, last_acc) if best_weights is None else (None, None)
        if best_weights is not None:
            model.set_weights(best_weights)
            best_loss, best_acc = model.evaluate(x_test, y_test, batch_size=args.batch_size)
    except KeyboardInterrupt as e:
        results(completed=False, interrupted=e.args[0] if e.args else "SIGINT", **stopped)
        say(f"Interrupted during the evaluation: the trained model is saved at {model_path}")
        raise
    if best is None or (best + 1 != trained_epochs and best_weights is None):  # no best epoch, or its weights
        best_loss = best_acc = None
    test_loss, test_acc = (best_loss, best_acc) if kept == "best" else (last_loss, last_acc)
    result = results(completed=status == 0, test_loss=test_loss, test_acc=test_acc, test_loss_best=best_loss,
                     test_acc_best=best_acc, test_loss_last=last_loss, test_acc_last=last_acc, kept=kept, **stopped)
    title = f"IMDB {run_name(args)}: test acc {test_acc:.4f}"
    if result["best_val_acc"] is not None:
        title = f"IMDB {run_name(args)}: best val_acc {result['best_val_acc']:.4f}, test acc {test_acc:.4f}"
    plotted = plot_history(record.history, out / "history.png", title) if record.history.get("loss") else None
    say(f"test_loss: {test_loss:.4f} - test_acc: {test_acc:.4f} (the saved model: the {kept} epoch's)")
    if result["best_epoch"] is not None:
        best_test = "" if best_acc is None else f", test_acc {best_acc:.4f}"
        say(f"best val_acc: {result['best_val_acc']:.4f} (epoch {result['best_epoch']}){best_test}; "
            f"last epoch ({trained_epochs}): test_acc {last_acc:.4f}; "
            f"{np.median(record.seconds):.1f}s per epoch (median)")
    wrote = f"Wrote {model_path}, {out / 'history.json'}"
    if plotted:
        wrote += f", {out / 'history.png'}"
    elif plotted is False:
        wrote += "; matplotlib is not installed (pip install 'rnnkit[plot]'), so no history.png"
    say(wrote)
    say(f'Classify a text: rnnkit predict {model_path} "a review to classify"')
    remove_backup(backup_path(out))  # the run is complete: nothing is left to resume
    return status


def text_encoding(args, source: Path):
    """How the run's reviews were turned into ids, saved with the model for `rnnkit predict`; None for
    Keras' imdb.npz without its word index beside it (the reviews are ids already)."""
    from .datasets.imdb import TextEncoding

    try:
        return TextEncoding.from_dataset(source, num_words=args.num_words, maxlen=args.maxlen)
    except FileNotFoundError as e:
        say(f"{e}: the model is saved without its vocabulary, so `rnnkit predict` cannot read text with it")
        return None


def remove_backup(path: Path) -> None:
    for file in (path, path.with_name(BEST_WEIGHTS)):
        saving.remove_stale_temporaries(file)
        file.unlink(missing_ok=True)
    try:
        path.parent.rmdir()
    except OSError:  # gone already, or holds files of the user's: leave it
        pass

