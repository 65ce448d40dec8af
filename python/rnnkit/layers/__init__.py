"""Layers, as in ``keras.layers``."""

from .base import Layer
from .core import Dense, Embedding, Input, InputLayer
from .recurrent import GRU, LSTM, RNN, SimpleRNN

__all__ = ["Layer", "Input", "InputLayer", "Embedding", "Dense", "SimpleRNN", "LSTM", "GRU", "RNN"]

# Layer classes by name, for loading saved models.
REGISTRY = {cls.__name__: cls for cls in (InputLayer, Embedding, Dense, SimpleRNN, LSTM, GRU)}
