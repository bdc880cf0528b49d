"""Sweeps: a grid of architecture parameters × seeds, cross-validated fold by fold on an engine.

A sweep asks the paper's next questions ("1×30 or 1×120 temporal filters? how many? how
stable across seeds?", Pons et al. 2016 §3) with the paper's own recipe: every grid point
(filter shapes, filter count, seed) is one K-fold cross-validation, and every
(grid point, fold) is one **task**. A sweep folder holds::

    sweep.json     the grid and the training options (written once; --resume must match)
    events.jsonl   one JSON event per line: sweep_start, task_start, task_epoch, task_end,
                   task_failed, sweep_end (what the CLI and the app show as progress)
    <point>/       one ordinary run folder per grid point (written by tfcnn.train.train_run),
                   which ``python -m tfcnn table`` and the app read unchanged

The engines that run the tasks (in this process, or one Ray task per fold) are in
:mod:`tfcnn.engines`; :func:`run_sweep` takes one.

The grid itself is a :class:`tfcnn.request.SweepRequest`; here are the sweep folder's format
(written and read), running it and the grid's summary table.
"""

from __future__ import annotations

import json
import os
import socket
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from tfcnn.atomic import write_json_atomic
from tfcnn.device import select_device
from tfcnn.errors import ConfigError, RunError
from tfcnn.request import GridPoint, SweepRequest, Task, show_value
from tfcnn.runs import (
    CONFIG_FILE,
    complete_folds,
    pid_alive,
    read_fold_result,
    read_results,
)
from tfcnn.table1 import table_row
from tfcnn.train import RunCancelled, train_run

SWEEP_FILE = "sweep.json"
EVENTS_FILE = "events.jsonl"

#: The states of a task (:func:`sweep_progress`).
TASK_STATES: tuple[str, ...] = ("pending", "running", "complete", "failed")


# --------------------------------------------------------------------------- the sweep folder


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def read_spec(out) -> SweepRequest:
    """The :class:`SweepRequest` of sweep folder ``out``; :class:`RunError` when it is none."""
    path = Path(out) / SWEEP_FILE
    try:
        return SweepRequest.from_dict(json.loads(path.read_text(encoding="utf-8")))
    except FileNotFoundError:
        raise RunError(f"{out}: not a sweep folder (no {SWEEP_FILE})") from None
    except (json.JSONDecodeError, KeyError, TypeError, ValueError, ConfigError) as exc:
        raise RunError(f"{path}: not a valid sweep file ({exc})") from None


def read_events(out) -> list[dict]:
    """All events of ``events.jsonl`` in order (a line being written is skipped)."""
    path = Path(out) / EVENTS_FILE
    try:
        lines = path.read_text(encoding="utf-8").split("\n")
    except FileNotFoundError:
        return []
    events = []
    for line in lines:
        if line.strip():
            try:
                events.append(json.loads(line))
            except json.JSONDecodeError:
                continue  # the last line, being appended right now
    return events


def prepare_sweep(spec: SweepRequest, out, *, resume: bool) -> Path:
    """Create sweep folder ``out`` (new or empty) or reopen it for ``resume``.

    Raises
    ------
    RunError
        A non-empty folder without ``resume``; on ``resume``, a folder that is not a sweep,
        whose grid or options differ, or whose sweep is still running.
    """
    out = Path(out)
    if resume:
        # The device may change (resume a CPU sweep on a GPU cluster), nothing else.
        a, b = read_spec(out).to_dict(), spec.to_dict()
        diffs = [f"{k}: sweep has {a[k]!r}, now {b[k]!r}" for k in a
                 if k != "device" and a[k] != b.get(k)]
        if diffs:
            raise RunError(f"cannot resume {out}: the sweep differs ({'; '.join(diffs)})")
        state = sweep_state(out)
        if state == "running":
            raise RunError(f"cannot resume {out}: its sweep is still running")
        return out
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise RunError(f"sweep folder {out} already exists and is not empty; use --resume to "
                       f"continue it or choose another --out")
    out.mkdir(parents=True, exist_ok=True)
    write_json_atomic(out / SWEEP_FILE, spec.to_dict())
    return out


