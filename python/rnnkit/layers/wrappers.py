"""Bidirectional, as in ``keras.layers.Bidirectional``."""

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

    def __init__(self, layer, merge_mode="concat", backward_layer=None, **kwargs):
        if not isinstance(layer, RNN):
            raise TypeError(f"Bidirectional: expected a SimpleRNN, LSTM or GRU layer, got {type(layer).__name__}")
        if merge_mode not in MERGE_MODES:
            raise ValueError(f"Bidirectional: merge_mode must be one of {MERGE_MODES}, got {merge_mode!r}")
        kwargs.setdefault("dtype", layer.dtype)
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

    def build(self, input_shape):
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

    def get_config(self):
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
