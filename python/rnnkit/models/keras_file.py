"""Keras 3's ``.keras`` files, both ways: a zip of ``config.json`` (the architecture and compile
settings), ``metadata.json`` and ``model.weights.h5`` (the weights and optimizer variables, written
and read with h5py).

The weights file names each layer by its class in snake case, numbered in the model's layer order
(``layers/lstm``, ``layers/lstm_1``; a functional model counts its InputLayers too), with a layer's
arrays under ``vars/0, 1, ...``, a recurrent layer's under ``cell/vars`` and a Bidirectional's under
``forward_layer`` and ``backward_layer``; the optimizer's under ``optimizer/vars``: the iteration
count, the learning rate, then each trainable weight's slots in turn. Only what rnnkit has is read; any
other layer, option or value is a ValueError that names it.
"""

from __future__ import annotations

import datetime
import io
import json
import zipfile
from pathlib import Path

import numpy as np

from .. import losses, optimizers, saving
from ..layers.base import snake_case, weights_from_file

FORMAT_KERAS_VERSION = "3.5.0"  # the oldest Keras whose .keras layout this follows
MAX_CONFIG_BYTES = 16 * 2**20
MAX_WEIGHTS_BYTES = 2**34
RECURRENT = ("SimpleRNN", "LSTM", "GRU")
CELL_NAMES = {"SimpleRNN": "simple_rnn_cell", "LSTM": "lstm_cell", "GRU": "gru_cell"}

# Keras options rnnkit takes, by layer class; any other option must have Keras' default, listed in DEFAULTS.
OPTIONS = {
    "Embedding": ("input_dim", "output_dim", "mask_zero"),
    "Dense": ("units", "activation", "use_bias"),
    "SimpleRNN": ("units", "activation", "use_bias", "dropout", "recurrent_dropout", "return_sequences",
                  "return_state", "go_backwards", "zero_output_for_mask"),
    "Bidirectional": ("merge_mode",),
    "Dropout": ("rate", "noise_shape", "seed"),
    "SpatialDropout1D": ("rate", "seed"),
    "Activation": ("activation",),
    "Masking": ("mask_value",),
    "Flatten": (),
    "GlobalMaxPooling1D": (),
    "GlobalAveragePooling1D": (),
    "Concatenate": ("axis",),
    "Add": (),
    "Conv1D": ("filters", "kernel_size", "strides", "padding", "dilation_rate", "activation", "use_bias"),
    "MaxPooling1D": ("pool_size", "strides", "padding"),
    "TimeDistributed": (),
}
WRAPPERS = ("Bidirectional", "TimeDistributed")  # a layer inside, serialized in the config's "layer"
OPTIONS["LSTM"] = OPTIONS["SimpleRNN"] + ("unit_forget_bias",)
OPTIONS["GRU"] = OPTIONS["SimpleRNN"]
DEFAULTS = {"recurrent_activation": "sigmoid", "stateful": False, "reset_after": True, "sparse": False,
            "data_format": "channels_last", "keepdims": False, "time_major": False, "groups": 1}
ONE_D = ("kernel_size", "strides", "dilation_rate", "pool_size")  # Keras writes [n], rnnkit takes n
IGNORED = {"name", "trainable", "dtype", "seed", "unroll", "input_length", "input_shape", "batch_input_shape",
           "embeddings_initializer", "kernel_initializer", "recurrent_initializer", "bias_initializer",
           "quantization_config", "lora_rank", "lora_alpha", "layer", "backward_layer", "implementation"}


class KerasFileError(ValueError):
    pass


def _need_h5py():
    try:
        import h5py
    except ImportError:
        raise ImportError("reading and writing .keras files needs h5py: pip install 'rnnkit[keras]'") from None
    return h5py


def _paths_of_classes(class_names) -> list:
    """Each layer's group name in model.weights.h5: its class in snake case, numbered from the second."""
    seen, out = {}, []
    for class_name in class_names:
        base = snake_case(class_name)
        n = seen.get(base, 0)
        seen[base] = n + 1
        out.append(base if n == 0 else f"{base}_{n}")
    return out


def _paths(layers) -> list:
    return _paths_of_classes(type(layer).__name__ for layer in layers)


# --- writing ---------------------------------------------------------------------------------------


def _serialized(class_name: str, config: dict, build_shape=None) -> dict:
    out = {"module": "keras.layers", "class_name": class_name, "config": config, "registered_name": None}
    if build_shape is not None:
        out["build_config"] = {"input_shape": [None, *build_shape]}
    return out


