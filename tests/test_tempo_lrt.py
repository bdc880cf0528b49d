"""tfcnn.interpret.periodic_lrt: the filter test finds planted periods at the level the verdict
counts, holds its level on smooth noise, and the bank test answers per tempo band.

Every check simulates filters whose truth is known (:mod:`tfcnn.interpret.planted`, fixed
seeds) and runs them through the real test with the shipped null tables.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from scipy.stats import binom

from tfcnn.errors import ConfigError
from tfcnn.interpret import periodic_lrt
from tfcnn.interpret.periodic_lrt import (BANDS, P_LEVELS, build_tables, count_combination,
                                          holm, p_from_quantiles, periodic_test, power_curve,
                                          shipped_tables, tail_quantiles)
from tfcnn.interpret.planted import ar1_noise, ar2_noise, gauss_noise, planted_filters
from tfcnn.interpret.smooth_null import benjamini_hochberg

N_BANK = 32
LEVEL = 0.05 / N_BANK          # a lone discovery among 32 under Benjamini-Hochberg at q = 0.05


def bank_found(pattern: str, bpm: float, n_banks: int, rng) -> tuple[float, int]:
    """The issue's bank: 16 planted filters (60 % of the variance) beside 16 AR(1) noise
    filters, counted as the verdict counts (BH q <= 0.05): share of the planted found, and
    false discoveries in all banks."""
    found, false = [], 0
    for _ in range(n_banks):
        bank = np.concatenate([planted_filters(pattern, bpm, 0.6, 16, rng),
                               ar1_noise(rng.uniform(0.2, 0.8, 16), 16, rng)])
        q = benjamini_hochberg(periodic_test(bank).p_value)
        found.append(np.mean(q[:16] <= 0.05))
        false += int(np.sum(q[16:] <= 0.05))
    return float(np.mean(found)), false


@pytest.mark.parametrize("pattern, tempi, min_found", [
    ("cosine", (188.0, 204.0, 224.0), 0.75),
    ("cosine", (132.0, 140.0), 0.2),
    ("pulses", (124.0, 150.0, 200.0), 0.45),
])
def test_a_bank_of_planted_patterns_is_found_at_the_verdicts_level(pattern, tempi, min_found):
    # measured (scripts/tempo_power.py, 8 banks per tempo): cosines 0.81-0.94 at 188-224 BPM,
    # 0.32-0.46 at 132-140, pulses 0.48-0.73 at 108-224; the target of 0.75 over all
    # of 100-224 BPM is met for cosines from ~180 BPM only (docs/tempo-study.md), so this
    # guards what the test does reach, slower tempi included
    rng = np.random.default_rng(20 if pattern == "cosine" else 21)
    results = {bpm: bank_found(pattern, bpm, 3, rng) for bpm in tempi}
    assert np.mean([f for f, _ in results.values()]) >= min_found, results
    assert sum(fd for _, fd in results.values()) <= len(tempi), results


def test_the_shipped_power_curve_is_what_a_fresh_simulation_finds():
    # the verdict quotes this curve: a fresh draw of planted cosines at 200 BPM must land
    # inside the binomial range of the quoted power at p <= 0.05/32
    curve = power_curve("cosine", level=LEVEL)
    assert curve.level == pytest.approx(LEVEL) and curve.share == pytest.approx(0.6)
    n = 80
    p = periodic_test(planted_filters("cosine", 200.0, 0.6, n, np.random.default_rng(44),
                                      noise_phi=curve.noise_phi)).p_value
    found = int(np.sum(p <= LEVEL))
    lo, hi = binom.ppf([0.001, 0.999], n, curve.at(200.0))
    assert lo <= found <= hi, (found, curve.at(200.0))
    # below 100 BPM the curve is reported per tempo, and it is lower there
    slow = [pw for b, pw in zip(curve.tempi, curve.power) if b < 100]
    assert slow and max(slow) < curve.over(176, 224)[1]


NULLS = [("ar", 0.3), ("ar", 0.6), ("ar", 0.8), ("ar", 0.95), ("ar2", (0.8, 0.5)),
         ("ar2", (0.9, 0.3)), ("gauss", 1.0), ("gauss", 2.0), ("gauss", 3.0), ("gauss", 5.0)]


def null_filters(kind: str, value, n: int, rng) -> np.ndarray:
    if kind == "ar2":
        return ar2_noise(*value, n, rng)
    return (ar1_noise if kind == "ar" else gauss_noise)(value, n, rng)
N_BANKS = 4


def test_smooth_noise_gives_at_most_five_percent_false_discoveries():
    # banks of 32 null filters, Benjamini-Hochberg at q = 0.05 as the verdict counts: under
    # the complete null any discovery is false, so P(any) is the false discovery rate.
    rng = np.random.default_rng(2026)
    banks_with_discovery, body = 0, {}
    for kind, value in NULLS:
        x = null_filters(kind, value, N_BANK * N_BANKS, rng)
        p = periodic_test(x).p_value
        banks_with_discovery += sum(bool(np.any(benjamini_hochberg(row) <= 0.05))
                                    for row in p.reshape(N_BANKS, N_BANK))
        body[(kind, value)] = int(np.sum(p <= 0.05))
    n_banks = N_BANKS * len(NULLS)
    # at a 5 % rate, more than this many banks happens with probability < 1 %
    assert banks_with_discovery <= binom.ppf(0.99, n_banks, 0.05), banks_with_discovery
    # and the body of the distribution: p <= 0.05 no more often than a 5 % test allows
    limit = binom.ppf(1 - 0.01 / len(NULLS), N_BANK * N_BANKS, 0.05)
    assert all(c <= limit for c in body.values()), (body, limit)


def test_bank_test_points_at_the_band_that_holds_the_periods():
    rng = np.random.default_rng(7)
    noise = ar1_noise(rng.uniform(0.2, 0.8, N_BANK), N_BANK, rng)
    bank = noise.copy()
    bank[:8] = planted_filters("cosine", 200.0, 0.6, 8, rng)
    test = periodic_test(bank)
    assert test.bank_p < 0.05
    fast = [k for k, (lo, hi) in enumerate(BANDS) if lo <= 200 < hi][0]
    assert test.band_bank_p[fast] < 0.05
    assert all(test.band_bank_p[k] > 0.05 for k in range(len(BANDS)) if k != fast)
    assert periodic_test(noise).bank_p > 0.05
    # the best pattern's tempo is the planted one (within the window's resolution)
    assert np.all(np.abs(test.stats.bpm[:8] - 200) <= 25), test.stats.bpm[:8]


def test_tables_round_trip_and_p_values_are_monotone(tmp_path):
    rng = np.random.default_rng(3)
    tables = build_tables({"ar": ar1_noise(rng.uniform(0, 0.9, 700), 700, rng)}, seed=3,
                          frame_rate=44100 / 1024)
    back = periodic_lrt.NullTables.from_json(json.loads(json.dumps(tables.to_json())))
    assert back.tables == tables.tables
    row = next(r for r in tables.tables["sinusoid alt"]["ar"] if r is not None)
    ps = [p_from_quantiles(row, v) for v in np.linspace(0, row[-1] * 1.5, 50)]
    assert all(a >= b for a, b in zip(ps, ps[1:]))
    assert p_from_quantiles(row, row[10]) == pytest.approx(P_LEVELS[10], rel=1e-6)
    with pytest.raises(ConfigError, match="another test design"):
        periodic_lrt.NullTables.from_json({**tables.to_json(), "edges": [0.5]})
    with pytest.raises(ConfigError, match="another test design"):
        periodic_lrt.NullTables.from_json({**tables.to_json(), "design": 1})


def test_each_pattern_search_has_its_own_statistic_and_the_p_value_is_bonferroni_of_both():
    rng = np.random.default_rng(11)
    x = np.concatenate([planted_filters("cosine", 150.0, 0.6, 6, rng),
                        planted_filters("pulses", 150.0, 0.6, 6, rng)])
    test = periodic_test(x)
    stats = test.stats
    # the headline statistic is the better of the two searches, and each search's winner
    # is the planted one
    assert np.allclose(stats.lr, np.maximum(stats.pattern_lr["sinusoid"],
                                            stats.pattern_lr["pulses"]))
    assert np.all(stats.pattern_lr["sinusoid"][:6] > stats.pattern_lr["pulses"][:6])
    assert np.all(stats.pattern_lr["pulses"][6:] > stats.pattern_lr["sinusoid"][6:])
    tables = shipped_tables()
    per_pattern = []
    for name in periodic_lrt.PATTERNS:
        alt = stats.pattern_member[name]
        cells = periodic_lrt.smoothness_cell(alt, stats.null_member)
        bins = periodic_lrt.smoothness_bin(alt)
        n_null = len(periodic_lrt.NULL_EDGES) + 1
        per_pattern.append([tables.p_value(name, v, c, fallback=[(f"{name} alt", b)] + [
                                (name, b * n_null + j) for j in range(n_null)])
                            for v, c, b in zip(stats.pattern_lr[name], cells, bins)])
    assert np.allclose(test.p_value, np.minimum(1, 2 * np.min(per_pattern, axis=0)))


def test_shipped_tables_cover_both_families_and_reject_other_widths():
    tables = shipped_tables()
    assert {f.split()[0] for f in tables.families} == {"ar", "ar2", "gauss"}
    assert tables.width == 60
    assert sum(tables.counts.values()) >= 60000
    with pytest.raises(ConfigError, match="1×60 filters"):
        periodic_test(np.random.default_rng(0).standard_normal((4, 40)))


def test_tail_quantiles_and_the_multiple_test_helpers():
    v = np.random.default_rng(0).exponential(size=5000)
    q = tail_quantiles(v)
    assert q[P_LEVELS.index(min(P_LEVELS, key=lambda p: abs(p - 0.01)))] == pytest.approx(
        np.log(100), rel=0.15)
    assert tail_quantiles(v[:10]) is None
    assert count_combination(np.full(32, 0.5)) == 1.0
    assert count_combination([0.01] * 5 + [1.0] * 27) == pytest.approx(
        binom.sf(4, 32, 0.05))                     # five of 32: about 0.07
    assert holm([0.01, 0.04, 0.03]).tolist() == pytest.approx([0.03, 0.06, 0.06])
