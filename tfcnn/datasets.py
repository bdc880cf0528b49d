"""Data set readers: Ballroom, SynthBallroom and folder-per-class, all as one Track table.

Every reader returns a :class:`Dataset` whose ``tracks`` table has the same columns, so the
feature cache, the folds and the app never need to know where the audio came from:

==============  ==============================================================
``track``       track id (Ballroom: the archive's file stem)
``path``        absolute path of the audio file (str)
``dance``       class name
``label``       index of ``dance`` in ``Dataset.classes`` (int)
``bpm``         tempo in BPM where known, else NaN
``beats_per_bar`` meter (3 or 4) where known, else NaN
``replica_group`` non-empty where two files are the same recording, else ""
==============  ==============================================================

Ballroom (Gouyon et al. 2004) has 698 excerpts in 8 dances (paper §2); its tempo, meter and
replica groups come from the shipped ``tfcnn/data/ballroom_tracks.csv``.
"""

from __future__ import annotations

import json
import warnings
from collections import Counter
import os
from dataclasses import dataclass, replace
from functools import lru_cache
from pathlib import Path

import numpy as np
import pandas as pd

from tfcnn.config import CLASSES
from tfcnn.errors import DatasetError
from tfcnn.paths import display, is_inside

#: Audio files a reader picks up (decoded by content later; the extension only selects files).
AUDIO_EXTENSIONS: frozenset[str] = frozenset({".wav", ".flac", ".ogg", ".mp3", ".opus"})

#: Columns of every Track table, in this order.
TRACK_COLUMNS: tuple[str, ...] = (
    "track", "path", "dance", "label", "bpm", "beats_per_bar", "replica_group",
)

#: Folders of the official archive ``data1.tar.gz`` (under ``BallroomData/``) -> class.
#: The three Rumba folders are one class in the paper's 8-way task.
BALLROOM_FOLDERS: dict[str, str] = {
    "ChaChaCha": "ChaChaCha",
    "Jive": "Jive",
    "Quickstep": "Quickstep",
    "Rumba-American": "Rumba",
    "Rumba-International": "Rumba",
    "Rumba-Misc": "Rumba",
    "Samba": "Samba",
    "Tango": "Tango",
    "VienneseWaltz": "VienneseWaltz",
    "Waltz": "Waltz",
}

#: Folders read as Ballroom: the archive's ten plus the merged layout's ``Rumba``.
_READ_FOLDERS: dict[str, str] = {**BALLROOM_FOLDERS, "Rumba": "Rumba"}

#: Number of excerpts in the full Ballroom data set (paper §2).
BALLROOM_N_TRACKS: int = 698

#: Name of the folder the official archive unpacks to.
BALLROOM_ARCHIVE_DIR: str = "BallroomData"

#: The SynthBallroom metadata file and the columns this reader needs (the generator,
#: :mod:`tfcnn.synth.generate`, adds each track's ``seed``).
SYNTH_METADATA: str = "metadata.csv"
SYNTH_COLUMNS: tuple[str, ...] = ("track", "dance", "bpm", "beats_per_bar")

#: The generator's record of a SynthBallroom's scenario and knobs, beside ``metadata.csv``.
SCENARIO_FILE: str = "scenario.json"
#: Scenario of a SynthBallroom folder without ``scenario.json`` (made before scenarios).
DEFAULT_SYNTH_SCENARIO: str = "paper"
#: Data set name of the default SynthBallroom; other scenarios append ``-<scenario>``.
SYNTH_NAME: str = "SynthBallroom"

_TRACK_TABLE = Path(__file__).resolve().parent / "data" / "ballroom_tracks.csv"


