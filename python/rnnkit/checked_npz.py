"""NumPy .npz files read as untrusted input: rnnkit's own saves, its dataset cache, Keras' imdb.npz.

A CheckedNpz opens only a regular file (a FIFO would block, a device never end), refuses members
that inflate far beyond their stored size (a zip bomb), and reads each member's .npy header first:
its dtype and shape are known, and checked against the member's size, before any data is read. So a
caller compares them with what it expects, and nothing larger than the file really holds is
allocated. Every problem raises NpzError (a ValueError) naming the member; a missing file raises
FileNotFoundError.
"""

from __future__ import annotations

import math
import os
import stat
import tokenize
import zipfile

import numpy as np

# rnnkit stores arrays uncompressed and Keras compresses ragged lists a few times at most: a member
# that inflates more than this is not data.
MAX_EXPANSION = 64

# What reading a damaged zip or .npy header can raise, beside ValueError.
_READ_ERRORS = (OSError, EOFError, ValueError, zipfile.BadZipFile, RuntimeError, NotImplementedError, SyntaxError,
                OverflowError, tokenize.TokenError)


class NpzError(ValueError):
    pass


def open_regular_file(path, what="file"):
    """A binary file object for path, which must be a regular file (after symlinks)."""
    # O_NONBLOCK: opening a FIFO does not wait for a writer; reads of a regular file ignore it.
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0))
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise NpzError(f"not a regular {what}")
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


class CheckedNpz:
    def __init__(self, path):
        self._file = self._zip = None
        self._file = open_regular_file(path)
        try:
            self._zip = zipfile.ZipFile(self._file)
            self._members = {}
            for info in self._zip.infolist():
                if info.file_size > MAX_EXPANSION * info.compress_size + 4096:
                    raise NpzError(f"member {info.filename} would expand from {info.compress_size} to "
                                   f"{info.file_size} bytes")
                if info.filename.endswith(".npy"):
                    self._members[info.filename[:-4]] = info
        except NpzError:
            self.close()
            raise
        except _READ_ERRORS as e:
            self.close()
            raise NpzError(f"truncated or corrupted ({type(e).__name__}: {e})") from None

    @property
    def names(self):
        return list(self._members)

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.close()

    def close(self) -> None:
        for handle in (self._zip, self._file):
            if handle is not None:
                handle.close()

    def _open(self, name):
        """(stream after the .npy header, dtype, shape, fortran_order, data bytes), all checked."""
        if name not in self._members:
            raise NpzError(f"no member {name}")
        info = self._members[name]
        stream = self._zip.open(info)
        try:
            version = np.lib.format.read_magic(stream)
            if version not in ((1, 0), (2, 0)):
                raise NpzError(f"member {name}: .npy version {version} is not supported")
            read_header = np.lib.format.read_array_header_1_0 if version == (1, 0) else \
                np.lib.format.read_array_header_2_0
            shape, fortran_order, dtype = read_header(stream)
            data_bytes = info.file_size - stream.tell()
            if not dtype.hasobject:
                if dtype.kind not in "biufU":
                    raise NpzError(f"member {name}: dtype {dtype} is not a number or text type")
                declared = math.prod(shape) * dtype.itemsize
                if declared != data_bytes:
                    raise NpzError(f"member {name}: its header declares {declared} bytes of {dtype} {shape}, "
                                   f"the member holds {data_bytes}")
        except BaseException:
            stream.close()
            raise
        return stream, dtype, tuple(shape), fortran_order, data_bytes

    def _checked(self, name, action):
        try:
            return action()
        except NpzError:
            raise
        except _READ_ERRORS as e:
            raise NpzError(f"member {name} is truncated or corrupted ({type(e).__name__}: {e})") from None

    def spec(self, name):
        """(dtype, shape) of a member, from its header alone."""
        def read_spec():
            stream, dtype, shape, _, _ = self._open(name)
            stream.close()
            return dtype, shape

        return self._checked(name, read_spec)

    def read(self, name) -> np.ndarray:
        """A member of numbers or text, as a writeable array in native byte order."""
        def read_array():
            stream, dtype, shape, fortran_order, data_bytes = self._open(name)
            with stream:
                if dtype.hasobject:
                    raise NpzError(f"member {name} holds Python objects (a pickle), not numbers")
                data = stream.read(data_bytes)  # to the member's end, so that its CRC is checked
            array = np.frombuffer(data, dtype=dtype)
            array = array.reshape(shape[::-1]).T if fortran_order else array.reshape(shape)
            return np.array(array, dtype=dtype.newbyteorder("="))

        return self._checked(name, read_array)

    def pickled(self, name, max_bytes: int):
        """(shape, the pickle's bytes) of a member holding Python objects, at most max_bytes of them;
        the caller unpickles it with an unpickler that trusts nothing."""
        def read_pickle():
            stream, dtype, shape, _, data_bytes = self._open(name)
            with stream:
                if not dtype.hasobject:
                    raise NpzError(f"member {name} holds {dtype} numbers, not Python objects")
                if data_bytes > max_bytes:
                    raise NpzError(f"member {name} has {data_bytes} bytes, more than the {max_bytes} it may have")
                return shape, stream.read(data_bytes)

        return self._checked(name, read_pickle)
