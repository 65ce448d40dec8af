"""Model and weight files: one NumPy .npz archive holding a JSON description and the arrays.

Every write goes to a temporary file in the destination's directory and is renamed over the
destination, so a reader (or a crash) never sees half a file. Reading a file that is not a complete
rnnkit save raises ``ValueError`` naming the file and what is wrong with it.
"""

from __future__ import annotations

import json
import os
import secrets
import zipfile

import numpy as np

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


def read_archive(path, kind: str):
    """(description, arrays) of a file written by write_archive, or ValueError saying what is wrong."""
    path = os.fspath(path)
    try:
        with np.load(path, allow_pickle=False) as data:
            if not isinstance(data, np.lib.npyio.NpzFile) or "__header__" not in data.files:
                raise ValueError("no rnnkit header")
            header = json.loads(str(data["__header__"]))
            names = sorted(n for n in data.files if n.startswith("array_"))
            arrays = [data[n] for n in names]
    except FileNotFoundError:
        raise
    except (OSError, ValueError, EOFError, KeyError, zipfile.BadZipFile, json.JSONDecodeError) as e:
        raise ValueError(f"{path}: not a readable rnnkit file (truncated or corrupted?): {e}") from None
    if header.get("format") != kind:
        raise ValueError(f"{path}: expected a {kind} file, found {header.get('format')!r}")
    if header.get("format_version") != FORMAT_VERSION:
        raise ValueError(f"{path}: format version {header.get('format_version')} is not supported")
    return header, arrays
