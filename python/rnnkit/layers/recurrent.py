"""SimpleRNN, LSTM and GRU layers over the C++ kernels of rnnkit.kernels, with Keras' arguments,
defaults and weight layout (kernel, recurrent_kernel, bias)."""

from __future__ import annotations

import numpy as np

from .. import initializers, kernels
from ..utils.random import get_rng
from .base import Layer, check_units
from .core import TableGradient
from .masking import Compression, check_mask, lengths_and_padding


def dropout_mask(shape, rate, dtype):
    """Keep with probability 1 - rate, scaled by 1 / (1 - rate) so the expected input is unchanged."""
    return ((get_rng().random(shape) >= rate) / (1.0 - rate)).astype(dtype)


class RNN(Layer):
    """What the three recurrent layers share; subclasses name the cell and its gate count."""

    cell = ""
    gates = 1
    activations = ("tanh",)  # what the kernels implement for this cell's activation

    def __init__(self, units: int, activation: str = "tanh", recurrent_activation: str = "sigmoid",
                 use_bias: bool = True, kernel_initializer="glorot_uniform", recurrent_initializer="orthogonal",
                 bias_initializer="zeros",
                 dropout: float = 0.0, recurrent_dropout: float = 0.0, return_sequences: bool = False,
                 return_state: bool = False, go_backwards: bool = False, stateful: bool = False, unroll: bool = False,
                 zero_output_for_mask: bool = False, time_major: bool = False, **kwargs) -> None:
        super().__init__(**kwargs)
        name = type(self).__name__
        self.units = check_units(name, units)
        activation = "linear" if activation is None else activation
        if activation not in self.activations or recurrent_activation != "sigmoid":
            raise ValueError(f"{name}: rnnkit's kernels implement activation in {self.activations} and "
                             f"recurrent_activation='sigmoid', got {activation!r} and {recurrent_activation!r}")
        self.activation = activation
        if stateful:
            raise ValueError(f"{name}: stateful=True is not supported; carry states between batches with "
                             f"return_state=True and initial_state=, or pass them to rnnkit.kernels")
        if time_major:
            raise ValueError(f"{name}: time_major=True is not supported; rnnkit takes (batch, timesteps, features): "
                             f"swap the first two axes (np.swapaxes(x, 0, 1))")
        self.use_bias = bool(use_bias)
        self.kernel_initializer = initializers.get(kernel_initializer)
        self.recurrent_initializer = initializers.get(recurrent_initializer)
        self.bias_initializer = initializers.get(bias_initializer)
        self.dropout = float(dropout)
        self.recurrent_dropout = float(recurrent_dropout)
        for arg, rate in (("dropout", self.dropout), ("recurrent_dropout", self.recurrent_dropout)):
            if not 0.0 <= rate < 1.0:
                raise ValueError(f"{name}: {arg} must be in [0, 1), got {rate}")
        self.return_sequences = bool(return_sequences)
        self.return_state = bool(return_state)
        self.go_backwards = bool(go_backwards)
        self.unroll = bool(unroll)  # accepted for Keras compatibility: the C++ loop needs no unrolling
        # Keras' option for returned sequences: zeros at masked steps instead of the previous output
        self.zero_output_for_mask = bool(zero_output_for_mask)

    @property
    def precision(self) -> str:
        """The kernels' precision for this layer's matrix products: 'bfloat16' under mixed_bfloat16."""
        return "bfloat16" if self.compute_dtype == "bfloat16" else "full"

    # --- weights ---------------------------------------------------------------------------------

    def bias_shape(self):
        return (self.gates * self.units,)

    def build(self, input_shape: tuple) -> None:
        features = input_shape[-1]
        if features is None:
            raise ValueError(
                f"{type(self).__name__} '{self.name}': the feature dimension must be known, got {input_shape}"
            )
        self.add_weight("kernel", (features, self.gates * self.units), self.kernel_initializer)
        self.add_weight("recurrent_kernel", (self.units, self.gates * self.units), self.recurrent_initializer)
        if self.use_bias:
            self.add_weight("bias", self.bias_shape(), self.bias_initializer)

    def compute_output_shape(self, input_shape):
        return (input_shape[0], self.units) if self.return_sequences else (self.units,)

    def _bias(self):
        return self.params["bias"] if self.use_bias else np.zeros(self.bias_shape(), self.dtype)

    # --- forward and backward --------------------------------------------------------------------

    def forward(self, inputs, *, training=False, mask=None, embedding=None, initial_state=None):
        """The layer's output. With ``embedding`` (the Embedding layer feeding this one), ``inputs`` are
        its token ids: the kernel looks them up itself, projecting the table once instead of every
        token, and the backward returns the table's gradient (a TableGradient) for that layer.
        ``initial_state``: the states to start from (a list: [h], or [h, c] for an LSTM), as the
        ``return_state`` outputs of another recurrent layer give them (an encoder-decoder); their
        gradients come back from the backward after the input's.

        ``mask`` (batch, timesteps), True at real steps, follows Keras: a masked step carries the
        state over and repeats the previous output (zeros before the first real step). Padding at
        either end costs nothing; a mask with holes is handled by moving the real steps together."""
        if embedding is None:
            x = self.cast_inputs(inputs)
            if x.ndim != 3:
                raise ValueError(f"{type(self).__name__} '{self.name}': expected inputs (batch, timesteps, features), "
                                 f"got shape {x.shape}")
            table = None
        else:
            x, table = np.asarray(inputs), embedding.params["embeddings"]
        if mask is not None:
            mask = check_mask(mask, x.shape[0], x.shape[1], f"{type(self).__name__} '{self.name}'")
        if self.go_backwards:
            x = x[:, ::-1]
            mask = None if mask is None else mask[:, ::-1]
        # dropout: masks drawn per batch and fixed over the timesteps, in training only
        self._input_keep = None
        if training and self.dropout > 0 and table is None:
            self._input_keep = dropout_mask((x.shape[0], x.shape[2]), self.dropout, self.dtype)
            x = x * self._input_keep[:, None, :]
        recurrent_mask = None
        if training and self.recurrent_dropout > 0:
            recurrent_mask = dropout_mask((x.shape[0], self.units), self.recurrent_dropout, self.dtype)
        lengths, padding, self._compression = None, "pre", None
        if mask is not None:
            found = lengths_and_padding(mask)
            if found is None:
                self._compression = Compression(mask)
                x = self._compression.compress(x)
                lengths, padding = self._compression.lengths, "post"
            else:
                lengths, padding = found
        self._fused = embedding is not None
        states = self._initial_states(initial_state, x.shape[0])
        self._has_initial_state = bool(states)
        forward_fn = getattr(kernels, f"{self.cell}_forward")
        # Keras' default tanh, the only one the LSTM's kernel takes, is the kernels' default too
        options = {} if self.activation == "tanh" else {"activation": self.activation}
        self._fwd = forward_fn(x, self.params["kernel"], self.params["recurrent_kernel"], self._bias(), **states,
                               **options,
                               lengths=lengths, padding=padding, save_for_backward=training, embeddings=table,
                               recurrent_mask=recurrent_mask, return_sequences=self.return_sequences,
                               precision=self.precision)
        outputs = self._fwd.outputs
        if self.return_sequences and self._compression is not None:
            outputs = self._compression.expand_outputs(outputs)
        self._zeroed = mask if self.return_sequences and self.zero_output_for_mask and mask is not None else None
        if self._zeroed is not None:
            outputs = outputs * self._zeroed[..., None]
        out = outputs if self.return_sequences else self._fwd.h
        if self.return_state:
            return [out] + [getattr(self._fwd, s) for s in self.state_names()]
        return out

    def _initial_states(self, initial_state, batch):
        """{'h0': ..., 'c0': ...} from initial_state, checked; {} without."""
        if initial_state is None:
            return {}
        given = list(initial_state) if isinstance(initial_state, (list, tuple)) else [initial_state]
        names = self.state_names()
        layer = f"{type(self).__name__} '{self.name}'"
        if len(given) != len(names):
            raise ValueError(f"{layer}: initial_state needs {len(names)} arrays ({', '.join(names)}), got {len(given)}")
        states = {}
        for name, value in zip(names, given):
            value = np.asarray(value)
            if value.dtype.kind != "f":
                raise TypeError(f"{layer}: initial state {name} must be floats, got {value.dtype}")
            if value.shape != (batch, self.units):
                raise ValueError(f"{layer}: initial state {name} must be (batch, units) = ({batch}, {self.units}), "
                                 f"got {value.shape}")
            states[f"{name}0"] = value.astype(self.dtype, copy=False)
        return states

    def output_structure(self, input_shape):
        out = self.compute_output_shape(input_shape)
        if not self.return_state:
            return [out], False
        return [out] + [(self.units,)] * len(self.state_names()), True

    def takes_tokens_from(self, embedding, training=False) -> bool:
        """Whether this layer can read token ids through ``embedding`` directly: not when input dropout
        must multiply each embedded token by a mask."""
        return embedding.dtype == self.dtype and not (training and self.dropout > 0)

    def backward(self, d_outputs):
        if self.return_state:
            d_out, *d_states = d_outputs
        else:
            d_out, d_states = d_outputs, [None] * len(self.state_names())
        d_seq = d_out if self.return_sequences else None
        if d_seq is not None and self._zeroed is not None:
            d_seq = d_seq * self._zeroed[..., None]  # the zeroed outputs are constants
        if d_seq is not None and self._compression is not None:
            d_seq = self._compression.compress_output_gradient(np.asarray(d_seq, self.dtype))
        d_h = d_states[0]
        if not self.return_sequences and d_out is not None:
            d_h = d_out if d_h is None else d_h + d_out
        grads = self._kernel_backward(d_seq, d_h, *d_states[1:])
        self.grads["kernel"] = grads.dkernel
        self.grads["recurrent_kernel"] = grads.drecurrent_kernel
        if self.use_bias:
            self.grads["bias"] = grads.dbias
        if self._fused:
            d_input = TableGradient(grads.dembeddings)
        else:
            d_input = grads.dx
            if self._compression is not None:
                d_input = self._compression.expand_input_gradient(d_input)
            if self._input_keep is not None:
                d_input = d_input * self._input_keep[:, None, :]
            if self.go_backwards:
                d_input = d_input[:, ::-1]
        if self._has_initial_state:
            return [d_input] + [getattr(grads, f"d{name}0") for name in self.state_names()]
        return d_input

    def _kernel_backward(self, d_seq, d_h, *d_other):
        return getattr(kernels, f"{self.cell}_backward")(self._fwd, d_seq, d_h, *d_other)

    def state_names(self):
        return ["h"]

    def compute_mask(self, inputs, mask):
        return mask if self.return_sequences else None

    def get_config(self) -> dict:
        return dict(
            super().get_config(), units=self.units, activation=self.activation, use_bias=self.use_bias,
            kernel_initializer=initializers.name_of(self.kernel_initializer),
            recurrent_initializer=initializers.name_of(self.recurrent_initializer),
            bias_initializer=initializers.name_of(self.bias_initializer), dropout=self.dropout,
            recurrent_dropout=self.recurrent_dropout, return_sequences=self.return_sequences,
            return_state=self.return_state, go_backwards=self.go_backwards,
            zero_output_for_mask=self.zero_output_for_mask,
        )


