"""Result sets: one architecture's cross-validation results in one shape, wherever they are
stored, and the files that store them.

A :class:`ResultSet` comes from a run folder (``results.json`` and ``progress.jsonl``, read
through :mod:`tfcnn.runs`: :func:`run_results`), from an entry of a Table 1 file
(:class:`TableFile`: the shipped ``checkpoints/table1-synth.json`` and
``checkpoints/table1-scenarios.json``), or from either by the name the CLI takes
(:func:`load_result_set`: a run folder or ``FILE.json:KEY``). Comparisons
(:mod:`tfcnn.compare`), downloads (:mod:`tfcnn.export`), the lab's matrix
(:mod:`tfcnn.synth.lab`), the estimate's epoch counts (:mod:`tfcnn.estimate`) and the pages
all read results here. The shipped sweep reports (``checkpoints/sweep-*.json``) are read by
:func:`sweep_reports`.

A Table 1 file is one JSON object::

    label, note, recipe, code_version, machine, total_wall_s
    rows      one Table 1 row per entry (tfcnn.table1.table_row + per_fold, n_tracks and
              what pairing folds needs), keyed by arch, or by scenario/arch in a lab table
    runs      {key: the entry's results.json}
    curves    {key: its epoch records}                      (optional)
    scenarios, not_retrained                                (optional)
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pandas as pd

from tfcnn.atomic import write_json_atomic
from tfcnn.config import CLASSES
from tfcnn.errors import RunError
from tfcnn.folds import PAPER_VALIDATION_FRACTION
from tfcnn.provenance import code_version, machine_info
from tfcnn.runs import read_progress, read_results, read_run
from tfcnn.table1 import paper_row_for, table_row

#: ``ResultSet.source`` of an entry of a Table 1 file and of a local training run.
SHIPPED, RUN = "shipped", "run"
#: ``ResultSet.dataset`` of results that did not record their data set.
UNKNOWN_DATASET = "unknown"
#: A Table 1 cell whose setting the result did not record.
UNRECORDED = "—"
#: Separator between a Table 1 file and the key of one of its entries (``FILE.json:time``).
TABLE_SEPARATOR = ":"
#: results.json keys a table row keeps so two rows can be compared fold by fold.
PAIRING_KEYS: tuple[str, ...] = ("folds", "fold_fingerprints", "assignment_fingerprint",
                                 "n_train_tracks", "n_test_tracks")
#: Per-epoch fields a table keeps of each run (the Results page draws curves from them).
CURVE_FIELDS: tuple[str, ...] = ("stage", "fold", "epoch", "train_loss", "train_acc",
                                 "val_loss", "val_acc", "lr")


def fold_accuracies(results: dict) -> list[float]:
    """Per-fold song accuracies (%) of a ``results.json`` (its ``per_fold``); [] without.

    Fractions beside a percent mean (older table rows) are turned into percent.
    """
    per_fold = results.get("per_fold")
    if not isinstance(per_fold, list):
        return []
    accs = [float(v) for v in per_fold]
    mean = results.get("mean")
    if accs and max(accs) <= 1.0 and isinstance(mean, (int, float)) and mean > 1.0:
        accs = [100.0 * a for a in accs]
    return accs


def _per_fold(values, n: int) -> tuple | None:
    """``values`` as a tuple when it is a list of ``n`` non-null entries, else None."""
    if isinstance(values, list) and len(values) == n and all(v is not None for v in values):
        return tuple(values)
    return None


@dataclass(frozen=True)
class ResultSet:
    """One architecture's cross-validation results, from a run or a Table 1 file.

    Attributes
    ----------
    label : str
        How it is named (``shipped <key>``, a run folder's name, or the reference it was
        loaded by).
    arch : str
        Architecture name.
    dataset : str
        Name of the data set it was trained and tested on (:data:`UNKNOWN_DATASET` when
        not recorded).
    n_params : int or None
        Trainable parameters of the model.
    mean, std : float or None
        Song accuracy (%) over the complete folds, mean and ``np.std``.
    accuracies : list of float, shape (n_complete,)
        Song accuracy (%) of each complete fold.
    folds : tuple of int, shape (n_complete,)
        Index of each complete fold, aligned with ``accuracies``.
    confusion : np.ndarray, shape (n_classes, n_classes), or None
        Song counts summed over the folds (rows: true class, columns: predicted).
    classes : tuple of str, shape (n_classes,)
    history : pd.DataFrame
        Epoch records (``fold``, ``epoch``, ``train_loss``, ``train_acc``, ``val_loss``,
        ``val_acc``, optional ``stage``; accuracies as fractions); empty when none.
    source : str
        :data:`SHIPPED` or :data:`RUN`.
    origin : str
        The file or folder it was read from.
    fingerprints : tuple of str, shape (n_complete,), or None
        Test-song fingerprint of each complete fold (:func:`tfcnn.folds.fold_fingerprint`);
        None when not all were recorded.
    assignment : str or None
        Fingerprint of the whole fold assignment.
    n_train_tracks, n_test_tracks : tuple of int, shape (n_complete,), or None
        Songs each fold trained and tested on.
    protocol : str or None
    n_folds : int
        Folds the run was planned with (K).
    n_tracks : int or None
        Songs of the data set.
    wall_s : float or None
        Training time.
    seed : int or None
        Training seed (it also draws the folds); None when not recorded.
    preset : str or None
        The training recipe's preset (``quick``, ``paper``); None when not recorded.
    max_epochs : int or None
        The epoch cap each fold trained under; None when not recorded.
    """

    label: str
    arch: str
    dataset: str
    n_params: int | None
    mean: float | None
    std: float | None
    accuracies: list[float]
    folds: tuple[int, ...]
    confusion: np.ndarray | None
    classes: tuple[str, ...]
    history: pd.DataFrame
    source: str
    origin: str = ""
    fingerprints: tuple[str, ...] | None = None
    assignment: str | None = None
    n_train_tracks: tuple[int, ...] | None = None
    n_test_tracks: tuple[int, ...] | None = None
    protocol: str | None = None
    n_folds: int = 0
    n_tracks: int | None = None
    wall_s: float | None = None
    seed: int | None = None
    preset: str | None = None
    max_epochs: int | None = None

    @property
    def series(self) -> str:
        """Name of the group it is drawn in: all shipped rows of a data set share one."""
        return f"{SHIPPED} ({self.dataset})" if self.source == SHIPPED else self.label

    @property
    def pairable(self) -> bool:
        """Whether it recorded what pairing its folds with another's needs."""
        return self.fingerprints is not None and self.assignment is not None

    @property
    def test_train_ratio(self) -> float | None:
        """``n_test / n_train`` of a fold: mean songs tested over mean songs the model was
        fitted on (validation songs, or the ``paper`` protocol's 1/9 of training patches,
        do not count); None when the counts were not recorded."""
        if not self.n_train_tracks or not self.n_test_tracks or min(self.n_train_tracks) <= 0:
            return None
        # ``paper`` fits on 8/9 of its training songs' patches (the rest is validation)
        fitted = 1.0 - PAPER_VALIDATION_FRACTION if self.protocol == "paper" else 1.0
        return float(np.mean(self.n_test_tracks)) / (fitted * float(np.mean(self.n_train_tracks)))


