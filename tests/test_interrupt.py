"""Ctrl-C during training stops at a batch boundary, and what was saved stays loadable: saves go to a
temporary file that is renamed into place, so a save interrupted halfway leaves the last one intact."""

import os
import signal
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from rnnkit import saving
from rnnkit.callbacks import Callback
from rnnkit.layers import LSTM, Dense, Embedding
from rnnkit.models import Sequential, load_model
from rnnkit.training import raise_keyboard_interrupt
from rnnkit.utils import set_random_seed

BATCH = 8


def small_model(seed=0):
    set_random_seed(seed)
    model = Sequential([Embedding(20, 4), LSTM(3), Dense(1, activation="sigmoid")])
    model.compile(optimizer="rmsprop", loss="binary_crossentropy", metrics=["acc"])
    return model


def data(n=64, seed=1):
    rng = np.random.default_rng(seed)
    return rng.integers(1, 20, (n, 7)), rng.integers(0, 2, n)


class CtrlCAtBatch(Callback):
    """Presses Ctrl-C (raises SIGINT) as batch `batch` of the first epoch begins, `times` times."""

    def __init__(self, batch, times=1):
        super().__init__()
        self.batch, self.times, self.batches_done = batch, times, 0

    def on_train_batch_begin(self, batch, logs=None):
        if batch == self.batch:
            for _ in range(self.times):
                signal.raise_signal(signal.SIGINT)

    def on_train_batch_end(self, batch, logs=None):
        self.batches_done += 1


def test_ctrl_c_finishes_the_batch_under_way_then_raises_keyboard_interrupt():
    x, y = data()
    model, press = small_model(), CtrlCAtBatch(batch=2)
    with pytest.raises(KeyboardInterrupt):
        model.fit(x, y, epochs=5, batch_size=BATCH, shuffle=False, callbacks=[press], verbose=0)
    assert press.batches_done == 3
    assert model.history.history == {}  # no epoch completed
    # the weights are exactly those after three whole updates
    reference = small_model()
    reference.fit(x[: 3 * BATCH], y[: 3 * BATCH], epochs=1, batch_size=BATCH, shuffle=False, verbose=0)
    for got, want in zip(model.get_weights(), reference.get_weights()):
        np.testing.assert_array_equal(got, want)
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_sigterm_handled_by_raise_keyboard_interrupt_stops_fit_at_a_batch_end_as_ctrl_c_does():
    x, y = data()
    model = small_model()

    class TermAtBatch(Callback):
        def on_train_batch_begin(self, batch, logs=None):
            if batch == 2:
                signal.raise_signal(signal.SIGTERM)

    previous = signal.signal(signal.SIGTERM, raise_keyboard_interrupt)
    try:
        with pytest.raises(KeyboardInterrupt, match="SIGTERM"):
            model.fit(x, y, epochs=5, batch_size=BATCH, shuffle=False, callbacks=[TermAtBatch()], verbose=0)
        assert signal.getsignal(signal.SIGTERM) is raise_keyboard_interrupt
    finally:
        signal.signal(signal.SIGTERM, previous)
    reference = small_model()
    reference.fit(x[: 3 * BATCH], y[: 3 * BATCH], epochs=1, batch_size=BATCH, shuffle=False, verbose=0)
    for got, want in zip(model.get_weights(), reference.get_weights()):
        np.testing.assert_array_equal(got, want)


def test_fit_leaves_sigterm_alone_unless_it_raises_keyboard_interrupt():
    x, y = data()
    seen = []

    class Probe(Callback):
        def on_train_batch_end(self, batch, logs=None):
            seen.append(signal.getsignal(signal.SIGTERM))

    small_model().fit(x, y, epochs=1, batch_size=BATCH, callbacks=[Probe()], verbose=0)
    assert set(seen) == {signal.SIG_DFL}


def test_ctrl_c_after_the_last_batch_stops_fit_once_the_epoch_and_its_validation_are_done():
    class CtrlCAtLastBatchEnd(Callback):
        def on_train_batch_end(self, batch, logs=None):
            if batch == self.params["steps"] - 1 and self.model._fit_state.epoch == 0:
                signal.raise_signal(signal.SIGINT)

    x, y = data()
    model = small_model()
    with pytest.raises(KeyboardInterrupt):
        model.fit(x, y, epochs=3, batch_size=BATCH, validation_split=0.25, callbacks=[CtrlCAtLastBatchEnd()],
                  verbose=0)
    assert len(model.history.history["val_loss"]) == 1  # the epoch ended, with its validation, then fit stopped


