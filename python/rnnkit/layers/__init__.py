"""Layers, as in ``keras.layers``."""

from .base import Layer
from .convolutional import Conv1D
from .core import Activation, Dense, Embedding, Input, InputLayer
from .masking import Masking
from .merging import Add, Concatenate
from .pooling import GlobalAveragePooling1D, GlobalMaxPooling1D, MaxPooling1D
from .recurrent import GRU, LSTM, RNN, SimpleRNN
from .regularization import Dropout, SpatialDropout1D
from .reshaping import Flatten
from .text_vectorization import TextVectorization
from .wrappers import Bidirectional, TimeDistributed

__all__ = ["Layer", "Input", "InputLayer", "Embedding", "Dense", "Activation", "Masking", "SimpleRNN", "LSTM", "GRU",
           "RNN", "Bidirectional", "TimeDistributed", "Concatenate", "Add", "Dropout", "SpatialDropout1D", "Flatten",
           "Conv1D", "MaxPooling1D", "GlobalMaxPooling1D", "GlobalAveragePooling1D", "TextVectorization"]

# Layer classes by name, for loading saved models.
REGISTRY = {cls.__name__: cls for cls in (InputLayer, Embedding, Dense, Activation, Masking, SimpleRNN, LSTM, GRU,
                                           Bidirectional, TimeDistributed, Concatenate, Add, Dropout, SpatialDropout1D,
                                           Flatten, Conv1D, MaxPooling1D, GlobalMaxPooling1D, GlobalAveragePooling1D,
                                           TextVectorization)}