def _keras_layer_config(layer) -> dict:
    class_name = type(layer).__name__
    if class_name not in OPTIONS:
        raise KerasFileError(f"layer '{layer.name}' ({class_name}) cannot be written to a .keras file; "
                             f"rnnkit writes {', '.join(sorted(OPTIONS))}")
    config = dict(layer.get_config())
    if class_name in WRAPPERS:
        inner = layer.forward_layer if class_name == "Bidirectional" else layer.layer
        config["layer"] = _serialized(type(inner).__name__, {**_keras_layer_config(inner),
                                                             "name": config["layer"]["config"]["name"]})
    if class_name == "Bidirectional":
        backward = layer.backward_layer
        config["backward_layer"] = _serialized(type(backward).__name__, _keras_layer_config(backward))
    if class_name == "GRU":
        config["reset_after"] = True  # the only GRU rnnkit has; Keras' default too
    return config


def _input_dtype(model) -> str:
    first = model.layers[0] if model.layers else None
    return "int32" if type(first).__name__ == "Embedding" else "float32"


def _sequential_config(model) -> dict:
    layers = [_serialized(type(layer).__name__, _keras_layer_config(layer)) for layer in model.layers]
    shape = model._input_shape_for_save()
    if shape is None:
        raise KerasFileError(f"model '{model.name}' is not built: call it on data or give its input shape first")
    layers = [{"module": "keras.layers", "class_name": "InputLayer", "registered_name": None,
               "config": {"batch_shape": [None, *shape], "dtype": _input_dtype(model), "sparse": False,
                          "name": "input_layer"}}] + layers
    return {"name": model.name, "trainable": True, "dtype": "float32", "layers": layers,
            "build_input_shape": [None, *shape]}


def _functional_config(model) -> dict:
    config = model.get_config()
    by_name = {layer.name: layer for layer in model.layers}

    def _keras_tensor(name, index) -> dict:
        tensor = by_name[name]._nodes[0].outputs[index]
        shape = None if tensor.sample_shape is None else [None, *tensor.sample_shape]
        return {"class_name": "__keras_tensor__", "config": {"shape": shape, "dtype": tensor.dtype or "float32",
                                                             "keras_history": [name, 0, index]}}

    layers = []
    for entry, layer in zip(config["layers"], model.layers):
        name = layer.name
        if entry["class_name"] == "InputLayer":
            c = entry["config"]
            layers.append({"module": "keras.layers", "class_name": "InputLayer", "registered_name": None,
                           "name": name, "inbound_nodes": [],
                           "config": {"batch_shape": [None, *c["shape"]], "dtype": c.get("dtype") or "float32",
                                      "sparse": False, "name": name}})
            continue
        args = [_keras_tensor(src, i) for src, i in entry["inbound"]]
        kwargs = {}
        if entry.get("initial_state"):
            kwargs["initial_state"] = [_keras_tensor(src, i) for src, i in entry["initial_state"]]
        node = {"args": [args if entry.get("takes_list") else args[0]], "kwargs": kwargs}
        serialized = _serialized(entry["class_name"], _keras_layer_config(layer))
        layers.append({**serialized, "name": name, "inbound_nodes": [node]})
    inputs = [[name, 0, 0] for name in config["inputs"]]
    outputs = [[name, 0, index] for name, index in config["outputs"]]
    return {"name": model.name, "trainable": True, "layers": layers,
            "input_layers": inputs[0] if config.get("single_input") else inputs,
            "output_layers": outputs[0] if config.get("single_output") else outputs}


def _optimizer_slot_order(optimizer):
    """The optimizer's slots in Keras' per-variable order, or None when rnnkit does not know Keras' order."""
    name = type(optimizer).__name__
    if name == "Adam":
        return ("momentum", "velocity")
    if name == "SGD" or (name == "RMSprop" and not optimizer.slots[1:]):
        return tuple(optimizer.slots)
    return None


def _keras_loss(loss):
    """A loss as Keras serializes it: its name, or the class with from_logits=True."""
    if loss is None or not loss.get("from_logits"):
        return None if loss is None else loss["name"]
    class_name = "".join(part.capitalize() for part in loss["name"].split("_"))
    return {"module": "keras.losses", "class_name": class_name, "registered_name": None,
            "config": {"name": loss["name"], "from_logits": True, "reduction": "sum_over_batch_size"}}


