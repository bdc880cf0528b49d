"""The run folder: its format, written by the trainer and read by the CLI, the app and scripts.

A run folder (``runs/<id>/``) holds::

    config.json        data set, arch, preset + resolved TrainConfig, protocol, seed, ...
    status.json        {"state", "pid", "host", "started", "finished", "error", "wall_s"}
    progress.jsonl     one JSON event per line (features, fold_start, epoch, fold_end,
                       run_end, cancelled, error)
    fold-XX/model.safetensors, fold-XX/result.json   (a fold is complete iff result.json exists)
    state/fold-XX-<stage>.pt   a fold's training state after its last epoch, until the fold
                       is complete (:mod:`tfcnn.train_state`; ``--resume`` continues from it)
    results.json       summary over the complete folds (mean ± std in percent, confusion)
    snapshots/foldF-epochE.safetensors   weights at chosen epochs (``train --snapshots``)

A run started from the app also has a launch record beside it,
``<runs>/.launches/<id>/launch.json`` (command, pid, cancelled) and ``log.txt`` (the
process's output): the trainer requires a new or empty run folder, and the log must exist
before the trainer starts.

Writing: :class:`RunFolder`, the one object a training run writes through (every file
atomically, events appended one line at a time). Reading: :func:`read_run` gives a
:class:`Run`, one snapshot of everything a folder says; the smaller readers below it are safe
to call while a trainer writes (a torn last line of ``progress.jsonl`` is skipped).

Longer than 600 lines: the writer and every reader of the format live side by side, so a
change to a file of the folder is made in one place.
"""

from __future__ import annotations

import json
import os
import re
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import pandas as pd

from tfcnn.atomic import FILE_MODE, write_json_atomic
from tfcnn.config import training_stages
from tfcnn.errors import RunError
from tfcnn.jsonfile import parse_json
from tfcnn.procs import ProcessIdentity, identify, is_alive

#: The states :func:`run_status` can return.
RUN_STATES: tuple[str, ...] = ("running", "finished", "failed", "cancelled", "interrupted")

CONFIG_FILE = "config.json"
STATUS_FILE = "status.json"
PROGRESS_FILE = "progress.jsonl"
RESULTS_FILE = "results.json"
FOLD_RESULT_FILE = "result.json"
FOLD_MODEL_FILE = "model.safetensors"
#: Launch records of runs started from the app: ``<runs>/.launches/<run name>/``.
LAUNCHES_DIR = ".launches"
LAUNCH_FILE = "launch.json"
LOG_FILE = "log.txt"
#: Space held while a trainer runs and given back to record its end on a full disk.
RESERVE_FILE = ".reserve"
RESERVE_BYTES = 64 * 1024
#: A launch record's ``state``: waiting for a slot, its trainer started, cancelled while
#: waiting (:mod:`tfcnn.launches` moves a record through them).
QUEUED, STARTED, WITHDRAWN = "queued", "started", "withdrawn"
#: A launch record's ``kind``: a training run (also when absent) or a sweep, whose folder is a
#: sweep folder (:mod:`tfcnn.sweep`), not a run folder. Both share the queue's slots.
TRAIN_KIND, SWEEP_KIND = "train", "sweep"

#: config.json keys that must agree for ``--resume`` (device, code version may change).
RESUME_KEYS: tuple[str, ...] = ("data", "arch", "arch_params", "train_config", "protocol",
                                "n_folds", "seed", "front_end")


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def fold_dir(run_dir: str | os.PathLike, fold: int) -> Path:
    """``<run_dir>/fold-XX`` for fold index ``fold`` (0-based)."""
    return Path(run_dir) / f"fold-{fold:02d}"


def launch_dir(run_dir: str | os.PathLike) -> Path:
    """``<runs>/.launches/<run name>``: the app's launch record and log of a run."""
    run_dir = Path(run_dir)
    return run_dir.parent / LAUNCHES_DIR / run_dir.name


STATE_DIR = "state"


def state_path(run_dir: str | os.PathLike, fold: int, stage: str) -> Path:
    """``<run_dir>/state/fold-XX-<stage>.pt``: fold ``fold``'s resumable training state of
    ``stage`` (the architecture, or one stage of ``timefreq-init``)."""
    return Path(run_dir) / STATE_DIR / f"fold-{int(fold):02d}-{stage}.pt"


