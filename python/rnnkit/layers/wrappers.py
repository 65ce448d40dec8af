"""Wrappers, as in ``keras.layers``: Bidirectional and TimeDistributed."""

from __future__ import annotations

import numpy as np

from .base import Layer
from .recurrent import RNN

MERGE_MODES = ("concat", "sum", "mul", "ave", None)


class Bidirectional(Layer):
    """Runs a recurrent layer forward and a copy of it backward over the sequence and merges the two
    outputs: 'concat' (the default), 'sum', 'mul', 'ave', or None for the pair. With return_sequences
    the backward layer's outputs are turned back into forward time order first, and, as in Keras,
    masked steps output zeros in both directions. Weights: the forward layer's, then the backward
    layer's (Keras' order)."""

    def __init__(self, layer: Layer, merge_mode: str | None = "concat", backward_layer: Layer | None = None,
                 **kwargs) -> None:
        if not isinstance(layer, RNN):
            raise TypeError(f"Bidirectional: expected a SimpleRNN, LSTM or GRU layer, got {type(layer).__name__}")
        if merge_mode not in MERGE_MODES:
            raise ValueError(f"Bidirectional: merge_mode must be one of {MERGE_MODES}, got {merge_mode!r}")
        kwargs.setdefault("dtype", layer.dtype_policy)
        super().__init__(**kwargs)
        config = layer.get_config()
        self.forward_layer = layer
        self.forward_layer.name = "forward_" + config["name"]
        if backward_layer is None:
            backward_layer = type(layer).from_config(
                dict(config, name="backward_" + config["name"], go_backwards=not layer.go_backwards))
        self.backward_layer = backward_layer
        for sub in (self.forward_layer, self.backward_layer):
            sub.zero_output_for_mask = sub.return_sequences
        self.merge_mode = merge_mode
        self.return_sequences = layer.return_sequences
        self.return_state = layer.return_state
        if layer.input_shape is not None:
            self.input_shape = layer.input_shape

    def build(self, input_shape: tuple) -> None:
        for sub, prefix in ((self.forward_layer, "forward"), (self.backward_layer, "backward")):
            sub.ensure_built(input_shape)
            for name, array in sub.params.items():
                self.params[f"{prefix}/{name}"] = array  # the same arrays: updates reach the sublayers

    def compute_output_shape(self, input_shape):
        shape = self.forward_layer.compute_output_shape(input_shape)
        if self.merge_mode == "concat":
            shape = tuple(shape[:-1]) + (2 * shape[-1],)
        return shape

    def compute_mask(self, inputs, mask):
        return mask if self.return_sequences else None

    def output_structure(self, input_shape):
        out = self.compute_output_shape(input_shape)
        if not self.return_state:
            return [out], False
        units = self.forward_layer.units
        return [out] + [(units,)] * (2 * len(self.forward_layer.state_names())), True

    def takes_tokens_from(self, embedding, training=False) -> bool:
        return (self.forward_layer.takes_tokens_from(embedding, training)
                and self.backward_layer.takes_tokens_from(embedding, training))

    def forward(self, inputs, *, training=False, mask=None, embedding=None):
        forward = self.forward_layer.forward(inputs, training=training, mask=mask, embedding=embedding)
        backward = self.backward_layer.forward(inputs, training=training, mask=mask, embedding=embedding)
        states = []
        if self.return_state:
            (forward, *forward_states), (backward, *backward_states) = forward, backward
            states = forward_states + backward_states
        if self.return_sequences:
            backward = backward[:, ::-1]
        self._outputs = forward, backward
        merged = self._merge(forward, backward)
        return [merged] + states if self.return_state else merged

    def _merge(self, forward, backward):
        if self.merge_mode == "concat":
            return np.concatenate([forward, backward], axis=-1)
        if self.merge_mode == "sum":
            return forward + backward
        if self.merge_mode == "mul":
            return forward * backward
        if self.merge_mode == "ave":
            return (forward + backward) / 2
        return [forward, backward]

    def backward(self, d_outputs):
        d_states = []
        if self.return_state:
            d_outputs, *d_states = d_outputs
        forward, backward = self._outputs
        if self.merge_mode == "concat":
            d_forward, d_backward = np.split(d_outputs, 2, axis=-1)
        elif self.merge_mode == "sum":
            d_forward = d_backward = d_outputs
        elif self.merge_mode == "mul":
            d_forward, d_backward = d_outputs * backward, d_outputs * forward
        elif self.merge_mode == "ave":
            d_forward = d_backward = d_outputs / 2
        else:
            d_forward, d_backward = d_outputs
        if self.return_sequences:
            d_backward = d_backward[:, ::-1]
        n = len(d_states) // 2
        if self.return_state:
            d_forward, d_backward = [d_forward] + d_states[:n], [d_backward] + d_states[n:]
        # both directions read the input (or, fused with an Embedding, its table): the gradients add up
        dx = self.forward_layer.backward(d_forward) + self.backward_layer.backward(d_backward)
        for sub, prefix in ((self.forward_layer, "forward"), (self.backward_layer, "backward")):
            for name, grad in sub.grads.items():
                self.grads[f"{prefix}/{name}"] = grad
        return dx

    def get_config(self) -> dict:
        layer_config = self.forward_layer.get_config()
        layer_config["name"] = layer_config["name"][len("forward_"):]
        return dict(super().get_config(), merge_mode=self.merge_mode,
                    layer={"class_name": type(self.forward_layer).__name__, "config": layer_config})

    @classmethod
    def from_config(cls, config):
        from . import REGISTRY

        config = dict(config)
        spec = config.pop("layer")
        return cls(REGISTRY[spec["class_name"]].from_config(spec["config"]), **config)