def _rnnkit_loss(loss, where):
    if loss is None or isinstance(loss, str):
        return loss
    if isinstance(loss, dict) and isinstance(loss.get("class_name"), str):
        config = loss.get("config") or {}
        return losses.from_config({"name": snake_case(loss["class_name"]).replace("cross_entropy", "crossentropy"),
                                   "from_logits": bool(config.get("from_logits", False))})
    raise KerasFileError(f"{where}: the loss {loss!r} is not one rnnkit can read")


def _compile_config(model):
    if model.compiled is None:
        return None
    spec = model.compiled.get_config()
    optimizer = model.optimizer
    loss = [_keras_loss(c) for c in spec["losses"]]
    metrics = spec.get("metrics") or [[] for _ in loss]
    single = len(loss) == 1
    return {"optimizer": {"module": "keras.optimizers", "class_name": type(optimizer).__name__,
                          "config": {"name": optimizer.name, **optimizer.get_config()},
                          "registered_name": None},
            "loss": loss[0] if single else loss, "loss_weights": None if single else spec.get("loss_weights"),
            "metrics": (metrics[0] if single else metrics) or None, "weighted_metrics": None,
            "run_eagerly": False, "steps_per_execution": 1, "jit_compile": False}


def _weight_groups(path, layer):
    """(group path, layer) for every layer inside `layer` (itself included) whose own group in the weights
    file is at `path`: a wrapper's layers nest under forward_layer/backward_layer or layer. Each yields
    where its arrays go: cell/vars for a recurrent layer, vars otherwise (empty for weightless ones)."""
    class_name = type(layer).__name__
    if class_name == "Bidirectional":
        yield from _weight_groups(f"{path}/forward_layer", layer.forward_layer)
        yield from _weight_groups(f"{path}/backward_layer", layer.backward_layer)
    elif class_name == "TimeDistributed":
        yield from _weight_groups(f"{path}/layer", layer.layer)
    yield path, layer


def _write_layer_weights(h5, path, layer) -> None:
    for group_path, sub in _weight_groups(path, layer):
        h5.require_group(group_path).create_group("vars").attrs["name"] = sub.name
        if type(sub).__name__ in RECURRENT:
            h5[group_path].create_group("cell/vars").attrs["name"] = CELL_NAMES[type(sub).__name__]
        if type(sub).__name__ not in WRAPPERS:
            target = h5[_arrays_path(group_path, sub)]
            for i, array in enumerate(sub.params.values()):
                target.create_dataset(str(i), data=array)


def _arrays_path(group_path, layer) -> str:
    return f"{group_path}/cell/vars" if type(layer).__name__ in RECURRENT else f"{group_path}/vars"


def _weights_h5(model) -> bytes:
    h5py = _need_h5py()
    buffer = io.BytesIO()
    with h5py.File(buffer, "w") as h5:
        h5.create_group("vars").attrs["name"] = model.name
        h5.create_group("layers")
        for layer, path in zip(model.layers, _paths(model.layers)):
            _write_layer_weights(h5, f"layers/{path}", layer)
        order = _optimizer_slot_order(model.optimizer) if model.compiled is not None else None
        if order is not None and model.optimizer.state is not None:
            group = h5.create_group("optimizer").create_group("vars")
            group.attrs["name"] = model.optimizer.name
            group.create_dataset("0", data=np.int32(model.optimizer.iterations))
            group.create_dataset("1", data=np.float32(model.optimizer.learning_rate))
            arrays = [slots[name] for slots in model.optimizer.state for name in order]
            for i, array in enumerate(arrays):
                group.create_dataset(str(i + 2), data=array)
    return buffer.getvalue()


def save_keras(model, filepath) -> None:
    """Writes the model as Keras 3 does, so that keras.models.load_model opens it."""
    from .sequential import Sequential

    sequential = isinstance(model, Sequential)
    if sequential:
        config = {"module": "keras", "class_name": "Sequential", "config": _sequential_config(model),
                  "registered_name": None}
    else:
        config = {"module": "keras.src.models.functional", "class_name": "Functional",
                  "config": _functional_config(model), "registered_name": "Functional"}
    compiled = _compile_config(model)
    if compiled is not None:
        config["compile_config"] = compiled
    metadata = {"keras_version": FORMAT_KERAS_VERSION,
                "date_saved": datetime.datetime.now().strftime("%Y-%m-%d@%H:%M:%S")}
    weights = _weights_h5(model)

    def write(f):
        with zipfile.ZipFile(f, "w") as archive:
            archive.writestr("metadata.json", json.dumps(metadata))
            archive.writestr("config.json", json.dumps(config))
            archive.writestr("model.weights.h5", weights)

    saving.atomic_write(filepath, write)


