"""Forward and backward (BPTT) of SimpleRNN, LSTM and GRU over whole sequences, in C++.

Weights use Keras' layout, so they move between Keras and rnnkit unchanged::

    kernel            (features, G*units)   G = 1 SimpleRNN, 4 LSTM (gates i f c o), 3 GRU (z r h)
    recurrent_kernel  (units, G*units)
    bias              (G*units,); GRU (2, 3*units): input bias, recurrent bias (reset_after=True)

``x`` is (batch, timesteps, features). The float type follows ``x``: float32 or float64, and every
other float argument must have the same one (TypeError otherwise; nothing is cast silently).
Strided, Fortran-ordered or byte-swapped arrays are accepted and copied. An empty batch, zero
timesteps, zero features or zero units raise ValueError: a recurrent layer needs at least one step
of one sequence. NaN and inf propagate through the arithmetic as they would in the reference.

Variable-length sequences: ``lengths`` (batch,) gives each sequence's real length and ``padding``
('pre' or 'post') where its padding sits. Padded steps cost nothing and behave like Keras' masked
steps: the state carries over, an output repeats the previous output (zeros before the first real
step), and no gradient flows through them.

Packed sequences: with ``packed=True``, ``x`` is (rows, features), only the real steps of the
sequences of ``lengths`` (required; ``padding`` does not apply): step after step, at each step the
sequences still running, longest first, ties in batch order. That is PyTorch's
``PackedSequence.data`` for a batch sorted by length. The outputs are then (rows, units) in the same
order, ``d_outputs`` and ``dx`` likewise; the states stay (batch, units) in batch order. With
``reverse=True`` each sequence runs from its last step to its first and each step's output stays in
that step's row, as in the backward direction of a bidirectional layer.

Products in bfloat16: with ``precision='bfloat16'`` (float32 arrays only) every matrix product of the
layer, forward and backward (x_t @ kernel, h_{t-1} @ recurrent_kernel and their gradients), reads its
two inputs rounded to the nearest bfloat16 (ties to even; subnormals become zeros) and sums the exact
products in float32, as Keras' mixed_bfloat16 policy computes; everything else (gates, states, cell
states, outputs, bias gradients) stays float32. The sums run in the order of AVX512_BF16's
``vdpbf16ps``: the kernels use that instruction where it is fast (AMD CPUs with AVX512_BF16) and
float32 multiply-adds of the rounded inputs elsewhere, with the same result bits, so results do not
depend on the CPU among those with AVX2 or AVX-512 (``rnnkit.build_info()['bfloat16']`` says which
route runs). ``rnnkit.reference`` takes
the same argument.

Token inputs: with ``embeddings=E`` (vocabulary, features), ``x`` holds integer token ids (batch,
timesteps) and the input is ``E[x]``, as an Embedding layer feeding the recurrent layer gives it. The
kernel then projects the table once, ``E @ kernel + bias``, instead of every token, and the backward
returns ``.dembeddings`` (the gradient of E) in place of ``.dx``: the same numbers, a third fewer
multiplications.

Recurrent dropout: ``recurrent_mask`` (batch, units) multiplies h_{t-1} where the recurrent product
reads it, the same mask at every step (GRU's carry z * h_{t-1} keeps the state itself, as in Keras).

Each backward takes the forward's result and the loss gradient with respect to the outputs and/or
the last states (None = zero), and returns one gradient per input, shaped like it. A forward with
``save_for_backward=False`` (inference) keeps nothing for a backward and runs faster;
``return_sequences=False`` skips writing the output sequence (``.outputs`` is None) when only the last
state is wanted, as for Keras' ``return_sequences=False`` (a ``d_outputs`` is still accepted by the
backward: the sequence is what the forward computed, only not returned). The kernels run
with the GIL released, on ``rnnkit.get_num_threads()`` threads; results do not depend on that number.

This module is the one door to the C++ extension: the layers, optimizers and training loop call the
embedding lookup, the fused RMSprop step and the token-id check through it too.
"""

from __future__ import annotations

from typing import Optional

import numpy as np

from . import _core
from .results import (
    GRUForward,
    GRUGradients,
    LSTMForward,
    LSTMGradients,
    SimpleRNNForward,
    SimpleRNNGradients,
    check_forward_result,
)

__all__ = [
    "simple_rnn_forward",
    "simple_rnn_backward",
    "lstm_forward",
    "lstm_backward",
    "gru_forward",
    "gru_backward",
    "embedding_forward",
    "embedding_backward",
    "rmsprop_update",
    "check_token_ids",
]

ArrayOrNone = Optional[np.ndarray]


def _gradients(cls, grads):
    dx, dembeddings, *rest = grads
    return cls(dx, *rest, dembeddings=dembeddings)


