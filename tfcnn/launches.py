"""Work launched from the app: a bounded queue of ``tfcnn train`` and ``tfcnn sweep``
subprocesses.

Each launch is recorded in ``<runs>/.launches/<name>/launch.json`` beside its (future)
folder (the format of :mod:`tfcnn.runs`), with its kind (a training run or a sweep), its
command line and its state: ``queued``, ``started`` (with the process identity of
:mod:`tfcnn.procs`) or ``withdrawn`` (cancelled while queued). At most
:func:`max_concurrent` launches run at once (``TFCNN_MAX_RUNS``, default 1; a sweep takes one
slot like a run); the others wait as ``queued`` and :func:`pump` starts the oldest when a slot
frees. Every reader of the queue calls :func:`pump`, under a file lock, so no two callers
start the same launch or exceed the cap.

The process writes its folder itself; its stdout/stderr go to ``log.txt`` in the launch
folder, which exists before the process starts (trainer and sweep require a new or empty
folder).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from tfcnn.config import ENGINE_NAMES
from tfcnn.errors import ConfigError, RunError
from tfcnn.locations import REPO_ROOT
from tfcnn.paths import ENV_CONFINE
from tfcnn.procs import GONE, ProcessIdentity, identify, signal_run
from tfcnn.request import RunRequest, SweepRequest
from tfcnn.runs import (
    LAUNCHES_DIR,
    LOG_FILE,
    QUEUED,
    STARTED,
    SWEEP_KIND,
    TRAIN_KIND,
    WITHDRAWN,
    launch_dir,
    read_config,
    read_launch,
    run_status,
    running_identity,
    write_launch,
)

#: The queue's lock file, in the launch records' folder.
LOCK_FILE = ".lock"
#: How long a started trainer may take to show its command line (seconds).
IDENTIFY_WAIT_S = 2.0

#: Operator setting: how many launched runs may train at the same time.
ENV_MAX_RUNS = "TFCNN_MAX_RUNS"
DEFAULT_MAX_RUNS = 1

# Popen objects of the trainers this process started, kept to reap them (no zombies).
_CHILDREN: dict[int, subprocess.Popen] = {}


def max_concurrent() -> int:
    """``$TFCNN_MAX_RUNS`` (a positive integer) or 1."""
    value = os.environ.get(ENV_MAX_RUNS, "").strip()
    if not value:
        return DEFAULT_MAX_RUNS
    try:
        n = int(value)
    except ValueError:
        raise ConfigError(f"{ENV_MAX_RUNS} must be a positive integer, got {value!r}") from None
    if n < 1:
        raise ConfigError(f"{ENV_MAX_RUNS} must be a positive integer, got {value!r}")
    return n


def fresh_folder(root: Path, stem: str) -> Path:
    """``<root>/<stem>``, or ``<stem>-2``, ``-3``...: a folder path that neither exists nor has
    a launch record."""
    path = root / stem
    k = 1
    while path.exists() or launch_dir(path).exists():
        k += 1
        path = root / f"{stem}-{k}"
    return path


def train_command(request: RunRequest, run_dir: str | os.PathLike, *,
                  resume: bool = False) -> list[str]:
    """The ``python -m tfcnn train ...`` command line of ``request`` writing ``run_dir``
    (``resume``: continuing it)."""
    return [sys.executable, "-m", "tfcnn", "train", *request.argv(), "--out", str(run_dir),
            *(["--resume"] if resume else [])]


def sweep_command(sweep: SweepRequest, out: str | os.PathLike, *, engine: str) -> list[str]:
    """The ``python -m tfcnn sweep ...`` command line of ``sweep`` on ``engine`` writing
    ``out``."""
    return [sys.executable, "-m", "tfcnn", "sweep", *sweep.argv(), "--engine", engine,
            "--out", str(out), "--quiet"]


def resume_command(run_dir: str | os.PathLike) -> list[str]:
    """The command that continues the run in ``run_dir`` with its own settings: the request
    its ``config.json`` records (:meth:`RunRequest.from_config`), so the trainer's check
    that the configuration agrees (:data:`tfcnn.runs.RESUME_KEYS`) passes.

    Raises
    ------
    RunError
        Not a run folder, or a config this code cannot make a request of (an unknown
        preset, say).
    """
    try:
        request = RunRequest.from_config(read_config(run_dir))
    except ConfigError as exc:
        raise RunError(f"cannot resume {run_dir}: {exc}") from None
    return train_command(request, run_dir, resume=True)


@contextlib.contextmanager
def _queue_lock(root: Path) -> Iterator[None]:
    folder = root / LAUNCHES_DIR
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / LOCK_FILE, "a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def enqueue(root: Path, *, stem: str, command: Callable[[Path], list[str]],
            record: dict) -> Path:
    """Queue one command that writes the folder it is given; start it when a slot is free.

    Parameters
    ----------
    root : Path
        The runs root (the queue is ``<root>/.launches``).
    stem : str
        The folder's name (made unique with :func:`fresh_folder`).
    command : callable
        ``command(folder)`` → the command line, which writes ``folder`` (its ``--out``).
    record : dict
        What the launch record also holds (``kind`` of :data:`tfcnn.runs.TRAIN_KIND` or
        :data:`tfcnn.runs.SWEEP_KIND`, and what the app shows before the folder exists).

    Returns
    -------
    Path
        The folder.
    """
    with _queue_lock(root):
        folder = fresh_folder(root, stem)
        launch_dir(folder).mkdir(parents=True)
        write_launch(folder, {**record, "state": QUEUED, "command": command(folder),
                              "queued": time.strftime("%Y-%m-%dT%H:%M:%S"), "cancelled": False})
    pump(root)
    return folder


def submit(request: RunRequest, *, root: Path) -> Path:
    """Queue one training run and start it at once when a slot is free; return its run
    folder (``<root>/<date>-<time>-<arch>-<preset>``)."""
    return enqueue(root, stem=f"{time.strftime('%Y%m%d-%H%M%S')}-{request.arch}-"
                              f"{request.preset}",
                   command=lambda run_dir: train_command(request, run_dir),
                   record={"kind": TRAIN_KIND, **_summary(request)})


def submit_sweep(sweep: SweepRequest, *, engine: str, root: Path) -> Path:
    """Queue one sweep on ``engine`` (it takes one launch slot) and start it at once when
    a slot is free; return its sweep folder (``<root>/sweep-<date>-<time>-<arch>``).

    Raises
    ------
    ConfigError
        An unknown engine (before anything is queued).
    """
    if engine not in ENGINE_NAMES:
        raise ConfigError(
            f"unknown engine {engine!r}; valid engines: {', '.join(ENGINE_NAMES)}")
    return enqueue(root, stem=f"sweep-{time.strftime('%Y%m%d-%H%M%S')}-{sweep.base.arch}",
                   command=lambda out: sweep_command(sweep, out, engine=engine),
                   record={"kind": SWEEP_KIND, "arch": sweep.base.arch, "engine": engine,
                           "spec": sweep.to_dict()})


def _summary(request: RunRequest) -> dict:
    """What a launch record shows of a run before its folder exists."""
    return {"arch": request.arch, "n_folds": request.n_folds, "preset": request.preset,
            "max_epochs": int(request.train_config().max_epochs),
            "protocol": request.protocol, "data_dir": request.data_dir}


def submit_resume(run_dir: str | os.PathLike) -> list[str]:
    """Queue ``python -m tfcnn train ... --resume`` of a stopped run, like any launch.

    The run keeps its folder; its launch record (created when the run was not started from
    the app) becomes a queued one with :func:`resume_command`, and the trainer's output is
    appended to its ``log.txt``. Returns the command.

    Raises
    ------
    RunError
        The run is running, starting or already queued, or it is not a run folder.
    """
    run_dir = Path(run_dir)
    root = run_dir.parent
    cmd = resume_command(run_dir)
    with _queue_lock(root):
        record = read_launch(run_dir) or {}
        if record.get("state") == QUEUED:
            raise RunError(f"{run_dir.name} is already queued")
        if (record.get("state") == STARTED and running_identity(record) is not None) \
                or run_status(run_dir) == "running":
            raise RunError(f"{run_dir.name} is still running; cancel it first")
        launch_dir(run_dir).mkdir(parents=True, exist_ok=True)
        write_launch(run_dir, {
            "state": QUEUED, "command": cmd,
            **_summary(RunRequest.from_config(read_config(run_dir))),
            "queued": time.strftime("%Y-%m-%dT%H:%M:%S"), "cancelled": False,
            "kind": TRAIN_KIND, "resume": True,
        })
    pump(root)
    return cmd


def trainer_env() -> dict[str, str]:
    """The environment of a launched trainer: this one, unbuffered output, and
    :data:`tfcnn.paths.ENV_CONFINE`, so it reads only the tracks inside the allowed roots,
    as the app's pages do."""
    return dict(os.environ, PYTHONUNBUFFERED="1", **{ENV_CONFINE: "1"})


