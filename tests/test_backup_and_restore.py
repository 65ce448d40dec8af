"""BackupAndRestore: a run stopped at any batch and started again ends with the weights of a run that
never stopped, bit for bit; a backup that does not fit the run is refused before anything changes."""

import os
import random
import signal

import numpy as np
import pytest

from rnnkit.callbacks import BackupAndRestore, Callback
from rnnkit.layers import LSTM, Dense, Embedding
from rnnkit.models import Sequential
from rnnkit.utils import set_random_seed

EPOCHS, BATCH = 4, 8
FIT = dict(epochs=EPOCHS, batch_size=BATCH, validation_split=0.2, verbose=0)


def small_model(units=5, optimizer="rmsprop"):
    set_random_seed(3)  # as a new process running the same script would
    model = Sequential([Embedding(30, 4), LSTM(units, dropout=0.2, recurrent_dropout=0.3),
                        Dense(1, activation="sigmoid")])
    model.compile(optimizer, "binary_crossentropy", metrics=["acc"])
    return model


def data(n=70):
    rng = np.random.default_rng(0)
    return rng.integers(1, 30, (n, 6)), rng.integers(0, 2, n)


class Crash(Callback):
    """Raises at the end of the at-th batch of the run, as a killed process stops."""

    def __init__(self, at):
        super().__init__()
        self.at, self.batches = at, 0

    def on_train_batch_end(self, batch, logs=None):
        self.batches += 1
        if self.batches == self.at:
            raise RuntimeError("killed")


class GlobalDraws(Callback):
    """Draws from Python's and NumPy's global generators each batch, as user code may."""

    def __init__(self):
        super().__init__()
        self.draws = []

    def on_train_batch_end(self, batch, logs=None):
        self.draws.append((random.random(), float(np.random.rand())))


def assert_same_weights(a, b):
    for x, y in zip(a.get_weights(), b.get_weights(), strict=True):
        np.testing.assert_array_equal(x, y)


@pytest.fixture(scope="module")
def uninterrupted():
    x, y = data()
    model, draws = small_model(), GlobalDraws()
    model.fit(x, y, callbacks=[draws], **FIT)
    return model, draws.draws


