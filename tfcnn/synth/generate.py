"""Write a SynthBallroom data set: ``<out>/<Dance>/<track>.wav`` + ``metadata.csv``.

Deterministic: track ``i`` of dance ``d`` draws its tempo and its render seed from
``(seed, d, i)`` alone, so the files do not depend on ``workers`` or on ``per_class``
(a bigger set extends a smaller one). Every WAV is written atomically and
``metadata.csv`` last, so an interrupted run never looks complete; a rerun renders only
what is missing, and a complete folder is left untouched.
"""

from __future__ import annotations

import json
import os
import re
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path

import numpy as np
import pandas as pd
import soundfile as sf

from tfcnn.atomic import write_text_atomic
from tfcnn.audio import write_wav
from tfcnn.config import CLASSES, FRONT_END
from tfcnn.datasets import SYNTH_COLUMNS, SYNTH_METADATA
from tfcnn.errors import ConfigError
from tfcnn.synth.dances import DANCES, real_tempi, tempo_range
from tfcnn.synth.render import SYNTH_CONFIG, SynthConfig, check_render_params, render_track

#: The metadata file the SynthBallroom reader expects, with each track's render seed added.
METADATA = SYNTH_METADATA
METADATA_COLUMNS = (*SYNTH_COLUMNS, "seed")
#: Hidden stamp with the parameters the WAVs were rendered with (not part of the data set).
STAMP = ".synth.json"
#: Bump when the generator's output changes, so old folders are re-rendered.
GENERATOR_VERSION = 1


def track_name(dance: str, index: int) -> str:
    """File stem of track ``index`` of ``dance``, e.g. ``Jive-007``."""
    return f"{dance}-{index:03d}"


def track_plan(*, per_class: int, seed: int, config: SynthConfig = SYNTH_CONFIG) -> pd.DataFrame:
    """The tracks to render: name, dance, BPM, meter and render seed, without any audio.

    The BPM of a track is a real Ballroom track's BPM of the same dance (drawn at random),
    jittered by ``config.bpm_jitter`` and clipped inside that dance's real min-max.

    Returns
    -------
    pandas.DataFrame
        Columns :data:`METADATA_COLUMNS`, ``8 * per_class`` rows in class order.
    """
    rows = []
    tempi = real_tempi()
    for d_index, dance in enumerate(CLASSES):
        lo, hi = tempo_range(dance)
        for i in range(per_class):
            ss = np.random.SeedSequence([int(seed), d_index, i])
            rng = np.random.default_rng(ss)
            bpm = float(rng.choice(tempi[dance])) * (1 + config.bpm_jitter * rng.standard_normal())
            rows.append(dict(track=track_name(dance, i), dance=dance,
                             bpm=round(float(np.clip(bpm, lo, hi)), 2),
                             beats_per_bar=DANCES[dance].beats_per_bar,
                             seed=int(ss.generate_state(1, dtype=np.uint32)[0])))
    return pd.DataFrame(rows, columns=list(METADATA_COLUMNS))


def _render_one(out_dir: str, track: str, dance: str, bpm: float, seed: int, seconds: float,
                sample_rate: int, config: SynthConfig) -> str:
    """Worker: render and atomically write one track; returns its name."""
    y = render_track(dance, bpm=bpm, seconds=seconds, seed=seed, sample_rate=sample_rate,
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


def generate(out_dir: str | os.PathLike, *, per_class: int = 60, seconds: float = 30.0,
             seed: int = 0, workers: int = 2, progress: bool = True,
             sample_rate: int = FRONT_END.sample_rate,
             config: SynthConfig = SYNTH_CONFIG) -> Path:
    """Generate (or complete) a SynthBallroom data set in ``out_dir``.

    Parameters
    ----------
    out_dir : str or os.PathLike
        Destination folder (created).
    per_class : int, keyword-only
        Tracks per dance (>= 1); 60 by default (Ballroom has 60-110 per dance).
    seconds : float, keyword-only
        Track length in seconds (> 0); Ballroom excerpts are about 30 s.
    seed : int, keyword-only
        Seed of the whole set.
    workers : int, keyword-only
        Processes rendering in parallel (>= 1). The output does not depend on it.
    progress : bool, keyword-only
        Show a tqdm progress bar on stderr.
    sample_rate : int, keyword-only
        Hz (44100, the paper's rate).
    config : SynthConfig, keyword-only
        Difficulty knobs.

    Returns
    -------
    Path
        ``out_dir``, holding ``<Dance>/<track>.wav`` and ``metadata.csv``
        (columns track, dance, bpm, beats_per_bar, seed).

    Raises
    ------
    ConfigError
        ``per_class < 1``, ``seconds <= 0``, ``workers < 1`` or a bad sample rate.
    """
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
    plan = track_plan(per_class=int(per_class), seed=int(seed), config=config)
    metadata_text = plan.to_csv(index=False, lineterminator="\n")

    stamp = json.dumps(dict(version=GENERATOR_VERSION, seed=int(seed), seconds=float(seconds),
                            sample_rate=int(sample_rate), config=config.to_dict()),
                       sort_keys=True)
    stamp_path = out / STAMP
    same_params = stamp_path.is_file() and stamp_path.read_text(encoding="utf-8") == stamp
    meta_path = out / METADATA
    if (same_params and meta_path.is_file()
            and meta_path.read_text(encoding="utf-8") == metadata_text
            and all((out / r.dance / f"{r.track}.wav").is_file() for r in plan.itertuples())):
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
    args = [(str(out), r.track, r.dance, float(r.bpm), int(r.seed), float(seconds),
             int(sample_rate), config) for r in todo]
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=len(plan), initial=len(plan) - len(todo), unit="clip",
                   desc="SynthBallroom")
    try:
        if workers == 1 or len(args) <= 1:
            for a in args:
                _render_one(*a)
                if bar is not None:
                    bar.update(1)
        else:
            with ProcessPoolExecutor(max_workers=min(int(workers), len(args))) as pool:
                for fut in as_completed([pool.submit(_render_one, *a) for a in args]):
                    fut.result()
                    if bar is not None:
                        bar.update(1)
    finally:
        if bar is not None:
            bar.close()
    write_text_atomic(meta_path, metadata_text)  # last: the set is complete
    return out


_TRACK_FILE = re.compile(r"^(?P<dance>[A-Za-z]+)-(?P<index>\d{3,})\.wav$")


def _remove_surplus(folder: Path, dance: str, keep: set[str]) -> None:
    """Delete this generator's WAVs of ``dance`` that the plan no longer lists (smaller set)."""
    for f in folder.glob(f"{dance}-*.wav"):
        m = _TRACK_FILE.match(f.name)
        if m and m["dance"] == dance and f.stem not in keep:
            f.unlink()
