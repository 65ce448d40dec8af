"""The Layer base class: named weights, Keras' get/set_weights, a forward that remembers what its
backward needs, and a backward that leaves the weight gradients in ``layer.grads``."""

from __future__ import annotations

import contextlib
import contextvars
import math
import re
from collections import defaultdict
from typing import Any, Optional

import numpy as np

from ..mixed_precision import DTypePolicy, as_policy

_name_counts: defaultdict = defaultdict(int)

# While a saved model is rebuilt: how many weight elements its file holds and the layers may still take.
_file_budget: contextvars.ContextVar = contextvars.ContextVar("rnnkit_file_budget", default=None)


@contextlib.contextmanager
def weights_from_file(elements: int):
    """Layers built inside take uninitialized weights (the file's arrays fill them next), no random
    draws, and at most `elements` numbers in all: a description asking for more than its file holds
    raises ValueError before anything that size is allocated."""
    token = _file_budget.set([int(elements)])
    try:
        yield
    finally:
        _file_budget.reset(token)


def snake_case(cls_name: str) -> str:
    """Keras' to_snake_case: SimpleRNN -> simple_rnn, Conv1D -> conv1d, MaxPooling1D -> max_pooling1d."""
    name = re.sub(r"(.)([A-Z][a-z]+)", r"\1_\2", cls_name)
    return re.sub(r"([a-z])([A-Z])", r"\1_\2", name).lower()


def auto_name(cls_name: str) -> str:
    """Keras' naming: SimpleRNN -> simple_rnn, then simple_rnn_1, simple_rnn_2, ..."""
    base = snake_case(cls_name)
    n = _name_counts[base]
    _name_counts[base] += 1
    return base if n == 0 else f"{base}_{n}"