# 56 training samples: 7 batches per epoch; stops mid-epoch, on an epoch's last batch and in the last epoch
@pytest.mark.parametrize("save_freq", ["epoch", 1, 3])
@pytest.mark.parametrize("stop_at", [1, 7, 8, 13, 27])
def test_a_run_stopped_at_any_batch_and_restarted_ends_with_the_weights_of_one_that_never_stopped(
        tmp_path, uninterrupted, save_freq, stop_at):
    x, y = data()
    with pytest.raises(RuntimeError):
        small_model().fit(x, y, callbacks=[BackupAndRestore(tmp_path, save_freq=save_freq), Crash(stop_at)], **FIT)
    model, backup = small_model(), BackupAndRestore(tmp_path, save_freq=save_freq)
    model.fit(x, y, callbacks=[backup], **FIT)
    assert_same_weights(model, uninterrupted[0])
    assert not tmp_path.exists()  # deleted once training completed, as Keras does
    if save_freq == 1:
        assert backup.restored == ((stop_at - 1) // 7, (stop_at - 1) % 7 + 1)  # (epoch, batches done in it)


def test_python_and_numpy_global_generators_continue_where_they_stopped(tmp_path, uninterrupted):
    x, y = data()
    first, second = GlobalDraws(), GlobalDraws()
    with pytest.raises(RuntimeError):
        small_model().fit(x, y, callbacks=[first, BackupAndRestore(tmp_path, save_freq=1), Crash(10)], **FIT)
    small_model().fit(x, y, callbacks=[second, BackupAndRestore(tmp_path, save_freq=1)], **FIT)
    assert first.draws + second.draws == uninterrupted[1]


def test_ctrl_c_backs_up_the_batch_where_fit_stopped_and_the_restart_continues_there(tmp_path, uninterrupted):
    class CtrlC(Callback):
        def on_train_batch_begin(self, batch, logs=None):
            if self.model._fit_state.epoch == 1 and batch == 3:
                signal.raise_signal(signal.SIGINT)

    x, y = data()
    with pytest.raises(KeyboardInterrupt):
        small_model().fit(x, y, callbacks=[BackupAndRestore(tmp_path), CtrlC()], **FIT)
    assert (tmp_path / BackupAndRestore.FILENAME).exists()  # an interrupted run keeps its backup
    model, backup = small_model(), BackupAndRestore(tmp_path)
    model.fit(x, y, callbacks=[backup], **FIT)
    assert backup.restored == (1, 4)
    assert_same_weights(model, uninterrupted[0])


def test_a_backup_of_another_model_is_refused_before_anything_changes(tmp_path):
    x, y = data()
    with pytest.raises(RuntimeError):
        small_model(units=5).fit(x, y, callbacks=[BackupAndRestore(tmp_path), Crash(9)], **FIT)
    other = small_model(units=6)
    other.build((6,))
    before = other.get_weights()
    with pytest.raises(ValueError, match=f"{BackupAndRestore.FILENAME}.*weights shaped"):
        other.fit(x, y, callbacks=[BackupAndRestore(tmp_path)], **FIT)
    for a, b in zip(other.get_weights(), before):
        np.testing.assert_array_equal(a, b)
    with pytest.raises(ValueError, match="trained with rmsprop, the model is compiled with adam"):
        small_model(optimizer="adam").fit(x, y, callbacks=[BackupAndRestore(tmp_path)], **FIT)


def test_a_mid_epoch_backup_is_refused_by_a_fit_over_other_batches(tmp_path):
    x, y = data()
    with pytest.raises(RuntimeError):
        small_model().fit(x, y, callbacks=[BackupAndRestore(tmp_path, save_freq=1), Crash(3)], **FIT)
    with pytest.raises(ValueError, match="stopped mid-epoch in a fit over"):
        small_model().fit(x, y, callbacks=[BackupAndRestore(tmp_path)], **dict(FIT, batch_size=4))


def test_a_damaged_backup_raises_value_error_naming_it(tmp_path):
    x, y = data()
    with pytest.raises(RuntimeError):
        small_model().fit(x, y, callbacks=[BackupAndRestore(tmp_path), Crash(9)], **FIT)
    path = tmp_path / BackupAndRestore.FILENAME
    path.write_bytes(path.read_bytes()[:-100])
    with pytest.raises(ValueError, match=str(path)):
        small_model().fit(x, y, callbacks=[BackupAndRestore(tmp_path)], **FIT)


def test_delete_checkpoint_false_keeps_the_backup_of_a_completed_run(tmp_path):
    x, y = data()
    small_model().fit(x, y, callbacks=[BackupAndRestore(tmp_path, delete_checkpoint=False)], **FIT)
    assert os.listdir(tmp_path) == [BackupAndRestore.FILENAME]
    model, backup = small_model(), BackupAndRestore(tmp_path, delete_checkpoint=False)
    history = model.fit(x, y, callbacks=[backup], **FIT)
    assert backup.restored == (EPOCHS, 0) and history.history == {}  # nothing left to train


@pytest.mark.parametrize("save_freq", [0, -1, 1.5, "batch", True])
def test_save_freq_must_be_epoch_or_a_positive_number_of_batches(tmp_path, save_freq):
    with pytest.raises(ValueError, match="save_freq"):
        BackupAndRestore(tmp_path, save_freq=save_freq)


class Batches:
    """A dataset of batches (keras.utils.PyDataset's protocol)."""

    def __init__(self, x, y, batch_size):
        self.x, self.y, self.batch_size = x, y, batch_size

    def __len__(self):
        return -(-len(self.x) // self.batch_size)

    def __getitem__(self, i):
        rows = slice(i * self.batch_size, (i + 1) * self.batch_size)
        return self.x[rows], self.y[rows]


@pytest.mark.parametrize("stop_at", [3, 9])
def test_a_shuffled_dataset_stopped_mid_epoch_continues_with_the_same_batch_order(tmp_path, stop_at):
    x, y = data()
    fit = dict(epochs=2, verbose=0)
    reference = small_model()
    reference.fit(Batches(x, y, BATCH), **fit)
    with pytest.raises(RuntimeError):
        small_model().fit(Batches(x, y, BATCH), callbacks=[BackupAndRestore(tmp_path, save_freq=1), Crash(stop_at)],
                          **fit)
    model, backup = small_model(), BackupAndRestore(tmp_path, save_freq=1)
    model.fit(Batches(x, y, BATCH), callbacks=[backup], **fit)
    assert backup.restored == ((stop_at - 1) // 9, (stop_at - 1) % 9 + 1)
    assert_same_weights(model, reference)
