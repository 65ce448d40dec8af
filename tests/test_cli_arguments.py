"""``rnnkit imdb`` checks its arguments and its output directory before any work: a mistake gets one
line naming it and exit status 2, never a traceback, and nothing is read or written."""

import json

import pytest

from rnnkit.cli import main

from tiny_imdb import SEPARABLE_REVIEWS, write_tarball

SMALL = ["--epochs", "2", "--batch-size", "8", "--maxlen", "12", "--num-words", "50", "--units", "4",
         "--embed-dim", "4", "--verbose", "0"]


@pytest.fixture()
def archive(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    return write_tarball(tmp_path, SEPARABLE_REVIEWS)


def run(argv, capsys):
    """(exit status, stdout, stderr) of rnnkit with these arguments."""
    try:
        status = main(argv)
    except SystemExit as e:
        status = e.code
    out, err = capsys.readouterr()
    return status, out, err


BAD = {
    "--batch-size 0": (["--batch-size", "0"], "--batch-size must be at least 1, got 0"),
    "--units 0": (["--units", "0"], "--units must be at least 1"),
    "--maxlen 0": (["--maxlen", "0"], "--maxlen must be at least 1"),
    "--embed-dim 0": (["--embed-dim", "0"], "--embed-dim must be at least 1"),
    "--epochs 0": (["--epochs", "0"], "--epochs must be at least 1"),
    "--num-words 1": (["--num-words", "1"], "--num-words must be at least 4"),
    "--seed -1": (["--seed", "-1"], "--seed must be at least 0"),
    "--validation-split 1.5": (["--validation-split", "1.5"], r"--validation-split must be in \[0, 1\)"),
    "--validation-split -0.1": (["--validation-split", "-0.1"], r"--validation-split must be in \[0, 1\)"),
    "--validation-split nan": (["--validation-split", "nan"], r"--validation-split must be in \[0, 1\)"),
    "--maxlen 1e9": (["--maxlen", "1000000000"], "needs about .* GiB"),
    "--units 100000": (["--units", "100000"], "needs about .* GiB"),
    "--data missing": (["--data", "/nonexistent/aclImdb"], "--data /nonexistent/aclImdb: no such file"),
    "--out /proc": (["--out", "/proc/rnnkit-test"], "--out /proc/rnnkit-test: cannot write there"),
}


@pytest.mark.parametrize("case", BAD, ids=list(BAD))
def test_a_mistaken_argument_gets_one_line_and_exit_status_2_before_any_work(case, archive, tmp_path, capsys):
    extra, message = BAD[case]
    argv = ["imdb", *SMALL, "--data", str(archive), "--out", str(tmp_path / "run"), *extra]
    status, out, err = run(argv, capsys)
    assert status == 2
    assert "Traceback" not in err and "Loading" not in out
    last = err.strip().splitlines()[-1]
    assert last.startswith("rnnkit imdb: error: ")
    assert __import__("re").search(message, last), last
    if "--out" not in extra:
        assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("where", ["a file", "under a file"])
def test_an_output_directory_that_is_a_file_or_under_one_is_refused(where, archive, tmp_path, capsys):
    blocker = tmp_path / "taken"
    blocker.write_text("not a directory")
    out = blocker if where == "a file" else blocker / "run"
    status, _, err = run(["imdb", *SMALL, "--data", str(archive), "--out", str(out)], capsys)
    assert status == 2 and f"--out {out}: cannot write there" in err and "Traceback" not in err
    assert blocker.read_text() == "not a directory"


def test_data_that_is_not_a_dataset_gets_one_line_and_exit_status_2(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    bogus = tmp_path / "reviews.tar.gz"
    bogus.write_bytes(b"this is not a tarball")
    status, _, err = run(["imdb", *SMALL, "--data", str(bogus), "--out", str(tmp_path / "run")], capsys)
    assert status == 2 and "Traceback" not in err
    assert err.strip().splitlines()[-1].startswith("rnnkit imdb: error: ")


def test_a_validation_split_that_leaves_no_training_reviews_gets_exit_status_2(archive, tmp_path, capsys):
    status, _, err = run(["imdb", *SMALL, "--data", str(archive), "--out", str(tmp_path / "run"),
                          "--validation-split", "0.999"], capsys)
    assert status == 2 and "leaves no reviews on one side of the 300 training reviews" in err


def test_without_validation_the_run_completes_and_reports_no_best_epoch(archive, tmp_path, capsys):
    status, out, err = run(["imdb", *SMALL, "--data", str(archive), "--out", str(tmp_path / "run"),
                            "--validation-split", "0"], capsys)
    assert status == 0, err
    result = json.loads((tmp_path / "run" / "history.json").read_text())
    assert set(result["history"]) == {"loss", "acc"} and result["best_epoch"] is None
    assert result["completed"] is True and result["test_acc"] > 0.5 and "test_acc" in out


def test_running_out_of_memory_anyway_gets_one_line_and_exit_status_1(archive, tmp_path, capsys, monkeypatch):
    from rnnkit import imdb_run

    def no_memory(args):
        raise MemoryError("Unable to allocate 12.0 GiB")

    monkeypatch.setattr(imdb_run, "build_model", no_memory)
    status, _, err = run(["imdb", *SMALL, "--data", str(archive), "--out", str(tmp_path / "run")], capsys)
    assert status == 1 and "out of memory" in err and "Traceback" not in err


def test_rnnkit_alone_prints_the_help_and_version_prints_the_version(capsys):
    from rnnkit import __version__

    assert main([]) == 0
    assert "imdb" in capsys.readouterr().out
    with pytest.raises(SystemExit) as done:
        main(["--version"])
    assert done.value.code == 0 and capsys.readouterr().out.strip() == f"rnnkit {__version__}"


@pytest.mark.parametrize("command", ["imdb", "predict"])
def test_every_option_has_help_and_shows_its_default_once(command):
    from rnnkit.cli import build_parser

    sub = build_parser().commands[command]
    formatter = sub._get_formatter()
    for action in sub._actions:
        if not action.option_strings or action.dest == "help":
            continue
        text = formatter._expand_help(action)
        assert action.help and text.count("default") <= 1, (action.option_strings, text)
        if action.default not in (None, False):
            assert f"(default: {action.default})" in text, (action.option_strings, text)


def test_one_thread_is_one_thread_and_history_records_the_data_read(archive, tmp_path, monkeypatch, capsys):
    import rnnkit

    threads = rnnkit.get_num_threads()
    rnnkit.set_num_threads(1)
    try:
        out = tmp_path / "one"
        main(["imdb", *SMALL, "--epochs", "1", "--data", str(archive), "--out", str(out)])
    finally:
        rnnkit.set_num_threads(threads)
    assert " kernels, 1 thread)" in capsys.readouterr().out
    assert json.loads((out / "history.json").read_text())["data"] == str(archive.resolve())


@pytest.mark.parametrize("with_word_index", [True, False])
def test_keras_imdb_npz_trains_with_or_without_its_word_index(tmp_path, monkeypatch, capsys, with_word_index):
    import numpy as np

    from rnnkit.models import load_model

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    rng = np.random.default_rng(0)
    reviews = {}
    for split, n in (("train", 40), ("test", 10)):
        x = np.empty(n, dtype=object)
        x[:] = [rng.integers(1, 45, rng.integers(2, 9)).tolist() for _ in range(n)]
        reviews[f"x_{split}"], reviews[f"y_{split}"] = x, np.arange(n) % 2
    np.savez(tmp_path / "imdb.npz", **reviews)
    if with_word_index:
        (tmp_path / "imdb_word_index.json").write_text(json.dumps({f"w{i}": i for i in range(1, 45)}))
    out = tmp_path / "run"
    assert main(["imdb", *SMALL, "--epochs", "1", "--data", str(tmp_path / "imdb.npz"), "--out", str(out)]) == 0
    encoding = load_model(out / "model.rnnkit").text_encoding
    if with_word_index:
        assert encoding.words[:3] == ["w1", "w2", "w3"]
    else:
        assert encoding is None and "saved without its vocabulary" in capsys.readouterr().out
