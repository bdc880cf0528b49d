"""The whole cross-validation of one architecture (:func:`train_run`), written to a run folder.

:func:`train_run` takes a :class:`tfcnn.request.RunRequest` (checked when it was made) and
runs named steps: plan the run (device, data set, ``config.json``), open the run folder
(:class:`tfcnn.runs.RunFolder`), load the cached log-mel features, split the songs into
folds and train the pending ones: one after another through :func:`tfcnn.fold_training.train_fold`, or all pending folds at once through
:func:`tfcnn.parallel.train_folds_parallel` where stacking pays
(:func:`tfcnn.parallel.stacking_pays`). Each trained fold is tested on its test songs
through :func:`tfcnn.inference.song_probabilities` (the path ``predict`` takes, so a fold's
reported accuracy and a prediction with its checkpoint agree), saved as a checkpoint, then
marked complete by its ``result.json``. SIGTERM (the app's Cancel) and Ctrl-C end a run as
``cancelled``.

Every epoch of every fold ends with the fold's training state saved in the run folder
(:mod:`tfcnn.train_state`, deleted once the fold is complete), so ``--resume`` after a
cancel, a kill or a crash keeps the complete folds and continues the others from their last
saved epoch; an epoch is reported in ``progress.jsonl`` only once it is saved.
"""

from __future__ import annotations

import contextlib
import errno
import functools
import json
import os
import signal
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timezone

import numpy as np
import torch

from tfcnn.cache import load_features
from tfcnn.calibration import fit_calibration, folds_reliability, song_confidences
from tfcnn.checkpoint import save_checkpoint
from tfcnn.config import FrontEnd, TIMEFREQ_INIT, TrainConfig, training_stages
from tfcnn.datasets import Dataset, load_dataset, require_two_classes, track_list
from tfcnn.device import select_device
from tfcnn.errors import RunError, TfcnnError
from tfcnn.evaluate import fold_metrics, summarise
from tfcnn.fold_training import EVAL_BATCH_SIZE, FoldData, FoldTraining, fold_seed, train_fold
from tfcnn.folds import Fold, assignment_fingerprint, fold_fingerprint, make_folds, song_keys
from tfcnn.features import model_input
from tfcnn.inference import song_probabilities
from tfcnn.models import build_model, count_parameters, init_timefreq_from, stage_params
from tfcnn.parallel import stacking_pays, train_folds_parallel
from tfcnn.paths import confinement
from tfcnn.patch_bank import PatchBank, fold_data
from tfcnn.provenance import code_version, machine_info
from tfcnn.request import RunRequest
from tfcnn.runs import (CONFIG_FILE, RESERVE_FILE, STATUS_FILE, RunFolder, read_progress,
                        snapshot_path)
from tfcnn.tempo import estimate_tempo
from tfcnn.train_state import FoldStateFile, data_fingerprint, fold_identity


class RunCancelled(RunError):
    """The run was cancelled (SIGTERM from the app, or Ctrl-C); complete folds are kept."""


def _trained_on(dataset: Dataset) -> str:
    if dataset.kind == "synth":
        return f"trained on {dataset.name} (synthetic)"
    return f"trained on {dataset.name}"


class _SigtermToCancel:
    """Within the block, SIGTERM raises :class:`RunCancelled` (the app cancels runs with it).

    Only in the main thread (signal handlers cannot be set elsewhere); restored on exit.
    """

    def __enter__(self):
        self.previous = None
        if threading.current_thread() is threading.main_thread():
            def handler(signum, frame):
                raise RunCancelled("run cancelled (SIGTERM)")

            self.previous = signal.signal(signal.SIGTERM, handler)
        return self

    def __exit__(self, *exc):
        if self.previous is not None:
            signal.signal(signal.SIGTERM, self.previous)
        return False