def _dataset_of(results: dict) -> tuple[str, int | None]:
    dataset = results.get("dataset")
    if isinstance(dataset, dict):
        n = dataset.get("n_tracks")
        return str(dataset.get("name") or UNKNOWN_DATASET), None if n is None else int(n)
    return (str(dataset) if dataset else UNKNOWN_DATASET), None


def result_set(label: str, results: dict, *, source: str, arch: str | None = None,
               history: pd.DataFrame | None = None, origin: str = "") -> ResultSet:
    """One ``results.json`` (or Table 1 row) as a :class:`ResultSet`; missing keys become
    None (``mean``/``std`` are computed from ``per_fold`` when only it is there)."""
    accs = fold_accuracies(results)
    mean = results.get("mean")
    std = results.get("std")
    if mean is None and accs:
        mean, std = float(np.mean(accs)), float(np.std(accs))
    folds = results.get("folds")
    if not (isinstance(folds, list) and len(folds) == len(accs)):
        folds = range(len(accs))  # older files: complete folds in order from 0
    classes = tuple(results.get("classes") or CLASSES)
    confusion = results.get("confusion")
    conf = np.asarray(confusion, dtype=float) if confusion is not None else None
    if conf is not None and conf.shape != (len(classes), len(classes)):
        conf = None
    dataset, n_tracks = _dataset_of(results)
    if results.get("n_tracks") is not None:
        n_tracks = int(results["n_tracks"])
    n = len(accs)
    fingerprints = _per_fold(results.get("fold_fingerprints"), n)
    n_train, n_test = (_per_fold(results.get(k), n) for k in ("n_train_tracks", "n_test_tracks"))
    return ResultSet(
        label=label, arch=str(arch or results.get("arch", "?")), dataset=dataset,
        n_params=results.get("n_params"), mean=mean, std=std, accuracies=accs,
        folds=tuple(int(k) for k in folds), confusion=conf, classes=classes,
        history=history if history is not None else pd.DataFrame(), source=source,
        origin=origin, fingerprints=None if fingerprints is None else tuple(map(str, fingerprints)),
        assignment=results.get("assignment_fingerprint"),
        n_train_tracks=None if n_train is None else tuple(int(v) for v in n_train),
        n_test_tracks=None if n_test is None else tuple(int(v) for v in n_test),
        protocol=results.get("protocol"), n_folds=int(results.get("n_folds") or n),
        n_tracks=n_tracks, wall_s=results.get("wall_s"), seed=_seed_of(results),
        preset=_recipe_of(results, "preset"), max_epochs=_recipe_of(results, "max_epochs"))


