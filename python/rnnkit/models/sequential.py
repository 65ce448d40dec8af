"""Sequential, as ``keras.Sequential``: a stack of layers, each feeding the next. Everything but the
stacking (compile, fit, saving, ...) is Model's."""

from __future__ import annotations

from ..layers import Embedding, InputLayer
from ..layers.base import auto_name, shape_str
from .graph import SymbolicTensor
from .model import Model


class Sequential(Model):
    _builds_own_graph = True

    def __init__(self, layers=None, name=None):
        super().__init__(name=name or auto_name("Sequential"))
        self._layers = []
        self.input_layer = None
        self._output_mask = None
        for layer in layers or []:
            self.add(layer)

    # --- structure -------------------------------------------------------------------------------------

    def add(self, layer) -> None:
        if isinstance(layer, SymbolicTensor) and layer.node.layer.is_input:  # Sequential([rnnkit.Input(...), ...])
            layer = layer.node.layer
        if isinstance(layer, InputLayer):
            if self._layers or self.input_layer is not None:
                raise ValueError("Sequential: an Input can only come first")
            self.input_layer = layer
            return
        if not hasattr(layer, "forward"):
            raise TypeError(f"Sequential.add: expected a layer, got {type(layer).__name__}")
        self._layers.append(layer)
        self._build_known_shapes()

    def pop(self):
        if not self._layers:
            raise ValueError("Sequential.pop: the model has no layers")
        return self._layers.pop()

    @property
    def layers(self) -> list:
        return list(self._layers)

    def _weighted_layers(self):
        return self._layers

    @property
    def input_names(self) -> list:
        return [self.input_layer.name if self.input_layer is not None else "input"]

    @property
    def output_names(self) -> list:
        return [self._layers[-1].name] if self._layers else ["output"]

    def _input_shape(self):
        if self.input_layer is not None:
            return self.input_layer.input_shape
        return self._layers[0].input_shape if self._layers else None

    def _build_known_shapes(self, input_shape=None):
        """Builds every layer whose input shape is known; returns the output shapes (None = unknown)."""
        shape = input_shape if input_shape is not None else self._input_shape()
        shapes = []
        for layer in self._layers:
            if shape is not None:
                layer.ensure_built(shape)
                shape = layer.compute_output_shape(shape)
            shapes.append(shape)
        return shapes

    def build(self, input_shape=None) -> None:
        """Builds the weights for inputs of this shape; like Keras, the shape may include the batch."""
        if input_shape is not None and len(input_shape) > 1 and input_shape[0] is None:
            input_shape = tuple(input_shape)[1:]
        if input_shape is not None:
            self._seen_input_shape = tuple(input_shape)  # what a saved or exported model is built for
        self._build_known_shapes(input_shape)

    def _build_for(self, xs):
        self._seen_input_shape = tuple(xs[0].shape[1:])
        self._build_known_shapes(self._input_shape() or self._seen_input_shape)

    # --- forward and backward --------------------------------------------------------------------------

    @staticmethod
    def _fused_embedding(layers, training_mode) -> bool:
        """Whether layers start Embedding -> recurrent layer, which then reads the token ids itself."""
        return (len(layers) >= 2 and isinstance(layers[0], Embedding)
                and hasattr(layers[1], "takes_tokens_from")
                and layers[1].takes_tokens_from(layers[0], training_mode))

    def _run_forward(self, xs, training_mode):
        x = xs[0]
        self._build_for(xs)
        mask = None
        layers = self._layers
        if layers and getattr(layers[0], "preprocesses", False):  # TextVectorization: strings to ids first
            x, layers = layers[0].forward(x, training=training_mode), layers[1:]
        if self._fused_embedding(layers, training_mode):
            embedding, recurrent = layers[0], layers[1]
            embedding_mask = embedding.compute_mask(x, None)
            out = recurrent.forward(x, training=training_mode, mask=embedding_mask, embedding=embedding)
            mask = recurrent.compute_mask(None, embedding_mask)
            x, layers = out, layers[2:]
        for layer in layers:
            out = layer.forward(x, training=training_mode, mask=mask)
            mask = layer.compute_mask(x, mask)
            x = out
        return [x], [mask]

    def _run_backward(self, d_outputs, from_logits):
        last = self._layers[-1]
        d = last.backward_from_logits(d_outputs[0]) if from_logits[0] else last.backward(d_outputs[0])
        # with the embedding fused, the recurrent layer hands the Embedding its table's gradient
        for layer in reversed(self._layers[:-1]):
            d = layer.backward(d)

    def _output_layer(self, i):
        return self._layers[-1] if self._layers else None

    def _first_consumers(self, i):
        return self._layers[:1]

    # --- description -----------------------------------------------------------------------------------

    def summary(self, print_fn=print) -> None:
        """Keras' table: layer (type), output shape, parameters, then the totals."""
        shapes = self._build_known_shapes()
        rule, thick = "_" * 65, "=" * 65
        lines = [f'Model: "{self.name}"', rule, f" {'Layer (type)':<34}{'Output Shape':<22}{'Param #':<10}", thick]
        for i, (layer, shape) in enumerate(zip(self._layers, shapes)):
            params = f"{layer.count_params()}" if layer.built else "0 (unbuilt)"
            lines.append(f" {layer.name + ' (' + type(layer).__name__ + ')':<34}{shape_str(shape):<22}{params:<10}")
            if i < len(self._layers) - 1:
                lines.append("")
        self._print_summary(lines, self._layers, rule, thick, print_fn)

    def get_config(self) -> dict:
        layers = [{"class_name": type(layer).__name__, "config": layer.get_config()} for layer in self._layers]
        if self.input_layer is not None:
            layers.insert(0, {"class_name": "InputLayer", "config": self.input_layer.get_config()})
        return {"name": self.name, "layers": layers}

    @classmethod
    def from_config(cls, config):
        from ..layers import REGISTRY

        model = cls(name=config["name"])
        for entry in config["layers"]:
            if entry["class_name"] not in REGISTRY:
                raise ValueError(f"unknown layer class {entry['class_name']!r} in the model description")
            model.add(REGISTRY[entry["class_name"]].from_config(entry["config"]))
        return model

    def _input_shape_for_save(self):
        shape = self._input_shape() or getattr(self, "_seen_input_shape", None)
        return None if shape is None else list(shape)
