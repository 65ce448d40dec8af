"""The functional API's graph: symbolic tensors that stand for a layer's outputs while a model is put
together (Keras' KerasTensor), the nodes that record each layer call, and the forward and backward
passes over them in order.

Calling a layer on a symbolic tensor builds the layer, records a Node and returns symbolic outputs;
calling it on arrays runs it. A Model then walks the nodes from its outputs back to its inputs. Masks
travel along the edges as in Keras (each layer's compute_mask). An Embedding whose only consumer is a
recurrent layer is fused into it, as in Sequential: the recurrent layer reads the token ids and the
table itself and hands the Embedding its table's gradient.
"""

from __future__ import annotations

import numpy as np

from ..layers.base import shape_str


class SymbolicTensor:
    """A layer output in a model under construction: its shape without the batch axis, its dtype, and
    the node (and which of its outputs) that makes it."""

    def __init__(self, sample_shape, dtype, node, index):
        self.sample_shape = None if sample_shape is None else tuple(sample_shape)
        self.dtype = dtype
        self.node = node
        self.index = index

    @property
    def shape(self):
        return (None,) + self.sample_shape

    @property
    def name(self):
        return self.node.layer.name if len(self.node.outputs) <= 1 else f"{self.node.layer.name}:{self.index}"

    def __repr__(self):
        return f"<SymbolicTensor shape={shape_str(self.sample_shape)} dtype={self.dtype} from {self.name!r}>"

    # a symbolic tensor has no value to use as a truth value or array
    def __bool__(self):
        raise TypeError("a symbolic tensor has no value: use it to build a Model, or call the layer on arrays")

    def __array__(self, *args, **kwargs):
        raise TypeError("a symbolic tensor has no value: use it to build a Model, or call the layer on arrays")


class Node:
    """One call of a layer on symbolic tensors: its inputs (and initial states), whether the layer took a
    list, and its outputs."""

    def __init__(self, layer, inputs, takes_list, states):
        self.layer = layer
        self.inputs = list(inputs)
        self.takes_list = takes_list
        self.states = list(states)
        self.outputs = []

    @property
    def inbound(self):
        return self.inputs + self.states

    def input_shape(self):
        shapes = [t.sample_shape for t in self.inputs]
        return shapes if self.takes_list else shapes[0]


def is_symbolic(value) -> bool:
    if isinstance(value, SymbolicTensor):
        return True
    if isinstance(value, (list, tuple)):
        return any(is_symbolic(v) for v in value)
    return False


def symbolic_call(layer, inputs, initial_state=None, mask=None, training=None, **kwargs):
    """Records a call of layer on symbolic inputs and returns its symbolic output(s)."""
    name = f"{type(layer).__name__} '{layer.name}'"
    if kwargs:
        raise TypeError(f"{name}: rnnkit cannot record the arguments {sorted(kwargs)} in a model")
    if mask is not None:
        raise TypeError(f"{name}: in a model, masks come from the layers that make them (mask_zero, Masking), "
                        f"not from a mask= argument")
    takes_list = isinstance(inputs, (list, tuple))
    tensors = list(inputs) if takes_list else [inputs]
    states = [] if initial_state is None else (list(initial_state) if isinstance(initial_state, (list, tuple))
                                               else [initial_state])
    for t in tensors + states:
        if not isinstance(t, SymbolicTensor):
            raise TypeError(f"{name}: a model's layers take symbolic tensors (from rnnkit.Input or another layer), "
                            f"got {type(t).__name__} among them")
    if states and not hasattr(layer, "state_names"):
        raise TypeError(f"{name}: only a recurrent layer takes initial_state")
    node = Node(layer, tensors, takes_list, states)
    input_shape = node.input_shape()
    layer.ensure_built(input_shape)
    shapes, returns_list = layer.output_structure(input_shape)
    node.outputs = [SymbolicTensor(shape, layer.output_dtype(), node, i) for i, shape in enumerate(shapes)]
    layer._nodes.append(node)
    return list(node.outputs) if returns_list else node.outputs[0]


def _flatten(structure, what):
    items = list(structure) if isinstance(structure, (list, tuple)) else [structure]
    for t in items:
        if not isinstance(t, SymbolicTensor):
            raise TypeError(f"Model: {what} must be symbolic tensors (rnnkit.Input and layer outputs), got "
                            f"{type(t).__name__}")
    return items


