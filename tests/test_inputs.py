"""The model's input options (a longer patch, a beat-synchronous input): one field each of
the run request, recorded in config.json and the checkpoint's front end, used alike by
training and prediction, sharing the paper input's feature cache; bad values refused in one
line naming them."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from tfcnn.__main__ import build_parser
from tfcnn.cache import front_end_key
from tfcnn.checkpoint import load_checkpoint
from tfcnn.config import FRONT_END, FrontEnd
from tfcnn.errors import ConfigError
from tfcnn.features import log_mel, model_input
from tfcnn.request import RunRequest, SweepRequest
from tfcnn.runs import read_config

from conftest import click_track

ROOT = Path(__file__).resolve().parents[1]

#: Each input option as request fields: the paper's, a two-bar patch with a filter as long as
#: it allows, and a beat-synchronous input (20 frames per beat: 4 beats per 80-frame patch,
#: so the 6 s click tracks of 70-212 BPM give at least one patch).
INPUTS = {
    "paper": {},
    "patch160": {"patch_frames": 160, "time_filter": (1, 160)},
    "beats20": {"frames_per_beat": 20},
}


def _parsed(command: str, argv: list[str]):
    return build_parser().parse_args([command, *argv])


@pytest.mark.parametrize("name", INPUTS)
def test_each_input_round_trips_through_argv_and_config_json(tmp_path, name):
    request = RunRequest(tmp_path, "time", n_folds=3, **INPUTS[name])
    assert RunRequest.from_args(_parsed("train", request.argv())) == request
    config = json.loads(json.dumps({**request.to_config(),
                                    "arch_params": request.arch_params,
                                    "front_end": request.front_end().to_dict()}))
    assert RunRequest.from_config(config) == request
    fe = request.front_end()
    assert fe.patch_frames == INPUTS[name].get("patch_frames", 80)
    assert fe.frames_per_beat == INPUTS[name].get("frames_per_beat")


def test_the_paper_input_is_the_default_and_writes_as_before(tmp_path):
    request = RunRequest(tmp_path, "time")
    assert request.patch_frames == FRONT_END.patch_frames == 80
    assert request.frames_per_beat is None and "--frames-per-beat" not in request.argv()
    assert request.front_end() == FRONT_END
    assert "frames_per_beat" not in FRONT_END.to_dict()  # checkpoint headers unchanged
    # the feature cache key of the paper's front end is the one before input options existed
    assert front_end_key(FRONT_END) == "75141bc71bba7e93"


def test_every_input_shares_the_log_mel_cache():
    """A patch width or beat-synchronous frames are cut from the cached log-mel: the cache
    key is the paper's, while a change of the log-mel itself changes it."""
    for fields in INPUTS.values():
        fe = RunRequest("/tmp", "time", **fields).front_end()
        assert front_end_key(fe) == front_end_key(FRONT_END)
    assert front_end_key(FrontEnd(n_mels=64)) != front_end_key(FRONT_END)


@pytest.mark.parametrize("bpm", [90.0, 150.0])
def test_beat_synchronous_frames_put_a_beat_every_n_frames(bpm):
    """A click track at any tempo, made beat-synchronous at 10 frames per beat, has its
    onsets 10 frames apart (the known answer), and frames spanning 60 / (bpm · 10) s."""
    fe = FrontEnd(frames_per_beat=10)
    spec = log_mel(click_track(bpm=bpm, seconds=20.0), 44100)
    made = model_input(spec, front_end=fe)
    assert made.bpm == pytest.approx(bpm, rel=0.02)
    assert made.frames.shape == (40, round(spec.shape[1] * 10 * made.bpm / 60
                                           / fe.frame_rate_hz))
    assert made.frame_seconds == pytest.approx(60.0 / (made.bpm * 10))
    onset = np.maximum(np.diff(made.frames.sum(axis=0)), 0.0)
    peaks = np.flatnonzero(onset > 0.5 * onset.max())
    starts = peaks[np.insert(np.diff(peaks) > 2, 0, True)]  # first frame of each onset
    assert np.median(np.diff(starts)) == pytest.approx(10, abs=0.6)
    # the paper's input is the log-mel itself
    same = model_input(spec, front_end=FRONT_END)
    assert same.frames is spec or np.array_equal(same.frames, spec)
    assert same.bpm is None