def _recipe_of(results: dict, key: str):
    """``key`` of the training recipe: a table row's own, else the run's ``train_config``'s
    (None when neither records it)."""
    value = results.get(key)
    if value is None and isinstance(results.get("train_config"), dict):
        value = results["train_config"].get(key)
    return value


def _seed_of(results: dict) -> int | None:
    """The training seed: a table row's ``seed``, else the run's ``train_config``."""
    seed = results.get("seed")
    if seed is None and isinstance(results.get("train_config"), dict):
        seed = results["train_config"].get("seed")
    return int(seed) if isinstance(seed, int) and not isinstance(seed, bool) else None


def run_results(run_dir: str | os.PathLike) -> ResultSet | None:
    """Results of a training run folder (None when no fold is complete yet)."""
    run = read_run(Path(run_dir))
    if not run.results:
        return None
    return result_set(run.name, {**run.results, "n_params": run.n_params}, source=RUN,
                      arch=run.config.get("arch"), history=run.history,
                      origin=str(run_dir))


# ----------------------------------------------------------------------------- Table 1 files


@dataclass(frozen=True)
class TableFile:
    """A Table 1 file (format in the module docstring): read, its entries as result sets,
    and written.

    Attributes
    ----------
    content : dict
        The file's JSON object ({} for a missing or unreadable file read leniently).
    path : Path or None
    """

    content: dict
    path: Path | None = None

    @classmethod
    def read(cls, path: str | os.PathLike, *, strict: bool = False) -> "TableFile":
        """The Table 1 file at ``path``.

        A missing or unreadable file is an empty table, unless ``strict``: then
        :class:`RunError` names the file and the problem.
        """
        path = Path(path)
        try:
            content = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            if strict:
                raise RunError(f"{path}: no such Table 1 file") from None
            content = {}
        except (OSError, ValueError) as exc:
            if strict:
                raise RunError(f"{path}: not a readable Table 1 JSON file ({exc})") from None
            content = {}
        if not isinstance(content, dict):
            if strict:
                raise RunError(f"{path}: not a Table 1 file (expected a JSON object)")
            content = {}
        return cls(content=content, path=path)

    @classmethod
    def of_runs(cls, *, label: str, note: str, recipe: dict, rows: list[dict], runs: dict,
                device, **more) -> "TableFile":
        """A Table 1 file of finished (or partly finished) runs: their rows
        (:func:`table_row_of_run`) and results by key, the recipe that made them, the code
        version, the machine (``device`` it trained on) and the total training time;
        ``more`` adds ``curves``, ``scenarios`` or ``not_retrained``."""
        return cls({"label": label, "note": note, "recipe": recipe,
                    "code_version": code_version(), "machine": machine_info(device),
                    "total_wall_s": sum(r.get("wall_s") or 0.0 for r in rows),
                    "rows": rows, "runs": runs, **more})

    def write(self, path: str | os.PathLike | None = None) -> None:
        """Write the table (atomically) to ``path``, by default where it was read."""
        write_json_atomic(Path(path or self.path), self.content)

    @property
    def label(self) -> str:
        return str(self.content.get("label") or "")

    @property
    def recipe(self) -> dict:
        recipe = self.content.get("recipe")
        return recipe if isinstance(recipe, dict) else {}

    @property
    def rows(self) -> list[dict]:
        """The Table 1 rows (dicts of :func:`table_row_of_run`)."""
        return [r for r in self.content.get("rows", []) if isinstance(r, dict)]

    def _dict(self, name: str) -> dict:
        value = self.content.get(name)
        return value if isinstance(value, dict) else {}

    @property
    def not_retrained(self) -> dict[str, str]:
        """Architectures the table leaves out, with the table's reason for each."""
        return {str(k): str(v) for k, v in self._dict("not_retrained").items()}

    def _entries(self) -> list[tuple[str, dict, dict]]:
        """``(key, row, results)`` of every entry: each row with its full results
        (``runs[key]``, when they are of the row's data set), then results without a row."""
        runs = self._dict("runs")
        entries = []
        for row in self.rows:
            if "arch" not in row:
                continue
            key = _row_key(row)
            results = runs.get(key) if isinstance(runs.get(key), dict) else {}
            if row.get("dataset") and _dataset_of(results)[0] not in (row["dataset"],
                                                                      UNKNOWN_DATASET):
                results = {}  # another entry's (a lab table's rows without their scenario)
            entries.append((key, row, results))
        keys = {key for key, _, _ in entries}
        return entries + [(key, {}, results) for key, results in runs.items()
                          if key not in keys and isinstance(results, dict)]

    def keys(self) -> list[str]:
        """Every entry's key: the rows' (``arch``, or ``scenario/arch``), then those of
        results without a row."""
        return [key for key, _, _ in self._entries()]

    def result_sets(self) -> list[ResultSet]:
        """Every entry as a :class:`ResultSet` labelled ``shipped <key>``: its row merged
        with its full results, with its curves."""
        curves = self._dict("curves")
        return [result_set(f"{SHIPPED} {key}",
                           {**row, **results,
                            "n_params": results.get("n_params", row.get("n_params"))},
                           source=SHIPPED, arch=row.get("arch") or results.get("arch") or key,
                           history=pd.DataFrame(curves.get(key) or []),
                           origin=str(self.path or ""))
                for key, row, results in self._entries()]

    def result_set(self, key: str) -> ResultSet:
        """The entry ``key``, labelled ``FILE:KEY``; :class:`RunError` lists the keys when
        there is none."""
        keys = self.keys()
        if key not in keys:
            raise RunError(f"{self.path}: no row {key!r}; rows: {', '.join(keys) or 'none'}")
        return _relabelled(self.result_sets()[keys.index(key)],
                           f"{self.path}{TABLE_SEPARATOR}{key}")