SNAPSHOTS_DIR = "snapshots"
_SNAPSHOT_NAME = re.compile(r"^fold(?P<fold>\d+)-epoch(?P<epoch>\d+)\.safetensors$")


def snapshot_path(run_dir: str | os.PathLike, fold: int, epoch: int) -> Path:
    """``<run_dir>/snapshots/fold<F>-epoch<E>.safetensors`` (epoch 0 = the initial weights)."""
    return Path(run_dir) / SNAPSHOTS_DIR / f"fold{int(fold)}-epoch{int(epoch)}.safetensors"


def list_snapshots(run_dir: str | os.PathLike) -> list[tuple[int, int, Path]]:
    """``(fold, epoch, path)`` of every snapshot in a run folder, by fold then epoch."""
    folder = Path(run_dir) / SNAPSHOTS_DIR
    found = []
    for path in folder.glob("fold*-epoch*.safetensors") if folder.is_dir() else []:
        match = _SNAPSHOT_NAME.match(path.name)
        if match:
            found.append((int(match["fold"]), int(match["epoch"]), path))
    return sorted(found, key=lambda t: (t[0], t[1]))


# --------------------------------------------------------------------------- writing


def append_event(run_dir: str | os.PathLike, event: dict) -> None:
    """Append one JSON line to ``progress.jsonl`` (unbuffered: the app tails this file).

    A write that fails part-way (a full disk) is cut off again before the error propagates,
    so the file never keeps a torn line that later lines would follow.
    """
    path = Path(run_dir) / PROGRESS_FILE
    data = (json.dumps(event, allow_nan=False) + "\n").encode("utf-8")
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, FILE_MODE)
    try:
        start = os.fstat(fd).st_size
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view):]
        except OSError:
            os.ftruncate(fd, start)
            raise
    finally:
        os.close(fd)


