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

Engines (:data:`ENGINES`):

- ``local``: in this process; the pending folds of one grid point train together through
  :func:`tfcnn.train.train_run` (the fold-parallel kernel where it pays).
- ``ray``: one Ray task per (grid point, fold), each asking for its CPUs (and one GPU when
  training on CUDA). A task trains its fold with ``train_run(only_folds=[k])`` into a private
  scratch folder on its worker and returns the fold's files; this process alone writes the
  grid point's run folder (config.json once, then each fold-XX folder, result.json last), so
  concurrent folds of one grid point never write the same file and no shared file system is
  needed. Once all tasks of a grid point are settled, ``results.json`` is rebuilt from the
  complete folds by ``train_run(resume=True)`` over exactly those folds. A worker that dies
  is retried by Ray (``retries``); a task that still fails is reported, the others' folds
  are kept, and ``--resume`` trains only the missing folds.

A fold's split and seed depend only on the data set, K and the grid point's seed, so fold k
trained alone (ray) is the fold k of the whole run (local). The fold-parallel kernel draws
dropout masks differently from a fold trained alone, so the engines agree statistically,
not bit for bit (see :mod:`tfcnn.parallel`).
"""

from __future__ import annotations

import itertools
import json
import os
import shutil
import socket
import tempfile
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from tfcnn.atomic import write_bytes_atomic, write_json_atomic
from tfcnn.config import PRESETS
from tfcnn.errors import ConfigError, RunError, TfcnnError
from tfcnn.eventbuffer import EventBuffer
from tfcnn.runs import (
    CONFIG_FILE,
    FOLD_MODEL_FILE,
    FOLD_RESULT_FILE,
    append_event,
    complete_folds,
    fold_dir,
    process_alive,
    read_config,
    read_fold_result,
    read_progress,
    read_results,
    table_row,
)
from tfcnn.train import RESUME_KEYS, RunCancelled, select_device, train_run

SWEEP_FILE = "sweep.json"
EVENTS_FILE = "events.jsonl"

#: The architecture parameters a sweep can vary, in the order they name a grid point.
SWEEP_PARAMS: tuple[str, ...] = ("time_filter", "freq_filter", "n_filters")

#: Short tags of :data:`SWEEP_PARAMS` in grid point names (``time-t1x60-n16-s0``).
_TAGS = {"time_filter": "t", "freq_filter": "f", "n_filters": "n"}

#: The states of a task (:func:`sweep_progress`).
TASK_STATES: tuple[str, ...] = ("pending", "running", "complete", "failed")

#: Fold-level events a task copies from its scratch run into the grid point's progress.jsonl.
_FOLD_EVENTS = ("fold_start", "epoch", "fold_end")

#: Ray's setting (an environment variable read by ``ray.init``) of its workers' niceness.
RAY_WORKER_NICENESS = "RAY_worker_niceness"

#: Seconds between two epoch events a Ray task reports (the last epoch is always reported).
EPOCH_REPORT_S = 0.5


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


def _task_event(kind: str, task: Task, **fields) -> dict:
    return {"event": kind, "task": task.key, "point": task.point.name, "fold": task.fold,
            **fields}


# --------------------------------------------------------------------------- one Ray task


def run_fold_task(spec: dict, point: dict, fold: int, *, threads: int | None = None,
                  report: Callable[[dict], None] | None = None) -> dict:
    """Train one fold of one grid point into a scratch folder; return the fold's files.

    What a Ray worker runs. Plain data in and out (dicts, bytes), so it runs wherever the
    package imports, with or without a file system shared with the caller.

    Parameters
    ----------
    spec, point : dict
        :meth:`SweepSpec.to_dict` and :meth:`GridPoint.to_dict`.
    fold : int
    threads : int, optional
        torch CPU threads (the CPUs the task asked for).
    report : callable, optional
        Called with ``task_start`` and ``task_epoch`` events as they happen.

    Returns
    -------
    dict
        ``config`` (the run's config.json), ``files`` ({name: bytes} of ``fold-XX/``),
        ``events`` (the fold's progress events), ``result`` (its result.json), ``pid``,
        ``host``, ``seconds``.
    """
    import torch

    sweep, grid_point = SweepSpec.from_dict(spec), GridPoint.from_dict(point)
    task = Task(grid_point, int(fold))
    if threads is not None:
        torch.set_num_threads(int(threads))
    t0 = time.perf_counter()
    emit = report or (lambda event: None)
    emit(_task_event("task_start", task, pid=os.getpid(), host=socket.gethostname()))
    last, max_epochs = [0.0], [None]

    def on_event(event: dict) -> None:
        if event.get("event") == "fold_start":
            max_epochs[0] = event.get("max_epochs")
        if event.get("event") != "epoch":
            return
        now = time.perf_counter()
        final = event.get("epoch") == max_epochs[0]
        if final or now - last[0] >= EPOCH_REPORT_S:
            last[0] = now
            emit(_task_event("task_epoch", task, epoch=event.get("epoch"),
                             stage=event.get("stage"), val_acc=event.get("val_acc")))

    with tempfile.TemporaryDirectory(prefix="tfcnn-task-") as scratch:
        run_dir = Path(scratch) / grid_point.name
        train_run(sweep.data_dir, out_dir=run_dir, only_folds=[task.fold], progress=on_event,
                  **sweep.train_kwargs(grid_point))
        directory = fold_dir(run_dir, task.fold)
        files = {p.name: p.read_bytes() for p in sorted(directory.iterdir()) if p.is_file()}
        events = [e for e in read_progress(run_dir) if e.get("event") in _FOLD_EVENTS]
        return {"config": read_config(run_dir), "files": files, "events": events,
                "result": read_fold_result(run_dir, task.fold), "pid": os.getpid(),
                "host": socket.gethostname(), "seconds": time.perf_counter() - t0}


def install_fold(run_dir, fold: int, outcome: dict) -> None:
    """Write one fold returned by :func:`run_fold_task` into the grid point's run folder.

    ``config.json`` is written by the first fold to arrive; a later fold must agree with it
    on :data:`tfcnn.train.RESUME_KEYS`. The fold's files go in with ``result.json`` last (a
    fold is complete iff it exists), and its epoch events are appended to the run's
    progress.jsonl so the app shows its curves.

    Raises
    ------
    RunError
        A fold trained with a configuration other than the run folder's.
    """
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    config = {**outcome["config"], "only_folds": None}
    if (run_dir / CONFIG_FILE).is_file():
        old = read_config(run_dir)
        diffs = [k for k in RESUME_KEYS if old.get(k) != config.get(k)]
        if diffs:
            raise RunError(f"{run_dir}: fold {fold} was trained with another "
                           f"configuration ({', '.join(diffs)} differ)")
    else:
        write_json_atomic(run_dir / CONFIG_FILE, config)
    directory = fold_dir(run_dir, fold)
    if directory.exists():
        shutil.rmtree(directory)  # an incomplete fold left by an interrupted run
    files = outcome["files"]
    if FOLD_RESULT_FILE not in files or FOLD_MODEL_FILE not in files:
        raise RunError(f"{run_dir}: fold {fold} came back without its "
                       f"{FOLD_MODEL_FILE} and {FOLD_RESULT_FILE}")
    for name, data in files.items():
        if name != FOLD_RESULT_FILE:
            write_bytes_atomic(directory / name, data, fsync=name == FOLD_MODEL_FILE)
    for event in outcome["events"]:
        append_event(run_dir, event)
    write_bytes_atomic(directory / FOLD_RESULT_FILE, files[FOLD_RESULT_FILE])


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


# --------------------------------------------------------------------------- engines


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


class LocalEngine:
    """Every pending fold of a grid point trained together in this process (``train_run``)."""

    name = "local"

    def __init__(self, *, threads: int | None = None) -> None:
        self.threads = threads

    def run(self, spec: SweepSpec, tasks: list[Task], out: Path,
            emit: Callable[[dict], None]) -> dict[str, str]:
        """Train ``tasks``; returns ``{task key: message}`` of the failed ones."""
        import torch

        if self.threads is not None:
            torch.set_num_threads(int(self.threads))
        failed: dict[str, str] = {}
        for point in _points_of(tasks):
            folds = [t.fold for t in tasks if t.point == point]
            by_fold = {fold: Task(point, fold) for fold in folds}

            def on_event(event: dict, by_fold=by_fold) -> None:
                task = by_fold.get(event.get("fold"))
                kind = event.get("event")
                if task is None:
                    return
                if kind == "fold_start":
                    emit(_task_event("task_start", task, pid=os.getpid(),
                                     host=socket.gethostname()))
                elif kind == "epoch":
                    emit(_task_event("task_epoch", task, epoch=event.get("epoch"),
                                     stage=event.get("stage"), val_acc=event.get("val_acc")))
                elif kind == "fold_end":
                    emit(_task_event("task_end", task, accuracy=event.get("accuracy"),
                                     seconds=event.get("seconds")))

            run_dir = out / point.name
            try:
                train_run(spec.data_dir, out_dir=run_dir, only_folds=folds,
                          resume=(run_dir / CONFIG_FILE).is_file(), progress=on_event,
                          **spec.train_kwargs(point))
            except RunCancelled:
                raise
            except TfcnnError as exc:
                # One grid point's failure (a diverged fold, a bad folder) is reported; the
                # other grid points still train.
                done = set(complete_folds(run_dir)) if run_dir.is_dir() else set()
                for fold, task in by_fold.items():
                    if fold not in done:
                        failed[task.key] = str(exc)
                        emit(_task_event("task_failed", task, message=str(exc)))
        return failed


def _points_of(tasks: Iterable[Task]) -> list[GridPoint]:
    """The grid points of ``tasks``, in first-seen order."""
    return list(dict.fromkeys(t.point for t in tasks))


class RayEngine:
    """One Ray task per (grid point, fold).

    Parameters
    ----------
    address : str, optional
        An existing cluster's address (``ray start --head`` prints it; ``auto`` finds one
        started on this machine). None: a Ray sized to this machine is started here and
        stopped at the end; an already initialised Ray in this process is used as it is.
    cpus_per_task : int
        CPUs each task asks for (and torch threads it uses).
    gpus_per_task : float, optional
        GPUs each task asks for; None: 1 when training on CUDA (device ``cuda``, or
        ``auto`` on a cluster that has GPUs), else 0.
    retries : int
        How often Ray reruns a task whose worker died (killed, out of memory, node lost).
        A task that raises an error is not retried: it would fail the same way.
    """

    name = "ray"

    def __init__(self, *, address: str | None = None, cpus_per_task: int = 1,
                 gpus_per_task: float | None = None, retries: int = 2) -> None:
        if isinstance(cpus_per_task, bool) or not isinstance(cpus_per_task, int) \
                or cpus_per_task < 1:
            raise ConfigError(f"cpus per task must be an integer >= 1, got {cpus_per_task!r}")
        if isinstance(retries, bool) or not isinstance(retries, int) or retries < 0:
            raise ConfigError(f"retries must be an integer >= 0, got {retries!r}")
        if gpus_per_task is not None and not gpus_per_task >= 0:
            raise ConfigError(f"gpus per task must be >= 0, got {gpus_per_task!r}")
        self.address = address
        self.cpus_per_task = cpus_per_task
        self.gpus_per_task = gpus_per_task
        self.retries = retries

    def _connect(self):
        """``(ray, started_here)``: Ray imported and initialised."""
        os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
        try:
            import ray  # heavy (seconds): imported only when this engine runs
        except ImportError:
            raise ConfigError("the ray engine needs the ray package (pip install ray)") \
                from None
        if ray.is_initialized():
            return ray, False
        try:
            if self.address:
                ray.init(address=self.address, log_to_driver=False)
            else:
                # Ray runs its workers at nice 15 so its own daemons stay responsive; on a
                # machine that does other work the tasks then starve (on a loaded 2-core
                # machine: 35 s instead of 0.5 s per tiny task). The sweep is this
                # machine's job: its workers keep the driver's priority.
                os.environ.setdefault(RAY_WORKER_NICENESS, "0")
                ray.init(num_cpus=os.cpu_count(), include_dashboard=False,
                         log_to_driver=False)
        except (ConnectionError, RuntimeError, ValueError) as exc:
            where = self.address or "a local Ray"
            raise RunError(f"cannot start or join {where}: {exc}") from None
        return ray, True

    def _gpus(self, ray, spec: SweepSpec) -> float:
        if self.gpus_per_task is not None:
            return float(self.gpus_per_task)
        if spec.device.startswith("cuda"):
            return 1.0
        if spec.device == "auto" and ray.cluster_resources().get("GPU", 0) > 0:
            return 1.0
        return 0.0

    def run(self, spec: SweepSpec, tasks: list[Task], out: Path,
            emit: Callable[[dict], None]) -> dict[str, str]:
        """Train ``tasks`` on Ray; returns ``{task key: message}`` of the failed ones."""
        ray, started_here = self._connect()
        try:
            return self._run(ray, spec, tasks, out, emit)
        finally:
            if started_here:
                ray.shutdown()

    def _run(self, ray, spec: SweepSpec, tasks: list[Task], out: Path,
             emit: Callable[[dict], None]) -> dict[str, str]:
        # The tasks' events: sent without waiting (a task blocked in ray.get lends its CPU
        # to another task, which would run more tasks than CPUs); no CPU for the buffer.
        buffer = ray.remote(num_cpus=0)(EventBuffer).remote()
        remote = ray.remote(_ray_fold_task).options(
            num_cpus=self.cpus_per_task, num_gpus=self._gpus(ray, spec),
            max_retries=self.retries, retry_exceptions=False)
        spec_dict = spec.to_dict()
        refs = {remote.remote(spec_dict, task.point.to_dict(), task.fold,
                              self.cpus_per_task, buffer): task for task in tasks}
        left = {point: sum(1 for t in tasks if t.point == point) for point in _points_of(tasks)}
        failed: dict[str, str] = {}

        def drain() -> None:
            for event in ray.get(buffer.take.remote()):
                emit(event)

        try:
            while refs:
                ready, _ = ray.wait(list(refs), num_returns=len(refs), timeout=0.5)
                drain()
                for ref in ready:
                    task = refs.pop(ref)
                    try:
                        outcome = ray.get(ref)
                        install_fold(out / task.point.name, task.fold, outcome)
                        result = outcome.get("result") or {}
                        emit(_task_event("task_end", task, accuracy=result.get("accuracy"),
                                         seconds=outcome.get("seconds"),
                                         pid=outcome.get("pid"), host=outcome.get("host")))
                    except (ray.exceptions.RayError, TfcnnError) as exc:
                        failed[task.key] = _short_error(exc)
                        emit(_task_event("task_failed", task, message=failed[task.key]))
                    left[task.point] -= 1
                    if left[task.point] == 0:
                        summarise_point(spec, task.point, out)
            drain()
        except BaseException:
            for ref in refs:
                ray.cancel(ref, force=True)
            raise
        finally:
            ray.kill(buffer)
        return failed


def _ray_fold_task(spec: dict, point: dict, fold: int, threads: int, buffer) -> dict:
    """:func:`run_fold_task` in a Ray worker, its events sent to ``buffer`` (an actor of
    :class:`EventBuffer`) without waiting."""
    return run_fold_task(spec, point, fold, threads=threads,
                         report=lambda event: buffer.put.remote(event))


def _short_error(exc: BaseException) -> str:
    """One line for a task's error: the cause's own message, not Ray's whole traceback."""
    cause = getattr(exc, "cause", None)
    if isinstance(cause, BaseException):
        exc = cause
    text = str(exc).strip().splitlines()
    first = next((line for line in text if line.strip()), type(exc).__name__)
    return f"{type(exc).__name__}: {first}" if not isinstance(exc, TfcnnError) else first