class SimpleRNN(RNN):
    """``h_t = f(x_t W + h_{t-1} U + b)`` with f the ``activation``: 'tanh' (default), 'relu' or 'linear';
    weights kernel (features, units), recurrent_kernel (units, units), bias (units,)."""

    cell = "simple_rnn"
    gates = 1
    activations = ("tanh", "relu", "linear")

    def __init__(self, units: int, activation: str = "tanh", **kwargs) -> None:
        super().__init__(units, activation=activation, **kwargs)


class LSTM(RNN):
    """Keras' LSTM: gates i, f, c, o in blocks of ``units`` columns of kernel (features, 4*units),
    recurrent_kernel (units, 4*units) and bias (4*units,). ``unit_forget_bias`` starts the forget
    gate's bias at 1."""

    cell = "lstm"
    gates = 4

    def __init__(self, units: int, unit_forget_bias: bool = True, **kwargs) -> None:
        super().__init__(units, **kwargs)
        self.unit_forget_bias = bool(unit_forget_bias)

    def build(self, input_shape: tuple) -> None:
        super().build(input_shape)
        if self.use_bias and self.unit_forget_bias:
            self.params["bias"][self.units : 2 * self.units] = 1.0

    def state_names(self):
        return ["h", "c"]

    def get_config(self) -> dict:
        return dict(super().get_config(), unit_forget_bias=self.unit_forget_bias)


class GRU(RNN):
    """Keras' GRU with reset_after=True: gates z, r, h in blocks of ``units`` columns of kernel
    (features, 3*units) and recurrent_kernel (units, 3*units); bias (2, 3*units) holds the input
    bias, then the recurrent bias."""

    cell = "gru"
    gates = 3
    activations = ("tanh", "relu", "linear")

    def __init__(self, units: int, reset_after: bool = True, **kwargs) -> None:
        if not reset_after:
            raise ValueError("GRU: rnnkit implements reset_after=True (Keras' default) only")
        super().__init__(units, **kwargs)

    def bias_shape(self):
        return (2, 3 * self.units)
