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


# --------------------------------------------------------------------------- scenarios
# Each scenario's cue, checked on the generated metadata (cheap: no audio) and on audio.

#: SHA-256 (first 16 hex digits) of the default generator's output for per_class=1,
#: seconds=2, seed=0, recorded before scenarios existed: ``paper`` must reproduce it.
PAPER_GOLDEN = {
    "ChaChaCha-000.wav": "da28069eeca1b06d", "Jive-000.wav": "1654bf985aa8f4bd",
    "Quickstep-000.wav": "2f1422fb31dd8e21", "Rumba-000.wav": "90facc930d6a1616",
    "Samba-000.wav": "9e9501302bce8349", "Tango-000.wav": "59b843c9c3104631",
    "VienneseWaltz-000.wav": "2fd95cee7aeee490", "Waltz-000.wav": "36538d7005f23c36",
    "metadata.csv": "fd504e9b4a7bacdf",
}


def _sha(path: Path) -> str:
    import hashlib

    return hashlib.sha256(path.read_bytes()).hexdigest()[:16]


def test_paper_scenario_is_bit_identical_to_the_default_generator(tmp_path):
    out = generate(tmp_path / "paper", scenario="paper", per_class=1, seconds=2.0, seed=0,
                   workers=1, progress=False)
    got = {p.name: _sha(p) for p in [*out.rglob("*.wav"), out / "metadata.csv"]}
    assert got == PAPER_GOLDEN
    assert track_plan(per_class=3, seed=4, scenario="paper").equals(
        track_plan(per_class=3, seed=4))


def _tempo_differs(plan: pd.DataFrame) -> float:
    """Kruskal-Wallis p-value of 'BPM has the same distribution in every class'."""
    from scipy import stats

    return float(stats.kruskal(*[g.bpm.to_numpy() for _, g in plan.groupby("dance")]).pvalue)


def _independent(plan: pd.DataFrame, column: str) -> float:
    """Chi-square p-value of 'label and ``column`` are independent'."""
    from scipy import stats

    return float(stats.chi2_contingency(pd.crosstab(plan.dance, plan[column])).pvalue)


@pytest.fixture(scope="module")
def plans() -> dict[str, pd.DataFrame]:
    from tfcnn.synth import SCENARIOS

    return {name: track_plan(per_class=60, seed=0, scenario=name) for name in SCENARIOS}


def test_tempo_scenario_differs_only_in_tempo(plans):
    plan, ranges = plans["tempo"], real_bpm_range()
    assert _tempo_differs(plan) < 1e-20  # tempo follows the class...
    for row in plan.itertuples():
        lo, hi = ranges[row.dance]
        assert lo <= row.bpm <= hi, (row.track, row.bpm)  # ... inside its Ballroom range
    # The same BPMs as the paper's set (the same draws); waltzes too, in the shared 4/4.
    assert plan.bpm.equals(plans["paper"].bpm)
    assert set(plan.beats_per_bar) == {4}
    assert set(plan.timbre_of) == {"shared"}
    assert _independent(plan, "rhythm_of") > 0.05  # pattern pool shared by all classes
    assert _independent(plans["paper"].assign(rhythm_of=plans["paper"].dance),
                        "rhythm_of") < 1e-20  # the same test sees the paper's coupling


@pytest.mark.parametrize("name", ["rhythm", "timbre"])
def test_shared_tempo_is_one_distribution_for_all_classes(plans, name):
    # The same test rejects equality on the paper's set, so it has the power to see it.
    assert _tempo_differs(plans["paper"]) < 1e-20
    assert _tempo_differs(plans[name]) > 0.05
    lo = min(lo for lo, _ in real_bpm_range().values())
    hi = max(hi for _, hi in real_bpm_range().values())
    assert plans[name].bpm.between(lo, hi).all()


def test_rhythm_scenario_keeps_meter_and_pattern_per_class(plans):
    plan = plans["rhythm"]
    assert (plan.rhythm_of == plan.dance).all()
    assert set(plan.timbre_of) == {"shared"}
    meter = plan.groupby("dance").beats_per_bar.unique()
    assert all(list(meter[d]) == [3 if d in WALTZES else 4] for d in CLASSES)


def test_timbre_scenario_shares_tempo_meter_and_pattern(plans):
    plan = plans["timbre"]
    assert set(plan.beats_per_bar) == {4}
    assert (plan.timbre_of == plan.dance).all()
    assert _independent(plan, "rhythm_of") > 0.05