def pending_tasks(spec: SweepRequest, out) -> list[Task]:
    """The tasks whose fold is not complete (no ``fold-XX/result.json``) in ``out``."""
    out = Path(out)
    done: dict[str, set[int]] = {}
    for point in spec.points():
        run_dir = out / point.name
        done[point.name] = set(complete_folds(run_dir)) if run_dir.is_dir() else set()
    return [t for t in spec.tasks() if t.fold not in done[t.point.name]]


class _Events:
    """The sweep's ``events.jsonl`` plus an optional live callback (the CLI's progress)."""

    def __init__(self, out: Path, callback: Callable[[dict], None] | None):
        self.path = out / EVENTS_FILE
        self.callback = callback

    def __call__(self, event: dict) -> None:
        event = {**event, "time": event.get("time", time.time())}
        with open(self.path, "a", encoding="utf-8") as fh:
            fh.write(json.dumps(event, allow_nan=False) + "\n")
            fh.flush()
        if self.callback is not None:
            self.callback(event)


def task_event(kind: str, task: Task, **fields) -> dict:
    return {"event": kind, "task": task.key, "point": task.point.name, "fold": task.fold,
            **fields}


def _summary_stale(run_dir: Path) -> bool:
    """Whether ``run_dir`` has complete folds that its ``results.json`` does not cover."""
    if not run_dir.is_dir():
        return False
    done = complete_folds(run_dir)
    return bool(done) and (read_results(run_dir) or {}).get("folds") != done


def summarise_point(spec: SweepRequest, point: GridPoint, out) -> dict | None:
    """Rebuild ``results.json`` of a grid point's run folder from its complete folds.

    Through :func:`tfcnn.train.train_run` with ``resume`` over exactly the complete folds, so
    nothing is trained and the summary is the one a plain run writes. Returns it, or None
    when no fold is complete.
    """
    run_dir = Path(out) / point.name
    if not run_dir.is_dir():
        return None
    done = complete_folds(run_dir)
    if not done:
        return None
    request = spec.request(point, only_folds=done)
    try:
        select_device(request.device)
    except ConfigError:
        # trained on a device this machine lacks; nothing to train
        request = request.replace(device="cpu")
    return train_run(request, run_dir, resume=True)


# --------------------------------------------------------------------------- running


@dataclass
class SweepOutcome:
    """What :func:`run_sweep` did.

    Attributes
    ----------
    n_tasks : int
        Tasks of the whole grid.
    ran : list of str
        Keys of the tasks this invocation trained and completed.
    skipped : list of str
        Tasks complete before it started (``resume``).
    failed : dict
        ``{task key: message}`` of the tasks that failed (their folds stay missing).
    wall_s : float
    engine : str
    """

    n_tasks: int
    ran: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)
    wall_s: float = 0.0
    engine: str = ""


def run_sweep(spec: SweepRequest, out, *, engine, resume: bool = False,
              progress: Callable[[dict], None] | None = None) -> SweepOutcome:
    """Run every pending task of ``spec`` on ``engine``; each grid point ends as a run folder.

    Parameters
    ----------
    spec : SweepRequest
    out : str or Path
        The sweep folder: new or empty, or (``resume``) a sweep of the same ``spec``, whose
        complete folds are kept.
    engine : tfcnn.engines.LocalEngine or tfcnn.engines.RayEngine
        Anything with a ``name`` and ``run(spec, tasks, out, emit) -> {task key: message}``.
    resume : bool
    progress : callable, optional
        Called with every event written to ``events.jsonl``.

    Returns
    -------
    SweepOutcome
        A task that failed is listed there (and in the events); the others' folds are kept.
    """
    from tfcnn.cache import load_features
    from tfcnn.datasets import load_dataset

    out = prepare_sweep(spec, out, resume=resume)
    emit = _Events(out, progress)
    t0 = time.perf_counter()
    tasks = pending_tasks(spec, out)
    todo = {t.key for t in tasks}
    outcome = SweepOutcome(n_tasks=len(spec.tasks()), engine=engine.name,
                           skipped=[t.key for t in spec.tasks() if t.key not in todo])
    emit({"event": "sweep_start", "pid": os.getpid(), "host": socket.gethostname(),
          "engine": engine.name, "n_tasks": outcome.n_tasks, "pending": len(tasks),
          "started": _now()})
    try:
        # Features once here, so the tasks read the cache instead of all computing it.
        load_features(load_dataset(spec.base.data_dir))
        outcome.failed = engine.run(spec, tasks, out, emit) if tasks else {}
        for point in spec.points():
            # A sweep stopped between a fold's arrival and its summary left results.json
            # behind its folds.
            if _summary_stale(out / point.name):
                summarise_point(spec, point, out)
    except BaseException as exc:
        emit({"event": "sweep_end", "state": "cancelled" if isinstance(
            exc, (RunCancelled, KeyboardInterrupt)) else "failed",
            "message": str(exc) or type(exc).__name__})
        raise
    outcome.ran = [k for k in todo if k not in outcome.failed]
    outcome.wall_s = time.perf_counter() - t0
    emit({"event": "sweep_end", "state": "failed" if outcome.failed else "finished",
          "n_failed": len(outcome.failed), "wall_s": outcome.wall_s})
    return outcome