def _drop_torn_tail(path: Path) -> None:
    """Cut an unterminated last line (a writer killed mid-line) off ``path``, if any."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return
    if data and not data.endswith(b"\n"):
        with open(path, "r+b") as fh:
            fh.truncate(data.rfind(b"\n") + 1)


class RunFolder:
    """The run folder of one training invocation, as the trainer writes it.

    Create it with :meth:`create` (a new run) or :meth:`reopen` (``--resume``). Every file
    is written atomically; events go to ``progress.jsonl`` and to ``progress`` (the CLI's
    bars).

    Parameters
    ----------
    path : Path
    progress : callable, optional
        Called with every event written.
    prior : dict
        The previous ``status.json`` of a resumed run (its start time and wall time carry
        over); ``{}`` for a new run.
    """

    def __init__(self, path: Path, progress: Callable[[dict], None] | None = None,
                 prior: dict | None = None) -> None:
        prior = prior or {}
        self.path = Path(path)
        self.progress = progress
        self.t0 = time.perf_counter()
        self.prior_wall_s = float(prior.get("wall_s") or 0.0)
        self.started = prior.get("started") or _now()

    @classmethod
    def create(cls, path: str | os.PathLike, config: dict, *,
               progress: Callable[[dict], None] | None = None) -> "RunFolder":
        """A new run in ``path`` (absent or empty): writes ``config.json``."""
        path = Path(path)
        if path.exists():
            if not path.is_dir():
                raise RunError(f"run folder {path} exists and is not a folder")
            if any(path.iterdir()):
                raise RunError(
                    f"run folder {path} already exists and is not empty; use --resume to "
                    f"continue it or choose another --out"
                )
        path.mkdir(parents=True, exist_ok=True)
        write_json_atomic(path / CONFIG_FILE, config)
        folder = cls(path, progress)
        folder.hold_reserve()
        return folder

    @classmethod
    def reopen(cls, path: str | os.PathLike, config: dict, *,
               progress: Callable[[dict], None] | None = None) -> "RunFolder":
        """The run in ``path`` to continue; its config must agree on :data:`RESUME_KEYS`
        and its tracks (:func:`track_change`).

        Raises :class:`RunError` (one line, nothing written) for a folder that is not a
        run, a changed data set, a different configuration, or a run whose trainer is
        still alive.
        """
        path = Path(path)
        if not (path / CONFIG_FILE).is_file():
            raise RunError(f"cannot resume {path}: no {CONFIG_FILE} there (not a run folder)")
        old = read_config(path)
        changed = track_change(old, config)
        if changed:
            raise RunError(f"cannot resume {path}: the data set changed since the run started "
                           f"({changed}); its complete folds were drawn from the old tracks, "
                           "so the run is left as it was: restore the data or start a new run")
        diffs = [f"{k}: run has {old.get(k)!r}, now {config.get(k)!r}"
                 for k in RESUME_KEYS if old.get(k) != config.get(k)]
        if diffs:
            raise RunError(f"cannot resume {path}: configuration differs ({'; '.join(diffs)})")
        status = read_status(path) or {}
        pid = status.get("pid")
        if run_status(path) == "running" and pid != os.getpid():
            raise RunError(f"cannot resume {path}: it is still running (pid {pid})")
        _drop_torn_tail(path / PROGRESS_FILE)
        folder = cls(path, progress, status)
        folder.hold_reserve()
        return folder

    def hold_reserve(self) -> None:
        """Write :data:`RESERVE_FILE`: space :meth:`release_reserve` gives back so that the
        run's end (an error event, ``status.json``) can be written on a full disk."""
        with open(self.path / RESERVE_FILE, "wb") as fh:
            fh.write(b"\0" * RESERVE_BYTES)

    def release_reserve(self) -> None:
        """Delete :data:`RESERVE_FILE` (the run is ending)."""
        (self.path / RESERVE_FILE).unlink(missing_ok=True)

    def emit(self, event: dict) -> None:
        """Append ``event`` to ``progress.jsonl`` and pass it to ``progress``."""
        append_event(self.path, event)
        if self.progress is not None:
            self.progress(event)

    def wall_s(self) -> float:
        """Seconds this run has trained, over all its invocations."""
        return self.prior_wall_s + (time.perf_counter() - self.t0)

    def set_status(self, state: str, *, error: str | None = None) -> None:
        """Write ``status.json``: ``state`` (one of :data:`RUN_STATES`), this process, times."""
        write_json_atomic(self.path / STATUS_FILE, {
            "state": state,
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "started": self.started,
            "finished": None if state == "running" else _now(),
            "error": error,
            "wall_s": self.wall_s(),
        })

    def fold_dir(self, fold: int) -> Path:
        """``fold-XX``, created."""
        directory = fold_dir(self.path, fold)
        directory.mkdir(parents=True, exist_ok=True)
        return directory

    def model_path(self, fold: int) -> Path:
        """Where fold ``fold``'s checkpoint goes (written before its result)."""
        return self.fold_dir(fold) / FOLD_MODEL_FILE

    def write_fold_result(self, fold: int, result: dict) -> None:
        """``fold-XX/result.json``, last: from then on the fold is complete."""
        write_json_atomic(self.fold_dir(fold) / FOLD_RESULT_FILE, result)

    def state_path(self, fold: int, stage: str) -> Path:
        """Where fold ``fold``'s resumable state of ``stage`` goes (:func:`state_path`)."""
        return state_path(self.path, fold, stage)

    def drop_state(self, fold: int) -> None:
        """Delete fold ``fold``'s resumable states (it is complete), and ``state/`` once
        empty."""
        folder = self.path / STATE_DIR
        # and the temporary file of a save a kill interrupted (tfcnn.atomic)
        for pattern in (f"fold-{int(fold):02d}-*.pt", f".fold-{int(fold):02d}-*.tmp"):
            for path in folder.glob(pattern):
                path.unlink(missing_ok=True)
        try:
            folder.rmdir()
        except OSError:
            pass  # absent, or other folds' states remain

    def complete_folds(self) -> list[int]:
        return complete_folds(self.path)

    def fold_results(self) -> list[dict]:
        """The ``result.json`` of every complete fold, in fold order."""
        return [read_fold_result(self.path, k) for k in self.complete_folds()]

    def write_results(self, results: dict) -> None:
        """``results.json``."""
        write_json_atomic(self.path / RESULTS_FILE, results)


