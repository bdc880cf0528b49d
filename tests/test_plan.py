"""The planner: interval half-width and MDD of larger designs from a pilot's fold variance,
checked against the corrected t on hand-made pilots, and ``python -m tfcnn plan`` for real."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from scipy import stats

from tfcnn.errors import ConfigError
from tfcnn.evaluate import compare_accuracies
from tfcnn.plan import cheapest, design, make_pilot, plan_table, seed_floor

REPO = Path(__file__).resolve().parents[1]
A = [50.0, 62.5, 43.75, 56.25, 50.0, 37.5, 62.5, 50.0, 43.75, 56.25]
B = [37.5, 50.0, 43.75, 31.25, 43.75, 31.25, 56.25, 37.5, 25.0, 50.0]


def pilot(**kw):
    return make_pilot(A, B, n_test=16, n_classes=8, test_train_ratio=1 / 8, n_folds=10, **kw)


def test_the_pilots_own_design_gives_the_pilots_own_interval():
    p = pilot()
    own = design(p, per_class=20, seeds=1)
    c = compare_accuracies(A, B, test_train_ratio=1 / 8)
    assert p.per_class == 20 and p.paired
    assert own.half_width == pytest.approx(c.ci95[1] - c.mean_difference)
    assert own.mdd == pytest.approx(c.mdd)
    assert p.fold_variance == pytest.approx(np.var(np.subtract(A, B), ddof=1))
    # sampling part: two binomial proportions over 16 songs, capped at the whole
    pa, pb = np.mean(A) / 100, np.mean(B) / 100
    expected = 1e4 * (pa * (1 - pa) + pb * (1 - pb)) / 16
    assert p.sampling_variance == pytest.approx(min(expected, p.fold_variance))


def test_more_tracks_and_seeds_narrow_the_interval_but_seeds_hit_a_floor():
    p = make_pilot(A, B, n_test=16, n_classes=8, test_train_ratio=1 / 8, n_folds=10)
    d = {(x.per_class, x.seeds): x for x in plan_table(p, per_class=(20, 80), seeds=(1, 3, 100))}
    assert d[(80, 1)].half_width < d[(20, 1)].half_width
    assert d[(20, 3)].half_width < d[(20, 1)].half_width
    # 1/J shrinks, n_test/n_train does not: 100 seeds sit near z·√(ρ s²)
    assert d[(20, 100)].half_width == pytest.approx(seed_floor(p, per_class=20), rel=0.05)
    # with J = 30 the corrected se is √((1/30 + 1/8) s²), t with 29 df
    se = math.sqrt((1 / 30 + 1 / 8) * p.fold_variance)
    assert d[(20, 3)].half_width == pytest.approx(stats.t.ppf(0.975, 29) * se)
    # quadrupling the tracks divides the sampling part of s² by 4
    assert d[(80, 1)].fold_variance == pytest.approx(
        p.sampling_variance / 4 + p.training_variance)


def test_cheapest_design_meets_the_width_with_the_fewest_trainings():
    p = pilot()
    designs = plan_table(p)
    best = cheapest(designs, half_width=8.0)
    assert best is not None and best.half_width <= 8.0
    assert all(d.half_width > 8.0 for d in designs if d.trainings < best.trainings)
    assert cheapest(designs, half_width=0.01) is None


def test_one_run_plans_two_models_like_it_and_unpaired_adds_variances():
    one = make_pilot(A, n_test=16, n_classes=8, test_train_ratio=1 / 8, n_folds=10)
    assert one.fold_variance == pytest.approx(2 * np.var(A, ddof=1)) and not one.paired
    apart = pilot(paired=False)
    assert apart.fold_variance == pytest.approx(np.var(A, ddof=1) + np.var(B, ddof=1))


def test_bad_pilots_are_refused():
    with pytest.raises(ConfigError, match="at least 2 finite per-fold accuracies"):
        make_pilot([50.0], n_test=16, n_classes=8, test_train_ratio=0.125, n_folds=10)
    with pytest.raises(ConfigError, match=r"B needs one finite accuracy per fold of A \(10\)"):
        make_pilot(A, B[:3], n_test=16, n_classes=8, test_train_ratio=0.125, n_folds=10)
    with pytest.raises(ConfigError, match="n_test must be a positive number, got 0"):
        make_pilot(A, n_test=0, n_classes=8, test_train_ratio=0.125, n_folds=10)
    with pytest.raises(ConfigError, match="seeds must be an integer >= 1, got 0"):
        design(pilot(), per_class=20, seeds=0)


def _plan(*args):
    return subprocess.run([sys.executable, "-m", "tfcnn", "plan", *map(str, args)],
                          cwd=REPO, capture_output=True, text=True, timeout=120)


def test_cli_plans_from_two_shipped_rows():
    proc = _plan("checkpoints/table1-synth.json:time", "checkpoints/table1-synth.json:frequency",
                 "--half-width", "5", "--json")
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert out["pilot"]["paired"] and out["pilot"]["per_class"] == pytest.approx(60)
    assert out["cheapest"]["half_width"] <= 5
    own = next(d for d in out["designs"] if d["per_class"] == 60 and d["seeds"] == 1)
    compare = subprocess.run(
        [sys.executable, "-m", "tfcnn", "compare", "checkpoints/table1-synth.json:time",
         "checkpoints/table1-synth.json:frequency", "--json"],
        cwd=REPO, capture_output=True, text=True, timeout=120)
    c = json.loads(compare.stdout)
    assert own["half_width"] == pytest.approx(c["ci95"][1] - c["mean_difference"])
    assert own["mdd"] == pytest.approx(c["minimum_detectable_difference"]["points"])
    text = _plan("checkpoints/table1-scenarios.json:tempo/time", "--half-width", "10").stdout
    assert "for ±10 points:" in text and "seeds alone cannot go below" in text


def test_cli_errors_are_one_line():
    proc = _plan("checkpoints/table1-synth.json:nope")
    assert proc.returncode == 2 and proc.stderr.startswith("error:") and "nope" in proc.stderr
    proc = _plan("checkpoints/table1-synth.json:time", "--half-width", "-1")
    assert proc.returncode == 2 and "--half-width must be a positive" in proc.stderr
    assert proc.stderr.count("\n") == 1


def test_the_plan_command_module_loads_no_heavy_module():
    """The CLI builds every command's parser: ``tfcnn.commands.plan`` must stay light."""
    code = ("import sys, tfcnn.commands.plan\n"
            "print(sorted(m for m in ('torch', 'pandas', 'scipy') if m in sys.modules))")
    proc = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[]"
