"""Keras itself, the peer the Keras-compatibility tests compare with, when it is installed (Keras 3 on
its PyTorch backend: ``pip install keras torch==2.13.0``); ``keras`` is None otherwise and the tests
marked ``needs_keras`` are skipped."""

import os

import pytest

os.environ.setdefault("KERAS_BACKEND", "torch")
try:
    import keras
except ImportError:
    keras = None

needs_keras = pytest.mark.skipif(keras is None, reason="Keras is not installed (pip install keras torch==2.13.0)")
