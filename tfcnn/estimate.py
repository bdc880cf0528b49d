"""How long a training run will take on this machine, before it is launched.

A run trains, for every fold and every stage of its architecture, some number of epochs over
the fold's training patches. So the estimate is::

    seconds ≈ Σ_stages  epochs per fold × Σ_folds (training patches of the fold)
                        × seconds per training patch of that stage's model

with each factor taken from what this machine and this data set say:

- **training patches per fold**: each track gives ``T // 80`` patches; ``T`` comes from the
  audio file's header (no decoding), and the folds are the ones the run will draw
  (:func:`tfcnn.folds.make_folds` with the same labels, seed and protocol);
- **seconds per training patch** (:class:`Throughput`): measured by earlier runs of the same
  model on this machine (their epoch records over their folds' training patches), else by a
  micro-benchmark of the real model through the trainer's own loops (three short epochs on
  random patches, about a second), cached per machine, model, batch size and thread count
  in ``<runs>/.estimate/``, and measured again when a run here, finished after it, trained
  :data:`REMEASURE_RATIO` times faster or slower per patch than it said (the machine's load
  changed). Folds trained as a stack are priced at the full stack for the low end and at a
  stack of one for the high end (the stack shrinks as folds stop);
- **epochs per fold** (:class:`EpochRange`, a range, not a point): the folds of earlier runs
  of the same recipe here, else the shipped Table 1 of the same preset, else the schedule's
  own bounds (the fewest epochs it can stop after, and the epoch cap). The median of the
  measured folds, where there are some, gives a likely value inside the range.

Longer than 600 lines: the three factors (fold sizes, the throughput from runs or from a
cached micro-benchmark kept honest by those runs, the epochs) are read together by one
estimate, and each needs the others' settings.
"""

from __future__ import annotations

import json
import math
import socket
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf
import torch

from tfcnn.atomic import write_json_atomic
from tfcnn.cache import cache_state
from tfcnn.config import FRONT_END, TrainConfig, training_stages
from tfcnn.datasets import Dataset
from tfcnn.device import select_device
from tfcnn.errors import ConfigError, DatasetError, RunError
from tfcnn.fold_training import FoldData, train_fold
from tfcnn.folds import PAPER_VALIDATION_FRACTION, make_folds
from tfcnn.models import build_model, resolve_arch_params, stage_params
from tfcnn.parallel import stacking_pays, train_folds_parallel
from tfcnn.request import RunRequest
from tfcnn.result_sets import TableFile
from tfcnn.runs import STATUS_FILE, list_runs
from tfcnn.threads import torch_threads

#: Folder of the micro-benchmark cache, in the runs root.
ESTIMATE_DIR = ".estimate"
THROUGHPUT_FILE = "throughput.json"
#: The micro-benchmark: epochs of this many random training patches per fold (the first
#: epoch warms up, the others are timed).
BENCH_TRAIN_PATCHES = 60
BENCH_EPOCHS = 3
#: At most this many earlier runs (most recent first) measure a model's throughput.
MAX_MEASURED_RUNS = 3
#: A cached micro-benchmark is measured again when a run here disagrees with it by more
#: than this factor, either way.
REMEASURE_RATIO = 2.0


@dataclass(frozen=True)
class FoldSizes:
    """Training and validation patches of every fold a run will train.

    Attributes
    ----------
    train : tuple of int, one per fold
    val : tuple of int, one per fold
    """

    train: tuple[int, ...]
    val: tuple[int, ...]

    @property
    def total_train(self) -> int:
        return int(sum(self.train))


@dataclass(frozen=True)
class Throughput:
    """Seconds one training patch costs one epoch, for one model on this machine.

    Attributes
    ----------
    seconds_per_patch : float
    source : {"runs", "benchmark"}
    detail : str
        What was measured, for the page (e.g. ``"2 runs here, 640 epochs"``).
    """

    seconds_per_patch: float
    source: str
    detail: str