def test_a_second_ctrl_c_interrupts_at_once():
    x, y = data()
    model, press = small_model(), CtrlCAtBatch(batch=1, times=2)
    with pytest.raises(KeyboardInterrupt):
        model.fit(x, y, epochs=1, batch_size=BATCH, shuffle=False, callbacks=[press], verbose=0)
    assert press.batches_done == 1  # batch 1 never finished
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_training_after_an_interrupt_continues_normally():
    x, y = data()
    model = small_model()
    with pytest.raises(KeyboardInterrupt):
        model.fit(x, y, epochs=2, batch_size=BATCH, callbacks=[CtrlCAtBatch(batch=0)], verbose=0)
    history = model.fit(x, y, epochs=2, batch_size=BATCH, verbose=0)
    assert len(history.history["loss"]) == 2


def test_stop_training_set_by_a_batch_callback_ends_the_epoch_as_in_keras():
    class StopAtBatch(Callback):
        def on_train_batch_end(self, batch, logs=None):
            if batch == 1:
                self.model.stop_training = True

    x, y = data()
    model = small_model()
    history = model.fit(x, y, epochs=4, batch_size=BATCH, validation_split=0.25, callbacks=[StopAtBatch()],
                        verbose=0)
    assert len(history.history["loss"]) == 1 and "val_loss" in history.history


def test_a_save_that_fails_halfway_leaves_the_previous_file_loadable(tmp_path, monkeypatch):
    x, y = data()
    model = small_model()
    path = tmp_path / "model.rnnkit"
    model.save(path)
    expected = model.predict(x)
    model.fit(x, y, epochs=1, batch_size=BATCH, verbose=0)

    def interrupted_savez(f, **arrays):
        f.write(b"PK\x03\x04 half an archive")
        raise KeyboardInterrupt

    monkeypatch.setattr(saving.np, "savez", interrupted_savez)
    with pytest.raises(KeyboardInterrupt):
        model.save(path)
    monkeypatch.undo()
    np.testing.assert_array_equal(load_model(path).predict(x), expected)
    assert os.listdir(tmp_path) == ["model.rnnkit"]  # no temporary file left behind


CHILD = textwrap.dedent("""
    import sys
    import numpy as np
    from rnnkit.callbacks import Callback, ModelCheckpoint
    from rnnkit.layers import LSTM, Dense, Embedding
    from rnnkit.models import Sequential

    class Ready(Callback):
        def on_epoch_end(self, epoch, logs=None):
            if epoch == 0:
                print("ready", flush=True)

    rng = np.random.default_rng(0)
    x, y = rng.integers(1, 50, (512, 40)), rng.integers(0, 2, 512)
    model = Sequential([Embedding(50, 8), LSTM(8), Dense(1, activation="sigmoid")])
    model.compile(optimizer="rmsprop", loss="binary_crossentropy")
    try:
        model.fit(x, y, epochs=100000, batch_size=8, verbose=0,
                  callbacks=[Ready(), ModelCheckpoint(sys.argv[1])])
    except KeyboardInterrupt:
        model.save(sys.argv[2])
        print("saved", flush=True)
        sys.exit(130)
""")


def test_ctrl_c_in_a_training_process_stops_it_with_loadable_saves(tmp_path):
    checkpoint, final = tmp_path / "checkpoint.rnnkit", tmp_path / "final.rnnkit"
    child = subprocess.Popen([sys.executable, "-c", CHILD, str(checkpoint), str(final)], stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True)
    try:
        assert child.stdout.readline().strip() == "ready"
        child.send_signal(signal.SIGINT)
        out, err = child.communicate(timeout=60)
    finally:
        child.kill()
    assert child.returncode == 130, err
    assert "saved" in out
    assert "rnnkit: interrupted by SIGINT; training stopped" in err
    x = np.random.default_rng(1).integers(1, 50, (5, 40))
    for path in (checkpoint, final):
        assert load_model(path).predict(x).shape == (5, 1)


def test_a_save_removes_what_a_save_killed_midway_left_but_not_a_running_saves_file(tmp_path):
    path = tmp_path / "model.rnnkit"
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    left_by_dead = tmp_path / f".model.rnnkit.{int(dead.stdout)}.0badc0de.tmp"
    of_running = tmp_path / f".model.rnnkit.{os.getppid()}.12345678.tmp"
    of_other_file = tmp_path / f".other.rnnkit.{int(dead.stdout)}.0badc0de.tmp"
    for leftover in (left_by_dead, of_running, of_other_file):
        leftover.write_bytes(b"PK\x03\x04 half an archive")
    small_model().save(path)
    assert sorted(os.listdir(tmp_path)) == sorted([path.name, of_running.name, of_other_file.name])
