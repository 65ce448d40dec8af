"""Sequential, as in ``keras.models``: a stack of layers with compile, fit, evaluate, predict, summary,
get/set_weights and save/load."""

from __future__ import annotations

import math

import numpy as np

from . import losses, optimizers, saving, training
from . import metrics as metrics_lib
from .layers import REGISTRY, Embedding, InputLayer
from .layers.base import auto_name, shape_str, weights_from_file


class Sequential:
    def __init__(self, layers=None, name=None):
        self.name = name or auto_name("Sequential")
        self.layers = []
        self.input_layer = None
        self.optimizer = None
        self.loss = None
        self.metrics = []
        self.stop_training = False
        self.history = None
        for layer in layers or []:
            self.add(layer)

    # --- structure -------------------------------------------------------------------------------

    def add(self, layer) -> None:
        if isinstance(layer, InputLayer):
            if self.layers or self.input_layer is not None:
                raise ValueError("Sequential: an Input can only come first")
            self.input_layer = layer
            return
        if not hasattr(layer, "forward"):
            raise TypeError(f"Sequential.add: expected a layer, got {type(layer).__name__}")
        self.layers.append(layer)
        self._build_known_shapes()

    def _input_shape(self):
        if self.input_layer is not None:
            return self.input_layer.input_shape
        return self.layers[0].input_shape if self.layers else None

    def _build_known_shapes(self, input_shape=None):
        """Builds every layer whose input shape is known; returns the output shapes (None = unknown)."""
        shape = input_shape if input_shape is not None else self._input_shape()
        shapes = []
        for layer in self.layers:
            if shape is not None:
                layer.ensure_built(shape)
                shape = layer.compute_output_shape(shape)
            shapes.append(shape)
        return shapes

    def build(self, input_shape=None) -> None:
        """Builds the weights for inputs of this shape; like Keras, the shape may include the batch."""
        if input_shape is not None and len(input_shape) > 1 and input_shape[0] is None:
            input_shape = tuple(input_shape)[1:]
        self._build_known_shapes(input_shape)

    @property
    def built(self) -> bool:
        return bool(self.layers) and all(layer.built for layer in self.layers)

    # --- weights ---------------------------------------------------------------------------------

    def get_weights(self) -> list:
        return [w for layer in self.layers for w in layer.get_weights()]

    def set_weights(self, weights) -> None:
        weights = list(weights)
        expected = sum(len(layer.params) for layer in self.layers)
        if len(weights) != expected:
            raise ValueError(f"Sequential '{self.name}' expects {expected} weight arrays, got {len(weights)}")
        i = 0
        for layer in self.layers:
            n = len(layer.params)
            layer.set_weights(weights[i : i + n])
            i += n

    @property
    def weights(self) -> list:
        return [w for layer in self.layers for w in layer.weights]

    def trainable_weights_and_layers(self):
        return [(layer, name) for layer in self.layers if layer.trainable for name in layer.params]

    def count_params(self) -> int:
        return sum(layer.count_params() for layer in self.layers)

    def summary(self, print_fn=print) -> None:
        """Keras' table: layer (type), output shape, parameters, then the totals."""
        shapes = self._build_known_shapes()
        rule, thick = "_" * 65, "=" * 65
        lines = [f'Model: "{self.name}"', rule, f" {'Layer (type)':<34}{'Output Shape':<22}{'Param #':<10}", thick]
        for i, (layer, shape) in enumerate(zip(self.layers, shapes)):
            params = f"{layer.count_params()}" if layer.built else "0 (unbuilt)"
            lines.append(f" {layer.name + ' (' + type(layer).__name__ + ')':<34}{shape_str(shape):<22}{params:<10}")
            if i < len(self.layers) - 1:
                lines.append("")
        trainable = sum(layer.count_params() for layer in self.layers if layer.trainable)
        total = self.count_params()
        lines += [thick, f"Total params: {total:,}", f"Trainable params: {trainable:,}",
                  f"Non-trainable params: {total - trainable:,}", rule]
        for line in lines:
            print_fn(line)

    # --- forward and backward --------------------------------------------------------------------

    def _fused_embedding(self, training_mode) -> bool:
        """Whether the model starts Embedding -> recurrent layer, which then reads the token ids itself."""
        return (len(self.layers) >= 2 and isinstance(self.layers[0], Embedding)
                and hasattr(self.layers[1], "takes_tokens_from")
                and self.layers[1].takes_tokens_from(self.layers[0], training_mode))

    def _forward(self, x, training_mode):
        self._seen_input_shape = tuple(x.shape[1:])
        self._build_known_shapes(self._input_shape() or self._seen_input_shape)
        mask = None
        layers = self.layers
        self._fused = self._fused_embedding(training_mode)
        if self._fused:
            embedding, recurrent = layers[0], layers[1]
            embedding_mask = embedding.compute_mask(x, None)
            out = recurrent.forward(x, training=training_mode, mask=embedding_mask, embedding=embedding)
            mask = recurrent.compute_mask(None, embedding_mask)
            x, layers = out, layers[2:]
        for layer in layers:
            out = layer.forward(x, training=training_mode, mask=mask)
            mask = layer.compute_mask(x, mask)
            x = out
        return x

    def _backward(self, d_outputs, from_logits):
        last = self.layers[-1]
        d = last.backward_from_logits(d_outputs) if from_logits else last.backward(d_outputs)
        # with the embedding fused, the recurrent layer hands the Embedding its table's gradient
        for layer in reversed(self.layers[:-1]):
            d = layer.backward(d)

    def __call__(self, x, training=False):
        return self._forward(np.asarray(x), training)

    # --- training --------------------------------------------------------------------------------

    def compile(self, optimizer="rmsprop", loss=None, metrics=None) -> None:
        if loss is None:
            raise ValueError("compile: a loss is required, e.g. loss='binary_crossentropy'")
        self.optimizer = optimizers.get(optimizer)
        self.loss = losses.get(loss)
        self.metrics = metrics_lib.check(metrics)

    def _fused_loss(self) -> bool:
        """Whether the loss takes the last layer's logits (e.g. sigmoid + binary cross-entropy)."""
        activation = getattr(self.layers[-1], "activation", None)
        return self.loss.fused_activation is not None and activation == self.loss.fused_activation

    def _loss_on_batch(self, x, y, training_mode):
        """(loss, its gradient w.r.t. the last layer's output or logits, number of correct predictions)."""
        y_pred = self._forward(x, training_mode)
        y = self.loss.check_targets(y, y_pred.shape)
        if self._fused_loss():
            value, d = self.loss.value_and_gradient_from_logits(y, self.layers[-1].logits)
        else:
            value, d = self.loss.value_and_gradient(y, y_pred)
        return value, d, metrics_lib.correct_predictions(y, y_pred)

    def train_on_batch(self, x, y):
        """One optimizer step; returns (loss, number of correct predictions)."""
        value, d, correct = self._loss_on_batch(x, y, True)
        self._backward(d, self._fused_loss())
        pairs = self.trainable_weights_and_layers()
        self.optimizer.apply([layer.params[n] for layer, n in pairs], [layer.grads[n] for layer, n in pairs])
        return value, correct

    def test_on_batch(self, x, y):
        """(loss, number of correct predictions) without training."""
        value, _, correct = self._loss_on_batch(x, y, False)
        return value, correct

    def fit(self, x=None, y=None, batch_size=None, epochs=1, verbose="auto", callbacks=None, validation_split=0.0,
            validation_data=None, shuffle=True, initial_epoch=0):
        """Trains for ``epochs`` epochs; returns a History whose ``.history`` maps 'loss', each
        metric and their 'val_' forms to one value per epoch. ``validation_split`` holds out the last
        fraction of the samples, before shuffling, as Keras does."""
        return training.fit(self, x, y, batch_size, epochs, verbose, callbacks, validation_split, validation_data,
                            shuffle, initial_epoch)

    def evaluate(self, x=None, y=None, batch_size=None, verbose=0, return_dict=False):
        """The loss (and metrics) over the data: a float, or [loss, metric...] when compiled with metrics."""
        return training.evaluate(self, x, y, batch_size, return_dict)

    def predict(self, x, batch_size=None, verbose=0):
        return training.predict(self, x, batch_size)

    # --- saving ----------------------------------------------------------------------------------

    def get_config(self) -> dict:
        layers = [{"class_name": type(layer).__name__, "config": layer.get_config()} for layer in self.layers]
        if self.input_layer is not None:
            layers.insert(0, {"class_name": "InputLayer", "config": self.input_layer.get_config()})
        return {"name": self.name, "layers": layers}

    @classmethod
    def from_config(cls, config):
        model = cls(name=config["name"])
        for entry in config["layers"]:
            if entry["class_name"] not in REGISTRY:
                raise ValueError(f"unknown layer class {entry['class_name']!r} in the model description")
            model.add(REGISTRY[entry["class_name"]].from_config(entry["config"]))
        return model

    def save(self, filepath) -> None:
        """Architecture, weights and optimizer state in one file, written atomically."""
        compiled = None
        arrays = self.get_weights()
        if self.optimizer is not None:
            state = self.optimizer.get_state()
            compiled = {"optimizer": self.optimizer.name, "optimizer_config": self.optimizer.get_config(),
                        "iterations": self.optimizer.iterations, "state_arrays": len(state),
                        "loss": self.loss.name, "metrics": self.metrics}
            arrays = arrays + state
        description = {"model": self.get_config(), "input_shape": self._input_shape_for_save(),
                       "weight_arrays": len(self.get_weights()), "compile": compiled}
        saving.write_archive(filepath, saving.MODEL_FORMAT, description, arrays)

    def _input_shape_for_save(self):
        shape = self._input_shape() or getattr(self, "_seen_input_shape", None)
        return None if shape is None else list(shape)

    def save_weights(self, filepath) -> None:
        description = {"layers": [[layer.name, list(layer.params)] for layer in self.layers]}
        saving.write_archive(filepath, saving.WEIGHTS_FORMAT, description, self.get_weights())

    def load_weights(self, filepath) -> None:
        with saving.open_archive(filepath, saving.WEIGHTS_FORMAT) as archive:
            self._set_weights_from(archive, 0)

    def _set_weights_from(self, archive, first: int) -> None:
        """The model's weights from the archive's arrays first, first + 1, ...: each checked against the
        weight it replaces (shape and dtype) before it is read."""
        if not self.built:
            raise ValueError(f"{archive.path}: the model '{self.name}' is not built, so the weights have nothing to "
                             f"fill: call it on data or give its input shape first")
        named = [(layer, name) for layer in self.layers for name in layer.params]
        if len(archive.specs) - first < len(named):
            raise ValueError(f"{archive.path}: holds {len(archive.specs) - first} weight arrays, the model "
                             f"'{self.name}' has {len(named)}")
        arrays = [archive.read(first + i, layer.params[name].dtype, layer.params[name].shape,
                               f"weight '{layer.name}/{name}'") for i, (layer, name) in enumerate(named)]
        self.set_weights(arrays)