@dataclass(frozen=True)
class EpochRange:
    """How many epochs one fold of one stage is expected to train: ``low``–``high``.

    Attributes
    ----------
    low, high : int
    source : str
        Where the numbers come from, for the page.
    likely : int or None
        The median of the measured folds (within ``low``–``high``); None for the
        schedule's bounds alone.
    """

    low: int
    high: int
    source: str
    likely: int | None = None


@dataclass(frozen=True)
class StageEstimate:
    """One stage (model) of the run: its epochs per fold and its cost per patch.

    ``throughput`` prices the low end; ``slowest`` (when given) the high end: folds trained
    as a stack get slower per patch as the stack shrinks (folds stop at different epochs),
    down to one fold alone. ``n_stacked``: the folds of the full stack.
    """

    stage: str
    epochs: EpochRange
    throughput: Throughput
    slowest: Throughput | None = None
    n_stacked: int | None = None

    def per_patch_s(self) -> tuple[float, float]:
        """``(low, high)`` seconds per training patch: the stack's cost, and the one-fold
        cost when that is higher (a benchmark on a busy machine can find it lower), at most
        ``n_stacked`` times the stack's: a step of the whole stack does at least the work of
        one fold's step, so one fold alone costs at most that per patch (a one-fold
        benchmark slowed down by other work cannot inflate the high end past it)."""
        fast = self.throughput.seconds_per_patch
        slow = max(fast, self.slowest.seconds_per_patch if self.slowest else fast)
        if self.n_stacked:
            slow = min(slow, self.n_stacked * fast)
        return fast, slow

    def seconds(self, sizes: FoldSizes) -> tuple[float, float]:
        """``(low, high)`` seconds of this stage over every fold."""
        fast, slow = self.per_patch_s()
        return (self.epochs.low * sizes.total_train * fast,
                self.epochs.high * sizes.total_train * slow)

    def likely_seconds(self, sizes: FoldSizes) -> float | None:
        """Seconds of this stage at its likely epochs and the stack's cost (None without a
        likely epoch count)."""
        if self.epochs.likely is None:
            return None
        return self.epochs.likely * sizes.total_train * self.per_patch_s()[0]


@dataclass(frozen=True)
class RunEstimate:
    """The estimate of a whole run: its folds' sizes and each stage's factors.

    Attributes
    ----------
    sizes : FoldSizes
    stages : tuple of StageEstimate
    uncached_tracks : int
        Tracks whose log-mel is not cached yet (computed first, not in the seconds).
    """

    sizes: FoldSizes
    stages: tuple[StageEstimate, ...]
    uncached_tracks: int = 0

    @property
    def low_s(self) -> float:
        return sum(s.seconds(self.sizes)[0] for s in self.stages)

    @property
    def high_s(self) -> float:
        return sum(s.seconds(self.sizes)[1] for s in self.stages)

    @property
    def likely_s(self) -> float | None:
        """At every stage's likely epochs; None when a stage has none."""
        values = [s.likely_seconds(self.sizes) for s in self.stages]
        return None if any(v is None for v in values) else sum(values)


# ----------------------------------------------------------------------------- fold sizes


