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

from tfcnn.commands.options import ARCH_OPTIONS
from tfcnn.config import MAX_EPOCHS, PRESETS
from tfcnn.errors import ConfigError, RunError
from tfcnn.locations import REPO_ROOT
from tfcnn.procs import GONE, ProcessIdentity, identify, signal_run
from tfcnn.runs import (
    LAUNCHES_DIR,
    LOG_FILE,
    QUEUED,
    STARTED,
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
#: How long a started trainer may take to show its command line in /proc (seconds).
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


def new_run_dir(arch: str, *, preset: str, root: Path) -> Path:
    """A fresh, not yet existing ``<root>/<date>-<time>-<arch>-<preset>`` folder path."""
    return fresh_folder(root, f"{time.strftime('%Y%m%d-%H%M%S')}-{arch}-{preset}")


#: The architecture parameters a launch may set → their ``train`` option
#: (``time_filter`` → ``--time-filter``), from the options ``train`` defines.
ARCH_PARAM_FLAGS: dict[str, str] = {flag[2:].replace("-", "_"): flag
                                    for flag, *_ in ARCH_OPTIONS}


def _flag_value(value) -> str:
    """``(1, 60)`` → ``1x60`` (a filter shape as the CLI reads it); ``32`` → ``32``."""
    if isinstance(value, (list, tuple)):
        return "x".join(str(int(v)) for v in value)
    return str(int(value))


def train_command(data_dir: str | os.PathLike, *, arch: str, run_dir: str | os.PathLike,
                  n_folds: int, preset: str, protocol: str, device: str, seed: int,
                  epochs: int | None = None, amp: bool = False,
                  arch_params: dict | None = None, lr: float | None = None,
                  batch_size: int | None = None, only_folds: list[int] | None = None,
                  resume: bool = False) -> list[str]:
    """The ``python -m tfcnn train ...`` command line of one run.

    ``arch_params`` may hold the keys of :data:`ARCH_PARAM_FLAGS` (others are the
    architecture's fixed sizes and are not options); ``resume`` continues ``run_dir``.
    """
    cmd = [sys.executable, "-m", "tfcnn", "train", str(data_dir), "--arch", arch,
           "--out", str(run_dir), "--folds", str(n_folds), "--preset", preset,
           "--protocol", protocol, "--device", device, "--seed", str(seed)]
    if epochs:
        cmd += ["--epochs", str(int(epochs))]
    if lr is not None:
        cmd += ["--lr", repr(float(lr))]
    if batch_size is not None:
        cmd += ["--batch-size", str(int(batch_size))]
    if only_folds:
        cmd += ["--only-folds", ",".join(str(int(k)) for k in only_folds)]
    if amp:
        cmd.append("--amp")
    for key, flag in ARCH_PARAM_FLAGS.items():
        if (arch_params or {}).get(key) is not None:
            cmd += [flag, _flag_value(arch_params[key])]
    if resume:
        cmd.append("--resume")
    return cmd


def resume_command(run_dir: str | os.PathLike) -> list[str]:
    """The command that continues the run in ``run_dir`` with its own settings.

    Read from its ``config.json``: data, architecture and its filter options, folds,
    preset and every setting that differs from it (epochs, lr, batch size, AMP), protocol,
    seed and device; so the trainer's check that the configuration agrees
    (:data:`tfcnn.runs.RESUME_KEYS`) passes.

    Raises
    ------
    RunError
        Not a run folder, or a config naming an unknown preset.
    """
    config = read_config(run_dir)
    train = config.get("train_config") or {}
    name = config.get("preset")
    if name not in PRESETS:
        raise RunError(f"cannot resume {run_dir}: its preset {name!r} is unknown here")
    base = PRESETS[name]

    def changed(key: str):
        value = train.get(key)
        return None if value is None or value == getattr(base, key) else value

    return train_command(config.get("data", ""), arch=str(config.get("arch")), run_dir=run_dir,
                         n_folds=int(config.get("n_folds", 0)), preset=name,
                         protocol=str(config.get("protocol")),
                         device=str(config.get("device", "auto")),
                         seed=int(config.get("seed", 0)), epochs=changed("max_epochs"),
                         amp=bool(train.get("amp")), arch_params=config.get("arch_params"),
                         lr=changed("lr"), batch_size=changed("batch_size"),
                         only_folds=config.get("only_folds"), resume=True)


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


def submit(data_dir: str | os.PathLike, *, arch: str, n_folds: int, preset: str,
           protocol: str, root: Path, device: str = "auto", seed: int = 0,
           epochs: int | None = None, amp: bool = False,
           arch_params: dict | None = None) -> Path:
    """Queue one training run and start it at once when a slot is free; return its run folder.

    ``arch_params``: filter options of :data:`ARCH_PARAM_FLAGS` (the paper's otherwise).

    Raises
    ------
    ConfigError
        ``n_folds < 2`` or ``epochs`` outside ``[1, MAX_EPOCHS]``.
    """
    if n_folds < 2:
        raise ConfigError(f"folds must be >= 2, got {n_folds}")
    if epochs is not None and not 1 <= epochs <= MAX_EPOCHS:
        raise ConfigError(f"epochs must be in [1, {MAX_EPOCHS}], got {epochs}")

    def command(run_dir: Path) -> list[str]:
        return train_command(data_dir, arch=arch, run_dir=run_dir, n_folds=n_folds,
                             preset=preset, protocol=protocol, device=device, seed=seed,
                             epochs=epochs, amp=amp, arch_params=arch_params)

    return enqueue(root, stem=f"{time.strftime('%Y%m%d-%H%M%S')}-{arch}-{preset}",
                   command=command, record={
                       "kind": TRAIN_KIND, "arch": arch, "n_folds": n_folds, "preset": preset,
                       "protocol": protocol, "data_dir": str(data_dir)})


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
        config = read_config(run_dir)
        write_launch(run_dir, {
            "state": QUEUED, "command": cmd, "arch": config.get("arch"),
            "n_folds": config.get("n_folds"), "preset": config.get("preset"),
            "protocol": config.get("protocol"), "data_dir": config.get("data"),
            "queued": time.strftime("%Y-%m-%dT%H:%M:%S"), "cancelled": False,
            "kind": TRAIN_KIND, "resume": True,
        })
    pump(root)
    return cmd


def _start(run_dir: Path, record: dict) -> None:
    """Start a queued launch's process (trainer or sweep) in its own session and record its
    identity."""
    side = launch_dir(run_dir)
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    with open(side / LOG_FILE, "ab") as log:
        # start_new_session: the run is its own process group, so Cancel can signal the
        # whole group and closing the app does not kill training. cwd: `-m tfcnn` finds
        # this checkout's package.
        proc = subprocess.Popen(record["command"], stdout=log, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, cwd=REPO_ROOT, env=env,
                                start_new_session=True)
    _CHILDREN[proc.pid] = proc
    # Popen returns once exec succeeded, but /proc may show an empty command line for a
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
