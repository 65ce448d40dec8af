"""torch.nn.RNN, LSTM and GRU with their timestep loops in rnnkit's kernels.

Each class subclasses its torch.nn counterpart and replaces only ``forward``: the constructor, the
parameters (names, shapes, initialization, ``state_dict``), ``repr`` and ``isinstance`` checks are
torch.nn's own, so a model moves between the two by ``load_state_dict`` or by ``convert``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch.nn.utils.rnn import PackedSequence

from .function import Direction, PackedLayout, RecurrentFunction

DTYPES = (torch.float32, torch.float64)


class RecurrentForward:
    """torch.nn's multi-layer, optionally bidirectional forward, one RecurrentFunction per layer and
    direction: ``(input, hx=None) -> (output, h_n)``, or ``(output, (h_n, c_n))`` for LSTM."""

    cell = ""  # 'rnn', 'lstm' or 'gru'

    def forward(self, input, hx=None):
        packed = isinstance(input, PackedSequence)
        if packed:
            # The kernels read and write the packed rows where they are, the states in the sorted order.
            layout = PackedLayout.of(input.batch_sizes)
            x, batch, batched, batch_first = input.data, len(layout.lengths), True, True
        else:
            if input.dim() not in (2, 3):
                raise ValueError(f"{self._name}: Expected input to be 2D or 3D, got {input.dim()}D instead")
            batched, batch_first, layout = input.dim() == 3, self.batch_first, None
            x = input if batched else input.unsqueeze(0 if batch_first else 1)
            batch = x.shape[0 if batch_first else 1]
        self._check_input(x)
        h0, c0 = self._initial_states(hx, batch, batched, x)
        if packed and input.sorted_indices is not None:
            h0, c0 = (None if s is None else s.index_select(1, input.sorted_indices) for s in (h0, c0))
        output, h_n, c_n = self._layers(x, h0, c0, batch_first, layout)
        if packed:
            output = PackedSequence(output, input.batch_sizes, input.sorted_indices, input.unsorted_indices)
            if input.unsorted_indices is not None:
                h_n, c_n = (None if s is None else s.index_select(1, input.unsorted_indices) for s in (h_n, c_n))
        elif not batched:
            output, h_n = output.squeeze(0 if batch_first else 1), h_n.squeeze(1)
            c_n = None if c_n is None else c_n.squeeze(1)
        return output, ((h_n, c_n) if self.cell == "lstm" else h_n)

    @property
    def _name(self) -> str:
        return f"rnnkit.torch.{type(self).__name__}"

    def _check_input(self, x):
        weight = self.weight_ih_l0
        if x.device.type != "cpu" or weight.device.type != "cpu":
            raise ValueError(f"{self._name}: rnnkit's kernels run on the CPU; the input is on {x.device} and the "
                             f"parameters on {weight.device} (use torch.nn.{type(self).__name__} on other devices)")
        if x.dtype not in DTYPES or x.dtype != weight.dtype:
            raise TypeError(f"{self._name}: expected an input of the parameters' dtype, float32 or float64 "
                            f"(the parameters are {weight.dtype}), got {x.dtype}")
        if x.shape[-1] != self.input_size:
            raise RuntimeError(f"input.size(-1) must be equal to input_size. Expected {self.input_size}, "
                               f"got {x.shape[-1]}")

    def _initial_states(self, hx, batch, batched, x):
        if hx is None:
            return None, None
        states = tuple(hx) if self.cell == "lstm" else (hx,)
        if self.cell == "lstm" and len(states) != 2:
            raise RuntimeError(f"{self._name}: hx must be a tuple (h_0, c_0), got {len(states)} tensors")
        expected = (self.num_layers * (2 if self.bidirectional else 1), batch, self.hidden_size)
        checked = []
        for name, state in zip(("hx", "cx"), states):
            if state.dim() != (3 if batched else 2):
                raise RuntimeError(f"For {'batched 3-D' if batched else 'unbatched 2-D'} input, {name} should also "
                                   f"be {3 if batched else 2}-D but got {state.dim()}-D tensor")
            state = state if batched else state.unsqueeze(1)
            if tuple(state.shape) != expected:
                raise RuntimeError(f"Expected hidden size {expected}, got {list(state.shape)}")
            if state.dtype != x.dtype or state.device != x.device:
                raise TypeError(f"{self._name}: {name} must have the input's dtype and device ({x.dtype}, "
                                f"{x.device}), got {state.dtype} on {state.device}")
            checked.append(state)
        return checked[0], (checked[1] if self.cell == "lstm" else None)

    def _layers(self, x, h0, c0, batch_first, layout):
        directions = 2 if self.bidirectional else 1
        activation = getattr(self, "nonlinearity", "tanh")
        h_n, c_n = [], []
        for layer in range(self.num_layers):
            outputs = []
            for reverse in range(directions):
                index = layer * directions + reverse
                suffix = f"_l{layer}{'_reverse' if reverse else ''}"
                weights = [getattr(self, f"weight_ih{suffix}"), getattr(self, f"weight_hh{suffix}")]
                weights += [getattr(self, f"bias_ih{suffix}"), getattr(self, f"bias_hh{suffix}")] if self.bias \
                    else [None, None]
                states = [None if s is None else s[index] for s in (h0, c0)]
                tensors = [x, *states, *weights]
                save = torch.is_grad_enabled() and any(t is not None and t.requires_grad for t in tensors)
                direction = Direction(self.cell, activation, batch_first, bool(reverse), layout, save)
                result = RecurrentFunction.apply(direction, *tensors)
                outputs.append(result[0])
                h_n.append(result[1])
                if self.cell == "lstm":
                    c_n.append(result[2])
            x = outputs[0] if directions == 1 else torch.cat(outputs, dim=-1)
            if self.dropout and self.training and layer < self.num_layers - 1:
                x = F.dropout(x, self.dropout, training=True)
        return x, torch.stack(h_n), (torch.stack(c_n) if c_n else None)


class RNN(RecurrentForward, torch.nn.RNN):
    __doc__ = "torch.nn.RNN (nonlinearity 'tanh' or 'relu') on rnnkit's kernels. " + RecurrentForward.__doc__
    cell = "rnn"


class LSTM(RecurrentForward, torch.nn.LSTM):
    __doc__ = "torch.nn.LSTM on rnnkit's kernels (proj_size must be 0). " + RecurrentForward.__doc__
    cell = "lstm"

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.proj_size:
            raise ValueError(f"rnnkit.torch.LSTM: proj_size={self.proj_size} is not supported (rnnkit's LSTM has "
                             "no projection); use proj_size=0 or torch.nn.LSTM")


class GRU(RecurrentForward, torch.nn.GRU):
    __doc__ = "torch.nn.GRU on rnnkit's kernels. " + RecurrentForward.__doc__
    cell = "gru"


REPLACEMENTS = {torch.nn.RNN: RNN, torch.nn.LSTM: LSTM, torch.nn.GRU: GRU}


def _replacement(module):
    cls = REPLACEMENTS[type(module)]
    options = dict(num_layers=module.num_layers, bias=module.bias, batch_first=module.batch_first,
                   dropout=module.dropout, bidirectional=module.bidirectional, dtype=module.weight_ih_l0.dtype)
    if cls is RNN:
        options["nonlinearity"] = module.nonlinearity
    if cls is LSTM:
        options["proj_size"] = module.proj_size
    # Made on the meta device: no memory and no draws from torch's random generator for weights that
    # are replaced at once by the module's own.
    new = cls(module.input_size, module.hidden_size, device="meta", **options)
    for name in module._flat_weights_names:
        setattr(new, name, getattr(module, name))
    return new.train(module.training)


def convert(module: torch.nn.Module) -> torch.nn.Module:
    """Replaces every torch.nn.RNN, LSTM and GRU in ``module`` (or ``module`` itself) by rnnkit's, holding
    the same Parameter objects, so optimizers made before keep working; returns the module."""
    if type(module) in REPLACEMENTS:
        return _replacement(module)
    for name, child in module.named_children():
        new = convert(child)
        if new is not child:
            setattr(module, name, new)
    return module