# --- reading ---------------------------------------------------------------------------------------


def is_keras_file(path) -> bool:
    """Whether path is a .keras zip (only a regular file is opened: a FIFO or a device would block)."""
    if not Path(path).is_file():
        return False
    try:
        with zipfile.ZipFile(path) as archive:
            names = set(archive.namelist())
    except FileNotFoundError:
        raise
    except Exception:  # noqa: BLE001 - a probe: whatever the file is, rnnkit's own reader reports it
        return False
    return "config.json" in names and "model.weights.h5" in names


def _dtype_name(value, where):
    if isinstance(value, dict):
        value = (value.get("config") or {}).get("name")
    if value in (None, "float32", "float64", "mixed_bfloat16"):
        return value or "float32"
    raise KerasFileError(f"{where}: dtype {value!r} is not supported (rnnkit runs float32, float64 and "
                         f"mixed_bfloat16)")


def _rnnkit_config(entry: dict, where: str):
    """(class name, rnnkit config) of one serialized Keras layer, every option checked."""
    if not isinstance(entry, dict) or not isinstance(entry.get("config"), dict):
        raise KerasFileError(f"{where}: not a serialized layer")
    class_name, config = entry.get("class_name"), entry["config"]
    name = config.get("name", "?")
    if class_name not in OPTIONS:
        raise KerasFileError(f"{where}: layer '{name}' is a {class_name}, which rnnkit does not have; it reads "
                             f"{', '.join(sorted(OPTIONS))}")
    out = {"name": name, "dtype": _dtype_name(config.get("dtype"), f"layer '{name}'"),
           "trainable": bool(config.get("trainable", True))}
    for key, value in config.items():
        if key in OPTIONS[class_name]:
            out[key] = value[0] if key in ONE_D and isinstance(value, list) and len(value) == 1 else value
        elif key in DEFAULTS:
            if value != DEFAULTS[key]:
                raise KerasFileError(f"{where}: layer '{name}' ({class_name}) has {key}={value!r}, which rnnkit does "
                                     f"not support (only {DEFAULTS[key]!r})")
        elif key not in IGNORED and value is not None:
            raise KerasFileError(f"{where}: layer '{name}' ({class_name}) has {key}={value!r}, which rnnkit does not "
                                 "support")
    if class_name in WRAPPERS:
        inner_class, inner = _rnnkit_config(config.get("layer"), f"{where}, its layer")
        out["layer"] = {"class_name": inner_class, "config": inner}
    return class_name, out


def _read_json(archive, member, limit):
    info = archive.getinfo(member)
    if info.file_size > limit:
        raise KerasFileError(f"{member} has {info.file_size} bytes, more than a model description needs")

    def refuse(constant):
        raise KerasFileError(f"{member}: {constant} is not a number JSON allows")

    return json.loads(archive.read(member).decode("utf-8"), parse_constant=refuse)


def _set_layer_weights(h5, path, layer, where) -> None:
    for group_path, sub in _weight_groups(path, layer):
        if type(sub).__name__ in WRAPPERS or not sub.params:
            continue
        _set_arrays(h5, _arrays_path(group_path, sub), sub, where)


def _set_arrays(h5, group_path, layer, where) -> None:
    group = h5.get(group_path)
    if group is None:
        raise KerasFileError(f"{where}: model.weights.h5 has no {group_path} for layer '{layer.name}'")
    arrays = []
    for i, name in enumerate(layer.params):
        data = group.get(str(i))
        if data is None or not hasattr(data, "shape"):
            raise KerasFileError(f"{where}: {group_path}/{i} (weight '{name}' of layer '{layer.name}') is missing")
        arrays.append(_checked_array(data, f"{where}: {group_path}/{i}", layer, name))
    layer.set_weights(arrays)


def _checked_array(data, label: str, layer, weight: str) -> np.ndarray:
    """An HDF5 dataset read as the layer's weight, once its shape and kind are the weight's."""
    current = layer.params[weight]
    if tuple(data.shape) != current.shape or data.dtype.kind != "f":
        raise KerasFileError(f"{label} is a {data.dtype} array of shape {tuple(data.shape)}; weight '{weight}' of "
                             f"layer '{layer.name}' is {current.dtype} {current.shape}")
    return np.asarray(data, dtype=current.dtype)


