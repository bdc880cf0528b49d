"""Training runs from the app: queue ``python -m tfcnn train`` subprocesses
(:mod:`tfcnn.launches`), cancel, resume, archive and delete them, read their run folders
back as :class:`tfcnn.runs.Run`, and estimate a run's time before it is launched."""

from __future__ import annotations

import math
import os
import shlex
from pathlib import Path

import streamlit as st
import torch

from tfcnn import archive, launches
from tfcnn.datasets import load_dataset
from tfcnn.errors import RunError
from tfcnn.estimate import estimate_run, format_estimate, track_patch_counts
from tfcnn.eta import Eta, run_eta
from tfcnn.locations import SHIPPED_TABLE, checkpoints_dir, runs_root
from tfcnn.request import RunRequest
from tfcnn.result_sets import TableFile
from tfcnn.runs import Run, read_run, read_status, run_paths

#: States a run can be resumed from (complete folds are kept, the rest trained).
RESUMABLE = ("cancelled", "interrupted", "failed")


def launch_training(request: RunRequest, *, root: Path | None = None) -> Path:
    """Queue one training run (:func:`tfcnn.launches.submit`); it starts when a slot frees.

    Returns the run folder the trainer will write.
    """
    return launches.submit(request, root=root or runs_root())


def resumable(view: Run) -> bool:
    """Whether the page offers Resume: a stopped run with folds left and a config."""
    return (view.status in RESUMABLE and bool(view.config)
            and view.n_complete < len(view.config.get("only_folds") or range(view.n_folds)))


def resume_caption(run_dir: str | os.PathLike) -> str:
    """The resume command of a run as a user would type it (``python -m tfcnn train ...``)."""
    try:
        cmd = launches.resume_command(run_dir)
    except RunError as exc:
        return f"cannot resume: {exc}"
    return shlex.join(["python", *cmd[1:]])


def resume_run(run_dir: str | os.PathLike) -> list[str]:
    """Queue the run's ``--resume`` (:func:`tfcnn.launches.submit_resume`)."""
    return launches.submit_resume(run_dir)


def archive_run(run_dir: str | os.PathLike) -> Path:
    """Move a stopped run to the archive of the runs root (:func:`tfcnn.archive.archive_run`)."""
    return archive.archive_run(run_dir, root=runs_root())


def restore_run(run_dir: str | os.PathLike) -> Path:
    """Bring an archived run back (:func:`tfcnn.archive.restore_run`)."""
    return archive.restore_run(run_dir, root=runs_root())


def delete_run(run_dir: str | os.PathLike) -> None:
    """Delete a stopped run, archived or not (:func:`tfcnn.archive.delete_run`)."""
    archive.delete_run(run_dir, root=runs_root())


def archived_folders() -> list[Path]:
    """Archived run folders of the runs root, newest first."""
    return archive.archived_paths(runs_root())


def _attempt(action, path: Path, done: str | None = None) -> bool:
    """``action(path)``; its refusal (:class:`RunError`) is shown, success toasted."""
    try:
        action(path)
    except RunError as exc:
        st.error(str(exc))
        return False
    if done:
        st.toast(done)
    return True


def _delete_button(column, path: Path, key: str) -> None:
    """Delete with a confirm step: the button arms it, "Yes, delete" deletes."""
    armed = f"confirm-{key}"
    if column.button("Delete", key=key):
        st.session_state[armed] = True
    if not st.session_state.get(armed):
        return
    st.warning(f"Delete **{path.name}** with its models, results and log? This cannot be "
               "undone (Archive keeps a run out of the lists instead).")
    yes, no = st.columns(2)
    if yes.button("Yes, delete", key=f"{key}-yes", type="primary"):
        st.session_state.pop(armed, None)
        if not _attempt(delete_run, path, f"Deleted {path.name}"):
            return
        st.rerun()
    if no.button("Keep it", key=f"{key}-no"):
        st.session_state.pop(armed, None)
        st.rerun()


