"""Process identity: is the PID a run folder names still that run's own ``tfcnn train``?

A PID alone is not an identity: after the trainer exits (or the machine restarts) the number
may be reused by any process, and signalling it would hit an innocent one. A process is
identified by its PID together with its start time (psutil's ``create_time``, unique per PID
within one boot) and its command line; the app records both when it launches a run and
compares them again before sending any signal.
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys
from dataclasses import asdict, dataclass

import psutil


@dataclass(frozen=True)
class ProcessIdentity:
    """What identifies one process: PID, start time (seconds since the epoch), command line."""

    pid: int
    started: float
    cmdline: tuple[str, ...]

    def to_dict(self) -> dict:
        return {**asdict(self), "cmdline": list(self.cmdline)}

    @classmethod
    def from_dict(cls, record: object) -> "ProcessIdentity | None":
        """The identity stored by :meth:`to_dict`, or None when ``record`` is not one."""
        if not isinstance(record, dict):
            return None
        pid, started, cmdline = record.get("pid"), record.get("started"), record.get("cmdline")
        if not (isinstance(pid, int) and pid > 0 and isinstance(started, (int, float))
                and isinstance(cmdline, list) and all(isinstance(a, str) for a in cmdline)):
            return None
        return cls(pid=pid, started=float(started), cmdline=tuple(cmdline))


def identify(pid: int) -> ProcessIdentity | None:
    """The identity of the live (not zombie) process ``pid``, or None when there is none."""
    try:
        process = psutil.Process(int(pid))
        with process.oneshot():
            if process.status() in (psutil.STATUS_ZOMBIE, psutil.STATUS_DEAD):
                return None
            return ProcessIdentity(pid=process.pid, started=process.create_time(),
                                   cmdline=tuple(process.cmdline()))
    except (psutil.Error, ValueError, OverflowError):  # gone, a zombie, or not ours to read
        return None


def is_alive(identity: ProcessIdentity | None) -> bool:
    """Whether ``identity``'s process is still running (same PID, start time and command)."""
    return identity is not None and identify(identity.pid) == identity


#: The ``tfcnn`` commands that write a folder given by ``--out`` and may be signalled there.
FOLDER_COMMANDS: tuple[str, ...] = ("train", "sweep")


def is_tfcnn_train(cmdline: tuple[str, ...] | list[str], run_dir: str | os.PathLike) -> bool:
    """Whether a command line is ``python -m tfcnn train ... --out <run_dir>`` (or ``sweep``,
    :data:`FOLDER_COMMANDS`: a sweep's folder is its ``--out``)."""
    args = list(cmdline)
    for i in range(len(args) - 2):
        if args[i:i + 2] == ["-m", "tfcnn"] and args[i + 2] in FOLDER_COMMANDS:
            break
    else:
        return False
    target = os.path.realpath(run_dir)
    outs = [args[j + 1] for j in range(len(args) - 1) if args[j] == "--out"]
    outs += [a.split("=", 1)[1] for a in args if a.startswith("--out=")]
    return any(os.path.realpath(out) == target for out in outs)


#: Outcomes of :func:`signal_run`.
SIGNALLED, GONE, STALE = "signalled", "gone", "stale"


def signal_run(run_dir: str | os.PathLike, *, recorded: ProcessIdentity | None,
               status_pid: int | None = None, sig: int = signal.SIGTERM) -> str:
    """Signal a run's trainer only if it is provably that run's ``tfcnn train`` process.

    Parameters
    ----------
    run_dir : path-like
        The run folder (the trainer's ``--out``).
    recorded : ProcessIdentity or None
        Identity recorded at launch. When given, the live process must match it exactly;
        the signal then goes to its whole process group when it leads one of its own.
    status_pid : int, optional
        The PID in ``status.json`` of a run started elsewhere (a terminal), used only without
        ``recorded``: the process must run ``tfcnn train ... --out run_dir``, a command line
        no reused PID has by chance.
    sig : int
        The signal (SIGTERM by default).

    Returns
    -------
    str
        :data:`SIGNALLED`; :data:`GONE` (no such process any more); or :data:`STALE` (a
        process with that PID exists but is not the run's trainer: nothing is sent).
    """
    if recorded is not None:
        current = identify(recorded.pid)
        if current is None:
            return GONE
        if current != recorded or not is_tfcnn_train(current.cmdline, run_dir):
            return STALE
        target = current
    elif status_pid is not None:
        current = identify(status_pid)
        if current is None:
            return GONE
        if not is_tfcnn_train(current.cmdline, run_dir):
            return STALE
        target = current
    else:
        return GONE
    try:
        if os.getpgid(target.pid) == target.pid and target.pid != os.getpgid(0):
            os.killpg(target.pid, sig)  # the trainer and the workers it started
        else:
            os.kill(target.pid, sig)
    except ProcessLookupError:
        return GONE
    return SIGNALLED


def die_with_parent(sig: int = signal.SIGTERM) -> None:
    """Ask the kernel to send ``sig`` to this process when its parent exits (Linux only).

    Worker processes call this first, so a parent killed hard (``kill -9``) or one that
    exits on SIGTERM leaves no orphan behind. Elsewhere it does nothing.
    """
    if not sys.platform.startswith("linux"):
        return
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, int(sig), 0, 0, 0)
    except (OSError, AttributeError):
        return
    if os.getppid() == 1:  # the parent is already gone: the request came too late
        os.kill(os.getpid(), sig)


_PR_SET_PDEATHSIG = 1  # <linux/prctl.h>
