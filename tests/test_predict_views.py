"""Predict page helpers (tfcnn.ui.assessment) and its plots, on real files written here."""

from __future__ import annotations

import io
import json

import numpy as np
import pandas as pd
import pytest
import torch

from tfcnn import plots
from tfcnn.checkpoint import load_checkpoint, save_checkpoint
from tfcnn.config import CLASSES, FRONT_END, PRESETS
from tfcnn.datasets import load_dataset
from tfcnn.folds import make_folds
from tfcnn.models import build_model
from tfcnn.runs import CONFIG_FILE, FOLD_MODEL_FILE, fold_dir
from tfcnn.assessment import classify
from tfcnn.ui import assessment as views

from conftest import SAMPLE_RATE, click_track


def _save(path, *, extra=None, calibration=None, accuracy=87.5):
    torch.manual_seed(0)
    path.parent.mkdir(parents=True, exist_ok=True)
    return save_checkpoint(path, build_model("time"), classes=CLASSES, norm_mean=0.1,
                           norm_std=0.3, front_end=FRONT_END, train_config=PRESETS["quick"],
                           metrics={"accuracy": accuracy}, extra=extra or {},
                           calibration=calibration)


def test_checkpoint_labels_are_readable(tmp_path):
    shipped = _save(tmp_path / "checkpoints" / "synth-time.safetensors", extra={"fold": 0})
    assert views.checkpoint_label(shipped) == (
        "time · shipped synth-time · fold 0 · test 87.5 % · uncalibrated")
    run = tmp_path / "runs" / "my-run"
    run.mkdir(parents=True)
    (run / CONFIG_FILE).write_text("{}")
    model = _save(fold_dir(run, 3) / FOLD_MODEL_FILE, extra={"fold": 3},
                  calibration={"temperature": 1.5, "unsure_threshold": 0.4})
    assert views.checkpoint_label(model) == (
        "time · run my-run · fold 3 · test 87.5 % · calibrated")
    broken = tmp_path / "broken.safetensors"
    broken.write_bytes(b"nonsense")
    assert views.checkpoint_label(broken) == "broken.safetensors (unreadable)"


def test_several_files_table_and_csv_keep_numbers_as_numbers(tmp_path):
    import soundfile as sf

    ckpt = load_checkpoint(_save(tmp_path / "m.safetensors"))
    results, files = [], {}
    for name, seconds in (("a.wav", 6.0), ("short.wav", 1.0), ("b.wav", 4.0)):
        buffer = io.BytesIO()
        sf.write(buffer, click_track(bpm=120, seconds=seconds), SAMPLE_RATE, format="WAV")
        files[name] = buffer.getvalue()
        results.append(views.classify(files[name], name, ckpt, max_duration_s=5.0))
    table = views.results_table(results)
    assert list(table.columns) == list(views.TABLE_COLUMNS)
    assert table["file"].tolist() == ["a.wav", "short.wav", "b.wav"]
    # the page's limit is the core's parameter: a.wav (6 s) is refused, before decoding
    assert table.loc[0, "error"] == "a.wav: audio is 0.1 min long; the limit is 0 min"
    assert "too short" in table.loc[1, "error"] and pd.isna(table.loc[1, "prediction"])
    assert results[2].signal.shape == (4 * SAMPLE_RATE,) and results[2].seconds > 0
    # what the page shows is what `python -m tfcnn predict` computes
    core = classify(files["b.wav"], ckpt, name="b.wav")
    assert core.to_dict() == {**results[2].prediction.to_dict(),
                              **results[2].assessment.to_dict()}
    back = pd.read_csv(io.BytesIO(views.results_csv(table)))
    assert back["confidence (%)"].dtype == float and back["patches"].iloc[2] == 2
    assert back["tempo (BPM)"].iloc[2] == pytest.approx(120, rel=0.04)


def test_tempo_sentence_names_classes_and_the_predicted_range():
    ranges = views.ballroom_tempo_ranges()
    waltz = ranges.loc["Waltz"]
    text = views.tempo_sentence(float(waltz["median"]), "Tango", ranges)
    assert "inside the range of" in text and "Waltz" in text
    assert f"The predicted Tango spans {ranges.loc['Tango', 'low']:.0f}" in text
    assert "inside no class's range" in views.tempo_sentence(300.0, "Jive", ranges)


def test_track_role_rebuilds_the_split(synth_dataset, tmp_path):
    dataset = load_dataset(synth_dataset)
    tracks = dataset.tracks
    folds = make_folds(tracks["label"].to_numpy(), groups=tracks["replica_group"].tolist(),
                       n_folds=3, seed=0, protocol="clean")
    ids = tracks["track"].astype(str).tolist()
    run = tmp_path / "run"
    run.mkdir()
    (run / CONFIG_FILE).write_text(json.dumps({"n_folds": 3, "seed": 0, "protocol": "clean"}))
    model = _save(fold_dir(run, 1) / FOLD_MODEL_FILE,
                  extra={"fold": 1, "protocol": "clean",
                         "test_track_ids": [ids[i] for i in folds[1].test]})
    f = folds[1]
    assert "held-out **test** song" in views.track_role(model, synth_dataset, ids[f.test[0]])
    assert "**validation** song" in views.track_role(model, synth_dataset, ids[f.val[0]])
    assert "**training** song" in views.track_role(model, synth_dataset, ids[f.train[0]])
    assert "not used" in views.track_role(model, synth_dataset, "no-such-track")
    (run / CONFIG_FILE).write_text(json.dumps({"n_folds": 3, "seed": 9, "protocol": "clean"}))
    other = _save(fold_dir(run, 2) / FOLD_MODEL_FILE,
                  extra={"fold": 1, "test_track_ids": [ids[i] for i in folds[1].test]})
    assert "unknown" in views.track_role(other, synth_dataset, ids[0])


def test_one_class_order_on_every_plot_and_a_one_patch_timeline():
    order = list(reversed(CLASSES))
    probs = np.full((1, 8), 1 / 8)
    bar = plots.class_probability_bar(probs[0], order)
    timeline = plots.patch_timeline(probs, order, patch_seconds=1.86)
    tempo = plots.tempo_ranges(views.ballroom_tempo_ranges(), tempo_bpm=120.0, classes=order)
    for fig in (bar, timeline, tempo):
        assert list(fig.layout.yaxis.categoryarray) == order
        assert fig.layout.yaxis.autorange == "reversed"
    assert list(timeline.layout.xaxis.range) == [0, 1.86]
    assert timeline.data[0].dx == 1.86
