"""TextVectorization: raw strings in, integer token ids out, as ``keras.layers.TextVectorization``
does it in its ``output_mode='int'``.

Keras' steps, each matched here: standardize (``tf.strings.lower``, which lowercases ASCII letters
only, then delete the characters of Keras' punctuation class), split on runs of ASCII whitespace, look
each token up in the vocabulary (index 0 is the padding token ``''``, 1 the out-of-vocabulary token
``'[UNK]'``, then the learned tokens), then pad with 0 at the end or cut to ``output_sequence_length``
(without it, to the longest text of the batch). ``adapt`` orders the vocabulary as Keras does: by
count, most frequent first, ties by the token in reverse code-point order.
"""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path
from typing import Any, Callable, Iterable

import numpy as np

from .base import Layer

MASK_TOKEN, OOV_TOKEN = "", "[UNK]"
STANDARDIZE = (None, "lower_and_strip_punctuation", "lower", "strip_punctuation")
SPLIT = (None, "whitespace", "character")
# Keras' DEFAULT_STRIP_REGEX: ASCII punctuation, the apostrophe included.
PUNCTUATION = re.compile(r'[!"#$%&()\*\+,-\./:;<=>?@\[\\\]^_`{|}~\']')
ASCII_WHITESPACE = re.compile(r"[ \t\n\r\f\v]+")
ASCII_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")
MAX_VOCABULARY_FILE_BYTES = 2**28


def _texts(inputs, where: str) -> list:
    """A batch of texts, (batch,) or (batch, 1) strings (bytes decoded as UTF-8), as a list of str."""
    array = np.asarray(inputs, dtype=object) if not isinstance(inputs, np.ndarray) else inputs
    if array.ndim == 2 and array.shape[1] == 1:
        array = array[:, 0]
    if array.ndim != 1:
        raise ValueError(f"{where}: expected a batch of texts, shape (batch,) or (batch, 1), got shape {array.shape}")
    texts = []
    for i, text in enumerate(array.tolist()):
        if isinstance(text, bytes):
            try:
                text = text.decode("utf-8")
            except UnicodeDecodeError as e:
                raise ValueError(f"{where}: text {i} is not valid UTF-8 ({e.reason} at byte {e.start})") from None
        if not isinstance(text, str):
            raise TypeError(f"{where}: expected strings, got {type(text).__name__} at position {i}")
        texts.append(text)
    return texts


