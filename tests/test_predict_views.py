"""Predict page helpers (tfcnn.ui.assessment) and its plots, on real files written here."""

from __future__ import annotations

import io
import json
import re
import subprocess
import sys
from pathlib import Path

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
from tfcnn.assessment import TOO_FEW_PATCHES, ballroom_tempo_ranges, classify, tempo_match
from tfcnn.interpret import class_tempi, class_tempo_ranges
from tfcnn.tempo import tempo_resolution_bpm
from tfcnn.ui import assessment as views

from conftest import SAMPLE_RATE, click_track

REPO = Path(__file__).resolve().parents[1]


def wav(*, bpm: float, seconds: float) -> bytes:
    """A click track as WAV bytes."""
    import soundfile as sf

    buffer = io.BytesIO()
    sf.write(buffer, click_track(bpm=bpm, seconds=seconds), SAMPLE_RATE, format="WAV")
    return buffer.getvalue()


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
    assert "too short" in table.loc[1, "error"] and table.loc[1, "prediction"] == ""
    assert table.loc[1, "status"] == "error" and table.loc[2, "error"] == ""
    # what the page shows has no "None" and no "nan" cell: a missing number is blank
    shown = views.shown_table(table).to_html()
    assert "None" not in shown and "nan" not in shown.lower()
    # the rule that decided, with the model's cutoff beside the song's value
    assert table.loc[2, "why"] == results[2].assessment.why()
    assert table.loc[2, "confidence cutoff (%)"] == 50.0  # uncalibrated: below 50 %
    assert results[2].signal.shape == (4 * SAMPLE_RATE,) and results[2].seconds > 0
    # what the page shows is what `python -m tfcnn predict` computes
    core = classify(files["b.wav"], ckpt, name="b.wav")
    assert core.to_dict() == {**results[2].prediction.to_dict(),
                              **results[2].assessment.to_dict()}
    back = pd.read_csv(io.BytesIO(views.results_csv(table)))
    assert back["confidence (%)"].dtype == float and back["patches"].iloc[2] == 2
    assert back["tempo (BPM)"].iloc[2] == pytest.approx(120, rel=0.04)


def test_tempo_match_uses_the_5_95_range_widened_by_the_resolution():
    ranges = ballroom_tempo_ranges()
    assert ranges.attrs["quantiles"] == (0.05, 0.95)
    # a real Ballroom waltz (83.4 BPM) lies below Waltz's interquartile range (84-87) but
    # inside its 5-95 % range
    assert 83.4 < class_tempo_ranges(class_tempi("ballroom")).loc["Waltz", "low"]
    assert "Waltz" in tempo_match(83.4).classes
    # the tolerance is the estimate's resolution at that tempo, and it widens the range
    low = float(ranges.loc["Waltz", "low"])
    tolerance = tempo_resolution_bpm(low)
    assert 0.3 < tolerance < 1.5
    assert "Waltz" in tempo_match(low - 0.9 * tolerance).classes
    assert "Waltz" not in tempo_match(low - 1.1 * tempo_resolution_bpm(low - 1.1 * tolerance)
                                      ).classes
    slow = tempo_match(65.0)  # below every class's range; its double is inside some
    assert slow.classes == () and slow.text().startswith("inside no class's range; at half")
    assert "Tango" in slow.octave_classes  # 130 BPM


def test_tempo_sentence_names_classes_the_tolerance_and_the_predicted_range(tmp_path):
    ckpt = load_checkpoint(_save(tmp_path / "m.safetensors"))
    a = classify(wav(bpm=86.0, seconds=12.0), ckpt).assessment
    ranges = views.ballroom_tempo_ranges()
    text = views.tempo_sentence(a, "Tango", ranges)
    assert text.startswith(f"Estimated tempo ≈ {a.tempo.bpm:.0f} BPM (beat strength "
                           f"{a.tempo.strength:.2f}): inside the range of ")
    assert "Waltz" in text and "5%–95% range of real Ballroom tempi" in text
    assert f"±{a.tempo_match.tolerance_bpm:.1f} BPM" in text
    assert f"The predicted Tango spans {ranges.loc['Tango', 'low']:.0f}" in text


def test_a_one_patch_clip_is_never_confident(tmp_path):
    """Even a model whose cutoffs flag nothing calls a one-patch clip unsure, and says why."""
    ckpt = load_checkpoint(_save(tmp_path / "m.safetensors",
                                 calibration={"temperature": 1.0, "unsure_threshold": 0.0,
                                              "beat_threshold": 0.0, "n_songs": 40}))
    short = classify(wav(bpm=120, seconds=2.0), ckpt).assessment
    assert short.n_patches == 1 and short.unsure and short.status == "unsure"
    assert short.reasons == (TOO_FEW_PATCHES,)
    assert short.why() == "patches 1 < 2"
    longer = classify(wav(bpm=120, seconds=6.0), ckpt).assessment
    assert longer.n_patches == 3 and not longer.unsure
    assert longer.why() == (f"confidence {longer.confidence:.1%} ≥ 0.0%; beat strength "
                            f"{longer.tempo.strength:.2f} ≥ 0.00; patches 3 ≥ 2")
    assert "fewer than 2 patches" in longer.rule()


def test_predict_cli_prints_the_rule_that_fired_and_the_beat_strength(tmp_path):
    import soundfile as sf

    model = _save(tmp_path / "m.safetensors",
                  calibration={"temperature": 1.0, "unsure_threshold": 0.0,
                               "beat_threshold": 0.0, "n_songs": 40})
    short = tmp_path / "two seconds.wav"
    sf.write(short, click_track(bpm=120, seconds=2.0), SAMPLE_RATE)
    out = subprocess.run([sys.executable, "-m", "tfcnn", "predict", str(short),
                          "--checkpoint", str(model)], capture_output=True, text=True,
                         timeout=120, check=True, cwd=REPO).stdout
    lines = out.splitlines()
    assert lines[2] == "  unsure: patches 1 < 2"
    assert lines[3].startswith("  rule: unsure when the calibrated probability")
    assert lines[3].endswith("always unsure with fewer than 2 patches (one patch is no vote)")
    assert re.fullmatch(r"  tempo ≈ \d+\.\d BPM, beat strength \d\.\d\d: inside .*"
                        r"\(a class matches when its 5%–95% range .*\)", lines[4]), lines[4]


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
