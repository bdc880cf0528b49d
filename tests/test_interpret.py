"""tfcnn.interpret: known periods give known tempi and intervals; the table, the graded verdict,
the probes (4/4 and 3/4), the disk cache, the CLI and the snapshot growth table.

Filters with a known answer (cosines, pulse trains) check the estimator; real models from
``build_model`` saved with ``save_checkpoint`` check the table, the probes (real rendered
click tracks, drum and waltz loops through the real front end) and the verdict; a tiny
SynthBallroom checks that a planted tempo is recovered against the data set's exact tempi;
the CLI and a short snapshots training run as real subprocesses.
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
from tfcnn.errors import ConfigError, DatasetError, RunError
from tfcnn.interpret import report
from tfcnn.models import build_model, temporal_filters

REPO = Path(__file__).resolve().parents[1]
FRAME_RATE = 44100 / 1024
N = np.arange(60)
#: A short probe sweep for tests (the default is 60..224 step 2, 8 s).
OCTAVE_TOL = interpret.OCTAVE_TOLERANCE
SWEEP = dict(bpms=tuple(range(60, 225, 16)), seconds=4.0)
#: Fewer surrogates in tests: p-values in steps of 0.005 (the study uses 999).
FAST = dict(n_surrogates=199)


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


# ------------------------------------------------------------------ filter_tempi: known answers

@pytest.mark.parametrize("bpm", [60, 96, 120, 180, 224])
@pytest.mark.parametrize("phase", [0.0, 1.3])
def test_cosine_gives_its_bpm_inside_its_interval(bpm, phase):
    ft = interpret.filter_tempo(cosine(bpm, phase))
    assert ft.peak_bpm == pytest.approx(bpm, abs=2.0)
    lo, hi = ft.interval
    assert lo <= bpm <= hi or (bpm in (60, 224) and abs(ft.peak_bpm - bpm) <= 2)
    assert ft.strength > 0.9
    assert ft.candidates[0][0] == pytest.approx(bpm, abs=2.0)


def test_interval_is_the_windows_resolution_not_the_grid():
    # a 60-frame window resolves ~43 BPM: the half-power interval of a clean 120 BPM period is
    # tens of BPM wide, far from the 1-BPM grid
    lo, hi = interpret.filter_tempo(cosine(120)).interval
    assert 15 <= hi - lo <= 60 and lo < 120 < hi


def test_cosine_is_scale_and_offset_invariant():
    a = interpret.filter_tempo(cosine(120, 0.4))
    b = interpret.filter_tempo(-37.0 * cosine(120, 0.4) + 5.0)
    assert b.peak_bpm == pytest.approx(a.peak_bpm, abs=0.01)
    assert b.interval == a.interval
    assert b.strength == pytest.approx(a.strength, abs=1e-6)


@pytest.mark.parametrize("bpm", [60, 120, 224])
@pytest.mark.parametrize("offset", [0.0, 4.0, 9.0])
def test_pulse_train_gives_its_bpm(bpm, offset):
    ft = interpret.filter_tempo(pulse_train(bpm, offset))
    assert ft.peak_bpm == pytest.approx(bpm, abs=2.0)
    assert ft.strength > 0.2


def test_octave_errors_of_each_term_are_resolved_and_reported():
    # 2 pulses 43 frames apart: the spectrum alone is ambiguous among the harmonics (60, 120,
    # 180 BPM); 5 pulses at 224 BPM: the autocorrelation alone peaks at a multiple of the
    # period (112 BPM). The combined score picks the true tempo in both cases.
    slow = interpret.filter_tempo(pulse_train(60, 10.0))
    assert slow.spectral_bpm > 90 and slow.peak_bpm == pytest.approx(60, abs=2)
    fast = interpret.filter_tempo(pulse_train(224))
    assert fast.acf_bpm == pytest.approx(112, abs=3) and fast.peak_bpm == pytest.approx(224, abs=2)
    relations = {rel: (bpm, s) for rel, bpm, s, _ in fast.octaves}
    assert set(relations) == {"x1/3", "x1/2", "x2/3"}  # x3/2, x2, x3 fall outside 60-224
    assert relations["x1/2"][0] == pytest.approx(112, rel=0.05)
    assert relations["x1/2"][1] < fast.strength


def test_half_and_double_tempo_show_up_as_candidates():
    accented = sum(a * np.exp(-0.5 * (N - c) ** 2) for a, c in
                   zip([1.0, 0.3] * 10, np.arange(0, 60, 60 * FRAME_RATE / 160)))
    ft = interpret.filter_tempo(accented)
    assert ft.peak_bpm == pytest.approx(160, abs=3)
    assert any(abs(b - 80) < 3 for b, s in ft.candidates if s > 0.1), ft.candidates
    ft = interpret.filter_tempo(cosine(80) + 0.9 * cosine(160, 1.0))
    assert ft.peak_bpm == pytest.approx(80, abs=2)
    double = {rel: (bpm, s, power) for rel, bpm, s, power in ft.octaves}["x2"]
    assert double[0] == pytest.approx(160, rel=OCTAVE_TOL) and double[2] > 0.3


def test_white_noise_is_weak_and_vectorised_equals_one_by_one():
    rng = np.random.default_rng(7)
    noise = rng.standard_normal((300, 60))
    results = interpret.filter_tempi(noise)
    one = interpret.filter_tempo(noise[5])          # batched (BLAS) = one by one, to rounding
    assert (results[5].peak_bpm, results[5].interval) == (one.peak_bpm, one.interval)
    assert results[5].strength == pytest.approx(one.strength, abs=1e-12)
    assert np.median([r.strength for r in results]) < 0.05


def test_constant_filter_and_bad_input():
    flat = interpret.filter_tempo(np.full(60, 0.3))
    assert flat.peak_bpm is None and flat.interval is None and flat.strength == 0.0
    with pytest.raises(ConfigError, match=r"shape \(width,\)"):
        interpret.filter_tempo(np.zeros((2, 60)))
    with pytest.raises(ConfigError, match="NaN"):
        interpret.filter_tempo(np.array([0.0, np.nan, 1.0, 2.0, 3.0]))
    with pytest.raises(ConfigError, match="bpm_range"):
        interpret.filter_tempo(cosine(120), bpm_range=(200, 100))


def test_short_filters_only_test_tempi_they_can_hold():
    ft = interpret.filter_tempo(cosine(180, width=30))
    assert ft.bpm_range[0] > 100
    assert ft.peak_bpm == pytest.approx(180, abs=2)


def test_periodicity_map_peaks_where_filter_tempo_says():
    filters = np.stack([cosine(b) for b in (70, 120, 200)])
    bpms, scores = interpret.periodicity_map(filters)
    assert scores.shape == (3, len(bpms))
    assert bpms[scores.argmax(axis=1)] == pytest.approx([70, 120, 200], abs=2)


def test_random_baseline_is_the_seed_0_initialisation():
    base = interpret.random_baseline("time", n_models=10)
    assert base.strengths.shape == base.smoothness.shape == (320,)
    assert base.example.shape == (32, 60)
    np.testing.assert_array_equal(base.example, temporal_filters(seeded("time", 0)))
    assert abs(np.mean(base.smoothness)) < 0.1                # Glorot init: white
    with pytest.raises(ConfigError, match="frequency"):
        interpret.random_baseline("frequency", n_models=2)


# ------------------------------------------------------------------ table and graded verdict

def test_filter_table_finds_planted_cosines_and_their_class(tmp_path):
    path = save(planted_time_model(8, 204.0), tmp_path / "planted.safetensors")
    ranges = interpret.class_tempo_ranges(interpret.class_tempi(), classes=CLASSES)
    table = interpret.filter_table(path, ranges=ranges, **FAST)
    assert len(table) == 32 and list(table.columns) == list(interpret.TABLE_COLUMNS)
    planted = table.iloc[:8]
    assert planted["periodic"].all() and (planted["q_value"] <= 0.05).all()
    assert planted["peak_bpm"].to_numpy() == pytest.approx(204, abs=2)
    assert ((planted["bpm_low"] <= 204) & (planted["bpm_high"] >= 204)).all()
    assert all("Quickstep" in c for c in planted["classes"])        # real Ballroom: 204 BPM
    assert table["periodic"].sum() <= 9                               # FDR: few false ones
    assert table["tuned"].isna().all() and table["most_active"].isna().all()  # no probes


def test_untrained_model_shows_no_periodic_structure(tmp_path):
    path = save(seeded("time", seed=11), tmp_path / "random.safetensors")
    table = interpret.filter_table(path, **FAST)
    verdict = interpret.compute_verdict(table, has_ranges=False)
    assert verdict.periodic.count <= 1
    assert "consistent with learned tempo" not in report.verdict_summary(verdict)


def _table(periodic, tuned, classes, *, n=32, tuned_chance=0.25, class_chance=0.5):
    """A filter table with chosen outcomes (the verdict is a function of the table alone)."""
    rows = []
    for i in range(n):
        rows.append({"filter": i, "peak_bpm": 120.0, "bpm_low": 100.0, "bpm_high": 140.0,
                     "periodic": i in periodic, "tuned": i in tuned,
                     "tuned_chance": tuned_chance, "classes": classes.get(i, []),
                     "class_chance": class_chance})
    table = pd.DataFrame(rows)
    table.attrs["q"] = 0.05
    return table


def test_verdict_counts_each_statement_within_the_previous_one():
    table = _table(periodic={0, 1, 2, 3}, tuned={1, 2, 3, 9},
                   classes={2: ["Tango", "ChaChaCha"], 3: ["Tango"], 9: ["Jive"]})
    v = interpret.compute_verdict(table, has_ranges=True)
    assert (v.periodic.count, v.periodic.out_of) == (4, 32)
    assert (v.tuned.count, v.tuned.out_of) == (3, 4)                 # filter 9 is not periodic
    assert v.tuned.expected == pytest.approx(4 * 0.25)
    assert (v.relevant.count, v.relevant.out_of) == (2, 3)
    assert v.relevant.expected == pytest.approx(3 * 0.5)
    assert v.relevant.p_value == pytest.approx(0.5)                   # P(Bin(3, .5) >= 2)
    assert dict(v.class_counts) == {"Tango": 2, "ChaChaCha": 1}
    lines = report.verdict_lines(v)
    # one line per question: uses tempo (not measured here), periodic filters, which matter
    assert lines[0].startswith("Uses tempo: not measured")
    assert lines[1].startswith("Periodic filters: 4 of 32 are periodic")
    assert "not shown to be aperiodic" in lines[1]        # no power measured: says so
    assert lines[-1].startswith("Which filters matter: not measured")
    assert "learned tempo" not in lines[1]                  # periodic structure ≠ tempo
    assert not any("of these" in ln or "p = 0.9" in ln for ln in lines)


def test_chance_tail_is_the_binomial_for_equal_chances():
    from scipy.stats import binom

    from tfcnn.interpret.study import count_tail

    assert count_tail([0.3] * 10, 4) == pytest.approx(binom.sf(3, 10, 0.3))
    assert count_tail([0.3] * 10, 0) == 1.0


def test_overlap_chance_grows_with_the_interval_width():
    ranges = interpret.class_tempo_ranges(interpret.class_tempi(), classes=CLASSES)
    narrow, wide = (interpret.overlap_chance(w, ranges) for w in (0.0, 60.0))
    assert 0 < narrow < wide <= 1.0
    assert interpret.overlap_chance(400.0, ranges) == 1.0
    assert interpret.classes_overlapping((190.0, 215.0), ranges) == ["Quickstep"]


# ------------------------------------------------------------------ probes (4/4 and 3/4)

def test_probe_sweep_has_clicks_drums_and_waltz_matching_the_model(tmp_path):
    path = save(seeded("time", seed=5), tmp_path / "time.safetensors")
    ckpt = load_checkpoint(path)
    probes = interpret.probe_sweep(ckpt, **SWEEP)
    n_bpm = len(SWEEP["bpms"])
    assert probes.kinds == ("click", "drums", "waltz") and probes.meters == (4, 4, 3)
    assert probes.activations.shape == (3, 32, n_bpm)
    assert probes.tuning.shape == (32, n_bpm)
    np.testing.assert_allclose(probes.probabilities.sum(axis=2), 1.0, atol=1e-5)
    assert (probes.activations >= 0).all()          # post-ReLU
    # conv → ReLU → max over bands → mean over time and patches, computed here independently
    for k, kind in enumerate(probes.kinds):
        patches = interpret.probe_patches(kind, SWEEP["bpms"], SWEEP["seconds"], FRONT_END)[4]
        x = torch.from_numpy(((patches[:, None] - 0.3) / 1.1).astype(np.float32))
        conv = ckpt.model.time_branch.conv
        expect = F.relu(F.conv2d(x, conv.weight, conv.bias)).amax(dim=2).mean(dim=(0, 2))
        np.testing.assert_allclose(probes.activations[k, :, 4], expect.detach().numpy(),
                                   rtol=1e-4, atol=1e-6)
    tmap = probes.tempo_class_map()
    assert len(tmap) == 3 * n_bpm and set(tmap["meter"]) == {"4/4", "3/4"}
    # the waltz probe is its own signal, not a relabelled 4/4 loop
    assert not np.allclose(interpret.probe_patches("waltz", SWEEP["bpms"], 4.0, FRONT_END),
                           interpret.probe_patches("drums", SWEEP["bpms"], 4.0, FRONT_END))


def test_planted_filters_are_tuned_to_their_own_tempo(tmp_path):
    path = save(planted_time_model(8, 204.0), tmp_path / "planted.safetensors")
    probes = interpret.probe_sweep(path, **SWEEP)                    # 204 is on the grid
    table = interpret.filter_table(path, probes=probes, **FAST)
    planted = table.iloc[:8]
    assert planted["tuned"].all(), planted[["peak_bpm", "best_probe_bpm"]]
    assert (planted["tuned_chance"] < 0.6).all()
    assert set(table["most_active"]) <= set(CLASSES)


@pytest.mark.parametrize("arch, params", [("timefreq", {}), ("timefreq-init", {}),
                                          ("time", {"time_filter": (1, 30), "n_filters": 4})])
def test_probes_work_for_every_temporal_variant(tmp_path, arch, params):
    path = save(seeded(arch, **params), tmp_path / f"{arch}.safetensors")
    probes = interpret.probe_sweep(path, **SWEEP)
    n_filters = params.get("n_filters", 32)
    assert probes.tuning.shape == (n_filters, len(SWEEP["bpms"]))
    assert len(interpret.filter_table(path, **FAST)) == n_filters


def test_frequency_model_study_says_what_it_shows_instead(tmp_path):
    path = save(seeded("frequency"), tmp_path / "freq.safetensors")
    study = interpret.tempo_study(path, probe_bpms=SWEEP["bpms"], probe_seconds=4.0)
    assert study.table is None and study.verdict is None and study.probes.activations is None
    assert study.filters["frequency"].shape == (32, 32)
    text = report.study_text(study)[0]
    assert "no 1×n temporal filters" in text and "32×1" in text


def test_class_tempi_ranges_and_agreement():
    tempi = interpret.class_tempi()
    ranges = interpret.class_tempo_ranges(tempi, classes=CLASSES)
    assert list(ranges.index) == list(CLASSES)
    assert 195 < ranges.loc["Quickstep", "median"] < 215
    assert 80 < ranges.loc["Waltz", "median"] < 95
    assert "Quickstep" in interpret.classes_at(204, ranges)
    bpms = np.array([86.0, 204.0])
    perfect = interpret.Probes(bpms=bpms, kinds=("click",), classes=CLASSES, activations=None,
                               probabilities=np.full((1, 2, 8), 1 / 8),
                               predicted=np.array([[CLASSES.index("Waltz"),
                                                    CLASSES.index("Quickstep")]]))
    assert interpret.tempo_class_agreement(perfect, ranges)["agreement"] == 1.0


# ------------------------------------------------------------------ SynthBallroom: planted tempo

def test_pipeline_recovers_a_planted_tempo_against_synthballrooms_exact_tempi(tmp_path,
                                                                               synth_dataset):
    tempi = interpret.class_tempi(synth_dataset)              # exact tempo of every track
    ranges = interpret.class_tempo_ranges(tempi, classes=CLASSES)
    target = float(ranges.loc["Samba", "median"])
    path = save(planted_time_model(6, target), tmp_path / "planted.safetensors")
    study = interpret.tempo_study(path, tempi=tempi, ranges_name="data-set",
                                  probe_bpms=tuple(range(60, 225, 8)), probe_seconds=4.0, **FAST)
    planted = study.table.iloc[:6]
    # Samba's median (~100.5 BPM) is the slow edge of the filter test's range, where its power
    # is lowest: a clean cosine there is flagged in 5 of these 6 phases (docs/tempo-study.md)
    assert planted["periodic"].sum() >= 5
    assert ((planted["bpm_low"] <= target) & (target <= planted["bpm_high"])).all()
    assert all("Samba" in c for c in planted["classes"])
    assert len(set(range(6)) & set(study.verdict.periodic.filters)) >= 5
    assert "data-set tempo range" in report.study_text(study)[0]        # probe → class line


# ------------------------------------------------------------------ disk cache

def test_study_is_cached_on_disk_by_content_hash(tmp_path):
    path = save(planted_time_model(4, 150.0), tmp_path / "m.safetensors")
    params = dict(probe_bpms=SWEEP["bpms"], probe_seconds=4.0, **FAST)
    first = interpret.cached_study(path, **params)
    entries = list((tmp_path / ".tfcnn-cache" / "studies").glob("*.json"))
    assert len(entries) == 1
    again = interpret.cached_study(path, **params)           # read back from disk
    pd.testing.assert_frame_equal(again.table, first.table)
    assert again.verdict == first.verdict
    np.testing.assert_allclose(again.heatmap[1], first.heatmap[1])
    np.testing.assert_allclose(again.probes.activations, first.probes.activations)
    save(planted_time_model(4, 100.0), path)                  # new content → new entry
    changed = interpret.cached_study(path, **params)
    assert len(list(entries[0].parent.glob("*.json"))) == 2
    assert changed.table["peak_bpm"].iloc[0] == pytest.approx(100, abs=2)


# ------------------------------------------------------------------ CLI (real subprocess)

def cli(*args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "tfcnn", *args], cwd=REPO,
                          capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="module")
def planted_checkpoint(tmp_path_factory) -> Path:
    return save(planted_time_model(8, 120.0),
                tmp_path_factory.mktemp("cli") / "synth-time.safetensors")


def test_cli_prints_32_rows_and_the_graded_verdict(planted_checkpoint, folder_dataset):
    out = cli("filters", str(planted_checkpoint), "--no-probes", "--data", str(folder_dataset))
    assert out.returncode == 0, out.stderr
    lines = out.stdout.strip().splitlines()
    assert lines[0].split()[:2] == ["filter", "tempo"]
    rows = [ln for ln in lines[1:] if ln.split()[0].isdigit()]
    assert len(rows) == 32
    assert all(r.split()[1] == "~120" or r.split()[1] in ("~119", "~121") for r in rows[:8])
    verdict = [ln for ln in lines if ln.startswith("verdict: ")]
    assert verdict[0].startswith("verdict: Uses tempo: not measured")     # --no-probes
    assert verdict[1].startswith("verdict: Periodic filters: ")
    assert "find" in verdict[1] and "100-224 BPM" in verdict[1]          # its power
    assert all(r.split()[-2] in CLASSES or r.split()[-3] in CLASSES for r in rows[:8])


def test_cli_json_has_intervals_probes_in_both_meters_and_the_verdict(planted_checkpoint):
    out = cli("filters", str(planted_checkpoint), "--json", "--probe-step", "8")
    assert out.returncode == 0, out.stderr
    doc = json.loads(out.stdout)
    assert doc["arch"] == "time" and len(doc["filters"]) == 32
    first = doc["filters"][0]
    assert first["periodic"] is True and len(first["interval"]) == 2
    assert first["interval"][0] <= 120 <= first["interval"][1]
    assert doc["probes"]["kinds"] == ["click", "drums", "waltz"]
    assert doc["probes"]["meters"] == ["4/4", "4/4", "3/4"]
    assert set(doc["probes"]["predicted"]["waltz"]) <= set(CLASSES)
    assert doc["verdict"]["periodic"]["count"] >= 8
    assert doc["verdict"]["tuned"]["out_of"] == doc["verdict"]["periodic"]["count"]
    assert doc["verdict"]["test"] == "likelihood-ratio"
    assert {c["pattern"] for c in doc["verdict"]["power"]} == {"cosine", "pulses"}
    assert len(doc["verdict"]["bank"]["bands"]) == 4
    assert doc["verdict"]["lines"][0].startswith("Probe → class: ")
    kinds = [t["kind"] for t in doc["functional"]["probe_class"]]
    assert kinds == ["click", "drums", "waltz"]
    assert doc["functional"]["counterfactual"] is None                   # not asked for


@pytest.mark.parametrize("content", [None, b"not a safetensors file"])
def test_cli_bad_checkpoint_is_exit_2(tmp_path, content):
    path = tmp_path / "bad.safetensors"
    if content is not None:
        path.write_bytes(content)
    out = cli("filters", str(path))
    assert out.returncode == 2
    assert out.stderr.startswith("error: ") and "bad.safetensors" in out.stderr


def test_cli_bad_probe_step_is_exit_2(planted_checkpoint):
    out = cli("filters", str(planted_checkpoint), "--probe-step", "0")
    assert out.returncode == 2 and "--probe-step must be > 0" in out.stderr


def test_snapshots_run_and_growth_table(tmp_path, folder_dataset):
    run_dir = tmp_path / "run"
    out = cli("train", str(folder_dataset), "--arch", "time", "--folds", "2", "--only-folds",
              "1", "--epochs", "2", "--snapshots", "0,2", "--device", "cpu", "--quiet",
              "--threads", "1", "--out", str(run_dir))
    assert out.returncode == 0, out.stderr
    snaps = sorted(p.name for p in (run_dir / "snapshots").iterdir())
    assert snaps == ["fold1-epoch0.safetensors", "fold1-epoch2.safetensors"]
    # epoch 0 is the initial weights: seeded init, different from the trained epoch 2
    w0 = temporal_filters(load_checkpoint(run_dir / "snapshots" / snaps[0]).model)
    w2 = temporal_filters(load_checkpoint(run_dir / "snapshots" / snaps[1]).model)
    assert not np.allclose(w0, w2)
    growth = cli("filters", str(run_dir), "--growth", "--no-probes", "--json")
    assert growth.returncode == 0, growth.stderr
    rows = json.loads(growth.stdout)["growth"]
    assert [(r["fold"], r["epoch"]) for r in rows] == [(1, 0), (1, 2)]
    assert all(r["n_filters"] == 32 and 0 <= r["periodic"] <= 32 for r in rows)
    # the same table in process, read from the studies the CLI cached beside the snapshots
    table = interpret.growth_table(run_dir, with_probes=False, ranges_name="Ballroom",
                                   probe_bpms=interpret.PROBE_BPMS)
    assert table["periodic"].tolist() == [r["periodic"] for r in rows]
    assert report.growth_text(table).splitlines()[0].split()[:3] == ["fold", "epoch", "periodic"]
    with pytest.raises(RunError, match="no snapshots"):
        interpret.growth_table(tmp_path)


def test_bad_snapshots_argument_is_one_error_line(tmp_path, folder_dataset):
    out = cli("train", str(folder_dataset), "--arch", "time", "--snapshots", "1,x",
              "--out", str(tmp_path / "r"))
    assert out.returncode == 2 and "--snapshots" in out.stderr


# ------------------------------------------------------------------ data sets

def test_dataset_activations_and_exact_synth_tempi(tmp_path, folder_dataset, synth_dataset):
    path = save(planted_time_model(4, 120.0), tmp_path / "time.safetensors")
    acts = interpret.dataset_class_activations(path, folder_dataset, max_tracks_per_class=2)
    assert acts.shape == (32, 8) and np.isfinite(acts).all() and (acts >= 0).all()
    table = interpret.filter_table(path, activations=acts, **FAST)
    assert list(table["most_active"]) == [CLASSES[i] for i in acts.argmax(axis=1)]

    tempi = interpret.class_tempi(synth_dataset)             # SynthBallroom: exact tempi
    meta = pd.read_csv(synth_dataset / "metadata.csv")
    assert len(tempi) == len(meta)
    assert sorted(tempi["bpm"]) == pytest.approx(sorted(meta["bpm"]))
    with pytest.raises(DatasetError, match="no tempo annotations"):
        interpret.class_tempi(folder_dataset)                # folder layout: no tempi


def test_run_with_snapshots_finds_the_run_of_a_fold_checkpoint(tmp_path):
    from tfcnn.interpret.growth import run_with_snapshots
    from tfcnn.runs import snapshot_path

    fold_model = save(seeded("time"), tmp_path / "run" / "fold-00" / "model.safetensors")
    assert run_with_snapshots(fold_model) is None                     # no snapshots kept
    save(seeded("time"), snapshot_path(tmp_path / "run", 0, 5))
    assert run_with_snapshots(fold_model) == tmp_path / "run"
    assert run_with_snapshots(snapshot_path(tmp_path / "run", 0, 5)) == tmp_path / "run"


def test_the_summary_names_what_was_and_was_not_run(tmp_path):
    from tfcnn.interpret.functional import FunctionalEvidence, ProbeClassTest

    path = save(seeded("time", seed=11), tmp_path / "random.safetensors")
    verdict = interpret.compute_verdict(interpret.filter_table(path, **FAST), has_ranges=False)
    weak = ProbeClassTest(kind="drums", meter="4/4", hits=3, n=83, expected=2.5,
                          null_range=(0.0, 6.0), p_value=0.4)
    probes_only = FunctionalEvidence(probe_class=(weak,), counterfactual=None, ablation=None)
    text = report.verdict_summary(verdict, probes_only)
    # probes alone are the weak test: the summary says the counterfactual was not run
    assert text.startswith("The probes alone do not show") and "--functional" in text
    assert "not shown to follow tempo" not in text
    assert report.verdict_summary(verdict).startswith("Whether the model uses tempo was not")