@dataclass
class _Training:
    """What every fold of one run shares: the request, the folder, the data, the recipe."""

    request: RunRequest
    run: RunFolder
    dataset: Dataset
    specs: list[np.ndarray]  # each (n_mels, T_i): log-mel of every track, not normalised
    inputs: list[np.ndarray]  # each (n_mels, T'_i): the frames patches are cut from
    front_end: FrontEnd  # the request's: log-mel, patch width, beat-synchronous or not
    labels: np.ndarray  # (n_tracks,) class index
    track_ids: list[str]
    bank: PatchBank
    arch_params: dict  # every parameter of the model, resolved (config.json's)
    config: TrainConfig
    device: torch.device
    snapshots: dict | None = None  # {"epochs": [...], "folds": [...]} to save weights of
    # rewrites results.json over the complete folds, after each fold (a stopped run keeps a
    # summary of what it finished)
    summarise: Callable[[], dict] | None = None

    @property
    def arch(self) -> str:
        return self.request.arch

    @property
    def protocol(self) -> str:
        return self.request.protocol

    @property
    def seed(self) -> int:
        return self.request.seed

    @property
    def n_classes(self) -> int:
        return len(self.dataset.classes)

    @property
    def song_keys(self) -> list[str]:
        """Each track's identity for fold fingerprints (:func:`tfcnn.folds.song_keys`)."""
        return song_keys(self.track_ids, self.dataset.tracks["dance"])


@dataclass(frozen=True)
class _Plan:
    """What :func:`train_run` settles before it touches the disk."""

    dataset: Dataset
    device: torch.device
    config: dict  # the run's config.json
    n_params: int


def train_run(request: RunRequest, out_dir, *, resume: bool = False,
              progress: Callable[[dict], None] | None = None,
              sequential: bool = False) -> dict:
    """Cross-validate ``request`` (one architecture on one data set); write ``out_dir``.

    Parameters
    ----------
    request : RunRequest
        What to train: data set, architecture and its parameters, folds, recipe, seed,
        device (see :class:`tfcnn.request.RunRequest`).
    out_dir : str or Path
        The run folder; must be new or empty unless ``resume``.
    resume : bool
        Continue the run in ``out_dir``: complete folds (``result.json`` present) are kept,
        incomplete ones continue from their last saved epoch. The configuration must match
        (else :class:`RunError`).
    progress : callable, optional
        Called with every event written to ``progress.jsonl`` (dicts; the run-folder format
        of :mod:`tfcnn.runs`).
    sequential : bool
        Train folds one after another even where training them together pays.

    Returns
    -------
    dict
        The content of ``results.json``.

    Raises
    ------
    ConfigError, DatasetError, RunError
        Bad device, data set or run folder. :class:`RunCancelled` on SIGTERM / Ctrl-C
        (status ``cancelled``; complete folds are kept).
    """
    plan = _plan(request)
    run = _open_run_folder(out_dir, plan.config, resume=resume, progress=progress)
    with _ending_recorded(run):
        training = _load(run, request, plan)
        folds = make_folds(training.labels, groups=plan.dataset.tracks["replica_group"].tolist(),
                           n_folds=request.n_folds, seed=request.seed, protocol=request.protocol)
        training.summarise = functools.partial(
            _write_results, training, n_params=plan.n_params,
            assignment=assignment_fingerprint(folds, training.song_keys))
        if run.complete_folds():  # resumed: the summary is current from the start
            training.summarise()
        _train_pending(training, folds, sequential=sequential)
        results = training.summarise()
    run.emit({"event": "run_end", "mean": results.get("mean"), "std": results.get("std"),
              "wall_s": results.get("wall_s")})
    run.set_status("finished")
    run.release_reserve()
    return results


def _plan(request: RunRequest) -> _Plan:
    """The device, data set, model size and ``config.json`` of ``request``, checked before
    anything is written."""
    device = select_device(request.device)
    # launched by the app: only the tracks inside its allowed roots (tfcnn.paths.confinement)
    dataset = load_dataset(request.data_dir, roots=confinement(extra=[request.data_dir]))
    require_two_classes(dataset)
    model = build_model(request.arch, len(dataset.classes), **request.arch_params)
    config = {
        **request.to_config(),
        "data": str(dataset.root),
        "dataset": {"name": dataset.name, "kind": dataset.kind, "root": str(dataset.root),
                    "n_tracks": int(dataset.n_tracks), "classes": list(dataset.classes)},
        # the exact tracks: --resume refuses a data set that changed (runs.track_change),
        # since the folds are drawn from them
        "tracks": track_list(dataset),
        "arch_params": json.loads(json.dumps(model.arch_params)),  # resolved, JSON types
        "n_params": count_parameters(model),
        "device": str(device),
        "front_end": request.front_end().to_dict(),
        "code_version": code_version(),
        "machine": machine_info(device),
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }
    if request.snapshots is not None:
        config["snapshots"] = {"epochs": list(request.snapshots),
                               "folds": request.folds if request.only_folds else [0]}
    return _Plan(dataset=dataset, device=device, config=config, n_params=config["n_params"])