def run_actions(view: Run, column) -> None:
    """A run's buttons in ``column``: Cancel while active; Resume when stopped with folds
    left; Archive and Delete (with a confirm step) when stopped."""
    if view.status in ("queued", "running", "starting"):
        if column.button("Cancel", key=f"cancel-{view.name}"):
            outcome = cancel_run(view.path)
            if outcome == "stale":
                st.warning(f"{view.name}: its recorded process is no longer this "
                           "run's trainer (stale PID); nothing was signalled.")
            else:
                st.toast(f"Cancelling {view.name}")
        return
    if resumable(view) and column.button("Resume", key=f"resume-{view.name}",
                                         help="Queue `--resume`: complete folds are kept"):
        _attempt(resume_run, view.path, f"Queued {view.name} to resume")
    if column.button("Archive", key=f"archive-{view.name}",
                     help="Move to the archive: hidden from Results and Predict, restorable"):
        if not _attempt(archive_run, view.path, f"Archived {view.name}"):
            return
        st.rerun()
    _delete_button(column, view.path, f"delete-{view.name}")


def archived_runs() -> None:
    """The archive of the runs root, collapsed: each run with Restore and Delete."""
    folders = archived_folders()
    if not folders:
        return
    with st.expander(f"Archived runs ({len(folders)})"):
        for folder in folders:
            name, restore, delete = st.columns([4, 1, 1])
            name.markdown(f"`{folder.name}`")
            if restore.button("Restore", key=f"restore-{folder.name}"):
                if not _attempt(restore_run, folder):
                    continue
                st.rerun()
            _delete_button(delete, folder, f"delete-archived-{folder.name}")


def settings_text(view: Run) -> str:
    """``10 folds · up to 150 epochs · preset quick · protocol clean · seed 0``: what the run
    was launched with (its ``config.json``, or its launch record before that exists)."""
    train = view.config.get("train_config") or {}
    epochs = train.get("max_epochs", view.launch.get("max_epochs"))
    only = view.config.get("only_folds")
    parts = [f"{view.n_folds} folds" + (f" (only {', '.join(map(str, only))})" if only else ""),
             f"up to {epochs} epoch{'' if epochs == 1 else 's'}" if epochs else "epochs: preset's",
             f"preset {view.preset}", f"protocol {view.protocol}"]
    seed = train.get("seed", view.config.get("seed"))
    if seed is not None:
        parts.append(f"seed {seed}")
    return " · ".join(parts)


def eta_text(view: Run) -> str | None:
    """``ETA ~4 min (2 min – 9 min)`` for a running run (:func:`tfcnn.eta.run_eta`); never
    "0 s" while work remains: past the last epoch it says the folds are being tested, and an
    epoch slower than usual says how far over it is."""
    eta: Eta | None = run_eta(view)
    if eta is None:
        return None
    if eta.epochs_left[1] == 0:
        return "ETA: every epoch done, testing and saving the last folds"
    over = (f"the current epoch is {format_seconds(eta.overdue_s)} over its usual "
            f"{format_seconds(eta.epoch_s)}" if eta.overdue_s >= 1.0 else "")
    if eta.high_s < 0.5:  # only the epoch in progress is left
        return "ETA: finishing the last epoch" + (f" ({over})" if over else "")
    low, high = format_seconds(eta.low_s), format_seconds(eta.high_s)
    span = (low if low == high else f"up to {high}" if eta.low_s < 0.5
            else f"{low} – {high}")
    text = (f"ETA {span}" if eta.likely_s is None
            else f"ETA ~{format_seconds(eta.likely_s)} ({span})")
    return text + (f" after the current epoch ({over})" if over else "")


@st.cache_data(show_spinner=False, max_entries=8)
def _patch_counts(data_root: str) -> list[int]:
    return track_patch_counts(load_dataset(data_root)).tolist()


@st.cache_data(show_spinner="Measuring this machine's training speed…", ttl=120,
               max_entries=64)
def estimate_text(request: RunRequest, *, runs: str) -> str:
    """The page's run-time estimate of ``request`` (:func:`tfcnn.estimate.estimate_run`),
    as one line.

    Cached for two minutes per request, so a run finishing meanwhile is learnt from soon.
    Raises what the estimate raises (settings the trainer would refuse).
    """
    estimate = estimate_run(load_dataset(request.data_dir), request, root=Path(runs),
                            table=TableFile.read(checkpoints_dir() / SHIPPED_TABLE),
                            patch_counts=_patch_counts(request.data_dir))
    return format_estimate(estimate, format_seconds)


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
