"""The shared thread pool on more threads than cores: part counts changing between calls, and fork."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

import rnnkit
from rnnkit import kernels

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