@pytest.mark.slow
@pytest.mark.parametrize("name", INPUTS)
def test_each_input_trains_and_predict_uses_the_same_input(folder_dataset, tmp_path, name):
    """One epoch of Time on the click set with each input: config.json and every checkpoint
    record it, and ``predict`` with a fold's checkpoint reproduces the fold's predictions
    (so prediction cut the same patches from the same frames)."""
    from tfcnn.datasets import load_dataset
    from tfcnn.inference import predict
    from tfcnn.train import train_run

    torch.set_num_threads(1)
    request = RunRequest(folder_dataset, "time", n_folds=3, epochs=1, device="cpu",
                         **INPUTS[name])
    out = tmp_path / name
    train_run(request, out, sequential=True)
    config = read_config(out)
    assert RunRequest.from_config(config) == request
    assert config["front_end"] == request.front_end().to_dict()
    assert config["arch_params"]["patch_frames"] == request.patch_frames
    ckpt = load_checkpoint(out / "fold-00" / "model.safetensors")
    assert ckpt.front_end == request.front_end()
    result = json.loads((out / "fold-00" / "result.json").read_text())
    tracks = load_dataset(folder_dataset).tracks.set_index("track")
    predictions = [predict(tracks.loc[t, "path"], ckpt) for t in result["test_track_ids"]]
    assert [ckpt.classes.index(p.prediction) for p in predictions] == result["predictions"]
    # the number of patches each song gave is the input's: 6 s at 43 frames/s is 259 frames
    spec_frames = 259
    n_patches = {p.patch_probs.shape[0] for p in predictions}
    if name == "paper":
        assert n_patches == {spec_frames // 80}
    elif name == "patch160":
        assert n_patches == {spec_frames // 160}
    else:  # 70-212 BPM at 20 frames per beat: from 140 to 424 frames, 1 to 5 patches
        assert len(n_patches) > 1 and min(n_patches) >= 1


def _cli(*args) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "tfcnn", *map(str, args)], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize("args, needle", [
    (["--patch-frames", "0"], "patch frames must be an integer in 1..1024 (paper: 80), got '0'"),
    (["--patch-frames", "long"], "got 'long'"),
    (["--patch-frames", "5000"], "got '5000'"),
    (["--frames-per-beat", "0"], "frames per beat must be an integer in 1..256 or 'off', got '0'"),
    (["--frames-per-beat", "fast"], "got 'fast'"),
    (["--patch-frames", "160", "--time-filter", "1x200"],
     "1x200 is 200 frames wide but a patch is 160 frames; the largest that fits is 1x160"),
])
def test_bad_input_values_give_one_error_line_naming_the_value(folder_dataset, tmp_path, args,
                                                               needle):
    proc = _cli("train", folder_dataset, "--arch", "time", "--folds", "3", "--device", "cpu",
                "--out", tmp_path / "x", *args)
    _one_error_line(proc, needle)
    assert not (tmp_path / "x").exists()


def _one_error_line(proc: subprocess.CompletedProcess, needle: str) -> None:
    """Exit 2 and one error line naming the value, no traceback (a value argparse reads
    is refused after the usage, as every option's; one the request checks, alone)."""
    errors = [line for line in proc.stderr.splitlines() if "error: " in line]
    assert proc.returncode == 2 and len(errors) == 1 and needle in errors[0], proc.stderr
    assert proc.stderr.strip().splitlines()[-1] == errors[0] and "Traceback" not in proc.stderr


def test_bad_input_values_in_a_sweep_grid_give_one_error_line(folder_dataset, tmp_path):
    proc = _cli("sweep", folder_dataset, "--arch", "time", "--folds", "3",
                "--frames-per-beat", "off,x", "--out", tmp_path / "s")
    _one_error_line(proc, "--frames-per-beat: cannot read 'x' in 'off,x'")


def test_a_sweep_grids_over_inputs_and_round_trips(tmp_path):
    base = RunRequest(tmp_path, "time", n_folds=3, device="cpu")
    sweep = SweepRequest(base, grid=(("frames_per_beat", (None, 10)),
                                     ("patch_frames", (80, 160))), seeds=(0,))
    assert [p.name for p in sweep.points()] == ["p80-boff-s0", "p80-b10-s0", "p160-boff-s0",
                                                "p160-b10-s0"]
    assert SweepRequest.from_args(_parsed("sweep", sweep.argv())) == sweep
    assert "off,10" in sweep.argv()
    assert SweepRequest.from_dict(json.loads(json.dumps(sweep.to_dict()))) == sweep
    run = sweep.request(sweep.points()[3])
    assert (run.patch_frames, run.frames_per_beat) == (160, 10)
    assert run.front_end() == FrontEnd(patch_frames=160, frames_per_beat=10)
    # a fixed input is a grid of one value, as a fixed filter shape
    with pytest.raises(ConfigError, match="sweep a list of one value"):
        SweepRequest(base.replace(frames_per_beat=10), seeds=(0,))


def test_a_filter_longer_than_the_paper_patch_fits_a_longer_patch(tmp_path):
    assert RunRequest(tmp_path, "time", patch_frames=240, time_filter=(1, 240)).n_filters == 32
    with pytest.raises(ConfigError, match="1x120 is 120 frames wide but a patch is 80 frames"):
        RunRequest(tmp_path, "time", time_filter=(1, 120))
    # a longer patch survives a change of architecture; the filters become the new one's own
    assert RunRequest(tmp_path, "time", patch_frames=160).replace(
        arch="frequency").patch_frames == 160


# ----------------------------------------------------------------------------- the app


@pytest.mark.slow
def test_train_page_launches_a_run_with_a_longer_beat_synchronous_input(synth_dataset, tmp_path,
                                                                        monkeypatch):
    """The Train page's patch width and frames-per-beat controls: a 1x120 filter is refused
    at 80 frames and accepted at 160, with the real model's parameter count; Launch runs
    `tfcnn train` with both options, and the run records them."""
    import time

    from streamlit.testing.v1 import AppTest

    from tfcnn import locations, runs
    from tfcnn.config import CLASSES
    from tfcnn.models import build_model, count_parameters

    runs_dir = tmp_path / "runs"
    monkeypatch.setenv(locations.ENV_DATA_DIR, str(synth_dataset))
    monkeypatch.setenv(locations.ENV_RUNS_DIR, str(runs_dir))
    monkeypatch.delenv("TFCNN_APP_PASSWORD", raising=False)
    monkeypatch.delenv("TFCNN_MAX_RUNS", raising=False)
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=60)
    at.run()
    at.switch_page("pages/2_Train.py").run()

    def control(label):
        return next(w for w in (*at.sidebar.number_input, *at.sidebar.text_input)
                    if w.label == label)

    next(s for s in at.sidebar.selectbox if s.label == "Architecture").set_value("time").run()
    control("Temporal filter (bands × frames)").set_value("1x120").run()
    assert any("1x120 is 120 frames wide but a patch is 80 frames" in e.value
               for e in at.sidebar.error)
    control("Patch width (frames)").set_value(160).run()
    assert not at.sidebar.error and not at.exception
    expected = count_parameters(build_model("time", len(CLASSES), patch_frames=160,
                                            time_filter=(1, 120)))
    assert any(f"**{expected:,}** trainable parameters" in c.value for c in at.sidebar.caption)
    control("Beat-synchronous input (frames per beat, 0 = off)").set_value(20).run()
    control("Folds").set_value(3)
    control("Max epochs (0 = preset's)").set_value(1)
    next(b for b in at.button if b.label == "Launch").click().run()  # beside the estimate
    assert not at.exception, [e.value for e in at.exception]
    deadline = time.monotonic() + 180
    while not list(runs_dir.glob("*-time-quick/results.json")):
        assert time.monotonic() < deadline, "the run did not finish"
        time.sleep(1.0)
        at.run()
    run_dir = next(runs_dir.glob("*-time-quick"))
    command = json.loads((runs.launch_dir(run_dir) / runs.LAUNCH_FILE).read_text())["command"]
    assert command[command.index("--patch-frames") + 1] == "160"
    assert command[command.index("--frames-per-beat") + 1] == "20"
    config = read_config(run_dir)
    assert config["front_end"]["patch_frames"] == 160
    assert config["front_end"]["frames_per_beat"] == 20 and config["n_params"] == expected


