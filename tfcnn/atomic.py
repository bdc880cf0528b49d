"""Atomic file writes: a reader sees the old file or the new one, never half of one.

Every file the project writes for later (audio, cache entries, checkpoints, run records) goes
through :func:`atomic_path`: the content is written to a temporary file in the same folder and
moved into place with one ``os.replace``. A crash leaves at most a ``.<name>.*.tmp`` file, which
no reader takes for the real one.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

#: Permissions of written files (``mkstemp`` makes 0600 files; data should be readable).
FILE_MODE = 0o644


@contextmanager
def atomic_path(path: str | os.PathLike, *, fsync: bool = False) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success it replaces ``path`` in one step.

    Parameters
    ----------
    path : path-like
        The final file. Its folder is created if missing.
    fsync : bool
        Flush the temporary file to disk before the rename (for files that must survive a
        power cut, such as checkpoints).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        os.chmod(tmp, FILE_MODE)
        if fsync:
            with open(tmp, "rb+") as fh:
                os.fsync(fh.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def write_bytes_atomic(path: str | os.PathLike, data: bytes, *, fsync: bool = False) -> Path:
    """Write ``data`` to ``path`` atomically; returns the path."""
    with atomic_path(path, fsync=fsync) as tmp:
        tmp.write_bytes(data)
    return Path(path)


def write_text_atomic(path: str | os.PathLike, text: str) -> Path:
    """Write UTF-8 ``text`` to ``path`` atomically; returns the path."""
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return Path(path)


def write_json_atomic(path: str | os.PathLike, obj) -> Path:
    """Write ``obj`` as indented JSON (no NaN) to ``path`` atomically; returns the path."""
    return write_text_atomic(path, json.dumps(obj, indent=2, allow_nan=False) + "\n")