def _open_run_folder(out_dir, config: dict, *, resume: bool,
                     progress: Callable[[dict], None] | None) -> RunFolder:
    """The run folder, created (or reopened for ``resume``) and marked running; a disk
    too full to start leaves nothing behind (:func:`_undo_open`)."""
    opener = RunFolder.reopen if resume else RunFolder.create
    existed = os.path.exists(out_dir)
    try:
        run = opener(out_dir, config, progress=progress)
        run.set_status("running")
    except OSError as exc:
        _undo_open(out_dir, created=not resume, existed=existed)
        raise RunError(_write_error(exc, out_dir)) from None
    return run


@contextlib.contextmanager
def _ending_recorded(run: RunFolder) -> Iterator[None]:
    """Within the block, SIGTERM and Ctrl-C cancel the run (:class:`RunCancelled`); a
    cancel or a failure is recorded in the run folder (event and status) and raised again,
    an operating-system error as one-line :class:`RunError`."""
    try:
        with _SigtermToCancel():
            try:
                yield
            except KeyboardInterrupt:
                raise RunCancelled("run cancelled (interrupted)") from None
    except RunCancelled as exc:
        run.release_reserve()
        run.emit({"event": "cancelled", "message": str(exc)})
        run.set_status("cancelled", error=str(exc))
        raise
    except BaseException as exc:
        run.release_reserve()  # room to record the failure on a full disk
        message = str(exc) or type(exc).__name__
        if isinstance(exc, OSError):
            message = _write_error(exc, run.path)
        elif not isinstance(exc, TfcnnError):
            message = f"{type(exc).__name__}: {message}"
        try:
            run.emit({"event": "error", "message": message})
            run.set_status("failed", error=message)
        except OSError:
            pass  # the disk is still full: the message below is all that can be said
        if isinstance(exc, OSError):
            raise RunError(message) from None
        raise


def _train_pending(t: _Training, folds: list[Fold], *, sequential: bool) -> None:
    """Train the asked folds that are not complete: all at once where stacking pays, else
    one after another, each saved as it ends (an interrupted run keeps them)."""
    done = set(t.run.complete_folds())
    pending = [folds[k] for k in t.request.folds if k not in done]
    # Snapshots need the model at each epoch, which only the one-fold loop exposes.
    if (not sequential and not t.snapshots and len(pending) > 1
            and stacking_pays(t.arch, t.arch_params, t.n_classes, t.device)):
        _train_folds(t, pending, stacked=True)
        return
    for fold in pending:
        _train_folds(t, [fold], stacked=False)


def _undo_open(path: str | os.PathLike, *, created: bool, existed: bool) -> None:
    """Take back what a failed open wrote (a full disk at the start of a run).

    A new run leaves nothing behind: its ``config.json``, space reservation and partial status
    are removed, and the folder too when this run made it. A resumed run only loses the
    reservation, so it can be continued once there is room.
    """
    path = os.fspath(path)
    _unlink(os.path.join(path, RESERVE_FILE))
    if not created:
        return
    for name in (CONFIG_FILE, STATUS_FILE):
        _unlink(os.path.join(path, name))
    if not existed:
        try:
            os.rmdir(path)
        except OSError:
            pass  # something else is in it: leave it


def _unlink(path: str) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


