"""SynthBallroom: determinism, metadata, audible tempo, file format, CLI, errors, reruns."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import soundfile as sf

from tfcnn.config import CLASSES
from tfcnn.errors import ConfigError
from tfcnn.synth import (generate, render_click_track, render_drum_loop, render_track,
                         track_plan)

ROOT = Path(__file__).resolve().parent.parent
SR = 44100
WALTZES = {"VienneseWaltz", "Waltz"}


def real_bpm_range() -> dict[str, tuple[float, float]]:
    """Per-dance (min, max) BPM read straight from the shipped Ballroom table."""
    table = pd.read_csv(ROOT / "tfcnn" / "data" / "ballroom_tracks.csv")
    return {d: (g.bpm.min(), g.bpm.max()) for d, g in table.groupby("dance")}


def estimate_bpm(y: np.ndarray, sample_rate: int = SR, *, lo: float = 50.0,
                 hi: float = 260.0) -> float:
    """Tempo from the autocorrelation of a spectral-flux onset envelope (independent code).

    Hann STFT (1024 / 512) -> log magnitude -> positive time difference summed over bins ->
    light smoothing -> autocorrelation -> highest peak between ``lo`` and ``hi`` BPM,
    refined parabolically.
    """
    n_fft, hop = 1024, 512
    frames = np.lib.stride_tricks.sliding_window_view(y.astype(np.float64), n_fft)[::hop]
    mag = np.log1p(100.0 * np.abs(np.fft.rfft(frames * np.hanning(n_fft), axis=1)))
    env = np.maximum(np.diff(mag, axis=0), 0.0).sum(axis=1)  # (n_frames - 1,)
    # Smooth over ~5 frames so a period between two integer lags still gives one peak.
    env = np.convolve(env, np.hanning(7)[1:-1], mode="same")
    env -= env.mean()
    ac = np.correlate(env, env, mode="full")[env.size - 1:]
    fps = sample_rate / hop
    lags = np.arange(int(60 * fps / hi), int(60 * fps / lo) + 2)
    k = int(lags[np.argmax(ac[lags])])
    a, b, c = ac[k - 1], ac[k], ac[k + 1]
    shift = 0.5 * (a - c) / (a - 2 * b + c) if (a - 2 * b + c) != 0 else 0.0
    return 60.0 * fps / (k + shift)


def matches_tempo(estimate: float, bpm: float, *, tol: float = 0.04,
                  beats_per_bar: int = 4) -> bool:
    """``estimate`` equals ``bpm`` or a simple octave of it (x1/2, x2) within ``tol``;
    in triple meter the bar (x1/3) counts too."""
    factors = (0.5, 1.0, 2.0) + ((1 / 3,) if beats_per_bar == 3 else ())
    return any(abs(estimate / (bpm * f) - 1) <= tol for f in factors)


# --------------------------------------------------------------------------- determinism

def test_render_track_is_deterministic_and_seeded():
    a = render_track("Samba", bpm=100.0, seconds=3.0, seed=7)
    b = render_track("Samba", bpm=100.0, seconds=3.0, seed=7)
    c = render_track("Samba", bpm=100.0, seconds=3.0, seed=8)
    assert a.dtype == np.float32 and a.shape == (3 * SR,)
    assert np.array_equal(a, b)
    assert not np.allclose(a, c)
    assert 0.05 < np.max(np.abs(a)) < 1.0


def test_same_files_whatever_the_number_of_workers(tmp_path):
    one = generate(tmp_path / "w1", per_class=2, seconds=2.0, seed=5, workers=1,
                   progress=False)
    two = generate(tmp_path / "w2", per_class=2, seconds=2.0, seed=5, workers=2,
                   progress=False)
    files = sorted(p.relative_to(one) for p in one.rglob("*.wav"))
    assert len(files) == 16
    assert files == sorted(p.relative_to(two) for p in two.rglob("*.wav"))
    for rel in files:
        assert (one / rel).read_bytes() == (two / rel).read_bytes(), rel
    assert (one / "metadata.csv").read_text() == (two / "metadata.csv").read_text()


def test_metadata_seed_rerenders_the_track(synth_dataset):
    meta = pd.read_csv(synth_dataset / "metadata.csv")
    row = meta.iloc[5]
    y, _ = sf.read(synth_dataset / row.dance / f"{row.track}.wav", dtype="float32")
    again = render_track(row.dance, bpm=float(row.bpm), seconds=8.0, seed=int(row.seed))
    # The WAV holds the same signal, quantised to 16 bits.
    assert np.max(np.abs(y - again)) < 1.0 / 2 ** 14


# --------------------------------------------------------------------------- the data set

def test_metadata_and_files(synth_dataset):
    meta = pd.read_csv(synth_dataset / "metadata.csv")
    assert list(meta.columns) == ["track", "dance", "bpm", "beats_per_bar", "seed"]
    assert tuple(meta.dance.unique()) == CLASSES
    assert (meta.groupby("dance").size() == 4).all()
    assert meta.track.is_unique
    ranges = real_bpm_range()
    for row in meta.itertuples():
        lo, hi = ranges[row.dance]
        assert lo <= row.bpm <= hi, (row.track, row.bpm, lo, hi)
        assert row.beats_per_bar == (3 if row.dance in WALTZES else 4)
        info = sf.info(synth_dataset / row.dance / f"{row.track}.wav")
        assert (info.samplerate, info.channels, info.subtype, info.frames) == (
            SR, 1, "PCM_16", 8 * SR)
    # Tempo follows the dance: the class medians keep Ballroom's order.
    med = meta.groupby("dance").bpm.median()
    assert med["Waltz"] < med["Rumba"] < med["ChaChaCha"] < med["Jive"] < med["Quickstep"]
    # Every folder holds exactly its listed tracks (no temporary files left behind).
    for dance in CLASSES:
        names = sorted(p.name for p in (synth_dataset / dance).iterdir())
        assert names == sorted(f"{t}.wav" for t in meta.track[meta.dance == dance])


def test_tempo_is_drawn_from_the_real_distribution():
    plan = track_plan(per_class=40, seed=0)
    table = pd.read_csv(ROOT / "tfcnn" / "data" / "ballroom_tracks.csv")
    for dance in CLASSES:
        synth = plan.bpm[plan.dance == dance]
        real = table.bpm[table.dance == dance]
        assert abs(synth.median() - real.median()) < 0.03 * real.median(), dance


def test_rendered_tempo_matches_metadata(synth_dataset):
    meta = pd.read_csv(synth_dataset / "metadata.csv")
    results = []
    for row in meta.groupby("dance").head(2).itertuples():
        y, sr = sf.read(synth_dataset / row.dance / f"{row.track}.wav", dtype="float32")
        est = estimate_bpm(y, sr)
        ok = matches_tempo(est, row.bpm, beats_per_bar=row.beats_per_bar)
        results.append((row.track, row.bpm, round(est, 1), ok))
    assert sum(ok for *_, ok in results) >= 14, results  # 16 tracks, noisy on purpose


@pytest.mark.parametrize("bpm", [72.0, 123.0, 205.0])
def test_probes_have_the_exact_tempo(bpm):
    click = render_click_track(bpm=bpm, seconds=8.0, beats_per_bar=3)
    loop = render_drum_loop(bpm=bpm, seconds=8.0, seed=1)
    for y in (click, loop):
        assert y.dtype == np.float32 and y.shape == (8 * SR,)
        assert matches_tempo(estimate_bpm(y), bpm, tol=0.02)
    # The accented downbeat: every third click is louder.
    step = 60.0 / bpm * SR
    peaks = [np.max(np.abs(click[int(k * step):int(k * step) + 400])) for k in range(6)]
    assert peaks[0] > 1.3 * peaks[1] and peaks[3] > 1.3 * peaks[2]


# --------------------------------------------------------------------------- errors

@pytest.mark.parametrize("kwargs, match", [
    (dict(dance="Foxtrot", bpm=120.0, seconds=2.0), "Foxtrot.*valid dances.*ChaChaCha"),
    (dict(dance="Jive", bpm=20.0, seconds=2.0), "bpm.*20"),
    (dict(dance="Jive", bpm=400.0, seconds=2.0), "bpm.*400"),
    (dict(dance="Jive", bpm=120.0, seconds=0.0), "seconds.*0"),
    (dict(dance="Jive", bpm=120.0, seconds=-1.0), "seconds.*-1"),
])
def test_bad_render_params_raise(kwargs, match):
    with pytest.raises(ConfigError, match=match):
        render_track(kwargs.pop("dance"), seed=0, **kwargs)


def test_bad_generate_params_raise(tmp_path):
    with pytest.raises(ConfigError, match="per_class.*0"):
        generate(tmp_path / "x", per_class=0, progress=False)
    with pytest.raises(ConfigError, match="seconds.*-2"):
        generate(tmp_path / "x", per_class=1, seconds=-2.0, progress=False)
    with pytest.raises(ConfigError, match="workers.*0"):
        generate(tmp_path / "x", per_class=1, workers=0, progress=False)
    with pytest.raises(ConfigError, match="bpm.*500"):
        render_click_track(bpm=500.0, seconds=1.0)
    assert not (tmp_path / "x").exists()


# --------------------------------------------------------------------------- reruns

def _mtimes(root: Path) -> dict[str, int]:
    return {str(p.relative_to(root)): p.stat().st_mtime_ns for p in root.rglob("*")
            if p.is_file()}


def test_rerun_is_a_noop_and_completes_an_interrupted_set(tmp_path):
    root = generate(tmp_path / "set", per_class=2, seconds=1.0, seed=2, workers=1,
                    progress=False)
    before = _mtimes(root)
    assert generate(root, per_class=2, seconds=1.0, seed=2, workers=1, progress=False) == root
    assert _mtimes(root) == before

    # An interrupted run: one WAV and the metadata missing. Only those are written again.
    (root / "Tango" / "Tango-001.wav").unlink()
    (root / "metadata.csv").unlink()
    generate(root, per_class=2, seconds=1.0, seed=2, workers=1, progress=False)
    after = _mtimes(root)
    changed = {k for k in after if after[k] != before.get(k)}
    assert changed == {"Tango/Tango-001.wav", "metadata.csv"}

    # Other parameters: everything is rendered again; a smaller set drops the surplus.
    generate(root, per_class=1, seconds=1.5, seed=2, workers=1, progress=False)
    wavs = sorted(str(p.relative_to(root)) for p in root.rglob("*.wav"))
    assert wavs == sorted(f"{d}/{d}-000.wav" for d in CLASSES)
    assert sf.info(root / "Jive" / "Jive-000.wav").frames == int(1.5 * SR)


# --------------------------------------------------------------------------- CLI

def test_cli_writes_a_tiny_set_and_reports_bad_values(tmp_path):
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    out = tmp_path / "cli-set"
    done = subprocess.run(
        [sys.executable, "-m", "tfcnn", "synth", str(out), "--per-class", "1",
         "--seconds", "2", "--seed", "3", "--workers", "2", "--quiet"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    meta = pd.read_csv(out / "metadata.csv")
    assert len(meta) == 8 and (meta.seed >= 0).all()
    assert sorted(p.parent.name for p in out.rglob("*.wav")) == sorted(CLASSES)
    assert meta.equals(track_plan(per_class=1, seed=3))

    bad = subprocess.run(
        [sys.executable, "-m", "tfcnn", "synth", str(tmp_path / "bad"), "--per-class", "0"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert bad.returncode == 2
    assert bad.stderr.startswith("error:") and "per_class" in bad.stderr and "0" in bad.stderr
