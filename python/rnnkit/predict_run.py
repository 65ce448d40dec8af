"""``rnnkit predict MODEL TEXT...``: the probability that each text is positive, one line per text.

The model must turn text into its input itself: one trained by ``rnnkit imdb`` carries the encoding of
its reviews (vocabulary, num_words, maxlen, index conventions), and a model whose first layer is a
TextVectorization reads strings directly. Its output must be one sigmoid unit (a binary classifier).
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

from .cli import UsageError


def _lines(data: bytes, where: str) -> list:
    """(where, text) for each line of a file's bytes, decoded as UTF-8 (a trailing newline ends the last
    line; '\\r\\n' line ends are accepted)."""
    lines = data.split(b"\n")
    if lines and lines[-1] == b"":
        lines.pop()
    out = []
    for number, line in enumerate(lines, 1):
        try:
            text = line.rstrip(b"\r").decode("utf-8")
        except UnicodeDecodeError as e:
            raise UsageError(f"{where}, line {number}: not UTF-8 text ({e.reason} at byte {e.start})") from None
        out.append((f"{where}, line {number}", text))
    return out


def read_texts(texts, file) -> list:
    """[(where it came from, text)] from the TEXT arguments ('-': standard input) and --file."""
    found = []
    for i, text in enumerate(texts, 1):
        found += _lines(sys.stdin.buffer.read(), "standard input") if text == "-" else [(f"text {i}", text)]
    if file == "-":
        found += _lines(sys.stdin.buffer.read(), "standard input")
    elif file is not None:
        path = Path(file)
        try:
            if not path.is_file():
                raise UsageError(f"--file {file}: {'not a regular file' if path.exists() else 'no such file'}")
            found += _lines(path.read_bytes(), str(file))
        except OSError as e:
            raise UsageError(f"--file {file}: cannot read it ({e.strerror or e})") from None
    if not found:
        raise UsageError("no text to classify: give TEXT arguments, --file PATH, or - to read standard input")
    for where, text in found:
        if not text.strip():
            raise UsageError(f"{where} is empty: there is nothing to classify")
    return found


def load_classifier(path):
    """The model at path, checked to be a binary classifier that can read text."""
    from .layers import TextVectorization
    from .models import load_model

    try:
        model = load_model(path, compile=False)
    except FileNotFoundError:
        raise UsageError(f"{path}: no such file") from None
    except (ValueError, OSError) as e:
        raise UsageError(str(e).splitlines()[0] if str(e) else f"{path}: not an rnnkit model") from None
    reads_text = any(isinstance(layer, TextVectorization) for layer in model.layers)
    if len(model.input_names) != 1 or len(model.output_names) != 1:
        raise UsageError(f"{path}: not a text classifier: it has {len(model.input_names)} inputs and "
                         f"{len(model.output_names)} outputs, rnnkit predict needs one of each")
    if not reads_text and model.text_encoding is None:
        raise UsageError(f"{path}: the model carries no vocabulary (it was not trained by `rnnkit imdb` and has no "
                         "TextVectorization layer), so rnnkit predict cannot turn text into its input")
    output = model._output_layer(0)
    config = output.get_config() if output is not None else {}
    if config.get("units", 1) != 1 or config.get("activation") != "sigmoid":  # Dense(1, sigmoid), Activation
        options = ", ".join(f"{k}={config[k]!r}" for k in ("units", "activation") if k in config)
        what = f"{type(output).__name__}({options})"
        raise UsageError(f"{path}: not a binary text classifier: its output layer '{getattr(output, 'name', '?')}' is "
                         f"{what}; rnnkit predict needs Dense(1, activation='sigmoid')")
    return model, reads_text


def run_predict(args) -> int:
    from .preprocessing.sequence import pad_sequences

    model, reads_text = load_classifier(args.model)
    found = read_texts(args.texts, args.file)
    texts = [text for _, text in found]
    if reads_text:
        inputs = np.array(texts, dtype=object)
    else:
        ids = model.text_encoding.encode(texts)
        inputs = ids if isinstance(ids, np.ndarray) else pad_sequences(ids)
    probabilities = np.asarray(model.predict(inputs, batch_size=args.batch_size, verbose=0), np.float64)
    if probabilities.shape != (len(texts), 1):
        raise UsageError(f"{args.model}: not a binary text classifier: it gives outputs of shape "
                         f"{probabilities.shape[1:]} per text, rnnkit predict needs (1,)")
    out = sys.stdout
    for p in probabilities[:, 0]:
        out.write(f"{p:.4f}\t{'positive' if p > 0.5 else 'negative'}\n")
    out.flush()
    return 0