@dataclass(frozen=True, eq=False)
class Dataset:
    """A data set on disk as one Track table.

    Attributes
    ----------
    name : str
        ``"Ballroom"``, ``"SynthBallroom"`` or the folder's name.
    root : Path
        Absolute folder holding the class folders (for Ballroom: ``BallroomData/`` or the
        merged 8-folder directory). The feature cache lives under ``root/.tfcnn-cache``.
    kind : str
        ``"ballroom"``, ``"synth"`` or ``"folder"``.
    classes : tuple of str
        Class names; ``tracks.label`` indexes into it. Ballroom and SynthBallroom use
        :data:`tfcnn.config.CLASSES`.
    tracks : pandas.DataFrame, shape (n_tracks, 7)
        The Track table, columns :data:`TRACK_COLUMNS`, sorted by label then track.
    report : tuple of str
        Human-readable remarks on the layout (missing or unknown files, empty folders).
    missing : tuple of str
        Ballroom only: track ids of the shipped table that are not on disk.
    unknown : tuple of str
        Audio files that were not expected (Ballroom: stems not in the shipped table; they
        are still read, with the class of their folder and unknown tempo).
    """

    name: str
    root: Path
    kind: str
    classes: tuple[str, ...]
    tracks: pd.DataFrame
    report: tuple[str, ...] = ()
    missing: tuple[str, ...] = ()
    unknown: tuple[str, ...] = ()

    @property
    def n_tracks(self) -> int:
        """Number of audio files in the table."""
        return len(self.tracks)

    @property
    def labels(self) -> np.ndarray:
        """Class index per track, shape (n_tracks,), int64."""
        return self.tracks["label"].to_numpy(dtype=np.int64)


# --------------------------------------------------------------------------- track table

@lru_cache(maxsize=1)
def _read_track_table() -> pd.DataFrame:
    try:
        table = pd.read_csv(
            _TRACK_TABLE,
            dtype={"track": str, "dance": str, "replica_group": str},
            keep_default_na=False,
            na_values={"bpm": [""], "beats_per_bar": [""]},
        )
    except (OSError, ValueError) as exc:
        raise DatasetError(f"cannot read the shipped track table {_TRACK_TABLE}: {exc}") from exc
    table["bpm"] = table["bpm"].astype(float)
    table["beats_per_bar"] = table["beats_per_bar"].astype(float)
    return table


def ballroom_track_table() -> pd.DataFrame:
    """The shipped Ballroom track table (``tfcnn/data/ballroom_tracks.csv``).

    Returns
    -------
    pandas.DataFrame, shape (698, 5)
        Columns ``track``, ``dance``, ``bpm`` (float), ``beats_per_bar`` (float),
        ``replica_group`` (str, "" where the recording has no replica). A fresh copy.
    """
    return _read_track_table().copy()


# --------------------------------------------------------------------------- helpers

def _is_hidden(path: Path) -> bool:
    # Hidden entries include our own ``.tfcnn-cache`` and macOS ``._x.wav`` resource forks.
    return path.name.startswith(".")


def _utf8_name(path: Path) -> bool:
    """Whether a path's name is valid UTF-8 (others cannot enter the track table or a page)."""
    try:
        str(path).encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _audio_files(folder: Path, skipped: list[Path] | None = None) -> list[Path]:
    """Audio files anywhere under ``folder`` (hidden files and folders skipped), sorted.

    Files whose names are not valid UTF-8 are left out and appended to ``skipped``.
    """
    found = []
    for p in folder.rglob("*"):
        rel = p.relative_to(folder).parts
        if any(part.startswith(".") for part in rel):
            continue
        if p.suffix.lower() in AUDIO_EXTENSIONS and p.is_file():
            if _utf8_name(p):
                found.append(p)
            elif skipped is not None:
                skipped.append(p)
    return sorted(found)


def _subfolders(root: Path, skipped: list[Path] | None = None) -> list[Path]:
    """Visible sub-folders of ``root``; those with non-UTF-8 names go to ``skipped``."""
    folders = [p for p in root.iterdir() if p.is_dir() and not _is_hidden(p)]
    if skipped is not None:
        skipped.extend(p for p in folders if not _utf8_name(p))
    return sorted(p for p in folders if _utf8_name(p))


def _skipped_note(skipped: list[Path]) -> list[str]:
    """The report line for entries left out because of their names (empty when none)."""
    if not skipped:
        return []
    shown = ", ".join(display(p) for p in sorted(skipped)[:3])
    return [f"{len(skipped)} file(s) or folder(s) skipped: names are not valid UTF-8 "
            f"({shown}{', ...' if len(skipped) > 3 else ''}); rename them to use them"]


