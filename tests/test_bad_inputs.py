"""A corpus of hostile and unlucky inputs, tried for real: CLI subprocesses and app pages.

Each CLI row runs ``python -m tfcnn ...`` and checks the exit code, that stderr has no
traceback, the one line it must say, and that nothing is left behind. Each app row runs a
page with AppTest and checks what it shows. Every row was a failure of an earlier version
(a traceback, a hang, a wrong message, a leaked file, an orphan process).
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from streamlit.testing.v1 import AppTest

from tfcnn import locations
from tfcnn.config import CLASSES, FRONT_END
from tfcnn.paths import ENV_ALLOWED_ROOTS, REFUSED

REPO = Path(__file__).resolve().parents[1]
SR = 44100
NON_UTF8 = os.fsdecode(b"caf\xe9-\xff.wav")


def wav(path: Path, seconds: float = 4.0, *, freq: float = 440.0) -> Path:
    t = np.arange(int(seconds * SR)) / SR
    y = 0.3 * np.sin(2 * np.pi * freq * t) * (1 + np.sin(2 * np.pi * 2 * t))
    sf.write(path, (0.5 * y).astype(np.float32), SR, subtype="PCM_16")
    return path


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    """Files of every bad kind, plus a small two-class data set holding a non-UTF-8 name."""
    root = tmp_path_factory.mktemp("corpus")
    for i, dance in enumerate(CLASSES[:2]):
        (root / "ds" / dance).mkdir(parents=True)
        for k in range(3):
            wav(root / "ds" / dance / f"{dance}{k}.wav", freq=300.0 + 200 * i + 10 * k)
    # soundfile cannot write such a name itself: write, then rename
    os.rename(wav(root / "tmp1.wav"), root / "ds" / CLASSES[1] / NON_UTF8)
    os.rename(wav(root / "tmp2.wav"), root / NON_UTF8)
    (root / ("junk-" + NON_UTF8)).write_bytes(b"not audio at all" * 20)
    (root / "loop1.wav").symlink_to(root / "loop2.wav")
    (root / "loop2.wav").symlink_to(root / "loop1.wav")
    os.mkfifo(root / "pipe.wav")
    full = wav(root / "full.wav").read_bytes()
    (root / "trunc.wav").write_bytes(full[: len(full) * 2 // 3])
    sf.write(root / "rate1.wav", np.zeros(20_000, np.int16), 1, subtype="PCM_16")  # 20 KB
    sf.write(root / "ch64.wav", np.zeros((1000, 64), np.int16), SR, subtype="PCM_16")
    lengthless_flac(root / "lengthless.flac", seconds=180.0)
    return root


def lengthless_flac(path: Path, *, seconds: float, sample_rate: int = 8000) -> Path:
    """A FLAC whose STREAMINFO leaves the total sample count unset (0: legal for a streamed
    FLAC): a click track of ``seconds``."""
    from conftest import click_track

    y = click_track(bpm=120.0, seconds=seconds, sample_rate=sample_rate)
    sf.write(path, y, sample_rate, subtype="PCM_16")
    data = bytearray(path.read_bytes())
    assert data[:4] == b"fLaC" and data[4] & 0x7F == 0  # STREAMINFO first, at byte 8
    fields = int.from_bytes(data[18:26], "big") & ~((1 << 36) - 1)  # low 36 bits: length
    data[18:26] = fields.to_bytes(8, "big")
    path.write_bytes(bytes(data))
    assert sf.info(str(path)).frames > 2**62  # libsndfile: length unknown
    return path


def tfcnn(*args: str, cwd: Path, timeout: float = 120) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(REPO), OMP_NUM_THREADS="1")
    return subprocess.run([sys.executable, "-m", "tfcnn", *args], cwd=cwd, env=env,
                          capture_output=True, timeout=timeout)


def lines(stream: bytes) -> list[str]:
    return [line for line in stream.decode("utf-8", "replace").splitlines() if line.strip()]


# (id, argv with {c} for the corpus folder, exit code, a line stderr must hold, files that
# must not exist afterwards)
CLI_ROWS = [
    ("symlink-loop", ["predict", "{c}/loop1.wav"], 2,
     "error: {c}/loop1.wav: symbolic link loop", []),
    ("dev-zero", ["predict", "/dev/zero"], 2, "error: /dev/zero: not a regular file", []),
    ("fifo", ["predict", "{c}/pipe.wav"], 2, "error: {c}/pipe.wav: not a regular file", []),
    ("non-utf8-predict", ["predict", "{c}/" + NON_UTF8], 0, None, []),
    ("non-utf8-undecodable", ["predict", "{c}/junk-" + NON_UTF8], 2,
     "error: {c}/junk-caf\\xe9-\\xff.wav: cannot decode audio", []),
    ("truncated-wav", ["predict", "{c}/trunc.wav"], 0,
     "warning: {c}/trunc.wav: truncated WAV file", []),
    ("rate-1hz", ["predict", "{c}/rate1.wav"], 2,
     "error: {c}/rate1.wav: sample rate 1 Hz is outside 1-384 kHz", []),
    ("channels-64", ["predict", "{c}/ch64.wav"], 2,
     "error: {c}/ch64.wav: 64 channels; at most 32 are read", []),
    ("lengthless-flac", ["predict", "{c}/lengthless.flac"], 0, None, []),
    ("checkpoint-dev-zero", ["predict", "{c}/full.wav", "--checkpoint", "/dev/zero"], 2,
     "error: /dev/zero: not a regular file", []),
    ("checkpoint-fifo", ["predict", "{c}/full.wav", "--checkpoint", "{c}/pipe.wav"], 2,
     "error: {c}/pipe.wav: not a regular file", []),
    ("lr-nan", ["train", "{c}/ds", "--arch", "time", "--folds", "2", "--lr", "nan",
                "--out", "{c}/run-nan"], 2, "error: lr must be a finite number > 0, got nan",
     ["run-nan"]),
    ("epochs-1e9", ["train", "{c}/ds", "--arch", "time", "--folds", "2", "--epochs",
                    str(10**9), "--out", "{c}/run-epochs"], 2,
     "error: max_epochs must be in [1, 2000]", ["run-epochs"]),
    ("non-utf8-features", ["features", "{c}/ds", "--quiet", "--workers", "1"], 0, None, []),
    ("non-utf8-train", ["train", "{c}/ds", "--arch", "time", "--folds", "2", "--epochs", "1",
                        "--quiet", "--out", "{c}/run-ok"], 0, None, []),
    # a device no machine here has (a CPU machine has no cuda; a GPU machine no 100th GPU)
    ("device-missing", ["train", "{c}/ds", "--arch", "time", "--folds", "2", "--epochs", "1",
                        "--device", "cuda:99", "--quiet", "--out", "{c}/run-cuda"], 2,
     "error: device 'cuda:99'", ["run-cuda"]),
]


@pytest.mark.parametrize("row", CLI_ROWS, ids=[r[0] for r in CLI_ROWS])
def test_cli_bad_input(corpus, row, record_property):
    _, argv, code, needle, absent = row
    c = str(corpus)
    result = tfcnn(*(a.replace("{c}", c) for a in argv), cwd=corpus)
    err = lines(result.stderr)
    out_lines = lines(result.stdout)
    record_property("observed", f"exit {result.returncode}: "
                    + ((err or out_lines or [""])[0][:160]).replace(c, "…"))
    assert "Traceback" not in result.stderr.decode("utf-8", "replace"), err
    assert result.returncode == code, err
    if needle is not None:
        needle = needle.replace("{c}", c)
        assert any(line.startswith(needle) for line in err), err
        if code == 2:
            assert len(err) == 1, err  # one line, nothing else
    for name in absent:
        assert not (corpus / name).exists(), f"{name} was left behind"
    out = result.stdout.decode("utf-8")
    if row[0] == "non-utf8-predict":
        assert "caf\\xe9-\\xff.wav:" in out and any(cls in out for cls in CLASSES)
    if row[0] == "lengthless-flac":  # decoded as a stream to its end: all 3 min of it
        assert "(96 patches of 1.86 s)" in out, out
    if row[0] == "non-utf8-features":
        assert "skipped: names are not valid UTF-8 (" in out and "caf\\xe9-\\xff.wav" in out
        assert "6 tracks" in out


def test_features_sigterm_leaves_no_worker(corpus, tmp_path):
    """SIGTERM to `features --workers 2` stops its worker processes too (no orphans)."""
    data = tmp_path / "big"
    rng = np.random.default_rng(0)
    for dance in CLASSES[:2]:
        (data / dance).mkdir(parents=True)
        for k in range(12):
            sf.write(data / dance / f"{k}.wav",
                     (0.1 * rng.standard_normal(SR * 20)).astype(np.float32), SR)
    env = dict(os.environ, PYTHONPATH=str(REPO))
    proc = subprocess.Popen([sys.executable, "-m", "tfcnn", "features", str(data), "--workers",
                             "2", "--quiet"], env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, start_new_session=True)

    def group() -> list[int]:
        out = subprocess.run(["ps", "-o", "pid=", "-g", str(proc.pid)], capture_output=True,
                             text=True).stdout
        return [int(p) for p in out.split()]

    try:
        deadline = time.monotonic() + 60
        while len(group()) < 3:  # the command and its two workers
            assert proc.poll() is None and time.monotonic() < deadline, "no workers started"
            time.sleep(0.1)
        os.kill(proc.pid, signal.SIGTERM)
        assert proc.wait(timeout=60) == 130
        deadline = time.monotonic() + 15
        while group() and time.monotonic() < deadline:
            time.sleep(0.2)
        assert group() == [], "worker processes outlived the command"
        assert lines(proc.stderr.read()) == ["error: interrupted"]
    finally:
        for pid in group():
            os.kill(pid, signal.SIGKILL)
        proc.kill()
        proc.wait()


def test_resume_on_a_changed_data_set_stops_and_leaves_the_run(tmp_path, record_property):
    """Tracks added, then a class added, between a run and its --resume: one line naming
    the change each time, exit 2, every file of the run as it was; the same data resumes."""
    data = tmp_path / "ds"
    for i, dance in enumerate(CLASSES[:2]):
        (data / dance).mkdir(parents=True)
        for k in range(3):
            wav(data / dance / f"{dance}{k}.wav", 2.5, freq=300.0 + 200 * i + 10 * k)
    run = tmp_path / "run"
    argv = ["train", str(data), "--arch", "time", "--folds", "2", "--epochs", "1", "--quiet",
            "--out", str(run)]
    assert tfcnn(*argv, cwd=tmp_path).returncode == 0

    def snapshot():
        return {p.relative_to(run): p.read_bytes() for p in run.rglob("*") if p.is_file()}

    before = snapshot()
    for k in range(3, 5):
        wav(data / CLASSES[0] / f"{CLASSES[0]}{k}.wav", 2.5, freq=333.0 + k)
    result = tfcnn(*argv, "--resume", cwd=tmp_path)
    err = lines(result.stderr)
    assert result.returncode == 2 and len(err) == 1, err
    assert err[0].startswith(f"error: cannot resume {run}: the data set changed since the run "
                             f"started (2 track(s) added ({CLASSES[0]}/{CLASSES[0]}3, "
                             f"{CLASSES[0]}/{CLASSES[0]}4))"), err
    assert snapshot() == before
    (data / CLASSES[2]).mkdir()
    wav(data / CLASSES[2] / "new.wav", 2.5)
    result = tfcnn(*argv, "--resume", cwd=tmp_path)
    err = lines(result.stderr)
    assert result.returncode == 2 and len(err) == 1 and "Traceback" not in err[0], err
    assert f"class(es) added: {CLASSES[2]}" in err[0]
    assert snapshot() == before
    record_property("observed", err[0].split("changed since the run started ")[1][:120])
    # control: the data as it was resumes
    for extra in (data / CLASSES[0] / f"{CLASSES[0]}3.wav", data / CLASSES[0] /
                  f"{CLASSES[0]}4.wav", data / CLASSES[2] / "new.wav"):
        extra.unlink()
    (data / CLASSES[2]).rmdir()
    assert tfcnn(*argv, "--resume", cwd=tmp_path).returncode == 0


def test_hostile_cache_entries_are_named_and_recomputed(tmp_path, record_property):
    """`.tfcnn-cache` entries replaced by a symlink out of the data folder, a FIFO, a zip
    bomb (a compressed member of 400 MB) and an array header announcing 10^12 frames: each
    named in one warning line (the FIFO, not a file, is skipped) and computed again; nothing
    hangs or fills memory."""
    import zipfile

    data = tmp_path / "ds"
    for i, dance in enumerate(CLASSES[:2]):
        (data / dance).mkdir(parents=True)
        for k in range(2):
            wav(data / dance / f"{dance}{k}.wav", 2.5, freq=300.0 + 200 * i + 10 * k)
    assert tfcnn("features", str(data), "--quiet", "--workers", "1", cwd=tmp_path).returncode == 0
    entries = sorted((data / ".tfcnn-cache").rglob("*.npz"))
    assert len(entries) == 4
    outside = tmp_path / "outside.npz"
    outside.write_bytes(entries[0].read_bytes())
    entries[0].unlink()
    entries[0].symlink_to(outside)
    entries[1].unlink()
    os.mkfifo(entries[1])
    with zipfile.ZipFile(entries[2], "w", zipfile.ZIP_DEFLATED) as bomb:
        with bomb.open("spec.npy", "w", force_zip64=True) as member:
            np.lib.format.write_array_header_1_0(member, {"descr": "<f4", "fortran_order": False,
                                                          "shape": (40, 2_500_000)})
            for _ in range(100):
                member.write(bytes(4 * 40 * 25_000))
    with zipfile.ZipFile(entries[3], "w", zipfile.ZIP_STORED) as liar:
        with liar.open("spec.npy", "w") as member:
            np.lib.format.write_array_header_1_0(member, {"descr": "<f4", "fortran_order": False,
                                                          "shape": (40, 10**12)})
            member.write(bytes(64))
    result = tfcnn("features", str(data), "--workers", "1", cwd=tmp_path, timeout=180)
    err = lines(result.stderr)
    assert result.returncode == 0 and "Traceback" not in result.stderr.decode(), err
    warned = [line for line in err if "damaged feature cache entry" in line]
    assert len(warned) == 3, err  # the FIFO is no file: never opened, simply computed again
    for entry, why in zip([entries[0], *entries[2:]], [
            "not a regular file", "compressed member spec.npy",
            "announces shape (40, 1000000000000), more than it holds"]):
        assert any(str(entry) in line and why in line for line in warned), (why, warned)
    assert all(e.is_file() and not e.is_symlink() for e in entries)  # written again
    assert outside.read_bytes()  # the file outside is left alone
    record_property("observed", "3 warning lines (symlink: not a regular file; zip bomb: "
                                "compressed member; header of 10^12 frames); FIFO skipped; "
                                "all recomputed")


def test_trainer_launched_by_the_app_reads_only_tracks_inside_the_roots(tmp_path):
    from tfcnn.launches import trainer_env
    from tfcnn.paths import ENV_CONFINE

    assert trainer_env()[ENV_CONFINE] == "1"
    data, outside = tmp_path / "allowed" / "ds", tmp_path / "outside"
    for i, dance in enumerate(CLASSES[:2]):
        (data / dance).mkdir(parents=True)
        for k in range(2):
            wav(data / dance / f"{dance}{k}.wav", 2.5, freq=300.0 + 200 * i + 10 * k)
    (outside / CLASSES[2]).mkdir(parents=True)
    wav(outside / CLASSES[2] / "secret.wav", 2.5)
    (data / CLASSES[2]).symlink_to(outside / CLASSES[2], target_is_directory=True)
    env = dict(os.environ, PYTHONPATH=str(REPO), OMP_NUM_THREADS="1", **{ENV_CONFINE: "1"})
    run = tmp_path / "run"
    subprocess.run([sys.executable, "-m", "tfcnn", "train", str(data), "--arch", "time",
                    "--folds", "2", "--epochs", "1", "--quiet", "--out", str(run)], cwd=REPO,
                   env=env, check=True, timeout=300, capture_output=True)
    config = json.loads((run / "config.json").read_text())
    assert config["dataset"]["classes"] == list(CLASSES[:2])
    assert len(config["tracks"]) == 4 and not any("secret" in t for t in config["tracks"])


# ----------------------------------------------------------------------------- the app


@pytest.fixture
def app_env(corpus, tmp_path, monkeypatch) -> dict[str, Path]:
    """The app on the corpus' data set, a fresh runs folder and an untrained checkpoint."""
    from tfcnn.checkpoint import save_checkpoint
    from tfcnn.models import build_model

    checkpoints = tmp_path / "checkpoints"
    save_checkpoint(checkpoints / "synth-time.safetensors", build_model("time", len(CLASSES)),
                    classes=CLASSES, norm_mean=0.0, norm_std=1.0, front_end=FRONT_END)
    runs = tmp_path / "runs"
    runs.mkdir()
    monkeypatch.setenv(locations.ENV_DATA_DIR, str(tmp_path / "no-synth"))
    monkeypatch.setenv(locations.ENV_RUNS_DIR, str(runs))
    monkeypatch.setenv(locations.ENV_CHECKPOINTS_DIR, str(checkpoints))
    monkeypatch.setenv(ENV_ALLOWED_ROOTS, str(corpus))
    monkeypatch.delenv("TFCNN_APP_PASSWORD", raising=False)
    return {"runs": runs, "corpus": corpus, "tmp": tmp_path}