def _row_key(row: dict) -> str:
    """``arch``; in a lab table ``scenario/arch``, and ``scenario/arch/sSEED`` for a row that
    names its seed (a table of several seeds per cell)."""
    if not row.get("scenario"):
        return str(row["arch"])
    seed = f"/s{row['seed']}" if row.get("seed") is not None else ""
    return f"{row['scenario']}/{row['arch']}{seed}"


def _relabelled(rs: ResultSet, label: str) -> ResultSet:
    return replace(rs, label=label)


def table_row_of_run(run_dir: str | os.PathLike, **extra) -> dict | None:
    """A run folder's row as a Table 1 file keeps it: :func:`tfcnn.table1.table_row` with
    ``per_fold``, ``n_tracks``, the patch accuracy, the confusion matrix and what pairing its
    folds needs (:data:`PAIRING_KEYS`), plus ``extra``; None before any fold is complete."""
    results = read_results(run_dir)
    if not results or results.get("mean") is None:
        return None
    row = table_row(run_dir)
    row.update(per_fold=results.get("per_fold"),
               n_tracks=(results.get("dataset") or {}).get("n_tracks"),
               patch_mean=results.get("patch_mean"), patch_std=results.get("patch_std"),
               confusion=results.get("confusion"),
               **{key: results.get(key) for key in PAIRING_KEYS}, **extra)
    return row


def epoch_curves(run_dir: str | os.PathLike) -> list[dict]:
    """A run's epoch events as a table keeps them: :data:`CURVE_FIELDS`, 5 significant
    digits."""
    def short(value):
        return float(f"{value:.5g}") if isinstance(value, float) else value

    return [{k: short(e[k]) for k in CURVE_FIELDS if k in e}
            for e in read_progress(run_dir) if e.get("event") == "epoch"]


