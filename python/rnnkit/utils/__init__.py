"""Utilities, as in ``keras.utils``."""

from __future__ import annotations

import numpy as np

from ..preprocessing.sequence import pad_sequences
from .random import get_rng, set_random_seed

__all__ = ["set_random_seed", "get_rng", "pad_sequences", "to_categorical"]


def to_categorical(x, num_classes: int | None = None) -> np.ndarray:
    """One-hot rows for integer class ids (Keras' to_categorical): shape x.shape + (num_classes,), the
    classes 0 .. num_classes-1 (by default, up to the largest id)."""
    x = np.asarray(x)
    if x.dtype.kind not in "iub" and not (x.dtype.kind == "f" and np.all(np.mod(x, 1) == 0)):
        raise TypeError(f"to_categorical: expected integer class ids, got dtype {x.dtype}")
    x = x.astype(np.int64)
    if x.ndim > 1 and x.shape[-1] == 1:
        x = x[..., 0]
    if num_classes is None:
        num_classes = int(x.max()) + 1 if x.size else 0
    if x.size and (x.min() < 0 or x.max() >= num_classes):
        raise ValueError(f"to_categorical: class ids must lie in [0, {num_classes}), got {x.min()} to {x.max()}")
    out = np.zeros(x.shape + (int(num_classes),), dtype="float32")
    np.put_along_axis(out, x[..., None], 1.0, axis=-1)
    return out
