"""The tutorial's IMDB sentiment model written in plain PyTorch, with rnnkit.torch.LSTM as its LSTM.

    python examples/imdb_torch.py                      # rnnkit.torch.LSTM, 10 epochs
    python examples/imdb_torch.py --layer torch.nn     # the same model on torch.nn.LSTM
    python examples/imdb_torch.py --compare --epochs 2 # both, epoch after epoch, and their time ratio
    python examples/imdb_torch.py --packed             # each review's real words only (PackedSequence)

Embedding(10000, 32) -> LSTM(32) -> Linear(32, 1), binary cross-entropy on the logit, RMSprop
(learning rate 1e-3), batches of 128, reviews cut or padded in front to 500 words, 20% of the training
reviews held out for validation: the tutorial's setup. The only line that involves rnnkit is the one
that picks the LSTM class; everything else is ordinary PyTorch. The data comes from
rnnkit.datasets.imdb (downloaded once, or from RNNKIT_DATA).
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence

import rnnkit.torch
from rnnkit.datasets import imdb
from rnnkit.utils import pad_sequences

LSTM_CLASSES = {"rnnkit": rnnkit.torch.LSTM, "torch.nn": nn.LSTM}


class SentimentModel(nn.Module):
    def __init__(self, lstm_class, vocabulary=10000, features=32, units=32):
        super().__init__()
        self.embedding = nn.Embedding(vocabulary, features)
        self.lstm = lstm_class(features, units, batch_first=True)
        self.head = nn.Linear(units, 1)

    def forward(self, ids, lengths=None):
        x = self.embedding(ids)
        if lengths is not None:  # ids padded at the end: run each review's real words only
            x = pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False)
        _, (h_n, _) = self.lstm(x)
        return self.head(h_n[-1]).squeeze(1)  # the logit of "positive"


def batches(n, batch_size, rng=None):
    order = np.arange(n) if rng is None else rng.permutation(n)
    return [order[i:i + batch_size] for i in range(0, n, batch_size)]


class Reviews:
    """Token ids (padded to maxlen), labels and real lengths of a set of reviews, as tensors."""

    def __init__(self, sequences, labels, maxlen, packed):
        self.ids = torch.from_numpy(pad_sequences(sequences, maxlen=maxlen, padding="post" if packed else "pre",
                                                  truncating="pre").astype(np.int64))
        self.labels = torch.from_numpy(np.asarray(labels, np.float32))
        self.lengths = torch.tensor([max(1, min(len(s), maxlen)) for s in sequences]) if packed else None

    def __len__(self):
        return len(self.labels)

    def batch(self, rows):
        rows = torch.from_numpy(rows)
        return self.ids[rows], self.labels[rows], None if self.lengths is None else self.lengths[rows]


def train_epoch(model, optimizer, data, batch_size, rng):
    model.train()
    for rows in batches(len(data), batch_size, rng):
        ids, labels, lengths = data.batch(rows)
        optimizer.zero_grad()
        nn.functional.binary_cross_entropy_with_logits(model(ids, lengths), labels).backward()
        optimizer.step()


@torch.no_grad()
def accuracy(model, data, batch_size):
    model.eval()
    correct = 0
    for rows in batches(len(data), batch_size):
        ids, labels, lengths = data.batch(rows)
        correct += int(((model(ids, lengths) > 0).float() == labels).sum())
    return correct / len(data)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--layer", choices=LSTM_CLASSES, default="rnnkit", help="the LSTM class (default: rnnkit)")
    parser.add_argument("--compare", action="store_true", help="train the model on both LSTM classes, in turns")
    parser.add_argument("--epochs", type=int, default=10, help="epochs (default: 10)")
    parser.add_argument("--packed", action="store_true", help="PackedSequence of each review's real words")
    parser.add_argument("--limit", type=int, default=None, help="use only this many training and test reviews")
    parser.add_argument("--seed", type=int, default=0, help="seed of the weights and the batch order (default: 0)")
    args = parser.parse_args()

    # An untrained LSTM's gradient fades over 500 steps into subnormal floats, which this CPU computes
    # about ten times slower than normal ones: flush them to zero (both LSTM classes honour it).
    torch.set_flush_denormal(True)
    maxlen, batch_size = 500, 128
    (x_train, y_train), (x_test, y_test) = imdb.load_data(num_words=10000)
    if args.limit:
        x_train, y_train, x_test, y_test = x_train[:args.limit], y_train[:args.limit], x_test[:args.limit], \
            y_test[:args.limit]
    split = int(0.8 * len(x_train))  # the last 20% for validation, as Keras' validation_split
    train = Reviews(x_train[:split], y_train[:split], maxlen, args.packed)
    validation = Reviews(x_train[split:], y_train[split:], maxlen, args.packed)
    test = Reviews(x_test, y_test, maxlen, args.packed)

    names = list(LSTM_CLASSES) if args.compare else [args.layer]
    runs = {}
    for name in names:
        torch.manual_seed(args.seed)  # the same initial weights for every LSTM class
        model = SentimentModel(LSTM_CLASSES[name])
        runs[name] = (model, torch.optim.RMSprop(model.parameters(), lr=1e-3, alpha=0.9, eps=1e-7),
                      np.random.default_rng(args.seed), [])
    for epoch in range(1, args.epochs + 1):
        for name, (model, optimizer, rng, seconds) in runs.items():
            start = time.perf_counter()
            train_epoch(model, optimizer, train, batch_size, rng)
            seconds.append(time.perf_counter() - start)
            print(f"epoch {epoch:2d}  {name:8s}  {seconds[-1]:6.1f} s  "
                  f"val_acc {accuracy(model, validation, batch_size):.4f}", flush=True)
    for name, (model, _, _, seconds) in runs.items():
        print(f"{name:8s}  median epoch {statistics.median(seconds):.1f} s  "
              f"test accuracy {accuracy(model, test, batch_size):.4f}")
    if args.compare:
        ratios = [t / r for t, r in zip(runs["torch.nn"][3], runs["rnnkit"][3])]
        print(f"rnnkit.torch.LSTM trains {statistics.median(ratios):.2f}x as fast as torch.nn.LSTM "
              "(median of the epochs' ratios)")


if __name__ == "__main__":
    main()
