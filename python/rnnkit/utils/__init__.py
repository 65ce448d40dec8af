"""Utilities, as in ``keras.utils``."""

from .random import get_rng, set_random_seed

__all__ = ["set_random_seed", "get_rng"]