def track_patch_counts(dataset: Dataset, *,
                       patch_frames: int = FRONT_END.patch_frames) -> np.ndarray:
    """Patches each track gives (``T // patch_frames``), from the audio headers.


    Returns
    -------
    np.ndarray, shape (n_tracks,), int64

    Raises
    ------
    DatasetError
        A file whose header cannot be read (named).
    """
    counts = []
    for path in dataset.tracks["path"]:
        try:
            info = sf.info(str(path))
        except (RuntimeError, OSError) as exc:
            raise DatasetError(f"cannot read the length of {path}: {exc}") from None
        samples = int(round(info.frames * FRONT_END.sample_rate / info.samplerate))
        counts.append(FRONT_END.n_frames(samples) // patch_frames)
    return np.asarray(counts, dtype=np.int64)


def fold_sizes(dataset: Dataset, *, n_folds: int, protocol: str, seed: int = 0,
               patch_counts: np.ndarray | None = None) -> FoldSizes:
    """Training and validation patches of each fold, for the folds the trainer will draw.

    Parameters
    ----------
    dataset : Dataset
    n_folds, protocol, seed
        As the run's (:func:`tfcnn.train.train_run`).
    patch_counts : np.ndarray, shape (n_tracks,), optional
        :func:`track_patch_counts` when already known.
    """
    counts = track_patch_counts(dataset) if patch_counts is None else np.asarray(patch_counts)
    folds = make_folds(dataset.labels, groups=dataset.tracks["replica_group"].tolist(),
                       n_folds=n_folds, seed=seed, protocol=protocol)
    train, val = [], []
    for fold in folds:
        n_train = int(counts[fold.train].sum())
        if protocol == "paper":
            # the original holds out 1/9 of the training patches (tfcnn.folds)
            n_val = max(1, int(n_train * PAPER_VALIDATION_FRACTION))
            train.append(n_train - n_val)
            val.append(n_val)
        else:
            train.append(n_train)
            val.append(int(counts[fold.val].sum()))
    return FoldSizes(train=tuple(train), val=tuple(val))


# ----------------------------------------------------------------------------- throughput


def _resolved_params(stage: str, arch_params: dict) -> dict:
    """``arch_params`` of model ``stage`` as the trainer records them (every field, JSON)."""
    return resolve_arch_params(stage, **stage_params(stage, arch_params))


def _stage_records(run, stage: str) -> list[dict]:
    return [e for e in run.epochs if e.get("stage", run.arch) == stage]


def _run_measurements(stage: str, arch_params: dict, *, batch_size: int, device: str,
                      root: Path):
    """``(run, seconds, patches, n_epochs)`` of each earlier run in ``root`` that trained model
    ``stage`` with these parameters and ``batch_size`` on this host and device type with
    this process's thread count and is not running now, most recent first: its epoch
    records' seconds and training patches, summed."""
    wanted = _resolved_params(stage, arch_params)
    host, kind = socket.gethostname(), select_device(device).type
    threads = torch.get_num_threads()
    for run in list_runs(root):
        config = run.config
        if (run.status in ("running", "queued", "starting")
                or (config.get("machine") or {}).get("host") != host
                or (config.get("machine") or {}).get("torch_threads", threads) != threads
                or str(config.get("device", "")).split(":")[0] != kind
                or (config.get("train_config") or {}).get("batch_size") != batch_size):
            continue
        try:
            params = _resolved_params(stage, config.get("arch_params") or {})
        except ConfigError:
            continue
        records = _stage_records(run, stage) if params == wanted else []
        n_train = {int(e["fold"]): int(e.get("n_train_patches") or 0) for e in run.events
                   if e.get("event") == "fold_start" and "fold" in e}
        found = [(float(r["seconds"]), n_train[int(r["fold"])]) for r in records
                 if isinstance(r.get("seconds"), (int, float)) and n_train.get(int(r["fold"]))]
        if found:
            yield run, sum(s for s, _ in found), sum(n for _, n in found), len(found)


def measured_throughput(stage: str, arch_params: dict, *, n_classes: int, batch_size: int,
                        n_folds: int, device: str, root: Path) -> Throughput | None:
    """Seconds per training patch of model ``stage`` from earlier runs in ``root``.

    Uses the epoch records of runs on this host with as many torch threads as this process
    (a trainer started without ``--threads`` gets the same default), on the same device
    type, with the same batch size and number of folds (stacked folds share a step) and
    the same model (every parameter, ``stage``'s subset for ``timefreq-init``), that are
    not running now (a running one shares the machine with the
    estimate's own page); at most :data:`MAX_MEASURED_RUNS` of them, the most recent first.
    Their epoch records' ``seconds`` over their folds' training patches, summed (so a
    stack of folds that shrinks as folds stop is priced as it ran). None when no such run
    exists.
    """
    seconds = patches = 0.0
    n_epochs = n_runs = 0
    for run, run_seconds, run_patches, run_epochs in _run_measurements(
            stage, arch_params, batch_size=batch_size, device=device, root=root):
        if run.n_folds != n_folds:
            continue
        seconds += run_seconds
        patches += run_patches
        n_epochs += run_epochs
        n_runs += 1
        if n_runs == MAX_MEASURED_RUNS:
            break
    if not n_epochs:
        return None
    return Throughput(seconds / patches, "runs",
                      f"{n_runs} earlier run{'s' if n_runs > 1 else ''} of {stage} here, "
                      f"{n_epochs} fold epochs")


def _ended_at(run) -> float:
    """When a stopped run last wrote its status (0.0 when unknown)."""
    try:
        return (run.path / STATUS_FILE).stat().st_mtime
    except OSError:
        return 0.0


def stale_benchmark(stage: str, arch_params: dict, *, config: TrainConfig,
                    n_stacked: int | None, device: str, root: Path) -> str | None:
    """Why the cached micro-benchmarks of model ``stage`` no longer hold, or None.

    They do not when one of the :data:`MAX_MEASURED_RUNS` most recent runs here of that
    model (:func:`_run_measurements`), ended after the benchmark of its own setting (its
    stack of folds, its AMP) was measured, trained more than :data:`REMEASURE_RATIO` times
    faster or slower per patch than that benchmark said.
    """
    path = Path(root) / ESTIMATE_DIR / THROUGHPUT_FILE
    cache = _read_cache(path)
    if not cache:
        return None
    dev = select_device(device)
    params = _resolved_params(stage, arch_params)
    threads = int(torch.get_num_threads())
    runs = _run_measurements(stage, arch_params, batch_size=int(config.batch_size),
                             device=device, root=root)
    for _, (run, seconds, patches, _n) in zip(range(MAX_MEASURED_RUNS), runs):
        amp = bool((run.config.get("train_config") or {}).get("amp", config.amp))
        stack = run.n_folds if n_stacked and run.n_folds > 1 else None
        key = _bench_key(stage, params, config=config.with_overrides(amp=amp), device=dev,
                         threads=threads, n_stacked=stack)
        entry = cache.get(key)
        if not entry or float(entry.get("measured_at", 0.0)) > _ended_at(run):
            continue
        said, took = float(entry["seconds_per_patch"]), seconds / patches
        if max(said / took, took / said) > REMEASURE_RATIO:
            return (f"re-measured: run {run.name} trained at {took * 1e3:.3g} ms per patch "
                    f"where the benchmark of {entry['measured']} said {said * 1e3:.3g} ms")
    return None


def _forget_benchmarks(root: Path, stage: str) -> None:
    """Drop the cached micro-benchmarks of model ``stage`` on this host (measured again)."""
    path = Path(root) / ESTIMATE_DIR / THROUGHPUT_FILE
    cache = _read_cache(path)
    host = socket.gethostname()
    kept = {k: v for k, v in cache.items()
            if not (json.loads(k).get("host") == host and json.loads(k).get("model") == stage)}
    if len(kept) != len(cache):
        write_json_atomic(path, kept)


def _bench_key(stage: str, params: dict, *, config: TrainConfig, device: torch.device,
               threads: int, n_stacked: int | None) -> str:
    return json.dumps({"host": socket.gethostname(), "torch": torch.__version__,
                       "device": device.type, "threads": threads,
                       "batch_size": config.batch_size, "amp": config.amp,
                       "stacked_folds": n_stacked, "model": stage, "params": params},
                      sort_keys=True)


def benchmark_throughput(stage: str, arch_params: dict, *, n_classes: int,
                         config: TrainConfig, n_stacked: int | None = None,
                         device: str = "cpu", root: Path | None = None,
                         threads: int | None = None) -> Throughput:
    """Seconds per training patch of model ``stage``, measured now (or cached from before).

    Trains fresh ``stage`` models for :data:`BENCH_EPOCHS` epochs of
    :data:`BENCH_TRAIN_PATCHES` random patches each (plus an eighth as many validation
    patches) through the trainer's own loops: :func:`tfcnn.parallel.train_folds_parallel`
    with ``n_stacked`` folds at once (as a run whose folds are stacked), or
    :func:`tfcnn.fold_training.train_fold` when ``n_stacked`` is None (one fold after
    another); every epoch but the first is timed. Runs on
    ``threads`` torch threads (default: the count a trainer started without ``--threads``
    uses, torch's default in this process). With ``root``, the result is kept in
    ``<root>/.estimate/throughput.json`` (written atomically) per host, torch version,
    device type, threads, batch size, AMP, stacked folds and model, and read back instead
    of measuring.
    """
    dev = select_device(device)
    params = _resolved_params(stage, arch_params)
    threads = int(threads or torch.get_num_threads())
    key = _bench_key(stage, params, config=config, device=dev, threads=threads,
                     n_stacked=n_stacked)
    path = Path(root) / ESTIMATE_DIR / THROUGHPUT_FILE if root is not None else None
    what = (f"micro-benchmark of {stage}"
            + (f" ({n_stacked} stacked fold{'s' if n_stacked > 1 else ''})" if n_stacked else "")
            + f" on {threads} thread(s)")
    cache = _read_cache(path)
    if key in cache:
        entry = cache[key]
        return Throughput(float(entry["seconds_per_patch"]), "benchmark",
                          f"{what}, {entry['measured']}")
    per_patch = _bench(stage, params, n_classes=n_classes, config=config, device=dev,
                       threads=threads, n_stacked=n_stacked)
    if path is not None:
        cache = _read_cache(path)  # another page may have added entries meanwhile
        cache[key] = {"seconds_per_patch": per_patch,
                      "measured": time.strftime("%Y-%m-%d %H:%M"), "measured_at": time.time()}
        write_json_atomic(path, cache)
    return Throughput(per_patch, "benchmark", f"{what}, just now")


def _read_cache(path: Path | None) -> dict:
    if path is None:
        return {}
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return value if isinstance(value, dict) else {}


def _bench(stage: str, params: dict, *, n_classes: int, config: TrainConfig,
           device: torch.device, threads: int, n_stacked: int | None) -> float:
    """Seconds per training patch over the epochs after the first of :data:`BENCH_EPOCHS`
    epochs of fresh ``stage`` models on random data (``n_stacked`` folds stacked, or one
    fold through the one-fold loop when None)."""
    generator = torch.Generator().manual_seed(0)
    shape = (1, params.get("n_mels", FRONT_END.n_mels),
             params.get("patch_frames", FRONT_END.patch_frames))
    n_train, n_val = BENCH_TRAIN_PATCHES, max(1, BENCH_TRAIN_PATCHES // 8)

    def fold(k: int) -> FoldData:
        return FoldData(fold=k,
                        train_x=torch.randn(n_train, *shape, generator=generator).to(device),
                        train_y=torch.randint(0, n_classes, (n_train,),
                                              generator=generator).to(device),
                        val_x=torch.randn(n_val, *shape, generator=generator).to(device),
                        val_y=torch.randint(0, n_classes, (n_val,),
                                            generator=generator).to(device),
                        seed=k)

    datas = [fold(k) for k in range(n_stacked or 1)]
    models = [build_model(stage, n_classes, **params) for _ in datas]
    bench_config = config.with_overrides(max_epochs=BENCH_EPOCHS)
    records: list[dict] = []
    with torch_threads(threads):
        if n_stacked:
            train_folds_parallel(models, datas, bench_config, device=device,
                                 on_epoch=records.append)
        else:
            train_fold(models[0], datas[0], bench_config, device=device,
                       on_epoch=records.append)
    timed = [r for r in records if r["epoch"] > 1]
    return sum(r["seconds"] for r in timed) / (len(timed) * n_train)


def stage_estimate(stage: str, arch_params: dict, *, n_classes: int, config: TrainConfig,
                   n_folds: int, n_stacked: int | None, device: str, root: Path,
                   table: TableFile | None) -> StageEstimate:
    """One stage's epochs (:func:`epoch_range`) and cost per patch: earlier runs' here
    (:func:`measured_throughput`), else micro-benchmarks (:func:`benchmark_throughput`) of
    the stack of ``n_stacked`` folds and, for the high end, of a stack of one fold (the
    stack shrinks as folds stop); ``n_stacked`` None: one fold after another."""
    epochs = epoch_range(stage, config, root=root, table=table)
    measured = measured_throughput(stage, arch_params, n_classes=n_classes,
                                   batch_size=int(config.batch_size), n_folds=n_folds,
                                   device=device, root=root)
    if measured is not None:
        return StageEstimate(stage, epochs, measured)
    stale = stale_benchmark(stage, arch_params, config=config, n_stacked=n_stacked,
                            device=device, root=root)
    if stale:
        _forget_benchmarks(root, stage)
    bench = [benchmark_throughput(stage, arch_params, n_classes=n_classes, config=config,
                                  n_stacked=k, device=device, root=root)
             for k in ([n_stacked, 1] if n_stacked and n_stacked > 1 else [n_stacked])]
    if stale:
        bench = [Throughput(b.seconds_per_patch, b.source, f"{b.detail}; {stale}")
                 for b in bench]
    return StageEstimate(stage, epochs, bench[0], bench[1] if len(bench) > 1 else None,
                         n_stacked=n_stacked if len(bench) > 1 else None)


# ----------------------------------------------------------------------------- epochs


def _fold_epochs(run, stage: str) -> list[int]:
    """Epochs each complete fold of ``run`` trained in ``stage``."""
    per_fold: dict[int, int] = {}
    for record in _stage_records(run, stage):
        fold = int(record["fold"])
        if fold in run.complete:
            per_fold[fold] = per_fold.get(fold, 0) + 1
    return list(per_fold.values())


def epoch_range(stage: str, config: TrainConfig, *, root: Path,
                table: TableFile | None = None) -> EpochRange:
    """Epochs one fold of ``stage`` is expected to train under ``config``, as a range.

    In order: the complete folds of finished runs in ``root`` with the same stage, preset,
    patience and epoch cap (min–max); else the shipped Table 1 ``table`` when it was trained
    with the same preset and no cap lower than ``config.max_epochs`` cut a fold short (its
    ``epochs_per_fold`` for this model, or for all its models when it lacks this one,
    clipped to the cap); else the schedule's bounds: ``stop_patience + 2`` epochs (the first
    sets the reference loss, then ``stop_patience + 1`` rises stop it) up to the cap.
    """
    cap = int(config.max_epochs)
    epochs: list[int] = []
    for run in list_runs(root):
        train = run.config.get("train_config") or {}
        if run.status == "finished" and all(
                train.get(k) == getattr(config, k)
                for k in ("preset", "max_epochs", "stop_patience", "halve_patience")):
            epochs += _fold_epochs(run, stage)
    if epochs:
        return EpochRange(min(epochs), max(epochs),
                          f"folds of earlier runs here with this recipe ({len(epochs)} folds)",
                          likely=int(round(float(np.median(epochs)))))
    rows = table.rows if table is not None else []
    recipe = table.recipe if table is not None else {}
    table_model = "timefreq" if stage == "timefreq-init" else stage
    usable = [r for r in rows if r.get("epochs_per_fold")
              and recipe.get("preset") == config.preset
              and (int(r.get("max_epochs") or 0) >= cap or not r.get("n_folds_capped"))]
    same = [r for r in usable if r.get("arch") == table_model]
    chosen = same or usable
    if chosen:
        trained = [int(e) for r in chosen for e in r["epochs_per_fold"]]
        what = (f"{table_model}'s folds" if same else
                f"the folds of {', '.join(r['arch'] for r in chosen)} (no {table_model} row)")
        where = f"in the shipped Table 1 ({table.label or 'shipped'}, {config.preset} preset)"
        if min(trained) >= cap:
            return EpochRange(cap, cap, f"the epoch cap: {what} {where} all trained "
                                        f"{min(trained)} or more", likely=cap)
        return EpochRange(min(trained), min(max(trained), cap), f"{what} {where}",
                          likely=min(int(round(float(np.median(trained)))), cap))
    low = min(int(config.stop_patience) + 2, cap)
    return EpochRange(low, cap, "the schedule's bounds (no run of this recipe to learn from)")


# ----------------------------------------------------------------------------- the run


def estimate_run(dataset: Dataset, request: RunRequest, *, root: Path,
                 table: TableFile | None = None,
                 patch_counts: np.ndarray | None = None) -> RunEstimate:
    """The time estimate of ``python -m tfcnn train`` of ``request`` on this machine.

    Parameters
    ----------
    dataset : Dataset
        The request's data set, loaded.
    request : RunRequest
        The run: architecture and its parameters, folds, protocol, recipe, seed, device.
    root : Path
        The runs root: earlier runs to learn from, and the micro-benchmark cache.
    table : TableFile, optional
        The shipped Table 1 (``checkpoints/table1-synth.json``) for epoch counts.
    patch_counts : np.ndarray, optional
        :func:`track_patch_counts` of ``dataset`` at the paper's patch width, when already
        known (counted again for another width). A beat-synchronous input's counts, which
        depend on each track's tempo, are taken as the log-mel's: more patches than it gives
        when a beat spans fewer frames than in the log-mel (10 frames per beat below 258 BPM).

    Raises
    ------
    ConfigError, DatasetError
        Settings the trainer would refuse (a device this machine lacks, folds the data cannot
        fill, unreadable audio).
    """
    config = request.train_config()
    arch_params = request.arch_params
    n_classes = len(dataset.classes)
    patch_frames = request.front_end().patch_frames
    if patch_counts is None or patch_frames != FRONT_END.patch_frames:
        patch_counts = track_patch_counts(dataset, patch_frames=patch_frames)
    sizes = fold_sizes(dataset, n_folds=request.n_folds, protocol=request.protocol,
                       seed=request.seed, patch_counts=patch_counts)
    # the trainer stacks all folds when that pays (tfcnn.train.train_run)
    n_stacked = request.n_folds if stacking_pays(request.arch, arch_params, n_classes,
                                                 select_device(request.device)) else None
    stages = tuple(stage_estimate(stage, arch_params, n_classes=n_classes, config=config,
                                  n_folds=request.n_folds, n_stacked=n_stacked,
                                  device=request.device, root=Path(root), table=table)
                   for stage in training_stages(request.arch))
    try:
        n_cached, n_total = cache_state(dataset)
    except (OSError, RunError):
        n_cached, n_total = 0, 0
    return RunEstimate(sizes=sizes, stages=stages, uncached_tracks=n_total - n_cached)


def _span(low: str, high: str) -> str:
    """``"3–5"``, or one value when both ends read the same."""
    return low if low == high else f"{low}–{high}"


def format_estimate(estimate: RunEstimate, format_seconds) -> str:
    """One line for the page: ``about 22 min, likely (18 min – 30 min) of training on this
    machine: ...`` (the likely value first when the epochs are measured).

    ``format_seconds`` turns seconds into text (the page's own formatter).
    """
    low, high, likely = estimate.low_s, estimate.high_s, estimate.likely_s
    span = (format_seconds(low) if math.isclose(low, high, rel_tol=0.05)
            else f"{format_seconds(low)} – {format_seconds(high)}")
    if likely is not None and span != format_seconds(low):
        span = f"{format_seconds(likely)}, likely ({span})"
    parts = []
    for s in estimate.stages:
        cost = _span(*(f"{v * 1e3:.3g}" for v in s.per_patch_s()))
        detail = s.throughput.detail + (f"; {s.slowest.detail}" if s.slowest else "")
        epochs = (f"{_span(str(s.epochs.low), str(s.epochs.high))} "
                  f"epoch{'' if s.epochs.high == 1 else 's'}"
                  + (f" (likely {s.epochs.likely})"
                     if s.epochs.likely is not None and s.epochs.low != s.epochs.high else ""))
        parts.append(f"{s.stage}: {cost} ms per training patch ({detail}); "
                     f"{epochs} per fold ({s.epochs.source})")
    text = (f"about {span} of training on this machine: "
            f"{estimate.sizes.total_train:,} training patches over "
            f"{len(estimate.sizes.train)} folds; " + "; ".join(parts))
    if estimate.uncached_tracks:
        text += (f". Before that, log-mel features of {estimate.uncached_tracks} uncached "
                 "tracks are computed.")
    return text