def page(name: str) -> AppTest:
    at = AppTest.from_file(str(REPO / "app.py"), default_timeout=90)
    if name != "app.py":
        at.run()  # the entry point registers the pages (st.navigation) ...
        at.switch_page(name)  # ... so the next run() shows this one through it
    return at


def no_exception(at: AppTest) -> None:
    assert not at.exception, [e.value for e in at.exception]


def predict_path(path: str) -> AppTest:
    at = page("pages/4_Predict.py").run()
    at.sidebar.radio[1].set_value("A file on this machine").run()
    at.text_input[0].set_value(path).run()
    no_exception(at)
    return at


PREDICT_TARGETS = {"passwd": "/etc/passwd", "shadow": "/etc/shadow", "dev-zero": "/dev/zero",
                   "root": "/", "fifo": "{c}/pipe.wav", "missing": "{c}/missing.wav",
                   "symlink-loop": "{c}/loop1.wav", "outside": "{c}/../outside.wav",
                   "symlink-out": "{c}/escape.wav"}


@pytest.mark.parametrize("target", list(PREDICT_TARGETS.values()), ids=list(PREDICT_TARGETS))
def test_app_predict_refuses_paths_outside_the_roots_alike(app_env, target):
    corpus = app_env["corpus"]
    outside = corpus.parent / "outside.wav"
    wav(outside)  # a real WAV, readable, but outside the allowed roots
    if not (corpus / "escape.wav").is_symlink():
        (corpus / "escape.wav").symlink_to(outside)
    start = time.monotonic()
    at = predict_path(target.replace("{c}", str(corpus)))
    assert [e.value for e in at.error] == [REFUSED]
    assert not at.get("audio") and not at.metric
    assert time.monotonic() - start < 60  # no hang on a FIFO, no read of /dev/zero