def track_change(old: dict, new: dict) -> str | None:
    """What changed between the tracks (and classes) of two run configurations, in words
    (``"2 tracks added (Jive/x, Jive/y); class added: Tango"``), or None when the same.

    A run recorded before the track list was kept (no ``tracks``) is compared by its track
    count and classes only.
    """
    old_classes = (old.get("dataset") or {}).get("classes") or []
    new_classes = (new.get("dataset") or {}).get("classes") or []
    parts = []
    old_tracks, new_tracks = old.get("tracks"), new.get("tracks")
    if isinstance(old_tracks, list) and isinstance(new_tracks, list):
        for verb, names in (("added", sorted(set(new_tracks) - set(old_tracks))),
                            ("removed", sorted(set(old_tracks) - set(new_tracks)))):
            if names:
                shown = ", ".join(map(str, names[:3])) + (", ..." if len(names) > 3 else "")
                parts.append(f"{len(names)} track(s) {verb} ({shown})")
    else:
        n_old = (old.get("dataset") or {}).get("n_tracks")
        n_new = (new.get("dataset") or {}).get("n_tracks")
        if n_old != n_new:
            parts.append(f"{n_old} tracks then, {n_new} now")
    for verb, names in (("added", [c for c in new_classes if c not in old_classes]),
                        ("removed", [c for c in old_classes if c not in new_classes])):
        if names:
            parts.append(f"class(es) {verb}: {', '.join(map(str, names))}")
    return "; ".join(parts) or None


def write_launch(run_dir: str | os.PathLike, record: dict) -> None:
    """The app's launch record of ``run_dir`` (state, command, process, ...), written
    atomically in :func:`launch_dir`."""
    write_json_atomic(launch_dir(run_dir) / LAUNCH_FILE, record)


def read_launch(run_dir: str | os.PathLike) -> dict | None:
    """The launch record of a run, or None (absent, unreadable or not a JSON object)."""
    try:
        record = parse_json((launch_dir(run_dir) / LAUNCH_FILE).read_bytes(),
                            where=LAUNCH_FILE, error=RunError)
    except (OSError, RunError):
        return None
    return record if isinstance(record, dict) else None


def launch_kind(record: dict) -> str:
    """:data:`TRAIN_KIND` or :data:`SWEEP_KIND`: what a launch record starts."""
    return SWEEP_KIND if record.get("kind") == SWEEP_KIND else TRAIN_KIND


def running_identity(record: dict) -> ProcessIdentity | None:
    """The recorded trainer identity of a started launch, when that process still runs."""
    identity = ProcessIdentity.from_dict(record.get("process"))
    return identity if is_alive(identity) else None


# --------------------------------------------------------------------------- reading


_NUMBER, _INT, _TEXT, _OBJECT, _LIST = "a number", "an integer", "text", "an object", "a list"

#: The type of each field a reader formats or computes with, per run file: a file holding
#: another type is refused with one line (not a traceback on the page that formats it).
FIELD_TYPES = {
    CONFIG_FILE: {"arch": _TEXT, "preset": _TEXT, "protocol": _TEXT, "n_folds": _INT,
                  "dataset": _OBJECT, "n_params": _INT, "seed": _INT, "tracks": _LIST},
    STATUS_FILE: {"state": _TEXT, "started": _TEXT, "finished": _TEXT, "wall_s": _NUMBER,
                  "error": _TEXT},
    RESULTS_FILE: {"mean": _NUMBER, "std": _NUMBER, "wall_s": _NUMBER, "n_params": _INT,
                   "n_folds": _INT, "n_tracks": _INT, "per_fold": _LIST, "folds": _LIST,
                   "classes": _LIST, "confusion": _LIST, "dataset": _OBJECT, "arch": _TEXT,
                   "protocol": _TEXT, "patch_mean": _NUMBER, "patch_std": _NUMBER},
    FOLD_RESULT_FILE: {"fold": _INT, "accuracy": _NUMBER, "norm_mean": _NUMBER,
                       "norm_std": _NUMBER, "epochs": _INT, "seconds": _NUMBER,
                       "test_track_ids": _LIST, "test_labels": _LIST},
}


def _is(value, kind: str) -> bool:
    if kind == _NUMBER:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if kind == _INT:
        return isinstance(value, int) and not isinstance(value, bool)
    return isinstance(value, {_TEXT: str, _OBJECT: dict, _LIST: list}[kind])