def _write_error(exc: OSError, run_dir) -> str:
    """One line for an operating-system error during a run (a full disk above all)."""
    what = exc.strerror or str(exc)
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return (f"{what}: cannot write the run folder {run_dir}; make room, then continue "
                f"the run with --resume")
    return f"{what}: {exc.filename or run_dir}"


def _load(run: RunFolder, request: RunRequest, plan: _Plan) -> _Training:
    """The run's features (computed and cached where missing) and patch bank."""
    last = [0.0]

    def on_features(done: int, total: int) -> None:
        now = time.perf_counter()
        if done == total or now - last[0] > 1.0:  # at most one event a second
            last[0] = now
            run.emit({"event": "features", "done": int(done), "total": int(total)})

    front_end = request.front_end()
    features = load_features(plan.dataset, front_end=front_end, progress=on_features)
    # The model's frames (the log-mel, or beat-synchronous), as predict makes them.
    inputs = [model_input(spec, front_end=front_end).frames for spec in features.specs]
    bank = PatchBank(inputs, list(features.track_ids), patch_frames=front_end.patch_frames,
                     device=plan.device, frames_per_beat=front_end.frames_per_beat)
    return _Training(request=request, run=run, dataset=plan.dataset,
                     specs=list(features.specs), inputs=inputs, front_end=front_end,
                     labels=np.asarray(features.labels, dtype=np.int64),
                     track_ids=list(features.track_ids), bank=bank,
                     arch_params=plan.config["arch_params"], config=request.train_config(),
                     device=plan.device, snapshots=plan.config.get("snapshots"))


def _train_folds(t: _Training, folds: list[Fold], *, stacked: bool) -> None:
    """Train, test and save ``folds``: one fold, or several at once when ``stacked``.

    Each fold continues from its saved state where it has one (``--resume``).
    """
    t0 = time.perf_counter()
    prepared: dict[int, tuple[FoldData, float, float]] = {}
    prints: dict[int, str] = {}  # the fold's data_fingerprint
    for fold in folds:
        data, mean, std = fold_data(t.bank, fold, t.labels, protocol=t.protocol,
                                    seed=fold_seed(t.seed, fold.index))
        prepared[fold.index] = (data, mean, std)
        prints[fold.index] = data_fingerprint(data.train_x, data.train_y, data.val_x,
                                              data.val_y)
        t.run.emit({"event": "fold_start", "fold": fold.index,
                    "max_epochs": t.config.max_epochs,
                    "n_train_patches": int(data.train_y.shape[0]),
                    "n_val_patches": int(data.val_y.shape[0]),
                    "n_test_tracks": int(fold.test.size)})
    logged = _logged_epochs(t.run)

    trained: dict[str, dict[int, tuple[torch.nn.Module, FoldTraining]]] = {}
    for stage in training_stages(t.arch):
        def on_epoch(record: dict, stage=stage) -> None:
            t.run.emit({**record, "stage": stage})

        models, states = [], []
        for fold in folds:
            data, mean, std = prepared[fold.index]
            # Deterministic init: the fold's seed, whatever trained the folds before it.
            torch.manual_seed(data.seed)
            model = build_model(stage, t.n_classes, **stage_params(stage, t.arch_params))
            if stage == TIMEFREQ_INIT:
                init_timefreq_from(model, trained["time"][fold.index][0],
                                   trained["frequency"][fold.index][0])
            models.append(model.to(t.device))
            state = FoldStateFile(t.run.state_path(fold.index, stage), fold_identity(
                fold=fold.index, stage=stage, stage_params=model.arch_params,
                train_config=t.config.to_dict(), seed=data.seed,
                test_fingerprint=fold_fingerprint(fold, t.song_keys), norm=(mean, std),
                data=prints[fold.index]))
            _report_saved_epochs(t, state, logged.get((fold.index, stage), 0), on_epoch)
            states.append(state)
        if (t.snapshots and stage == training_stages(t.arch)[-1] and len(folds) == 1
                and folds[0].index in t.snapshots["folds"]):
            _, mean, std = prepared[folds[0].index]
            on_epoch = _snapshot_saver(t, folds[0].index, models[0], (mean, std), on_epoch,
                                       initial=states[0].load() is None)
        datas = [prepared[f.index][0] for f in folds]
        trained[stage] = {}
        last_stage = stage == training_stages(t.arch)[-1]

        def on_fold_end(position: int, outcome: FoldTraining, stage=stage, models=models,
                        last_stage=last_stage) -> None:
            """Keep the fold's best model; after the last stage, test and save the fold now
            (an interrupted run keeps every fold finished so far)."""
            fold, model = folds[position], models[position]
            model.load_state_dict(outcome.state_dict)
            trained[stage][fold.index] = (model, outcome)
            if last_stage:
                _, mean, std = prepared[fold.index]
                stages = {st: trained[st][fold.index][1].best_epoch for st in trained}
                # the fold's share of the machine's time, summed over its epochs
                seconds = sum(float(r.get("seconds", 0.0)) for r in outcome.history)
                _finish_fold(t, fold, model, outcome, norm=(mean, std), stages=stages,
                             seconds=seconds or (time.perf_counter() - t0) / len(folds))
                t.run.drop_state(fold.index)
                if t.summarise is not None:
                    t.summarise()

        if stacked:
            train_folds_parallel(models, datas, t.config, device=t.device, on_epoch=on_epoch,
                                 states=states, on_fold_end=on_fold_end)
        else:
            for position, (model, data, state) in enumerate(zip(models, datas, states)):
                on_fold_end(position, train_fold(model, data, t.config, device=t.device,
                                                 on_epoch=on_epoch, state=state))