def test_app_predict_reads_a_file_inside_the_roots(app_env):
    at = predict_path(str(app_env["corpus"] / "full.wav"))
    assert not at.error and at.metric[0].value in CLASSES


def test_app_predict_refuses_an_over_long_file_by_its_header(app_env):
    long = app_env["corpus"] / "long.flac"
    if not long.exists():
        with sf.SoundFile(long, "w", 8000, 1, subtype="PCM_16") as f:
            tone = (0.01 * np.sin(np.arange(8000) / 5.0)).astype(np.float32)
            for _ in range(620):
                f.write(tone)
    at = predict_path(str(long))
    (error,) = at.error
    assert "audio is 10.3 min long; the limit is 10 min" in error.value


FOLDER_TARGETS = {"etc": "/etc", "missing": "{c}/nope", "dev-zero": "/dev/zero",
                  "fifo": "{c}/pipe.wav", "root": "/", "symlink-out": "{c}/escape-dir",
                  "tmp": "{t}/outside-ds"}


@pytest.mark.parametrize("target", list(FOLDER_TARGETS.values()), ids=list(FOLDER_TARGETS))
def test_app_data_folder_outside_the_roots_is_refused(app_env, target, monkeypatch):
    """With a password (an exposed app), every refused folder gets the one message."""
    monkeypatch.setenv("TFCNN_APP_PASSWORD", "correct horse")
    corpus, tmp = app_env["corpus"], app_env["tmp"]
    outside = tmp / "outside-ds"  # a real data set, readable, but outside the allowed roots
    for dance in CLASSES[:2]:
        (outside / dance).mkdir(parents=True, exist_ok=True)
        wav(outside / dance / "a.wav")
    if not (corpus / "escape-dir").is_symlink():
        (corpus / "escape-dir").symlink_to(outside)
    at = page("pages/1_Data.py").run()
    at.text_input[0].input("correct horse")
    at.button[0].click().run()  # sign in
    at.sidebar.radio[0].set_value("folder").run()
    start = time.monotonic()
    at.sidebar.text_input[0].set_value(target.replace("{c}", str(corpus))
                                       .replace("{t}", str(tmp))).run()
    no_exception(at)
    # the page shows the message as text (Markdown escapes), the same for every folder
    assert [re.sub(r"\\(.)", r"\1", e.value) for e in at.error] == [REFUSED]
    assert time.monotonic() - start < 10  # no walk of the disk behind `/`
    assert sorted(p.name for p in outside.iterdir()) == sorted(CLASSES[:2])  # nothing written