def _read_json(path: Path) -> dict | None:
    """Parsed JSON object of ``path`` (size, depth and the types of :data:`FIELD_TYPES`
    checked), or None when the file does not exist; :class:`RunError` (one line naming
    the file) when it cannot be used."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise RunError(f"{path}: cannot read ({exc.strerror or exc})") from None
    try:
        value = parse_json(data, where=str(path), error=RunError)
    except RunError as exc:
        if "not UTF-8" in str(exc):
            raise RunError(f"{exc}; not a run record") from None
        raise
    if not isinstance(value, dict):
        raise RunError(f"{path}: not a JSON object")
    for key, kind in FIELD_TYPES.get(path.name, {}).items():
        if value.get(key) is not None and not _is(value[key], kind):
            raise RunError(f"{path}: {key!r} must be {kind}, got "
                           f"{json.dumps(value[key])[:40]}")
    return value


def _require_run_dir(run_dir: str | os.PathLike) -> Path:
    path = Path(run_dir)
    if not path.is_dir():
        raise RunError(f"{path}: run folder does not exist")
    return path


def read_config(run_dir: str | os.PathLike) -> dict:
    """The run's ``config.json``; raises :class:`RunError` when the folder is not a run."""
    path = _require_run_dir(run_dir)
    config = _read_json(path / CONFIG_FILE)
    if config is None:
        raise RunError(f"{path}: not a run folder (no {CONFIG_FILE})")
    return config


def read_status(run_dir: str | os.PathLike) -> dict | None:
    """The raw ``status.json`` (``state``, ``pid``, ``started``, ...) or None if absent."""
    return _read_json(_require_run_dir(run_dir) / STATUS_FILE)


def read_progress(run_dir: str | os.PathLike) -> list[dict]:
    """All events of ``progress.jsonl`` in order; [] when there is none yet.

    A last line still being written (no newline yet, or cut short) is skipped, so this is
    safe to call while the trainer appends.
    """
    path = _require_run_dir(run_dir) / PROGRESS_FILE
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except FileNotFoundError:
        return []
    events = []
    lines = text.split("\n")
    for i, line in enumerate(lines):
        if not line.strip():
            continue
        try:
            event = parse_json(line, where=f"{path}: line {i + 1}", error=RunError)
        except RunError as exc:
            if i == len(lines) - 1 and "not valid JSON" in str(exc):
                break  # a line the trainer is writing right now
            raise RunError(f"{exc}: {line[:80]!r}" if "not valid JSON" in str(exc) else
                           str(exc)) from None
        if not isinstance(event, dict):
            raise RunError(f"{path}: line {i + 1} is not a JSON object")
        events.append(event)
    return events


def read_results(run_dir: str | os.PathLike) -> dict | None:
    """The run's ``results.json`` or None when no fold has been summarised yet."""
    return _read_json(_require_run_dir(run_dir) / RESULTS_FILE)


def read_fold_result(run_dir: str | os.PathLike, fold: int) -> dict | None:
    """``fold-XX/result.json`` or None when the fold is not complete."""
    return _read_json(fold_dir(_require_run_dir(run_dir), fold) / FOLD_RESULT_FILE)


def complete_folds(run_dir: str | os.PathLike) -> list[int]:
    """Indices of the folds whose ``result.json`` exists, ascending."""
    path = _require_run_dir(run_dir)
    done = []
    for child in path.glob("fold-*"):
        suffix = child.name[len("fold-"):]
        if suffix.isdigit() and (child / FOLD_RESULT_FILE).is_file():
            done.append(int(suffix))
    return sorted(done)


def pid_alive(pid) -> bool:
    """Whether process ``pid`` runs (exists and is not a zombie)."""
    return isinstance(pid, int) and not isinstance(pid, bool) and pid > 0 \
        and identify(pid) is not None


def run_status(run_dir: str | os.PathLike) -> str:
    """One of :data:`RUN_STATES`.

    ``status.json`` says what the trainer last wrote; a run that claims to be ``running``
    whose process is gone (killed hard, machine restarted) is ``interrupted``. Without a
    status file the progress events decide.
    """
    path = _require_run_dir(run_dir)
    status = _read_json(path / STATUS_FILE)
    if status is not None:
        state = status.get("state")
        if state == "running":
            return "running" if pid_alive(status.get("pid")) else "interrupted"
        if state in RUN_STATES:
            return state
        raise RunError(f"{path / STATUS_FILE}: unknown state {state!r}")
    events = read_progress(path)
    kinds = {e.get("event") for e in events}
    if "run_end" in kinds:
        return "finished"
    if "error" in kinds:
        return "failed"
    return "interrupted"


