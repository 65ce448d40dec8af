"""Callbacks, as in ``keras.callbacks``: History, the progress display, EarlyStopping,
ModelCheckpoint, BackupAndRestore, TerminateOnNaN, ReduceLROnPlateau, LambdaCallback and CSVLogger."""

from __future__ import annotations

import csv
import math
import os
import sys
import time
import warnings
from typing import Any, Callable, TextIO

import numpy as np


class Callback:
    def __init__(self) -> None:
        self.model = None
        self.params = {}

    def set_model(self, model):
        self.model = model

    def set_params(self, params):
        self.params = params

    def on_train_begin(self, logs=None): ...
    def on_train_end(self, logs=None): ...
    def on_epoch_begin(self, epoch, logs=None): ...
    def on_epoch_end(self, epoch, logs=None): ...
    def on_train_batch_begin(self, batch, logs=None): ...
    def on_train_batch_end(self, batch, logs=None): ...


class CallbackList:
    """Calls every callback in order."""

    def __init__(self, callbacks: list, model: Any, params: dict) -> None:
        self.callbacks = list(callbacks)
        for cb in self.callbacks:
            cb.set_model(model)
            cb.set_params(params)

    def __getattr__(self, hook):
        if not hook.startswith("on_"):
            raise AttributeError(hook)

        def call(*args, **kwargs):
            for cb in self.callbacks:
                getattr(cb, hook)(*args, **kwargs)

        return call


class History(Callback):
    """``history.history[name]``: one value per epoch for the loss, each metric and their val_ forms."""

    def on_train_begin(self, logs=None):
        self.epoch = []
        self.history = {}

    def on_epoch_end(self, epoch, logs=None):
        self.epoch.append(epoch)
        for k, v in (logs or {}).items():
            self.history.setdefault(k, []).append(v)


def format_logs(logs) -> str:
    return " - ".join(f"{k}: {v:.4f}" for k, v in logs.items())


class ProgbarLogger(Callback):
    """Keras-style progress. On a terminal (verbose=1) a bar per epoch, redrawn in place:
    ``157/157 [==============================] - 5s 32ms/step - loss: 0.4310 - acc: 0.8050``.
    Elsewhere (verbose=2) one plain line per epoch with the same numbers."""

    def __init__(self, verbose: int = 1, stream: TextIO | None = None, min_interval: float = 0.1) -> None:
        super().__init__()
        self.verbose = verbose
        self.stream = stream or sys.stdout
        self.min_interval = min_interval

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch_start = time.perf_counter()
        self.last_draw = 0.0
        self.steps = self.params.get("steps")
        if self.verbose == 1:
            self.stream.write(f"Epoch {epoch + 1}/{self.params.get('epochs')}\n")
            self.stream.flush()

    def _timing(self, done):
        elapsed = time.perf_counter() - self.epoch_start
        return f"{elapsed:.0f}s {1000 * elapsed / max(done, 1):.0f}ms/step", elapsed

    def on_train_batch_end(self, batch, logs=None):
        self.done = batch + 1
        if self.verbose != 1:
            return
        now = time.perf_counter()
        done = batch + 1
        if now - self.last_draw < self.min_interval and (self.steps is None or done < self.steps):
            return
        self.last_draw = now
        timing, _ = self._timing(done)
        self.stream.write(f"\r{self._bar(done)} - {timing} - {format_logs(logs or {})}")
        self.stream.flush()

    def _bar(self, done, width=30):
        if self.steps is None:  # a generator without steps_per_epoch: the count only
            return f"{done}/Unknown"
        filled = int(width * done / max(self.steps, 1))
        arrow = ">" if filled < width else ""
        return f"{done}/{self.steps} [" + "=" * filled + arrow + "." * (width - filled - len(arrow)) + "]"

    def on_epoch_end(self, epoch, logs=None):
        steps = self.steps if self.steps is not None else getattr(self, "done", 0)
        timing, _ = self._timing(steps)
        if self.verbose == 1:
            self.stream.write(f"\r{self._bar(steps)} - {timing} - {format_logs(logs or {})}\n")
        elif self.verbose == 2:
            self.stream.write(
                f"Epoch {epoch + 1}/{self.params.get('epochs')} - {steps} steps - {timing} - "
                f"{format_logs(logs or {})}\n"
            )
        self.stream.flush()