# --------------------------------------------------------------------------- reading a sweep


def sweep_state(out) -> str:
    """``running``, ``finished``, ``failed`` (some task failed, or the sweep), ``cancelled``,
    ``interrupted`` (its process is gone) or ``new`` (never started)."""
    starts = [e for e in read_events(out) if e.get("event") in ("sweep_start", "sweep_end")]
    if not starts:
        return "new"
    last = starts[-1]
    if last["event"] == "sweep_end":
        return str(last.get("state", "finished"))
    if last.get("host") not in (None, socket.gethostname()):
        return "running"  # on another machine: trust the events
    return "running" if pid_alive(last.get("pid")) else "interrupted"


@dataclass
class SweepProgress:
    """Where a sweep stands, from its folder (what the app shows).

    Attributes
    ----------
    state : str
        :func:`sweep_state`.
    tasks : list of dict
        One per task of the grid: ``task``, ``point``, ``fold``, ``state`` (one of
        :data:`TASK_STATES`), ``epoch`` (the last one reported by a running task),
        ``max_epochs``, ``accuracy`` (percent, complete tasks), ``attempts`` (starts seen,
        over every invocation of the sweep: more than one is a retry), ``message`` (the last
        failure, also when a later attempt is pending, running or complete).
    engine : str or None
    """

    state: str
    tasks: list[dict]
    engine: str | None

    def counts(self) -> dict[str, int]:
        """Tasks per state."""
        return {s: sum(1 for t in self.tasks if t["state"] == s) for s in TASK_STATES}


def sweep_progress(out, *, spec: SweepRequest | None = None) -> SweepProgress:
    """Every task's state in sweep folder ``out``: the folds on disk, then the events.

    ``spec`` stands in for ``sweep.json`` until the sweep has written it (a sweep queued or
    starting: every task pending).
    """
    if spec is None or (Path(out) / SWEEP_FILE).is_file():
        spec = read_spec(out)
    events = read_events(out)
    state = sweep_state(out)
    max_epochs = spec.base.train_config().max_epochs
    last_start = max((i for i, e in enumerate(events) if e.get("event") == "sweep_start"),
                     default=-1)
    rows = {}
    for task in spec.tasks():
        rows[task.key] = {"task": task.key, "point": task.point.name, "fold": task.fold,
                          "state": "pending", "epoch": 0, "max_epochs": max_epochs,
                          "accuracy": None, "attempts": 0, "message": None}
    for i, event in enumerate(events):
        row = rows.get(event.get("task"))
        if row is None:
            continue
        kind = event.get("event")
        # Before the last sweep_start: an earlier invocation, whose unfinished tasks this one
        # trains again (--resume); only its attempts and failures still count.
        current = i > last_start
        if kind == "task_start":
            row["attempts"] += 1
            if current:
                row.update(state="running", epoch=0)
        elif kind == "task_epoch" and current:
            row["epoch"] = max(row["epoch"] if row["state"] == "running" else 0,
                               int(event.get("epoch") or 0))
        elif kind == "task_failed":
            row["message"] = event.get("message")
            if current:
                row["state"] = "failed"
    for point in spec.points():
        run_dir = Path(out) / point.name
        if not run_dir.is_dir():
            continue
        for fold in complete_folds(run_dir):
            row = rows.get(Task(point, fold).key)
            if row is not None:
                result = read_fold_result(run_dir, fold) or {}
                row.update(state="complete", accuracy=result.get("accuracy"))
    if state != "running":
        for row in rows.values():
            if row["state"] == "running":
                row["state"] = "pending"  # its process is gone: --resume trains it
    return SweepProgress(state=state, tasks=list(rows.values()),
                         engine=next((e.get("engine") for e in reversed(events)
                                      if e.get("event") == "sweep_start"), None))


