"""Server-side paths a web user may name: allowed roots, confinement, safe opening, display.

The app lets a user type a folder (the data set) or a file (Predict's "a file on this
machine"). Such a path is only used when, after resolving every symlink
(``os.path.realpath``), it lies inside one of the operator's allowed roots: the project's
``data/`` folder, the default data set, and the folders listed in ``TFCNN_ALLOWED_ROOTS``
(``os.pathsep``-separated). Files must be regular files (no devices, FIFOs or sockets): the
type is checked on the opened descriptor, which is opened non-blocking so a FIFO cannot
hang the reader.

Every refused path raises :class:`~tfcnn.errors.AccessError` with the one message
:data:`REFUSED`, whatever the reason (outside the roots, missing, unreadable, not a regular
file), so the answer reveals nothing about the server's files.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterable, Mapping
from pathlib import Path

from tfcnn.errors import AccessError
from tfcnn.locations import DATA_DIR, REPO_ROOT, default_data_dir

#: The project's own data folder: always an allowed root.
PROJECT_DATA_DIR = DATA_DIR

#: Operator-set extra roots, separated by ``os.pathsep``.
ENV_ALLOWED_ROOTS = "TFCNN_ALLOWED_ROOTS"
#: Set (to ``1``) in the environment of the trainers the app launches: they then read only
#: the tracks inside the allowed roots, as the app's pages do (:func:`confinement`).
ENV_CONFINE = "TFCNN_CONFINE_DATA"

#: The answer for every refused path (the same for missing, forbidden or outside files).
REFUSED = ("this path cannot be used: only regular files and folders inside the allowed "
           "data folders can be read (the operator sets them with TFCNN_ALLOWED_ROOTS)")


def folder_refusal(path: str | bytes | os.PathLike, roots: Iterable[Path], *, private: bool,
                   env: Mapping[str, str] | None = None) -> str:
    """The answer to a refused data-set folder: :data:`REFUSED`, or why and what to do.

    Parameters
    ----------
    path : path-like
        What the user named.
    roots : iterable of Path
        From :func:`allowed_roots`.
    private : bool, keyword-only
        True when the app serves this machine only and has no password: its user is the
        operator, who may learn whether a path exists, the allowed folders and how to add
        one. False (exposed): the one message :data:`REFUSED`, which reveals nothing.
    env : mapping, optional
        Environment holding the current ``TFCNN_ALLOWED_ROOTS`` (default ``os.environ``).

    Returns
    -------
    str
        Plain text (no markup).
    """
    if not private:
        return REFUSED
    shown = display(path)
    try:
        resolved = Path(os.path.realpath(os.path.abspath(os.fsdecode(path))))
        exists, is_dir = resolved.exists(), resolved.is_dir()
    except (OSError, ValueError, TypeError):
        return f"{shown} is not a usable path"
    roots = tuple(roots)
    inside = any(resolved == root or resolved.is_relative_to(root) for root in roots)
    listed = ", ".join(str(root) for root in roots)
    if not exists:
        return f"{shown} does not exist. The app may read folders inside: {listed}"
    if not is_dir:
        return f"{shown} is not a folder"
    if not inside:
        current = (os.environ if env is None else env).get(ENV_ALLOWED_ROOTS, "").strip(os.pathsep)
        value = os.pathsep.join(filter(None, [current, str(resolved)]))
        return (f"{shown} is outside the folders this app may read ({listed}). To add it, "
                f"restart the app with: {ENV_ALLOWED_ROOTS}={value} make run")
    return f"{shown} cannot be read (permissions?)"


def display(path: str | bytes | os.PathLike) -> str:
    """A printable form of a path whose bytes may not be valid UTF-8.

    Undecodable bytes appear as ``\\xNN`` escapes, so printing never raises
    ``UnicodeEncodeError`` and the user still sees which file is meant.
    """
    return os.fsencode(path).decode("utf-8", errors="backslashreplace")


def allowed_roots(extra: Iterable[str | os.PathLike] = (),
                  env: Mapping[str, str] | None = None) -> tuple[Path, ...]:
    """The allowed roots, symlinks resolved: ``data/``, ``extra`` and ``$TFCNN_ALLOWED_ROOTS``.

    Parameters
    ----------
    extra : iterable of path-like
        Roots the caller adds (the app adds its default data set folder).
    env : mapping, optional
        Environment to read ``TFCNN_ALLOWED_ROOTS`` from (default ``os.environ``).

    Returns
    -------
    tuple of Path
        Absolute, resolved, without duplicates, in the order given. Empty entries of the
        variable are ignored; a relative entry is taken relative to the project folder.
    """
    env = os.environ if env is None else env
    listed = [p for p in env.get(ENV_ALLOWED_ROOTS, "").split(os.pathsep) if p.strip()]
    roots: list[Path] = []
    for entry in [PROJECT_DATA_DIR, *extra, *listed]:
        path = Path(entry)
        if not path.is_absolute():
            path = REPO_ROOT / path
        resolved = Path(os.path.realpath(path))
        if resolved not in roots:
            roots.append(resolved)
    return tuple(roots)


def is_inside(path: str | os.PathLike, roots: Iterable[Path]) -> bool:
    """Whether ``path``, every symlink resolved, lies inside one of ``roots``."""
    try:
        confine(path, roots)
    except AccessError:
        return False
    return True


def confinement(extra: Iterable[str | os.PathLike] = (),
                env: Mapping[str, str] | None = None) -> tuple[Path, ...] | None:
    """The roots a process must keep its tracks in: the app's (:func:`allowed_roots` plus
    the default data set) and ``extra`` (the data folder itself, which the app checked
    when it was chosen) when :data:`ENV_CONFINE` is set, else None (the CLI reads what
    its user names)."""
    env = os.environ if env is None else env
    if env.get(ENV_CONFINE) != "1":
        return None
    return allowed_roots(extra=[default_data_dir(), *extra], env=env)


def confine(path: str | os.PathLike, roots: Iterable[Path]) -> Path:
    """``path`` with symlinks resolved, if it lies inside one of ``roots``.

    A relative path is resolved against the current folder. Raises :class:`AccessError`
    (:data:`REFUSED`) otherwise; nothing is opened.
    """
    try:
        resolved = Path(os.path.realpath(os.path.abspath(os.fspath(path))))
    except (OSError, ValueError, TypeError):  # NUL bytes, a symlink loop, ...
        raise AccessError(REFUSED) from None
    if not any(resolved == root or resolved.is_relative_to(root) for root in roots):
        raise AccessError(REFUSED)
    return resolved


def confine_dir(path: str | os.PathLike, roots: Iterable[Path]) -> Path:
    """:func:`confine`, and the result must be an existing folder (else :data:`REFUSED`)."""
    resolved = confine(path, roots)
    try:
        if stat.S_ISDIR(os.stat(resolved).st_mode):
            return resolved
    except (OSError, ValueError):
        pass
    raise AccessError(REFUSED)


def read_confined_file(path: str | os.PathLike, roots: Iterable[Path], *,
                       max_bytes: int) -> bytes:
    """The bytes of a regular file inside ``roots``, at most ``max_bytes`` of them.

    The file is opened non-blocking and without following a final symlink (the path is
    already resolved), and its type is checked on the open descriptor, so a FIFO, a device
    or a file swapped after the check is never read.

    Parameters
    ----------
    path : path-like
    roots : iterable of Path
        From :func:`allowed_roots`.
    max_bytes : int, keyword-only
        Size limit.

    Raises
    ------
    AccessError
        :data:`REFUSED` for every path that is outside, missing, unreadable or not a regular
        file; a size message for an allowed file over ``max_bytes``.
    """
    resolved = confine(path, roots)
    flags = os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_NOFOLLOW", 0)
    try:
        fd = os.open(resolved, flags)
    except (OSError, ValueError):
        raise AccessError(REFUSED) from None
    info = os.fstat(fd)
    if not stat.S_ISREG(info.st_mode):
        os.close(fd)
        raise AccessError(REFUSED)
    with os.fdopen(fd, "rb") as fh:
        if info.st_size > max_bytes:
            raise AccessError(f"{display(path)}: file is {info.st_size / 2**20:.1f} MB; the "
                              f"limit is {max_bytes / 2**20:.0f} MB")
        try:
            data = fh.read(max_bytes + 1)
        except OSError:
            raise AccessError(REFUSED) from None
    if len(data) > max_bytes:  # grew since fstat
        raise AccessError(f"{display(path)}: file is over the {max_bytes / 2**20:.0f} MB limit")
    return data
