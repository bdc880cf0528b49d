"""Putting run folders away: archive (restorable), restore, delete.

An archived run moves, with its launch record, to ``<runs>/archive/<name>`` (one
``rename``, so it is either listed or archived, never half of each). Readers of the runs
root (:func:`tfcnn.runs.run_paths`, :func:`tfcnn.runs.list_runs`) only see its direct
children, so archived runs are left out of every list until restored;
:func:`archived_paths` lists them when asked.

A deleted run is first renamed to a hidden ``.trash-*`` folder in the same root (it leaves
every list at once), then removed. Only folders directly in the runs root (or its archive)
are touched, and never a run that is queued, starting or running.
"""

from __future__ import annotations

import os
import shutil
import uuid
from pathlib import Path

from tfcnn.errors import RunError
from tfcnn.runs import CONFIG_FILE, LAUNCHES_DIR, launch_dir, read_run, run_paths

#: The archive's folder in the runs root.
ARCHIVE_DIR = "archive"
#: Prefix of a run being deleted.
TRASH_PREFIX = ".trash-"
#: States in which a run is left alone.
ACTIVE_STATES = ("queued", "starting", "running")


def archive_root(root: str | os.PathLike) -> Path:
    """``<root>/archive``."""
    return Path(root) / ARCHIVE_DIR


def archived_paths(root: str | os.PathLike) -> list[Path]:
    """The archived run folders of the runs root ``root``, newest name first."""
    return run_paths(archive_root(root))


def _checked(run_dir: str | os.PathLike, parent: Path) -> Path:
    """``run_dir`` when it is a stopped run directly in ``parent``; else :class:`RunError`."""
    run_dir = Path(run_dir)
    if run_dir.is_symlink() or run_dir.resolve().parent != parent.resolve() \
            or run_dir.name in (ARCHIVE_DIR, LAUNCHES_DIR) or run_dir.name.startswith("."):
        raise RunError(f"{run_dir} is not a run folder directly in {parent}; left alone")
    if not (run_dir / CONFIG_FILE).is_file() and not launch_dir(run_dir).is_dir():
        raise RunError(f"{run_dir} is not a run (no {CONFIG_FILE}, no launch record)")
    status = read_run(run_dir).status
    if status in ACTIVE_STATES:
        raise RunError(f"{run_dir.name} is {status}; cancel it before moving or deleting it")
    return run_dir


def _move(run_dir: Path, target: Path) -> Path:
    """Rename the run folder and its launch record (if any) to ``target``'s place."""
    if target.exists() or launch_dir(target).exists():
        raise RunError(f"{target} already exists; {run_dir.name} was not moved")
    target.parent.mkdir(parents=True, exist_ok=True)
    if run_dir.exists():
        os.rename(run_dir, target)
    side = launch_dir(run_dir)
    if side.is_dir():
        launch_dir(target).parent.mkdir(parents=True, exist_ok=True)
        os.rename(side, launch_dir(target))
    return target


def archive_run(run_dir: str | os.PathLike, *, root: str | os.PathLike) -> Path:
    """Move a stopped run of ``root`` into ``<root>/archive/``; returns its new folder."""
    run_dir = _checked(run_dir, Path(root))
    return _move(run_dir, archive_root(root) / run_dir.name)


def restore_run(run_dir: str | os.PathLike, *, root: str | os.PathLike) -> Path:
    """Move an archived run back into ``root``; returns its folder there."""
    run_dir = _checked(run_dir, archive_root(root))
    return _move(run_dir, Path(root) / run_dir.name)


def delete_run(run_dir: str | os.PathLike, *, root: str | os.PathLike) -> None:
    """Delete a stopped run of ``root`` (or of its archive) and its launch record."""
    root = Path(root)
    run_dir = Path(run_dir)
    parent = archive_root(root) if run_dir.parent.name == ARCHIVE_DIR else root
    run_dir = _checked(run_dir, parent)
    trash = parent / f"{TRASH_PREFIX}{run_dir.name}-{uuid.uuid4().hex[:8]}"
    _move(run_dir, trash)  # gone from every list in one rename
    shutil.rmtree(trash, ignore_errors=True)
    shutil.rmtree(launch_dir(trash), ignore_errors=True)