def test_sweep_controls_grid_over_inputs_as_the_cli_does(tmp_path):
    from tfcnn.ui import sweep as sweep_ui

    base = RunRequest(tmp_path, "time", n_folds=3)
    sweep = sweep_ui.grid_request(base, arch="time", patch_frames="80,160",
                                  frames_per_beat="off,10", seeds="0")
    assert SweepRequest.from_args(_parsed("sweep", sweep.argv())) == sweep
    assert [p.name for p in sweep.points()] == ["p80-boff-s0", "p80-b10-s0", "p160-boff-s0",
                                                "p160-b10-s0"]
    with pytest.raises(ConfigError, match="1x120 is 120 frames wide but a patch is 80"):
        sweep_ui.grid_request(base, arch="time", patch_frames="80,160", time_filters="1x120")


def test_patch_counts_of_the_estimate_follow_the_patch_width(folder_dataset):
    from tfcnn.datasets import load_dataset
    from tfcnn.estimate import track_patch_counts

    dataset = load_dataset(folder_dataset)  # 6 s tracks: 259 frames
    assert set(track_patch_counts(dataset).tolist()) == {3}
    assert set(track_patch_counts(dataset, patch_frames=160).tolist()) == {1}


@pytest.mark.slow
def test_the_inputs_script_reports_paired_contrasts_with_their_power(folder_dataset, tmp_path):
    """``scripts/train_inputs.py`` on the click set (two seeds, one epoch): every variant's
    seeds, and each contrast with its interval, detectable difference and Holm p."""
    from scripts.train_inputs import main

    out = tmp_path / "report.json"
    assert main(["--data", str(folder_dataset), "--folds", "3", "--seeds", "0,1", "--epochs",
                 "1", "--variants", "time-p80,frequency-p80,time-p160-t1x120",
                 "--runs", str(tmp_path / "runs"), "--out", str(out)]) == 0
    report = json.loads(out.read_text())
    assert set(report["variants"]) == {"time-p80", "frequency-p80", "time-p160-t1x120"}
    assert report["variants"]["time-p160-t1x120"]["seeds"] == [0, 1]
    assert "--patch-frames" in report["variants"]["time-p160-t1x120"]["argv"]
    pairs = {(c["a"], c["b"]) for c in report["contrasts"]}
    assert pairs == {("time-p80", "frequency-p80"), ("time-p160-t1x120", "time-p80"),
                     ("time-p160-t1x120", "frequency-p80")}
    for c in report["contrasts"]:
        assert c["paired_folds"] == 6 and c["n_contrasts"] == 3
        assert c["ci95"][0] <= c["difference"] <= c["ci95"][1] and c["mdd_alone"] > 0
        assert c["mdd"] >= c["mdd_alone"] and c["p_holm"] >= c["p"]
    assert report["tempo_estimate"] is None  # click tracks carry no annotated tempo
    # a rerun keeps the finished runs
    mtime = (tmp_path / "runs" / "time-p80-s0" / "results.json").stat().st_mtime_ns
    assert main(["--data", str(folder_dataset), "--folds", "3", "--seeds", "0,1", "--epochs",
                 "1", "--variants", "time-p80", "--runs", str(tmp_path / "runs"),
                 "--out", str(out)]) == 0
    assert (tmp_path / "runs" / "time-p80-s0" / "results.json").stat().st_mtime_ns == mtime


