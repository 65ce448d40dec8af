"""Threads: the thread setting, kernels on any number of threads (more than the cores included) giving
the same bits as on one, calls from several Python threads at once, part counts changing from call to
call, and a process forked after the kernels ran. Every bit-identity test across thread counts is here."""

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

import rnnkit
from rnnkit import kernels

from cells import (
    CELLS,
    assert_close,
    assert_same_bits,
    backward,
    forward,
    gradient_names,
    loss_gradients,
    make_problem,
    reference_step,
    train_step,
    with_each_thread_count,
)


def python(code, **env):
    full_env = dict(os.environ)
    full_env.update(env)
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=full_env)


# --- the thread setting --------------------------------------------------------------------------


def test_rnnkit_num_threads_sets_the_default():
    done = python("import rnnkit; print(rnnkit.get_num_threads())", RNNKIT_NUM_THREADS="3")
    assert done.stdout.strip() == "3"
    bad = python("import rnnkit", RNNKIT_NUM_THREADS="many")
    assert bad.returncode != 0 and "RNNKIT_NUM_THREADS must be a positive integer, got 'many'" in bad.stderr


def test_default_thread_count_is_the_cores_this_process_may_use():
    done = python("import rnnkit, os; print(rnnkit.get_num_threads(), len(os.sched_getaffinity(0)))",
                  RNNKIT_NUM_THREADS="")
    threads, cores = done.stdout.split()
    assert threads == cores


def test_set_num_threads_rejects_zero():
    with pytest.raises(ValueError, match=r"set_num_threads: expected a thread count >= 1, got 0"):
        rnnkit.set_num_threads(0)


# --- the same bits for any thread count ----------------------------------------------------------


def test_token_path_and_lengths_give_the_same_bits_for_any_thread_count():
    previous = rnnkit.get_num_threads()
    try:
        for cell in ("simple_rnn", "lstm", "gru"):
            p = make_problem(cell, 45, 70, 6, 19, dtype=np.float32, initial_state=True)
            table = np.random.default_rng(1).standard_normal((40, 6)).astype(np.float32)
            ids = np.random.default_rng(2).integers(0, 40, (45, 70))
            lengths = np.random.default_rng(3).integers(0, 71, 45)
            runs = []
            for n in (1, 2, 3):
                rnnkit.set_num_threads(n)
                fwd = forward(kernels, cell, dict(p, x=ids), embeddings=table, lengths=lengths, padding="post")
                runs.append((fwd, backward(kernels, cell, fwd, *loss_gradients(cell, fwd, "both"))))
            for fwd, grads in runs[1:]:
                np.testing.assert_array_equal(fwd.outputs, runs[0][0].outputs)
                for name in gradient_names(cell)[1:] + ["dembeddings"]:
                    np.testing.assert_array_equal(getattr(grads, name), getattr(runs[0][1], name), err_msg=name)
    finally:
        rnnkit.set_num_threads(previous)


@pytest.mark.parametrize("cell", CELLS)
def test_results_do_not_depend_on_the_thread_count(cell):
    p = make_problem(cell, 37, 60, 5, 19, dtype=np.float32, initial_state=True)
    assert_same_bits(cell, with_each_thread_count(lambda n: train_step(cell, p), threads=(1, 2, 3)))


@pytest.mark.parametrize("lengths", [None, "random"])
@pytest.mark.parametrize("cell", CELLS)
def test_large_batches_match_the_reference_with_the_same_bits_for_any_thread_count(cell, lengths):
    """600 rows: each thread runs several blocks of rows per step, and the weight-gradient products
    cover more rows than one block; 1 to 4 threads give the reference's gradients and the same bits."""
    batch, timesteps = 600, 9
    options = {}
    if lengths:
        options = dict(lengths=np.random.default_rng(5).integers(0, timesteps + 1, batch), padding="post")
    p = make_problem(cell, batch, timesteps, 3, 4, initial_state=True, seed=6)
    _, d, ref_grads = reference_step(cell, p, **options)
    single = make_problem(cell, batch, timesteps, 3, 4, dtype=np.float32, initial_state=True, seed=6)

    def run(n):
        grads = backward(kernels, cell, forward(kernels, cell, p, **options), *d)
        for name in gradient_names(cell):
            np.testing.assert_allclose(getattr(grads, name), getattr(ref_grads, name), rtol=1e-10,
                                       atol=1e-10, err_msg=f"{cell} {name}, {n} threads")
        return train_step(cell, single, **options)

    assert_same_bits(cell, with_each_thread_count(run))