class TimeDistributed(Layer):
    """Applies a layer to every timestep of (batch, timesteps, ...) inputs: the layer sees a batch of
    batch x timesteps samples. Its weights are the wrapped layer's; the mask passes through, as Keras'."""

    def __init__(self, layer: Layer, **kwargs) -> None:
        if not isinstance(layer, Layer):
            raise TypeError(f"TimeDistributed: expected a layer, got {type(layer).__name__}")
        kwargs.setdefault("dtype", layer.dtype_policy)
        super().__init__(**kwargs)
        self.layer = layer

    @property
    def activation(self):
        return getattr(self.layer, "activation", None)

    def build(self, input_shape: tuple) -> None:
        if len(input_shape) < 2:
            raise ValueError(f"TimeDistributed '{self.name}': expected inputs with a timesteps axis, got "
                             f"{input_shape}")
        self.layer.ensure_built(tuple(input_shape[1:]))
        self.params = self.layer.params  # the same arrays: updates reach the wrapped layer

    def compute_output_shape(self, input_shape):
        return (input_shape[0],) + tuple(self.layer.compute_output_shape(tuple(input_shape[1:])))

    def forward(self, inputs, *, training=False, mask=None):
        x = np.asarray(inputs)
        if x.ndim < 3:
            raise ValueError(f"TimeDistributed '{self.name}': expected inputs (batch, timesteps, ...), got {x.shape}")
        self._lead = x.shape[:2]
        out = self.layer.forward(x.reshape((-1,) + x.shape[2:]), training=training)
        if hasattr(self.layer, "logits"):
            self.logits = self.layer.logits.reshape(self._lead + self.layer.logits.shape[1:])
        return out.reshape(self._lead + out.shape[1:])

    def _flat(self, d):
        return d.reshape((-1,) + d.shape[2:])

    def backward(self, d_outputs):
        d = self.layer.backward(self._flat(d_outputs))
        self.grads = self.layer.grads
        return d.reshape(self._lead + d.shape[1:])

    def backward_from_logits(self, d_logits):
        d = self.layer.backward_from_logits(self._flat(d_logits))
        self.grads = self.layer.grads
        return d.reshape(self._lead + d.shape[1:])

    def compute_mask(self, inputs, mask):
        return mask

    def get_config(self) -> dict:
        return dict(super().get_config(), layer={"class_name": type(self.layer).__name__,
                                                 "config": self.layer.get_config()})

    @classmethod
    def from_config(cls, config):
        from . import REGISTRY

        config = dict(config)
        spec = config.pop("layer")
        return cls(REGISTRY[spec["class_name"]].from_config(spec["config"]), **config)