def test_shuffled_labels_are_independent_of_the_paper_audio(plans):
    plan, paper = plans["shuffled"], plans["paper"]
    assert (plan.groupby("dance").size() == 60).all() and plan.track.is_unique
    assert (plan.rhythm_of == plan.timbre_of).all()
    # Balanced: every (label, audio dance) cell holds 7 or 8 of the 60 tracks per label, so
    # the label says nothing about the dance heard (a plain permutation leaves a learnable
    # chance coupling: chi-square p = 0.007 with seed 0).
    cells = pd.crosstab(plan.dance, plan.rhythm_of).to_numpy()
    assert cells.shape == (8, 8) and cells.min() == 7 and cells.max() == 8
    # Every track is a paper track (tempo, meter, render seed, dance of the audio) relabelled.
    keys = ["bpm", "beats_per_bar", "seed"]
    merged = plan.merge(paper.rename(columns={"dance": "audio"}), on=keys, how="left")
    assert merged.audio.notna().all() and (merged.audio == merged.rhythm_of).all()
    assert (plan.dance != plan.rhythm_of).mean() > 0.7  # ~7/8 relabelled


def test_conflict_plays_three_dances_per_track_each_cue_as_in_paper(plans):
    plan, paper = plans["conflict"], plans["paper"]
    assert (plan.tempo_of == plan.dance).all()
    # three different dances per track
    assert ((plan.rhythm_of != plan.dance) & (plan.timbre_of != plan.dance)
            & (plan.rhythm_of != plan.timbre_of)).all()
    # tempo follows the label exactly as in paper (the same draws); meter follows the rhythm
    assert plan.bpm.equals(paper.bpm)
    assert (plan.beats_per_bar == plan.rhythm_of.map(
        lambda d: 3 if d in WALTZES else 4)).all()
    # balanced: every dance is the rhythm's and the sounds' source of 60 of the 480 tracks,
    # and 7-10 times within each tempo class, so a cue-blind model matches each cue on 1/8
    for column in ("rhythm_of", "timbre_of"):
        assert set(plan[column].value_counts()) == {60}
        cells = pd.crosstab(plan.dance, plan[column]).to_numpy()
        assert (np.diag(cells) == 0).all()
        off = cells[~np.eye(8, dtype=bool)]
        assert off.min() >= 8 and off.max() <= 9
    assert len(set(zip(plan.dance, plan.rhythm_of, plan.timbre_of))) > 300


def test_conflict_audio_is_rendered_from_its_three_sources(tmp_path):
    from tfcnn.synth.dances import DANCES
    from tfcnn.synth.scenarios import track_spec

    out = generate(tmp_path / "conflict", scenario="conflict", per_class=1, seconds=3.0,
                   seed=0, workers=1, progress=False)
    meta = pd.read_csv(out / "metadata.csv")
    assert list(meta.columns)[-3:] == ["tempo_of", "rhythm_of", "timbre_of"]
    row = meta.iloc[0]
    y, sr = sf.read(out / row.dance / f"{row.track}.wav")
    spec = track_spec(rhythm_of=row.rhythm_of, timbre_of=row.timbre_of)
    assert spec.palette == DANCES[row.timbre_of].palette and spec.eq_gain_db == 0
    assert spec.variants == DANCES[row.rhythm_of].variants
    expected = render_track(spec, bpm=float(row.bpm), seconds=3.0, seed=int(row.seed))
    assert np.allclose(y, expected, atol=1e-4)


def test_track_spec_composes_rhythm_and_timbre():
    from tfcnn.synth.dances import DANCES
    from tfcnn.synth.scenarios import TIMBRE_EQ_HZ, track_spec

    assert track_spec(rhythm_of="Tango", timbre_of="Tango") is DANCES["Tango"]
    shared = track_spec(rhythm_of="Waltz", timbre_of="shared")
    assert shared.beats_per_bar == 3 and shared.palette == {} and shared.drum_gain_db == 0
    mixed = track_spec(rhythm_of="Jive", timbre_of="Tango", eq_gain_db=9.0)
    assert mixed.variants == DANCES["Jive"].variants and mixed.swing == DANCES["Jive"].swing
    assert mixed.palette == DANCES["Tango"].palette
    assert (mixed.eq_hz, mixed.eq_gain_db) == (TIMBRE_EQ_HZ["Tango"], 9.0)
    assert mixed.minor_prob == 0.35  # harmony does not follow the class


def test_timbre_eq_peaks_at_the_class_centre():
    from scipy import signal as sps

    from tfcnn.synth.scenarios import TIMBRE_EQ_HZ, track_spec

    for dance in ("Samba", "Rumba"):
        kw = dict(bpm=120.0, seconds=6.0, seed=3)
        flat = render_track(track_spec(rhythm_of="Jive", timbre_of=dance), **kw)
        eq = render_track(track_spec(rhythm_of="Jive", timbre_of=dance, eq_gain_db=9.0), **kw)
        f, p_flat = sps.welch(flat, SR, nperseg=4096)
        _, p_eq = sps.welch(eq, SR, nperseg=4096)
        band = (f > 60) & (f < 16000)
        gain = 10 * np.log10(p_eq[band] / p_flat[band])
        gain = np.convolve(gain, np.ones(9) / 9, mode="same")  # smooth the noise
        peak_hz = f[band][np.argmax(gain)]
        assert abs(np.log2(peak_hz / TIMBRE_EQ_HZ[dance])) < 0.35, (dance, peak_hz)
        assert gain.max() - np.median(gain) > 5.0