def _improvement_mode(monitor, mode):
    if mode not in ("auto", "min", "max"):
        raise ValueError(f"mode must be 'auto', 'min' or 'max', got {mode!r}")
    if mode == "auto":
        mode = "max" if monitor.endswith("acc") or monitor.endswith("accuracy") else "min"
    return mode


class _Monitor:
    """Tracks the best value of a logged quantity."""

    def __init__(self, monitor, mode, min_delta=0.0):
        self.monitor = monitor
        self.mode = _improvement_mode(monitor, mode)
        self.min_delta = abs(float(min_delta))
        self.best = np.inf if self.mode == "min" else -np.inf

    def value(self, logs):
        if self.monitor not in (logs or {}):
            raise KeyError(f"monitor '{self.monitor}' is not in the logs; available: {', '.join(logs or {})}")
        return float(logs[self.monitor])

    def improved(self, current):
        if self.mode == "min":
            return current < self.best - self.min_delta
        return current > self.best + self.min_delta


class EarlyStopping(Callback):
    """Stops training once ``monitor`` has not improved for ``patience`` epochs; with
    ``restore_best_weights`` the model ends with the weights of its best epoch."""

    def __init__(self, monitor: str = "val_loss", min_delta: float = 0.0, patience: int = 0, verbose: int = 0,
                 mode: str = "auto", baseline: float | None = None, restore_best_weights: bool = False,
                 start_from_epoch: int = 0) -> None:
        super().__init__()
        self.tracker = _Monitor(monitor, mode, min_delta)
        self.patience = int(patience)
        self.verbose = verbose
        self.baseline = baseline
        self.restore_best_weights = bool(restore_best_weights)
        self.start_from_epoch = int(start_from_epoch)

    def on_train_begin(self, logs=None):
        self.wait = 0
        self.stopped_epoch = 0
        self.best_weights = None
        self.best_epoch = 0
        self.tracker.best = np.inf if self.tracker.mode == "min" else -np.inf
        if self.baseline is not None:
            self.tracker.best = float(self.baseline)

    def on_epoch_end(self, epoch, logs=None):
        if epoch < self.start_from_epoch:
            return
        current = self.tracker.value(logs)
        if self.restore_best_weights and self.best_weights is None:
            self.best_weights = self.model.get_weights()  # something to restore even without improvement
        self.wait += 1
        if self.tracker.improved(current):
            self.tracker.best = current
            self.best_epoch = epoch
            self.wait = 0
            if self.restore_best_weights:
                self.best_weights = self.model.get_weights()
            return
        if self.wait >= self.patience and epoch > 0:
            self.stopped_epoch = epoch
            self.model.stop_training = True

    def on_train_end(self, logs=None):
        if self.stopped_epoch > 0 and self.verbose:
            print(f"Epoch {self.stopped_epoch + 1}: early stopping")
        if self.restore_best_weights and self.best_weights is not None:
            if self.verbose:
                print(f"Restoring model weights from the end of the best epoch: {self.best_epoch + 1}.")
            self.model.set_weights(self.best_weights)


class ModelCheckpoint(Callback):
    """Saves the model (or only its weights) after each epoch, or only when ``monitor`` improved.
    ``filepath`` may name the epoch and logged values: ``"ckpt-{epoch:02d}-{val_loss:.2f}.keras"``.
    Every write goes to a temporary file first and is renamed into place, so the file at
    ``filepath`` is always a complete save."""

    def __init__(self, filepath: str | os.PathLike, monitor: str = "val_loss", verbose: int = 0,
                 save_best_only: bool = False, save_weights_only: bool = False, mode: str = "auto",
                 save_freq: str | int = "epoch") -> None:
        super().__init__()
        if save_freq != "epoch":
            raise ValueError("ModelCheckpoint: rnnkit saves once per epoch (save_freq='epoch')")
        self.filepath = str(filepath)
        self.tracker = _Monitor(monitor, mode)
        self.verbose = verbose
        self.save_best_only = bool(save_best_only)
        self.save_weights_only = bool(save_weights_only)

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        path = self.filepath.format(epoch=epoch + 1, **logs)
        if self.save_best_only:
            current = self.tracker.value(logs)
            if math.isnan(current):
                warnings.warn(f"ModelCheckpoint: {self.tracker.monitor} is nan after epoch {epoch + 1}, so it cannot "
                              f"be compared with the best so far; {path} was not written", stacklevel=2)
                return
            if not self.tracker.improved(current):
                return
            if self.verbose:
                print(f"Epoch {epoch + 1}: {self.tracker.monitor} improved from {self.tracker.best:.5f} "
                      f"to {current:.5f}, saving model to {path}")
            self.tracker.best = current
        if self.save_weights_only:
            self.model.save_weights(path)
        else:
            self.model.save(path)