class Layer:
    # Keyword arguments a subclass accepts beyond its own, for Keras compatibility.
    _base_kwargs = ("name", "dtype", "trainable", "input_shape", "batch_input_shape", "input_dim")

    def __init__(self, name: str | None = None, dtype: str | DTypePolicy | None = None, trainable: bool = True,
                 input_shape: tuple | None = None, **kwargs) -> None:
        unknown = set(kwargs) - set(self._base_kwargs)
        if unknown:
            raise TypeError(f"Unrecognized keyword arguments passed to {type(self).__name__}: {sorted(unknown)}")
        try:
            self.dtype_policy = as_policy(dtype)  # None: the global policy (rnnkit.mixed_precision)
        except ValueError as e:
            raise ValueError(f"{type(self).__name__}: dtype: {e}") from None
        self.name = name or auto_name(type(self).__name__)
        self.dtype = self.dtype_policy.variable_dtype  # the weights' and outputs' dtype, as Keras' layer.dtype
        self.trainable = bool(trainable)
        if input_shape is None and kwargs.get("batch_input_shape") is not None:
            input_shape = tuple(kwargs["batch_input_shape"])[1:]
        if input_shape is None and kwargs.get("input_dim") is not None:
            input_shape = (kwargs["input_dim"],)
        self.input_shape = None if input_shape is None else tuple(input_shape)
        self.params: dict = {}  # weight name -> array, in Keras' order
        self.grads: dict = {}  # weight name -> gradient from the last backward
        self.built = False
        self._nodes = []  # the calls recorded on symbolic tensors (models/graph.py)

    is_input = False  # only InputLayer: where a functional model's data enters

    @property
    def compute_dtype(self) -> str:
        return self.dtype_policy.compute_dtype

    @property
    def variable_dtype(self) -> str:
        return self.dtype_policy.variable_dtype

    # --- calling ---------------------------------------------------------------------------------------

    def __call__(self, inputs: Any, **kwargs) -> Any:
        """On symbolic tensors (rnnkit.Input, another layer's output), records the call for a Model and
        returns symbolic outputs; on arrays, builds the layer for them and returns its output (Keras'
        ``layer(x)``, in inference mode unless ``training=True``)."""
        from ..models.graph import is_symbolic, symbolic_call

        if is_symbolic(inputs) or is_symbolic(kwargs.get("initial_state")):
            return symbolic_call(self, inputs, **kwargs)
        training = bool(kwargs.pop("training", False))
        mask = kwargs.pop("mask", None)
        takes_list = isinstance(inputs, (list, tuple))
        values = [np.asarray(v) for v in inputs] if takes_list else np.asarray(inputs)
        self.ensure_built([v.shape[1:] for v in values] if takes_list else values.shape[1:])
        return self.forward(values, training=training, mask=mask, **kwargs)

    def output_structure(self, input_shape):
        """([output shapes without the batch axis], whether a call returns a list)."""
        return [self.compute_output_shape(input_shape)], False

    def output_dtype(self):
        return self.dtype

    # --- to override -------------------------------------------------------------------------------

    def build(self, input_shape) -> None:
        """Create the weights for inputs of this shape (without the batch dimension)."""
        self.built = True

    def compute_output_shape(self, input_shape):
        return input_shape

    def forward(self, inputs, *, training=False, mask=None):
        raise NotImplementedError

    def backward(self, d_outputs):
        """Gradient w.r.t. the inputs of the last forward; fills self.grads."""
        raise NotImplementedError

    def compute_mask(self, inputs, mask):
        """The mask the next layer sees: by default the incoming one, unchanged."""
        return mask

    def get_config(self) -> dict:
        return {"name": self.name, "dtype": self.dtype_policy.name, "trainable": self.trainable}

    @classmethod
    def from_config(cls, config):
        return cls(**config)

    # --- weights ---------------------------------------------------------------------------------

    def add_weight(self, name, shape, initializer):
        shape = tuple(int(s) for s in shape)
        budget = _file_budget.get()
        if budget is None:
            self.params[name] = initializer(shape, self.dtype)
            return
        size = math.prod(shape)
        if min(shape, default=0) < 0 or size > budget[0]:
            raise ValueError(f"Layer '{self.name}': weight '{name}' of shape {shape} is more than the file holds "
                             f"({budget[0]} numbers left)")
        budget[0] -= size
        self.params[name] = np.empty(shape, self.dtype)

    def ensure_built(self, input_shape) -> None:
        if not self.built:
            if input_shape and isinstance(input_shape[0], (list, tuple)):  # a layer of several inputs
                self.build([tuple(s) for s in input_shape])
            else:
                self.build(tuple(input_shape))
            self.built = True

    @property
    def weights(self) -> list:
        return list(self.params.values())

    def get_weights(self) -> list:
        return [w.copy() for w in self.params.values()]

    def set_weights(self, weights) -> None:
        weights = list(weights)
        if not self.built:
            raise ValueError(f"Layer '{self.name}' is not built yet: call the model on data or give an input shape")
        if len(weights) != len(self.params):
            raise ValueError(
                f"Layer '{self.name}' expects {len(self.params)} weights ({', '.join(self.params)}), got {len(weights)}"
            )
        for (key, current), new in zip(self.params.items(), weights):
            new = np.asarray(new)
            if new.shape != current.shape:
                raise ValueError(f"Layer '{self.name}' weight '{key}' has shape {current.shape}, got {new.shape}")
            current[...] = new

    def count_params(self) -> int:
        return int(sum(w.size for w in self.params.values()))

    def __repr__(self):
        return f"<{type(self).__name__} name={self.name!r}>"

    def cast_inputs(self, inputs):
        """Float inputs in this layer's dtype (Keras casts them too); anything else is a TypeError."""
        inputs = np.asarray(inputs)
        if inputs.dtype.kind != "f":
            raise TypeError(f"{type(self).__name__} '{self.name}': expected float inputs, got {inputs.dtype} array")
        return inputs.astype(self.dtype, copy=False)


def check_units(cls_name: str, units) -> int:
    if isinstance(units, bool) or not isinstance(units, (int, np.integer)) or units < 1:
        raise ValueError(f"{cls_name}: units must be a positive integer, got {units!r}")
    return int(units)


def shape_str(shape: Optional[tuple]) -> str:
    return "(None, " + ", ".join("None" if s is None else str(s) for s in shape) + ")" if shape is not None else "?"
