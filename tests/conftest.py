"""Fixtures shared by the test modules."""

import os
import signal

import pytest

# A shell starts a background job with SIGINT ignored, and Python then keeps it ignored: the tests that
# press Ctrl-C (signal.raise_signal, or SIGINT to a child) need it delivered, as in a terminal. With a
# handler of Python's own, children started by the tests begin with the default disposition too.
if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)

REAL_DATA = os.environ.get("RNNKIT_DATA")
USER_CACHE = os.environ.get("XDG_CACHE_HOME")  # as the run started, before any test isolates its cache


@pytest.fixture()
def real_data(monkeypatch):
    """The real IMDB dataset through RNNKIT_DATA (CI points it at the shared copy), with the cache
    the run started with, so the dataset is parsed once. Skips when RNNKIT_DATA is not set."""
    if not REAL_DATA:
        pytest.skip("RNNKIT_DATA is not set (CI sets it to the shared dataset)")
    monkeypatch.setenv("RNNKIT_DATA", REAL_DATA)
    if USER_CACHE:
        monkeypatch.setenv("XDG_CACHE_HOME", USER_CACHE)
    else:
        monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
    return REAL_DATA
