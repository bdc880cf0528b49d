"""Training runs launched from the app: a bounded queue of ``tfcnn train`` subprocesses.

Each launch is recorded in ``<runs>/.launches/<run name>/launch.json`` beside its (future)
run folder, with its command line and its state: ``queued``, ``started`` (with the process
identity of :mod:`tfcnn.procs`) or ``withdrawn`` (cancelled while queued). At most
:func:`max_concurrent` launched runs train at once (``TFCNN_MAX_RUNS``, default 1); the
others wait as ``queued`` and :func:`pump` starts the oldest when a slot frees. Every reader
of the queue calls :func:`pump`, under a file lock, so no two callers start the same run or
exceed the cap.

The trainer writes its run folder itself; its stdout/stderr go to ``log.txt`` in the launch
folder, which exists before the trainer starts (the trainer requires a new or empty run
folder).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

from tfcnn.atomic import write_json_atomic
from tfcnn.config import MAX_EPOCHS
from tfcnn.errors import ConfigError
from tfcnn.procs import GONE, ProcessIdentity, identify, is_alive, signal_run

#: Where the launch records live, under the runs root.
LAUNCHES_DIR = ".launches"
LAUNCH_FILE = "launch.json"
LOG_FILE = "log.txt"
LOCK_FILE = ".lock"

#: Operator setting: how many launched runs may train at the same time.
ENV_MAX_RUNS = "TFCNN_MAX_RUNS"
DEFAULT_MAX_RUNS = 1

#: The project folder: the trainer runs there so ``python -m tfcnn`` finds the package.
PROJECT_DIR = Path(__file__).resolve().parent.parent

QUEUED, STARTED, WITHDRAWN = "queued", "started", "withdrawn"

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


def launch_dir(run_dir: str | os.PathLike) -> Path:
    """``<runs>/.launches/<run name>``: the launch record and log of a run."""
    run_dir = Path(run_dir)
    return run_dir.parent / LAUNCHES_DIR / run_dir.name


def read_launch(run_dir: str | os.PathLike) -> dict | None:
    """The launch record of a run, or None (absent, unreadable or not a JSON object)."""
    try:
        record = json.loads((launch_dir(run_dir) / LAUNCH_FILE).read_bytes())
    except (OSError, ValueError):
        return None
    return record if isinstance(record, dict) else None


def new_run_dir(arch: str, *, preset: str, root: Path) -> Path:
    """A fresh, not yet existing ``<root>/<date>-<time>-<arch>-<preset>`` folder path."""
    stamp = time.strftime("%Y%m%d-%H%M%S")
    path = root / f"{stamp}-{arch}-{preset}"
    k = 1
    while path.exists() or launch_dir(path).exists():
        k += 1
        path = root / f"{stamp}-{arch}-{preset}-{k}"
    return path


def train_command(data_dir: str | os.PathLike, *, arch: str, run_dir: str | os.PathLike,
                  n_folds: int, preset: str, protocol: str, device: str, seed: int,
                  epochs: int | None = None, amp: bool = False) -> list[str]:
    """The ``python -m tfcnn train ...`` command line of one run."""
    cmd = [sys.executable, "-m", "tfcnn", "train", str(data_dir), "--arch", arch,
           "--out", str(run_dir), "--folds", str(n_folds), "--preset", preset,
           "--protocol", protocol, "--device", device, "--seed", str(seed)]
    if epochs:
        cmd += ["--epochs", str(int(epochs))]
    if amp:
        cmd.append("--amp")
    return cmd


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


def submit(data_dir: str | os.PathLike, *, arch: str, n_folds: int, preset: str,
           protocol: str, root: Path, device: str = "auto", seed: int = 0,
           epochs: int | None = None, amp: bool = False) -> Path:
    """Queue one training run and start it at once when a slot is free; return its run folder.

    Raises
    ------
    ConfigError
        ``n_folds < 2`` or ``epochs`` outside ``[1, MAX_EPOCHS]``.
    """
    if n_folds < 2:
        raise ConfigError(f"folds must be >= 2, got {n_folds}")
    if epochs is not None and not 1 <= epochs <= MAX_EPOCHS:
        raise ConfigError(f"epochs must be in [1, {MAX_EPOCHS}], got {epochs}")
    with _queue_lock(root):
        run_dir = new_run_dir(arch, preset=preset, root=root)
        side = launch_dir(run_dir)
        side.mkdir(parents=True)
        cmd = train_command(data_dir, arch=arch, run_dir=run_dir, n_folds=n_folds,
                            preset=preset, protocol=protocol, device=device, seed=seed,
                            epochs=epochs, amp=amp)
        write_json_atomic(side / LAUNCH_FILE, {
            "state": QUEUED, "command": cmd, "arch": arch, "n_folds": n_folds,
            "preset": preset, "protocol": protocol, "data_dir": str(data_dir),
            "queued": time.strftime("%Y-%m-%dT%H:%M:%S"), "cancelled": False,
        })
    pump(root)
    return run_dir


def _start(run_dir: Path, record: dict) -> None:
    """Start a queued run's trainer in its own session and record its identity."""
    side = launch_dir(run_dir)
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(PROJECT_DIR),
                                                      env.get("PYTHONPATH", "")]))
    with open(side / LOG_FILE, "ab") as log:
        # start_new_session: the run is its own process group, so Cancel can signal the
        # whole group and closing the app does not kill training.
        proc = subprocess.Popen(record["command"], stdout=log, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, cwd=PROJECT_DIR, env=env,
                                start_new_session=True)
    _CHILDREN[proc.pid] = proc
    # Popen returns once exec succeeded, so /proc shows the trainer's own command line.
    identity = identify(proc.pid)
    write_json_atomic(side / LAUNCH_FILE, {
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


def running_identity(record: dict) -> ProcessIdentity | None:
    """The recorded trainer identity of a started launch, when that process still runs."""
    identity = ProcessIdentity.from_dict(record.get("process"))
    return identity if is_alive(identity) else None


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
    """Cancel a run: withdraw it when queued, else SIGTERM its verified trainer.

    Parameters
    ----------
    run_dir : path-like
    status_pid : int, optional
        The PID in the run's ``status.json`` (for a run started outside the app).

    Returns
    -------
    str
        ``"withdrawn"``, or an outcome of :func:`tfcnn.procs.signal_run` (``"signalled"``,
        ``"gone"``, ``"stale"``: a PID that is not this run's trainer is never signalled).
    """
    run_dir = Path(run_dir)
    root = run_dir.parent
    side = launch_dir(run_dir)
    record = read_launch(run_dir)
    if record is not None:
        with _queue_lock(root):
            record = read_launch(run_dir) or record
            if record.get("state") == QUEUED:
                write_json_atomic(side / LAUNCH_FILE, {**record, "state": WITHDRAWN,
                                                       "cancelled": True})
                return WITHDRAWN
            write_json_atomic(side / LAUNCH_FILE, {**record, "cancelled": True})
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
