"""predict(): the training stages end to end on real WAV files, and the ``predict`` CLI."""

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

from conftest import SAMPLE_RATE, click_track
from tfcnn.audio import load_audio
from tfcnn.checkpoint import load_checkpoint, save_checkpoint
from tfcnn.config import CLASSES, FRONT_END, PRESETS
from tfcnn.errors import AudioError, CheckpointError, ConfigError
from tfcnn.evaluate import song_vote
from tfcnn.features import log_mel, to_patches
from tfcnn.inference import default_checkpoint, predict, predict_features, song_probabilities
from tfcnn.locations import ENV_CHECKPOINTS_DIR
from tfcnn.models import build_model

REPO = Path(__file__).resolve().parent.parent


#: The metadata training writes into a fold's checkpoint (tfcnn.train), in small.
TRAINED_ON = {"fold": 0, "protocol": "clean", "dataset": {"name": "SynthBallroom", "kind": "synth"},
              "trained_on": "trained on SynthBallroom (synthetic)"}
MODEL = {"arch": "timefreq", "dataset": "SynthBallroom", "dataset_kind": "synth",
         "trained_on": "trained on SynthBallroom (synthetic)", "protocol": "clean",
         "preset": "quick", "fold": 0, "test_accuracy": 87.5, "n_test_songs": 48}
MODEL_LINE = ("timefreq model trained on SynthBallroom (synthetic); protocol clean, preset "
              "quick; fold 0 test accuracy 87.50 % on its 48 held-out test songs")


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> dict[str, Path]:
    """An untrained-but-saved timefreq checkpoint and a few real audio files."""
    root = tmp_path_factory.mktemp("inference")
    torch.manual_seed(0)
    model = build_model("timefreq")
    ckpt = save_checkpoint(root / "tf.safetensors", model, classes=CLASSES, norm_mean=-2.0,
                           norm_std=0.5, front_end=FRONT_END, train_config=PRESETS["quick"],
                           metrics={"accuracy": 87.5, "n_tracks": 48, "fold": 0},
                           extra=TRAINED_ON)
    good = root / "good.wav"
    sf.write(good, click_track(bpm=120, seconds=6.0), SAMPLE_RATE, subtype="PCM_16")
    stereo = root / "stereo-22k.flac"
    y = click_track(bpm=100, seconds=5.0, sample_rate=22050, pitch_hz=600.0)
    sf.write(stereo, np.stack([y, 0.5 * y], axis=1), 22050)
    short = root / "short.wav"
    sf.write(short, click_track(bpm=120, seconds=1.5), SAMPLE_RATE, subtype="PCM_16")
    corrupt = root / "corrupt.wav"
    corrupt.write_bytes(b"RIFF\x00\x10\x00\x00WAVEjunk" + os.urandom(200))
    silent = root / "silent.wav"
    sf.write(silent, np.zeros(5 * SAMPLE_RATE, dtype=np.float32), SAMPLE_RATE, subtype="PCM_16")
    return {"ckpt": ckpt, "good": good, "stereo": stereo, "short": short, "corrupt": corrupt,
            "silent": silent}


