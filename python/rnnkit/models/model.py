"""Model, as ``keras.Model``: a functional model (``Model(inputs, outputs)`` over layers called on
``rnnkit.Input`` tensors), and everything a model has whatever its kind: weights, compile, fit,
evaluate, predict, train_on_batch, summary, saving. Sequential (sequential.py) is the other kind."""

from __future__ import annotations

import os

import numpy as np

from .. import training
from ..callbacks import History
from ..compiled import Compiled
from ..layers.base import auto_name, shape_str
from .graph import Graph


class Model:
    # Sequential builds its graph as layers are added; a Model is given its graph when it is made.
    _builds_own_graph = False
    # How raw text becomes this model's input ids (rnnkit.datasets.imdb.TextEncoding), saved with it:
    # `rnnkit imdb` sets it, `rnnkit predict` reads it.
    text_encoding = None

    def __init__(self, inputs=None, outputs=None, name=None):
        if not self._builds_own_graph and (inputs is None or outputs is None):
            raise TypeError("Model: give inputs and outputs (Model(inputs, outputs) over layers called on "
                            "rnnkit.Input tensors); rnnkit does not support subclassing Model")
        self.name = name or auto_name("Functional")
        self.compiled = None
        self.optimizer = None
        self.stop_training = False
        self.history = None
        self._graph = Graph(inputs, outputs) if inputs is not None else None

    # --- structure -------------------------------------------------------------------------------------

    @property
    def layers(self) -> list:
        return list(self._graph.layers)

    @property
    def input_names(self) -> list:
        return [t.node.layer.name for t in self._graph.inputs]

    @property
    def output_names(self) -> list:
        return [t.node.layer.name for t in self._graph.outputs]

    @property
    def inputs(self):
        return list(self._graph.inputs)

    @property
    def outputs(self):
        return list(self._graph.outputs)

    def _weighted_layers(self):
        return [layer for layer in self.layers if not layer.is_input]

    def get_layer(self, name=None, index=None):
        """The layer of this name, or at this index of ``model.layers`` (Keras' get_layer)."""
        if index is not None:
            if name is not None:
                raise ValueError("get_layer: give a name or an index, not both")
            if not -len(self.layers) <= index < len(self.layers):
                raise ValueError(f"get_layer: index {index} is outside the model's {len(self.layers)} layers")
            return self.layers[index]
        for layer in self.layers:
            if layer.name == name:
                return layer
        raise ValueError(f"no layer named {name!r}; the layers are {[layer.name for layer in self.layers]}")

    @property
    def built(self) -> bool:
        layers = self._weighted_layers()
        return bool(layers) and all(layer.built for layer in layers)

    # --- weights ---------------------------------------------------------------------------------------

    def get_weights(self) -> list:
        return [w for layer in self._weighted_layers() for w in layer.get_weights()]

    def set_weights(self, weights) -> None:
        weights = list(weights)
        layers = self._weighted_layers()
        expected = sum(len(layer.params) for layer in layers)
        if len(weights) != expected:
            raise ValueError(f"Model '{self.name}' expects {expected} weight arrays, got {len(weights)}")
        i = 0
        for layer in layers:
            n = len(layer.params)
            layer.set_weights(weights[i : i + n])
            i += n

    @property
    def weights(self) -> list:
        return [w for layer in self._weighted_layers() for w in layer.weights]

    @property
    def trainable_weights(self) -> list:
        return [layer.params[name] for layer, name in self.trainable_weights_and_layers()]

    @property
    def non_trainable_weights(self) -> list:
        return [w for layer in self._weighted_layers() if not layer.trainable for w in layer.weights]

    def trainable_weights_and_layers(self):
        return [(layer, name) for layer in self._weighted_layers() if layer.trainable for name in layer.params]

    def count_params(self) -> int:
        return sum(layer.count_params() for layer in self._weighted_layers())

    # --- running: what each kind of model defines --------------------------------------------------------

    def _run_forward(self, xs, training_mode):
        """(outputs, their masks) for the inputs xs (a list, in the inputs' order)."""
        return self._graph.forward(xs, training_mode)

    def _run_backward(self, d_outputs, from_logits):
        self._graph.backward(d_outputs, from_logits)

    def _output_layer(self, i):
        """The layer whose activation output i is, when a loss may be fused with it (nothing else reads
        that output); None otherwise."""
        t = self._graph.outputs[i]
        if len(t.node.outputs) != 1 or self._graph.consumers.get(id(t)):
            return None
        return t.node.layer

    def _first_consumers(self, i):
        """The layers that read input i directly (to check token ids for an Embedding)."""
        return [node.layer for node in self._graph.consumers.get(id(self._graph.inputs[i]), [])]

    def _build_for(self, xs):
        """Builds whatever the first batch's shapes decide (a functional model is built already)."""

    # --- data structures -------------------------------------------------------------------------------

    def _as_inputs(self, x, what="x"):
        """x as a list of arrays in the inputs' order: one array, a list, or a dict by input name."""
        names = self.input_names
        if isinstance(x, dict):
            missing = [n for n in names if n not in x]
            if missing:
                raise ValueError(f"{what}: no data for the inputs {missing}; the model's inputs are {names}")
            return [x[n] for n in names]
        if isinstance(x, (list, tuple)) and len(names) > 1:
            if len(x) != len(names):
                raise ValueError(f"{what}: {len(x)} arrays for the model's {len(names)} inputs {names}")
            return list(x)
        return [x]

    def _as_outputs(self, y, what="y"):
        """Per output: its labels (or sample weights), None where none are given."""
        names = self.output_names
        if y is None:
            return [None] * len(names)
        if isinstance(y, dict):
            unknown = set(y) - set(names)
            if unknown:
                raise ValueError(f"{what}: unknown outputs {sorted(unknown)}; the model's outputs are {names}")
            return [y.get(n) for n in names]
        if isinstance(y, (list, tuple)) and len(names) > 1:
            if len(y) != len(names):
                raise ValueError(f"{what}: {len(y)} arrays for the model's {len(names)} outputs {names}")
            return list(y)
        return [y]

    def _results(self, outputs):
        return outputs[0] if len(outputs) == 1 else list(outputs)

    def __call__(self, x, training=False):
        xs = [np.asarray(v) for v in self._as_inputs(x)]
        self._build_for(xs)
        outputs, _ = self._run_forward(xs, bool(training))
        return self._results(outputs)

    # --- compile and training ----------------------------------------------------------------------------

    def compile(self, optimizer="rmsprop", loss=None, metrics=None, loss_weights=None, weighted_metrics=None,
                **kwargs):
        """Keras' compile: ``metrics`` ignore sample weights, ``weighted_metrics`` use them."""
        unsupported = sorted(set(kwargs) - {"run_eagerly", "jit_compile", "steps_per_execution", "auto_scale_loss"})
        if unsupported:
            raise TypeError(f"compile: unsupported arguments {unsupported}")
        self.compiled = Compiled(optimizer, loss, metrics, loss_weights, self.output_names, weighted_metrics)
        self.optimizer = self.compiled.optimizer

    @property
    def loss(self):
        if self.compiled is None:
            return None
        return self.compiled.losses[0] if len(self.compiled.losses) == 1 else self.compiled.losses

    @property
    def metrics_names(self) -> list:
        return [] if self.compiled is None else self.compiled.metrics_names

    @property
    def metrics(self) -> list:
        """The metric objects (the loss trackers first), once a batch has been seen."""
        return [] if self.compiled is None else self.compiled._all()

    def _fused_logits(self, i, loss):
        if loss is None or loss.from_logits or loss.fused_activation is None:
            return None
        layer = self._output_layer(i)
        if layer is None or getattr(layer, "activation", None) != loss.fused_activation:
            return None
        return getattr(layer, "logits", None)

    def _step(self, xs, ys, sws, training_mode):
        """One batch: forward, loss, and in training the backward and the update; the compiled running
        means are updated. Returns the batch's loss."""
        outputs, masks = self._run_forward(xs, training_mode)
        compiled = self.compiled
        logits = [self._fused_logits(i, loss) for i, loss in enumerate(compiled.losses)]
        loss, grads, values = compiled.loss_and_gradients(ys, outputs, sws, masks, logits)
        if training_mode:
            self._run_backward(grads, [z is not None for z in logits])
            pairs = self.trainable_weights_and_layers()
            self.optimizer.apply([layer.params[n] for layer, n in pairs], [layer.grads[n] for layer, n in pairs])
        compiled.update_state(loss, values, len(xs[0]), ys, outputs, sws, masks)
        return loss

    def _on_batch(self, x, y, sample_weight, class_weight, return_dict, training_mode):
        training.check_compiled(self)
        data = training.ArrayData(self, x, y, sample_weight, None, False, class_weight)
        xs, ys, sws, _ = data.batch(0, None, whole=True)
        self._build_for(xs)
        self.compiled.reset()
        self._step(xs, ys, sws, training_mode)
        return training.results_as_keras_returns(self.compiled.results(), return_dict)

    def train_on_batch(self, x, y=None, sample_weight=None, class_weight=None,
                       return_dict: bool = False) -> float | list | dict:
        """One optimizer step on this batch; returns the loss, or [loss, metric...] when compiled with
        metrics (a dict with return_dict=True), as Keras does."""
        return self._on_batch(x, y, sample_weight, class_weight, return_dict, True)

    def test_on_batch(self, x, y=None, sample_weight=None, return_dict: bool = False) -> float | list | dict:
        """The loss (and metrics) on this batch, without training."""
        return self._on_batch(x, y, sample_weight, None, return_dict, False)

    def predict_on_batch(self, x) -> np.ndarray | list:
        return self(x)

    def fit(self, x=None, y=None, batch_size: int | None = None, epochs: int = 1, verbose="auto", callbacks=None,
            validation_split: float = 0.0, validation_data=None, shuffle: bool = True, class_weight=None,
            sample_weight=None, initial_epoch: int = 0, steps_per_epoch: int | None = None,
            validation_steps: int | None = None, validation_batch_size: int | None = None,
            validation_freq: int = 1) -> History:
        """Trains for ``epochs`` epochs over arrays, a Python generator or a dataset of batches (an
        object with ``__len__`` and ``__getitem__``, as keras.utils.PyDataset); returns a History whose
        ``.history`` maps 'loss', each metric and their 'val_' forms to one value per epoch.
        ``validation_split`` holds out the last fraction of the samples, before shuffling, as Keras does."""
        return training.fit(self, x, y, batch_size=batch_size, epochs=epochs, verbose=verbose, callbacks=callbacks,
                            validation_split=validation_split, validation_data=validation_data, shuffle=shuffle,
                            class_weight=class_weight, sample_weight=sample_weight, initial_epoch=initial_epoch,
                            steps_per_epoch=steps_per_epoch, validation_steps=validation_steps,
                            validation_batch_size=validation_batch_size, validation_freq=validation_freq)

    def evaluate(self, x=None, y=None, batch_size: int | None = None, verbose=0, sample_weight=None,
                 steps: int | None = None, return_dict: bool = False) -> float | list | dict:
        """The loss (and metrics) over the data: a float, or [loss, metric...] when compiled with
        metrics (a dict with return_dict=True)."""
        return training.evaluate(self, x, y, batch_size=batch_size, sample_weight=sample_weight, steps=steps,
                                 return_dict=return_dict)

    def predict(self, x, batch_size: int | None = None, verbose=0, steps: int | None = None) -> np.ndarray | list:
        return training.predict(self, x, batch_size=batch_size, steps=steps)

    # --- description -----------------------------------------------------------------------------------

    def summary(self, print_fn=print) -> None:
        """Keras' table: layer (type), output shape, parameters, what it is connected to, the totals."""
        rule, thick = "_" * 98, "=" * 98
        lines = [f'Model: "{self.name}"', rule,
                 f" {'Layer (type)':<32}{'Output Shape':<22}{'Param #':<10}{'Connected to'}", thick]
        for node in self._graph.nodes:
            layer = node.layer
            shapes = [shape_str(t.sample_shape) for t in node.outputs]
            shape = shapes[0] if len(shapes) == 1 else "[" + ", ".join(shapes) + "]"
            inbound = ", ".join(t.name for t in node.inbound) or "-"
            lines.append(f" {layer.name + ' (' + type(layer).__name__ + ')':<32}{shape:<22}"
                         f"{layer.count_params():<10}{inbound}")
        self._print_summary(lines, self._weighted_layers(), rule, thick, print_fn)

    def _print_summary(self, lines, layers, rule, thick, print_fn) -> None:
        """The summary's table lines, then Keras' totals over `layers` between its rules."""
        trainable = sum(layer.count_params() for layer in layers if layer.trainable)
        total = self.count_params()
        for line in lines + [thick, f"Total params: {total:,}", f"Trainable params: {trainable:,}",
                             f"Non-trainable params: {total - trainable:,}", rule]:
            print_fn(line)

    def get_config(self) -> dict:
        """The graph, as layers in running order with the tensors each reads: [layer name, output index]."""
        layers = []
        for node in self._graph.nodes:
            layers.append({"class_name": type(node.layer).__name__, "config": node.layer.get_config(),
                           "inbound": [[t.node.layer.name, t.index] for t in node.inputs],
                           "takes_list": node.takes_list,
                           "initial_state": [[t.node.layer.name, t.index] for t in node.states]})
        return {"name": self.name, "layers": layers,
                "inputs": [t.node.layer.name for t in self._graph.inputs], "single_input": self._graph.single_input,
                "outputs": [[t.node.layer.name, t.index] for t in self._graph.outputs],
                "single_output": self._graph.single_output}

    @classmethod
    def from_config(cls, config):
        from ..layers import REGISTRY, Input

        tensors = {}
        for entry in config["layers"]:
            name = entry["class_name"]
            if name not in REGISTRY:
                raise ValueError(f"unknown layer class {name!r} in the model description")
            if name == "InputLayer":
                layer_config = dict(entry["config"])
                t = Input(shape=layer_config.get("shape"), dtype=layer_config.get("dtype"), name=layer_config["name"])
                tensors[layer_config["name"]] = [t]
                continue
            layer = REGISTRY[name].from_config(entry["config"])
            inputs = [tensors[src][index] for src, index in entry["inbound"]]
            states = [tensors[src][index] for src, index in entry.get("initial_state", [])]
            kwargs = {"initial_state": states} if states else {}
            out = layer(inputs if entry.get("takes_list") else inputs[0], **kwargs)
            tensors[layer.name] = out if isinstance(out, list) else [out]
        inputs = [tensors[name][0] for name in config["inputs"]]
        outputs = [tensors[name][index] for name, index in config["outputs"]]
        return cls(inputs[0] if config.get("single_input", len(inputs) == 1) else inputs,
                   outputs[0] if config.get("single_output", len(outputs) == 1) else outputs, name=config["name"])

    # --- saving ----------------------------------------------------------------------------------------

    def save(self, filepath: str | os.PathLike) -> None:
        """Architecture, weights and optimizer state in one file, written atomically: Keras 3's format
        for a name ending in .keras (keras.models.load_model opens it), rnnkit's own otherwise."""
        from . import saving as model_saving

        if str(filepath).endswith(".keras"):
            from .keras_file import save_keras

            save_keras(self, filepath)
        else:
            model_saving.save_model(self, filepath)

    def export(self, filepath: str | os.PathLike, format: str = "onnx",  # noqa: A002 (Keras' name)
               verbose: bool = False, **kwargs) -> None:
        """Keras 3's export, in ONNX's format: a graph onnxruntime runs with the model's predictions."""
        if format != "onnx":
            raise ValueError(f"export: rnnkit exports format='onnx', got format={format!r}")
        from ..onnx_export import export_onnx

        export_onnx(self, filepath)

    def save_weights(self, filepath: str | os.PathLike) -> None:
        """The weights alone: Keras 3's HDF5 layout for a name ending in .weights.h5, rnnkit's otherwise."""
        from . import saving as model_saving

        if str(filepath).endswith(".weights.h5"):
            from .keras_file import save_weights_h5

            save_weights_h5(self, filepath)
        else:
            model_saving.save_weights(self, filepath)

    def load_weights(self, filepath: str | os.PathLike) -> None:
        """Weights from save_weights, from Keras 3's .weights.h5, or from a Keras 2 .h5 file (model.save or
        save_weights there)."""
        from . import saving as model_saving
        from .keras_file import is_hdf5_file, load_weights_h5

        if is_hdf5_file(filepath):
            load_weights_h5(self, filepath)
        else:
            model_saving.load_weights(self, filepath)