@pytest.mark.parametrize("padding", ["pre", "post"])
@pytest.mark.parametrize("cell", CELLS)
def test_lengths_across_many_step_chunks_match_the_reference_for_any_thread_count(cell, padding):
    """The backward runs 16 steps at a time, and the step loops ask for x and d_outputs two steps
    ahead: sequences ending inside a chunk, on its border, in the first step and one or two steps
    before another, with every thread count, inference and training."""
    p = make_problem(cell, 9, 40, 3, 5, initial_state=True, seed=4)
    lengths = [40, 0, 17, 16, 15, 33, 1, 32, 31]
    options = dict(lengths=lengths, padding=padding)
    ref, d, ref_grads = reference_step(cell, p, **options)

    def run(n):
        fwd = forward(kernels, cell, p, **options)
        assert_close(fwd.outputs, ref.outputs, 1e-10, f"outputs, {n} threads")
        inference = forward(kernels, cell, p, save_for_backward=False, **options)
        np.testing.assert_array_equal(inference.outputs, fwd.outputs)
        grads = backward(kernels, cell, fwd, *d)
        for name in gradient_names(cell):
            assert_close(getattr(grads, name), getattr(ref_grads, name), 1e-10, f"{name}, {n} threads")

    with_each_thread_count(run, threads=(1, 2, 3))



def lengths_with_edges(seed, batch, timesteps):
    """Random lengths in [0, timesteps] with the first three rows full and the next two empty."""
    lengths = np.random.default_rng(seed).integers(0, timesteps + 1, batch)
    lengths[:3], lengths[3:5] = timesteps, 0
    return lengths



def assert_reference_and_same_bits(cell, batch, timesteps, options, seed):
    """For 1 to 4 threads: outputs and gradients as the reference's (float64, 8 units), and in float32
    (16 units) the same bits for every thread count."""
    p = make_problem(cell, batch, timesteps, 3, 8, initial_state=True, seed=seed)
    ref, d, ref_grads = reference_step(cell, p, **options)
    single = make_problem(cell, batch, timesteps, 3, 16, dtype=np.float32, initial_state=True, seed=seed)

    def run(n):
        fwd = forward(kernels, cell, p, **options)
        assert_close(fwd.outputs, ref.outputs, 1e-10, f"outputs, {n} threads")
        grads = backward(kernels, cell, fwd, *d)
        for name in gradient_names(cell):
            assert_close(getattr(grads, name), getattr(ref_grads, name), 1e-10, f"{name}, {n} threads")
        return train_step(cell, single, **options)

    assert_same_bits(cell, with_each_thread_count(run))



@pytest.mark.parametrize("padding", [None, "pre", "post"])
@pytest.mark.parametrize("cell", CELLS)
def test_weight_gradients_summed_over_row_slices_give_the_reference_and_the_same_bits(cell, padding):
    """From 64 rows on, the backward sums each weight and bias gradient over two fixed slices of the
    rows (those each of two threads runs; with lengths, re-split every 16 steps) and adds the slices
    up at the end; with three or four threads, a slice's columns are split among its threads. Every
    thread count gives the reference's gradients and, in float32, the same bits."""
    batch, timesteps = 70, 40
    options = dict(lengths=lengths_with_edges(11, batch, timesteps), padding=padding) if padding else {}
    assert_reference_and_same_bits(cell, batch, timesteps, options, seed=12)



