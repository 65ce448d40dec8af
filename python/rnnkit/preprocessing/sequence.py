"""``pad_sequences`` with Keras' semantics."""

from __future__ import annotations

import numpy as np

__all__ = ["pad_sequences"]


def pad_sequences(sequences, maxlen: int | None = None, dtype="int32", padding: str = "pre", truncating: str = "pre",
                  value=0) -> np.ndarray:
    """A (samples, maxlen) array from sequences of different lengths.

    Sequences longer than ``maxlen`` lose ids at the start (``truncating='pre'``) or the end
    (``'post'``); shorter ones are filled with ``value`` before (``padding='pre'``) or after
    (``'post'``) their ids. ``maxlen`` defaults to the longest sequence. Sequences of vectors keep
    their trailing shape.
    """
    if padding not in ("pre", "post"):
        raise ValueError(f'Padding type "{padding}" not understood; use "pre" or "post"')
    if truncating not in ("pre", "post"):
        raise ValueError(f'Truncating type "{truncating}" not understood; use "pre" or "post"')
    if not hasattr(sequences, "__len__"):
        raise ValueError("`sequences` must be a list of iterables")
    lengths, sample_shape = [], ()
    for s in sequences:
        if not hasattr(s, "__len__"):
            raise ValueError(f"`sequences` must be a list of iterables. Found non-iterable: {s!r}")
        lengths.append(len(s))
        if len(s) and sample_shape == () and np.ndim(s) > 1:
            sample_shape = np.shape(s)[1:]
    if maxlen is None:
        maxlen = max(lengths, default=0)
    if isinstance(maxlen, bool) or not isinstance(maxlen, (int, np.integer)) or maxlen < 0:
        raise ValueError(f"maxlen must be a non-negative integer or None, got {maxlen!r}")
    if isinstance(value, str) and np.dtype(dtype).kind not in "OUS":
        raise ValueError(f"dtype {dtype} cannot hold the string value {value!r}; use dtype=object")
    out = np.full((len(sequences), maxlen) + tuple(sample_shape), value, dtype=dtype)
    if maxlen == 0:
        return out
    for i, s in enumerate(sequences):
        if not len(s):
            continue
        kept = np.asarray(s[-maxlen:] if truncating == "pre" else s[:maxlen], dtype=dtype)
        if kept.shape[1:] != tuple(sample_shape):
            raise ValueError(f"Shape of sample {kept.shape[1:]} of sequence at position {i} is different from "
                             f"expected shape {tuple(sample_shape)}")
        if padding == "pre":
            out[i, maxlen - len(kept) :] = kept
        else:
            out[i, : len(kept)] = kept
    return out
