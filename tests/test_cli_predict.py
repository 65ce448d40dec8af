"""``rnnkit predict`` on models ``rnnkit imdb`` trained (they carry their text encoding) and on models
that start with TextVectorization; ``rnnkit imdb`` judging and keeping the best epoch."""

import json
import subprocess
import sys

import numpy as np
import pytest

import rnnkit
from rnnkit.cli import main
from rnnkit.datasets import imdb
from rnnkit.layers import LSTM, Dense, Embedding, TextVectorization
from rnnkit.models import load_model

from tiny_imdb import SEPARABLE_REVIEWS, write_tarball

TRAIN = ["--model", "lstm", "--batch-size", "8", "--maxlen", "12", "--num-words", "50", "--units", "4",
         "--embed-dim", "4", "--optimizer", "adam", "--verbose", "0"]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A run of rnnkit imdb on the tiny separable dataset: (its directory, the dataset)."""
    tmp_path = tmp_path_factory.mktemp("run")
    with pytest.MonkeyPatch.context() as monkeypatch:
        monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
        archive = write_tarball(tmp_path, SEPARABLE_REVIEWS)
        assert main(["imdb", *TRAIN, "--epochs", "4", "--data", str(archive), "--out", str(tmp_path / "run")]) == 0
    return tmp_path / "run", archive


def predict(*args, stdin=None):
    run = subprocess.run([sys.executable, "-m", "rnnkit", "predict", *map(str, args)], input=stdin,
                         capture_output=True)
    return run.returncode, run.stdout.decode(), run.stderr.decode()


def test_the_saved_model_carries_how_its_reviews_were_encoded(trained, monkeypatch, tmp_path):
    run, archive = trained
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    encoding = load_model(run / "model.rnnkit").text_encoding
    assert encoding == imdb.TextEncoding.from_dataset(archive, num_words=50, maxlen=12)
    assert (encoding.num_words, encoding.maxlen, encoding.start_char, encoding.oov_char, encoding.index_from) == \
        (50, 12, 1, 2, 3)


def test_predict_gives_model_predict_probabilities_one_line_per_text(trained):
    run, _ = trained
    texts = ["wonderful superb wonderful superb", "awful dreadful awful", "filler3 wonderful"]
    status, out, err = predict(run / "model.rnnkit", *texts)
    assert status == 0, err
    lines = out.splitlines()
    assert len(lines) == 3
    model = load_model(run / "model.rnnkit")
    expected = model.predict(model.text_encoding.encode(texts), verbose=0)[:, 0]
    for line, p in zip(lines, expected):
        probability, label = line.split("\t")
        assert float(probability) == pytest.approx(p, abs=5e-5)
        assert label == ("positive" if p > 0.5 else "negative")
    assert lines[0].endswith("positive") and lines[1].endswith("negative")


def test_predict_reads_a_file_and_standard_input(trained, tmp_path):
    run, _ = trained
    path = tmp_path / "reviews.txt"
    path.write_bytes("wonderful superb\r\nawful dreadful\n".encode())
    from_file = predict(run / "model.rnnkit", "--file", path)
    from_stdin = predict(run / "model.rnnkit", "-", stdin=path.read_bytes())
    from_args = predict(run / "model.rnnkit", "wonderful superb", "awful dreadful", "--batch-size", "1")
    assert from_file[0] == from_stdin[0] == from_args[0] == 0
    assert from_file[1] == from_stdin[1] == from_args[1] and len(from_file[1].splitlines()) == 2


def test_predict_refuses_bad_input_with_one_line_and_status_2(trained, tmp_path):
    run, _ = trained
    model = run / "model.rnnkit"
    bad_utf8 = tmp_path / "latin1.txt"
    bad_utf8.write_bytes("good\ncaf\xe9\n".encode("latin-1"))
    blank = tmp_path / "blank.txt"
    blank.write_text("good\n\nbad\n")
    no_vocabulary = tmp_path / "plain.rnnkit"
    plain = rnnkit.Sequential([Embedding(50, 4), LSTM(4), Dense(1, activation="sigmoid")])
    plain.build((12,))
    plain.save(no_vocabulary)
    regression = tmp_path / "regression.rnnkit"
    vectorize = TextVectorization(vocabulary=["a"])
    rnnkit.Sequential([vectorize, Embedding(3, 2), LSTM(2), Dense(3)]).save(regression)
    not_a_model = tmp_path / "notes.rnnkit"
    not_a_model.write_text("not a model")
    cases = [((model, ""), "text 1 is empty"),
             ((model, "   "), "text 1 is empty"),
             ((model,), "no text to classify"),
             ((model, "--file", bad_utf8), "latin1.txt, line 2: not UTF-8 text"),
             ((model, "--file", blank), "blank.txt, line 2 is empty"),
             ((model, "--file", tmp_path / "missing.txt"), "no such file"),
             ((model, "x", "--batch-size", "0"), "--batch-size must be at least 1"),
             ((no_vocabulary, "x"), "carries no vocabulary"),
             ((regression, "x"), "not a binary text classifier"),
             ((not_a_model, "x"), "notes.rnnkit"),
             ((tmp_path / "none.rnnkit", "x"), "none.rnnkit: no such file")]
    for args, message in cases:
        status, out, err = predict(*args)
        assert status == 2 and out == "" and message in err, (args, err)
        assert "Traceback" not in err


def test_predict_with_a_text_vectorization_model(tmp_path):
    texts = np.array(["good great fine"] * 8 + ["bad awful poor"] * 8)
    labels = np.array([1] * 8 + [0] * 8, np.float32)
    vectorize = TextVectorization(output_sequence_length=3)
    vectorize.adapt(texts)
    model = rnnkit.Sequential([vectorize, Embedding(8, 4), LSTM(4), Dense(1, activation="sigmoid")])
    model.compile("adam", "binary_crossentropy")
    model.fit(texts, labels, epochs=2, verbose=0)
    model.save(tmp_path / "text.rnnkit")
    status, out, err = predict(tmp_path / "text.rnnkit", "good fine", "poor")
    assert status == 0, err
    expected = model.predict(["good fine", "poor"], verbose=0)[:, 0]
    assert [float(line.split("\t")[0]) for line in out.splitlines()] == pytest.approx(expected, abs=5e-5)


def test_imdb_reports_and_keeps_the_best_epoch(trained, monkeypatch, tmp_path):
    run, archive = trained
    result = json.loads((run / "history.json").read_text())
    best = result["best_epoch"]
    assert result["kept"] in ("best", "last") and result["test_acc_last"] is not None
    assert result["test_acc"] == (result["test_acc_best"] if result["kept"] == "best" else result["test_acc_last"])
    assert result["best_val_acc"] == max(result["history"]["val_acc"])
    assert not (run / "backup").exists()  # the best epoch's weights went with the backup
    # a run whose last epoch is not its best: the saved model is the best epoch's, the report says both
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    out = tmp_path / "noisy"
    argv = ["imdb", *TRAIN, "--epochs", "6", "--optimizer", "sgd", "--seed", "3", "--data", str(archive)]
    assert main([*argv, "--out", str(out)]) == 0
    result = json.loads((out / "history.json").read_text())
    val = result["history"]["val_acc"]
    assert result["best_epoch"] == val.index(max(val)) + 1 and best is not None
    model = load_model(out / "model.rnnkit")
    x_test = imdb.encode([t for s, _, _, t in SEPARABLE_REVIEWS if s == "test"], num_words=50, maxlen=12,
                         path=archive)
    assert result["best_epoch"] < len(val) and result["kept"] == "best"  # SGD at this seed peaks early
    assert result["test_acc"] == result["test_acc_best"] != result["test_acc_last"]
    y_test = np.array([label == "pos" for s, label, _, _ in SEPARABLE_REVIEWS if s == "test"])
    assert np.mean((model.predict(x_test, verbose=0)[:, 0] > 0.5) == y_test) == pytest.approx(result["test_acc"])
    last = out.with_name("noisy-last")
    assert main([*argv, "--out", str(last), "--keep", "last"]) == 0
    last_result = json.loads((last / "history.json").read_text())
    assert last_result["kept"] == "last" and last_result["test_acc"] == result["test_acc_last"]
    assert not np.array_equal(load_model(last / "model.rnnkit").predict(x_test, verbose=0),
                              model.predict(x_test, verbose=0))