def _start(run_dir: Path, record: dict) -> None:
    """Start a queued launch's process (trainer or sweep) in its own session and record its
    identity."""
    side = launch_dir(run_dir)
    env = trainer_env()
    with open(side / LOG_FILE, "ab") as log:
        # start_new_session: the run is its own process group, so Cancel can signal the
        # whole group and closing the app does not kill training. cwd: `-m tfcnn` finds
        # this checkout's package.
        proc = subprocess.Popen(record["command"], stdout=log, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, cwd=REPO_ROOT, env=env,
                                start_new_session=True)
    _CHILDREN[proc.pid] = proc
    # Popen returns once exec succeeded, but the process may show an empty command line for a
    # moment after: an identity recorded then would never match the running trainer.
    identity = identify(proc.pid)
    deadline = time.monotonic() + IDENTIFY_WAIT_S
    while identity is not None and not identity.cmdline and time.monotonic() < deadline:
        time.sleep(0.01)
        identity = identify(proc.pid)
    write_launch(run_dir, {
        **record, "state": STARTED, "pid": proc.pid,
        "process": identity.to_dict() if identity else None,
        "started": time.strftime("%Y-%m-%dT%H:%M:%S"),
    })


def _records(root: Path) -> list[tuple[Path, dict]]:
    folder = root / LAUNCHES_DIR
    if not folder.is_dir():
        return []
    out = []
    for side in sorted(folder.iterdir()):
        if side.is_dir():
            record = read_launch(root / side.name)
            if record is not None:
                out.append((root / side.name, record))
    return out