def simple_rnn_forward(x, kernel, recurrent_kernel, bias, h0=None, *, lengths=None, padding="pre",
                       save_for_backward=True, embeddings=None, recurrent_mask=None,
                       return_sequences=True, activation="tanh", packed=False, reverse=False,
                       precision="full") -> SimpleRNNForward:
    """h_t = f(x_t @ kernel + h_{t-1} @ recurrent_kernel + bias) for every step, f = ``activation``:
    'tanh' (Keras' default), 'relu' or 'linear'.

    Returns ``.outputs`` (batch, timesteps, units; None with return_sequences=False) and ``.h`` (batch, units).
    """
    outputs, h, saved = _core.simple_rnn_forward(x, kernel, recurrent_kernel, bias, h0, None, lengths, padding,
                                                 save_for_backward, embeddings, recurrent_mask, return_sequences,
                                                 activation, packed, reverse, precision)
    return SimpleRNNForward(outputs, h, saved)


def simple_rnn_backward(fwd: SimpleRNNForward, d_outputs=None, d_h=None) -> SimpleRNNGradients:
    """Gradients ``dx, dkernel, drecurrent_kernel, dbias, dh0`` from d(loss)/d(outputs) and d(loss)/d(h)."""
    check_forward_result(fwd, SimpleRNNForward, "rnnkit.kernels.simple_rnn_forward", _core.ForwardRecord)
    return _gradients(SimpleRNNGradients, _core.simple_rnn_backward(fwd.saved, d_outputs, d_h))


def lstm_forward(x, kernel, recurrent_kernel, bias, h0=None, c0=None, *, lengths=None, padding="pre",
                 save_for_backward=True, embeddings=None, recurrent_mask=None,
                 return_sequences=True, activation="tanh", packed=False, reverse=False,
                 precision="full") -> LSTMForward:
    """Keras' LSTM: i, f, o = sigmoid, g = tanh of x_t @ kernel + h_{t-1} @ recurrent_kernel + bias;
    c_t = f c_{t-1} + i g; h_t = o tanh(c_t). ``activation`` is 'tanh', the only one the kernel has.

    Returns ``.outputs`` (batch, timesteps, units), ``.h`` and ``.c`` (batch, units).
    """
    outputs, h, c, saved = _core.lstm_forward(x, kernel, recurrent_kernel, bias, h0, c0, lengths, padding,
                                              save_for_backward, embeddings, recurrent_mask, return_sequences,
                                              activation, packed, reverse, precision)
    return LSTMForward(outputs, h, c, saved)


def lstm_backward(fwd: LSTMForward, d_outputs=None, d_h=None, d_c=None) -> LSTMGradients:
    """Gradients ``dx, dkernel, drecurrent_kernel, dbias, dh0, dc0``."""
    check_forward_result(fwd, LSTMForward, "rnnkit.kernels.lstm_forward", _core.ForwardRecord)
    return _gradients(LSTMGradients, _core.lstm_backward(fwd.saved, d_outputs, d_h, d_c))


def gru_forward(x, kernel, recurrent_kernel, bias, h0=None, *, lengths=None, padding="pre",
                save_for_backward=True, embeddings=None, recurrent_mask=None,
                return_sequences=True, activation="tanh", packed=False, reverse=False,
                precision="full") -> GRUForward:
    """Keras' GRU with reset_after=True: z, r = sigmoid(x W + b_in + h U + b_rec),
    hh = f(x W_h + b_in_h + r (h U_h + b_rec_h)), h_t = z h_{t-1} + (1 - z) hh, f = ``activation``:
    'tanh' (Keras' default), 'relu' or 'linear'.

    Returns ``.outputs`` (batch, timesteps, units) and ``.h`` (batch, units).
    """
    outputs, h, saved = _core.gru_forward(x, kernel, recurrent_kernel, bias, h0, None, lengths, padding,
                                          save_for_backward, embeddings, recurrent_mask, return_sequences,
                                          activation, packed, reverse, precision)
    return GRUForward(outputs, h, saved)


def gru_backward(fwd: GRUForward, d_outputs=None, d_h=None) -> GRUGradients:
    """Gradients ``dx, dkernel, drecurrent_kernel, dbias, dh0``."""
    check_forward_result(fwd, GRUForward, "rnnkit.kernels.gru_forward", _core.ForwardRecord)
    return _gradients(GRUGradients, _core.gru_backward(fwd.saved, d_outputs, d_h))


def embedding_forward(ids, table) -> np.ndarray:
    """``table[ids]``, every id checked to lie in ``[0, len(table))`` (IndexError naming the first one)."""
    return _core.embedding_forward(ids, table)


def embedding_backward(ids, d_outputs, rows) -> np.ndarray:
    """The gradient of a (rows, width) table: each row of d_outputs added to the row its id names."""
    return _core.embedding_backward(ids, d_outputs, rows)


def rmsprop_update(weight, grad, velocity, learning_rate, rho, epsilon) -> None:
    """One RMSprop step of ``weight`` and ``velocity`` in place, in one pass over memory
    (``rnnkit.optimizers.RMSprop``'s arithmetic without momentum or centering)."""
    _core.rmsprop_update(weight, grad, velocity, learning_rate, rho, epsilon)


def check_token_ids(ids, rows, name="ids") -> None:
    """TypeError unless ``ids`` holds integers; IndexError naming the first id outside ``[0, rows)``."""
    _core.check_token_ids(ids, rows, name)


def set_num_threads(n: int) -> None:
    _core.set_num_threads(int(n))


def get_num_threads() -> int:
    return _core.get_num_threads()


def build_info() -> dict:
    return _core.build_info()
