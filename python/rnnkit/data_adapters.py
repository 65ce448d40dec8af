"""Where fit, evaluate and predict take their batches from, as Keras' data adapters: arrays (sliced
into batches, shuffled by fit), a dataset of batches (an object with ``__len__`` and ``__getitem__``,
as ``keras.utils.PyDataset`` or ``Sequence``) or a Python generator. A batch is ``x``, ``(x, y)`` or
``(x, y, sample_weight)``, each with a structure the model takes (an array, a list, a dict by name).
"""

from __future__ import annotations

import numpy as np

from . import kernels

DEFAULT_BATCH_SIZE = 32  # Keras' default


def batch_size_of(batch_size):
    if batch_size is None:
        return DEFAULT_BATCH_SIZE
    if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
    return int(batch_size)


def check_inputs(model, xs, what="x"):
    """Each input as an array with at least one sample, of token ids where an Embedding reads it."""
    out = []
    for i, x in enumerate(xs):
        name = what if len(xs) == 1 else f"{what}[{model.input_names[i]!r}]"
        if x is None:
            raise ValueError(f"{name} is required")
        x = np.asarray(x)
        if x.ndim == 0 or x.shape[0] == 0:
            raise ValueError(f"{name} is empty (shape {x.shape}): at least one sample is needed")
        for layer in model._first_consumers(i):
            if type(layer).__name__ != "Embedding":
                continue
            if x.dtype.kind not in "iu":
                raise TypeError(f"{name}: the model feeds it to Embedding '{layer.name}', which takes integer token "
                                f"ids, got a {x.dtype} array (convert with .astype('int32') if the values are ids)")
            # here, so that positions refer to the caller's x
            where = f"{name}: Embedding '{layer.name}' (input_dim={layer.input_dim})"
            kernels.check_token_ids(x, layer.input_dim, where)
        out.append(x)
    return out


def class_weights_as_sample_weights(y, class_weight):
    """Keras' class_weight_to_sample_weights: each sample weighs its class's weight (1 if absent), its
    class being the label rounded, or the arg-max of a one-hot row."""
    y = np.asarray(y)
    if y.ndim > 1:
        y = np.argmax(y, axis=-1) if y.shape[-1] != 1 else y[..., 0]
    if y.ndim > 1:
        raise ValueError("class_weight: needs one label per sample; for per-timestep labels give sample_weight")
    classes = np.round(y).astype(np.int64)
    return np.array([float(class_weight.get(int(c), 1.0)) for c in classes])


def _with_class_weight(ys, sws, class_weight):
    if not class_weight:
        return sws
    if len(ys) != 1:
        raise ValueError("class_weight: only for a model with one output (give sample_weight per output instead)")
    weights = class_weights_as_sample_weights(ys[0], class_weight)
    return [weights if sws[0] is None else np.asarray(sws[0], np.float64) * weights]


def _unpack(batch):
    """(x, y, sample_weight) of a batch a dataset or generator gave."""
    if isinstance(batch, tuple):
        if not 1 <= len(batch) <= 3:
            raise ValueError(f"a batch must be x, (x, y) or (x, y, sample_weight), got a tuple of {len(batch)}")
        return tuple(batch) + (None,) * (3 - len(batch))
    return batch, None, None


