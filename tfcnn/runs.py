"""Reading (and atomically writing) run folders: what the CLI and the app show about a run.

A run folder (``runs/<id>/``, written by :func:`tfcnn.train.train_run`) holds::

    config.json        data set, arch, preset + resolved TrainConfig, protocol, seed, ...
    status.json        {"state", "pid", "started", "finished", "error", "wall_s"}
    progress.jsonl     one JSON event per line (fold_start, epoch, fold_end, run_end, error)
    fold-XX/model.safetensors, fold-XX/result.json   (a fold is complete iff result.json exists)
    results.json       summary over the complete folds (mean ± std in percent, confusion)
    snapshots/foldF-epochE.safetensors   weights at chosen epochs (``train --snapshots``)

Everything here only reads, except the two small atomic writers used by the trainer, so the
app can poll a folder while a training subprocess writes it.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from pathlib import Path

from tfcnn.errors import RunError

#: The states :func:`run_status` can return.
RUN_STATES: tuple[str, ...] = ("running", "finished", "failed", "cancelled", "interrupted")

CONFIG_FILE = "config.json"
STATUS_FILE = "status.json"
PROGRESS_FILE = "progress.jsonl"
RESULTS_FILE = "results.json"
FOLD_RESULT_FILE = "result.json"
FOLD_MODEL_FILE = "model.safetensors"


def fold_dir(run_dir: str | os.PathLike, fold: int) -> Path:
    """``<run_dir>/fold-XX`` for fold index ``fold`` (0-based)."""
    return Path(run_dir) / f"fold-{fold:02d}"


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
    """Append one JSON line to ``progress.jsonl`` and flush it (the app tails this file)."""
    path = Path(run_dir) / PROGRESS_FILE
    line = json.dumps(event, allow_nan=False)
    with open(path, "a", encoding="utf-8") as fh:
        fh.write(line + "\n")
        fh.flush()


# --------------------------------------------------------------------------- reading


def _read_json(path: Path) -> dict | None:
    """Parsed JSON of ``path``, or None when the file does not exist."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except UnicodeDecodeError as exc:
        raise RunError(f"{path}: not UTF-8 text (byte {exc.start}); not a run record") from None
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise RunError(f"{path}: not valid JSON ({exc})") from None
    if not isinstance(value, dict):
        raise RunError(f"{path}: not a JSON object")
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
            events.append(json.loads(line))
        except json.JSONDecodeError:
            if i == len(lines) - 1:
                break  # a line the trainer is writing right now
            raise RunError(f"{path}: line {i + 1} is not valid JSON: {line[:80]!r}") from None
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


def _pid_alive(pid) -> bool:
    if not isinstance(pid, int) or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # exists, owned by someone else
    except OSError:
        return False
    # A zombie (exited, not yet reaped by its parent) is not running any more.
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        return stat.rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return True


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
            return "running" if _pid_alive(status.get("pid")) else "interrupted"
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


@dataclass(frozen=True)
class RunInfo:
    """One row of the run list (what the app's run picker and ``table`` need)."""

    path: Path
    name: str
    arch: str
    preset: str
    protocol: str
    dataset: str
    n_folds: int
    n_complete: int
    status: str
    started: str | None
    mean: float | None  # song accuracy over complete folds, percent
    std: float | None
    n_params: int | None


def run_info(run_dir: str | os.PathLike) -> RunInfo:
    """Summary of one run folder; raises :class:`RunError` when it is not a run."""
    path = _require_run_dir(run_dir)
    config = read_config(path)
    status = read_status(path) or {}
    results = read_results(path) or {}
    return RunInfo(
        path=path,
        name=path.name,
        arch=str(config.get("arch", "?")),
        preset=str(config.get("preset", "?")),
        protocol=str(config.get("protocol", "?")),
        dataset=str(config.get("dataset", {}).get("name", "?")),
        n_folds=int(config.get("n_folds", 0)),
        n_complete=len(complete_folds(path)),
        status=run_status(path),
        started=status.get("started"),
        mean=results.get("mean"),
        std=results.get("std"),
        n_params=config.get("n_params"),
    )


def list_runs(root: str | os.PathLike = "runs") -> list[RunInfo]:
    """Every run folder directly under ``root`` (newest first); [] when ``root`` is missing.

    Folders without a readable ``config.json`` are not runs and are left out.
    """
    root = Path(root)
    if not root.is_dir():
        return []
    infos = []
    for child in root.iterdir():
        if not (child / CONFIG_FILE).is_file():
            continue
        try:
            infos.append(run_info(child))
        except RunError:
            continue  # a folder being created or damaged: not listable
    infos.sort(key=lambda info: (info.started or "", info.name), reverse=True)
    return infos


