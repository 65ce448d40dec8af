"""Everything a training run's future depends on, in one file: weights, optimizer state, where fit
is (epoch, batch, the epoch's sample order, its running sums) and every random generator (rnnkit's,
Python's and NumPy's global ones). Restoring it and calling fit again continues the run bit for bit
as if it had never stopped. BackupAndRestore writes and reads it.

The file is an rnnkit archive (saving.py), written atomically. Reading checks every field against the
model before anything is changed, so a file that does not fit raises ValueError and leaves the model,
the optimizer and the generators as they were.
"""

from __future__ import annotations

import random

import numpy as np

from . import saving
from .utils import random as rnnkit_random

KIND = "rnnkit-training-state"
# What a fit resumed mid-epoch must share with the first: the samples of arrays (or the batches of a dataset).
FIT_PARAMS = ("samples", "dataset_batches", "batch_size", "shuffle")


def _generator_states() -> dict:
    key, pos, has_gauss, gauss = np.random.get_state(legacy=True)[1:]
    version, words, gauss_next = random.getstate()
    return {
        "rnnkit": rnnkit_random.get_rng().bit_generator.state,
        "python": [version, list(words), gauss_next],
        "numpy": {"key": [int(k) for k in key], "pos": int(pos), "has_gauss": int(has_gauss), "gauss": float(gauss)},
    }


def save(path, model, params, extra=None) -> None:
    """Writes the model's training state as of now, between two batches of the fit whose callback
    ``params`` are given; ``extra`` is anything JSON can hold, returned by restore()."""
    state = model._fit_state
    weights = model.get_weights()
    optimizer_state = model.optimizer.get_state()
    order = [] if state.order is None else [np.asarray(state.order, dtype=np.int64)]
    description = {
        "epoch": state.epoch, "step": state.step, "running_means": model.compiled.get_state(),
        "fit": {key: params.get(key) for key in FIT_PARAMS},
        "weights": [list(w.shape) for w in weights],
        "optimizer": model.optimizer.name, "iterations": int(model.optimizer.iterations),
        "optimizer_arrays": len(optimizer_state), "has_order": bool(order),
        "generators": _generator_states(),
        "extra": extra,
    }
    saving.write_archive(path, KIND, description, weights + optimizer_state + order)


def describe(path):
    """(epoch, batch, extra) of a saved state: where the run stopped and what its writer added."""
    with saving.open_archive(path, KIND) as archive:
        header = archive.header
    try:
        return int(header["epoch"]), int(header["step"]), header.get("extra")
    except (KeyError, TypeError, ValueError) as e:
        raise ValueError(f"{path}: not a complete training state ({type(e).__name__}: {e})") from None


def state_of(model):
    return model._fit_state


def _fail(path, problem):
    return ValueError(f"{path}: this training state does not fit the run: {problem}")


def _checked_generators(path, generators) -> dict:
    """The three generator states, validated by building them: nothing global is touched yet."""
    try:
        rng = np.random.default_rng()
        rng.bit_generator.state = generators["rnnkit"]
        version, words, gauss_next = generators["python"]
        python = (int(version), tuple(int(w) for w in words), None if gauss_next is None else float(gauss_next))
        random.Random().setstate(python)
        numpy_state = generators["numpy"]
        legacy = ("MT19937", np.array(numpy_state["key"], dtype=np.uint32), int(numpy_state["pos"]),
                  int(numpy_state["has_gauss"]), float(numpy_state["gauss"]))
        np.random.RandomState().set_state(legacy)
    except (KeyError, TypeError, ValueError, OverflowError) as e:
        raise _fail(path, f"its random generator states are damaged ({type(e).__name__}: {e})") from None
    return {"rnnkit": rng.bit_generator.state, "python": python, "numpy": legacy}


def restore(path, model, params):
    """Reads a state written by save() into the model, its optimizer, model._fit_state and the random
    generators; returns the file's ``extra``. The model must be built and compiled with the same
    optimizer, and fit called on as many samples with the same batch size when the state is mid-epoch."""
    with saving.open_archive(path, KIND) as archive:
        return _restore(archive, model, params)


