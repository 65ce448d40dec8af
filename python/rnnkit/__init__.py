"""rnnkit: SimpleRNN, LSTM and GRU whose timestep loops (forward and BPTT) run in C++.

``rnnkit.kernels`` holds the sequence kernels, ``rnnkit.reference`` the same functions in plain NumPy.
``rnnkit.models``, ``rnnkit.layers``, ``rnnkit.optimizers`` ... mirror Keras' modules, so Keras code
runs after changing the import prefix from ``keras`` to ``rnnkit``.
"""

from __future__ import annotations

import os

from . import kernels

__version__ = kernels.build_info()["version"]


def set_num_threads(n: int) -> None:
    """Threads the kernels use from the next call on (results do not depend on it)."""
    kernels.set_num_threads(n)


def get_num_threads() -> int:
    return kernels.get_num_threads()


def build_info() -> dict:
    """How the extension was built: version, compiler, flags, SIMD level in use, float types, threads."""
    return kernels.build_info()


def _default_threads() -> int:
    """RNNKIT_NUM_THREADS if set, else the cores this process may run on."""
    configured = os.environ.get("RNNKIT_NUM_THREADS", "").strip()
    if configured:
        if not configured.isdigit() or int(configured) < 1:
            raise ValueError(f"RNNKIT_NUM_THREADS must be a positive integer, got {configured!r}")
        return int(configured)
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


set_num_threads(_default_threads())

from . import callbacks, datasets, layers, losses, metrics, mixed_precision, models, optimizers, preprocessing  # noqa: E402,I001
from . import reference, utils  # noqa: E402
from .layers import Input  # noqa: E402
from .models import Model, Sequential  # noqa: E402

__all__ = ["kernels", "reference", "layers", "models", "optimizers", "losses", "metrics", "callbacks", "utils",
           "datasets", "preprocessing", "mixed_precision", "Input", "Model", "Sequential",
           "set_num_threads", "get_num_threads", "build_info", "__version__"]
