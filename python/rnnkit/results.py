"""What the forward and backward functions of rnnkit.kernels and rnnkit.reference return.

A forward result carries the outputs and the last states, plus ``saved``: whatever that
implementation's backward needs, opaque to everyone else. A gradient result holds one array per
input, shaped like that input.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Optional

import numpy as np


@dataclass(frozen=True, eq=False)
class SimpleRNNForward:
    outputs: Optional[np.ndarray]  # (batch, timesteps, units); None from return_sequences=False
    h: np.ndarray  # (batch, units): the last state
    saved: Any = field(repr=False)


@dataclass(frozen=True, eq=False)
class LSTMForward:
    outputs: Optional[np.ndarray]  # (batch, timesteps, units); None from return_sequences=False
    h: np.ndarray  # (batch, units): the last hidden state
    c: np.ndarray  # (batch, units): the last cell state
    saved: Any = field(repr=False)


@dataclass(frozen=True, eq=False)
class GRUForward:
    outputs: Optional[np.ndarray]  # (batch, timesteps, units); None from return_sequences=False
    h: np.ndarray  # (batch, units): the last state
    saved: Any = field(repr=False)


# dx is None and dembeddings set when the forward took token ids into an embedding table.


@dataclass(frozen=True, eq=False)
class SimpleRNNGradients:
    dx: Optional[np.ndarray]
    dkernel: np.ndarray
    drecurrent_kernel: np.ndarray
    dbias: np.ndarray
    dh0: np.ndarray
    dembeddings: Optional[np.ndarray] = None


@dataclass(frozen=True, eq=False)
class LSTMGradients:
    dx: Optional[np.ndarray]
    dkernel: np.ndarray
    drecurrent_kernel: np.ndarray
    dbias: np.ndarray
    dh0: np.ndarray
    dc0: np.ndarray
    dembeddings: Optional[np.ndarray] = None


@dataclass(frozen=True, eq=False)
class GRUGradients:
    dx: Optional[np.ndarray]
    dkernel: np.ndarray
    drecurrent_kernel: np.ndarray
    dbias: np.ndarray
    dh0: np.ndarray
    dembeddings: Optional[np.ndarray] = None


def check_forward_result(fwd: Any, expected: type, producer: str, saved_type: Optional[type] = None) -> None:
    """TypeError unless ``fwd`` is what ``producer`` returns, run so that it kept what a backward needs."""
    if isinstance(fwd, expected) and fwd.saved is None:
        raise TypeError(f"fwd: {producer} ran with save_for_backward=False and kept nothing for a backward")
    if not isinstance(fwd, expected) or (saved_type is not None and not isinstance(fwd.saved, saved_type)):
        raise TypeError(f"fwd: expected the result of {producer}, got {type(fwd).__name__}")