def test_app_data_folder_with_a_non_utf8_name_reports_it(app_env):
    at = page("pages/1_Data.py").run()
    at.sidebar.radio[0].set_value("folder").run()
    at.sidebar.text_input[0].set_value(str(app_env["corpus"] / "ds")).run()
    no_exception(at)
    assert not at.error
    shown = [re.sub(r"\\(.)", r"\1", w.value) for w in at.warning]  # Markdown escapes off
    assert any("names are not valid UTF-8" in w and "caf\\xe9" in w for w in shown)
    assert "6 tracks" in at.caption[0].value


BEACON = "![t](http:/127.0.0.1:9/beacon)"  # a file in folders `![t](http:` and `127.0.0.1:9`


@pytest.fixture
def hostile_set(app_env):
    """A data set inside the roots whose class folder is a symlink out of them, one track
    named as a Markdown image (a beacon) and one as a spreadsheet formula; and a SynthBallroom
    whose metadata.csv names a track `../../../outside/SECRET`."""
    corpus, tmp = app_env["corpus"], app_env["tmp"]
    outside = tmp / "outside"
    (outside / "Rumba").mkdir(parents=True)
    wav(outside / "Rumba" / "SECRET.wav", 1.0)
    wav(outside / "SECRET.wav", 1.0)
    ds = corpus / f"hostile-{tmp.name}"
    for dance in CLASSES[:2]:
        (ds / dance).mkdir(parents=True)
        wav(ds / dance / f"{dance}-ok.wav", 1.0)
    (ds / CLASSES[0] / BEACON).parent.mkdir(parents=True)
    wav(ds / CLASSES[0] / f"{BEACON}.wav", 1.0)
    wav(ds / CLASSES[1] / "=HYPERLINK(1).wav", 1.0)
    (ds / "Rumba").symlink_to(outside / "Rumba", target_is_directory=True)
    synth = corpus / f"synth-{tmp.name}"
    (synth / CLASSES[0]).mkdir(parents=True)
    wav(synth / CLASSES[0] / "ok.wav", 1.0)
    (synth / "metadata.csv").write_text("track,dance,bpm,beats_per_bar\n"
                                        f"ok,{CLASSES[0]},120,4\n"
                                        f"../../../{outside.name}/SECRET,{CLASSES[0]},120,4\n")
    return {"folder": ds, "synth": synth}


