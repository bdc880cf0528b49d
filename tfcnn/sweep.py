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

Longer than 600 lines: the grid, the sweep folder's format (written and read) and the grid's
summary table live together, as the run folder's do in :mod:`tfcnn.runs`.
"""

from __future__ import annotations

import itertools
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
from tfcnn.config import PRESETS
from tfcnn.device import select_device
from tfcnn.errors import ConfigError, RunError, TfcnnError
from tfcnn.runs import (
    CONFIG_FILE,
    complete_folds,
    process_alive,
    read_fold_result,
    read_results,
)
from tfcnn.table1 import table_row
from tfcnn.train import RunCancelled, train_run

SWEEP_FILE = "sweep.json"
EVENTS_FILE = "events.jsonl"

#: The architecture parameters a sweep can vary, in the order they name a grid point.
SWEEP_PARAMS: tuple[str, ...] = ("time_filter", "freq_filter", "n_filters")

#: Short tags of :data:`SWEEP_PARAMS` in grid point names (``time-t1x60-n16-s0``).
_TAGS = {"time_filter": "t", "freq_filter": "f", "n_filters": "n"}

#: The states of a task (:func:`sweep_progress`).
TASK_STATES: tuple[str, ...] = ("pending", "running", "complete", "failed")


# --------------------------------------------------------------------------- the grid


def format_param(value) -> str:
    """A grid value as the CLI writes it: ``(1, 60)`` → ``1x60``, ``16`` → ``16``."""
    if isinstance(value, (tuple, list)):
        return "x".join(str(int(v)) for v in value)
    return str(value)


def _json_value(value):
    return list(value) if isinstance(value, tuple) else value


def _frozen_value(value):
    return tuple(int(v) for v in value) if isinstance(value, (list, tuple)) else value


@dataclass(frozen=True)
class GridPoint:
    """One cross-validation of a sweep: architecture parameters and a seed.

    Attributes
    ----------
    params : tuple of (name, value)
        Swept architecture parameters in :data:`SWEEP_PARAMS` order; shapes as int tuples.
    seed : int
    """

    params: tuple[tuple[str, object], ...]
    seed: int

    @property
    def name(self) -> str:
        """Its run folder's name, e.g. ``t1x60-n16-s0``."""
        parts = [f"{_TAGS[k]}{format_param(v)}" for k, v in self.params]
        return "-".join([*parts, f"s{self.seed}"])

    @property
    def arch_params(self) -> dict:
        return dict(self.params)

    def to_dict(self) -> dict:
        return {"params": {k: _json_value(v) for k, v in self.params}, "seed": self.seed}

    @classmethod
    def from_dict(cls, data: dict) -> "GridPoint":
        params = data["params"]
        return cls(params=tuple((k, _frozen_value(params[k])) for k in SWEEP_PARAMS
                                if k in params), seed=int(data["seed"]))


@dataclass(frozen=True)
class Task:
    """One fold of one grid point: the unit an engine schedules."""

    point: GridPoint
    fold: int

    @property
    def key(self) -> str:
        """``<point>/fold-XX``: the task's name in events and messages."""
        return f"{self.point.name}/fold-{self.fold:02d}"