# --------------------------------------------------------------------------- Table 1


def paper_row_for(arch: str):
    """The paper's Table 1 row that ``arch`` reproduces (``timefreq-init`` → ``timefreq``,
    the original code's active configuration), or None."""
    from tfcnn.config import PAPER_TABLE1

    return PAPER_TABLE1.get("timefreq" if arch == "timefreq-init" else arch)


def table_row(run_dir: str | os.PathLike) -> dict:
    """One Table 1 row for a run: ours beside the paper's.

    Returns
    -------
    dict
        ``run``, ``arch``, ``n_params``, ``mean``, ``std`` (percent, over complete folds; None
        when no fold is complete), ``n_folds_complete``, ``n_folds``, ``protocol``, ``preset``,
        ``dataset``, ``trained_on``, ``wall_s``, ``status``, ``max_epochs``,
        ``epochs_per_fold`` and ``best_epoch_per_fold`` (complete folds, ascending),
        ``n_folds_capped`` (complete folds that ran to ``max_epochs`` instead of being ended
        by the schedule), and ``paper_params``, ``paper_mean``, ``paper_std`` (None for an
        arch without a paper row).
    """
    path = _require_run_dir(run_dir)
    config = read_config(path)
    results = read_results(path) or {}
    status = read_status(path) or {}
    arch = str(config.get("arch", "?"))
    paper = paper_row_for(arch)
    dataset = config.get("dataset", {})
    max_epochs = (config.get("train_config") or {}).get("max_epochs")
    folds = [read_fold_result(path, k) or {} for k in complete_folds(path)]
    epochs = [f.get("epochs") for f in folds]
    return {
        "run": str(path),
        "arch": arch,
        "n_params": results.get("n_params", config.get("n_params")),
        "mean": results.get("mean"),
        "std": results.get("std"),
        "n_folds_complete": len(complete_folds(path)),
        "n_folds": int(config.get("n_folds", 0)),
        "protocol": config.get("protocol"),
        "preset": config.get("preset"),
        "dataset": dataset.get("name"),
        "trained_on": results.get("trained_on"),
        "wall_s": results.get("wall_s", status.get("wall_s")),
        "status": run_status(path),
        "max_epochs": max_epochs,
        "epochs_per_fold": epochs,
        "best_epoch_per_fold": [f.get("best_epoch") for f in folds],
        "n_folds_capped": sum(1 for e in epochs if max_epochs and e is not None
                              and e >= max_epochs),
        "paper_params": None if paper is None else paper.params,
        "paper_mean": None if paper is None else paper.mean,
        "paper_std": None if paper is None else paper.std,
    }


def format_table(rows: list[dict]) -> str:
    """Table 1 as aligned text: our accuracy beside the paper's (Pons et al. 2016, Table 1)."""
    def pm(mean, std):
        return "-" if mean is None else f"{mean:.2f} ± {std:.2f} %"

    def num(n):
        return "-" if n is None else f"{n:,}"

    def wall(s):
        if s is None:
            return "-"
        return f"{s:.0f} s" if s < 3600 else f"{s / 3600:.1f} h"

    def capped(r):
        if not r.get("max_epochs") or not r.get("n_folds_complete"):
            return "-"
        return f"{r.get('n_folds_capped', 0)}/{r['n_folds_complete']} at {r['max_epochs']}"

    header = ("architecture", "#params", "accuracy (ours)", "paper #params", "paper accuracy",
              "folds", "protocol", "dataset", "hit epoch cap", "wall time")
    body = [(r["arch"], num(r["n_params"]), pm(r["mean"], r["std"]), num(r["paper_params"]),
             pm(r["paper_mean"], r["paper_std"]),
             f"{r['n_folds_complete']}/{r['n_folds']}", str(r["protocol"]),
             str(r["dataset"]), capped(r), wall(r["wall_s"])) for r in rows]
    widths = [max(len(line[i]) for line in [header, *body]) for i in range(len(header))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(line, widths)).rstrip()
             for line in [header, *body]]
    lines.insert(1, "  ".join("-" * w for w in widths))
    notes = sorted({r["trained_on"] for r in rows if r.get("trained_on")})
    for note in notes:
        lines.append(f"(ours: {note}; paper: Ballroom, 10-fold, Pons et al. 2016 Table 1)")
    if any(r["arch"] == "timefreq-init" for r in rows):
        lines.append("(timefreq-init is compared with the paper's timefreq row)")
    return "\n".join(lines)


def process_alive(pid) -> bool:
    """Whether process ``pid`` is running on this machine (a zombie is not)."""
    return _pid_alive(pid)
