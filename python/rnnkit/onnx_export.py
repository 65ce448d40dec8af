"""A Sequential model as an ONNX graph (``model.export(path, format='onnx')``), for onnxruntime and the
other ONNX runtimes: Gather for the Embedding, ONNX's own LSTM, GRU and RNN operators for the recurrent
layers (both directions in one operator for Bidirectional), MatMul + Add and the activation for Dense.
Batch and sequence length are dynamic.

Weight layouts: ONNX stacks gates in rows (W: (directions, gates * hidden, input)) where Keras stacks
them in columns, and orders an LSTM's gates i, o, f, c where Keras has i, f, c, o; a GRU's z, r, h
agree, and Keras' reset_after=True is ONNX's linear_before_reset=1 with the two biases side by side.

Masks: an ``Embedding(mask_zero=True)`` becomes ``sequence_lens``. ONNX's operators take each
sequence's real steps at the start, so the graph first moves every review's tokens to the front (a
sequence padded in front, as pad_sequences pads by default, or at the end: its tokens must follow one
another); the recurrent layers then see exactly the steps Keras' mask lets through.
"""

from __future__ import annotations

import numpy as np

OPSET = 17
LSTM_ROWS = (0, 3, 1, 2)  # ONNX's i, o, f, c from Keras' i, f, c, o
ACTIVATIONS = {"sigmoid": "Sigmoid", "tanh": "Tanh", "relu": "Relu", "softmax": "Softmax", "linear": None,
               None: None}


def _need_onnx():
    try:
        import onnx
    except ImportError:
        raise ImportError("exporting to ONNX needs the onnx package: pip install 'rnnkit[onnx]'") from None
    return onnx


class _Graph:
    """The nodes and initializers under construction, with fresh names."""

    def __init__(self, onnx):
        self.onnx, self.helper = onnx, onnx.helper
        self.nodes, self.initializers, self.count = [], [], 0

    def name(self, hint):
        self.count += 1
        return f"{hint}_{self.count}"

    def constant(self, hint, array):
        name = self.name(hint)
        self.initializers.append(self.onnx.numpy_helper.from_array(np.asarray(array), name))
        return name

    def node(self, op, inputs, outputs=1, hint=None, **attributes):
        names = [self.name(hint or op.lower()) for _ in range(outputs)]
        self.nodes.append(self.helper.make_node(op, list(inputs), names, **attributes))
        return names[0] if outputs == 1 else names


def _left_aligned(g, ids):
    """(ids with each sequence's tokens moved to the front, its length): tokens are the nonzero ids,
    which must follow one another (padding in front or at the end)."""
    present = g.node("Cast", [g.node("Not", [g.node("Equal", [ids, g.constant("zero", np.int32(0))])])],
                     to=g.onnx.TensorProto.INT32)
    lengths = g.node("ReduceSum", [present, g.constant("axis", np.array([1], np.int64))], keepdims=0)
    first = g.node("ArgMax", [present], axis=1, keepdims=1)  # the first token (0 when there is none)
    steps = g.node("Gather", [g.node("Shape", [ids]), g.constant("one", np.int64(1))])
    t = g.node("Unsqueeze", [g.node("Range", [g.constant("start", np.int64(0)), steps,
                                              g.constant("delta", np.int64(1))]),
                             g.constant("axis0", np.array([0], np.int64))])
    last = g.node("Sub", [steps, g.constant("one", np.int64(1))])
    source = g.node("Min", [g.node("Add", [t, first]), last])
    moved = g.node("GatherElements", [ids, g.node("Expand", [source, g.node("Shape", [ids])])], axis=1)
    inside = g.node("Less", [t, g.node("Unsqueeze", [g.node("Cast", [lengths], to=g.onnx.TensorProto.INT64),
                                                      g.constant("axis1", np.array([1], np.int64))])])
    aligned = g.node("Where", [inside, moved, g.constant("pad", np.int32(0))])
    return aligned, lengths


def _recurrent_weights(layer):
    """(W, R, B) of one direction in ONNX's layout."""
    kind = type(layer).__name__
    kernel, recurrent = layer.params["kernel"], layer.params["recurrent_kernel"]
    units = recurrent.shape[0]
    bias = layer.params.get("bias")
    if kind == "LSTM":
        blocks = [slice(g * units, (g + 1) * units) for g in LSTM_ROWS]
        w = np.concatenate([kernel[:, b].T for b in blocks])
        r = np.concatenate([recurrent[:, b].T for b in blocks])
        b = np.zeros(8 * units, np.float32)
        if bias is not None:
            b[:4 * units] = np.concatenate([bias[s] for s in blocks])
        return w, r, b
    w, r = kernel.T, recurrent.T
    gates = 3 if kind == "GRU" else 1
    if bias is None:
        b = np.zeros(2 * gates * units, np.float32)
    elif kind == "GRU":
        b = np.concatenate([bias[0], bias[1]])
    else:
        b = np.concatenate([bias, np.zeros_like(bias)])
    return w, r, b