def _finish(rows: list[dict], classes: tuple[str, ...]) -> pd.DataFrame:
    """Build the Track table from row dicts, with labels, fixed dtypes and a stable order."""
    table = pd.DataFrame(rows, columns=[c for c in TRACK_COLUMNS if c != "label"])
    index = {c: i for i, c in enumerate(classes)}
    table["label"] = table["dance"].map(index).astype(np.int64)
    table["bpm"] = table["bpm"].astype(float)
    table["beats_per_bar"] = table["beats_per_bar"].astype(float)
    table["replica_group"] = table["replica_group"].fillna("").astype(str)
    table = table[list(TRACK_COLUMNS)]
    return table.sort_values(["label", "track"], kind="stable").reset_index(drop=True)


# --------------------------------------------------------------------------- Ballroom

def _ballroom_root(path: Path) -> tuple[Path, bool] | None:
    """Where the Ballroom class folders are, and whether the layout must be Ballroom.

    ``must`` is True when the layout says so on its own (a ``BallroomData`` folder or the
    archive's Rumba sub-folders); then finding no known track is an error. The merged
    8-folder layout is only Ballroom when its file stems match the shipped table.
    """
    if (path / BALLROOM_ARCHIVE_DIR).is_dir():
        return path / BALLROOM_ARCHIVE_DIR, True
    names = {p.name for p in _subfolders(path)}
    if path.name == BALLROOM_ARCHIVE_DIR or names & {"Rumba-American", "Rumba-International",
                                                     "Rumba-Misc"}:
        return path, True
    if names & set(_READ_FOLDERS):
        return path, False
    return None


def _read_ballroom(root: Path, *, must: bool) -> Dataset | None:
    table = _read_track_table().set_index("track")
    rows: list[dict] = []
    unknown: list[str] = []
    report: list[str] = []
    moved: list[str] = []
    seen: set[str] = set()
    skipped: list[Path] = []
    other_folders = [p.name for p in _subfolders(root, skipped) if p.name not in _READ_FOLDERS]
    for folder, dance in _READ_FOLDERS.items():
        if not (root / folder).is_dir():
            continue
        for f in _audio_files(root / folder, skipped):
            stem = f.stem
            if stem in seen:
                report.append(f"duplicate track {stem!r} at {f} ignored")
                continue
            seen.add(stem)
            if stem in table.index:
                known = table.loc[stem]
                if known["dance"] != dance:
                    moved.append(f"{folder}/{f.name} (the track table says {known['dance']})")
                rows.append(dict(track=stem, path=str(f), dance=dance, bpm=known["bpm"],
                                 beats_per_bar=known["beats_per_bar"],
                                 replica_group=known["replica_group"]))
            else:
                unknown.append(str(f))
                rows.append(dict(track=stem, path=str(f), dance=dance, bpm=np.nan,
                                 beats_per_bar=np.nan, replica_group=""))
    n_known = len(rows) - len(unknown)
    if n_known == 0:
        if must:
            raise DatasetError(
                f"{root} looks like the Ballroom data set but none of its "
                f"{BALLROOM_N_TRACKS} tracks is there (expected e.g. "
                f"{root / 'ChaChaCha' / 'Albums-Cafe_Paradiso-05.wav'}); "
                f"{len(unknown)} unknown audio file(s)"
            )
        return None
    missing = tuple(sorted(set(table.index) - seen))
    report.insert(0, f"{n_known} of {BALLROOM_N_TRACKS} Ballroom tracks present")
    if missing:
        report.append(f"{len(missing)} missing, e.g. {', '.join(missing[:5])}")
    if unknown:
        report.append(f"{len(unknown)} audio file(s) not in the Ballroom track table "
                      f"(read with unknown tempo), e.g. {', '.join(unknown[:3])}")
    if moved:
        report.append(f"{len(moved)} file(s) in another dance's folder than the track "
                      f"table says (the folder wins): {', '.join(moved[:3])}")
    if other_folders:
        report.append(f"folders ignored (not Ballroom dances): {', '.join(other_folders)}")
    report.extend(_skipped_note(skipped))
    return Dataset(name="Ballroom", root=root, kind="ballroom", classes=CLASSES,
                   tracks=_finish(rows, CLASSES), report=tuple(report),
                   missing=missing, unknown=tuple(unknown))


# --------------------------------------------------------------------------- SynthBallroom

