"""tfcnn.interpret: known periods give known tempi, noise stays weak, probes and baseline run.

Filters with a known answer (cosines, pulse trains) check the estimator; real models from
``build_model`` saved with ``save_checkpoint`` check the table, the probes (real rendered
click tracks / drum loops through the real front end) and the random baseline; the CLI runs
as a real subprocess.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
import torch.nn.functional as F

from tfcnn import interpret
from tfcnn.checkpoint import load_checkpoint, save_checkpoint
from tfcnn.config import CLASSES, FRONT_END, PRESETS
from tfcnn.errors import ConfigError, DatasetError
from tfcnn.models import build_model, temporal_filters

REPO = Path(__file__).resolve().parents[1]
FRAME_RATE = 44100 / 1024
N = np.arange(60)
#: A short probe sweep for tests (the default is 60..224 step 2, 8 s).
OCTAVE_TOL = interpret.OCTAVE_TOLERANCE
SWEEP = dict(bpms=tuple(range(60, 225, 16)), seconds=4.0)


def cosine(bpm: float, phase: float = 0.0, width: int = 60) -> np.ndarray:
    return np.cos(2 * np.pi * np.arange(width) * bpm / (60 * FRAME_RATE) + phase)


def pulse_train(bpm: float, offset: float = 0.0, sigma: float = 1.0) -> np.ndarray:
    """Gaussian bumps one beat apart (a learned onset detector would look like this)."""
    period = 60 * FRAME_RATE / bpm
    return sum(np.exp(-0.5 * ((N - c) / sigma) ** 2) for c in np.arange(offset, 60, period))


def save(model, path: Path) -> Path:
    save_checkpoint(path, model, classes=CLASSES, norm_mean=0.3, norm_std=1.1,
                    front_end=FRONT_END, train_config=PRESETS["quick"], metrics={})
    return path


def seeded(arch: str, seed: int = 0, **params):
    torch.manual_seed(seed)
    return build_model(arch, len(CLASSES), **params)


def planted_time_model(n_planted: int = 8, bpm: float = 120.0):
    """A ``time`` model whose first ``n_planted`` filters are cosines at ``bpm``."""
    model = seeded("time", seed=3)
    with torch.no_grad():
        w = model.time_branch.conv.weight                       # (32, 1, 1, 60)
        for i in range(n_planted):
            w[i, 0, 0] = torch.from_numpy(0.1 * cosine(bpm, phase=0.7 * i)).float()
    return model


# ------------------------------------------------------------------ filter_tempo: known answers

@pytest.mark.parametrize("bpm", [60, 75, 96, 120, 150, 180, 224])
@pytest.mark.parametrize("phase", [0.0, 1.3, 2.9])
def test_cosine_gives_its_bpm_and_full_strength(bpm, phase):
    ft = interpret.filter_tempo(cosine(bpm, phase))
    assert ft.bpm == pytest.approx(bpm, abs=2.0)
    assert ft.strength > 0.9
    assert ft.candidates[0][0] == pytest.approx(bpm, abs=2.0)


def test_cosine_is_scale_and_offset_invariant():
    a = interpret.filter_tempo(cosine(120, 0.4))
    b = interpret.filter_tempo(-37.0 * cosine(120, 0.4) + 5.0)
    assert b.bpm == pytest.approx(a.bpm, abs=0.01)
    assert b.strength == pytest.approx(a.strength, abs=1e-6)


@pytest.mark.parametrize("bpm", [60, 120, 224])
@pytest.mark.parametrize("offset", [0.0, 4.0, 9.0])
def test_pulse_train_gives_its_bpm(bpm, offset):
    ft = interpret.filter_tempo(pulse_train(bpm, offset))
    assert ft.bpm is not None, ft
    assert ft.bpm == pytest.approx(bpm, abs=2.0)
    assert ft.strength > ft.min_strength


def test_octave_errors_of_each_term_are_resolved_and_reported():
    # 2 pulses 43 frames apart: the spectrum alone is ambiguous among the harmonics (60, 120,
    # 180 BPM); 5 pulses at 224 BPM: the autocorrelation alone peaks at a multiple of the
    # period (112 BPM). The combined score picks the true tempo in both cases.
    slow = interpret.filter_tempo(pulse_train(60, 10.0))
    assert slow.spectral_bpm > 90 and slow.bpm == pytest.approx(60, abs=2)
    fast = interpret.filter_tempo(pulse_train(224))
    assert fast.acf_bpm == pytest.approx(112, abs=3) and fast.bpm == pytest.approx(224, abs=2)
    relations = {rel: (bpm, s) for rel, bpm, s, _ in fast.octaves}
    assert set(relations) == {"x1/3", "x1/2", "x2/3"}  # x3/2, x2, x3 fall outside 60-224
    assert relations["x1/2"][0] == pytest.approx(112, rel=0.05)
    assert relations["x1/2"][1] < fast.strength


def test_half_and_double_tempo_show_up_as_candidates():
    # pulses at 160 BPM with every other one weak: the bar-level 80 BPM is a candidate too
    accented = sum(a * np.exp(-0.5 * (N - c) ** 2) for a, c in
                   zip([1.0, 0.3] * 10, np.arange(0, 60, 60 * FRAME_RATE / 160)))
    ft = interpret.filter_tempo(accented)
    bpms = [b for b, s in ft.candidates if s > 0.1]
    assert ft.bpm == pytest.approx(160, abs=3)
    assert any(abs(b - 80) < 3 for b in bpms), ft.candidates
    # an 80 BPM pattern with a strong 160 BPM harmonic stays 80 BPM; the harmonic is
    # reported under ``octaves`` with its spectral power
    ft = interpret.filter_tempo(cosine(80) + 0.9 * cosine(160, 1.0))
    assert ft.bpm == pytest.approx(80, abs=2)
    double = {rel: (bpm, s, power) for rel, bpm, s, power in ft.octaves}["x2"]
    assert double[0] == pytest.approx(160, rel=OCTAVE_TOL) and double[2] > 0.3


def test_white_noise_is_weak_and_has_no_bpm():
    rng = np.random.default_rng(7)
    results = interpret.filter_tempi(rng.standard_normal((300, 60)))
    assert results[5] == interpret.filter_tempo(rng_row(7, 5))  # vectorised = one by one
    strengths = np.array([r.strength for r in results])
    none = np.mean([r.bpm is None for r in results])
    assert none >= 0.9, none                        # ~95 % by construction of the threshold
    assert np.median(strengths) < 0.05
    assert all(r.bpm is None for r in results if r.strength <= r.min_strength)


def rng_row(seed: int, row: int) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((row + 1, 60))[row]


def test_constant_filter_and_bad_input():
    flat = interpret.filter_tempo(np.full(60, 0.3))
    assert flat.bpm is None and flat.strength == 0.0
    with pytest.raises(ConfigError, match=r"shape \(width,\)"):
        interpret.filter_tempo(np.zeros((2, 60)))
    with pytest.raises(ConfigError, match="NaN"):
        interpret.filter_tempo(np.array([0.0, np.nan, 1.0, 2.0, 3.0]))
    with pytest.raises(ConfigError, match="bpm_range"):
        interpret.filter_tempo(cosine(120), bpm_range=(200, 100))


def test_short_filters_only_test_tempi_they_can_hold():
    # 30 frames cannot hold a 60 BPM period (43 frames): the tested range starts higher
    ft = interpret.filter_tempo(cosine(180, width=30))
    assert ft.bpm_range[0] > 100
    assert ft.bpm == pytest.approx(180, abs=2)


def test_periodicity_map_peaks_where_filter_tempo_says():
    filters = np.stack([cosine(b) for b in (70, 120, 200)])
    bpms, scores = interpret.periodicity_map(filters)
    assert scores.shape == (3, len(bpms))
    assert bpms[scores.argmax(axis=1)] == pytest.approx([70, 120, 200], abs=2)


# ------------------------------------------------------------------ baseline and table

def test_random_baseline_is_sane():
    base = interpret.random_baseline("time", n_models=10)
    assert base.strengths.shape == (320,)
    assert 0.03 < base.threshold < 0.4
    assert np.mean(base.strengths > base.threshold) == pytest.approx(0.05, abs=0.02)
    assert base.example.shape == (32, 60)
    p = base.p_values([0.0, base.threshold, 1.0])
    assert p[0] >= p[1] >= p[2] and p[2] == pytest.approx(1 / 321)
    # the same initialisation as training uses: seed 0 of build_model
    np.testing.assert_array_equal(base.example, temporal_filters(seeded("time", 0)))
    with pytest.raises(ConfigError, match="frequency"):
        interpret.random_baseline("frequency", n_models=2)


def test_smooth_noise_fools_the_white_baseline_but_not_the_red_noise_null():
    # trained filters are smooth; smoothing alone makes noise look periodic against the white
    # (untrained) baseline, and the smoothness-matched AR(1) null corrects for it
    rng = np.random.default_rng(3)
    smooth = np.stack([np.convolve(r, np.ones(4) / 4, mode="valid")[:60]
                       for r in rng.standard_normal((200, 63))])
    strengths = np.array([t.strength for t in interpret.filter_tempi(smooth)])
    white = interpret.random_baseline("time", n_models=10).threshold
    red = interpret.red_noise_thresholds(smooth)
    assert np.mean(strengths > white) > 0.4                       # fooled
    assert np.mean(strengths > red) < 0.15                        # not fooled
    assert np.all(interpret.lag1_correlation(smooth) > 0.4)
    cos = np.stack([cosine(b) for b in (90, 150, 210)])
    assert np.all([t.strength for t in interpret.filter_tempi(cos)]
                  > interpret.red_noise_thresholds(cos))


def test_filter_table_finds_planted_cosines(tmp_path):
    path = save(planted_time_model(8, 204.0), tmp_path / "planted.safetensors")
    table = interpret.filter_table(path)
    assert len(table) == 32 and list(table.columns) == list(interpret.TABLE_COLUMNS)
    planted = table.iloc[:8]
    assert planted["significant"].all() and planted["beyond_smooth"].all()
    assert planted["bpm"].to_numpy() == pytest.approx(204, abs=2)
    assert (planted["p_value"] < 0.01).all()
    assert table["most_active"].isna().all()        # no activations given
    base = interpret.random_baseline("time", dict(load_checkpoint(path).arch_params))
    ranges = interpret.class_tempo_ranges(interpret.class_tempi())
    text = interpret.verdict(table, base, ranges=ranges)
    assert f"{int(table['significant'].sum())} of 32 temporal filters" in text
    assert "8 of them are stronger than all 1600 untrained filters" in text
    assert "Quickstep (8)" in text                  # 204 BPM: real Ballroom's Quickstep
    assert "Answer: yes" in text and "at tempi of the classes" in text


def test_untrained_model_gets_no_evidence_verdict(tmp_path):
    path = save(seeded("time", seed=11), tmp_path / "random.safetensors")
    table = interpret.filter_table(path)
    assert table["significant"].sum() <= 6
    text = interpret.verdict(table, interpret.random_baseline("time"))
    assert "Answer: yes" not in text


def test_filter_table_rejects_models_without_temporal_filters(tmp_path):
    path = save(seeded("frequency"), tmp_path / "freq.safetensors")
    with pytest.raises(ConfigError, match="no 1×n temporal filters"):
        interpret.filter_table(path)


# ------------------------------------------------------------------ probes

def test_probe_sweep_gives_one_curve_per_filter_matching_the_model(tmp_path):
    path = save(seeded("time", seed=5), tmp_path / "time.safetensors")
    ckpt = load_checkpoint(path)
    probes = interpret.probe_sweep(ckpt, **SWEEP)
    n_bpm = len(SWEEP["bpms"])
    assert probes.activations.shape == (2, 32, n_bpm)
    assert probes.tuning.shape == (32, n_bpm)
    assert probes.probabilities.shape == (2, n_bpm, 8)
    np.testing.assert_allclose(probes.probabilities.sum(axis=2), 1.0, atol=1e-5)
    assert probes.predicted.shape == (2, n_bpm)
    assert (probes.activations >= 0).all()          # post-ReLU
    # the activation is conv → ReLU → max over bands → mean over time and patches, computed
    # here independently for the drum probe at the fifth tempo
    patches = interpret._probe_patches("drums", SWEEP["bpms"], SWEEP["seconds"], FRONT_END)[4]
    x = torch.from_numpy(((patches[:, None] - 0.3) / 1.1).astype(np.float32))
    conv = ckpt.model.time_branch.conv
    expect = F.relu(F.conv2d(x, conv.weight, conv.bias)).amax(dim=2).mean(dim=(0, 2))
    np.testing.assert_allclose(probes.activations[1, :, 4], expect.detach().numpy(), rtol=1e-4,
                               atol=1e-6)
    table = interpret.filter_table(ckpt, activations=probes)
    assert set(table["most_active"]) <= set(CLASSES)
    tmap = probes.tempo_class_map()
    assert len(tmap) == 2 * n_bpm and set(tmap["predicted"]) <= set(CLASSES)


@pytest.mark.parametrize("arch, params", [("timefreq", {}), ("timefreq-init", {}),
                                          ("time", {"time_filter": (1, 30), "n_filters": 4})])
def test_probes_work_for_every_temporal_variant(tmp_path, arch, params):
    path = save(seeded(arch, **params), tmp_path / f"{arch}.safetensors")
    probes = interpret.probe_sweep(path, **SWEEP)
    n_filters = params.get("n_filters", 32)
    assert probes.tuning.shape == (n_filters, len(SWEEP["bpms"]))
    assert len(interpret.filter_table(path)) == n_filters


def test_frequency_model_study_says_what_it_shows_instead(tmp_path):
    path = save(seeded("frequency"), tmp_path / "freq.safetensors")
    study = interpret.tempo_study(path, probe_bpms=SWEEP["bpms"], probe_seconds=4.0)
    assert study.table is None and study.probes.activations is None
    assert study.filters["frequency"].shape == (32, 32)
    assert "no 1×n temporal filters" in study.verdict and "32×1" in study.verdict


def test_class_tempi_ranges_and_agreement():
    tempi = interpret.class_tempi()
    ranges = interpret.class_tempo_ranges(tempi, classes=CLASSES)
    assert list(ranges.index) == list(CLASSES)
    assert 195 < ranges.loc["Quickstep", "median"] < 215
    assert 80 < ranges.loc["Waltz", "median"] < 95
    assert "Quickstep" in interpret.classes_at(204, ranges)
    # a perfect tempo → class map agrees 100 %, a constant one rarely
    bpms = np.array([86.0, 204.0])
    perfect = interpret.Probes(bpms=bpms, kinds=("click",), classes=CLASSES, activations=None,
                               probabilities=np.full((1, 2, 8), 1 / 8),
                               predicted=np.array([[CLASSES.index("Waltz"),
                                                    CLASSES.index("Quickstep")]]))
    assert interpret.tempo_class_agreement(perfect, ranges)["agreement"] == 1.0


# ------------------------------------------------------------------ CLI (real subprocess)

def cli(*args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "tfcnn", "filters", *args], cwd=REPO,
                          capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="module")
def planted_checkpoint(tmp_path_factory) -> Path:
    return save(planted_time_model(8, 120.0),
                tmp_path_factory.mktemp("cli") / "synth-time.safetensors")


def test_cli_prints_32_rows_and_the_verdict(planted_checkpoint, folder_dataset):
    # most-active class over a data set's patches instead of the probes
    out = cli(str(planted_checkpoint), "--no-probes", "--data", str(folder_dataset))
    assert out.returncode == 0, out.stderr
    lines = out.stdout.strip().splitlines()
    assert lines[0].split()[:3] == ["filter", "bpm", "strength"]
    rows = [ln for ln in lines[1:] if ln.split()[0].isdigit()]
    assert len(rows) == 32
    assert all(float(r.split()[1]) == pytest.approx(120, abs=2) for r in rows[:8])
    assert all(r.split()[4:6] == ["yes", "yes"] for r in rows[:8])       # tuned, strict
    assert all(r.split()[6] in CLASSES for r in rows)                    # most active class
    assert lines[-1].startswith("verdict: ") and "Answer: yes" in lines[-1]


def test_cli_json_is_valid_and_has_probe_classes(planted_checkpoint):
    out = cli(str(planted_checkpoint), "--json", "--probe-step", "8")
    assert out.returncode == 0, out.stderr
    doc = json.loads(out.stdout)
    assert doc["arch"] == "time" and len(doc["filters"]) == 32
    assert all(f["most_active"] in CLASSES for f in doc["filters"])
    assert doc["filters"][0]["significant"] is True
    assert "temporal filters are significantly periodic" in doc["verdict"]


@pytest.mark.parametrize("content", [None, b"not a safetensors file"])
def test_cli_bad_checkpoint_is_exit_2(tmp_path, content):
    path = tmp_path / "bad.safetensors"
    if content is not None:
        path.write_bytes(content)
    out = cli(str(path))
    assert out.returncode == 2
    assert out.stderr.startswith("error: ") and "bad.safetensors" in out.stderr


# ------------------------------------------------------------------ data sets

def test_dataset_activations_and_exact_synth_tempi(tmp_path, folder_dataset, synth_dataset):
    path = save(planted_time_model(4, 120.0), tmp_path / "time.safetensors")
    acts = interpret.dataset_class_activations(path, folder_dataset, max_tracks_per_class=2)
    assert acts.shape == (32, 8) and np.isfinite(acts).all() and (acts >= 0).all()
    table = interpret.filter_table(path, activations=acts)
    assert list(table["most_active"]) == [CLASSES[i] for i in acts.argmax(axis=1)]

    tempi = interpret.class_tempi(synth_dataset)             # SynthBallroom: exact tempi
    meta = pd.read_csv(synth_dataset / "metadata.csv")
    assert len(tempi) == len(meta)
    assert sorted(tempi["bpm"]) == pytest.approx(sorted(meta["bpm"]))
    with pytest.raises(DatasetError, match="no tempo annotations"):
        interpret.class_tempi(folder_dataset)                # folder layout: no tempi


def test_cli_bad_probe_step_is_exit_2(planted_checkpoint):
    out = cli(str(planted_checkpoint), "--probe-step", "0")
    assert out.returncode == 2 and "--probe-step must be > 0" in out.stderr