@pytest.mark.parametrize("fields, needle", [
    (dict(frames_per_beat=0), "frames_per_beat must be an integer in 1..256 .*got 0"),
    (dict(frames_per_beat=2.5), "frames_per_beat must be an integer or None, got 2.5"),
    (dict(patch_frames=0), "patch_frames must be a positive integer, got 0"),
    (dict(patch_frames=2048), "patch_frames must be <= 1024, got 2048"),
])
def test_bad_input_values_are_refused_when_the_request_is_made(tmp_path, fields, needle):
    with pytest.raises(ConfigError, match=needle):
        RunRequest(tmp_path, "time", **fields)


def test_a_checkpoint_whose_front_end_names_a_bad_input_is_refused_in_one_line(tmp_path):
    """A checkpoint header is user input: a frames_per_beat of 0 is named, not a traceback."""
    import struct

    from tfcnn.checkpoint import save_checkpoint
    from tfcnn.errors import CheckpointError
    from tfcnn.models import build_model

    path = save_checkpoint(tmp_path / "m.safetensors", build_model("time"),
                           classes=[f"c{i}" for i in range(8)], norm_mean=0.0, norm_std=1.0,
                           front_end=FrontEnd(frames_per_beat=10))
    data = Path(path).read_bytes()
    n = struct.unpack("<Q", data[:8])[0]
    # the tfcnn metadata is JSON inside the safetensors JSON header (quotes escaped)
    header = data[8:8 + n].replace(b'\\"frames_per_beat\\": 10', b'\\"frames_per_beat\\": 0 ')
    assert header != data[8:8 + n]
    Path(path).write_bytes(data[:8] + header + data[8 + n:])
    with pytest.raises(CheckpointError, match="frames_per_beat must be an integer in 1..256"):
        load_checkpoint(path)
