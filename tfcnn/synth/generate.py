"""Write a SynthBallroom data set: ``<out>/<Dance>/<track>.wav``, ``scenario.json``,
``metadata.csv``.

Deterministic: track ``i`` of dance ``d`` draws its tempo and its render seed from
``(seed, d, i)`` alone, so the files do not depend on ``workers`` or on ``per_class``
(a bigger set extends a smaller one; except under ``shuffled``, whose label permutation
spans the whole set). Every WAV is written atomically and ``metadata.csv`` last, so an
interrupted run never looks complete; a rerun renders only what is missing, and a complete
folder is left untouched. The ``paper`` scenario writes exactly the WAVs and metadata of the
generator before scenarios existed.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path

import numpy as np
import pandas as pd
import soundfile as sf

from tfcnn.atomic import write_json_atomic, write_text_atomic
from tfcnn.audio import write_wav
from tfcnn.config import CLASSES, FRONT_END
from tfcnn.datasets import SCENARIO_FILE, SYNTH_COLUMNS, SYNTH_METADATA
from tfcnn.errors import ConfigError, DatasetError
from tfcnn.synth.dances import DANCES, real_tempi, tempo_range
from tfcnn.synth.render import SynthConfig, check_render_params, render_track
from tfcnn.synth.scenarios import (DEFAULT_SCENARIO, FOUR_FOUR, SHARED, Scenario,
                                   conflict_sources, get_scenario, track_spec)

#: The metadata file the SynthBallroom reader expects, with each track's render seed added.
METADATA = SYNTH_METADATA
METADATA_COLUMNS = (*SYNTH_COLUMNS, "seed")
#: Extra columns of every scenario but ``paper``: whose rhythm and whose sounds the audio
#: plays (``timbre_of`` is ``"shared"`` for the pool common to all classes).
SOURCE_COLUMNS = ("rhythm_of", "timbre_of")
#: ``conflict`` also names the tempo's dance (the label) beside them.
CONFLICT_COLUMNS = ("tempo_of", *SOURCE_COLUMNS)
#: Hidden stamp with the parameters the WAVs were rendered with (not part of the data set).
STAMP = ".synth.json"
#: Bump when the generator's output changes, so old folders are re-rendered.
GENERATOR_VERSION = 1


def track_name(dance: str, index: int) -> str:
    """File stem of track ``index`` of ``dance``, e.g. ``Jive-007``."""
    return f"{dance}-{index:03d}"


def track_plan(*, per_class: int, seed: int, scenario: str = DEFAULT_SCENARIO,
               config: SynthConfig | None = None) -> pd.DataFrame:
    """The tracks to render: name, label, BPM, meter and render seed, without any audio.

    The BPM of a track is a real Ballroom track's BPM (of the same dance when the scenario's
    tempo follows the class, of any dance when it is shared), jittered by
    ``config.bpm_jitter`` and clipped inside that pool's min-max. Under ``shuffled`` the
    tracks are then relabelled at random, balanced (:func:`_shuffle_labels`), and renamed
    after their label.

    Parameters
    ----------
    per_class : int, keyword-only
    seed : int, keyword-only
    scenario : str, keyword-only
        A name of :data:`tfcnn.synth.scenarios.SCENARIOS`.
    config : SynthConfig, keyword-only
        Default: the scenario's.

    Returns
    -------
    pandas.DataFrame
        Columns :data:`METADATA_COLUMNS` (plus :data:`SOURCE_COLUMNS` outside ``paper``),
        ``8 * per_class`` rows in class order.
    """
    sc = get_scenario(scenario)
    config = config or sc.config()
    tempi = real_tempi()
    pooled = np.sort(np.concatenate([tempi[d] for d in CLASSES]))
    rows = []
    for d_index, dance in enumerate(CLASSES):
        pool = tempi[dance] if sc.tempo == "class" else pooled
        lo, hi = tempo_range(dance) if sc.tempo == "class" else (pooled[0], pooled[-1])
        for i in range(per_class):
            ss = np.random.SeedSequence([int(seed), d_index, i])
            rng = np.random.default_rng(ss)
            bpm = float(rng.choice(pool)) * (1 + config.bpm_jitter * rng.standard_normal())
            # The sources: a second stream, so tempo and render seed match the paper's.
            pick = np.random.default_rng(np.random.SeedSequence([int(seed), d_index, i, 1]))
            rhythm_of = dance if sc.rhythm == "class" else str(
                FOUR_FOUR[int(pick.integers(len(FOUR_FOUR)))])
            timbre_of = dance if sc.timbre == "class" else SHARED
            if "other" in (sc.rhythm, sc.timbre):
                rhythm_other, timbre_other = conflict_sources(dance, i)
                rhythm_of = rhythm_other if sc.rhythm == "other" else rhythm_of
                timbre_of = timbre_other if sc.timbre == "other" else timbre_of
            rows.append(dict(track=track_name(dance, i), dance=dance,
                             bpm=round(float(np.clip(bpm, lo, hi)), 2),
                             beats_per_bar=DANCES[rhythm_of].beats_per_bar,
                             seed=int(ss.generate_state(1, dtype=np.uint32)[0]),
                             tempo_of=dance, rhythm_of=rhythm_of, timbre_of=timbre_of))
    plan = pd.DataFrame(rows)
    if sc.labels == "shuffled":
        plan = _shuffle_labels(plan, seed=int(seed))
    extra = ((), SOURCE_COLUMNS, CONFLICT_COLUMNS)[
        (sc.name != DEFAULT_SCENARIO) + ("other" in (sc.rhythm, sc.timbre))]
    return plan[list(METADATA_COLUMNS + extra)]


def read_sources(root: str | os.PathLike) -> pd.DataFrame:
    """Whose tempo, rhythm and sounds each track of a ``conflict`` set plays.

    Returns
    -------
    pandas.DataFrame
        Columns ``track`` and :data:`CONFLICT_COLUMNS`, one row per track of
        ``metadata.csv``.

    Raises
    ------
    DatasetError
        No readable ``metadata.csv``, or it lacks these columns (not a ``conflict`` set), or
        names a dance that does not exist.
    """
    path = Path(root) / METADATA
    try:
        meta = pd.read_csv(path, dtype=str)
    except (OSError, ValueError, pd.errors.ParserError) as exc:
        raise DatasetError(f"cannot read {path}: {exc}") from None
    missing = [c for c in ("track", *CONFLICT_COLUMNS) if c not in meta.columns]
    if missing:
        raise DatasetError(f"{path} lacks column(s) {', '.join(missing)}: not a conflict set "
                           f"(python -m tfcnn synth DIR --scenario conflict makes one)")
    table = meta[["track", *CONFLICT_COLUMNS]]
    bad = sorted(set(table[list(CONFLICT_COLUMNS)].to_numpy().ravel()) - set(CLASSES))
    if bad:
        raise DatasetError(f"{path} names unknown dance(s) {', '.join(map(str, bad))}")
    return table.reset_index(drop=True)


def _shuffle_labels(plan: pd.DataFrame, *, seed: int) -> pd.DataFrame:
    """Relabel the tracks at random, balanced: each dance's audio spreads evenly over labels.

    A plain random permutation leaves a chance coupling between label and audio dance
    (some labels hold twice their share of one dance), which a model can learn from the
    training folds and carry to the test fold. Here each dance's tracks, in random order,
    get the labels in a rotated cycle, so every (audio dance, label) cell holds
    ``per_class // 8`` or one more track and every label ``per_class`` tracks. The audio
    (tempo, meter, sources, render seed) stays with its row; tracks are renamed after
    their label.
    """
    rng = np.random.default_rng(np.random.SeedSequence([seed, len(CLASSES), len(plan)]))
    order = rng.permutation(len(CLASSES))  # which label each cycle position stands for
    labels = plan["dance"].to_numpy().copy()
    for a, dance in enumerate(CLASSES):
        rows = np.flatnonzero(plan["dance"].to_numpy() == dance)
        rows = rows[rng.permutation(rows.size)]
        labels[rows] = [CLASSES[order[(j + a) % len(CLASSES)]] for j in range(rows.size)]
    plan = plan.assign(dance=labels)
    plan["_order"] = plan["dance"].map({d: k for k, d in enumerate(CLASSES)})
    plan = plan.sort_values(["_order"], kind="stable").drop(columns="_order")
    plan["track"] = [track_name(d, k) for d, k in
                     zip(plan["dance"], plan.groupby("dance").cumcount())]
    return plan.reset_index(drop=True)


def _render_one(out_dir: str, track: str, dance: str, bpm: float, seed: int, seconds: float,
                sample_rate: int, config: SynthConfig, rhythm_of: str, timbre_of: str,
                eq_gain_db: float) -> str:
    """Worker: render and atomically write one track (in its label's folder); returns its name."""
    spec = track_spec(rhythm_of=rhythm_of, timbre_of=timbre_of, eq_gain_db=eq_gain_db)
    y = render_track(spec, bpm=bpm, seconds=seconds, seed=seed, sample_rate=sample_rate,
                     config=config)
    write_wav(Path(out_dir) / dance / f"{track}.wav", y, sample_rate=sample_rate)
    return track


def _is_complete(path: Path, n_samples: int, sample_rate: int) -> bool:
    """A WAV of the expected length and rate exists (writes are atomic, so it is whole)."""
    try:
        info = sf.info(str(path))
    except (OSError, RuntimeError, sf.SoundFileError):
        return False
    return info.frames == n_samples and info.samplerate == sample_rate and info.channels == 1


def scenario_record(sc: Scenario, *, per_class: int, seconds: float, seed: int,
                    sample_rate: int, config: SynthConfig) -> dict:
    """What ``scenario.json`` holds: the scenario's knobs and every generator parameter."""
    return dict(scenario=sc.name, knobs=sc.knobs(), per_class=int(per_class),
                seconds=float(seconds), seed=int(seed), sample_rate=int(sample_rate),
                generator_version=GENERATOR_VERSION, config=config.to_dict())


def generate(out_dir: str | os.PathLike, *, scenario: str = DEFAULT_SCENARIO,
             per_class: int = 60, seconds: float = 30.0, seed: int = 0, workers: int = 2,
             progress: bool | Callable[[int, int], None] = True,
             sample_rate: int = FRONT_END.sample_rate,
             config: SynthConfig | None = None) -> Path:
    """Generate (or complete) a SynthBallroom data set of one scenario in ``out_dir``.

    Parameters
    ----------
    out_dir : str or os.PathLike
        Destination folder (created).
    scenario : str, keyword-only
        A name of :data:`tfcnn.synth.scenarios.SCENARIOS` (default ``paper``).
    per_class : int, keyword-only
        Tracks per dance (>= 1); 60 by default (Ballroom has 60-110 per dance).
    seconds : float, keyword-only
        Track length in seconds (> 0); Ballroom excerpts are about 30 s.
    seed : int, keyword-only
        Seed of the whole set.
    workers : int, keyword-only
        Processes rendering in parallel (>= 1). The output does not depend on it.
    progress : bool or callable, keyword-only
        True: a tqdm bar on stderr; a callable: called as ``progress(done, total)`` after
        each track (and once before the first); False: silent.
    sample_rate : int, keyword-only
        Hz (44100, the paper's rate).
    config : SynthConfig, keyword-only
        Difficulty knobs; default: the scenario's (:meth:`Scenario.config`).

    Returns
    -------
    Path
        ``out_dir``, holding ``<Dance>/<track>.wav``, ``scenario.json`` and ``metadata.csv``
        (columns track, dance, bpm, beats_per_bar, seed; outside ``paper`` also rhythm_of,
        timbre_of; in ``conflict`` also tempo_of).

    Raises
    ------
    ConfigError
        Unknown scenario, ``per_class < 1``, ``seconds <= 0``, ``workers < 1`` or a bad
        sample rate.
    """
    sc = get_scenario(scenario)
    config = config or sc.config()
    if int(per_class) != per_class or per_class < 1:
        raise ConfigError(f"per_class must be an integer >= 1, got {per_class}")
    if int(workers) != workers or workers < 1:
        raise ConfigError(f"workers must be an integer >= 1, got {workers}")
    if int(seed) != seed:
        raise ConfigError(f"seed must be an integer, got {seed}")
    check_render_params(bpm=120.0, seconds=seconds, sample_rate=sample_rate)
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise ConfigError(f"{out}: exists and is not a folder")
    out.mkdir(parents=True, exist_ok=True)
    n_samples = int(round(seconds * sample_rate))
    plan = track_plan(per_class=int(per_class), seed=int(seed), scenario=sc.name,
                      config=config)
    metadata_text = plan.to_csv(index=False, lineterminator="\n")
    record = scenario_record(sc, per_class=per_class, seconds=seconds, seed=seed,
                             sample_rate=sample_rate, config=config)

    stamp_dict = dict(version=GENERATOR_VERSION, seed=int(seed), seconds=float(seconds),
                      sample_rate=int(sample_rate), config=config.to_dict())
    if sc.name != DEFAULT_SCENARIO:  # paper keeps its old stamp: its folders stay valid
        stamp_dict["scenario"] = sc.knobs()
    stamp = json.dumps(stamp_dict, sort_keys=True)
    stamp_path = out / STAMP
    same_params = stamp_path.is_file() and stamp_path.read_text(encoding="utf-8") == stamp
    meta_path = out / METADATA
    if (same_params and meta_path.is_file()
            and meta_path.read_text(encoding="utf-8") == metadata_text
            and all((out / r.dance / f"{r.track}.wav").is_file() for r in plan.itertuples())):
        _write_record(out / SCENARIO_FILE, record)  # folders made before scenarios had none
        return out  # complete with the same parameters: nothing to do
    meta_path.unlink(missing_ok=True)  # the set is about to change: not complete meanwhile
    for dance in CLASSES:
        (out / dance).mkdir(exist_ok=True)
        # Other parameters: every old WAV is stale. Same: only surplus tracks go.
        keep = set(plan.loc[plan.dance == dance, "track"]) if same_params else set()
        _remove_surplus(out / dance, dance, keep)
    if not same_params:
        write_text_atomic(stamp_path, stamp)  # after the stale WAVs are gone
    todo = [r for r in plan.itertuples()
            if not _is_complete(out / r.dance / f"{r.track}.wav", n_samples, sample_rate)]
    eq_gain_db = sc.eq_gain_db
    args = [(str(out), r.track, r.dance, float(r.bpm), int(r.seed), float(seconds),
             int(sample_rate), config, getattr(r, "rhythm_of", r.dance),
             getattr(r, "timbre_of", r.dance), eq_gain_db) for r in todo]
    report = _Progress(progress, total=len(plan), done=len(plan) - len(todo),
                                label=f"SynthBallroom {sc.name}")
    try:
        if workers == 1 or len(args) <= 1:
            for a in args:
                _render_one(*a)
                report.update()
        else:
            with ProcessPoolExecutor(max_workers=min(int(workers), len(args))) as pool:
                for fut in as_completed([pool.submit(_render_one, *a) for a in args]):
                    fut.result()
                    report.update()
    finally:
        report.close()
    _write_record(out / SCENARIO_FILE, record)
    write_text_atomic(meta_path, metadata_text)  # last: the set is complete
    return out


def _write_record(path: Path, record: dict) -> None:
    """Write ``scenario.json`` atomically unless it already holds ``record``."""
    try:
        if json.loads(path.read_text(encoding="utf-8")) == json.loads(json.dumps(record)):
            return  # (compared as JSON: tuples read back as lists)
    except (OSError, ValueError):
        pass
    write_json_atomic(path, record)


class _Progress:
    """Progress of the rendering: a tqdm bar, a ``(done, total)`` callback, or nothing."""

    def __init__(self, progress, *, total: int, done: int, label: str):
        self.total, self.done = total, done
        self.callback = progress if callable(progress) else None
        self.bar = None
        if progress is True:
            from tqdm import tqdm

            self.bar = tqdm(total=total, initial=done, unit="clip", desc=label)
        if self.callback is not None:
            self.callback(done, total)

    def update(self) -> None:
        self.done += 1
        if self.bar is not None:
            self.bar.update(1)
        if self.callback is not None:
            self.callback(self.done, self.total)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


_TRACK_FILE = re.compile(r"^(?P<dance>[A-Za-z]+)-(?P<index>\d{3,})\.wav$")


def _remove_surplus(folder: Path, dance: str, keep: set[str]) -> None:
    """Delete this generator's WAVs of ``dance`` that the plan no longer lists (smaller set)."""
    for f in folder.glob(f"{dance}-*.wav"):
        m = _TRACK_FILE.match(f.name)
        if m and m["dance"] == dance and f.stem not in keep:
            f.unlink()