def _model_from_config(config: dict, where: str):
    from ..layers import REGISTRY, Input
    from .model import Model
    from .sequential import Sequential

    class_name, body = config.get("class_name"), config.get("config")
    if class_name not in ("Sequential", "Functional", "Model") or not isinstance(body, dict):
        raise KerasFileError(f"{where}: the model is a {class_name!r}; rnnkit reads Sequential and functional models")
    entries = body.get("layers")
    if not isinstance(entries, list):
        raise KerasFileError(f"{where}: the model description has no list of layers")
    if class_name == "Sequential":
        model = Sequential(name=body.get("name"))
        for i, entry in enumerate(entries):
            if isinstance(entry, dict) and entry.get("class_name") == "InputLayer":
                c = entry.get("config") or {}
                shape = c.get("batch_shape") or c.get("batch_input_shape")
                model.add(Input(shape=tuple(shape[1:]), dtype=c.get("dtype")))
                continue
            name, layer_config = _rnnkit_config(entry, f"{where}, layer {i}")
            model.add(REGISTRY[name].from_config(layer_config))
        shape = body.get("build_input_shape")
        if model.input_layer is None and isinstance(shape, list) and shape:
            model.build(tuple(shape))
        return model
    layers, masks = [], set()
    for i, entry in enumerate(entries):
        if not isinstance(entry, dict):
            raise KerasFileError(f"{where}, layer {i}: not a serialized layer")
        if entry.get("class_name") == "NotEqual" and _is_padding_mask(entry):
            masks.add(entry.get("name"))  # ids != 0: the mask of an Embedding(mask_zero=True), which rnnkit
            continue                      # propagates itself
        if entry.get("class_name") == "InputLayer":
            c = entry.get("config") or {}
            shape = c.get("batch_shape") or c.get("batch_input_shape")
            layers.append({"class_name": "InputLayer", "inbound": [],
                           "config": {"name": entry.get("name", c.get("name")), "shape": list(shape[1:]),
                                      "dtype": c.get("dtype")}})
            continue
        name, layer_config = _rnnkit_config(entry, f"{where}, layer {i}")
        nodes = entry.get("inbound_nodes") or []
        if len(nodes) != 1:
            raise KerasFileError(f"{where}: layer '{layer_config['name']}' is called {len(nodes)} times; rnnkit "
                                 "supports layers called once (no shared layers)")
        args, kwargs = nodes[0].get("args") or [], nodes[0].get("kwargs") or {}
        mask = kwargs.get("mask")
        if mask is not None and (not isinstance(mask, dict) or _history(mask, where)[0] not in masks):
            raise KerasFileError(f"{where}: layer '{layer_config['name']}' is given a mask other than an Embedding's "
                                 "padding mask, which rnnkit does not support")
        unknown = set(kwargs) - {"initial_state", "mask", "training"}
        if unknown or len(args) != 1:
            raise KerasFileError(f"{where}: layer '{layer_config['name']}' is called with arguments rnnkit does not "
                                 f"support: {sorted(unknown) or args[1:]}")
        takes_list = isinstance(args[0], list)
        states = kwargs.get("initial_state") or []
        layers.append({"class_name": name, "config": layer_config, "takes_list": takes_list,
                       "inbound": [_history(t, where) for t in (args[0] if takes_list else [args[0]])],
                       "initial_state": [_history(t, where) for t in (states if isinstance(states, list)
                                                                      else [states])]})
    ins, outs = body.get("input_layers"), body.get("output_layers")
    single_in, single_out = bool(ins) and not isinstance(ins[0], list), bool(outs) and not isinstance(outs[0], list)
    ins, outs = ([ins] if single_in else ins), ([outs] if single_out else outs)
    return Model.from_config({"name": body.get("name", "functional"), "layers": layers,
                              "inputs": [i[0] for i in ins], "outputs": [[o[0], o[2]] for o in outs],
                              "single_input": single_in, "single_output": single_out})


def _is_padding_mask(entry) -> bool:
    """A Keras op node computing tensor != 0, as Keras writes an Embedding's mask passed on explicitly."""
    nodes = entry.get("inbound_nodes") or []
    args = nodes[0].get("args") if len(nodes) == 1 and isinstance(nodes[0], dict) else None
    return isinstance(args, list) and len(args) == 2 and isinstance(args[0], dict) and args[1] == 0