class TerminateOnNaN(Callback):
    """Stops training as soon as a batch's loss is NaN or infinite (as Keras' TerminateOnNaN): the
    epoch ends there. ``terminated_at`` is then (epoch, batch), both counted from 0."""

    def on_train_begin(self, logs=None):
        self.terminated_at = None
        self._epoch = 0

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        loss = (logs or {}).get("loss")
        if loss is not None and not math.isfinite(loss):
            print(f"Batch {batch}: Invalid loss, terminating training")
            self.terminated_at = (self._epoch, batch)
            self.model.stop_training = True


class BackupAndRestore(Callback):
    """Backs up the whole training state at the end of each epoch (or every ``save_freq`` batches)
    to ``backup_dir``, and restores it when fit starts and finds one: a run killed at any moment and
    started again with the same code continues from the last backup, bit for bit as if it had not
    stopped (weights, optimizer state, epoch and batch, the epoch's shuffled order, rnnkit's, Python's
    and NumPy's random generators). When fit is stopped by Ctrl-C or SIGTERM (see ``fit``) it also
    backs up at the batch where it stopped. Each backup replaces the last atomically. Once training
    completes, the backup is deleted (``delete_checkpoint=True``, as Keras).

    The directory holds one file, ``training_state.rnnkit``, and should not be shared with another
    run: a backup of another model raises ValueError when fit starts. Put it after callbacks that draw
    random numbers at a batch's end, so that the backup comes after their draws."""

    FILENAME = "training_state.rnnkit"

    def __init__(self, backup_dir: str | os.PathLike, save_freq: str | int = "epoch",
                 delete_checkpoint: bool = True) -> None:
        super().__init__()
        if not backup_dir:
            raise ValueError("BackupAndRestore: empty backup_dir")
        if save_freq != "epoch" and (isinstance(save_freq, bool) or not isinstance(save_freq, int) or save_freq < 1):
            raise ValueError(f"BackupAndRestore: save_freq must be 'epoch' or a positive number of batches, "
                             f"got {save_freq!r}")
        self.backup_dir = os.fspath(backup_dir)
        self.save_freq = save_freq
        self.delete_checkpoint = bool(delete_checkpoint)
        self.path = os.path.join(self.backup_dir, self.FILENAME)
        self.restored = None  # the (epoch, batch) fit resumed at, if it restored a backup

    def on_train_begin(self, logs=None):
        from . import training_state

        self._batches_since_backup = 0
        self.restored = None
        if not os.path.exists(self.path):
            return
        state = self.model._fit_state
        if not self.model.built:
            state.build_model()
        extra = training_state.restore(self.path, self.model, self.params)
        self.restored = (state.epoch, state.step)
        self.restore_extra(extra)

    def on_train_batch_end(self, batch, logs=None):
        self._batches_since_backup += 1
        due = self.save_freq != "epoch" and self._batches_since_backup >= self.save_freq
        if due or self.model._fit_state.stopping:
            self.backup()

    def on_epoch_end(self, epoch, logs=None):
        if self.save_freq == "epoch":
            self.backup()

    def on_train_end(self, logs=None):
        if self.delete_checkpoint and self.model._fit_state.completed and os.path.exists(self.path):
            os.unlink(self.path)
            try:
                os.rmdir(self.backup_dir)
            except OSError:  # holds other files: leave them
                pass

    def backup(self) -> None:
        """Writes the training state as of now (between two batches of fit)."""
        from . import training_state

        os.makedirs(self.backup_dir, exist_ok=True)
        training_state.save(self.path, self.model, self.params, self.extra_state())
        self._batches_since_backup = 0

    # A subclass can keep more of its run in the backup: anything JSON holds.
    def extra_state(self):
        return None

    def restore_extra(self, extra) -> None:
        pass