class TextVectorization(Layer):
    """``keras.layers.TextVectorization`` in ``output_mode='int'``: a model's first layer that turns
    strings into token ids. Learn a vocabulary with ``adapt(texts)``, or give one (``vocabulary=``, a
    list or a file with one token per line). Other output modes and ngrams raise NotImplementedError."""

    preprocesses = True  # no weights, no gradient: a Sequential model runs it before anything else

    def __init__(self, max_tokens: int | None = None,
                 standardize: str | Callable | None = "lower_and_strip_punctuation",
                 split: str | Callable | None = "whitespace", ngrams: int | None = None, output_mode: str = "int",
                 output_sequence_length: int | None = None, pad_to_max_tokens: bool = False,
                 vocabulary: Iterable[str] | str | None = None, idf_weights=None, sparse: bool = False,
                 ragged: bool = False, encoding: str = "utf-8", name: str | None = None, **kwargs) -> None:
        kwargs.pop("dtype", None)  # Keras passes the output's dtype; the ids are int64 whatever it says
        for option, value in (("ngrams", ngrams), ("pad_to_max_tokens", pad_to_max_tokens or None),
                              ("idf_weights", idf_weights), ("sparse", sparse or None), ("ragged", ragged or None),
                              ("encoding", None if str(encoding).lower().replace("-", "") == "utf8" else encoding)):
            if value is not None:
                raise NotImplementedError(f"TextVectorization: {option}={value!r} is not supported (rnnkit has "
                                          "output_mode='int' without ngrams)")
        if output_mode != "int":
            raise NotImplementedError(f"TextVectorization: output_mode={output_mode!r} is not supported; rnnkit "
                                      "has output_mode='int'")
        if standardize not in STANDARDIZE or split not in SPLIT:
            raise NotImplementedError(
                f"TextVectorization: standardize must be one of {STANDARDIZE} and split one of {SPLIT} (callables "
                f"are not supported, as they could not be saved), got standardize={standardize!r}, split={split!r}")
        for option, value, low in (("max_tokens", max_tokens, 3), ("output_sequence_length", output_sequence_length,
                                                                    1)):
            if value is not None and (isinstance(value, bool) or not isinstance(value, (int, np.integer))
                                      or value < low):
                raise ValueError(f"TextVectorization: {option} must be None or an integer >= {low}, got {value!r}")
        super().__init__(name=name, **kwargs)
        if self.input_shape is None:
            self.input_shape = ()  # one text per sample
        self.max_tokens = None if max_tokens is None else int(max_tokens)
        self.standardize = standardize
        self.split = split
        self.output_mode = output_mode
        self.output_sequence_length = None if output_sequence_length is None else int(output_sequence_length)
        self._vocabulary = [MASK_TOKEN, OOV_TOKEN]
        self._index = {}
        if vocabulary is not None:
            self.set_vocabulary(vocabulary)
        self.built = True

    # --- the vocabulary ---------------------------------------------------------------------------------

    def tokenize(self, texts) -> list:
        """Each text standardized and split as the layer does before the lookup: a list of token lists."""
        out = []
        for text in _texts(texts, f"TextVectorization '{self.name}'"):
            if self.standardize in ("lower", "lower_and_strip_punctuation"):
                text = text.translate(ASCII_LOWER)
            if self.standardize in ("strip_punctuation", "lower_and_strip_punctuation"):
                text = PUNCTUATION.sub("", text)
            if self.split == "whitespace":
                out.append([t for t in ASCII_WHITESPACE.split(text) if t])
            elif self.split == "character":
                out.append(list(text))
            else:
                out.append([text])
        return out

    def adapt(self, data, batch_size=None, steps=None) -> None:
        """Learns the vocabulary from texts: an array or list of strings, or an iterable of batches of them."""
        counts = Counter()
        batches = [data] if isinstance(data, (str, bytes, np.ndarray, list, tuple)) else data
        for i, batch in enumerate(batches):
            if steps is not None and i >= steps:
                break
            if isinstance(batch, (str, bytes)):
                batch = [batch]
            for tokens in self.tokenize(batch):
                counts.update(tokens)
        counts.pop(MASK_TOKEN, None)
        counts.pop(OOV_TOKEN, None)
        ranked = sorted(counts.items(), key=lambda item: (item[1], item[0]), reverse=True)
        if self.max_tokens is not None:
            ranked = ranked[:self.max_tokens - 2]
        self._set_tokens([token for token, _ in ranked])

    def set_vocabulary(self, vocabulary) -> None:
        """The vocabulary as a list of tokens (or a text file, one per line), most important first; ``''``
        and ``'[UNK]'`` may lead it, as ``get_vocabulary()`` returns them, or are added."""
        if isinstance(vocabulary, (str, Path)):
            vocabulary = self._read_vocabulary_file(Path(vocabulary))
        tokens = _texts(np.asarray(list(vocabulary), dtype=object), f"TextVectorization '{self.name}': vocabulary")
        if tokens[:2] == [MASK_TOKEN, OOV_TOKEN]:
            tokens = tokens[2:]
        for special in (MASK_TOKEN, OOV_TOKEN):
            if special in tokens:
                raise ValueError(f"TextVectorization '{self.name}': the vocabulary holds {special!r} at position "
                                 f"{tokens.index(special)}; it may only come first ('' at 0, '[UNK]' at 1)")
        seen = set()
        repeated = [t for t in tokens if t in seen or seen.add(t)]
        if repeated:
            raise ValueError(f"TextVectorization '{self.name}': the vocabulary repeats {repeated[:5]}")
        if self.max_tokens is not None and len(tokens) + 2 > self.max_tokens:
            raise ValueError(f"TextVectorization '{self.name}': a vocabulary of {len(tokens) + 2} tokens (with '' "
                             f"and '[UNK]') is more than max_tokens={self.max_tokens}")
        self._set_tokens(tokens)

    def _read_vocabulary_file(self, path: Path) -> list:
        try:
            if path.stat().st_size > MAX_VOCABULARY_FILE_BYTES:
                raise ValueError(f"more than {MAX_VOCABULARY_FILE_BYTES} bytes")
            return path.read_bytes().decode("utf-8").splitlines()
        except (OSError, UnicodeDecodeError, ValueError) as e:
            raise ValueError(f"TextVectorization '{self.name}': cannot read the vocabulary file {path}: {e}") from None

    def _set_tokens(self, tokens: list) -> None:
        self._vocabulary = [MASK_TOKEN, OOV_TOKEN] + list(tokens)
        self._index = {token: i + 2 for i, token in enumerate(tokens)}

    def get_vocabulary(self, include_special_tokens=True) -> list:
        return list(self._vocabulary if include_special_tokens else self._vocabulary[2:])

    def vocabulary_size(self) -> int:
        return len(self._vocabulary)

    # --- calling ----------------------------------------------------------------------------------------

    def __call__(self, inputs: Any, **kwargs) -> Any:
        from ..models.graph import is_symbolic

        if is_symbolic(inputs):
            return super().__call__(inputs, **kwargs)
        return self.forward(inputs)  # a list is one batch of texts here, not a list of inputs

    def forward(self, inputs, *, training=False, mask=None):
        ids = [[self._index.get(token, 1) for token in tokens] for tokens in self.tokenize(inputs)]
        length = self.output_sequence_length
        if length is None:
            length = max((len(row) for row in ids), default=0)
        out = np.zeros((len(ids), length), np.int64)
        for i, row in enumerate(ids):
            row = row[:length]
            out[i, :len(row)] = row
        return out

    def backward(self, d_outputs):
        return None  # strings have no gradient

    def compute_output_shape(self, input_shape):
        return (self.output_sequence_length,)

    def output_dtype(self):
        return "int64"

    def get_config(self) -> dict:
        return {"name": self.name, "max_tokens": self.max_tokens, "standardize": self.standardize,
                "split": self.split, "output_mode": self.output_mode,
                "output_sequence_length": self.output_sequence_length,
                "vocabulary": self.get_vocabulary(include_special_tokens=False)}