def test_predict_matches_the_manual_pipeline(files):
    ckpt = load_checkpoint(files["ckpt"])
    pred = predict(files["good"], ckpt)

    # the same stages by hand: load → log-mel → normalise → patches → model → softmax → vote
    y = load_audio(files["good"])
    spec = log_mel(y, SAMPLE_RATE)                                  # (40, T)
    patches = to_patches((spec + 2.0) / 0.5)                        # (n, 40, 80)
    with torch.no_grad():
        logits = ckpt.model(torch.from_numpy(patches).unsqueeze(1))
    probs = torch.softmax(logits, dim=1).numpy()

    n_frames = 1 + y.size // FRONT_END.hop_length
    assert pred.patch_probs.shape == (n_frames // 80, 8) == probs.shape
    np.testing.assert_allclose(pred.patch_probs, probs, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(pred.patch_probs.sum(axis=1), 1.0, atol=1e-5)
    np.testing.assert_allclose(pred.probabilities, probs.mean(axis=0), rtol=1e-5)
    assert pred.probabilities.sum() == pytest.approx(1.0, abs=1e-5)
    assert pred.prediction == CLASSES[song_vote(probs)] == CLASSES[pred.index]
    assert pred.classes == CLASSES
    assert pred.path == str(files["good"])
    np.testing.assert_array_equal(pred.log_mel, spec)
    assert pred.patch_seconds == pytest.approx(80 * 1024 / 44100)
    d = pred.to_dict()
    assert set(d) == {"path", "prediction", "probabilities", "patches", "model"}
    assert list(d["probabilities"]) == list(CLASSES) and d["patches"] == pred.n_patches


def test_predict_accepts_a_path_to_the_checkpoint_and_bytes(files):
    a = predict(files["good"], files["ckpt"])
    b = predict(files["good"].read_bytes(), str(files["ckpt"]), name="upload.wav")
    assert b.path == "upload.wav"
    np.testing.assert_array_equal(a.patch_probs, b.patch_probs)


def test_predict_features_is_the_same_path(files):
    ckpt = load_checkpoint(files["ckpt"])
    spec = log_mel(load_audio(files["good"]), SAMPLE_RATE)
    np.testing.assert_array_equal(predict_features(spec, ckpt, name="x").patch_probs,
                                  predict(files["good"], ckpt).patch_probs)


def test_other_formats_rates_and_channels(files):
    pred = predict(files["stereo"], files["ckpt"])
    assert pred.n_patches == (1 + -(-(5 * SAMPLE_RATE) // 1024)) // 80
    assert pred.probabilities.sum() == pytest.approx(1.0, abs=1e-5)


def test_too_short_audio_mentions_one_patch(files):
    with pytest.raises(AudioError, match=r"short\.wav: .*too short.*1\.81 s"):
        predict(files["short"], files["ckpt"])
    ckpt = load_checkpoint(files["ckpt"])
    with pytest.raises(AudioError, match=r"tiny: .*too short.*1\.81 s"):
        predict_features(np.zeros((40, 79), np.float32), ckpt, name="tiny")


def test_corrupt_audio_names_the_file(files):
    with pytest.raises(AudioError, match=r"corrupt\.wav"):
        predict(files["corrupt"], files["ckpt"])


def reference_probabilities(model, spec: np.ndarray, *, mean: float, std: float,
                            patch_frames: int) -> np.ndarray:
    """The plain computation song_probabilities streams: normalise the whole log-mel, cut
    it into patches, run them through the model at once in eval mode, softmax."""
    x = to_patches((spec.astype(np.float32) - np.float32(mean)) / np.float32(std),
                   patch_frames=patch_frames)  # (n, n_mels, frames)
    model.eval()
    with torch.no_grad():
        logits = model(torch.from_numpy(np.ascontiguousarray(x)).unsqueeze(1))  # (n, classes)
    return torch.softmax(logits, dim=1).numpy()


def test_song_probabilities_batching_shapes_and_mode():
    torch.manual_seed(0)
    model = build_model("time")
    model.train()
    spec = np.random.default_rng(0).standard_normal((40, 7 * 80 + 13)).astype(np.float32)
    kw = dict(mean=0.0, std=1.0, patch_frames=80)
    a, = song_probabilities(model, [spec], batch_size=256, **kw)
    b, = song_probabilities(model, [spec], batch_size=2, **kw)
    assert a.shape == (7, 8) and isinstance(a, np.ndarray)
    np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-7)  # eval mode: no dropout noise
    np.testing.assert_allclose(a.sum(axis=1), 1.0, atol=1e-5)
    assert model.training, "the caller's mode is restored"
    with pytest.raises(ConfigError, match=r"expects spectrograms \(n_mels, T\)"):
        song_probabilities(model, [np.zeros((2, 40, 80))], **kw)
    with pytest.raises(ConfigError, match="batch_size must be a positive integer"):
        song_probabilities(model, [spec], batch_size=0, **kw)


def test_song_probabilities_of_several_songs_equal_one_by_one(files):
    ckpt = load_checkpoint(files["ckpt"])
    specs = [log_mel(load_audio(files[k]), SAMPLE_RATE) for k in ("good", "stereo", "short")]
    kw = dict(mean=-2.0, std=0.5, patch_frames=80)
    together = song_probabilities(ckpt.model, specs, batch_size=3, **kw)
    assert [p.shape[0] for p in together] == [s.shape[1] // 80 for s in specs]
    assert together[2].shape == (0, 8)  # shorter than one patch: no rows, no error
    for spec, probs in zip(specs, together):
        alone, = song_probabilities(ckpt.model, [spec], **kw)
        np.testing.assert_allclose(probs, alone, rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(together[0], predict(files["good"], ckpt).patch_probs,
                               rtol=1e-5, atol=1e-7)  # predict takes this path
    assert song_probabilities(ckpt.model, [], **kw) == []


def test_streamed_song_probabilities_equal_the_materialised_patches(files, tmp_path):
    """Batches normalised from views of the log-mel give the numbers of the whole
    normalised patch array run through the model (the implementation before streaming),
    for real files, several songs sharing batches, and a 5-minute file."""
    long_file = tmp_path / "long.flac"
    sf.write(long_file, np.tile(click_track(bpm=128, seconds=30.0), 10), SAMPLE_RATE)
    ckpt = load_checkpoint(files["ckpt"])
    specs = [log_mel(load_audio(p), SAMPLE_RATE)
             for p in (files["good"], files["stereo"], files["short"], long_file)]
    kw = dict(mean=-2.0, std=0.5, patch_frames=80)
    for batch_size in (256, 7):
        reference = np.concatenate([reference_probabilities(ckpt.model, s, **kw)
                                    for s in specs])  # (n, 8)
        streamed = np.concatenate(song_probabilities(ckpt.model, specs, batch_size=batch_size,
                                                     **kw))
        assert streamed.shape == reference.shape == (sum(s.shape[1] // 80 for s in specs), 8)
        np.testing.assert_allclose(streamed, reference, rtol=0, atol=1e-6)
    np.testing.assert_allclose(predict(long_file, ckpt).patch_probs,
                               reference_probabilities(ckpt.model, specs[3], **kw),
                               rtol=0, atol=1e-6)


def test_default_checkpoint(tmp_path, monkeypatch):
    with pytest.raises(ConfigError, match="unknown architecture 'cnn'"):
        default_checkpoint("cnn")
    monkeypatch.setenv(ENV_CHECKPOINTS_DIR, str(tmp_path))
    with pytest.raises(CheckpointError, match=r"synth-time\.safetensors.*make checkpoints"):
        default_checkpoint("time")
    (tmp_path / "synth-time.safetensors").write_bytes(b"x")
    assert default_checkpoint("time") == tmp_path / "synth-time.safetensors"


# ---- the CLI, in a real subprocess ----------------------------------------------------------
def _cli(*args) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "tfcnn", "predict", *map(str, args)],
                          cwd=REPO, capture_output=True, text=True, timeout=120)


def test_cli_json_good_and_corrupt_file(files):
    proc = _cli(files["good"], files["corrupt"], "--checkpoint", files["ckpt"], "--json")
    assert proc.returncode == 2
    errors = proc.stderr.strip().splitlines()
    assert len(errors) == 1 and errors[0].startswith(f"error: {files['corrupt']}: ")
    assert "Traceback" not in proc.stderr
    out = json.loads(proc.stdout)
    assert len(out) == 1 and out[0]["path"] == str(files["good"])
    expected = predict(files["good"], files["ckpt"])
    assert out[0]["prediction"] == expected.prediction
    assert out[0]["patches"] == expected.n_patches
    assert out[0]["model"] == MODEL
    assert sum(out[0]["probabilities"].values()) == pytest.approx(1.0, abs=1e-5)
    for c, p in zip(CLASSES, expected.probabilities):
        assert out[0]["probabilities"][c] == pytest.approx(float(p), abs=1e-6)


def test_cli_text_short_file_and_broken_checkpoint(files, tmp_path):
    proc = _cli(files["short"], files["good"], "--checkpoint", files["ckpt"])
    assert proc.returncode == 2
    errors = proc.stderr.strip().splitlines()
    assert len(errors) == 1 and errors[0].startswith(f"error: {files['short']}: ")
    assert "1.81 s" in errors[0]
    expected = predict(files["good"], files["ckpt"])
    assert f"{files['good']}: {expected.prediction}" in proc.stdout
    assert all(c in proc.stdout for c in CLASSES)
    assert f"model: {MODEL_LINE}" in proc.stdout

    broken = tmp_path / "broken.safetensors"
    broken.write_bytes(files["ckpt"].read_bytes()[:500])
    proc = _cli(files["good"], "--checkpoint", broken)
    assert proc.returncode == 2 and proc.stdout == ""
    assert proc.stderr.strip().splitlines() == [proc.stderr.strip()]
    assert proc.stderr.startswith(f"error: {broken}: ")


def test_cli_refuses_a_silent_file_as_the_app_does(files):
    from tfcnn.assessment import classify

    proc = _cli(files["silent"], "--checkpoint", files["ckpt"], "--json")
    assert proc.returncode == 2 and json.loads(proc.stdout) == []
    (line,) = proc.stderr.splitlines()
    assert line == f"error: {files['silent']}: audio is silent (peak below -100 dBFS); " \
                   "nothing to classify"
    # the app's path (tfcnn.ui.assessment.classify) is this one call, with its limit
    with pytest.raises(AudioError, match="silent") as app_error:
        classify(files["silent"].read_bytes(), files["ckpt"], name=str(files["silent"]),
                 max_duration_s=600.0, keep_signal=True)
    assert f"error: {app_error.value}" == line  # the one check, shared


def test_prediction_states_what_the_model_was_trained_on(files, tmp_path):
    from tfcnn.checkpoint import describe_provenance, load_checkpoint

    pred = predict(files["good"], files["ckpt"])
    assert pred.model == MODEL and describe_provenance(pred.model) == MODEL_LINE
    bare = save_checkpoint(tmp_path / "bare.safetensors", build_model("time"), classes=CLASSES,
                           norm_mean=0.0, norm_std=1.0, front_end=FRONT_END)
    assert describe_provenance(load_checkpoint(bare).provenance) == \
        "time model; its file does not say what it was trained on"