class ArrayData:
    """Arrays: all inputs, labels and sample weights of one length, cut into batches."""

    indexable = True

    def __init__(self, model, x, y, sample_weight, batch_size, shuffle, class_weight=None, what="x"):
        self.model = model
        self.xs = check_inputs(model, model._as_inputs(x, what), what)
        self.ys = [None if v is None else np.asarray(v) for v in model._as_outputs(y, "y")]
        self.sws = [None if v is None else np.asarray(v) for v in model._as_outputs(sample_weight, "sample_weight")]
        self.samples = self.xs[0].shape[0]
        for name, arrays in (("inputs", self.xs), ("labels", self.ys), ("sample weights", self.sws)):
            for a in arrays:
                if a is not None and (a.ndim == 0 or a.shape[0] != self.samples):
                    n = a.shape[0] if a.ndim else "a scalar"
                    raise ValueError(f"{what} and its {name} have different numbers of samples: {self.samples} and {n}")
        self.batch_size = batch_size_of(batch_size) if batch_size is not None else self.samples
        self.shuffle = shuffle
        self.class_weight = class_weight
        self.steps = -(-self.samples // self.batch_size)

    def order(self, rng):
        return rng.permutation(self.samples) if self.shuffle else None

    def batch(self, step, order, whole=False):
        """(xs, ys, sample weights, size) of batch `step` of the given order (None: as stored)."""
        if whole:
            idx = slice(None)
        else:
            rows = np.arange(self.samples) if order is None else order
            idx = rows[step * self.batch_size : (step + 1) * self.batch_size]
        xs = [x[idx] for x in self.xs]
        ys = [None if y is None else y[idx] for y in self.ys]
        sws = [None if w is None else w[idx] for w in self.sws]
        return xs, ys, _with_class_weight(ys, sws, self.class_weight), len(xs[0])

    def split(self, validation_split):
        """(training, validation) data: the last fraction of the samples held out, before shuffling."""
        if not 0.0 <= validation_split < 1.0:
            raise ValueError(f"validation_split must be in [0, 1), got {validation_split}")
        if validation_split == 0.0:
            return self, None
        split_at = int(self.samples * (1.0 - validation_split))
        if split_at == 0 or split_at == self.samples:
            raise ValueError(f"validation_split={validation_split} leaves no samples on one side of {self.samples}")
        return self._part(slice(0, split_at)), self._part(slice(split_at, None))

    def _part(self, rows):
        part = object.__new__(ArrayData)
        part.__dict__.update(self.__dict__)
        part.xs = [x[rows] for x in self.xs]
        part.ys = [None if y is None else y[rows] for y in self.ys]
        part.sws = [None if w is None else w[rows] for w in self.sws]
        part.samples = part.xs[0].shape[0]
        part.steps = -(-part.samples // self.batch_size)
        return part

    def on_epoch_end(self):
        pass


class DatasetData:
    """A dataset of batches: ``len(dataset)`` batches, ``dataset[i]`` the i-th (keras.utils.PyDataset)."""

    indexable = True

    def __init__(self, model, dataset, steps, class_weight=None, shuffle=False):
        self.model, self.dataset, self.class_weight, self.shuffle = model, dataset, class_weight, shuffle
        self.dataset_batches = len(dataset)
        self.steps = self.dataset_batches if steps is None else min(int(steps), self.dataset_batches)
        if self.steps < 1:
            raise ValueError("the dataset has no batches")
        self.samples = None

    def order(self, rng):
        # Keras' fit(shuffle=True) shuffles the order of a dataset's batches each epoch, not their contents.
        return rng.permutation(self.dataset_batches) if self.shuffle else None

    def batch(self, step, order, whole=False):
        index = step if order is None else int(order[step])
        return _standardized(self.model, self.dataset[index], self.class_weight)

    def on_epoch_end(self):
        if hasattr(self.dataset, "on_epoch_end"):
            self.dataset.on_epoch_end()


class GeneratorData:
    """A Python generator (or any iterator) of batches, ``steps`` of them per epoch (until it ends when
    steps is None: then only one pass is possible)."""

    indexable = False

    def __init__(self, model, generator, steps, class_weight=None):
        self.model, self.class_weight = model, class_weight
        self.iterator = iter(generator)
        self.steps = None if steps is None else int(steps)
        if self.steps is not None and self.steps < 1:
            raise ValueError(f"steps must be a positive number of batches, got {steps}")
        self.samples = None

    def order(self, rng):
        return None

    def batch(self, step, order, whole=False):
        try:
            item = next(self.iterator)
        except StopIteration:
            raise _Exhausted() from None
        return _standardized(self.model, item, self.class_weight)

    def on_epoch_end(self):
        pass


class _Exhausted(Exception):
    """A generator ran out before the steps it was to give."""


def _standardized(model, batch, class_weight):
    x, y, sw = _unpack(batch)
    xs = check_inputs(model, model._as_inputs(x))
    ys = [None if v is None else np.asarray(v) for v in model._as_outputs(y, "y")]
    sws = [None if v is None else np.asarray(v) for v in model._as_outputs(sw, "sample_weight")]
    return xs, ys, _with_class_weight(ys, sws, class_weight), len(xs[0])


def is_dataset(x) -> bool:
    return hasattr(x, "__getitem__") and hasattr(x, "__len__") and not isinstance(x, (np.ndarray, list, tuple, dict))


def is_generator(x) -> bool:
    return hasattr(x, "__next__") or (hasattr(x, "__iter__") and not hasattr(x, "__len__")
                                      and not isinstance(x, (np.ndarray, list, tuple, dict, str)))


def adapter(model, x, y, sample_weight, batch_size, shuffle, class_weight, steps, what="x"):
    """The adapter for what fit, evaluate or predict was given."""
    if is_dataset(x) or is_generator(x):
        if y is not None or sample_weight is not None:
            raise ValueError(f"{what} is a dataset or generator of batches: it gives the labels and sample weights "
                             f"too, so y and sample_weight must be None")
        if is_dataset(x):
            return DatasetData(model, x, steps, class_weight, shuffle)
        return GeneratorData(model, x, steps, class_weight)
    data = ArrayData(model, x, y, sample_weight, batch_size_of(batch_size), shuffle, class_weight, what)
    if steps is not None:
        data.steps = min(data.steps, int(steps))
    return data