def _history(tensor, where):
    history = (tensor.get("config") or {}).get("keras_history") if isinstance(tensor, dict) else None
    if not (isinstance(history, list) and len(history) == 3):
        raise KerasFileError(f"{where}: a layer's input is not a tensor of another layer")
    if history[1] != 0:
        raise KerasFileError(f"{where}: layer '{history[0]}' is called more than once; rnnkit has no shared layers")
    return [history[0], history[2]]


def _compile_from(model, spec, h5, where):
    opt = spec.get("optimizer")
    if isinstance(opt, str):
        optimizer = optimizers.get(opt)
    else:
        oc = dict((opt or {}).get("config") or {})
        known = {"RMSprop": ("learning_rate", "rho", "momentum", "epsilon", "centered"),
                 "Adam": ("learning_rate", "beta_1", "beta_2", "epsilon"),
                 "SGD": ("learning_rate", "momentum", "nesterov")}
        kind = (opt or {}).get("class_name")
        if kind not in known:
            raise KerasFileError(f"{where}: the optimizer {kind!r} is not one rnnkit has ({', '.join(known)})")
        for key in ("clipnorm", "clipvalue", "global_clipnorm"):
            if oc.get(key) is not None:
                known[kind] += (key,)
        if oc.get("amsgrad") or oc.get("use_ema") or oc.get("weight_decay"):
            raise KerasFileError(f"{where}: the {kind} optimizer uses amsgrad, EMA or weight decay, which rnnkit's "
                                 "has not")
        if not isinstance(oc.get("learning_rate", 0.001), (int, float)):
            raise KerasFileError(f"{where}: a learning-rate schedule is not supported")
        optimizer = optimizers.from_config(kind.lower(), {k: oc[k] for k in known[kind] if k in oc})
    loss = spec.get("loss")
    loss = [_rnnkit_loss(c, where) for c in loss] if isinstance(loss, list) else _rnnkit_loss(loss, where)
    model.compile(optimizer, loss, spec.get("metrics"), loss_weights=spec.get("loss_weights"))
    group = h5.get("optimizer/vars")
    order = _optimizer_slot_order(model.optimizer)
    if group is None or order is None or len(group) < 2:
        return
    weights = model.trainable_weights
    if len(group) != 2 + len(weights) * len(order):
        raise KerasFileError(f"{where}: {len(group) - 2} optimizer variables for {len(weights)} weights")
    iterations = int(np.asarray(group["0"]))
    if iterations < 0:
        raise KerasFileError(f"{where}: the optimizer's iteration count is {iterations}")
    state = []
    for i, w in enumerate(w for w in weights for _ in order):
        data = group[str(i + 2)]
        if tuple(data.shape) != w.shape:
            raise KerasFileError(f"{where}: optimizer variable {i + 2} has shape {tuple(data.shape)}, its weight "
                                 f"{w.shape}")
        state.append(np.asarray(data, dtype=w.dtype))
    by_weight = [dict(zip(order, state[k:k + len(order)])) for k in range(0, len(state), max(1, len(order)))]
    by_weight = by_weight or [{} for _ in weights]
    model.optimizer.set_state([slots[name] for slots in by_weight for name in model.optimizer.slots],
                              iterations, weights)