def _logged_epochs(run: RunFolder) -> dict[tuple[int, str], int]:
    """The last epoch ``progress.jsonl`` reports of each (fold, stage)."""
    last: dict[tuple[int, str], int] = {}
    for e in read_progress(run.path):
        if e.get("event") == "epoch":
            key = (int(e["fold"]), str(e.get("stage")))
            last[key] = max(last.get(key, 0), int(e["epoch"]))
    return last


def _report_saved_epochs(t: _Training, state: FoldStateFile, logged: int,
                         on_epoch: Callable[[dict], None]) -> None:
    """Report the saved epochs ``progress.jsonl`` lacks (a kill between an epoch's save and
    its report), so each epoch of a resumed fold is reported exactly once."""
    saved = state.load()
    if saved is None:
        return
    for record in saved["tracker"]["history"]:
        if record["epoch"] > logged:
            on_epoch(record)


def _snapshot_saver(t: _Training, fold: int, model: torch.nn.Module,
                    norm: tuple[float, float], on_epoch: Callable[[dict], None], *,
                    initial: bool = True) -> Callable[[dict], None]:
    """Save the initial weights now if epoch 0 is asked and ``initial`` (not a resumed
    fold); return an ``on_epoch`` that also saves the weights at the end of each asked
    epoch (:func:`tfcnn.runs.snapshot_path`)."""
    mean, std = norm
    epochs = t.snapshots["epochs"]

    def save(epoch: int) -> None:
        save_checkpoint(snapshot_path(t.run.path, fold, epoch), model,
                        classes=tuple(t.dataset.classes), norm_mean=mean, norm_std=std,
                        front_end=t.front_end, train_config=t.config.to_dict(), metrics={},
                        extra={"fold": fold, "epoch": epoch, "snapshot": True})

    if 0 in epochs and initial:
        save(0)

    def on_epoch_and_save(record: dict) -> None:
        if record["epoch"] in epochs:
            save(record["epoch"])
        on_epoch(record)

    return on_epoch_and_save


