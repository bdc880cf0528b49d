"""Which cue a model follows on the conflict set: the shares' statistics on simulated
predictions (a cue-blind model lands on chance, a planted cue is found), and ``python -m tfcnn
conflict`` for real on a generated conflict set with the shipped models."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tfcnn.config import CLASSES
from tfcnn.cue_conflict import CHANCE, CueShares, cue_hits, cue_shares, read_report
from tfcnn.errors import ConfigError
from tfcnn.synth import track_plan

REPO = Path(__file__).resolve().parents[1]


def _sources(per_class: int = 20) -> dict[str, np.ndarray]:
    plan = track_plan(per_class=per_class, seed=3, scenario="conflict")
    index = {d: i for i, d in enumerate(CLASSES)}
    return {cue: plan[f"{cue}_of"].map(index).to_numpy() for cue in ("tempo", "rhythm",
                                                                     "timbre")}


def test_hits_name_each_cue_and_none():
    sources = {"tempo": np.array([0, 1]), "rhythm": np.array([2, 3]),
               "timbre": np.array([4, 5])}
    hits = cue_hits(np.array([[0, 3], [7, 5]]), sources)
    assert hits["tempo"].tolist() == [[True, False], [False, False]]
    assert hits["rhythm"].tolist() == [[False, True], [False, False]]
    assert hits["none"].tolist() == [[False, False], [True, False]]


def test_a_cue_blind_model_sits_at_chance_and_its_interval_covers_it():
    """Plant nothing: models that guess land on 12.5 % per cue, inside their 95 % interval
    about 95 % of the time, and are not said to follow any cue."""
    sources = _sources()
    rng = np.random.default_rng(0)
    covered, follows = [], []
    for k in range(200):
        guesses = rng.integers(0, 8, size=(1, 160))
        s = cue_shares(guesses, sources, arch="guess", models=["m"], n_boot=400, seed=k)
        covered.append(s.shares["tempo"][1] <= CHANCE["tempo"] <= s.shares["tempo"][2])
        follows.append(s.follows is not None)
    assert 0.90 <= np.mean(covered) <= 0.99
    assert np.mean(follows) <= 0.10
    # a constant prediction matches each cue on exactly 1/8 of a balanced set
    const = cue_shares(np.full((1, 160), 3), sources, arch="const", models=["m"])
    assert {k: const.shares[k][0] for k in CHANCE} == pytest.approx(CHANCE)


def test_a_planted_cue_is_found_with_its_margin():
    """Plant tempo on 40 % of the tracks (guess elsewhere): tempo is followed, ~47 %."""
    sources = _sources()
    rng = np.random.default_rng(1)
    preds = np.where(rng.random((3, 160)) < 0.4, sources["tempo"][None, :],
                     rng.integers(0, 8, size=(3, 160)))
    s = cue_shares(preds, sources, arch="time", models=["a", "b", "c"])
    assert s.follows == "tempo" and s.shares["tempo"][0] == pytest.approx(0.475, abs=0.06)
    assert s.margin[1] > 0 and "follows tempo" in s.verdict()
    assert [m["model"] for m in s.per_model] == ["a", "b", "c"]
    assert CueShares.from_dict(json.loads(json.dumps(s.to_dict()))).shares == s.shares
    with pytest.raises(ConfigError, match="predictions must be"):
        cue_shares(preds, sources, arch="time", models=["a"])


@pytest.fixture(scope="module")
def conflict_set(tmp_path_factory) -> Path:
    from tfcnn.synth import generate

    return generate(tmp_path_factory.mktemp("conflict") / "synth-conflict", scenario="conflict",
                    per_class=2, seconds=4.0, seed=1, workers=2, progress=False)


def test_cli_reports_each_shipped_architecture(conflict_set, tmp_path):
    out = tmp_path / "report.json"
    proc = subprocess.run(
        [sys.executable, "-m", "tfcnn", "conflict", str(conflict_set),
         "checkpoints/synth-time.safetensors", "checkpoints/synth-frequency.safetensors",
         "--out", str(out)], cwd=REPO, capture_output=True, text=True, timeout=300,
        env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert proc.returncode == 0, proc.stderr[-2000:]
    report, shares = read_report(out)
    assert [s.arch for s in shares] == ["time", "frequency"]
    assert report["n_tracks"] == 16 and report["set"] == {"per_class": 2, "seconds": 4.0,
                                                           "seed": 1}
    for s in shares:
        assert s.n_tracks == 16 and len(s.models) == 1
        assert sum(v[0] for v in s.shares.values()) == pytest.approx(1.0)
        assert f"{s.arch} (1 model)" in proc.stdout


def test_cli_refuses_a_set_that_is_not_a_conflict_set(tmp_path):
    from tfcnn.synth import generate

    tempo = generate(tmp_path / "synth-tempo", scenario="tempo", per_class=1, seconds=2.0,
                     workers=1, progress=False)
    proc = subprocess.run([sys.executable, "-m", "tfcnn", "conflict", str(tempo),
                           "checkpoints/synth-time.safetensors"], cwd=REPO,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2 and "not a conflict set" in proc.stderr
    assert proc.stderr.count("\n") == 1
