"""Input, Embedding and Dense."""

from __future__ import annotations

from typing import Any, Callable

import numpy as np

from .. import activations, initializers, kernels
from .base import Layer, check_units


class InputLayer(Layer):
    """Declares the shape (without the batch dimension) and dtype of the model's input."""

    is_input = True

    def __init__(self, shape: tuple | None = None, dtype: str | None = None, name: str | None = None,
                 **kwargs) -> None:
        if shape is None and kwargs.get("input_shape") is not None:
            shape = kwargs.pop("input_shape")
        super().__init__(name=name, **kwargs)
        self.input_shape = tuple(shape) if shape is not None else (None,)
        # Keras spells text "string" (tf.string); NumPy's name for it is "str"
        self.input_dtype = None if dtype is None else "str" if dtype in ("string", str) else np.dtype(dtype).name
        self.built = True

    def forward(self, inputs, *, training=False, mask=None):
        return inputs

    def backward(self, d_outputs):
        return d_outputs

    def get_config(self) -> dict:
        return {"name": self.name, "shape": list(self.input_shape), "dtype": self.input_dtype}

    def output_dtype(self):
        return self.input_dtype or "float32"


def Input(shape: tuple | None = None, dtype: str | None = None, name: str | None = None) -> Any:  # noqa: N802
    """``keras.Input``: a symbolic tensor standing for a model's input of this shape (without the batch
    axis) and dtype, to call layers on and build a ``Model(inputs, outputs)``; or the first element of a
    Sequential model, naming its input shape."""
    from ..models.graph import Node, SymbolicTensor

    layer = InputLayer(shape=shape, dtype=dtype, name=name)
    node = Node(layer, [], False, [])
    node.outputs = [SymbolicTensor(layer.input_shape, layer.output_dtype(), node, 0)]
    layer._nodes.append(node)
    return node.outputs[0]


class TableGradient:
    """The gradient of an embedding table, which a recurrent layer that read token ids through the
    table itself (fused with the Embedding) returns as its input gradient: the Embedding takes it as
    its own. Two of them add up, as both directions of a Bidirectional layer read the table."""

    def __init__(self, table):
        self.table = table

    def __add__(self, other):
        return TableGradient(self.table + other.table)


class Embedding(Layer):
    """Token ids (batch, timesteps) -> vectors (batch, timesteps, output_dim).

    With ``mask_zero=True`` id 0 is padding: the mask the next layers see is ``ids != 0``.
    """

    def __init__(self, input_dim: int, output_dim: int, embeddings_initializer="uniform", mask_zero: bool = False,
                 input_length: int | None = None, **kwargs) -> None:
        if input_length is not None and "input_shape" not in kwargs:
            kwargs["input_shape"] = (input_length,)
        super().__init__(**kwargs)
        self.input_dim = check_units("Embedding input_dim", input_dim)
        self.output_dim = check_units("Embedding output_dim", output_dim)
        self.embeddings_initializer = initializers.get(embeddings_initializer)
        self.mask_zero = bool(mask_zero)
        if self.input_shape is None:
            self.input_shape = (None,)  # any number of timesteps: the table does not depend on it

    def build(self, input_shape: tuple) -> None:
        self.add_weight("embeddings", (self.input_dim, self.output_dim), self.embeddings_initializer)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape) + (self.output_dim,)

    def forward(self, inputs, *, training=False, mask=None):
        self._ids = inputs
        try:
            return kernels.embedding_forward(inputs, self.params["embeddings"])
        except (IndexError, TypeError) as e:
            raise type(e)(f"Embedding '{self.name}' (input_dim={self.input_dim}): {e}") from None

    def backward(self, d_outputs):
        if isinstance(d_outputs, TableGradient):  # from a recurrent layer that read the table itself
            self.grads["embeddings"] = d_outputs.table
        else:
            self.grads["embeddings"] = kernels.embedding_backward(self._ids, d_outputs, self.input_dim)
        return None  # ids have no gradient

    def compute_mask(self, inputs, mask):
        return np.asarray(inputs) != 0 if self.mask_zero else None

    def get_config(self) -> dict:
        return dict(super().get_config(), input_dim=self.input_dim, output_dim=self.output_dim,
                    embeddings_initializer=initializers.name_of(self.embeddings_initializer), mask_zero=self.mask_zero)


class Dense(Layer):
    """y = activation(x @ kernel + bias) over the last axis."""

    def __init__(self, units: int, activation: str | None = None, use_bias: bool = True,
                 kernel_initializer="glorot_uniform", bias_initializer="zeros", **kwargs) -> None:
        super().__init__(**kwargs)
        self.units = check_units("Dense", units)
        self.activation = activations.check(activation)
        self.use_bias = bool(use_bias)
        self.kernel_initializer = initializers.get(kernel_initializer)
        self.bias_initializer = initializers.get(bias_initializer)

    def build(self, input_shape: tuple) -> None:
        features = input_shape[-1]
        if features is None:
            raise ValueError(f"Dense '{self.name}': the last input dimension must be known, got {input_shape}")
        self.add_weight("kernel", (features, self.units), self.kernel_initializer)
        if self.use_bias:
            self.add_weight("bias", (self.units,), self.bias_initializer)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape[:-1]) + (self.units,)

    def forward(self, inputs, *, training=False, mask=None):
        x = self.cast_inputs(inputs)
        z = x @ self.params["kernel"]
        if self.use_bias:
            z += self.params["bias"]
        self._x = x
        self.logits = z  # the pre-activation, for a loss fused with this layer's activation
        self._y = activations.FORWARD[self.activation](z)
        return self._y

    def backward(self, d_outputs):
        return self.backward_from_logits(activations.BACKWARD[self.activation](self._y, d_outputs))

    def backward_from_logits(self, d_logits):
        """The backward given d(loss)/d(pre-activation), as a fused loss computes it."""
        x2 = self._x.reshape(-1, self._x.shape[-1])
        dz2 = d_logits.reshape(-1, self.units).astype(self.dtype, copy=False)
        self.grads["kernel"] = x2.T @ dz2
        if self.use_bias:
            self.grads["bias"] = dz2.sum(axis=0)
        return (dz2 @ self.params["kernel"].T).reshape(self._x.shape)

    def get_config(self) -> dict:
        return dict(super().get_config(), units=self.units, activation=self.activation, use_bias=self.use_bias,
                    kernel_initializer=initializers.name_of(self.kernel_initializer),
                    bias_initializer=initializers.name_of(self.bias_initializer))


class Activation(Layer):
    """Applies an activation function: 'sigmoid', 'tanh', 'relu', 'softmax', 'linear'. A loss after its
    matching activation (binary cross-entropy after a sigmoid, ...) takes this layer's input as logits."""

    def __init__(self, activation: str | Callable | None, **kwargs) -> None:
        super().__init__(**kwargs)
        self.activation = activations.check(activation)

    def forward(self, inputs, *, training=False, mask=None):
        x = self.cast_inputs(inputs)
        self.logits = x
        self._y = activations.FORWARD[self.activation](x)
        return self._y

    def backward(self, d_outputs):
        return activations.BACKWARD[self.activation](self._y, d_outputs)

    def backward_from_logits(self, d_logits):
        return d_logits

    def get_config(self) -> dict:
        return dict(super().get_config(), activation=self.activation or "linear")