def fold_states(run_dir: str | os.PathLike) -> dict[int, str]:
    """State of every fold of the run: ``complete``, ``running`` or ``pending``.

    A fold with a ``fold_start`` event but no ``result.json`` is ``running`` while the run
    is running, otherwise ``pending`` (``--resume`` retrains it).
    """
    path = _require_run_dir(run_dir)
    config = read_config(path)
    n_folds = int(config.get("n_folds", 0))
    done = set(complete_folds(path))
    started = {e.get("fold") for e in read_progress(path) if e.get("event") == "fold_start"}
    running = run_status(path) == "running"
    states = {}
    for fold in range(n_folds):
        if fold in done:
            states[fold] = "complete"
        elif running and fold in started:
            states[fold] = "running"
        else:
            states[fold] = "pending"
    return states


def log_tail(run_dir: str | os.PathLike, *, lines: int = 15) -> str:
    """Last lines of the run's process output (the launch log, or a ``log.txt`` in the run)."""
    run_dir = Path(run_dir)
    for path in (launch_dir(run_dir) / LOG_FILE, run_dir / LOG_FILE):
        try:
            text = path.read_text(encoding="utf-8", errors="replace")
            break
        except OSError:
            continue
    else:
        return ""
    return "\n".join(text.rstrip().splitlines()[-lines:])


# --------------------------------------------------------------------------- one run


@dataclass(frozen=True)
class Run:
    """Everything a run folder (and its launch record) says about one run, read at once.

    Attributes
    ----------
    path : Path
    status : str
        One of :data:`RUN_STATES`; for a run the app launched whose trainer has not written
        its config yet, ``queued`` (waiting for a slot) or ``starting``; a run the app
        cancelled reads ``cancelled`` even when its trainer died before saying so.
    config, results, launch : dict
        ``config.json``, ``results.json`` and the launch record (``{}`` when absent).
    status_record : dict
        ``status.json`` as written (``{}`` when absent).
    events : tuple of dict
        ``progress.jsonl``.
    complete : tuple of int
        Indices of the complete folds.
    error : str or None
        Why a failed run failed.
    log_tail : str
        The last lines of the run's process output (:func:`log_tail`).
    """

    path: Path
    status: str
    config: dict = field(default_factory=dict)
    results: dict = field(default_factory=dict)
    launch: dict = field(default_factory=dict)
    status_record: dict = field(default_factory=dict)
    events: tuple = ()
    complete: tuple = ()
    error: str | None = None
    log_tail: str = ""

    @property
    def name(self) -> str:
        return self.path.name

    @property
    def arch(self) -> str:
        return str(self.config.get("arch", self.launch.get("arch", "?")))

    @property
    def preset(self) -> str:
        return str(self.config.get("preset", self.launch.get("preset", "?")))

    @property
    def protocol(self) -> str:
        return str(self.config.get("protocol", self.launch.get("protocol", "?")))

    @property
    def dataset(self) -> str:
        return str(self.config.get("dataset", {}).get("name", "?"))

    @property
    def n_folds(self) -> int:
        return int(self.config.get("n_folds", self.launch.get("n_folds", 0)))

    @property
    def n_complete(self) -> int:
        return len(self.complete)

    @property
    def n_params(self) -> int | None:
        return self.results.get("n_params", self.config.get("n_params"))

    @property
    def started(self) -> str | None:
        return self.status_record.get("started")

    @property
    def mean(self) -> float | None:
        """Song accuracy over the complete folds, percent."""
        return self.results.get("mean")

    @property
    def std(self) -> float | None:
        return self.results.get("std")

    @property
    def wall_s(self) -> float | None:
        return self.results.get("wall_s", self.status_record.get("wall_s"))

    @property
    def epochs(self) -> list[dict]:
        """The epoch records, in order."""
        return [e for e in self.events if e.get("event") == "epoch"]

    @property
    def history(self) -> pd.DataFrame:
        """The epoch records as a table (one row per fold, stage and epoch)."""
        return pd.DataFrame(self.epochs)

    @property
    def features(self) -> tuple[int, int] | None:
        """``(tracks with features, total)`` of the last feature event, or None."""
        last = [e for e in self.events if e.get("event") == "features"]
        return (int(last[-1].get("done", 0)), int(last[-1].get("total", 0))) if last else None

    def _max_epochs(self) -> dict[int, int]:
        """Epochs each started fold may take, over all its stages."""
        stages = len(training_stages(self.arch))
        return {int(e["fold"]): stages * int(e.get("max_epochs") or 0) for e in self.events
                if e.get("event") == "fold_start" and "fold" in e}

    @property
    def fold_progress(self) -> dict[int, float]:
        """Fold → fraction of its epochs done (1.0: complete; below 1 until its result)."""
        done = set(self.complete)
        max_epochs = self._max_epochs()
        n_epochs: dict[int, int] = {}  # epoch records per fold (all stages)
        for e in self.epochs:
            n_epochs[int(e["fold"])] = n_epochs.get(int(e["fold"]), 0) + 1
        progress: dict[int, float] = {}
        for fold in range(self.n_folds):
            if fold in done:
                progress[fold] = 1.0
            elif fold in n_epochs and max_epochs.get(fold):
                progress[fold] = min(0.99, n_epochs[fold] / max_epochs[fold])
            else:
                progress[fold] = 0.0
        return progress