def _read_synth(root: Path) -> Dataset:
    meta_path = root / SYNTH_METADATA
    try:
        meta = pd.read_csv(meta_path, dtype={"track": str, "dance": str})
    except (OSError, ValueError, pd.errors.ParserError) as exc:
        raise DatasetError(f"cannot read {meta_path}: {exc}") from exc
    missing_cols = [c for c in SYNTH_COLUMNS if c not in meta.columns]
    if missing_cols:
        raise DatasetError(
            f"{meta_path} lacks column(s) {', '.join(missing_cols)}; expected "
            f"{', '.join(SYNTH_COLUMNS)} (found {', '.join(map(str, meta.columns)) or 'none'})"
        )
    if meta.empty:
        raise DatasetError(f"{meta_path} lists no tracks")
    bad_dance = sorted(set(meta["dance"].astype(str)) - set(CLASSES))
    if bad_dance:
        raise DatasetError(f"{meta_path} has unknown dance(s) {', '.join(bad_dance)}; "
                           f"valid dances: {', '.join(CLASSES)}")
    for col in ("bpm", "beats_per_bar"):
        values = pd.to_numeric(meta[col], errors="coerce")
        if values.isna().any():
            row = int(np.flatnonzero(values.isna().to_numpy())[0])
            raise DatasetError(f"{meta_path} row {row + 2}: {col} must be a number, "
                               f"got {meta[col].iloc[row]!r}")
        meta[col] = values.astype(float)
    if meta["track"].isna().any() or meta["track"].duplicated().any():
        dup = meta["track"][meta["track"].duplicated()].tolist()
        raise DatasetError(f"{meta_path}: track ids must be present and unique, "
                           f"duplicates: {dup[:5]}")
    rows = []
    for i, rec in enumerate(meta.itertuples(index=False)):
        if not _plain_name(rec.track):
            raise DatasetError(f"{meta_path} row {i + 2}: track id {rec.track!r} is not a "
                               "plain file name (no folders, no leading dot)")
        f = root / rec.dance / f"{rec.track}.wav"
        if not f.is_file():
            raise DatasetError(f"{meta_path} lists track {rec.track!r} but {f} is missing")
        rows.append(dict(track=rec.track, path=str(f), dance=rec.dance, bpm=rec.bpm,
                         beats_per_bar=rec.beats_per_bar, replica_group=""))
    report = []
    empty = [c for c in CLASSES if c not in set(meta["dance"])]
    if empty:
        report.append(f"no tracks for {', '.join(empty)}")
    return Dataset(name=synth_name(synth_scenario(root)), root=root, kind="synth",
                   classes=CLASSES, tracks=_finish(rows, CLASSES), report=tuple(report))