def _finish_fold(t: _Training, fold: Fold, model: torch.nn.Module, outcome: FoldTraining, *,
                 norm: tuple[float, float], stages: dict, seconds: float) -> None:
    """Test a trained fold, save its checkpoint, then its ``result.json`` (last, atomically)."""
    mean, std = norm
    tracks = fold.test
    per_track = song_probabilities(
        model, [t.inputs[i] for i in tracks], mean=mean, std=std,
        patch_frames=t.front_end.patch_frames, batch_size=EVAL_BATCH_SIZE,
        device=next(model.parameters()).device)  # each (n_patches_i, n_classes)
    metrics = fold_metrics(per_track, t.labels[tracks], n_classes=t.n_classes)
    # Temperature and unsure threshold from the validation songs (none in the paper protocol).
    calibration = fit_calibration(
        song_probabilities(model, [t.inputs[i] for i in fold.val], mean=mean, std=std,
                           patch_frames=t.front_end.patch_frames, batch_size=EVAL_BATCH_SIZE,
                           device=next(model.parameters()).device),
        t.labels[fold.val],
        beat_strengths=[estimate_tempo(t.specs[i]).strength for i in fold.val],
    ) if fold.val.size else None
    # what the Predict page would show for each test song, to measure calibration
    confidence = song_confidences(per_track, metrics["predictions"], calibration=calibration)
    metrics = {**metrics, "fold": fold.index, "best_epoch": outcome.best_epoch}
    test_ids = [t.track_ids[i] for i in tracks]
    model.cpu()
    save_checkpoint(
        t.run.model_path(fold.index), model, classes=tuple(t.dataset.classes), norm_mean=mean,
        norm_std=std, front_end=t.front_end, train_config=t.config.to_dict(), metrics=metrics,
        extra={"fold": fold.index, "protocol": t.protocol, "test_track_ids": test_ids,
               "best_epoch": outcome.best_epoch, "stage_best_epochs": stages,
               "dataset": {"name": t.dataset.name, "kind": t.dataset.kind},
               "trained_on": _trained_on(t.dataset)},
        calibration=calibration,
    )
    t.run.write_fold_result(fold.index, {
        "fold": fold.index,
        **{k: v for k, v in metrics.items() if k != "fold"},
        "norm_mean": mean,
        "norm_std": std,
        "n_train_tracks": int(fold.train.size),
        "n_val_tracks": int(fold.val.size),
        "n_test_tracks": int(tracks.size),
        "test_track_ids": test_ids,
        "test_labels": [int(y) for y in t.labels[tracks]],
        "test_confidence": [round(float(c), 6) for c in confidence],
        "test_confidence_calibrated": calibration is not None,
        "test_fingerprint": fold_fingerprint(fold, t.song_keys),
        "epochs": len(outcome.history),
        "stage_best_epochs": stages,
        "seconds": seconds,
    })
    t.run.emit({"event": "fold_end", "fold": fold.index, "accuracy": metrics.get("accuracy"),
                "patch_accuracy": metrics.get("patch_accuracy"),
                "best_epoch": outcome.best_epoch, "seconds": seconds})


def _write_results(t: _Training, *, n_params: int, assignment: str) -> dict:
    """``results.json`` over the run's complete folds (all of them once the run is done).

    Beside the summary it lists, per complete fold (aligned with ``folds``), the test-song
    fingerprint and the train/test song counts, and the fingerprint of the whole fold
    assignment: what ``compare`` needs to pair two runs' folds.
    """
    done = t.run.complete_folds()
    fold_results = t.run.fold_results()
    summary = summarise(fold_results) if fold_results else {}
    measured = folds_reliability(fold_results)  # calibration on the test songs
    results = {
        "arch": t.arch,
        "n_params": n_params,
        "classes": list(t.dataset.classes),
        "dataset": {"name": t.dataset.name, "kind": t.dataset.kind,
                    "root": str(t.dataset.root), "n_tracks": int(t.dataset.n_tracks)},
        "trained_on": _trained_on(t.dataset),
        "protocol": t.protocol,
        "preset": t.request.preset,
        "train_config": t.config.to_dict(),
        "n_folds": t.request.n_folds,
        "folds": done,
        "complete": len(done) == t.request.n_folds,
        "assignment_fingerprint": assignment,
        "fold_fingerprints": [r.get("test_fingerprint") for r in fold_results],
        "n_train_tracks": [r.get("n_train_tracks") for r in fold_results],
        "n_test_tracks": [r.get("n_test_tracks") for r in fold_results],
        **summary,
        "reliability": None if measured is None else measured.to_dict(),
        "wall_s": t.run.wall_s(),
        "device": str(t.device),
        "machine": machine_info(t.device),
    }
    t.run.write_results(results)
    return results
