"""The one random generator everything in rnnkit draws from: initializers, shuffling, dropout.

``set_random_seed(s)`` makes every later draw reproducible, so two runs that start from the same seed
produce bit-for-bit the same weights and history (the kernels give the same bits for any thread
count). Like Keras, it also seeds Python's and NumPy's global generators for the user's own code.
"""

from __future__ import annotations

import random

import numpy as np

_rng = np.random.default_rng()


def set_random_seed(seed: int) -> None:
    global _rng
    if not isinstance(seed, (int, np.integer)) or isinstance(seed, bool) or seed < 0:
        raise ValueError(f"set_random_seed: expected a non-negative integer seed, got {seed!r}")
    _rng = np.random.default_rng(int(seed))
    random.seed(int(seed))
    np.random.seed(int(seed) % 2**32)


def get_rng() -> np.random.Generator:
    return _rng