def pump(root: Path) -> list[Path]:
    """Start queued runs, oldest first, while fewer than :func:`max_concurrent` train.

    Returns the run folders started by this call.
    """
    reap()
    if not (root / LAUNCHES_DIR).is_dir():
        return []
    started = []
    with _queue_lock(root):
        records = _records(root)
        busy = sum(1 for _, r in records
                   if r.get("state") == STARTED and running_identity(r) is not None)
        queued = sorted(((d, r) for d, r in records if r.get("state") == QUEUED),
                        key=lambda dr: (str(dr[1].get("queued", "")), dr[0].name))
        for run_dir, record in queued[:max(0, max_concurrent() - busy)]:
            _start(run_dir, record)
            started.append(run_dir)
    return started


def cancel(run_dir: str | os.PathLike, *, status_pid: int | None = None) -> str:
    """Cancel a run or sweep: withdraw it when queued, else SIGTERM its verified process.

    Parameters
    ----------
    run_dir : path-like
        The run (or sweep) folder.
    status_pid : int, optional
        The PID in the run's ``status.json`` (or the sweep's ``sweep_start`` event), for one
        started outside the app.

    Returns
    -------
    str
        ``"withdrawn"``, or an outcome of :func:`tfcnn.procs.signal_run` (``"signalled"``,
        ``"gone"``, ``"stale"``: a PID that is not this run's trainer is never signalled).
    """
    run_dir = Path(run_dir)
    root = run_dir.parent
    record = read_launch(run_dir)
    if record is not None:
        with _queue_lock(root):
            record = read_launch(run_dir) or record
            if record.get("state") == QUEUED:
                write_launch(run_dir, {**record, "state": WITHDRAWN, "cancelled": True})
                return WITHDRAWN
            write_launch(run_dir, {**record, "cancelled": True})
        identity = ProcessIdentity.from_dict(record.get("process"))
        if identity is not None:
            outcome = signal_run(run_dir, recorded=identity)
            reap()
            return outcome
    if status_pid is None:
        return GONE
    outcome = signal_run(run_dir, recorded=None, status_pid=status_pid)
    reap()
    return outcome


def reap() -> None:
    """Collect finished trainers this process started, so they do not linger as zombies."""
    for pid, proc in list(_CHILDREN.items()):
        if proc.poll() is not None:
            del _CHILDREN[pid]