def test_app_data_page_lists_nothing_outside_the_roots(app_env, hostile_set, record_property):
    at = page("pages/1_Data.py").run()
    at.sidebar.radio[0].set_value("folder").run()
    at.sidebar.text_input[0].set_value(str(hostile_set["folder"])).run()
    no_exception(at)
    assert "Rumba" not in at.sidebar.selectbox[0].options
    note = [w.value for w in at.warning if "resolve outside the allowed data folders" in w.value]
    assert note and "SECRET" in note[0]
    shown = " ".join(m.value for m in at.markdown) + " ".join(c.value for c in at.caption)
    assert "SECRET" not in shown.replace(note[0], "")
    at.sidebar.text_input[0].set_value(str(hostile_set["synth"])).run()
    no_exception(at)
    assert any("is not a plain file name" in e.value for e in at.error)
    record_property("observed", "symlinked class folder left out with one warning; "
                                "metadata row `../../../outside/SECRET` refused")


def test_app_shows_names_as_text_and_neutralises_csv_formulas(app_env, hostile_set):
    from tfcnn.export import csv_text
    from tfcnn.ui.text import plain

    at = page("pages/1_Data.py").run()
    at.sidebar.radio[0].set_value("folder").run()
    at.sidebar.text_input[0].set_value(str(hostile_set["folder"])).run()
    at.sidebar.slider[0].set_value(5).run()
    no_exception(at)
    sources = [m.value for m in at.markdown]
    assert not any(BEACON in m for m in sources)  # never the raw Markdown image
    assert any(plain(BEACON) in m for m in sources)  # the name, escaped
    assert plain("=a*b_[c](d) `e` :red[f] $g$") == \
        "\\=a\\*b\\_\\[c\\]\\(d\\) \\`e\\` \\:red\\[f\\] \\$g\\$"
    import pandas as pd

    frame = pd.DataFrame({"track": ["=HYPERLINK(1)", "+1", "-2", "@x", "\tA", "ok"],
                          "p": [-0.5, 1.0, 2.0, 3.0, 4.0, 5.0]})
    text = csv_text(frame)
    assert text.splitlines()[1:] == ["'=HYPERLINK(1),-0.5", "'+1,1.0", "'-2,2.0", "'@x,3.0",
                                     "'\tA,4.0", "ok,5.0"]


def test_app_data_page_bounds_what_it_decodes(app_env, record_property):
    corpus, tmp = app_env["corpus"], app_env["tmp"]
    ds = corpus / f"decode-{tmp.name}"
    (ds / CLASSES[1]).mkdir(parents=True)
    wav(ds / CLASSES[1] / "ok.wav", 3.0)
    (ds / CLASSES[0]).mkdir()
    sf.write(ds / CLASSES[0] / "a-rate1.wav", np.zeros(4000, np.int16), 1, subtype="PCM_16")
    sf.write(ds / CLASSES[0] / "b-long.wav", np.zeros(12 * 60 * 1000, np.int16), 1000,
             subtype="PCM_16")
    lengthless_flac(ds / CLASSES[0] / "c-lengthless.flac", seconds=12 * 60.0)
    at = page("pages/1_Data.py").run()
    at.sidebar.radio[0].set_value("folder").run()
    at.sidebar.text_input[0].set_value(str(ds)).run()
    at.sidebar.slider[0].set_value(5).run()
    no_exception(at)
    errors = [re.sub(r"\\(.)", r"\1", e.value) for e in at.error]
    assert any("a-rate1.wav: sample rate 1 Hz is outside 1-384 kHz" in e for e in errors), errors
    assert any("b-long.wav: audio is 12.0 min long; the limit is 10 min" in e for e in errors)
    assert any("c-lengthless.flac: audio is over 10.0 min long; the limit is 10 min" in e
               for e in errors), errors
    record_property("observed", " · ".join(e.split(": ", 1)[1] for e in errors))