def _band_levels(y: np.ndarray) -> np.ndarray:
    """Log power (dB) in one-octave bands around the 8 spectral-envelope centres, minus the
    track's mean over them, shape (8,) in the order of ``TIMBRE_EQ_HZ``."""
    from scipy import signal as sps

    from tfcnn.synth.scenarios import TIMBRE_EQ_HZ

    f, p = sps.welch(y, SR, nperseg=4096)
    levels = np.array([10 * np.log10(p[(f > c / np.sqrt(2)) & (f < c * np.sqrt(2))].mean())
                       for c in TIMBRE_EQ_HZ.values()])
    return levels - levels.mean()


def _own_band_contrast(root: Path) -> float:
    """Mean over bands of (level in a class's own band - level in that band elsewhere), dB."""
    from tfcnn.synth.scenarios import TIMBRE_EQ_HZ

    meta = pd.read_csv(root / "metadata.csv")
    levels = np.stack([_band_levels(sf.read(root / r.dance / f"{r.track}.wav")[0])
                       for r in meta.itertuples()])
    out = []
    for b, dance in enumerate(TIMBRE_EQ_HZ):
        own = (meta.dance == dance).to_numpy()
        out.append(levels[own, b].mean() - levels[~own, b].mean())
    return float(np.mean(out))


@pytest.fixture(scope="module")
def lab_sets(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("lab")
    return {name: generate(root / name, scenario=name, per_class=3, seconds=5.0, seed=1,
                           workers=2, progress=False)
            for name in ("tempo", "timbre")}


def test_timbre_audio_carries_the_spectral_cue_and_tempo_audio_does_not(lab_sets):
    assert _own_band_contrast(lab_sets["timbre"]) > 4.0
    assert abs(_own_band_contrast(lab_sets["tempo"])) < 2.0


@pytest.mark.parametrize("name", ["tempo", "timbre"])
def test_scenario_audio_has_the_metadata_tempo(lab_sets, name):
    meta = pd.read_csv(lab_sets[name] / "metadata.csv")
    hits = [matches_tempo(estimate_bpm(sf.read(lab_sets[name] / r.dance / f"{r.track}.wav")[0]),
                          r.bpm, beats_per_bar=r.beats_per_bar) for r in meta.itertuples()]
    assert sum(hits) >= 0.8 * len(hits), hits


def test_scenario_json_and_dataset_name(lab_sets):
    import json

    from tfcnn.datasets import load_dataset, synth_sets
    from tfcnn.synth import SCENARIOS
    from tfcnn.synth.scenarios import scenario_from_knobs

    record = json.loads((lab_sets["timbre"] / "scenario.json").read_text())
    assert record["scenario"] == "timbre" and record["per_class"] == 3
    assert record["config"]["typical_prob"] == 1.0
    assert scenario_from_knobs(record["knobs"]) == SCENARIOS["timbre"]
    assert load_dataset(lab_sets["tempo"]).name == "SynthBallroom-tempo"
    found = synth_sets(lab_sets["tempo"].parent)
    assert [(s.scenario, s.name, s.n_tracks) for s in found] == [
        ("tempo", "SynthBallroom-tempo", 24), ("timbre", "SynthBallroom-timbre", 24)]


def test_shuffled_wavs_are_the_paper_wavs_relabelled(tmp_path):
    kw = dict(per_class=1, seconds=1.0, seed=2, workers=1, progress=False)
    paper = generate(tmp_path / "paper", scenario="paper", **kw)
    shuffled = generate(tmp_path / "shuffled", scenario="shuffled", **kw)
    by_seed = {r.seed: r for r in pd.read_csv(paper / "metadata.csv").itertuples()}
    for r in pd.read_csv(shuffled / "metadata.csv").itertuples():
        src = by_seed[r.seed]
        assert r.rhythm_of == src.dance
        assert (_sha(shuffled / r.dance / f"{r.track}.wav")
                == _sha(paper / src.dance / f"{src.track}.wav"))


def test_cli_scenario(tmp_path):
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    out = tmp_path / "rhythm"
    done = subprocess.run(
        [sys.executable, "-m", "tfcnn", "synth", str(out), "--scenario", "rhythm",
         "--per-class", "1", "--seconds", "1", "--quiet"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "rhythm" in done.stdout
    assert pd.read_csv(out / "metadata.csv").equals(
        track_plan(per_class=1, seed=0, scenario="rhythm"))
    bad = subprocess.run(
        [sys.executable, "-m", "tfcnn", "synth", str(tmp_path / "bad"), "--scenario", "genre"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert bad.returncode == 2
    assert bad.stderr.startswith("error:") and "genre" in bad.stderr and "tempo" in bad.stderr
    assert not (tmp_path / "bad").exists()
