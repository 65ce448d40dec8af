"""Saving and loading models (rnnkit's own archive format, saving.py): the architecture, the weights
and, for a compiled model, the optimizer with its state and the compile settings. Loading checks the
file before it allocates what it describes (see load_model)."""

from __future__ import annotations

import math
import os

from .. import losses, optimizers, saving
from ..layers.base import weights_from_file
from .model import Model
from .sequential import Sequential


def save_model(model, filepath) -> None:
    arrays = model.get_weights()
    n_weights = len(arrays)
    compiled = None
    if model.compiled is not None:
        optimizer = model.optimizer
        state = optimizer.get_state()
        compiled = {"optimizer": optimizer.name, "optimizer_config": optimizer.get_config(),
                    "iterations": optimizer.iterations, "state_arrays": len(state), **model.compiled.get_config()}
        arrays = arrays + state
    sequential = isinstance(model, Sequential)
    description = {"class_name": "Sequential" if sequential else "Functional", "model": model.get_config(),
                   "input_shape": model._input_shape_for_save() if sequential else None,
                   "weight_arrays": n_weights, "compile": compiled}
    if model.text_encoding is not None:
        description["text_encoding"] = model.text_encoding.get_config()
    saving.write_archive(filepath, saving.MODEL_FORMAT, description, arrays)


def save_weights(model, filepath) -> None:
    layers = model._weighted_layers()
    description = {"layers": [[layer.name, list(layer.params)] for layer in layers]}
    saving.write_archive(filepath, saving.WEIGHTS_FORMAT, description, model.get_weights())


def load_weights(model, filepath) -> None:
    with saving.open_archive(filepath, saving.WEIGHTS_FORMAT) as archive:
        _set_weights_from(model, archive, 0)


def _set_weights_from(model, archive, first: int) -> None:
    """The model's weights from the archive's arrays first, first + 1, ...: each checked against the
    weight it replaces (shape and dtype) before it is read."""
    if not model.built:
        raise ValueError(f"{archive.path}: the model '{model.name}' is not built, so the weights have nothing to "
                         f"fill: call it on data or give its input shape first")
    named = [(layer, name) for layer in model._weighted_layers() for name in layer.params]
    if len(archive.specs) - first < len(named):
        raise ValueError(f"{archive.path}: holds {len(archive.specs) - first} weight arrays, the model "
                         f"'{model.name}' has {len(named)}")
    arrays = [archive.read(first + i, layer.params[name].dtype, layer.params[name].shape,
                           f"weight '{layer.name}/{name}'") for i, (layer, name) in enumerate(named)]
    model.set_weights(arrays)


# Failures of a description that JSON allows but rnnkit cannot build from: all mean a bad file.
_BAD_DESCRIPTION = (KeyError, TypeError, ValueError, AttributeError, IndexError, OverflowError, RecursionError,
                    NotImplementedError)


def _compile_from(model, spec):
    """compile() as the saved model was compiled (also from files written before per-output losses)."""
    optimizer = optimizers.from_config(spec["optimizer"], spec["optimizer_config"])
    if "losses" in spec:
        loss_list = [None if c is None else losses.from_config(c) for c in spec["losses"]]
        metric_list = spec.get("metrics") or [[] for _ in loss_list]
        weighted_list = spec.get("weighted_metrics") or [[] for _ in loss_list]
        single = len(loss_list) == 1
        model.compile(optimizer, loss_list[0] if single else loss_list,
                      metric_list[0] if single else metric_list,
                      loss_weights=None if single else spec.get("loss_weights"),
                      weighted_metrics=weighted_list[0] if single else weighted_list)
    else:
        model.compile(optimizer, spec["loss"], spec["metrics"])


def load_model(filepath: str | os.PathLike, compile: bool = True) -> Model:  # noqa: A002 (Keras' argument name)
    """A model saved with ``model.save``: architecture, weights and, when it was compiled, the
    optimizer with its state, so training continues where it stopped; or a Keras 3 .keras file. A file
    that is not such a model raises ValueError naming it, before arrays larger than the file's own are
    allocated."""
    from .keras_file import is_keras_file, load_keras

    if is_keras_file(filepath):
        return load_keras(filepath, compile=compile)
    with saving.open_archive(filepath, saving.MODEL_FORMAT) as archive:
        header = archive.header
        try:
            n = header["weight_arrays"]
            if isinstance(n, bool) or not isinstance(n, int) or not 0 <= n <= len(archive.specs):
                raise ValueError(f"weight_arrays is {n!r} for {len(archive.specs)} arrays")
            class_name = header.get("class_name", "Sequential")
            if class_name not in ("Sequential", "Functional"):
                raise ValueError(f"unknown model class {class_name!r}")
            with weights_from_file(sum(math.prod(shape) for _, shape in archive.specs[:n])):
                if class_name == "Sequential":
                    model = Sequential.from_config(header["model"])
                    if header.get("input_shape") is not None:  # a sample's shape, without the batch axis
                        model._build_known_shapes(tuple(header["input_shape"]))
                else:
                    model = Model.from_config(header["model"])
            if len(model.get_weights()) != n:
                raise ValueError(f"the description builds {len(model.get_weights())} weight arrays, the file has {n}")
            if n:
                _set_weights_from(model, archive, 0)
            if header.get("text_encoding") is not None:
                from ..datasets.imdb import TextEncoding

                model.text_encoding = TextEncoding.from_config(header["text_encoding"])
            spec = header.get("compile")
            if compile and spec is not None:
                _compile_from(model, spec)
                weights = model.trainable_weights
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
