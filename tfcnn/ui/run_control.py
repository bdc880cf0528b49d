"""Training runs from the app: queue ``python -m tfcnn train`` subprocesses
(:mod:`tfcnn.launches`), cancel them, and read their run folders back as
:class:`tfcnn.runs.Run`."""

from __future__ import annotations

import math
import os
from pathlib import Path

import torch

from tfcnn import launches
from tfcnn.errors import RunError
from tfcnn.locations import runs_root
from tfcnn.runs import Run, read_run, read_status, run_paths


def launch_training(data_dir: str | os.PathLike, *, arch: str, n_folds: int, preset: str,
                    protocol: str, device: str = "auto", seed: int = 0,
                    epochs: int | None = None, amp: bool = False,
                    root: Path | None = None) -> Path:
    """Queue one training run (:func:`tfcnn.launches.submit`); it starts when a slot frees.

    Returns the run folder the trainer will write.
    """
    return launches.submit(data_dir, arch=arch, n_folds=n_folds, preset=preset,
                           protocol=protocol, device=device, seed=seed, epochs=epochs,
                           amp=amp, root=root or runs_root())


def cancel_run(run_dir: str | os.PathLike) -> str:
    """Cancel a run: withdraw it from the queue, or SIGTERM its own verified trainer.

    Returns the outcome of :func:`tfcnn.launches.cancel`: ``"withdrawn"``, ``"signalled"``,
    ``"gone"`` or ``"stale"`` (the recorded PID is another process now: nothing is sent).
    """
    run_dir = Path(run_dir)
    try:
        pid = (read_status(run_dir) or {}).get("pid") if run_dir.is_dir() else None
    except RunError:
        pid = None
    return launches.cancel(run_dir, status_pid=pid if isinstance(pid, int) else None)


def run_view(run_dir: str | os.PathLike) -> Run:
    """The run in ``run_dir`` (or a launched one without ``config.json`` yet), read now."""
    launches.reap()
    return read_run(run_dir)


def run_folders(root: Path | None = None) -> list[Path]:
    """Run folders under the runs root, newest first, including runs launched from the app
    whose folder does not exist yet; starts queued runs whose slot has freed."""
    root = root or runs_root()
    if root.is_dir():
        launches.pump(root)
    return run_paths(root, launched=True)


def max_concurrent_runs() -> int:
    """How many launched runs may train at once (``TFCNN_MAX_RUNS``, default 1)."""
    return launches.max_concurrent()


def device_options() -> list[str]:
    """The Train page's device choices: ``auto``, ``cpu`` and only the accelerators present."""
    options = ["auto", "cpu"]
    if torch.cuda.is_available():
        options.append("cuda")
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        options.append("mps")
    return options


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