@pytest.mark.parametrize("padding", [None, "post"])
@pytest.mark.parametrize("cell", CELLS)
def test_token_gradients_summed_over_row_slices_match_the_dense_path_with_the_same_bits(cell, padding):
    """The token path sums the d_gates of each id into a table per slice of the rows and adds the
    tables up after the loop: its gradients are those of the dense path fed the looked-up rows, with
    dembeddings their dx summed by id, and the same bits for 1 to 4 threads."""
    batch, timesteps, vocabulary = 70, 40, 25
    rng = np.random.default_rng(13)
    table = rng.standard_normal((vocabulary, 3))
    ids = rng.integers(0, vocabulary, (batch, timesteps))
    options = dict(lengths=lengths_with_edges(15, batch, timesteps), padding=padding) if padding else {}
    p = make_problem(cell, batch, timesteps, 3, 8, initial_state=True, seed=14)

    def run(n):
        tokens = forward(kernels, cell, dict(p, x=ids), embeddings=table, **options)
        d = loss_gradients(cell, tokens, "both")
        grads = backward(kernels, cell, tokens, *d)
        dense = backward(kernels, cell, forward(kernels, cell, dict(p, x=table[ids]), **options), *d)
        for name in gradient_names(cell)[1:]:
            assert_close(getattr(grads, name), getattr(dense, name), 1e-10, f"{name}, {n} threads")
        by_id = np.zeros_like(table)
        np.add.at(by_id, ids, dense.dx)
        assert_close(grads.dembeddings, by_id, 1e-10, f"dembeddings, {n} threads")
        single = dict(p, x=ids, **{k: v.astype(np.float32) for k, v in p.items() if k != "x"})
        fwd32 = forward(kernels, cell, single, embeddings=table.astype(np.float32), **options)
        return backward(kernels, cell, fwd32, *loss_gradients(cell, fwd32, "both")).dembeddings

    runs = with_each_thread_count(run)
    for n, dembeddings in zip((2, 3, 4), runs[1:]):
        np.testing.assert_array_equal(dembeddings, runs[0], err_msg=f"dembeddings, {n} threads")



@pytest.mark.parametrize("padding", ["pre", "post"])
@pytest.mark.parametrize("cell", CELLS)
def test_thread_borders_at_single_rows_give_the_reference_and_the_same_bits(cell, padding):
    """With lengths, the threads split the rows where their real steps balance, for the whole forward
    and anew for every 16 steps of the backward. At 8 float64 units (16 float32) a state row fills a
    cache line, so a border may fall after any row: every split gives the reference's results, and
    float32 gives the same bits for 1 to 4 threads."""
    batch, timesteps = 45, 70
    options = dict(lengths=lengths_with_edges(8, batch, timesteps), padding=padding)
    assert_reference_and_same_bits(cell, batch, timesteps, options, seed=9)


# --- calls from several Python threads -----------------------------------------------------------