def test_app_pages_survive_a_run_with_a_non_utf8_config(app_env):
    runs = app_env["runs"]
    bad = runs / "20250101-000000-time-quick"
    bad.mkdir()
    (bad / "config.json").write_bytes(b'{"arch": "time\xff\xfe"}')
    subprocess.run([sys.executable, "-m", "tfcnn", "train", str(app_env["corpus"] / "ds"),
                    "--arch", "time", "--folds", "2", "--epochs", "1", "--quiet", "--out",
                    str(runs / "20250102-000000-time-quick")],
                   cwd=REPO, check=True, timeout=300, capture_output=True,
                   env=dict(os.environ, PYTHONPATH=str(REPO), OMP_NUM_THREADS="1"))
    train = page("pages/2_Train.py")
    train.session_state["tfcnn_data"] = {"source": "folder",
                                         "path": str(app_env["corpus"] / "ds")}
    train.run()
    no_exception(train)
    assert any("not UTF-8" in e.value and bad.name in e.value for e in train.error)
    assert any("20250102-000000-time-quick" in m.value and "`finished`" in m.value
               for m in train.markdown)
    results = page("pages/3_Results.py").run()
    no_exception(results)
    assert "20250102-000000-time-quick" in list(results.dataframe[0].value["run"])
    predict = page("pages/4_Predict.py").run()
    no_exception(predict)
    assert any("20250102-000000-time-quick" in o for o in predict.selectbox(key="model").options)


def test_app_pages_survive_hostile_run_files(app_env, record_property):
    """Deeply nested JSON in config.json, results.json and a fold's result.json, and a
    string where results.json has a number: each run is named with its one-line reason;
    the good run beside them is still listed and every page renders."""
    import shutil

    runs = app_env["runs"]
    good = runs / "20250105-000000-time-quick"
    subprocess.run([sys.executable, "-m", "tfcnn", "train", str(app_env["corpus"] / "ds"),
                    "--arch", "time", "--folds", "2", "--epochs", "1", "--quiet", "--out",
                    str(good)], cwd=REPO, check=True, timeout=300, capture_output=True,
                   env=dict(os.environ, PYTHONPATH=str(REPO), OMP_NUM_THREADS="1"))
    deep = "[" * 100_000 + "]" * 100_000
    bad = {"20250101-000000-time-quick": ("config.json", deep),
           "20250102-000000-time-quick": ("results.json", deep),
           "20250103-000000-time-quick": ("fold-00/result.json", deep),
           "20250104-000000-time-quick": ("results.json", None)}
    for name, (file, text) in bad.items():
        shutil.copytree(good, runs / name)
        if text is None:  # a wrong type: the mean as text
            results = json.loads((runs / name / file).read_text())
            text = json.dumps({**results, "mean": "high"})
        (runs / name / file).write_text(text)
    from tfcnn.errors import RunError
    from tfcnn.result_sets import run_results
    from tfcnn.runs import list_runs, read_fold_result

    # a fold's result.json is read when that fold is used, not to list the run
    assert [r.name for r in list_runs(runs)] == [good.name, "20250103-000000-time-quick"]
    reasons = {}
    for name in bad:
        with pytest.raises(RunError) as caught:
            run_results(runs / name)
            read_fold_result(runs / name, 0)
        reasons[name] = str(caught.value)
    assert all("nested too deeply" in reasons[n] for n in list(bad)[:3]), reasons
    assert "'mean' must be a number, got \"high\"" in reasons["20250104-000000-time-quick"]
    data = {"source": "folder", "path": str(app_env["corpus"] / "ds")}
    for name in ("pages/2_Train.py", "pages/3_Results.py", "pages/4_Predict.py",
                 "pages/5_Filters.py"):
        at = page(name)
        at.session_state["tfcnn_data"] = data
        at.run()
        no_exception(at)
        assert not any("Traceback" in e.value for e in at.error)
    record_property("observed", "; ".join(sorted({r.split(": ", 1)[1][:60]
                                                  for r in reasons.values()})))


def test_app_cancel_of_a_stale_pid_spares_the_process(app_env):
    """A run whose status.json names an unrelated live process (PID reuse): Cancel reports it
    and signals nothing."""
    sleeper = subprocess.Popen(["sleep", "60"], start_new_session=True)
    try:
        run = app_env["runs"] / "20250101-000000-time-quick"
        run.mkdir()
        (run / "config.json").write_text(json.dumps({"arch": "time", "n_folds": 2}))
        (run / "status.json").write_text(json.dumps({"state": "running", "pid": sleeper.pid}))
        at = page("pages/2_Train.py")
        at.session_state["tfcnn_data"] = {"source": "folder",
                                          "path": str(app_env["corpus"] / "ds")}
        at.run()
        no_exception(at)
        cancel = [b for b in at.button if b.label == "Cancel"]
        assert cancel, "a run claiming to be running offers Cancel"
        cancel[0].click().run()
        no_exception(at)
        assert any("stale PID" in w.value for w in at.warning)
        time.sleep(0.3)
        assert sleeper.poll() is None
    finally:
        sleeper.kill()
        sleeper.wait()


def test_app_train_bounds_epochs_and_offers_only_present_devices(app_env):
    import torch

    at = page("pages/2_Train.py")
    at.session_state["tfcnn_data"] = {"source": "folder", "path": str(app_env["corpus"] / "ds")}
    at.run()
    no_exception(at)
    epochs = next(n for n in at.sidebar.number_input if n.label.startswith("Max epochs"))
    assert epochs.proto.max == 2000 and epochs.proto.has_max
    device = next(s for s in at.sidebar.selectbox if s.label == "Device")
    assert ("cuda" in device.options) == torch.cuda.is_available()
    assert {"auto", "cpu"} <= set(device.options)


@pytest.mark.slow
def _peak_resident_mb(proc: subprocess.Popen) -> float:
    """The child's own peak resident memory (VmHWM, MB), polled until it exits.

    VmHWM belongs to the process' address space after ``exec``, so unlike ``wait4``'s
    ``ru_maxrss`` it does not count the forking test process' size.
    """
    peak_kb = 0
    status = Path(f"/proc/{proc.pid}/status")
    while proc.poll() is None:
        try:
            lines = status.read_text().splitlines()
        except OSError:
            break
        for line in lines:
            if line.startswith("VmHWM:"):
                peak_kb = max(peak_kb, int(line.split()[1]))
        time.sleep(0.05)
    proc.wait()
    return peak_kb / 1024


