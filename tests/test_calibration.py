"""Calibrated confidence: temperature scaling, the unsure rules, checkpoints old and new."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from tfcnn.assessment import assess
from tfcnn.calibration import (UNCALIBRATED_UNSURE_THRESHOLD, Calibration, fit_calibration,
                               fit_temperature, temper)
from tfcnn.calibration import (Reliability, expected_calibration_error, model_reliability,
                               reliability)
from tfcnn.checkpoint import load_checkpoint, save_checkpoint, update_metadata
from tfcnn.config import CLASSES, FRONT_END, PRESETS
from tfcnn.errors import CheckpointError, ConfigError
from tfcnn.features import log_mel
from tfcnn.inference import predict, predict_features
from tfcnn.models import build_model
from tfcnn.datasets import load_dataset
from tfcnn.runs import FOLD_MODEL_FILE, fold_dir, read_config, read_fold_result, read_results
from tfcnn.synth.nondance import NONDANCE_KINDS, render_nondance
from tfcnn.request import RunRequest
from tfcnn.train import train_run

from conftest import SAMPLE_RATE, click_track

ROOT = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "OMP_NUM_THREADS": "1"}


def softmax(z):
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def test_temper_keeps_the_argmax_and_flattens_with_temperature():
    p = softmax(np.random.default_rng(0).normal(0, 3, (50, 8)))
    np.testing.assert_allclose(temper(p, 1.0), p, atol=1e-9)
    hot = temper(p, 4.0)
    assert (hot.argmax(axis=1) == p.argmax(axis=1)).all()
    assert (hot.max(axis=1) < p.max(axis=1)).all()
    np.testing.assert_allclose(hot.sum(axis=1), 1.0)


@pytest.mark.parametrize("true_t", [0.5, 2.5])
def test_fit_temperature_recovers_a_planted_temperature(true_t):
    """Labels drawn from softmax(z / T): the fit finds T from softmax(z) alone."""
    rng = np.random.default_rng(1)
    z = rng.normal(0, 2.0, (6000, 8))
    truth = softmax(z / true_t)
    labels = np.array([rng.choice(8, p=row) for row in truth])
    t, before, after = fit_temperature(softmax(z), labels)
    assert abs(t / true_t - 1) < 0.1, t
    assert after < before


def test_threshold_flags_about_the_quantile_of_validation_songs():
    rng = np.random.default_rng(2)
    songs = [softmax(rng.normal(0, 2, (10, 8)) + 3 * np.eye(8)[k % 8]) for k in range(200)]
    labels = [k % 8 for k in range(200)]
    cal = fit_calibration(songs, labels)
    conf = [temper(s, cal.temperature).mean(axis=0)[s.sum(axis=0).argmax()] for s in songs]
    assert 0.03 <= np.mean(np.array(conf) < cal.unsure_threshold) <= 0.06
    both = fit_calibration(songs, labels, beat_strengths=rng.uniform(0, 1, 200))
    assert both.unsure_threshold < cal.unsure_threshold  # each rule takes half the share
    assert 0.0 < both.beat_threshold < 0.06


def test_uncalibrated_fallback_and_bad_metadata():
    cal = Calibration.from_dict(None)
    assert (cal.temperature, cal.unsure_threshold, cal.calibrated) == (
        1.0, UNCALIBRATED_UNSURE_THRESHOLD, False)
    assert "uncalibrated" in cal.rule()
    with pytest.raises(ConfigError, match="temperature"):
        Calibration.from_dict({"temperature": -1, "unsure_threshold": 0.3})
    with pytest.raises(ConfigError, match=r"\(2,\) labels for 3 patches"):
        fit_temperature(np.full((3, 8), 1 / 8), [0, 1])


@pytest.fixture(scope="module")
def old_checkpoint(tmp_path_factory):
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("old") / "old.safetensors"
    save_checkpoint(path, build_model("time"), classes=CLASSES, norm_mean=0.1, norm_std=0.3,
                    front_end=FRONT_END, train_config=PRESETS["quick"], metrics={})
    return path


def test_update_metadata_keeps_weights_and_refuses_model_fields(old_checkpoint, tmp_path):
    out = tmp_path / "cal.safetensors"
    update_metadata(old_checkpoint, {"calibration": {"temperature": 2.0,
                                                     "unsure_threshold": 0.4}}, out=out)
    a, b = load_checkpoint(old_checkpoint), load_checkpoint(out)
    assert a.calibration is None and b.calibration["temperature"] == 2.0
    for (k, v), w in zip(a.model.state_dict().items(), b.model.state_dict().values()):
        assert torch.equal(v, w), k
    with pytest.raises(ConfigError, match="norm_mean"):
        update_metadata(old_checkpoint, {"norm_mean": 0.0})


def test_old_checkpoint_predicts_uncalibrated(old_checkpoint):
    ckpt = load_checkpoint(old_checkpoint)
    pred = predict_features(log_mel(click_track(bpm=120, seconds=8.0), SAMPLE_RATE), ckpt)
    a = assess(pred, ckpt)
    assert not a.calibration.calibrated and a.status.endswith("(uncalibrated)")
    np.testing.assert_allclose(a.probabilities, pred.probabilities, atol=1e-6)
    assert a.unsure == (a.confidence < UNCALIBRATED_UNSURE_THRESHOLD)


# --------------------------------------------------------------------------- a real fold


@pytest.fixture(scope="module")
def calibrated_run(folder_dataset, tmp_path_factory):
    torch.set_num_threads(1)
    out = tmp_path_factory.mktemp("calrun") / "time"
    train_run(RunRequest(folder_dataset, "time", n_folds=3, only_folds=[0], preset="quick",
                         protocol="clean", device="cpu", seed=0, epochs=30), out,
              sequential=True)
    return out


def test_training_stores_a_calibration_fitted_on_validation_songs(calibrated_run):
    ckpt = load_checkpoint(fold_dir(calibrated_run, 0) / FOLD_MODEL_FILE)
    cal = Calibration.from_dict(ckpt.calibration)
    assert cal.calibrated and cal.n_songs >= 1 and cal.temperature > 0
    assert cal.beat_threshold is not None and cal.n_patches >= cal.n_songs


def test_speech_and_noise_are_flagged_and_a_clear_beat_is_not(calibrated_run):
    """The click classes have strong beats; synthesised speech and pink noise have none."""
    ckpt = load_checkpoint(fold_dir(calibrated_run, 0) / FOLD_MODEL_FILE)
    for kind in ("speech", "pink"):
        spec = log_mel(render_nondance(kind, duration_s=8.0, seed=3), SAMPLE_RATE)
        a = assess(predict_features(spec, ckpt), ckpt)
        assert "no steady beat" in a.reasons, (kind, a.tempo.strength)
    clicks = assess(predict_features(log_mel(click_track(bpm=110, seconds=8.0), SAMPLE_RATE),
                                     ckpt), ckpt)
    assert "no steady beat" not in clicks.reasons


def _cli(*args):
    return subprocess.run([sys.executable, "-m", "tfcnn", *map(str, args)], cwd=ROOT,
                          capture_output=True, text=True, timeout=180, env=ENV)


def test_calibrate_cli_rebuilds_the_split_and_writes_the_calibration(calibrated_run,
                                                                     folder_dataset, tmp_path):
    model = fold_dir(calibrated_run, 0) / FOLD_MODEL_FILE
    stored = load_checkpoint(model).calibration
    out = tmp_path / "posthoc.safetensors"
    r = _cli("calibrate", model, folder_dataset, "--out", out)
    assert r.returncode == 0, r.stderr
    assert "temperature" in r.stdout
    posthoc = load_checkpoint(out).calibration
    # the same validation songs as at training time (full spectrogram vs joined patches only
    # moves the beat threshold a little)
    assert posthoc["n_songs"] == stored["n_songs"]
    assert posthoc["temperature"] == pytest.approx(stored["temperature"], rel=1e-3)
    bad = _cli("calibrate", model, folder_dataset, "--seed", "5", "--out", out)
    assert bad.returncode == 2
    assert bad.stderr.count("\n") == 1 and "other test songs" in bad.stderr


def test_predict_json_carries_calibration_and_tempo(calibrated_run, tmp_path):
    model = fold_dir(calibrated_run, 0) / FOLD_MODEL_FILE
    wav = tmp_path / "clicks.wav"
    sf.write(wav, click_track(bpm=100, seconds=10.0), SAMPLE_RATE)
    r = _cli("predict", wav, "--checkpoint", model, "--json")
    assert r.returncode == 0, r.stderr
    (row,) = json.loads(r.stdout)
    assert abs(row["tempo_bpm"] / 100 - 1) < 0.04
    assert set(row["calibrated_probabilities"]) == set(CLASSES)
    assert row["calibrated"] is True and isinstance(row["unsure"], bool)
    assert sum(row["calibrated_probabilities"].values()) == pytest.approx(1.0)


def test_nondance_kinds_render():
    for kind in NONDANCE_KINDS:
        y = render_nondance(kind, duration_s=2.0, seed=0)
        assert y.shape == (88200,) and y.dtype == np.float32 and np.abs(y).max() == pytest.approx(0.5)
    with pytest.raises(ConfigError, match="valid kinds"):
        render_nondance("opera")


# --------------------------------------------------------------------------- measured on test songs


def test_ece_on_a_hand_checked_example():
    # bin 0.9-1.0: confidences 0.95, 0.95, right 1 of 2 → gap |0.5 − 0.95| = 0.45 (2 songs)
    # bin 0.6-0.7: 0.65, right → gap 0.35 (1 song); ECE = (2·0.45 + 0.35) / 3
    ece = expected_calibration_error([0.95, 0.95, 0.65], [True, False, True])
    assert ece == pytest.approx((2 * 0.45 + 0.35) / 3)
    assert expected_calibration_error([1.0, 0.0], [True, False]) == 0.0  # 1.0 in the top bin
    with pytest.raises(ConfigError, match="confidences must lie in"):
        expected_calibration_error([1.2], [True])
    with pytest.raises(ConfigError, match="one correctness per confidence"):
        expected_calibration_error([0.5, 0.6], [True])


def test_reliability_null_holds_for_calibrated_models_and_flags_overconfident_ones():
    """Plant nothing: a calibrated model's ECE exceeds the stated null band about 5 % of the
    time. Plant over-confidence of 15 points: it is flagged nearly always on 480 songs."""
    rng = np.random.default_rng(5)
    flagged_null, flagged_over = [], []
    for _ in range(60):
        conf = rng.uniform(0.3, 1.0, 480)
        rel = reliability(conf, rng.random(480) < conf, n_boot=300, seed=int(rng.integers(1e6)))
        flagged_null.append(not rel.consistent_with_calibration)
        over = reliability(conf, rng.random(480) < conf - 0.15, n_boot=300,
                           seed=int(rng.integers(1e6)))
        flagged_over.append(not over.consistent_with_calibration)
        assert over.mean_confidence - over.accuracy > 0.08
    assert np.mean(flagged_null) <= 0.15
    assert np.mean(flagged_over) >= 0.95
    assert "over-confident by" in over.sentence() and "ECE" in over.sentence()
    again = type(over).from_dict(json.loads(json.dumps(over.to_dict())))
    assert again == over


def test_a_run_records_test_confidences_and_measures_its_calibration(calibrated_run):

    fold = read_fold_result(calibrated_run, 0)
    n = fold["n_test_tracks"]
    assert len(fold["test_confidence"]) == len(fold["test_labels"]) == n
    assert fold["test_confidence_calibrated"] is True
    assert all(1 / len(CLASSES) <= c <= 1 for c in fold["test_confidence"])
    # the confidence recorded is the one Predict shows for that song
    ckpt = load_checkpoint(fold_dir(calibrated_run, 0) / FOLD_MODEL_FILE)
    tracks = load_dataset(read_config(calibrated_run)["data"]).tracks.set_index("track")
    path = tracks.loc[fold["test_track_ids"][0], "path"]
    shown = assess(predict(path, ckpt), ckpt).confidence
    assert shown == pytest.approx(fold["test_confidence"][0], abs=1e-4)
    rel = Reliability.from_dict(read_results(calibrated_run)["reliability"])
    assert rel.n_songs == n and rel.accuracy == pytest.approx(fold["accuracy"] / 100)
    assert model_reliability(fold_dir(calibrated_run, 0) / FOLD_MODEL_FILE) == rel


def test_a_shipped_model_finds_its_measurement_by_name():
    from tfcnn.calibration import read_reliabilities
    from tfcnn.locations import CHECKPOINTS_DIR, SHIPPED_RELIABILITY
    from tfcnn.ui.calibration_view import model_line

    shipped = CHECKPOINTS_DIR / SHIPPED_RELIABILITY
    rel = model_reliability(CHECKPOINTS_DIR / "synth-time.safetensors", shipped=shipped)
    assert rel == read_reliabilities(shipped)["synth-time"] and rel.n_songs == 48
    assert model_line(CHECKPOINTS_DIR / "synth-time.safetensors", shipped_file=shipped) == (
        f"Calibration measured: {rel.sentence()}.")
    assert read_reliabilities(CHECKPOINTS_DIR / "no-such.json") == {}


def test_results_panel_offers_table_runs_shipped_models_and_runs(tmp_path):
    from tfcnn.ui.calibration_view import measured

    rel = reliability([0.9, 0.6, 0.8, 0.7], [True, False, True, True], n_boot=50)
    table = tmp_path / "table1.json"
    table.write_text(json.dumps({"runs": {"time": {"reliability": rel.to_dict()},
                                          "frequency": {"per_fold": [50.0, 60.0]}}}))
    run = tmp_path / "run"
    run.mkdir()
    (run / "results.json").write_text(json.dumps({"reliability": rel.to_dict()}))
    shipped = tmp_path / "reliability.json"
    shipped.write_text(json.dumps({"models": {"synth-time": rel.to_dict()}}))
    found = measured(shipped, {"my run": run}, shipped_table=table)
    assert list(found) == ["shipped time (all folds)", "shipped time (fold 0)", "my run"]
    assert all(r == rel for r in found.values())