def load_result_set(ref: str | os.PathLike) -> ResultSet:
    """The results a reference names: a run folder, or ``TABLE.json:KEY`` for an entry of a
    Table 1 file; labelled by the reference.

    Raises
    ------
    RunError
        Not a run folder with results, not a Table 1 file, or no such entry in it.
    """
    text = str(ref)
    file, sep, key = text.rpartition(TABLE_SEPARATOR)
    if sep and file.endswith(".json") and not Path(text).exists():
        return TableFile.read(file, strict=True).result_set(key)
    if text.endswith(".json"):
        raise RunError(f"{text}: name a row of the table as {text}{TABLE_SEPARATOR}ARCH")
    found = run_results(text)
    if found is None:
        raise RunError(f"{text}: no results yet (no fold is complete)")
    return _relabelled(found, text)


# ----------------------------------------------------------------------------- sweep reports


def sweep_reports(folder: str | os.PathLike) -> list[tuple[str, dict, dict]]:
    """The shipped sweep reports in ``folder`` (``sweep-*.json``, as
    ``scripts/sweep_measure`` writes its ``report.json``): one ``(label, report, engine
    entry)`` per engine that has grid points; unreadable files are skipped."""
    found = []
    for path in sorted(Path(folder).glob("sweep-*.json")):
        try:
            report = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue  # not a report: nothing to show
        for entry in report.get("engines", []) if isinstance(report, dict) else []:
            if isinstance(entry, dict) and entry.get("points") and entry.get("params"):
                found.append((f"shipped: {path.stem} ({entry.get('engine', '?')} engine)",
                              report, entry))
    return found


# ----------------------------------------------------------------------------- tables of sets


def results_table(sets: Sequence[ResultSet]) -> pd.DataFrame:
    """Our Table 1 beside the paper's: one row per set, numbers as numbers, with what each
    was trained under (a 2-fold, 10-epoch run beside 10-fold rows says so).

    Returns
    -------
    pd.DataFrame, one row per set
        ``run``, ``architecture``, ``mean (%)``, ``std (%)``, ``paper mean (%)``,
        ``paper std (%)`` (the paper's Ballroom row, NaN for an architecture it lacks),
        ``folds complete``, ``folds planned``, ``preset``, ``max epochs`` (the cap),
        ``protocol`` ("—" when a set does not record one), ``#params``, ``paper #params``,
        ``dataset``, ``source``.
    """
    rows = []
    for rs in sets:
        paper = paper_row_for(rs.arch)  # timefreq-init reproduces the timefreq row
        rows.append({
            "run": rs.label, "source": rs.source, "dataset": rs.dataset,
            "architecture": rs.arch, "#params": rs.n_params,
            "mean (%)": rs.mean, "std (%)": rs.std, "folds complete": len(rs.accuracies),
            "folds planned": max(rs.n_folds, len(rs.accuracies)),
            "preset": rs.preset or UNRECORDED, "max epochs": rs.max_epochs,
            "protocol": rs.protocol or UNRECORDED,
            "paper #params": paper.params if paper else None,
            "paper mean (%)": paper.mean if paper else None,
            "paper std (%)": paper.std if paper else None,
        })
    # ours beside the paper's first, so a narrow view shows the comparison
    table = pd.DataFrame(rows, columns=["run", "architecture", "mean (%)", "std (%)",
                                        "paper mean (%)", "paper std (%)", "folds complete",
                                        "folds planned", "preset", "max epochs", "protocol",
                                        "#params", "paper #params", "dataset", "source"])
    for column in ("#params", "paper #params", "max epochs"):
        table[column] = table[column].astype("Int64")  # counts stay integers, None → <NA>
    for column in ("mean (%)", "std (%)", "paper mean (%)", "paper std (%)"):
        table[column] = table[column].astype(float)
    for column in ("folds complete", "folds planned"):
        table[column] = table[column].astype(int)
    return table


def params_points(sets: Sequence[ResultSet]) -> pd.DataFrame:
    """The points of :func:`tfcnn.plots.accuracy_vs_params`: sets with a parameter count and
    a mean, as ``series``, ``arch``, ``params``, ``mean``, ``std`` (0 when unknown),
    ``hover``."""
    rows = [{"series": rs.series, "arch": rs.arch, "params": float(rs.n_params),
             "mean": float(rs.mean), "std": float(rs.std or 0.0),
             "hover": f"{rs.label} ({rs.dataset}, {len(rs.accuracies)} folds)"}
            for rs in sets if rs.n_params and rs.mean is not None]
    return pd.DataFrame(rows, columns=["series", "arch", "params", "mean", "std", "hover"])
