"""The loops behind fit, evaluate and predict, over what data_adapters.py makes of their data."""

from __future__ import annotations

import signal
import sys
import threading
import warnings

import numpy as np

from .callbacks import CallbackList, History, ProgbarLogger
from .data_adapters import ArrayData, _Exhausted, _unpack, adapter, is_dataset, is_generator
from .utils.random import get_rng

__all__ = ["fit", "evaluate", "predict", "raise_keyboard_interrupt", "ArrayData"]


def check_compiled(model):
    if model.compiled is None:
        raise RuntimeError("You must compile your model before training/testing. "
                           "Use `model.compile(optimizer, loss)`.")


def results_as_keras_returns(logs, return_dict):
    """What Keras' evaluate and train_on_batch return: a dict, the loss alone, or [loss, metric...]."""
    if return_dict:
        return dict(logs)
    values = list(logs.values())
    return values[0] if len(values) == 1 else values


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
    (arrays) and the running means of the logs (in the compiled model). BackupAndRestore saves it, and
    restores it before the first epoch begins, so training resumes at the very batch where it stopped."""

    def __init__(self, epoch, build_model, indexable):
        self.build_model = build_model  # builds the model before weights are restored into it
        self.indexable = indexable  # whether a batch can be fetched by its number (not a generator)
        self.epoch, self.step = epoch, 0
        self.order = None  # this epoch's shuffled sample order, or None for the natural order
        self.stopping = False  # fit stops after this batch (a signal came)
        self.completed = False  # every epoch ran, or a callback stopped training


def _stop(model, cbs, history, state, interrupt, where):
    cbs.on_train_end()
    model.history = history
    print(f"\nrnnkit: interrupted by {interrupt.signal_name}; training stopped {where}", file=sys.stderr)
    raise KeyboardInterrupt(interrupt.signal_name)


def _validation_adapter(model, validation_data, batch_size, steps):
    if is_dataset(validation_data) or is_generator(validation_data):
        return adapter(model, validation_data, None, None, batch_size, False, None, steps, "validation_data")
    if not isinstance(validation_data, tuple) or len(validation_data) not in (2, 3):
        raise ValueError("validation_data must be a tuple (x_val, y_val) or (x_val, y_val, sample_weight), a "
                         "dataset or a generator")
    x, y, sw = _unpack(validation_data)
    return adapter(model, x, y, sw, batch_size, False, None, steps, "validation_data x")


def _builder(model, data):
    """A function that builds the model for the data (BackupAndRestore restores weights into it)."""
    if isinstance(data, ArrayData):
        return lambda: model._build_for(data.xs)
    if data.indexable:
        return lambda: model._build_for(data.batch(0, None)[0])

    def unbuildable():
        if not model.built:
            raise ValueError("fit over a generator: build the model (call it on a batch) before a BackupAndRestore "
                             "can restore its weights")

    return unbuildable


def fit(model, x, y, *, batch_size, epochs, verbose, callbacks, validation_split, validation_data, shuffle,
        class_weight, sample_weight, initial_epoch, steps_per_epoch, validation_steps, validation_batch_size,
        validation_freq):
    check_compiled(model)
    data = adapter(model, x, y, sample_weight, batch_size, shuffle, class_weight, steps_per_epoch)
    validation = None
    if validation_data is not None:
        validation = _validation_adapter(model, validation_data, validation_batch_size or batch_size,
                                         validation_steps)
    elif validation_split:
        if not isinstance(data, ArrayData):
            raise ValueError("validation_split works on arrays; give a dataset or generator validation_data instead")
        data, validation = data.split(validation_split)
    if verbose == "auto":
        verbose = 1 if sys.stdout.isatty() else 2
    history = History()
    # Keras' order: the progress display first, the History last (it records what callbacks added)
    chain = ([ProgbarLogger(verbose)] if verbose else []) + list(callbacks or []) + [history]
    params = {"epochs": epochs, "steps": data.steps, "verbose": verbose, "samples": data.samples,
              "dataset_batches": getattr(data, "dataset_batches", None),
              "batch_size": getattr(data, "batch_size", None), "shuffle": bool(shuffle)}
    cbs = CallbackList(chain, model, params)
    model.stop_training = False
    state = model._fit_state = FitState(initial_epoch, _builder(model, data), data.indexable)
    cbs.on_train_begin()  # BackupAndRestore may move state to where an earlier run stopped
    with InterruptAtBatchEnd() as interrupt:
        while state.epoch < epochs:
            epoch = state.epoch
            cbs.on_epoch_begin(epoch)
            if state.step == 0:
                state.order = data.order(get_rng())
                model.compiled.reset()
            step = state.step
            while data.steps is None or step < data.steps:
                try:
                    xs, ys, sws, _ = data.batch(step, state.order)
                except _Exhausted:
                    if data.steps is not None:
                        warnings.warn(f"the generator ran out after {step} of its {data.steps} steps in epoch "
                                      f"{epoch + 1}: training stops", stacklevel=3)
                        model.stop_training = True
                    break
                cbs.on_train_batch_begin(step)
                model._build_for(xs)
                model._step(xs, ys, sws, True)
                step += 1
                state.step = step
                state.stopping = interrupt.requested  # read once: callbacks and the check below agree
                cbs.on_train_batch_end(step - 1, model.compiled.results())
                if state.stopping:
                    _stop(model, cbs, history, state, interrupt, f"after batch {step}"
                          + (f"/{data.steps}" if data.steps else "") + f" of epoch {epoch + 1}, whose update is "
                          f"complete")
                if model.stop_training:  # as Keras: the epoch ends here, with its validation
                    break
            if step == 0:  # a generator with nothing left: no epoch to report
                model.stop_training = True
                break
            logs = model.compiled.results()
            if validation is not None and (epoch + 1) % validation_freq == 0:
                logs.update(_evaluate_logs(model, validation, prefix="val_"))
            data.on_epoch_end()
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


def _inference_batches(model, data):
    """(xs, ys, sample weights) of each batch in order, until data.steps or the data runs out, with the
    model built for them: the loop evaluate and predict share."""
    step = 0
    while data.steps is None or step < data.steps:
        try:
            xs, ys, sws, _ = data.batch(step, None)
        except _Exhausted:
            return
        model._build_for(xs)
        yield xs, ys, sws
        step += 1


def _evaluate_logs(model, data, prefix=""):
    model.compiled.reset()
    for xs, ys, sws in _inference_batches(model, data):
        model._step(xs, ys, sws, False)
    return {prefix + name: value for name, value in model.compiled.results().items()}


def evaluate(model, x, y, *, batch_size, sample_weight, steps, return_dict):
    check_compiled(model)
    data = adapter(model, x, y, sample_weight, batch_size, False, None, steps)
    return results_as_keras_returns(_evaluate_logs(model, data), return_dict)


def predict(model, x, *, batch_size, steps):
    data = adapter(model, x, None, None, batch_size, False, None, steps)
    parts = None
    for xs, _, _ in _inference_batches(model, data):
        outputs, _ = model._run_forward(xs, False)
        parts = [[] for _ in outputs] if parts is None else parts
        for i, out in enumerate(outputs):
            parts[i].append(out)
    if parts is None:
        raise ValueError("predict: the data gave no batches")
    return model._results([np.concatenate(p, axis=0) for p in parts])