@dataclass(frozen=True)
class SweepSpec:
    """What a sweep trains: build one with :func:`make_spec` (it validates).

    Attributes
    ----------
    data_dir : str
        Data set folder (absolute).
    arch : str
    grid : tuple of (name, tuple of values)
        The swept parameters (a subset of :data:`SWEEP_PARAMS`, in that order), each with
        its values; unswept parameters keep the architecture's defaults.
    seeds : tuple of int
    n_folds, preset, protocol, device
        As for :func:`tfcnn.train.train_run`.
    overrides : tuple of (name, value)
        TrainConfig overrides (``max_epochs``, ``lr``, ``batch_size``, ``amp``).
    """

    data_dir: str
    arch: str
    grid: tuple[tuple[str, tuple], ...]
    seeds: tuple[int, ...]
    n_folds: int = 10
    preset: str = "quick"
    protocol: str = "clean"
    device: str = "auto"
    overrides: tuple[tuple[str, object], ...] = ()

    def points(self) -> list[GridPoint]:
        """Every grid point: the product of the swept values, then the seeds."""
        names = [name for name, _ in self.grid]
        points = []
        for values in itertools.product(*(vals for _, vals in self.grid)):
            for seed in self.seeds:
                points.append(GridPoint(params=tuple(zip(names, values)), seed=seed))
        return points

    def tasks(self) -> list[Task]:
        """Every (grid point, fold), grid point by grid point."""
        return [Task(point, fold) for point in self.points() for fold in range(self.n_folds)]

    def train_kwargs(self, point: GridPoint) -> dict:
        """Keyword arguments of :func:`tfcnn.train.train_run` for ``point`` (no folder)."""
        return dict(arch=self.arch, n_folds=self.n_folds, preset=self.preset,
                    protocol=self.protocol, device=self.device, seed=point.seed,
                    overrides=dict(self.overrides), arch_params=point.arch_params or None)

    def to_dict(self) -> dict:
        return {"data": self.data_dir, "arch": self.arch,
                "grid": {k: [_json_value(v) for v in vals] for k, vals in self.grid},
                "seeds": list(self.seeds), "n_folds": self.n_folds, "preset": self.preset,
                "protocol": self.protocol, "device": self.device,
                "overrides": dict(self.overrides)}

    @classmethod
    def from_dict(cls, data: dict) -> "SweepSpec":
        grid = data.get("grid", {})
        return cls(data_dir=str(data["data"]), arch=str(data["arch"]),
                   grid=tuple((k, tuple(_frozen_value(v) for v in grid[k]))
                              for k in SWEEP_PARAMS if k in grid),
                   seeds=tuple(int(s) for s in data["seeds"]), n_folds=int(data["n_folds"]),
                   preset=str(data["preset"]), protocol=str(data["protocol"]),
                   device=str(data["device"]),
                   overrides=tuple(sorted(data.get("overrides", {}).items())))


def parse_list(text: str, *, name: str, item: Callable[[str], object]) -> list:
    """``"a,b,c"`` → ``[item("a"), item("b"), item("c")]``; :class:`ConfigError` on a bad one."""
    parts = [part.strip() for part in str(text).split(",") if part.strip()]
    if not parts:
        raise ConfigError(f"{name} got no value in {text!r}")
    values = []
    for part in parts:
        try:
            values.append(item(part))
        except (ValueError, TfcnnError):
            raise ConfigError(f"{name}: cannot read {part!r} in {text!r}") from None
    if len(set(values)) != len(values):
        raise ConfigError(f"{name} lists a value twice: {text!r}")
    return values