def synth_scenario(root: str | Path) -> str:
    """Scenario of the SynthBallroom in ``root``: its ``scenario.json``, else ``paper``."""
    try:
        record = json.loads((Path(root) / SCENARIO_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return DEFAULT_SYNTH_SCENARIO
    name = record.get("scenario") if isinstance(record, dict) else None
    return str(name) if name else DEFAULT_SYNTH_SCENARIO


def synth_name(scenario: str) -> str:
    """Data set name of a SynthBallroom scenario: ``SynthBallroom`` (paper) or
    ``SynthBallroom-<scenario>``."""
    return SYNTH_NAME if scenario == DEFAULT_SYNTH_SCENARIO else f"{SYNTH_NAME}-{scenario}"


@dataclass(frozen=True)
class SynthSet:
    """A generated SynthBallroom found under a data root (see :func:`synth_sets`)."""

    path: Path
    scenario: str
    name: str
    n_tracks: int


def synth_sets(data_root: str | Path) -> list[SynthSet]:
    """The complete SynthBallroom data sets directly under ``data_root``, by folder name.

    A folder counts when it holds ``metadata.csv`` (written last by the generator, so an
    interrupted set is not listed). Nothing is decoded: this is cheap enough for a sidebar.

    Returns
    -------
    list of SynthSet
        ``path`` (absolute), ``scenario`` (from ``scenario.json``, ``paper`` if absent),
        ``name`` (:func:`synth_name`) and ``n_tracks`` (rows of ``metadata.csv``);
        [] when ``data_root`` does not exist.
    """
    root = Path(data_root).expanduser()
    if not root.is_dir():
        return []
    out = []
    for folder in sorted(p for p in root.iterdir() if p.is_dir() and not _is_hidden(p)):
        meta = folder / SYNTH_METADATA
        if not meta.is_file():
            continue
        with meta.open(encoding="utf-8") as f:
            n_tracks = max(sum(1 for line in f if line.strip()) - 1, 0)
        scenario = synth_scenario(folder)
        out.append(SynthSet(path=folder.resolve(), scenario=scenario,
                            name=synth_name(scenario), n_tracks=n_tracks))
    return out


def _plain_name(name: str) -> bool:
    """Whether ``name`` names a file in its folder (not a path: no separator, no ``..``)."""
    return bool(name) and "/" not in name and "\\" not in name and "\0" not in name \
        and not name.startswith(".")


# --------------------------------------------------------------------------- folder per class

def _read_folder(root: Path) -> Dataset:
    skipped: list[Path] = []
    folders = _subfolders(root, skipped)
    found = {p.name: _audio_files(p, skipped) for p in folders}
    names = [name for name, files in found.items() if files]
    if not names:
        loose = [p.name for p in root.iterdir() if p.suffix.lower() in AUDIO_EXTENSIONS]
        hint = (f"; its {len(loose)} audio file(s) must be in one sub-folder per class"
                if loose else "")
        raise DatasetError(f"{root} has no class sub-folders with audio files "
                           f"({', '.join(sorted(AUDIO_EXTENSIONS))}){hint}")
    report = _skipped_note(skipped)
    for name in (name for name, files in found.items() if not files):
        msg = f"class folder {root / name} has no audio files; skipped"
        warnings.warn(msg, stacklevel=3)
        report.append(msg)
    # The 8 Ballroom dances keep the paper's order; other class sets are sorted by name.
    classes = CLASSES if set(names) == set(CLASSES) else tuple(sorted(names))
    rows = []
    for name in classes:
        stems = [f.relative_to(root).with_suffix("").as_posix() for f in found[name]]
        clash = {s for s, n in Counter(stems).items() if n > 1}
        for f, stem in zip(found[name], stems):
            track = f.relative_to(root).as_posix() if stem in clash else stem
            rows.append(dict(track=track, path=str(f), dance=name, bpm=np.nan,
                             beats_per_bar=np.nan, replica_group=""))
    if len(classes) < 2:
        report.append(f"only one class ({classes[0]}): training needs at least two")
    return Dataset(name=root.name, root=root, kind="folder", classes=classes,
                   tracks=_finish(rows, classes), report=tuple(report))


# --------------------------------------------------------------------------- entry points

def confined_to(dataset: Dataset, roots) -> Dataset:
    """``dataset`` without the tracks whose files resolve outside ``roots`` (a class folder
    or a file that is a symlink out of the allowed folders), with one report line naming
    them (a folder-per-class set also loses a class left without tracks); the data set is
    unchanged when every track is inside."""
    inside = [is_inside(p, roots) for p in dataset.tracks["path"]]
    if all(inside):
        return dataset
    outside = dataset.tracks.loc[[not i for i in inside], "path"].tolist()
    shown = ", ".join(display(os.path.relpath(p, dataset.root)) for p in outside[:3])
    note = (f"{len(outside)} track(s) left out: they resolve outside the allowed data folders "
            f"({shown}{', ...' if len(outside) > 3 else ''})")
    tracks = dataset.tracks[inside].reset_index(drop=True)
    classes = dataset.classes
    if dataset.kind == "folder":  # its classes are its folders: a class left empty goes
        classes = tuple(c for c in classes if (tracks["dance"] == c).any())
        tracks["label"] = tracks["dance"].map({c: i for i, c in enumerate(classes)})
    return replace(dataset, classes=classes, tracks=tracks, report=(*dataset.report, note))


def load_dataset(path: str | Path, *, roots=None) -> Dataset:
    """Read a data set folder, detecting its layout.

    Parameters
    ----------
    path : str or Path
        One of: a folder holding ``BallroomData/`` (the unpacked official archive), the
        ``BallroomData`` folder itself, the merged 8-folder Ballroom layout, a SynthBallroom
        folder (``metadata.csv`` + ``<dance>/<track>.wav``), or any folder with one
        sub-folder of audio files per class.

    Returns
    -------
    Dataset
        ``kind`` is ``"ballroom"``, ``"synth"`` or ``"folder"``.

    Raises
    ------
    DatasetError
        The folder is missing, not a folder, has no audio, a ``metadata.csv`` is malformed or
        lists a missing file, or a Ballroom layout holds none of the known tracks.

    Other Parameters
    ----------------
    roots : iterable of Path, keyword-only, optional
        Allowed folders (:func:`tfcnn.paths.allowed_roots`): tracks whose files resolve
        outside them are left out (:func:`confined_to`). The app passes them; the CLI reads
        what its user names.
    """
    root = Path(path).expanduser()
    if not root.exists():
        raise DatasetError(f"data set folder {root} does not exist")
    if not root.is_dir():
        raise DatasetError(f"data set path {root} is not a folder")
    root = root.resolve()
    dataset = _read_layout(root)
    return dataset if roots is None else confined_to(dataset, tuple(roots))


def _read_layout(root: Path) -> Dataset:
    if (root / SYNTH_METADATA).is_file():
        return _read_synth(root)
    where = _ballroom_root(root)
    if where is not None:
        dataset = _read_ballroom(where[0], must=where[1])
        if dataset is not None:
            return dataset
    return _read_folder(root)


def track_list(dataset: Dataset) -> list[str]:
    """Every track of ``dataset`` as ``"<class>/<track>"``, sorted: what a run was drawn
    from (its config.json keeps it, so ``--resume`` can tell a changed data set)."""
    return sorted(t if t.startswith(f"{d}/") else f"{d}/{t}"  # folder layout: ids hold it
                  for d, t in zip(dataset.tracks["dance"], dataset.tracks["track"].astype(str)))


def require_two_classes(dataset: Dataset) -> None:
    """Raise :class:`DatasetError` unless the data set has tracks of at least two classes.

    A one-class data set trains a classifier that can only be right: its cross-validation
    would report 100 % and mean nothing.
    """
    present = [c for c in dataset.classes if (dataset.tracks["dance"] == c).any()]
    if len(present) < 2:
        which = f"only one class ({present[0]})" if present else "no tracks"
        raise DatasetError(f"{dataset.root}: the data set has {which}; a classifier needs "
                           f"tracks of at least two classes")


def describe(dataset: Dataset) -> dict:
    """A summary of a data set for the app and the CLI.

    Returns
    -------
    dict
        ``name``, ``kind``, ``root`` (str), ``n_tracks``, ``n_classes``, ``classes`` (list),
        ``per_class`` ({class: n_tracks}), ``has_tempo`` (bool), ``tempo`` ({class: {"min",
        "median", "max"}} in BPM where known), ``meter`` ({class: beats per bar or None}),
        ``n_replica_groups``, ``report`` (list of str) and, for Ballroom, ``n_missing``,
        ``n_unknown``.
    """
    t = dataset.tracks
    counts = t.groupby("dance").size()
    tempo, meter = {}, {}
    for c in dataset.classes:
        rows = t[t["dance"] == c]
        bpm = rows["bpm"].dropna()
        if len(bpm):
            tempo[c] = {"min": float(bpm.min()), "median": float(bpm.median()),
                        "max": float(bpm.max())}
        bars = rows["beats_per_bar"].dropna().unique()
        meter[c] = int(bars[0]) if len(bars) == 1 else None
    out = {
        "name": dataset.name,
        "kind": dataset.kind,
        "root": str(dataset.root),
        "n_tracks": int(len(t)),
        "n_classes": len(dataset.classes),
        "classes": list(dataset.classes),
        "per_class": {c: int(counts.get(c, 0)) for c in dataset.classes},
        "has_tempo": bool(t["bpm"].notna().any()),
        "tempo": tempo,
        "meter": meter,
        "n_replica_groups": int(t.loc[t["replica_group"] != "", "replica_group"].nunique()),
        "report": list(dataset.report),
    }
    if dataset.kind == "ballroom":
        out["n_missing"] = len(dataset.missing)
        out["n_unknown"] = len(dataset.unknown)
    return out