def _recurrent(g, layer, x, lengths, backward_layer=None):
    """The operator of a recurrent layer (or both of a Bidirectional's) over x (batch, time, features)."""
    kind = type(layer).__name__
    for sub in (layer, backward_layer):
        if sub is None:
            continue
        if sub.go_backwards != (sub is backward_layer):
            raise NotImplementedError(f"ONNX export: layer '{sub.name}' has go_backwards=True outside Bidirectional")
        if sub.activation not in ("tanh", "relu") or (kind != "SimpleRNN" and sub.activation != "tanh"):
            raise NotImplementedError(f"ONNX export: layer '{sub.name}' has activation {sub.activation!r}")
    directions = [layer] + ([backward_layer] if backward_layer is not None else [])
    w, r, b = (np.stack(arrays).astype(np.float32) for arrays in zip(*map(_recurrent_weights, directions)))
    units = layer.units
    attributes = {"hidden_size": units, "direction": "bidirectional" if backward_layer is not None else "forward"}
    if kind == "GRU":
        attributes["linear_before_reset"] = 1
    if kind == "SimpleRNN":
        attributes["activations"] = [layer.activation.capitalize()] * len(directions)
    op = {"SimpleRNN": "RNN", "LSTM": "LSTM", "GRU": "GRU"}[kind]
    time_major = g.node("Transpose", [x], perm=[1, 0, 2])
    inputs = [time_major, g.constant("W", w), g.constant("R", r), g.constant("B", b), lengths or ""]
    y, y_h = g.node(op, inputs, outputs=3 if kind == "LSTM" else 2, hint=kind.lower(), **attributes)[:2]
    if layer.return_sequences:  # (time, directions, batch, units) -> (batch, time, directions * units)
        out = g.node("Transpose", [y], perm=[2, 0, 1, 3])
        return g.node("Reshape", [out, g.constant("shape", np.array([0, 0, -1], np.int64))])
    out = g.node("Transpose", [y_h], perm=[1, 0, 2])  # (directions, batch, units) -> (batch, directions * units)
    return g.node("Reshape", [out, g.constant("shape", np.array([0, -1], np.int64))])


def _dense(g, layer, x):
    y = g.node("MatMul", [x, g.constant("kernel", layer.params["kernel"].astype(np.float32))])
    if "bias" in layer.params:
        y = g.node("Add", [y, g.constant("bias", layer.params["bias"].astype(np.float32))])
    return _activation(g, layer.activation, y, layer.name)


def _activation(g, name, x, layer_name):
    if name not in ACTIVATIONS:
        raise NotImplementedError(f"ONNX export: layer '{layer_name}' has activation {name!r}")
    op = ACTIVATIONS[name]
    if op is None:
        return x
    return g.node(op, [x], axis=-1) if op == "Softmax" else g.node(op, [x])


def export_onnx(model, filepath) -> None:
    from .models.sequential import Sequential

    onnx = _need_onnx()
    if not isinstance(model, Sequential):
        raise NotImplementedError("ONNX export: rnnkit exports Sequential models")
    shape = model._input_shape_for_save()
    if shape is None or len(shape) not in (1, 2):
        raise ValueError(f"ONNX export: model '{model.name}' must be built for (timesteps,) token ids or "
                         f"(timesteps, features) inputs, it is built for {shape}")
    g = _Graph(onnx)
    layers = list(model.layers)
    tokens = type(layers[0]).__name__ == "Embedding"
    x, lengths, masked_sequences = "input", None, False
    if tokens:
        embedding = layers.pop(0)
        ids = x
        if embedding.mask_zero:
            ids, lengths = _left_aligned(g, ids)
        x = g.node("Gather", [g.constant("embeddings", embedding.params["embeddings"].astype(np.float32)), ids])
    for layer in layers:
        kind = type(layer).__name__
        if layer.dtype != "float32":
            raise NotImplementedError(f"ONNX export: layer '{layer.name}' is {layer.dtype}; rnnkit exports float32")
        if masked_sequences and kind not in ("SimpleRNN", "LSTM", "GRU", "Bidirectional", "Dropout"):
            raise NotImplementedError(f"ONNX export: layer '{layer.name}' ({kind}) reads a masked sequence, whose "
                                      "steps the exported graph holds in another order; rnnkit exports masked "
                                      "models whose recurrent stack ends with return_sequences=False")
        if kind in ("SimpleRNN", "LSTM", "GRU"):
            x = _recurrent(g, layer, x, lengths)
        elif kind == "Bidirectional":
            if layer.merge_mode != "concat":
                raise NotImplementedError(f"ONNX export: Bidirectional '{layer.name}' has merge_mode "
                                          f"{layer.merge_mode!r}; rnnkit exports 'concat'")
            x = _recurrent(g, layer.forward_layer, x, lengths, layer.backward_layer)
        elif kind == "Dense":
            x = _dense(g, layer, x)
        elif kind == "Activation":
            x = _activation(g, layer.activation, x, layer.name)
        elif kind != "Dropout":  # Dropout: nothing at inference
            raise NotImplementedError(f"ONNX export: layer '{layer.name}' ({kind}) is not supported; rnnkit exports "
                                      "Embedding, SimpleRNN, LSTM, GRU, Bidirectional, Dense, Activation, Dropout")
        if kind in ("SimpleRNN", "LSTM", "GRU", "Bidirectional"):
            masked_sequences = lengths is not None and (layer.forward_layer if kind == "Bidirectional"
                                                        else layer).return_sequences
    if masked_sequences:
        raise NotImplementedError("ONNX export: the model outputs a masked sequence, which the exported graph "
                                  "would hold in another order; rnnkit exports masked models whose recurrent "
                                  "stack ends with return_sequences=False")
    output_shape = model._build_known_shapes(tuple(shape))[-1]
    helper = onnx.helper
    graph = helper.make_graph(
        g.nodes, model.name,
        [helper.make_tensor_value_info("input", onnx.TensorProto.INT32 if tokens else onnx.TensorProto.FLOAT,
                                       ["batch", "sequence", *shape[1:]])],
        [helper.make_tensor_value_info(x, onnx.TensorProto.FLOAT,
                                       ["batch", *("sequence" if d is None else d for d in output_shape)])],
        g.initializers)
    proto = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)], producer_name="rnnkit")
    onnx.checker.check_model(proto)
    from . import saving

    saving.atomic_write(filepath, lambda f: f.write(proto.SerializeToString()))