def test_cli_predicts_a_three_hour_flac_in_bounded_memory(tmp_path, record_property):
    """`predict` of a 3 h FLAC (about 3 MB on disk, 1.9 GB as float32 at 44.1 kHz) decodes
    it block by block: the process' peak memory stays under 750 MB (a one-shot decode peaked
    at 5.5 GB)."""
    from tfcnn.checkpoint import save_checkpoint
    from tfcnn.models import build_model

    long = tmp_path / "long-3h.flac"
    rate = 8000
    block = np.zeros(10 * rate, dtype=np.float32)  # 10 s: a half-second tone, then silence
    block[: rate // 2] = 0.3 * np.sin(2 * np.pi * 440.0 * np.arange(rate // 2) / rate)
    with sf.SoundFile(long, "w", rate, 1, subtype="PCM_16") as f:
        for _ in range(3 * 360):
            f.write(block)
    ckpt = save_checkpoint(tmp_path / "m.safetensors", build_model("time", len(CLASSES)),
                           classes=CLASSES, norm_mean=0.0, norm_std=1.0, front_end=FRONT_END)
    env = dict(os.environ, PYTHONPATH=str(REPO), OMP_NUM_THREADS="1")
    with open(tmp_path / "out.txt", "wb") as out, open(tmp_path / "err.txt", "wb") as err:
        proc = subprocess.Popen([sys.executable, "-m", "tfcnn", "predict", str(long),
                                 "--checkpoint", str(ckpt)], cwd=tmp_path, env=env,
                                stdout=out, stderr=err)
        hang = threading.Timer(600, proc.kill)  # a hang fails, it does not block the suite
        hang.start()
        peak_mb = _peak_resident_mb(proc)
        hang.cancel()
    record_property("observed", f"exit {proc.returncode}, peak {peak_mb:.0f} MB, "
                    f"{long.stat().st_size / 2**20:.1f} MB FLAC")
    assert proc.returncode == 0, (tmp_path / "err.txt").read_text()
    assert "patches of 1.86 s" in (tmp_path / "out.txt").read_text()
    assert peak_mb < 750


# ----------------------------------------------------------------------------- safety probes

_REFUSE = "the one refusal message"
_NOT_LISTED = "not listed in the first probe report"
_P = "Predict 'A file on this machine': "
_F = "sidebar Folder: "


def _row(probe: str, before: str, must: str) -> dict:
    return {"probe": probe, "before": before, "must": must}


#: The safety probes these tests answer (tests/conftest.py marks them ``safety``;
#: ``scripts/safety_report.py`` writes docs/safety-probes.md from their results).
SAFETY_PROBES = {
    "test_cli_bad_input[symlink-loop]": _row(
        "`predict` a symlink loop", "\"no such file\"", "one-line error: symbolic link loop"),
    "test_cli_bad_input[dev-zero]": _row("`predict /dev/zero`", _NOT_LISTED, "one-line error"),
    "test_cli_bad_input[fifo]": _row("`predict` a named pipe", _NOT_LISTED, "one-line error"),
    "test_cli_bad_input[non-utf8-predict]": _row(
        "`predict` a valid WAV with a non-UTF-8 name", "called undecodable",
        "predicted, name escaped"),
    "test_cli_bad_input[non-utf8-undecodable]": _row(
        "`predict` junk with a non-UTF-8 name", _NOT_LISTED, "one-line error naming it"),
    "test_cli_bad_input[truncated-wav]": _row(
        "`predict` a WAV cut at 2/3", "accepted silently", "predicted with one warning line"),
    "test_cli_bad_input[lr-nan]": _row(
        "`train --lr nan`", "traceback and an empty run folder", "one-line error, no folder"),
    "test_cli_bad_input[epochs-1e9]": _row(
        "`train --epochs 1000000000`", _NOT_LISTED + " (the app's field took 10^9)",
        "one-line error, no folder"),
    "test_cli_bad_input[device-missing]": _row(
        "`train --device cuda:99` (a device this machine lacks)", _NOT_LISTED,
        "one-line error, no folder"),
    "test_cli_bad_input[non-utf8-features]": _row(
        "`features` on a folder with a non-UTF-8 name", "UnicodeEncodeError traceback",
        "name reported, the rest cached"),
    "test_cli_bad_input[non-utf8-train]": _row(
        "`train` on a folder with a non-UTF-8 name", "UnicodeEncodeError traceback", "trains"),
    "test_cli_bad_input[rate-1hz]": _row(
        "`predict` a 20 KB WAV at 1 Hz", "6.3 GB (one huge resampling block)",
        "one-line error: rate outside 1-384 kHz"),
    "test_cli_bad_input[channels-64]": _row(
        "`predict` a WAV of 64 channels (a 255-channel OGG, a sparse 1024-channel WAV)",
        "server 543 → 2,680 MB for 104 s; 5.5 GB", "one-line error: at most 32 channels"),
    "test_cli_bad_input[lengthless-flac]": _row(
        "`predict` a FLAC whose header leaves the length unset (streamed FLAC)",
        "app: \"19215358410114.1 min\"; CLI decoded it all, then \"cannot decode\"",
        "decoded as a stream to its end, predicted"),
    "test_cli_bad_input[checkpoint-dev-zero]": _row(
        "`predict --checkpoint /dev/zero`", "read until memory ran out (3.1 GB in 3.7 s)",
        "one-line error: not a regular file"),
    "test_cli_bad_input[checkpoint-fifo]": _row(
        "`predict --checkpoint` a named pipe", "hung forever",
        "one-line error: not a regular file"),
    "test_app_data_page_bounds_what_it_decodes": _row(
        "Data page: a 1 Hz WAV, a 12 min WAV and a lengthless 12 min FLAC in a class folder",
        "decoded with no duration limit: held 386 s, +980 MB",
        "one line each (rate; over the 10 min limit), from the header or once 10 min are "
        "decoded"),
    "test_hostile_cache_entries_are_named_and_recomputed": _row(
        "`.tfcnn-cache` entries: a symlink out of the data folder, a FIFO, a zip bomb, an "
        "array header announcing 10^12 frames", "symlink followed (the outside file used as "
        "features); bomb inflated (400 MB); header: MemoryError traceback (146 TiB)",
        "each named in one warning line (the FIFO skipped) and computed again"),
    "test_trainer_launched_by_the_app_reads_only_tracks_inside_the_roots": _row(
        "Train launched from the app on a data set with a class folder symlinked out of the "
        "roots", "the trainer read every track the folder reached",
        "the trainer reads only the tracks the pages show"),
    "test_features_sigterm_leaves_no_worker": _row(
        "`features --workers 2`, then SIGTERM", "orphan worker processes",
        "no orphans, one line"),
    "test_cli_predicts_a_three_hour_flac_in_bounded_memory": _row(
        "`predict` a FLAC of 3 h", "5.5 GB peak (0.3 MB FLAC of 3 h)",
        "predicted, peak < 750 MB"),
    **{f"test_app_predict_refuses_paths_outside_the_roots_alike[{key}]": _row(
        _P + probe, before, _REFUSE) for key, probe, before in [
        ("passwd", "`/etc/passwd`", "read and decoded: any path was read"),
        ("shadow", "`/etc/shadow`", "an error unlike a missing file's: reveals it exists"),
        ("missing", "a missing path", "\"no such file\": tells it apart"),
        ("dev-zero", "`/dev/zero`", "read until memory ran out"),
        ("fifo", "a named pipe", "page hung"),
        ("root", "`/`", "any path was read (not probed separately)"),
        ("symlink-loop", "a symlink loop", "any path was read (not probed separately)"),
        ("symlink-out", "a symlink inside the roots to a WAV outside",
         "any path was read (not probed separately)"),
        ("outside", "a WAV outside the roots (`../`)", "predicted and played back")]},
    "test_app_predict_reads_a_file_inside_the_roots": _row(
        _P + "a WAV inside the allowed roots (control)", "predicted", "predicted"),
    **{f"test_app_data_folder_outside_the_roots_is_refused[{key}]": _row(
        _F + probe, before, must) for key, probe, before, must in [
        ("etc", "`/etc`", "any folder: listed, played, cached into, trained on", _REFUSE),
        ("missing", "a missing folder", "any folder was used (not probed separately)",
         _REFUSE),
        ("dev-zero", "`/dev/zero`", "any folder was used (not probed separately)", _REFUSE),
        ("fifo", "a named pipe", "any folder was used (not probed separately)", _REFUSE),
        ("root", "`/`", "walked the whole disk for 39 s", _REFUSE + " in < 10 s"),
        ("symlink-out", "a symlink inside the roots to a folder outside",
         "any folder was used (not probed separately)", _REFUSE),
        ("tmp", "a data set outside the roots",
         "listed, played, `.tfcnn-cache/` written there", _REFUSE + ", nothing written")]},
    "test_app_predict_refuses_an_over_long_file_by_its_header": _row(
        "Predict: a FLAC of 10.3 min (the limit is 10)",
        "server grew to 2.7 GB (1.5 MB FLAC of 3 h)", "refused from the header"),
    "test_app_train_bounds_epochs_and_offers_only_present_devices": [
        _row("Train: Max epochs 10^9", "accepted", "input bounded at 2000"),
        _row("Train: device cuda on a CPU machine", "offered; the run failed later",
             "only present devices offered")],
    "test_app_cancel_of_a_stale_pid_spares_the_process": _row(
        "Cancel: status.json names an unrelated live PID",
        "signalled whatever process had that PID", "spared, reported as stale"),
    "test_app_pages_survive_a_run_with_a_non_utf8_config": _row(
        "a run folder with a non-UTF-8 config.json",
        "Train/Results/Predict raised for everyone", "pages render; the run is named"),
    "test_app_data_page_lists_nothing_outside_the_roots": _row(
        "a class folder that is a symlink out of the roots; a metadata.csv row "
        "`../../../outside/SECRET`",
        "listed on the Data page, audio served (SHA-1 equal to the outside file)",
        "left out with one warning; the row refused with one line"),
    "test_app_shows_names_as_text_and_neutralises_csv_formulas": _row(
        "a track named `![t](https://host:port).wav`; names starting with `=` or `+`",
        "every viewer's browser contacts the host; formulas verbatim in the CSV",
        "shown as text; `'` before formula prefixes in every CSV"),
    "test_app_pages_survive_hostile_run_files": _row(
        "deeply nested JSON in config.json, results.json or a fold's result.json; a string "
        "for results.json's mean",
        "RecursionError / \"Unknown format code 'f'\" traceback; Train, Results, Predict and "
        "Filters broken", "one line naming the file; every page renders"),
    "test_resume_on_a_changed_data_set_stops_and_leaves_the_run": _row(
        "data folder changed between a kill and `--resume` (tracks added, then a class)",
        "finished `complete: true` over folds of two splits (3 tracks tested twice, 11 never); "
        "a new class: traceback on every resume",
        "one line naming what changed, the run left as it was"),
    "test_app_data_folder_with_a_non_utf8_name_reports_it": _row(
        "a data folder holding a non-UTF-8 file name", "pages raised",
        "the name reported, the rest loads"),
}
