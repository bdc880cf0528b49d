"""tfcnn.interpret.stretch: the tempo counterfactual on the user's own tracks.

A stretch must move the tempo and keep the bands; the test must say "follows tempo" for the
shipped Time model on real audio files and nothing for a model that ignores tempo; and its
permutation null must hold its level on tempo-blind predictions (simulated).
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
from scipy.stats import binom

from tfcnn.checkpoint import save_checkpoint
from tfcnn.config import CLASSES, FRONT_END, PRESETS
from tfcnn.errors import ConfigError
from tfcnn.features import log_mel
from tfcnn.interpret import class_tempi, class_tempo_ranges
from tfcnn.interpret.functional import summarise_counterfactual
from tfcnn.interpret.stretch import stretch_counterfactual, stretched
from tfcnn.models import build_model
from tfcnn.synth import render_click_track
from tfcnn.tempo import estimate_tempo

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def ranges() -> pd.DataFrame:
    return class_tempo_ranges(class_tempi(), classes=CLASSES)


def test_a_stretch_moves_the_tempo_and_keeps_the_bands():
    y = render_click_track(bpm=100.0, seconds=16.0, sample_rate=FRONT_END.sample_rate)
    spec = log_mel(y, FRONT_END.sample_rate)
    assert estimate_tempo(spec).bpm == pytest.approx(100.0, abs=4)
    fast = stretched(spec, 1.5)
    assert fast.shape == (spec.shape[0], round(spec.shape[1] / 1.5))
    assert estimate_tempo(fast).bpm == pytest.approx(150.0, abs=6)
    # pitch kept: the mean level of each band stays (correlation over the 40 bands)
    assert np.corrcoef(spec.mean(axis=1), fast.mean(axis=1))[0, 1] > 0.99
    with pytest.raises(ConfigError, match="stretch factor"):
        stretched(spec, 0.0)


def test_shipped_time_model_follows_the_tempo_of_stretched_audio_files(tmp_path):
    # real audio files of three dances, through the CLI as a user runs it
    subprocess.run([sys.executable, "-m", "tfcnn", "synth", str(tmp_path / "mine"),
                    "--per-class", "1", "--seconds", "20", "--seed", "5", "--quiet"],
                   cwd=REPO, check=True, timeout=300)
    files = [str(next((tmp_path / "mine" / d).glob("*.wav"))) for d in
             ("Jive", "Tango", "Waltz")]
    proc = subprocess.run([sys.executable, "-m", "tfcnn", "filters",
                           str(REPO / "checkpoints" / "synth-time.safetensors"), "--no-probes",
                           "--json", "--stretch", *files],
                          cwd=REPO, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    out = json.loads(proc.stdout)
    cf = out["stretch"]
    assert {r["dance"] for r in cf["renders"]} == {Path(f).name for f in files}
    assert cf["hit_rate"] > cf["null_rate"] and cf["p_value"] <= 0.05, cf
    # three tracks: too few for an interval over tracks (coverage is measured from 4 up)
    assert cf["difference_interval"] == [None, None] and cf["difference"] > 0.1, cf
    # every stretch of a track votes over the same number of patches
    assert len({r["frames"] for r in cf["renders"] if r["dance"] == Path(files[0]).name}) == 1
    assert any(line.startswith("Your tracks, time-stretched") for line in out["text"])


def test_a_tempo_blind_model_shows_no_difference(ranges, tmp_path):
    torch.manual_seed(0)
    model = build_model("frequency", len(CLASSES))
    with torch.no_grad():
        model.output.bias.fill_(0.0)
        model.output.bias[2] = 50.0                      # always the third class
    path = tmp_path / "blind.safetensors"
    save_checkpoint(path, model, classes=CLASSES, norm_mean=0.0, norm_std=1.0,
                    front_end=FRONT_END, train_config=PRESETS["quick"], metrics={})
    y = render_click_track(bpm=120.0, seconds=12.0, sample_rate=FRONT_END.sample_rate)
    cf = stretch_counterfactual(path, [log_mel(y, FRONT_END.sample_rate)], ["clicks"], ranges)
    assert cf.hit_rate == pytest.approx(cf.null_rate) and cf.p_value == 1.0
    assert np.isnan(cf.difference_interval[0])            # one track: no interval
    assert cf.stay_rate == 1.0
    with pytest.raises(ConfigError, match="one name per track"):
        stretch_counterfactual(path, [], [], ranges)


def test_the_permutation_null_holds_its_level_on_tempo_blind_predictions(ranges):
    # predictions drawn at random, whatever the stretch's tempo: p <= 0.05 at most 5 % of the
    # time (binomial slack at 1 %), for the small designs users bring (1-3 tracks)
    rng = np.random.default_rng(20261205)
    tempi = sorted({float(round(m)) for m in ranges["median"]})
    n_reps, rejections = 200, 0
    for rep in range(n_reps):
        n_tracks = 1 + rep % 3
        rows = [{"dance": f"t{t}", "seed": t, "bpm": b,
                 "predicted": CLASSES[int(rng.integers(len(CLASSES)))], "stays": False}
                for t in range(n_tracks) for b in tempi]
        cf = summarise_counterfactual(pd.DataFrame(rows), ranges, n_permutations=199)
        rejections += cf.p_value <= 0.05
    assert rejections <= binom.ppf(0.99, n_reps, 0.05), rejections