class Graph:
    """The nodes between a model's inputs and outputs, in the order they run."""

    def __init__(self, inputs, outputs):
        self.inputs = _flatten(inputs, "inputs")
        self.outputs = _flatten(outputs, "outputs")
        self.single_input = not isinstance(inputs, (list, tuple))
        self.single_output = not isinstance(outputs, (list, tuple))
        for t in self.inputs:
            if not getattr(t.node.layer, "is_input", False):
                raise ValueError(f"Model: inputs must come from rnnkit.Input, got the output of '{t.node.layer.name}'")
        # Keras' order (ops/function.py map_graph): by depth, the longest path to an output, deepest
        # first, and among equals by when a depth-first walk from the outputs first reached them. It is a
        # running order, and the order of model.layers and of get_weights, so weights move from Keras.
        postorder, first_seen = [], {}
        done = set()

        def visit(node, path):
            first_seen.setdefault(id(node), len(first_seen))
            if id(node) in done:
                return
            if id(node) in path:
                raise ValueError("Model: the layer calls form a cycle")
            path.add(id(node))
            for t in node.inbound:
                visit(t.node, path)
            path.discard(id(node))
            done.add(id(node))
            postorder.append(node)

        for t in self.outputs:
            visit(t.node, set())
        depth = {}
        for node in reversed(postorder):
            depth.setdefault(id(node), 0)
            for t in node.inbound:
                depth[id(t.node)] = max(depth.get(id(t.node), 0), depth[id(node)] + 1)
        self.nodes = sorted(postorder, key=lambda node: (-depth[id(node)], first_seen[id(node)]))
        input_nodes = {id(t.node) for t in self.inputs}
        for node in self.nodes:
            if getattr(node.layer, "is_input", False) and id(node) not in input_nodes:
                raise ValueError(f"Model: the outputs depend on the input '{node.layer.name}', which is not among "
                                 f"the model's inputs")
        layers = [node.layer for node in self.nodes]
        for layer in layers:
            if layers.count(layer) > 1:
                raise NotImplementedError(f"Model: the layer '{layer.name}' is called more than once; rnnkit does "
                                          f"not share a layer between calls yet: use one layer per call")
        self.layers = layers
        self.consumers = {}
        for node in self.nodes:
            for t in node.inbound:
                self.consumers.setdefault(id(t), []).append(node)

    # --- running --------------------------------------------------------------------------------------

    def _fused_embedding(self, node, training):
        """The Embedding node that feeds `node` alone and that node can read through, or None."""
        if node.takes_list or len(node.inputs) != 1 or not hasattr(node.layer, "takes_tokens_from"):
            return None
        source = node.inputs[0].node
        if type(source.layer).__name__ != "Embedding" or len(self.consumers.get(id(node.inputs[0]), [])) != 1:
            return None
        if node.inputs[0] in self.outputs or not node.layer.takes_tokens_from(source.layer, training):
            return None
        return source

    def forward(self, values, training):
        """The outputs and their masks for input arrays `values` (in the inputs' order)."""
        value, mask = {}, {}
        for t, v in zip(self.inputs, values):
            value[id(t)], mask[id(t)] = v, None
        skipped = set()
        self._fused = {}
        for node in self.nodes:
            if getattr(node.layer, "is_input", False) or id(node) in skipped:
                continue
            fused = self._fused_embedding(node, training)
            extra = {}
            if node.states:
                extra["initial_state"] = [value[id(t)] for t in node.states]
            if fused is not None:
                ids = value[id(fused.inputs[0])]
                in_mask = fused.layer.compute_mask(ids, mask[id(fused.inputs[0])])
                out = node.layer.forward(ids, training=training, mask=in_mask, embedding=fused.layer, **extra)
                skipped.add(id(fused))
                self._fused[id(node)] = fused
                x = ids
            else:
                x = [value[id(t)] for t in node.inputs] if node.takes_list else value[id(node.inputs[0])]
                in_mask = [mask[id(t)] for t in node.inputs] if node.takes_list else mask[id(node.inputs[0])]
                out = node.layer.forward(x, training=training, mask=in_mask, **extra)
            outs = out if len(node.outputs) > 1 else [out]
            out_mask = node.layer.compute_mask(x, in_mask)
            for i, t in enumerate(node.outputs):
                value[id(t)] = outs[i]
                mask[id(t)] = out_mask if i == 0 else None
        return [value[id(t)] for t in self.outputs], [mask[id(t)] for t in self.outputs]

    def backward(self, d_outputs, from_logits):
        """Gradients from d_outputs (one per output, None for none); from_logits[i]: d_outputs[i] is the
        gradient of the logits of output i's layer (a loss fused with its activation)."""
        grads = {}
        logits = set()
        for t, d, fl in zip(self.outputs, d_outputs, from_logits):
            if d is None:
                continue
            grads[id(t)] = d if id(t) not in grads else grads[id(t)] + d
            if fl:
                logits.add(id(t))
        for node in reversed(self.nodes):
            if getattr(node.layer, "is_input", False):
                continue
            d_out = [grads.get(id(t)) for t in node.outputs]
            if all(d is None for d in d_out):
                node.layer.grads = {name: np.zeros_like(w) for name, w in node.layer.params.items()}
                continue
            if len(node.outputs) == 1 and id(node.outputs[0]) in logits:
                d_in = node.layer.backward_from_logits(d_out[0])
            else:
                d_in = node.layer.backward(d_out if len(node.outputs) > 1 else d_out[0])
            inbound = node.inbound
            if id(node) in self._fused:  # it read the Embedding's ids: its input gradient is the table's
                inbound = self._fused[id(node)].outputs + node.states
            d_list = d_in if len(inbound) > 1 else [d_in]
            for t, d in zip(inbound, d_list):
                if d is not None:
                    grads[id(t)] = d if id(t) not in grads else grads[id(t)] + d
