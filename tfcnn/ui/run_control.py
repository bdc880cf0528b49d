"""Training runs from the app: start ``python -m tfcnn train`` subprocesses, cancel them, and
read their run folders back.

A run is started in its own session (so a cancel reaches its whole process group, and a page
rerun never blocks on training) with its output going to the launch log
(:func:`tfcnn.runs.launch_dir`); all state is read back from disk as a
:class:`tfcnn.runs.Run`.
"""

from __future__ import annotations

import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import torch

from tfcnn.errors import ConfigError, RunError
from tfcnn.locations import REPO_ROOT, runs_root
from tfcnn.runs import (
    LOG_FILE,
    Run,
    launch_dir,
    read_launch,
    read_run,
    read_status,
    run_paths,
    write_launch,
)

_CHILDREN: dict[int, subprocess.Popen] = {}


def _reap_children() -> None:
    """Collect finished training processes so they do not linger as zombies."""
    for pid, proc in list(_CHILDREN.items()):
        if proc.poll() is not None:
            del _CHILDREN[pid]


def new_run_dir(arch: str, *, preset: str, root: Path | None = None) -> Path:
    """A fresh, not yet existing ``<runs>/<date>-<time>-<arch>-<preset>`` folder path."""
    root = root or runs_root()
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


def launch_training(data_dir: str | os.PathLike, *, arch: str, n_folds: int, preset: str,
                    protocol: str, device: str = "auto", seed: int = 0,
                    epochs: int | None = None, amp: bool = False,
                    root: Path | None = None) -> Path:
    """Start one training run as a subprocess in its own session; return its run folder.

    The process creates and writes the run folder (config, progress, folds, results)
    itself; its stdout/stderr go to the launch log and the launch record holds the command
    and pid, so the app can show and cancel a run before the trainer wrote anything.
    """
    if n_folds < 2:
        raise ConfigError(f"folds must be >= 2, got {n_folds}")
    run_dir = new_run_dir(arch, preset=preset, root=root)
    side = launch_dir(run_dir)
    side.mkdir(parents=True)
    cmd = train_command(data_dir, arch=arch, run_dir=run_dir, n_folds=n_folds,
                        preset=preset, protocol=protocol, device=device, seed=seed,
                        epochs=epochs, amp=amp)
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    with open(side / LOG_FILE, "ab") as log:
        # start_new_session: the run is its own process group, so Cancel can signal the
        # whole group and closing the app does not kill training. cwd: `-m tfcnn` finds
        # this checkout's package.
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, cwd=REPO_ROOT, env=env,
                                start_new_session=True)
    _CHILDREN[proc.pid] = proc
    write_launch(run_dir, {
        "pid": proc.pid, "command": cmd, "arch": arch, "n_folds": n_folds,
        "preset": preset, "protocol": protocol, "data_dir": str(data_dir),
        "started": time.strftime("%Y-%m-%dT%H:%M:%S"), "cancelled": False,
    })
    return run_dir


def _pid_of(run_dir: Path) -> int | None:
    status = {}
    try:
        status = read_status(run_dir) or {}
    except RunError:
        pass
    pid = status.get("pid") or read_launch(run_dir).get("pid")
    return pid if isinstance(pid, int) and pid > 0 else None


def cancel_run(run_dir: str | os.PathLike) -> bool:
    """Send SIGTERM to a run's process group; return whether a signal was sent."""
    run_dir = Path(run_dir)
    pid = _pid_of(run_dir)
    launch = read_launch(run_dir)
    if launch:
        write_launch(run_dir, {**launch, "cancelled": True})
    if pid is None:
        return False
    try:
        pgid = os.getpgid(pid)
        if pgid == pid and pgid != os.getpgid(0):
            os.killpg(pgid, signal.SIGTERM)  # the trainer and anything it started
        else:
            os.kill(pid, signal.SIGTERM)  # started elsewhere (a terminal): only the trainer
    except ProcessLookupError:
        return False
    _reap_children()
    return True


def run_view(run_dir: str | os.PathLike) -> Run:
    """The run in ``run_dir`` (or a just-launched one without ``config.json`` yet), read now."""
    _reap_children()
    return read_run(run_dir)


def run_folders(root: Path | None = None) -> list[Path]:
    """Run folders under the runs root, newest first, including runs launched from the app
    whose folder does not exist yet."""
    return run_paths(root or runs_root(), launched=True)


def format_seconds(seconds: float | None) -> str:
    """``1 h 02 min`` / ``3 min 05 s`` / ``12 s``; ``—`` for None."""
    if seconds is None or not math.isfinite(seconds):
        return "—"
    s = int(round(seconds))
    if s >= 3600:
        return f"{s // 3600} h {s % 3600 // 60:02d} min"
    if s >= 60:
        return f"{s // 60} min {s % 60:02d} s"
    return f"{s} s"


def cuda_available() -> bool:
    """Whether torch sees a CUDA GPU (the Train page's device hint)."""
    return bool(torch.cuda.is_available())