def load_keras(filepath, compile=True):  # noqa: A002 (Keras' argument name)
    """A model from a .keras file written by Keras 3 (or by rnnkit)."""
    h5py = _need_h5py()
    where = str(filepath)
    try:
        with zipfile.ZipFile(filepath) as archive:
            config = _read_json(archive, "config.json", MAX_CONFIG_BYTES)
            info = archive.getinfo("model.weights.h5")
            if info.file_size > MAX_WEIGHTS_BYTES:
                raise KerasFileError(f"model.weights.h5 has {info.file_size} bytes")
            weights = archive.read("model.weights.h5")
        if not isinstance(config, dict):
            raise KerasFileError("config.json is not a JSON object")
        with h5py.File(io.BytesIO(weights), "r") as h5:
            # the layers may take no more numbers than the file holds: a description asking for more is
            # refused before anything that size is allocated
            sizes = []
            h5["layers"].visititems(lambda _, item: sizes.append(item.size) if hasattr(item, "shape") else None)
            with weights_from_file(sum(sizes)):
                model = _model_from_config(config, where)
            # the weights file numbers layers in the order config.json lists them (Keras' model.layers)
            entries = [e for e in config["config"]["layers"]
                       if config["class_name"] != "Sequential" or e.get("class_name") != "InputLayer"]
            paths = dict(zip((e.get("name", (e.get("config") or {}).get("name")) for e in entries),
                             _paths_of_classes([e.get("class_name") for e in entries])))
            for layer in model.layers:
                _set_layer_weights(h5, f"layers/{paths[layer.name]}", layer, where)
            if compile and isinstance(config.get("compile_config"), dict) and config["compile_config"].get("optimizer"):
                _compile_from(model, config["compile_config"], h5, where)
    except FileNotFoundError:
        raise
    except KerasFileError as e:
        raise ValueError(f"{where}: {e}" if not str(e).startswith(where) else str(e)) from None
    except (zipfile.BadZipFile, KeyError, TypeError, ValueError, AttributeError, IndexError, OSError, EOFError,
            RecursionError, UnicodeDecodeError, NotImplementedError) as e:
        raise ValueError(f"{where}: not a readable .keras file: {type(e).__name__}: {e}") from None
    return model


# --- weights-only HDF5 files: Keras 3's .weights.h5 and Keras 2's .h5 -------------------------------

HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"


def is_hdf5_file(path) -> bool:
    if not Path(path).is_file():
        return False
    with open(path, "rb") as f:
        return f.read(8) == HDF5_SIGNATURE


def save_weights_h5(model, filepath) -> None:
    """Keras 3's model.save_weights('x.weights.h5'): the weights part of a .keras file."""
    data = _weights_h5(model)
    saving.atomic_write(filepath, lambda f: f.write(data))


def _text(value) -> str:
    return value.decode("utf-8") if isinstance(value, bytes) else str(value)


def load_weights_h5(model, filepath) -> None:
    """The weights of a Keras 3 .weights.h5 file or of a Keras 2 .h5 file (model.save or save_weights),
    matched to the model's layers in order, each array checked against the weight it replaces."""
    h5py = _need_h5py()
    where = str(filepath)
    if not model.built:
        raise ValueError(f"{where}: the model '{model.name}' is not built, so the weights have nothing to fill: "
                         "call it on data or give its input shape first")
    try:
        with h5py.File(filepath, "r") as h5:
            group = h5["model_weights"] if "model_weights" in h5 else h5
            if "layer_names" in group.attrs:
                _load_keras2_weights(model, group, where)
            elif "layers" in h5:
                for layer, path in zip(model.layers, _paths(model.layers)):
                    _set_layer_weights(h5, f"layers/{path}", layer, where)
            else:
                raise KerasFileError("neither Keras 3 weights (a 'layers' group) nor Keras 2 weights "
                                     "('layer_names')")
    except FileNotFoundError:
        raise
    except KerasFileError as e:
        raise ValueError(f"{where}: {e}" if not str(e).startswith(where) else str(e)) from None
    except (KeyError, TypeError, ValueError, AttributeError, IndexError, OSError, RecursionError,
            UnicodeDecodeError) as e:
        raise ValueError(f"{where}: not a readable Keras weights file: {type(e).__name__}: {e}") from None


def _load_keras2_weights(model, group, where) -> None:
    """Keras 2's layout: attribute layer_names, and per layer a group whose weight_names attribute lists
    the datasets (kernel, recurrent_kernel, bias, ...) in the layer's weight order."""
    saved = []
    for name in map(_text, group.attrs["layer_names"]):
        names = [_text(n) for n in group[name].attrs.get("weight_names", [])]
        if names:
            saved.append((name, [group[name][n] for n in names]))
    layers = [layer for layer in model._weighted_layers() if layer.params]
    if len(saved) != len(layers):
        raise KerasFileError(f"the file holds the weights of {len(saved)} layers "
                             f"({', '.join(n for n, _ in saved)}), the model '{model.name}' has {len(layers)} with "
                             f"weights ({', '.join(layer.name for layer in layers)})")
    for layer, (name, datasets) in zip(layers, saved):
        expected = list(layer.params)
        if len(datasets) != len(expected):
            raise KerasFileError(f"layer '{name}' in the file has {len(datasets)} weights, layer '{layer.name}' "
                                 f"has {len(expected)}")
        layer.set_weights([_checked_array(data, data.name, layer, weight)
                           for data, weight in zip(datasets, expected)])