def _restore(archive, model, params):
    path, header = archive.path, archive.header
    try:
        epoch, step = int(header["epoch"]), int(header["step"])
        means = [[float(total), float(count)] for total, count in header["running_means"]]
        shapes = [tuple(int(d) for d in s) for s in header["weights"]]
        n_optimizer, has_order = int(header["optimizer_arrays"]), bool(header["has_order"])
        fit_params, optimizer_name = {key: header["fit"].get(key) for key in FIT_PARAMS}, header["optimizer"]
        for key in ("samples", "dataset_batches"):
            fit_params[key] = None if fit_params[key] is None else int(fit_params[key])
        iterations = int(header["iterations"])
        generators = header["generators"]
    except (KeyError, TypeError, ValueError, OverflowError) as e:
        raise ValueError(f"{path}: not a complete training state ({type(e).__name__}: {e})") from None
    if epoch < 0 or step < 0 or iterations < 0:
        raise _fail(path, f"negative epoch, batch or iteration count ({epoch}, {step}, {iterations})")
    if len(archive.specs) != len(shapes) + n_optimizer + has_order:
        raise _fail(path, f"{len(archive.specs)} arrays for {len(shapes)} weights, {n_optimizer} optimizer arrays"
                          f"{' and an order' if has_order else ''}")
    current = model.weights
    if [w.shape for w in current] != shapes:
        raise _fail(path, f"weights shaped {shapes}, but the model's are {[w.shape for w in current]}")
    if optimizer_name != model.optimizer.name:
        raise _fail(path, f"it was trained with {optimizer_name}, the model is compiled with {model.optimizer.name}")
    if step > 0 and not state_of(model).indexable:
        raise _fail(path, "it stopped mid-epoch, and a generator cannot give the rest of that epoch's batches again "
                          "(use a dataset with __getitem__, or back up at epoch ends only)")
    if step > 0:  # mid-epoch: the rest of the epoch only makes sense over the same batches
        now = {key: params.get(key) for key in FIT_PARAMS}
        if now != fit_params:
            raise _fail(path, f"it stopped mid-epoch in a fit over {fit_params}, this fit is over {now}")
    generators = _checked_generators(path, generators)
    trainable = [layer.params[name] for layer, name in model.trainable_weights_and_layers()]
    slots = model.optimizer.slots
    if n_optimizer not in (0, len(trainable) * len(slots)):
        raise _fail(path, f"{n_optimizer} optimizer arrays for {len(trainable)} trainable weights")
    weights = [archive.read(i, w.dtype, w.shape, f"weight {i}") for i, w in enumerate(current)]
    expected = [w for w in trainable for _ in slots] if n_optimizer else []
    optimizer_arrays = [archive.read(len(shapes) + i, w.dtype, w.shape, f"optimizer array {i}")
                        for i, w in enumerate(expected)]
    order = None
    if has_order:
        length = fit_params["samples"] if fit_params["samples"] is not None else fit_params["dataset_batches"]
        if length is None:
            raise _fail(path, "it has a sample order but no number of samples or batches to check it against")
        order = archive.read(len(archive.specs) - 1, np.int64, (length,), "the sample order")
        if not np.array_equal(np.sort(order), np.arange(len(order))):
            raise _fail(path, "its sample order is not a permutation of the samples")
    model.optimizer.set_state(optimizer_arrays, iterations, trainable)
    model.set_weights(weights)
    state = state_of(model)
    state.epoch, state.step, state.order = epoch, step, order
    if step > 0:  # the running means of the epoch under way; at an epoch end the next starts afresh
        model.compiled.restore_state(means)
    rnnkit_random.get_rng().bit_generator.state = generators["rnnkit"]
    random.setstate(generators["python"])
    np.random.set_state(generators["numpy"])
    return header.get("extra")
