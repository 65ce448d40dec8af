"""The main job, ``rnnkit imdb``: end to end on a tiny archive, and a short real run."""

import json
import subprocess
import sys

import numpy as np

from rnnkit.cli import main

from tiny_imdb import SEPARABLE_REVIEWS as TINY_REVIEWS
from tiny_imdb import write_tarball


def test_imdb_command_trains_evaluates_and_writes_its_outputs(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    archive = write_tarball(tmp_path, TINY_REVIEWS)
    out = tmp_path / "run"
    main(["imdb", "--model", "gru", "--epochs", "4", "--batch-size", "8", "--maxlen", "12", "--num-words", "50",
          "--units", "4", "--embed-dim", "4", "--optimizer", "adam", "--data", str(archive), "--out", str(out),
          "--verbose", "2"])
    printed = capsys.readouterr().out
    assert "Loading IMDB reviews" in printed and "Total params:" in printed
    assert "Epoch 4/4 - " in printed and "val_acc: " in printed
    assert "test_acc: " in printed and "best val_acc: " in printed and "s per epoch" in printed
    result = json.loads((out / "history.json").read_text())
    assert set(result["history"]) == {"loss", "acc", "val_loss", "val_acc"} and len(result["epoch_seconds"]) == 4
    assert result["test_acc"] > 0.9  # the tiny task is separable by its words
    assert (out / "model.rnnkit").exists()
    try:
        import matplotlib  # noqa: F401

        assert (out / "history.png").read_bytes()[:4] == b"\x89PNG"
    except ImportError:
        assert "matplotlib is not installed" in printed


def test_mask_zero_and_bidirectional_flags_build_the_masked_bidirectional_model(tmp_path, monkeypatch, capsys):
    from rnnkit.layers import GRU, Bidirectional
    from rnnkit.models import load_model

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.chdir(tmp_path)  # the default --out is runs/imdb-<name> under the working directory
    archive = write_tarball(tmp_path, TINY_REVIEWS)
    main(["imdb", "--model", "gru", "--mask-zero", "--bidirectional", "--epochs", "3", "--batch-size", "8",
          "--maxlen", "12", "--num-words", "50", "--units", "4", "--embed-dim", "4", "--optimizer", "adam",
          "--data", str(archive), "--verbose", "0"])
    out = tmp_path / "runs" / "imdb-bidirectional_gru_masked"
    result = json.loads((out / "history.json").read_text())
    assert result["model"] == "bidirectional_gru_masked" and result["test_acc"] > 0.9
    model = load_model(out / "model.rnnkit")
    embedding, recurrent = model.layers[:2]
    assert embedding.mask_zero and isinstance(recurrent, Bidirectional) and isinstance(recurrent.forward_layer, GRU)
    ids = np.array([[0, 0, 0, 5, 6, 7], [0, 0, 0, 8, 9, 4]])
    # masked padding changes nothing, even padding the forward direction never saw in training
    np.testing.assert_allclose(model.predict(ids), model.predict(ids[:, 3:]), rtol=1e-5)
    assert "Bidirectional" in capsys.readouterr().out


def test_without_matplotlib_the_run_completes_and_says_so(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib now raises ImportError
    archive = write_tarball(tmp_path, TINY_REVIEWS)
    main(["imdb", "--model", "simple_rnn", "--epochs", "1", "--maxlen", "8", "--num-words", "50", "--units", "2",
          "--embed-dim", "2", "--data", str(archive), "--out", str(tmp_path / "run"), "--verbose", "0"])
    assert "matplotlib is not installed" in capsys.readouterr().out
    assert not (tmp_path / "run" / "history.png").exists()


def test_python_dash_m_rnnkit_runs_the_same_command():
    done = subprocess.run([sys.executable, "-m", "rnnkit", "imdb", "--help"], capture_output=True, text=True)
    assert done.returncode == 0
    assert "--model {simple_rnn,lstm,gru}" in done.stdout and "(default: 500)" in done.stdout


def test_a_short_lstm_run_on_a_few_thousand_real_reviews_beats_070(real_data):
    from rnnkit.datasets import imdb
    from rnnkit.layers import LSTM, Dense, Embedding
    from rnnkit.models import Sequential
    from rnnkit.preprocessing.sequence import pad_sequences
    from rnnkit.utils import set_random_seed

    set_random_seed(0)
    (x, y), _ = imdb.load_data(num_words=10000)
    x = pad_sequences(x[:5000], maxlen=200)
    model = Sequential([Embedding(10000, 32), LSTM(32), Dense(1, activation="sigmoid")])
    model.compile(optimizer="rmsprop", loss="binary_crossentropy", metrics=["acc"])
    history = model.fit(x, y[:5000], epochs=4, batch_size=128, validation_split=0.2, verbose=0)
    assert max(history.history["val_acc"]) > 0.70
    assert np.isfinite(history.history["loss"]).all()