@pytest.mark.parametrize("cell", CELLS)
def test_concurrent_calls_from_python_threads_are_each_correct(cell):
    problems = [make_problem(cell, 5, 40, 6, 9, seed=s, initial_state=True) for s in range(4)]
    expected = [forward(kernels, cell, p) for p in problems]
    expected_grads = [backward(kernels, cell, f, *loss_gradients(cell, f, "both")) for f in expected]
    results = [None] * len(problems)

    def work(i):
        for _ in range(5):
            fwd = forward(kernels, cell, problems[i])
            results[i] = (fwd, backward(kernels, cell, fwd, *loss_gradients(cell, fwd, "both")))

    threads = [threading.Thread(target=work, args=(i,)) for i in range(len(problems))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for (fwd, grads), want, want_grads in zip(results, expected, expected_grads):
        np.testing.assert_array_equal(fwd.outputs, want.outputs)
        for name in gradient_names(cell):
            np.testing.assert_array_equal(getattr(grads, name), getattr(want_grads, name))


def test_kernels_release_the_gil_while_they_run():
    """Python code keeps running in another thread during a long kernel call."""
    p = make_problem("lstm", 64, 3000, 32, 64, dtype=np.float32)
    done = threading.Event()
    spins_during_call = 0

    def run():
        forward(kernels, "lstm", p)
        done.set()

    worker = threading.Thread(target=run)
    worker.start()
    while not done.is_set():
        spins_during_call += 1
    worker.join()
    assert spins_during_call > 1000


def test_set_num_threads_while_other_threads_run_kernels_changes_no_result():
    problems = {cell: make_problem(cell, 33, 50, 6, 17, dtype=np.float32, seed=3, initial_state=True) for cell in CELLS}
    expected = {}
    for cell, p in problems.items():
        fwd = forward(kernels, cell, p)
        expected[cell] = (fwd, backward(kernels, cell, fwd, *loss_gradients(cell, fwd, "both")))
    stop = threading.Event()
    failures = []

    def run_kernels(cell):
        want_fwd, want_grads = expected[cell]
        for _ in range(15):
            fwd = forward(kernels, cell, problems[cell])
            grads = backward(kernels, cell, fwd, *loss_gradients(cell, fwd, "both"))
            if not np.array_equal(fwd.outputs, want_fwd.outputs) or not all(
                    np.array_equal(getattr(grads, n), getattr(want_grads, n)) for n in gradient_names(cell)):
                failures.append(cell)

    def change_thread_count():
        n = 0
        while not stop.is_set():
            rnnkit.set_num_threads(1 + n % 4)
            n += 1

    previous = rnnkit.get_num_threads()
    changer = threading.Thread(target=change_thread_count)
    workers = [threading.Thread(target=run_kernels, args=(cell,)) for cell in CELLS for _ in range(2)]
    try:
        changer.start()
        for t in workers:
            t.start()
        for t in workers:
            t.join()
    finally:
        stop.set()
        changer.join()
        rnnkit.set_num_threads(previous)
    assert failures == []


# --- the pool: part counts changing between calls, fork ------------------------------------------


STRESS = Path(__file__).with_name("thread_stress.py")


def run_stress(threads, rounds, timeout):
    try:
        done = subprocess.run([sys.executable, str(STRESS), "--threads", *map(str, threads), "--rounds", str(rounds)],
                              capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        pytest.fail(f"{rounds} rounds on {threads} threads did not finish in {timeout} s: the pool hung")
    assert done.returncode == 0, f"exit status {done.returncode}: {done.stderr[-2000:]}"
    assert done.stdout.startswith("ok "), done.stdout


def test_calls_alternating_two_and_three_parts_on_three_threads_neither_hang_nor_change_bits():
    run_stress([3], rounds=250, timeout=180)


def test_calls_alternating_part_counts_on_three_and_eight_threads_neither_crash_nor_change_bits():
    run_stress([3, 8], rounds=100, timeout=180)


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork()")
def test_kernels_run_on_all_threads_in_a_child_forked_after_the_parent_used_them():
    x = np.random.default_rng(0).standard_normal((64, 6, 4)).astype(np.float32)
    kernel, recurrent = np.full((4, 32), 0.1, np.float32), np.full((8, 32), 0.05, np.float32)
    previous = rnnkit.get_num_threads()
    rnnkit.set_num_threads(4)
    try:
        before = kernels.lstm_forward(x, kernel, recurrent, np.zeros(32, np.float32)).h
        read, write = os.pipe()
        pid = os.fork()
        if pid == 0:  # the child: the parent's workers do not exist here
            status = 1
            try:
                h = kernels.lstm_forward(x, kernel, recurrent, np.zeros(32, np.float32)).h
                status = 0 if h.tobytes() == before.tobytes() else 3
            finally:
                os.write(write, bytes([status]))
                os._exit(status)
        os.close(write)
        deadline = time.monotonic() + 60
        while os.waitpid(pid, os.WNOHANG) == (0, 0):
            if time.monotonic() > deadline:  # as a child of a process that used OpenMP's runtime would
                os.kill(pid, signal.SIGKILL)
                os.waitpid(pid, 0)
                pytest.fail("the forked child's kernel call hung")
            time.sleep(0.01)
        assert os.read(read, 1) == b"\x00", "the child's result differs from the parent's"
        os.close(read)
    finally:
        rnnkit.set_num_threads(previous)