#: Engine name → class.
ENGINES: dict[str, type] = {"local": LocalEngine, "ray": RayEngine}


def make_engine(name: str, **options):
    """The engine called ``name`` with its ``options``; :class:`ConfigError` names the valid
    ones for an unknown name."""
    try:
        cls = ENGINES[name]
    except KeyError:
        raise ConfigError(f"unknown engine {name!r}; valid engines: {', '.join(ENGINES)}") \
            from None
    return cls(**options)


def run_sweep(spec: SweepSpec, out, *, engine, resume: bool = False,
              progress: Callable[[dict], None] | None = None) -> SweepOutcome:
    """Run every pending task of ``spec`` on ``engine``; each grid point ends as a run folder.

    Parameters
    ----------
    spec : SweepSpec
    out : str or Path
        The sweep folder: new or empty, or (``resume``) a sweep of the same ``spec``, whose
        complete folds are kept.
    engine : LocalEngine or RayEngine
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
        :data:`TASK_STATES`), ``epoch``, ``max_epochs``, ``accuracy`` (percent, complete
        tasks), ``attempts`` (starts seen), ``message`` (failed tasks).
    engine : str or None
    """

    state: str
    tasks: list[dict]
    engine: str | None

    def counts(self) -> dict[str, int]:
        """Tasks per state."""
        return {s: sum(1 for t in self.tasks if t["state"] == s) for s in TASK_STATES}


def sweep_progress(out) -> SweepProgress:
    """Every task's state in sweep folder ``out``: the folds on disk, then the events."""
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
        current = i > last_start
        if kind == "task_start" and current:
            row.update(state="running", epoch=0, attempts=row["attempts"] + 1, message=None)
        elif kind == "task_epoch" and current:
            row["epoch"] = max(row["epoch"] if row["state"] == "running" else 0,
                               int(event.get("epoch") or 0))
        elif kind == "task_failed":
            row.update(state="failed", message=event.get("message"))
    for point in spec.points():
        run_dir = Path(out) / point.name
        if not run_dir.is_dir():
            continue
        for fold in complete_folds(run_dir):
            row = rows.get(Task(point, fold).key)
            if row is not None:
                result = read_fold_result(run_dir, fold) or {}
                row.update(state="complete", accuracy=result.get("accuracy"), message=None)
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
