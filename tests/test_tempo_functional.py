"""tfcnn.interpret.functional: the tests of what the model does with tempo, each against its
null, on outcomes whose truth is known (predictions that follow tempo or ignore it) and on a
real model and real renders."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from scipy.stats import binom

from tfcnn.checkpoint import save_checkpoint
from tfcnn.config import CLASSES, FRONT_END, PRESETS
from tfcnn.interpret import Probes, class_tempi, class_tempo_ranges
from tfcnn.interpret.functional import (filter_ablation, probe_class_test, render_grid,
                                        summarise_counterfactual, tempo_counterfactual,
                                        zeroed_filter)
from tfcnn.interpret.tempi import classes_at
from tfcnn.models import build_model


@pytest.fixture(scope="module")
def ranges() -> pd.DataFrame:
    return class_tempo_ranges(class_tempi(), classes=CLASSES)


def probes_predicting(pred: np.ndarray, bpms: np.ndarray) -> Probes:
    return Probes(bpms=bpms, kinds=("drums",), classes=CLASSES, activations=None,
                  probabilities=np.full((1, len(bpms), len(CLASSES)), 1 / len(CLASSES)),
                  predicted=pred[None, :])


def test_probe_class_test_separates_a_tempo_follower_from_a_constant_class(ranges):
    bpms = np.arange(60.0, 225.0, 2.0)
    # the follower predicts a class whose range holds the tempo wherever there is one
    follow = np.array([CLASSES.index(classes_at(b, ranges)[0]) if classes_at(b, ranges)
                       else 0 for b in bpms])
    (t,) = probe_class_test(probes_predicting(follow, bpms), ranges)
    assert t.hits > t.null_range[1] and t.p_value < 0.05 and t.meter == "4/4"
    (c,) = probe_class_test(probes_predicting(np.full(len(bpms), 3), bpms), ranges)
    assert c.hits == pytest.approx(c.expected) and c.p_value == 1.0   # shifts change nothing


def renders_table(follow: bool, ranges, rng) -> pd.DataFrame:
    tempi = sorted({float(round(m)) for m in ranges["median"]})
    rows = []
    for d in CLASSES:
        for seed in range(3):
            for b in tempi:
                at = classes_at(b, ranges)
                pred = at[0] if follow and at else (d if not follow else CLASSES[0])
                rows.append({"dance": d, "seed": seed, "bpm": b, "predicted": pred,
                             "stays": pred == d})
    return pd.DataFrame(rows)


def test_counterfactual_null_and_interval(ranges):
    rng = np.random.default_rng(0)
    cf = summarise_counterfactual(renders_table(True, ranges, rng), ranges,
                                  n_permutations=300)
    assert cf.hit_rate > 0.9 and cf.p_value < 0.01
    assert cf.difference_interval[0] > 0.3
    ignore = summarise_counterfactual(renders_table(False, ranges, rng), ranges,
                                      n_permutations=300)
    # a model that keeps each track's class whatever its tempo: no difference at all
    assert ignore.hit_rate == pytest.approx(ignore.null_rate)
    assert ignore.difference_interval == pytest.approx((0.0, 0.0))
    assert ignore.p_value == 1.0 and ignore.stay_rate == 1.0


def _save(model, path: Path) -> Path:
    save_checkpoint(path, model, classes=CLASSES, norm_mean=0.3, norm_std=1.1,
                    front_end=FRONT_END, train_config=PRESETS["quick"], metrics={})
    return path


def test_zeroed_filter_equals_zero_weights_and_bias():
    torch.manual_seed(0)
    model = build_model("time", len(CLASSES)).eval()
    x = torch.randn(3, 1, 40, 80)
    with zeroed_filter(model, 5, 32):
        hooked = model(x)
    with torch.no_grad():
        model.time_branch.conv.weight[5] = 0
        model.time_branch.conv.bias[5] = 0
    assert torch.allclose(hooked, model(x), atol=1e-6)
    assert not torch.allclose(hooked, build_model("time", len(CLASSES)).eval()(x))


def test_counterfactual_and_ablation_on_real_renders(tmp_path, ranges):
    torch.manual_seed(0)
    path = _save(build_model("time", len(CLASSES)), tmp_path / "m.safetensors")
    renders, specs = render_grid(path, ranges, tracks_per_class=1, seconds=4.0,
                                 tempi=(86.0, 204.0))
    assert len(renders) == 16 and specs.shape[:2] == (16, 40)
    # same seed at both tempi: the same track, so its two renders differ only in tempo
    assert (renders.groupby(["dance", "seed"]).size() == 2).all()
    cf = tempo_counterfactual(path, ranges, renders=renders, specs=specs)
    assert set(cf.renders["predicted"]) <= set(CLASSES)
    assert 0 <= cf.hit_rate <= 1 and 0 < cf.p_value <= 1
    assert cf.difference_interval[0] <= cf.hit_rate - cf.null_rate <= cf.difference_interval[1]
    # Waltz's own tempo (86) and Quickstep's (204) are in the grid: those renders are ablated
    renders["own"] = renders["dance"].map({"Waltz": 86.0, "Quickstep": 204.0})
    ab = filter_ablation(path, renders=renders, specs=specs)
    assert ab.drop.shape == (32, len(CLASSES)) and ab.n_tracks == 1
    assert np.all(np.abs(ab.drop) <= 1)


def test_the_interval_over_tracks_covers_the_true_difference(ranges):
    # tracks that follow the tempo with their own probability (Beta(2, 4)), else keep their
    # class or guess: the interval over 16 tracks (the shipped counterfactual's design) must
    # hold the population's difference about 95 % of the time (a percentile bootstrap held
    # it 86 % of the time here)
    from tfcnn.interpret.functional import difference_interval

    rng = np.random.default_rng(20261205)
    tempi = sorted({float(round(m)) for m in ranges["median"]})
    hits_at = np.array([[p in classes_at(b, ranges) for p in CLASSES] for b in tempi])

    def draw(n_tracks):
        obs, exp = [], []
        for t in range(n_tracks):
            q, own = rng.beta(2, 4), t % len(CLASSES)
            pred = []
            for b in tempi:
                at = classes_at(b, ranges)
                pred.append(CLASSES.index(at[0]) if at and rng.random() < q else
                            own if rng.random() < 0.5 else int(rng.integers(len(CLASSES))))
            m = hits_at[:, pred]                       # m[i, j]: render j's class at tempo i
            obs.append(np.trace(m))
            exp.append(m.mean(axis=1).sum())
        return np.array(obs, float), np.array(exp, float), np.full(n_tracks, len(tempi), float)

    o, e, s = draw(20000)
    truth = (o.sum() - e.sum()) / s.sum()
    reps = 300
    covered = sum(lo <= truth <= hi for lo, hi in (difference_interval(*draw(16))
                                                   for _ in range(reps)))
    assert binom.ppf(0.01, reps, 0.95) <= covered <= reps, covered
    assert all(np.isnan(difference_interval(*draw(3))))   # too few tracks: no interval
