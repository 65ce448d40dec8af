"""Model and weight files: one NumPy .npz archive holding a JSON description and the arrays.

Every write goes to a temporary file in the destination's directory and is renamed over the
destination, so a reader (or a crash) never sees half a file. Reading a file that is not a complete
rnnkit save raises ``ValueError`` naming the file and what is wrong with it, in well under a second and
without allocating more than the arrays the file really holds (see Archive).
"""

from __future__ import annotations

import json
import os
import secrets

import numpy as np

from .checked_npz import CheckedNpz, NpzError

MODEL_FORMAT = "rnnkit-model"
WEIGHTS_FORMAT = "rnnkit-weights"
FORMAT_VERSION = 1


def _temporary_name(path, pid, tag) -> str:
    return os.path.join(os.path.dirname(os.path.abspath(path)), f".{os.path.basename(path)}.{pid}.{tag}.tmp")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # exists, owned by someone else
        return True
    return True


def remove_stale_temporaries(path) -> None:
    """Deletes the temporary files of saves to path whose process died mid-save (killed, or the machine
    went down); those of a process still running are left to it."""
    path = os.fspath(path)
    prefix = os.path.basename(_temporary_name(path, "", ""))[: -len("..tmp")]
    directory = os.path.dirname(os.path.abspath(path))
    try:
        names = os.listdir(directory)
    except OSError:
        return
    for name in names:
        pid, dot, tag = name[len(prefix):-len(".tmp")].partition(".")
        if name.startswith(prefix) and name.endswith(".tmp") and dot and pid.isdigit() and len(tag) == 8:
            if int(pid) != os.getpid() and not _alive(int(pid)):
                try:
                    os.unlink(os.path.join(directory, name))
                except FileNotFoundError:  # another process cleaned it first
                    pass


def atomic_write(path, write) -> None:
    """Calls write(binary_file) on a temporary file, then renames it to path."""
    path = os.fspath(path)
    remove_stale_temporaries(path)
    tmp = _temporary_name(path, os.getpid(), secrets.token_hex(4))
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)  # the umask applies, as for open()
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def write_archive(path, kind: str, description: dict, arrays: list) -> None:
    header = dict(format=kind, format_version=FORMAT_VERSION, **description)
    named = {f"array_{i:05d}": np.asarray(a) for i, a in enumerate(arrays)}
    atomic_write(path, lambda f: np.savez(f, __header__=np.array(json.dumps(header)), **named))


class ArchiveError(ValueError):
    """A file that is not a complete, well-formed rnnkit archive of the expected kind."""


def _refuse_constant(name):
    raise ValueError(f"{name} is not a number JSON allows")


class Archive:
    """An rnnkit archive opened for checked reading: ``header`` (the JSON description, a dict) and
    ``specs`` (dtype and shape of each array, from the arrays' own headers) are known before any
    array is read, so a caller compares them with what it expects and reads only what fits. The
    checks of the file itself (a regular file, sizes that add up, no zip bomb) are CheckedNpz's."""

    def __init__(self, path, kind: str):
        self.path = os.fspath(path)
        try:
            self._npz = CheckedNpz(self.path)
        except FileNotFoundError:
            raise
        except (NpzError, OSError) as e:
            raise ArchiveError(f"{self.path}: not a readable rnnkit file: {e}") from None
        try:
            self.header = self._read_header()
            self.specs = self._array_specs()
            if self.header.get("format") != kind:
                raise ArchiveError(f"expected a {kind} file, found {self.header.get('format')!r}")
            if self.header.get("format_version") != FORMAT_VERSION:
                raise ArchiveError(f"format version {self.header.get('format_version')!r} is not supported")
        except (NpzError, ArchiveError, ValueError, RecursionError) as e:
            self.close()
            raise ArchiveError(f"{self.path}: not a readable rnnkit file: {e}") from None

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.close()

    def close(self) -> None:
        self._npz.close()

    def _read_header(self) -> dict:
        if "__header__" not in self._npz.names:
            raise ArchiveError("no rnnkit header")
        dtype, shape = self._npz.spec("__header__")
        if dtype.kind != "U" or shape != ():
            raise ArchiveError(f"its header is a {dtype} array of shape {shape}, not a text")
        if dtype.itemsize > MAX_HEADER_BYTES:
            raise ArchiveError(f"its header has {dtype.itemsize} bytes, more than a model description needs")
        header = json.loads(str(self._npz.read("__header__")), parse_constant=_refuse_constant)
        if not isinstance(header, dict):
            raise ArchiveError(f"its header is a JSON {type(header).__name__}, not an object")
        return header

    def _array_specs(self) -> list:
        names = sorted(n for n in self._npz.names if n.startswith("array_"))
        if names != [f"array_{i:05d}" for i in range(len(names))]:
            raise ArchiveError(f"its arrays are not numbered array_00000 onwards: {names[:5]}")
        specs = [self._npz.spec(name) for name in names]
        for name, (dtype, _) in zip(names, specs):
            if dtype.kind not in "fiu":
                raise ArchiveError(f"member {name} is {dtype}, not numbers")
        return specs

    def read(self, index: int, expected_dtype, expected_shape, what: str) -> np.ndarray:
        """Array `index`, after checking that it is a `expected_dtype` array of `expected_shape`."""
        dtype, shape = self.specs[index]
        if tuple(shape) != tuple(expected_shape):
            raise ArchiveError(f"{self.path}: {what} has shape {tuple(shape)}, expected {tuple(expected_shape)}")
        expected_dtype = np.dtype(expected_dtype)
        if dtype.kind != expected_dtype.kind or dtype.itemsize != expected_dtype.itemsize:
            raise ArchiveError(f"{self.path}: {what} is {dtype}, expected {expected_dtype}")
        try:
            return self._npz.read(f"array_{index:05d}")
        except NpzError as e:
            raise ArchiveError(f"{self.path}: {what} cannot be read: {e}") from None


MAX_HEADER_BYTES = 16 * 2**20


def open_archive(path, kind: str) -> Archive:
    """The archive at path, checked as far as can be without reading its arrays (see Archive)."""
    return Archive(path, kind)
