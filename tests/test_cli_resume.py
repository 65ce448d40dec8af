"""``rnnkit imdb`` stopped by a signal or killed at any moment keeps what it trained, and ``--resume``
ends with bit for bit the model of a run that never stopped."""

import json
import os
import signal
import subprocess
import sys
import time
import zipfile

import numpy as np
import pytest

from rnnkit.cli import main
from rnnkit.models import Sequential, load_model

from tiny_imdb import SEPARABLE_REVIEWS, write_tarball

RUN = ["imdb", "--model", "gru", "--epochs", "60", "--batch-size", "8", "--maxlen", "12", "--num-words", "50",
       "--units", "4", "--embed-dim", "4", "--verbose", "2"]
STEPS = 30  # 300 training reviews, 240 after the validation split, batches of 8


@pytest.fixture(scope="module")
def workspace(tmp_path_factory):
    root = tmp_path_factory.mktemp("cli-resume")
    env = dict(os.environ, XDG_CACHE_HOME=str(root / "cache"))
    return root, write_tarball(root, SEPARABLE_REVIEWS), env


def start(workspace, out, *extra):
    root, archive, env = workspace
    return subprocess.Popen([sys.executable, "-m", "rnnkit", *RUN, "--data", str(archive), "--out", str(out), *extra],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)


def finish(child, timeout=120):
    try:
        out, err = child.communicate(timeout=timeout)
    finally:
        child.kill()
    return child.returncode, out, err


@pytest.fixture(scope="module")
def reference(workspace):
    root = workspace[0]
    began = time.monotonic()
    status, _, err = finish(start(workspace, root / "reference"))
    assert status == 0, err
    seconds = time.monotonic() - began
    history = json.loads((root / "reference" / "history.json").read_text())
    return load_model(root / "reference" / "model.rnnkit").get_weights(), history, seconds


def assert_weights_equal(path, weights):
    for got, want in zip(load_model(path).get_weights(), weights, strict=True):
        np.testing.assert_array_equal(got, want)


def assert_finished_like(out, reference):
    assert_weights_equal(out / "model.rnnkit", reference[0])
    result = json.loads((out / "history.json").read_text())
    assert result["history"] == reference[1]["history"] and result["test_acc"] == reference[1]["test_acc"]
    assert result["completed"] is True and len(result["epoch_seconds"]) == 60
    assert not (out / "backup").exists()


def test_sigterm_saves_the_model_and_resume_finishes_with_the_uninterrupted_model(workspace, reference, tmp_path):
    out = tmp_path / "run"
    child = start(workspace, out)
    for line in child.stdout:
        if line.startswith("Epoch 3/60"):
            break
    child.send_signal(signal.SIGTERM)
    status, _, err = finish(child)
    assert status == 143, err
    assert "rnnkit: interrupted by SIGTERM; training stopped" in err
    assert load_model(out / "model.rnnkit").predict(np.ones((2, 12), np.int64)).shape == (2, 1)
    result = json.loads((out / "history.json").read_text())
    assert result["completed"] is False and result["interrupted"] == "SIGTERM" and len(result["history"]["loss"]) >= 3

    status, _, err = finish(start(workspace, out))  # a new run would overwrite it: refused
    assert status == 2 and "holds the backup of a run that stopped" in err and "add --resume" in err

    status, printed, err = finish(start(workspace, out, "--resume"))
    assert status == 0, err
    assert "Resumed from" in printed
    assert_finished_like(out, reference)


@pytest.mark.parametrize("moment", [0.15, 0.35, 0.55, 0.75, 0.9, 0.97])
def test_a_run_killed_at_any_moment_and_resumed_ends_with_the_uninterrupted_model(workspace, reference, tmp_path,
                                                                                   moment):
    out = tmp_path / "run"
    child = start(workspace, out)
    time.sleep(moment * reference[2])
    child.send_signal(signal.SIGKILL)
    finish(child)
    child = start(workspace, out, "--resume")  # and killed once more, later in the run
    time.sleep(0.5 * (1 - moment) * reference[2])
    child.send_signal(signal.SIGKILL)
    finish(child)
    status, _, err = finish(start(workspace, out, "--resume"))
    assert status == 0, err
    assert_finished_like(out, reference)


def small_args(workspace, out, *extra):
    return [*RUN[:4], "6", *RUN[5:], "--data", str(workspace[1]), "--out", str(out), *extra]


def run_in_process(argv):
    try:
        return main(argv)
    except SystemExit as e:
        return e.code