def grid_rows(out) -> list[dict]:
    """One row per grid point: its swept parameters, seed and Table 1 numbers.

    Returns
    -------
    list of dict
        ``point``, each swept parameter (shapes as ``1x60``), ``seed``, ``mean``, ``std``
        (percent over complete folds, None before the first), ``n_folds_complete``,
        ``n_folds``, ``accuracies`` (per complete fold), ``status``.
    """
    spec = read_spec(out)
    rows = []
    for point in spec.points():
        run_dir = Path(out) / point.name
        row = {"point": point.name, **{k: show_value(k, v) for k, v in point.params},
               "seed": point.seed, "mean": None, "std": None, "n_folds_complete": 0,
               "n_folds": spec.base.n_folds, "accuracies": [], "status": "pending"}
        if (run_dir / CONFIG_FILE).is_file():
            table = table_row(run_dir)
            row.update(mean=table["mean"], std=table["std"],
                       n_folds_complete=table["n_folds_complete"], status=table["status"],
                       accuracies=[float((read_fold_result(run_dir, k) or {}).get("accuracy"))
                                   for k in complete_folds(run_dir)])
        rows.append(row)
    return rows


def seed_summary(rows: Sequence[dict], params: Sequence[str]) -> list[dict]:
    """Grid rows grouped over seeds: per parameter setting, the seeds' spread.

    Parameters
    ----------
    rows : sequence of dict
        :func:`grid_rows`.
    params : sequence of str
        The swept parameters (the grouping keys).

    Returns
    -------
    list of dict
        Per setting: its ``params`` values, ``n_seeds`` (with a mean), ``mean`` (of the
        seeds' cross-validation means), ``seed_std`` (``np.std`` of those means), ``min``,
        ``max``; None where no seed has a complete fold.
    """
    groups: dict[tuple, list[float]] = {}
    for row in rows:
        key = tuple(row.get(p) for p in params)
        groups.setdefault(key, [])
        if row.get("mean") is not None:
            groups[key].append(float(row["mean"]))
    summary = []
    for key, means in groups.items():
        values = np.asarray(means, dtype=np.float64)
        summary.append({**dict(zip(params, key)), "n_seeds": int(values.size),
                        "mean": float(values.mean()) if values.size else None,
                        "seed_std": float(values.std()) if values.size else None,
                        "min": float(values.min()) if values.size else None,
                        "max": float(values.max()) if values.size else None})
    return summary


def format_grid(rows: Sequence[dict], summary: Sequence[dict], params: Sequence[str]) -> str:
    """The grid as aligned text: one line per grid point, then the seeds' spread per setting."""
    def pm(mean, std):
        return "-" if mean is None else f"{mean:.2f} ± {std:.2f} %"

    def table(header, body):
        widths = [max(len(line[i]) for line in [header, *body]) for i in range(len(header))]
        lines = ["  ".join(c.ljust(w) for c, w in zip(line, widths)).rstrip()
                 for line in [header, *body]]
        lines.insert(1, "  ".join("-" * w for w in widths))
        return lines

    first = table((*params, "seed", "accuracy (folds)", "folds", "status"),
                  [(*(str(r.get(p)) for p in params), str(r["seed"]), pm(r["mean"], r["std"]),
                    f"{r['n_folds_complete']}/{r['n_folds']}", str(r["status"]))
                   for r in rows])
    second = table((*params, "seeds", "mean over seeds ± std", "min", "max"),
                   [(*(str(s.get(p)) for p in params), str(s["n_seeds"]),
                     pm(s["mean"], s["seed_std"]),
                     "-" if s["min"] is None else f"{s['min']:.2f}",
                     "-" if s["max"] is None else f"{s['max']:.2f}") for s in summary])
    return "\n".join([*first, "", *second])
