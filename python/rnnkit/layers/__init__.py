"""Layers, as in ``keras.layers``."""

from .base import Layer
from .core import Dense, Embedding, Input, InputLayer
from .masking import Masking
from .merging import Add, Concatenate
from .recurrent import GRU, LSTM, RNN, SimpleRNN
from .wrappers import Bidirectional

__all__ = ["Layer", "Input", "InputLayer", "Embedding", "Dense", "Masking", "SimpleRNN", "LSTM", "GRU", "RNN",
           "Bidirectional", "Concatenate", "Add"]

# Layer classes by name, for loading saved models.
REGISTRY = {cls.__name__: cls for cls in (InputLayer, Embedding, Dense, Masking, SimpleRNN, LSTM, GRU, Bidirectional,
                                           Concatenate, Add)}
