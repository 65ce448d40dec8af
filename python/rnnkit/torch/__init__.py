"""rnnkit's kernels behind PyTorch's recurrent layers: drop-in replacements for torch.nn.RNN, LSTM and
GRU (same constructor, parameters, state_dict and forward, PackedSequence included), ``convert`` for a
model that already holds torch.nn's, gradients through autograd, DistributedDataParallel as usual.

Needs PyTorch (``pip install rnnkit[torch]``); runs on the CPU, float32 and float64.
"""

try:
    import torch  # noqa: F401
except ImportError as e:  # pragma: no cover - depends on the environment
    raise ImportError("rnnkit.torch needs PyTorch: pip install 'rnnkit[torch]' (or pip install torch)") from e

from .modules import GRU, LSTM, RNN, convert

__all__ = ["RNN", "LSTM", "GRU", "convert"]