def test_ctrl_c_during_the_test_evaluation_keeps_the_trained_model(workspace, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("XDG_CACHE_HOME", workspace[2]["XDG_CACHE_HOME"])
    finished = tmp_path / "finished"
    assert run_in_process(small_args(workspace, finished)) == 0

    def ctrl_c(*args, **kwargs):
        raise KeyboardInterrupt

    out = tmp_path / "run"
    with monkeypatch.context() as patch:
        patch.setattr(Sequential, "evaluate", ctrl_c)
        assert run_in_process(small_args(workspace, out)) == 130
    assert_weights_equal(out / "model.rnnkit", load_model(finished / "model.rnnkit").get_weights())
    assert json.loads((out / "history.json").read_text())["completed"] is False
    assert run_in_process(small_args(workspace, out, "--resume")) == 0
    result = json.loads((out / "history.json").read_text())
    assert result["completed"] is True and result["test_acc"] is not None and not (out / "backup").exists()


def test_resume_refuses_a_run_started_with_other_arguments(workspace, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("XDG_CACHE_HOME", workspace[2]["XDG_CACHE_HOME"])
    out = tmp_path / "run"
    with monkeypatch.context() as patch:
        patch.setattr(Sequential, "evaluate", lambda *a, **k: (_ for _ in ()).throw(KeyboardInterrupt))
        assert run_in_process(small_args(workspace, out)) == 130
    capsys.readouterr()
    changed = small_args(workspace, out, "--resume")
    changed[changed.index("--units") + 1] = "5"
    assert run_in_process(changed) == 2
    assert "was started with --units 4, this command asks for 5" in capsys.readouterr().err


def poison_weights_at(monkeypatch, iteration):
    """The model's weights become NaN after this many updates, as a diverging run's do."""
    from rnnkit import imdb_run

    build = imdb_run.build_model

    def build_diverging(args):
        model = build(args)
        apply = model.optimizer.apply

        def apply_then_poison(weights, grads):
            apply(weights, grads)
            if model.optimizer.iterations == iteration:
                weights[0][...] = np.nan

        model.optimizer.apply = apply_then_poison
        return model

    monkeypatch.setattr(imdb_run, "build_model", build_diverging)


def test_a_nan_loss_stops_training_and_keeps_the_model_of_the_last_finite_epoch(workspace, tmp_path, monkeypatch,
                                                                                 capsys):
    monkeypatch.setenv("XDG_CACHE_HOME", workspace[2]["XDG_CACHE_HOME"])
    two_epochs = small_args(workspace, tmp_path / "two")
    two_epochs[two_epochs.index("--epochs") + 1] = "2"
    assert run_in_process(two_epochs) == 0
    out = tmp_path / "run"
    poison_weights_at(monkeypatch, 2 * STEPS + 5)
    assert run_in_process(small_args(workspace, out)) == 1
    printed = capsys.readouterr().out
    assert "The loss became NaN in epoch 3, batch 6" in printed and "the one after epoch 2" in printed
    assert_weights_equal(out / "model.rnnkit", load_model(tmp_path / "two" / "model.rnnkit").get_weights())
    result = json.loads((out / "history.json").read_text())
    assert result["terminated_on_nan"] == {"epoch": 3, "batch": 6} and result["model_epoch"] == 2
    assert result["history"]["loss"][2] is None and result["completed"] is False


def test_a_nan_loss_in_the_first_epoch_saves_no_model(workspace, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("XDG_CACHE_HOME", workspace[2]["XDG_CACHE_HOME"])
    out = tmp_path / "run"
    poison_weights_at(monkeypatch, 5)
    assert run_in_process(small_args(workspace, out)) == 1
    assert "before any epoch ended with a finite loss: no model saved" in capsys.readouterr().out
    assert not (out / "model.rnnkit").exists()
    assert json.loads((out / "history.json").read_text())["terminated_on_nan"] == {"epoch": 1, "batch": 6}


@pytest.mark.parametrize("member", ["__header__.npy", "array_00000.npy"])
def test_resume_from_a_damaged_backup_gets_one_line_and_exit_status_2(workspace, tmp_path, monkeypatch, capsys,
                                                                      member):
    monkeypatch.setenv("XDG_CACHE_HOME", workspace[2]["XDG_CACHE_HOME"])
    out = tmp_path / "run"
    with monkeypatch.context() as patch:
        patch.setattr(Sequential, "evaluate", lambda *a, **k: (_ for _ in ()).throw(KeyboardInterrupt))
        assert run_in_process(small_args(workspace, out)) == 130
    backup = out / "backup" / "training_state.rnnkit"
    data = bytearray(backup.read_bytes())
    with zipfile.ZipFile(backup) as z:
        info = z.getinfo(member)
    data[info.header_offset + 30 + len(member) + info.file_size // 2] ^= 0xFF  # in the member's data
    backup.write_bytes(bytes(data))
    capsys.readouterr()
    assert run_in_process(small_args(workspace, out, "--resume")) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and f"delete {out / 'backup'} to start over" in err


def test_resume_mid_epoch_over_other_data_gets_one_line_and_exit_status_2(workspace, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("XDG_CACHE_HOME", workspace[2]["XDG_CACHE_HOME"])
    out = tmp_path / "run"
    step, calls = Sequential._step, []

    def ctrl_c_at_batch_40(self, xs, ys, sws, training_mode):
        calls.append(training_mode)
        if calls.count(True) == 40 and training_mode:
            signal.raise_signal(signal.SIGINT)
        return step(self, xs, ys, sws, training_mode)

    with monkeypatch.context() as patch:
        patch.setattr(Sequential, "_step", ctrl_c_at_batch_40)
        assert run_in_process(small_args(workspace, out)) == 130
    fewer = write_tarball(tmp_path / "fewer", SEPARABLE_REVIEWS[:100] + SEPARABLE_REVIEWS[300:400])
    argv = small_args(workspace, out, "--resume")
    argv[argv.index("--data") + 1] = str(fewer)
    capsys.readouterr()
    assert run_in_process(argv) == 2
    err = capsys.readouterr().err
    assert "--resume: " in err and "stopped mid-epoch in a fit over" in err and "Traceback" not in err
