"""tfcnn.datasets: the three layouts, the shipped track table, and clear errors."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import soundfile as sf

from tfcnn.config import CLASSES
from tfcnn.datasets import (
    BALLROOM_FOLDERS,
    DEFAULT_DATA_DIR,
    TRACK_COLUMNS,
    ballroom_track_table,
    describe,
    load_dataset,
)
from tfcnn.errors import DatasetError

SR = 44100
REPO = Path(__file__).resolve().parents[1]


def write_tone(path: Path, *, seconds: float = 0.2, freq_hz: float = 440.0) -> Path:
    """A short real 16-bit WAV (a sine), enough for the readers, which never decode."""
    path.parent.mkdir(parents=True, exist_ok=True)
    t = np.arange(int(seconds * SR)) / SR
    sf.write(path, (0.3 * np.sin(2 * np.pi * freq_hz * t)).astype(np.float32), SR,
             subtype="PCM_16")
    return path


def ballroom_stems(per_folder: int) -> dict[str, list[str]]:
    """Real track stems from the shipped table for each folder of the official archive."""
    table = ballroom_track_table().sort_values("track")
    out: dict[str, list[str]] = {}
    rumba = iter(table.loc[table.dance == "Rumba", "track"])
    for folder, dance in BALLROOM_FOLDERS.items():
        if dance == "Rumba":  # the table merges the three Rumba folders: any split will do
            out[folder] = [next(rumba) for _ in range(per_folder)]
        else:
            out[folder] = list(table.loc[table.dance == dance, "track"][:per_folder])
    return out


def make_official(root: Path, per_folder: int = 2) -> dict[str, list[str]]:
    stems = ballroom_stems(per_folder)
    for folder, names in stems.items():
        for stem in names:
            write_tone(root / "BallroomData" / folder / f"{stem}.wav")
    return stems


# --------------------------------------------------------------------------- track table

def test_track_table_matches_the_published_counts():
    t = ballroom_track_table()
    assert list(t.columns) == ["track", "dance", "bpm", "beats_per_bar", "replica_group"]
    assert len(t) == 698 and t["track"].is_unique
    counts = t.groupby("dance").size().to_dict()
    assert counts == {"ChaChaCha": 111, "Jive": 60, "Quickstep": 82, "Rumba": 98,
                      "Samba": 86, "Tango": 86, "VienneseWaltz": 65, "Waltz": 110}
    assert set(t.loc[t.dance.isin(["Waltz", "VienneseWaltz"]), "beats_per_bar"]) == {3.0}
    assert t["bpm"].between(60, 224).all()
    # The one replica pair that crosses classes (data README).
    g = t.set_index("track").loc[["Albums-Fire-08", "Albums-Fire-09"], "replica_group"]
    assert g.iloc[0] == g.iloc[1] != ""
    t.loc[0, "bpm"] = -1.0  # a copy: the next caller sees the original
    assert ballroom_track_table().loc[0, "bpm"] > 0


def test_default_data_dir_does_not_depend_on_cwd(tmp_path):
    assert DEFAULT_DATA_DIR == REPO / "data" / "synth-ballroom"
    out = subprocess.run(
        [sys.executable, "-c",
         "from tfcnn.datasets import DEFAULT_DATA_DIR; print(DEFAULT_DATA_DIR)"],
        cwd=tmp_path, capture_output=True, text=True, timeout=60,
        env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin"},
    )
    assert out.returncode == 0, out.stderr
    assert Path(out.stdout.strip()) == DEFAULT_DATA_DIR


# --------------------------------------------------------------------------- Ballroom

@pytest.mark.parametrize("inside", [False, True])
def test_official_layout_merges_rumba_and_joins_tempo(tmp_path, inside):
    stems = make_official(tmp_path, per_folder=2)
    ds = load_dataset(tmp_path / "BallroomData" if inside else tmp_path)
    assert ds.kind == "ballroom" and ds.name == "Ballroom"
    assert ds.root == (tmp_path / "BallroomData").resolve()
    assert ds.classes == CLASSES
    assert list(ds.tracks.columns) == list(TRACK_COLUMNS)
    assert len(ds.tracks) == 20
    counts = ds.tracks.groupby("dance").size().to_dict()
    assert counts["Rumba"] == 6 and counts["Jive"] == 2 and len(counts) == 8
    # Labels index CLASSES; tempo, meter and replica groups come from the shipped table.
    assert (ds.tracks["label"] == ds.tracks["dance"].map(CLASSES.index)).all()
    table = ballroom_track_table().set_index("track")
    joined = ds.tracks.set_index("track")
    np.testing.assert_array_equal(joined["bpm"], table.loc[joined.index, "bpm"])
    np.testing.assert_array_equal(joined["beats_per_bar"], table.loc[joined.index, "beats_per_bar"])
    assert (joined["replica_group"] == table.loc[joined.index, "replica_group"]).all()
    assert all(Path(p).is_absolute() and Path(p).is_file() for p in ds.tracks["path"])
    assert stems["Rumba-Misc"][0] in set(ds.tracks["track"])
    # The report says how many of the 698 are there; the rest are listed as missing.
    assert ds.report[0] == "20 of 698 Ballroom tracks present"
    assert len(ds.missing) == 678 and not ds.unknown
    assert ds.labels.dtype == np.int64 and ds.n_tracks == 20


def test_merged_layout_is_recognised_by_its_stems_and_reports_extras(tmp_path):
    stems = ballroom_stems(1)
    for folder, names in stems.items():
        write_tone(tmp_path / BALLROOM_FOLDERS[folder] / f"{names[0]}.wav")
    write_tone(tmp_path / "Tango" / "my-own-tango.wav")
    (tmp_path / "Tango" / "notes.txt").write_text("not audio")
    write_tone(tmp_path / "Tango" / "._resource-fork.wav")  # macOS litter: skipped
    ds = load_dataset(tmp_path)
    assert ds.kind == "ballroom"
    assert len(ds.tracks) == 11
    extra = ds.tracks.set_index("track").loc["my-own-tango"]
    assert extra["dance"] == "Tango" and np.isnan(extra["bpm"])
    assert ds.unknown == (str((tmp_path / "Tango" / "my-own-tango.wav").resolve()),)
    assert any("not in the Ballroom track table" in line for line in ds.report)
    assert describe(ds)["n_unknown"] == 1


def test_ballroom_folder_without_known_tracks_is_an_error(tmp_path):
    write_tone(tmp_path / "BallroomData" / "Jive" / "not-a-ballroom-track.wav")
    with pytest.raises(DatasetError, match=r"BallroomData.*none of its 698 tracks"):
        load_dataset(tmp_path)


# --------------------------------------------------------------------------- folder per class

def test_folder_fixture_with_ballroom_names_keeps_paper_order(folder_dataset):
    ds = load_dataset(folder_dataset)
    assert ds.kind == "folder"  # stems are not Ballroom's: not mistaken for Ballroom
    assert ds.classes == CLASSES
    assert len(ds.tracks) == 24
    assert ds.tracks["bpm"].isna().all() and (ds.tracks["replica_group"] == "").all()
    assert (ds.tracks.groupby("label").size() == 3).all()


def test_any_class_names_are_sorted_and_formats_picked_up(tmp_path):
    write_tone(tmp_path / "rock" / "a.wav")
    sf.write(tmp_path / "rock" / "b.flac", np.zeros(4410, np.float32), SR)
    (tmp_path / "blues").mkdir()
    sf.write(tmp_path / "blues" / "a.ogg", np.zeros(4410, np.float32), SR,
             format="OGG", subtype="VORBIS")
    write_tone(tmp_path / "blues" / "sub" / "deep.wav")
    (tmp_path / "blues" / "cover.jpg").write_bytes(b"\xff\xd8")
    (tmp_path / "empty").mkdir()
    with pytest.warns(UserWarning, match="empty.*no audio files"):
        ds = load_dataset(tmp_path)
    assert ds.kind == "folder" and ds.name == tmp_path.name
    assert ds.classes == ("blues", "rock")
    assert list(ds.tracks["track"]) == ["blues/a", "blues/sub/deep", "rock/a", "rock/b"]
    assert list(ds.tracks["label"]) == [0, 0, 1, 1]
    assert any("empty" in line for line in ds.report)
    info = describe(ds)
    assert info["per_class"] == {"blues": 2, "rock": 2} and info["has_tempo"] is False


def test_same_stem_twice_in_a_class_keeps_ids_unique(tmp_path):
    write_tone(tmp_path / "a" / "x.wav")
    sf.write(tmp_path / "a" / "x.flac", np.zeros(4410, np.float32), SR)
    write_tone(tmp_path / "b" / "y.wav")
    ds = load_dataset(tmp_path)
    assert ds.tracks["track"].is_unique
    assert set(ds.tracks["track"]) == {"a/x.wav", "a/x.flac", "b/y"}


@pytest.mark.parametrize("case, pattern", [
    ("missing", r"does not exist"),
    ("file", r"is not a folder"),
    ("empty", r"no class sub-folders with audio files \(\.flac"),
    ("loose", r"2 audio file\(s\) must be in one sub-folder per class"),
])
def test_bad_folders_raise_naming_the_path(tmp_path, case, pattern):
    target = tmp_path / "data"
    if case == "file":
        target.write_text("x")
    elif case == "empty":
        (target / "just-a-folder").mkdir(parents=True)
    elif case == "loose":
        write_tone(target / "a.wav")
        write_tone(target / "b.wav")
    with pytest.raises(DatasetError, match=pattern) as err:
        load_dataset(target)
    assert str(target) in str(err.value)


# --------------------------------------------------------------------------- SynthBallroom

def make_synth(root: Path, rows: list[tuple[str, str, float, int]], *, write=True) -> Path:
    meta = pd.DataFrame(rows, columns=["track", "dance", "bpm", "beats_per_bar"])
    meta["seed"] = range(len(meta))
    root.mkdir(parents=True, exist_ok=True)
    meta.to_csv(root / "metadata.csv", index=False)
    if write:
        for track, dance, *_ in rows:
            write_tone(root / dance / f"{track}.wav")
    return root


def test_synth_metadata_gives_tempo_and_meter(tmp_path):
    root = make_synth(tmp_path / "synth", [("waltz-000", "Waltz", 86.5, 3),
                                           ("jive-000", "Jive", 171.0, 4),
                                           ("jive-001", "Jive", 160.0, 4)])
    ds = load_dataset(root)
    assert ds.kind == "synth" and ds.name == "SynthBallroom" and ds.classes == CLASSES
    assert list(ds.tracks["track"]) == ["jive-000", "jive-001", "waltz-000"]
    assert list(ds.tracks["label"]) == [1, 1, 7]
    assert list(ds.tracks["bpm"]) == [171.0, 160.0, 86.5]
    assert list(ds.tracks["beats_per_bar"]) == [4.0, 4.0, 3.0]
    info = describe(ds)
    assert info["tempo"]["Jive"] == {"min": 160.0, "median": 165.5, "max": 171.0}
    assert info["meter"]["Waltz"] == 3 and info["per_class"]["Tango"] == 0


@pytest.mark.parametrize("edit, pattern", [
    ("drop_bpm", r"metadata.csv lacks column\(s\) bpm"),
    ("bad_dance", r"metadata.csv has unknown dance\(s\) Polka"),
    ("missing_file", r"metadata.csv lists track 'jive-001' but .*jive-001.wav is missing"),
    ("bad_bpm", r"metadata.csv row 3: bpm must be a number, got 'fast'"),
    ("empty", r"metadata.csv lists no tracks"),
])
def test_malformed_metadata_is_an_error_naming_the_file(tmp_path, edit, pattern):
    root = make_synth(tmp_path / "synth", [("jive-000", "Jive", 171.0, 4),
                                           ("jive-001", "Jive", 160.0, 4)])
    meta = pd.read_csv(root / "metadata.csv")
    if edit == "drop_bpm":
        meta = meta.drop(columns="bpm")
    elif edit == "bad_dance":
        meta.loc[0, "dance"] = "Polka"
    elif edit == "missing_file":
        (root / "Jive" / "jive-001.wav").unlink()
    elif edit == "bad_bpm":
        meta["bpm"] = meta["bpm"].astype(object)
        meta.loc[1, "bpm"] = "fast"
    elif edit == "empty":
        meta = meta.iloc[:0]
    meta.to_csv(root / "metadata.csv", index=False)
    with pytest.raises(DatasetError, match=pattern):
        load_dataset(root)


def test_generated_synth_ballroom_reads_back(synth_dataset):
    ds = load_dataset(synth_dataset)
    assert ds.kind == "synth" and ds.classes == CLASSES
    assert (ds.tracks.groupby("dance").size() == 4).all() and len(ds.tracks) == 32
    assert ds.tracks["bpm"].notna().all()
    assert set(ds.tracks.loc[ds.tracks.dance == "Waltz", "beats_per_bar"]) == {3.0}


def test_dataset_pickles_for_the_app_cache(tmp_path):
    """st.cache_data pickles what it caches: a Dataset must round-trip."""
    import pickle

    make_official(tmp_path, per_folder=1)
    ds = load_dataset(tmp_path)
    back = pickle.loads(pickle.dumps(ds))
    assert back.tracks.equals(ds.tracks) and back.classes == ds.classes
    assert back.report == ds.report and back.missing == ds.missing



def test_one_class_data_set_cannot_be_trained(tmp_path):
    from tfcnn.datasets import require_two_classes

    for dance in ("Waltz", "Jive"):
        (tmp_path / dance).mkdir()
        sf.write(tmp_path / dance / "a.wav", np.zeros(44100, dtype=np.float32), 44100)
    require_two_classes(load_dataset(tmp_path))  # two classes: fine
    (tmp_path / "Jive" / "a.wav").unlink()
    with pytest.warns(UserWarning, match="no audio files"):
        dataset = load_dataset(tmp_path)
    with pytest.raises(DatasetError, match=r"only one class \(Waltz\); a classifier needs"):
        require_two_classes(dataset)