# Failures of a description that JSON allows but rnnkit cannot build from: all mean a bad file.
_BAD_DESCRIPTION = (KeyError, TypeError, ValueError, AttributeError, IndexError, OverflowError, RecursionError,
                    NotImplementedError)


def load_model(filepath, compile=True) -> Sequential:  # noqa: A002 (Keras' argument name)
    """A model saved with ``model.save``: architecture, weights and, when it was compiled, the
    optimizer with its state, so training continues where it stopped. A file that is not such a
    model raises ValueError naming it, before arrays larger than the file's own are allocated."""
    with saving.open_archive(filepath, saving.MODEL_FORMAT) as archive:
        header = archive.header
        try:
            n = header["weight_arrays"]
            if isinstance(n, bool) or not isinstance(n, int) or not 0 <= n <= len(archive.specs):
                raise ValueError(f"weight_arrays is {n!r} for {len(archive.specs)} arrays")
            with weights_from_file(sum(math.prod(shape) for _, shape in archive.specs[:n])):
                model = Sequential.from_config(header["model"])
                if header.get("input_shape") is not None:
                    model.build(tuple(header["input_shape"]))
            if len(model.get_weights()) != n:
                raise ValueError(f"the description builds {len(model.get_weights())} weight arrays, the file has {n}")
            if n:
                model._set_weights_from(archive, 0)
            spec = header.get("compile")
            if compile and spec is not None:
                model.compile(optimizers.from_config(spec["optimizer"], spec["optimizer_config"]), spec["loss"],
                              spec["metrics"])
                weights = [layer.params[name] for layer, name in model.trainable_weights_and_layers()]
                count, slots, iterations = spec["state_arrays"], model.optimizer.slots, spec["iterations"]
                if count not in (0, len(weights) * len(slots)) or n + count > len(archive.specs):
                    raise ValueError(f"{count} optimizer state arrays for {len(weights)} weights")
                if isinstance(iterations, bool) or not isinstance(iterations, int) or iterations < 0:
                    raise ValueError(f"the optimizer's iterations are {iterations!r}")
                expected = [w for w in weights for _ in slots] if count else []
                state = [archive.read(n + i, w.dtype, w.shape, f"optimizer state array {i}")
                         for i, w in enumerate(expected)]
                model.optimizer.set_state(state, iterations, weights)
        except saving.ArchiveError:
            raise
        except _BAD_DESCRIPTION as e:
            raise ValueError(f"{filepath}: the saved model cannot be rebuilt: {type(e).__name__}: {e}") from None
    return model