def make_spec(data_dir, *, arch: str, seeds: Sequence[int], time_filters=None,
              freq_filters=None, n_filters=None, n_folds: int = 10, preset: str = "quick",
              protocol: str = "clean", device: str = "auto",
              overrides: dict | None = None) -> SweepSpec:
    """A validated :class:`SweepSpec`: every grid point builds a model before anything runs.

    Parameters
    ----------
    data_dir : str or Path
    arch : str
    seeds : sequence of int
        One cross-validation per seed and grid point.
    time_filters, freq_filters : sequence of (int, int), optional
        Filter shapes (bins × frames) to sweep; None keeps the architecture's default.
    n_filters : sequence of int, optional
        Filters per convolution branch to sweep.
    n_folds, preset, protocol, device, overrides
        As for :func:`tfcnn.train.train_run` (None overrides are dropped).

    Raises
    ------
    ConfigError
        Unknown architecture, preset or protocol; a swept parameter the architecture does not
        take; a shape that does not fit; bad seeds or folds.
    """
    from tfcnn.folds import PROTOCOLS
    from tfcnn.models import ARCHITECTURES, arch_param_names, build_model

    if arch not in ARCHITECTURES:
        raise ConfigError(
            f"unknown architecture {arch!r}; valid architectures: {', '.join(ARCHITECTURES)}")
    if preset not in PRESETS:
        raise ConfigError(f"unknown preset {preset!r}; valid presets: {', '.join(PRESETS)}")
    if protocol not in PROTOCOLS:
        raise ConfigError(
            f"unknown protocol {protocol!r}; valid protocols: {', '.join(PROTOCOLS)}")
    if isinstance(n_folds, bool) or not isinstance(n_folds, int) or n_folds < 2:
        raise ConfigError(f"n_folds must be an integer >= 2, got {n_folds!r}")
    seeds = list(seeds)
    if not seeds or any(isinstance(s, bool) or not isinstance(s, int) or s < 0 for s in seeds):
        raise ConfigError(f"seeds must be integers >= 0, got {seeds!r}")
    if len(set(seeds)) != len(seeds):
        raise ConfigError(f"seeds lists a seed twice: {seeds!r}")
    given = {"time_filter": time_filters, "freq_filter": freq_filters, "n_filters": n_filters}
    accepted = set(arch_param_names(arch))
    grid = []
    for name in SWEEP_PARAMS:
        values = given[name]
        if values is None:
            continue
        if name not in accepted:
            raise ConfigError(
                f"architecture {arch!r} has no {name}; it takes "
                f"{', '.join(p for p in SWEEP_PARAMS if p in accepted) or 'none of them'}")
        values = tuple(_frozen_value(v) for v in values)
        if not values:
            raise ConfigError(f"{name}: no value to sweep")
        grid.append((name, values))
    spec = SweepSpec(
        data_dir=str(Path(data_dir).resolve()), arch=arch, grid=tuple(grid),
        seeds=tuple(seeds), n_folds=n_folds, preset=preset, protocol=protocol, device=device,
        overrides=tuple(sorted((k, v) for k, v in (overrides or {}).items() if v is not None)))
    for point in spec.points():
        if point.seed == spec.seeds[0]:
            build_model(arch, **point.arch_params)  # raises ConfigError for a bad shape
    return spec


# --------------------------------------------------------------------------- the sweep folder


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def read_spec(out) -> SweepSpec:
    """The :class:`SweepSpec` of sweep folder ``out``; :class:`RunError` when it is none."""
    path = Path(out) / SWEEP_FILE
    try:
        return SweepSpec.from_dict(json.loads(path.read_text(encoding="utf-8")))
    except FileNotFoundError:
        raise RunError(f"{out}: not a sweep folder (no {SWEEP_FILE})") from None
    except (json.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
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


def prepare_sweep(spec: SweepSpec, out, *, resume: bool) -> Path:
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


def pending_tasks(spec: SweepSpec, out) -> list[Task]:
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


def summarise_point(spec: SweepSpec, point: GridPoint, out) -> dict | None:
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
    kwargs = spec.train_kwargs(point)
    try:
        select_device(spec.device)
    except ConfigError:
        kwargs["device"] = "cpu"  # trained on a device this machine lacks; nothing to train
    return train_run(spec.data_dir, out_dir=run_dir, only_folds=done, resume=True, **kwargs)


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


def run_sweep(spec: SweepSpec, out, *, engine, resume: bool = False,
              progress: Callable[[dict], None] | None = None) -> SweepOutcome:
    """Run every pending task of ``spec`` on ``engine``; each grid point ends as a run folder.

    Parameters
    ----------
    spec : SweepSpec
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
        load_features(load_dataset(spec.data_dir))
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
    return "running" if process_alive(last.get("pid")) else "interrupted"


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


def sweep_progress(out, *, spec: SweepSpec | None = None) -> SweepProgress:
    """Every task's state in sweep folder ``out``: the folds on disk, then the events.

    ``spec`` stands in for ``sweep.json`` until the sweep has written it (a sweep queued or
    starting: every task pending).
    """
    if spec is None or (Path(out) / SWEEP_FILE).is_file():
        spec = read_spec(out)
    events = read_events(out)
    state = sweep_state(out)
    max_epochs = dict(spec.overrides).get("max_epochs", PRESETS[spec.preset].max_epochs)
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
        row = {"point": point.name, **{k: format_param(v) for k, v in point.params},
               "seed": point.seed, "mean": None, "std": None, "n_folds_complete": 0,
               "n_folds": spec.n_folds, "accuracies": [], "status": "pending"}
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
