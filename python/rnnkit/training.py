"""The loops behind Sequential.fit, evaluate and predict."""

from __future__ import annotations

import signal
import sys
import threading

import numpy as np

from . import kernels
from .callbacks import CallbackList, History, ProgbarLogger
from .layers import Embedding
from .utils.random import get_rng

DEFAULT_BATCH_SIZE = 32  # Keras' default


def _check_compiled(model):
    if model.optimizer is None or model.loss is None:
        raise RuntimeError("You must compile your model before training/testing. "
                           "Use `model.compile(optimizer, loss)`.")


def check_inputs(model, x, what="x"):
    """x as an array with at least one sample, of ids when the model starts with an Embedding."""
    if x is None:
        raise ValueError(f"{what} is required")
    x = np.asarray(x)
    if x.ndim == 0 or x.shape[0] == 0:
        raise ValueError(f"{what} is empty (shape {x.shape}): at least one sample is needed")
    first = model.layers[0] if model.layers else None
    if isinstance(first, Embedding):
        if x.dtype.kind not in "iu":
            raise TypeError(f"{what}: the model starts with Embedding '{first.name}', which takes integer token ids, "
                            f"got a {x.dtype} array (convert with .astype('int32') if the values are ids)")
        # here, so that positions refer to the caller's x
        kernels.check_token_ids(x, first.input_dim, f"{what}: Embedding '{first.name}' (input_dim={first.input_dim})")
    return x


def check_data(model, x, y, what="x"):
    x = check_inputs(model, x, what)
    if y is None:
        raise ValueError(f"labels for {what} are required")
    y = np.asarray(y)
    if y.ndim == 0 or y.shape[0] != x.shape[0]:
        n = y.shape[0] if y.ndim else "a scalar"
        raise ValueError(f"{what} and its labels have different numbers of samples: {x.shape[0]} and {n}")
    return x, y


def _batches(n, batch_size, order=None):
    idx = np.arange(n) if order is None else order
    for start in range(0, n, batch_size):
        yield idx[start : start + batch_size]


def _batch_size(batch_size):
    if batch_size is None:
        return DEFAULT_BATCH_SIZE
    if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
    return int(batch_size)


def _logs(model, loss_sum, correct, seen, prefix=""):
    logs = {prefix + "loss": loss_sum / seen}
    for name in model.metrics:
        logs[prefix + name] = correct / seen
    return logs


def _split_validation(x, y, validation_split, validation_data, model):
    if validation_data is not None:
        if len(validation_data) != 2:
            raise ValueError("validation_data must be a tuple (x_val, y_val)")
        return x, y, check_data(model, *validation_data, what="validation_data x")
    if not 0.0 <= validation_split < 1.0:
        raise ValueError(f"validation_split must be in [0, 1), got {validation_split}")
    if validation_split == 0.0:
        return x, y, None
    split_at = int(x.shape[0] * (1.0 - validation_split))
    if split_at == 0 or split_at == x.shape[0]:
        raise ValueError(f"validation_split={validation_split} leaves no samples on one side of {x.shape[0]}")
    return x[:split_at], y[:split_at], (x[split_at:], y[split_at:])


def raise_keyboard_interrupt(signum, frame):
    """A signal handler that makes a signal stop the program as Ctrl-C does, e.g. for SIGTERM:
    ``signal.signal(signal.SIGTERM, raise_keyboard_interrupt)``; fit then stops it at a batch end too."""
    raise KeyboardInterrupt(signal.Signals(signum).name)


INTERRUPTING = (signal.default_int_handler, raise_keyboard_interrupt)


class InterruptAtBatchEnd:
    """Ctrl-C (SIGINT) during fit lets the batch under way finish: the weights are then those after a
    whole update, never half of one. So does SIGTERM when its handler is raise_keyboard_interrupt.
    A second signal interrupts at once, as usual. Only the main thread receives signals, so elsewhere
    (or under a handler of the caller's own) nothing changes."""

    def __enter__(self):
        self.signal_name, self._previous = None, {}
        if threading.current_thread() is threading.main_thread():
            for signum in (signal.SIGINT, signal.SIGTERM):
                if signal.getsignal(signum) in INTERRUPTING:
                    self._previous[signum] = signal.signal(signum, self._request)
        return self

    @property
    def requested(self) -> bool:
        return self.signal_name is not None

    def _request(self, signum, frame):
        self.signal_name = self.signal_name or signal.Signals(signum).name
        signal.signal(signum, self._previous[signum])

    def __exit__(self, *exc_info):
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)


