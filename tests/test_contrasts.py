"""Seeds pooled as corrected repeated cross-validation and Holm's correction over a family of
contrasts, on hand-checked numbers and on the shipped sweep."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tfcnn.contrasts import (cv_test_train_ratio, family, format_contrasts, holm,
                             pooled_comparison, setting_contrasts)
from tfcnn.errors import ConfigError
from tfcnn.evaluate import compare_accuracies

REPO = Path(__file__).resolve().parents[1]


def test_holm_on_a_textbook_example():
    # sorted p 0.01, 0.02, 0.04 → 0.03, 0.04, 0.04 (monotone), back in input order
    assert holm([0.04, 0.01, 0.02]) == pytest.approx([0.04, 0.03, 0.04])
    assert holm([0.5, 0.9]) == pytest.approx([1.0, 1.0])
    assert holm([]) == []
    with pytest.raises(ConfigError, match="p-values must be a list of numbers in"):
        holm([0.5, 1.5])


def test_holm_keeps_the_family_wise_error_at_5_percent_where_uncorrected_tests_do_not():
    rng = np.random.default_rng(3)
    p = rng.uniform(size=(4000, 3))  # three true nulls per family
    any_raw = np.mean((p < 0.05).any(axis=1))
    any_holm = np.mean([min(holm(row)) < 0.05 for row in p])
    assert any_raw > 0.12            # 1 − 0.95³ = 0.143
    assert 0.035 < any_holm < 0.056  # at most 5 % (Bonferroni-exact for independent nulls)


def test_ratio_of_the_protocols():
    assert cv_test_train_ratio(10, "clean") == pytest.approx(1 / 8)
    assert cv_test_train_ratio(10, "paper") == pytest.approx(1 / 8)
    assert cv_test_train_ratio(5, "clean") == pytest.approx(1 / 3)
    with pytest.raises(ConfigError, match="n_folds must be an integer >= 3, got 2"):
        cv_test_train_ratio(2)


def test_pooled_seeds_are_the_concatenated_folds():
    a = {0: [50.0, 60.0, 55.0], 1: [52.0, 58.0, 61.0], 2: [40.0, 45.0]}
    b = {0: [45.0, 50.0, 52.0], 1: [50.0, 50.0, 55.0], 3: [10.0, 20.0, 30.0]}
    c = pooled_comparison(a, b, test_train_ratio=0.25, labels=("x", "y"))
    ref = compare_accuracies([50, 60, 55, 52, 58, 61], [45, 50, 52, 50, 50, 55],
                             test_train_ratio=0.25)
    assert c.n_folds == (6, 6) and c.ci95 == pytest.approx(ref.ci95) and c.mdd == ref.mdd
    assert c.runs == ("x", "y") and "2 seed(s) pooled (0, 1)" in c.notes[0]
    assert pooled_comparison({0: [1.0]}, {0: [2.0]}, test_train_ratio=0.25) is None


def test_the_shipped_sweep_reproduces_its_intervals_and_holm_changes_one_verdict():
    report = json.loads((REPO / "checkpoints" / "sweep-tempo-time.json").read_text())
    by_engine = {}
    for entry in report["engines"]:
        contrasts = setting_contrasts(entry["points"], entry["params"],
                                      test_train_ratio=cv_test_train_ratio(10))
        by_engine[entry["engine"]] = {k.comparison.runs: k for k in contrasts}
    shipped = {(c["engine"], c["a"], c["b"]): c for c in report["comparisons_over_seeds"]}
    for (engine, a, b), row in shipped.items():
        k = by_engine[engine][(a, b)]
        assert k.comparison.mean_difference == pytest.approx(row["diff"], abs=0.01)
        assert k.comparison.ci95 == pytest.approx(row["ci95"], abs=0.01)
        assert k.n_contrasts == 3 and k.comparison.n_folds == (30, 30)
    local, ray = by_engine["local"][("1x60", "1x30")], by_engine["ray"][("1x60", "1x30")]
    # 1x60 − 1x30 alone: above 0 on both engines; Bonferroni over 3: +0.3 to +26.4 (local),
    # −1.3 to +29.6 (ray); Holm declares it on the local engine only.
    assert local.comparison.verdict == ray.comparison.verdict == "A better"
    assert local.simultaneous_ci == pytest.approx((0.3, 26.4), abs=0.05)
    assert ray.simultaneous_ci == pytest.approx((-1.3, 29.6), abs=0.05)
    assert local.verdict == "A better" and local.p_holm < 0.05
    assert ray.verdict == "inconclusive" and ray.p_holm > 0.05
    text = format_contrasts(list(by_engine["local"].values()))
    assert "Holm-adjusted over the 3 contrasts" in text and "98.3 %" in text


def test_family_mdd_is_stated_at_the_bonferroni_level():
    rng = np.random.default_rng(0)
    comps = [compare_accuracies(rng.normal(50, 5, 10), rng.normal(50, 5, 10),
                                test_train_ratio=1 / 8) for _ in range(4)]
    fam = family(comps)
    assert all(k.mdd > k.comparison.mdd for k in fam)
    assert all(k.simultaneous_ci[0] < k.comparison.ci95[0] for k in fam)


def test_the_sweep_cli_prints_the_family(synth_dataset, tmp_path):
    out = tmp_path / "sweep"
    proc = subprocess.run(
        [sys.executable, "-m", "tfcnn", "sweep", str(synth_dataset), "--arch", "time",
         "--time-filter", "1x8,1x16", "--seeds", "0", "--folds", "3", "--epochs", "1",
         "--device", "cpu", "--out", str(out), "--quiet"],
        cwd=REPO, capture_output=True, text=True, timeout=600,
        env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert " − 1x" in proc.stdout and "Holm-adjusted over the 1 contrast reported" in proc.stdout