def read_run(run_dir: str | os.PathLike) -> Run:
    """Read a run folder, or a run the app launched whose folder is not written yet.

    Raises :class:`RunError` when ``run_dir`` is neither a run folder nor a launched run.
    """
    path = Path(run_dir)
    launch = read_launch(path) or {}
    try:
        config = read_config(path)
    except RunError:
        if not launch or (path / CONFIG_FILE).exists():
            raise  # not a run, or a damaged one: the caller reports it
        config = {}
    exists = path.is_dir()
    events = tuple(read_progress(path)) if exists else ()
    record = (read_status(path) or {}) if config else {}
    error = None
    if not config:
        if launch.get("state") in (QUEUED, WITHDRAWN):
            status = "queued" if launch["state"] == QUEUED else "cancelled"
        elif running_identity(launch) is not None:
            status = "starting"
        else:
            status = "failed"
        if status == "failed":
            error = log_tail(path, lines=3) or "the training process ended before it started"
    else:
        status = run_status(path)
        if status != "running" and launch.get("state") == QUEUED:
            status = "queued"  # a stopped run queued again (--resume)
        elif status != "running" and launch.get("resume") and launch.get("state") == STARTED \
                and record.get("pid") != launch.get("pid") \
                and running_identity(launch) is not None:
            # its trainer has not written its status yet (once it has, its own last word
            # holds, while its process exits too: no "starting" between it and "finished")
            status = "starting"
    if status in ("interrupted", "failed") and launch.get("cancelled"):
        status, error = "cancelled", None  # stopped by the app's Cancel (SIGTERM)
    if status == "failed" and error is None:
        errors = [e.get("message") for e in events if e.get("event") == "error"]
        error = (record.get("error") or (errors[-1] if errors else None)
                 or log_tail(path, lines=3))
    return Run(path=path, status=status, config=config,
               results=(read_results(path) or {}) if config else {}, launch=launch,
               status_record=record, events=events,
               complete=tuple(complete_folds(path)) if exists else (), error=error,
               log_tail=log_tail(path))


def _is_file(path: Path) -> bool:
    """``path.is_file()``, False where it cannot be looked at (an unreadable folder)."""
    try:
        return path.is_file()
    except OSError:
        return False


def run_paths(root: str | os.PathLike = "runs", *, launched: bool = False) -> list[Path]:
    """The run folders directly under ``root`` (those with a ``config.json``), newest name
    first (names start with the launch time); [] when ``root`` is missing.

    With ``launched``, also the runs the app launched (their folder may not exist yet); the
    sweeps it launched are not runs.
    """
    root = Path(root)
    if not root.is_dir():
        return []
    paths = {child for child in root.iterdir() if _is_file(child / CONFIG_FILE)}
    launches = root / LAUNCHES_DIR
    if launched and launches.is_dir():
        paths |= {root / p.name for p in launches.iterdir() if (p / LAUNCH_FILE).is_file()
                  and launch_kind(read_launch(root / p.name) or {}) == TRAIN_KIND}
    return sorted(paths, key=lambda p: p.name, reverse=True)


def list_runs(root: str | os.PathLike = "runs") -> list[Run]:
    """Every run folder directly under ``root``, most recently started first; [] when
    ``root`` is missing. Folders that cannot be read as runs are left out."""
    runs = []
    for path in run_paths(root):
        try:
            runs.append(read_run(path))
        except RunError:
            continue  # a folder being created or damaged: not listable
    runs.sort(key=lambda run: (run.started or "", run.name), reverse=True)
    return runs