class ReduceLROnPlateau(Callback):
    """Multiplies the learning rate by ``factor`` once ``monitor`` has not improved (by more than
    ``min_delta``) for ``patience`` epochs, not below ``min_lr``, then waits ``cooldown`` epochs; adds
    ``learning_rate`` to each epoch's logs, as Keras does."""

    def __init__(self, monitor: str = "val_loss", factor: float = 0.1, patience: int = 10, verbose: int = 0,
                 mode: str = "auto", min_delta: float = 1e-4, cooldown: int = 0, min_lr: float = 0.0,
                 **kwargs) -> None:
        super().__init__()
        if factor >= 1.0:
            raise ValueError(f"ReduceLROnPlateau: factor must be below 1, got {factor}")
        if kwargs:
            raise TypeError(f"ReduceLROnPlateau: unsupported arguments {sorted(kwargs)}")
        self.monitor = monitor
        self.mode = _improvement_mode(monitor, mode)
        self.factor, self.patience, self.verbose = float(factor), int(patience), verbose
        self.min_delta, self.cooldown, self.min_lr = abs(float(min_delta)), int(cooldown), float(min_lr)

    def on_train_begin(self, logs=None):
        self.best, self.wait, self.cooldown_counter = None, 0, 0

    def _improved(self, current):
        if self.best is None:
            return True
        if self.mode == "min":
            return current < self.best - self.min_delta
        return current > self.best + self.min_delta

    def on_epoch_end(self, epoch, logs=None):
        logs = logs if logs is not None else {}
        optimizer = self.model.optimizer
        logs["learning_rate"] = float(optimizer.learning_rate)
        current = logs.get(self.monitor)
        if current is None:
            warnings.warn(f"ReduceLROnPlateau: {self.monitor} is not in the logs; available: {', '.join(logs)}",
                          stacklevel=2)
            return
        if self.cooldown_counter > 0:
            self.cooldown_counter -= 1
            self.wait = 0
        if self._improved(current):
            self.best, self.wait = current, 0
        elif self.cooldown_counter <= 0:
            self.wait += 1
            if self.wait >= self.patience and optimizer.learning_rate > np.float32(self.min_lr):
                optimizer.learning_rate = max(optimizer.learning_rate * self.factor, self.min_lr)
                if self.verbose:
                    print(f"\nEpoch {epoch + 1}: ReduceLROnPlateau reducing learning rate to "
                          f"{optimizer.learning_rate}.")
                self.cooldown_counter, self.wait = self.cooldown, 0


class LambdaCallback(Callback):
    """A callback made of functions: on_epoch_begin(epoch, logs), on_epoch_end(epoch, logs),
    on_train_begin(logs), on_train_end(logs), on_train_batch_begin(batch, logs),
    on_train_batch_end(batch, logs)."""

    HOOKS = ("on_epoch_begin", "on_epoch_end", "on_train_begin", "on_train_end", "on_train_batch_begin",
             "on_train_batch_end")

    def __init__(self, **hooks: Callable) -> None:
        super().__init__()
        unknown = set(hooks) - set(self.HOOKS)
        if unknown:
            raise TypeError(f"LambdaCallback: unknown hooks {sorted(unknown)}; known: {', '.join(self.HOOKS)}")
        for name, fn in hooks.items():
            if fn is not None:
                setattr(self, name, fn)


class CSVLogger(Callback):
    """Appends a row per epoch to a CSV file: the epoch (from 0) and every log, keys sorted, as Keras'."""

    def __init__(self, filename: str | os.PathLike, separator: str = ",", append: bool = False) -> None:
        super().__init__()
        self.filename, self.separator, self.append = os.fspath(filename), separator, bool(append)

    def on_train_begin(self, logs=None):
        has_header = self.append and os.path.exists(self.filename) and os.path.getsize(self.filename) > 0
        self._file = open(self.filename, "a" if self.append else "w", newline="", encoding="utf-8")
        self._keys, self._writer, self._header = None, None, not has_header

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        if self._keys is None:
            self._keys = sorted(logs)
            if self._keys and not any(k.startswith("val_") for k in self._keys):
                self._keys += [f"val_{k}" for k in self._keys]
            self._writer = csv.DictWriter(self._file, fieldnames=["epoch"] + self._keys, delimiter=self.separator)
            if self._header:
                self._writer.writeheader()
        self._writer.writerow({"epoch": epoch, **{k: logs.get(k, "NA") for k in self._keys}})
        self._file.flush()

    def on_train_end(self, logs=None):
        if getattr(self, "_file", None) is not None:
            self._file.close()
            self._file = None
