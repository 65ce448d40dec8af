"""Datasets, as in ``keras.datasets``."""

from . import imdb

__all__ = ["imdb"]
