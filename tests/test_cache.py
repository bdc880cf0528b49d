"""tfcnn.cache: computed once, reused, recomputed exactly when a file changes, never corrupt."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from tfcnn.audio import load_audio
from tfcnn.cache import (
    CACHE_DIRNAME,
    FeatureSet,
    _mp_context,
    cache_state,
    front_end_key,
    load_features,
    prune_cache,
)
from tfcnn.config import FRONT_END, FrontEnd
from tfcnn.datasets import load_dataset
from tfcnn.errors import AudioError, CacheWarning, ConfigError
from tfcnn.features import log_mel

REPO = Path(__file__).resolve().parents[1]
SR = 44100


@pytest.fixture()
def small_dataset(tmp_path, folder_dataset) -> Path:
    """A private copy of 3 classes x 2 tracks of the shared fixture (these tests mutate it)."""
    root = tmp_path / "data"
    for cls in sorted(p.name for p in folder_dataset.iterdir()
                      if p.is_dir() and not p.name.startswith("."))[:3]:  # not the cache
        (root / cls).mkdir(parents=True)
        for f in sorted((folder_dataset / cls).glob("*.wav"))[:2]:
            shutil.copy2(f, root / cls / f.name)
    return root


def entries(root: Path) -> dict[str, int]:
    """Cache entry file -> mtime_ns."""
    return {p.name: p.stat().st_mtime_ns for p in root.glob(f"{CACHE_DIRNAME}/*/*.npz")}


def fresh(path: str, front_end: FrontEnd = FRONT_END) -> np.ndarray:
    """The front end computed directly, outside the cache: (n_mels, T) float32."""
    return log_mel(load_audio(path, sample_rate=front_end.sample_rate), front_end.sample_rate,
                   front_end=front_end)


def test_cached_features_equal_fresh_ones_and_are_reused(small_dataset):
    ds = load_dataset(small_dataset)
    assert cache_state(ds) == (0, 6)
    calls = []
    first = load_features(ds, workers=2, progress=lambda d, t: calls.append((d, t)))
    assert isinstance(first, FeatureSet) and first.n_computed == 6
    assert calls[0] == (0, 6) and calls[-1] == (6, 6) and len(calls) == 7
    assert [d for d, _ in calls] == sorted(d for d, _ in calls)
    assert first.track_ids == list(ds.tracks["track"])
    np.testing.assert_array_equal(first.labels, ds.tracks["label"].to_numpy())
    assert first.labels.dtype == np.int64
    for spec, path in zip(first.specs, ds.tracks["path"]):
        assert spec.dtype == np.float32 and spec.shape == (40, 1 + -(-6 * SR // 1024))
        np.testing.assert_array_equal(spec, fresh(path))
    assert first.cache_dir == small_dataset / CACHE_DIRNAME / front_end_key(FRONT_END)
    assert cache_state(ds) == (6, 6)

    before = entries(small_dataset)
    assert len(before) == 6
    second = load_features(ds, workers=2)
    assert second.n_computed == 0
    assert entries(small_dataset) == before  # read, not rewritten
    for a, b in zip(first.specs, second.specs):
        np.testing.assert_array_equal(a, b)
    # The cache folder is hidden: the data set still reads the same.
    assert load_dataset(small_dataset).tracks.equals(ds.tracks)


def test_changed_and_added_files_are_recomputed_alone(small_dataset):
    ds = load_dataset(small_dataset)
    load_features(ds, workers=1)
    victim = Path(ds.tracks["path"][2])
    y = sf.read(victim, dtype="float32")[0]
    sf.write(victim, 0.5 * y, SR, subtype="PCM_16")  # new content, new size/mtime
    st = victim.stat()
    os.utime(victim, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
    added = small_dataset / ds.classes[0] / "added.wav"
    shutil.copy(ds.tracks["path"][0], added)
    ds2 = load_dataset(small_dataset)
    assert cache_state(ds2) == (5, 7)
    out = load_features(ds2, workers=2)
    assert out.n_computed == 2
    i_victim = out.track_ids.index(ds2.tracks.loc[ds2.tracks.path == str(victim), "track"].item())
    np.testing.assert_array_equal(out.specs[i_victim], fresh(str(victim)))
    assert cache_state(ds2) == (7, 7)


def test_leftover_tmp_and_corrupt_entries_are_recomputed(small_dataset):
    ds = load_dataset(small_dataset)
    out = load_features(ds, workers=1)
    files = sorted(out.cache_dir.glob("*.npz"))
    # A crash between writing the tmp file and os.replace leaves only a *.tmp file.
    tmp = files[0].with_name(files[0].name + ".1234-deadbeef.tmp")
    files[0].rename(tmp)
    # A damaged entry (truncated by a full disk, say) and one of the wrong shape.
    files[1].write_bytes(files[1].read_bytes()[:100])
    with open(files[2], "wb") as f:
        np.save(f, np.zeros((7, 3), np.float32))
    assert cache_state(ds) == (5, 6)  # the tmp file never counts
    with pytest.warns(CacheWarning, match="damaged feature cache entry"):
        again = load_features(ds, workers=1)
    assert again.n_computed == 3
    for spec, path in zip(again.specs, ds.tracks["path"]):
        np.testing.assert_array_equal(spec, fresh(path))


def test_flipped_bytes_in_an_entry_are_named_and_recomputed(small_dataset):
    """A bit flip on disk: caught by the archive's CRC, or (flipped before it was zipped) by
    the stored SHA-256; the entry is named, computed again, and the run goes on."""
    ds = load_dataset(small_dataset)
    out = load_features(ds, workers=1)
    files = sorted(out.cache_dir.glob("*.npz"))
    raw = bytearray(files[0].read_bytes())
    raw[len(raw) // 2] ^= 0xFF  # inside the spectrogram's bytes
    files[0].write_bytes(bytes(raw))
    with np.load(files[1]) as entry:
        spec, digest, made_with = entry["spec"].copy(), entry["sha256"], entry["front_end"]
    spec[3, 5] = 9.2e19  # a value no log-mel has, with the old checksum
    with open(files[1], "wb") as f:
        np.savez(f, spec=spec, sha256=digest, front_end=made_with)
    with pytest.warns(CacheWarning) as caught:
        again = load_features(ds, workers=1)
    messages = sorted(str(w.message) for w in caught)
    assert len(messages) == 2
    assert any(files[0].name in m and "unreadable" in m for m in messages)
    assert any(files[1].name in m and "checksum mismatch" in m for m in messages)
    assert again.n_computed == 2
    for spec, path in zip(again.specs, ds.tracks["path"]):
        np.testing.assert_array_equal(spec, fresh(path))
    assert max(float(np.abs(s).max()) for s in again.specs) < 100


def test_undecodable_file_is_an_audio_error_naming_it(small_dataset):
    bad = small_dataset / "ChaChaCha" / "broken.wav"
    bad.write_bytes(b"RIFF\x00\x00\x00\x00WAVEnot really audio" * 10)
    ds = load_dataset(small_dataset)
    with pytest.raises(AudioError, match="broken.wav"):
        load_features(ds, workers=2)
    assert not any(p.suffix == ".tmp" for p in small_dataset.rglob("*"))
    bad.unlink()
    assert load_features(load_dataset(small_dataset), workers=1).n_computed <= 6


def test_missing_file_is_an_audio_error(small_dataset):
    ds = load_dataset(small_dataset)
    Path(ds.tracks["path"][0]).unlink()
    with pytest.raises(AudioError, match=r"\.wav: audio file is missing"):
        load_features(ds, workers=1)


def test_another_front_end_gets_its_own_entries(small_dataset):
    ds = load_dataset(small_dataset)
    load_features(ds, workers=1)
    fe = FrontEnd(n_mels=20)
    assert front_end_key(fe) != front_end_key(FRONT_END)
    assert cache_state(ds, front_end=fe) == (0, 6)
    out = load_features(ds, front_end=fe, workers=1)
    assert out.n_computed == 6 and out.specs[0].shape == (20, 1 + -(-6 * SR // 1024))
    np.testing.assert_array_equal(out.specs[0], fresh(ds.tracks["path"][0], fe))


def test_unwritable_data_folder_falls_back_to_user_cache(small_dataset, tmp_path, monkeypatch):
    # A file where the cache folder should be: no cache can be created there, even as root.
    (small_dataset / CACHE_DIRNAME).write_text("in the way")
    home = tmp_path / "user-cache"
    monkeypatch.setenv("TFCNN_CACHE_HOME", str(home))
    ds = load_dataset(small_dataset)
    out = load_features(ds, workers=1)
    assert out.n_computed == 6 and out.cache_dir.is_relative_to(home)
    assert len(list(out.cache_dir.glob("*.npz"))) == 6
    assert cache_state(ds) == (6, 6)
    assert load_features(ds, workers=1).n_computed == 0


def test_parallel_forkserver_path_in_a_threaded_process(small_dataset):
    """With other threads alive (the Streamlit server) workers come from a fork server."""
    stop = threading.Event()
    helper = threading.Thread(target=stop.wait, daemon=True)
    helper.start()
    try:
        assert _mp_context().get_start_method() == "forkserver"
        out = load_features(load_dataset(small_dataset), workers=2)
    finally:
        stop.set()
        helper.join()
    assert out.n_computed == 6
    last = load_dataset(small_dataset).tracks["path"].iloc[-1]
    np.testing.assert_array_equal(out.specs[-1], fresh(last))


def test_bad_workers_value(small_dataset):
    with pytest.raises(ConfigError, match="workers must be an integer >= 1, got 0"):
        load_features(load_dataset(small_dataset), workers=0)


def test_cli_features_builds_then_reuses(small_dataset, tmp_path):
    cmd = [sys.executable, "-m", "tfcnn", "features", str(small_dataset), "--workers", "2"]
    first = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=180)
    assert first.returncode == 0, first.stderr
    assert "6 tracks, 3 classes" in first.stdout
    assert "computed 6, reused 0 (cached before: 0/6)" in first.stdout
    assert "6/6" in first.stderr  # the tqdm bar
    assert cache_state(load_dataset(small_dataset)) == (6, 6)
    assert load_features(load_dataset(small_dataset), workers=1).n_computed == 0
    bad = subprocess.run([sys.executable, "-m", "tfcnn", "features", str(tmp_path / "nope")],
                         cwd=REPO, capture_output=True, text=True, timeout=180)
    assert bad.returncode == 2 and bad.stderr.startswith("error: data set folder")


def test_prune_removes_only_entries_no_track_uses(small_dataset):
    ds = load_dataset(small_dataset)
    out = load_features(ds, workers=1)
    victim = Path(ds.tracks["path"][2])
    st = victim.stat()
    os.utime(victim, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))  # edited: a new entry
    gone = Path(ds.tracks["path"][4])
    gone.unlink()  # removed from the data set
    (out.cache_dir / "x.npz.1234-deadbeef.tmp").write_bytes(b"half")  # a crash's leftover
    other = small_dataset / CACHE_DIRNAME / "other-front-end"
    other.mkdir()
    (other / "a.npz").write_bytes(b"kept")
    ds2 = load_dataset(small_dataset)
    assert load_features(ds2, workers=1).n_computed == 1  # the edited file
    before = set(entries(small_dataset))
    assert len(before) == 6 + 1 + 1  # 6 original + 1 new + other front end's
    n_files, n_bytes = prune_cache(ds2)
    assert n_files == 3 and n_bytes > 0  # the edited file's old entry, the removed one's, tmp
    after = entries(small_dataset)
    assert "a.npz" in after and len(after) == 5 + 1
    assert not list(out.cache_dir.glob("*.tmp"))
    # What remains is exactly what the data set reads: nothing recomputed, nothing missing.
    assert cache_state(ds2) == (5, 5)
    assert load_features(ds2, workers=1).n_computed == 0
    assert prune_cache(ds2) == (0, 0)


def test_cli_features_prune(small_dataset):
    load_features(load_dataset(small_dataset), workers=1)
    Path(load_dataset(small_dataset).tracks["path"][0]).unlink()
    cmd = [sys.executable, "-m", "tfcnn", "features", str(small_dataset), "--prune", "--quiet"]
    proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=180)
    assert proc.returncode == 0, proc.stderr
    assert "pruned 1 stale cache entries" in proc.stdout


#: The safety probes these tests answer (tests/conftest.py marks them ``safety``;
#: ``scripts/safety_report.py`` writes docs/safety-probes.md from their results).
SAFETY_PROBES = {
    "test_flipped_bytes_in_an_entry_are_named_and_recomputed": {
        "probe": "bytes flipped in `.tfcnn-cache` entries",
        "before": "used silently: a fold's norm_std 9.2e19, exit 0",
        "must": "named and recomputed"},
}
