"""Engines that run a sweep's tasks (:mod:`tfcnn.sweep`): every (grid point, fold) a task.

- ``local`` (:class:`LocalEngine`): in this process; the pending folds of one grid point
  train together through :func:`tfcnn.train.train_run` (the fold-parallel kernel where it
  pays).
- ``ray`` (:class:`RayEngine`): one Ray task per (grid point, fold), each asking for its CPUs
  (and one GPU when training on CUDA). A task (:func:`run_fold_task`) trains its fold with
  ``train_run(only_folds=[k])`` into a private scratch folder on its worker and returns the
  fold's files; the sweep process alone writes the grid point's run folder
  (:func:`install_fold`: config.json once, then each fold-XX folder, result.json last), so
  concurrent folds of one grid point never write the same file and no shared file system is
  needed. Once all tasks of a grid point are settled, ``results.json`` is rebuilt from the
  complete folds (:func:`tfcnn.sweep.summarise_point`). A worker that dies is retried by Ray
  (``retries``); a task that still fails is reported, the others' folds are kept, and
  ``--resume`` trains only the missing folds.

A fold's split and seed depend only on the data set, K and the grid point's seed, so fold k
trained alone (ray) is the fold k of the whole run (local). The fold-parallel kernel draws
dropout masks differently from a fold trained alone, so the engines agree statistically,
not bit for bit (see :mod:`tfcnn.parallel`).
"""

from __future__ import annotations

import os
import shutil
import socket
import tempfile
import time
from collections.abc import Callable, Iterable
from pathlib import Path

from tfcnn.atomic import write_bytes_atomic, write_json_atomic
from tfcnn.errors import ConfigError, RunError, TfcnnError
from tfcnn.eventbuffer import EventBuffer
from tfcnn.config import ENGINE_NAMES
from tfcnn.runs import (
    CONFIG_FILE,
    FOLD_MODEL_FILE,
    FOLD_RESULT_FILE,
    append_event,
    complete_folds,
    fold_dir,
    read_config,
    read_fold_result,
    read_progress,
    RESUME_KEYS,
)
from tfcnn.request import GridPoint, SweepRequest, Task
from tfcnn.sweep import summarise_point, task_event
from tfcnn.train import RunCancelled, train_run

#: Fold-level events a task copies from its scratch run into the grid point's progress.jsonl.
_FOLD_EVENTS = ("fold_start", "epoch", "fold_end")

#: Ray's setting (an environment variable read by ``ray.init``) of its workers' niceness.
RAY_WORKER_NICENESS = "RAY_worker_niceness"

#: Seconds between two epoch events a Ray task reports (the last epoch is always reported).
EPOCH_REPORT_S = 0.5


# --------------------------------------------------------------------------- one task


def run_fold_task(spec: dict, point: dict, fold: int, *, threads: int | None = None,
                  report: Callable[[dict], None] | None = None) -> dict:
    """Train one fold of one grid point into a scratch folder; return the fold's files.

    What a Ray worker runs. Plain data in and out (dicts, bytes), so it runs wherever the
    package imports, with or without a file system shared with the caller.

    Parameters
    ----------
    spec, point : dict
        :meth:`SweepRequest.to_dict` and :meth:`GridPoint.to_dict`.
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

    sweep, grid_point = SweepRequest.from_dict(spec), GridPoint.from_dict(point)
    task = Task(grid_point, int(fold))
    if threads is not None:
        torch.set_num_threads(int(threads))
    t0 = time.perf_counter()
    emit = report or (lambda event: None)
    emit(task_event("task_start", task, pid=os.getpid(), host=socket.gethostname()))
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
            emit(task_event("task_epoch", task, epoch=event.get("epoch"),
                             stage=event.get("stage"), val_acc=event.get("val_acc")))

    with tempfile.TemporaryDirectory(prefix="tfcnn-task-") as scratch:
        run_dir = Path(scratch) / grid_point.name
        train_run(sweep.request(grid_point, only_folds=[task.fold]), run_dir,
                  progress=on_event)
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


# --------------------------------------------------------------------------- engines


class LocalEngine:
    """Every pending fold of a grid point trained together in this process (``train_run``)."""

    name = "local"

    def __init__(self, *, threads: int | None = None) -> None:
        self.threads = threads

    def run(self, spec: SweepRequest, tasks: list[Task], out: Path,
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
                    emit(task_event("task_start", task, pid=os.getpid(),
                                     host=socket.gethostname()))
                elif kind == "epoch":
                    emit(task_event("task_epoch", task, epoch=event.get("epoch"),
                                     stage=event.get("stage"), val_acc=event.get("val_acc")))
                elif kind == "fold_end":
                    emit(task_event("task_end", task, accuracy=event.get("accuracy"),
                                     seconds=event.get("seconds")))

            run_dir = out / point.name
            try:
                train_run(spec.request(point, only_folds=folds), run_dir,
                          resume=(run_dir / CONFIG_FILE).is_file(), progress=on_event)
            except RunCancelled:
                raise
            except TfcnnError as exc:
                # One grid point's failure (a diverged fold, a bad folder) is reported; the
                # other grid points still train.
                done = set(complete_folds(run_dir)) if run_dir.is_dir() else set()
                for fold, task in by_fold.items():
                    if fold not in done:
                        failed[task.key] = str(exc)
                        emit(task_event("task_failed", task, message=str(exc)))
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

    def _gpus(self, ray, spec: SweepRequest) -> float:
        if self.gpus_per_task is not None:
            return float(self.gpus_per_task)
        if spec.base.device.startswith("cuda"):
            return 1.0
        if spec.base.device == "auto" and ray.cluster_resources().get("GPU", 0) > 0:
            return 1.0
        return 0.0

    def run(self, spec: SweepRequest, tasks: list[Task], out: Path,
            emit: Callable[[dict], None]) -> dict[str, str]:
        """Train ``tasks`` on Ray; returns ``{task key: message}`` of the failed ones."""
        ray, started_here = self._connect()
        try:
            return self._run(ray, spec, tasks, out, emit)
        finally:
            if started_here:
                ray.shutdown()

    def _run(self, ray, spec: SweepRequest, tasks: list[Task], out: Path,
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
                        emit(task_event("task_end", task, accuracy=result.get("accuracy"),
                                         seconds=outcome.get("seconds"),
                                         pid=outcome.get("pid"), host=outcome.get("host")))
                    except (ray.exceptions.RayError, TfcnnError) as exc:
                        failed[task.key] = _short_error(exc)
                        emit(task_event("task_failed", task, message=failed[task.key]))
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
ENGINES: dict[str, type] = dict(zip(ENGINE_NAMES, (LocalEngine, RayEngine)))


def make_engine(name: str, **options):
    """The engine called ``name`` with its ``options``; :class:`ConfigError` names the valid
    ones for an unknown name."""
    try:
        cls = ENGINES[name]
    except KeyError:
        raise ConfigError(f"unknown engine {name!r}; valid engines: {', '.join(ENGINES)}") \
            from None
    return cls(**options)