class FitState:
    """Where fit is, between two batches: the epoch, the batches of it done, the epoch's sample order
    and its running sums. BackupAndRestore saves it, and restores it before the first epoch begins,
    so training resumes at the very batch where it stopped."""

    def __init__(self, epoch, input_shape):
        self.input_shape = input_shape  # of one sample, to build the model before restoring weights into it
        self.epoch, self.step = epoch, 0
        self.order = None  # this epoch's shuffled sample order, or None for the natural order
        self.loss_sum, self.correct, self.seen = 0.0, 0, 0
        self.stopping = False  # fit stops after this batch (a signal came)
        self.completed = False  # every epoch ran, or a callback stopped training


def _stop(model, cbs, history, state, interrupt, where):
    cbs.on_train_end()
    model.history = history
    print(f"\nrnnkit: interrupted by {interrupt.signal_name}; training stopped {where}", file=sys.stderr)
    raise KeyboardInterrupt(interrupt.signal_name)


def fit(model, x, y, batch_size, epochs, verbose, callbacks, validation_split, validation_data, shuffle,
        initial_epoch):
    _check_compiled(model)
    x, y = check_data(model, x, y)
    batch_size = _batch_size(batch_size)
    x, y, validation = _split_validation(x, y, validation_split, validation_data, model)
    if verbose == "auto":
        verbose = 1 if sys.stdout.isatty() else 2
    steps = -(-x.shape[0] // batch_size)
    history = History()
    chain = [history] + ([ProgbarLogger(verbose)] if verbose else []) + list(callbacks or [])
    cbs = CallbackList(chain, model, {"epochs": epochs, "steps": steps, "verbose": verbose,
                                      "samples": x.shape[0], "batch_size": batch_size, "shuffle": bool(shuffle)})
    model.stop_training = False
    state = model._fit_state = FitState(initial_epoch, tuple(x.shape[1:]))
    cbs.on_train_begin()  # BackupAndRestore may move state to where an earlier run stopped
    with InterruptAtBatchEnd() as interrupt:
        while state.epoch < epochs:
            epoch = state.epoch
            cbs.on_epoch_begin(epoch)
            if state.step == 0:
                state.order = get_rng().permutation(x.shape[0]) if shuffle else None
                state.loss_sum, state.correct, state.seen = 0.0, 0, 0
            batches = list(_batches(x.shape[0], batch_size, state.order))
            for step in range(state.step, len(batches)):
                idx = batches[step]
                cbs.on_train_batch_begin(step)
                loss, right = model.train_on_batch(x[idx], y[idx])
                state.loss_sum += loss * len(idx)
                state.correct += right
                state.seen += len(idx)
                state.step = step + 1
                state.stopping = interrupt.requested  # read once: callbacks and the check below agree
                cbs.on_train_batch_end(step, _logs(model, state.loss_sum, state.correct, state.seen))
                if state.stopping:
                    _stop(model, cbs, history, state, interrupt,
                          f"after batch {step + 1}/{steps} of epoch {epoch + 1}, whose update is complete")
                if model.stop_training:  # as Keras: the epoch ends here, with its validation
                    break
            logs = _logs(model, state.loss_sum, state.correct, state.seen)
            if validation is not None:
                logs.update(_evaluate_logs(model, *validation, batch_size, prefix="val_"))
            state.epoch, state.step = epoch + 1, 0
            state.completed = state.epoch >= epochs or model.stop_training
            cbs.on_epoch_end(epoch, logs)
            if interrupt.requested:
                state.completed = False
                _stop(model, cbs, history, state, interrupt, f"at the end of epoch {epoch + 1}")
            if model.stop_training:
                break
    state.completed = True
    cbs.on_train_end()
    model.history = history
    return history


def _evaluate_logs(model, x, y, batch_size, prefix=""):
    loss_sum, correct = 0.0, 0
    for idx in _batches(x.shape[0], batch_size):
        loss, right = model.test_on_batch(x[idx], y[idx])
        loss_sum += loss * len(idx)
        correct += right
    return _logs(model, loss_sum, correct, x.shape[0], prefix)


def evaluate(model, x, y, batch_size, return_dict):
    _check_compiled(model)
    x, y = check_data(model, x, y)
    logs = _evaluate_logs(model, x, y, _batch_size(batch_size))
    if return_dict:
        return logs
    values = list(logs.values())
    return values[0] if len(values) == 1 else values


def predict(model, x, batch_size):
    x = check_inputs(model, x)
    parts = [model._forward(x[idx], False) for idx in _batches(x.shape[0], _batch_size(batch_size))]
    return np.concatenate(parts, axis=0)
