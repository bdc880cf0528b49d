"""Archiving, restoring and deleting run folders (tfcnn.archive)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from tfcnn.archive import archive_run, archived_paths, delete_run, restore_run
from tfcnn.errors import RunError
from tfcnn.runs import (
    CONFIG_FILE,
    LAUNCH_FILE,
    STATUS_FILE,
    launch_dir,
    list_runs,
    run_paths,
    write_launch,
)


def make_run(root, name, *, state="finished", pid=None, launched=False):
    run = root / name
    run.mkdir(parents=True)
    (run / CONFIG_FILE).write_text(json.dumps({"arch": "time", "n_folds": 2}))
    (run / STATUS_FILE).write_text(json.dumps({"state": state, "pid": pid or os.getpid(),
                                               "started": "2026-01-01T00:00:00"}))
    if launched:
        write_launch(run, {"state": "started", "command": ["x"]})
        (launch_dir(run) / "log.txt").write_text("trainer output\n")
    return run


def test_archive_hides_a_run_and_restore_brings_it_back(tmp_path):
    root = tmp_path / "runs"
    run = make_run(root, "20260101-000000-time-quick", launched=True)
    other = make_run(root, "20260102-000000-time-quick")
    moved = archive_run(run, root=root)
    assert moved == root / "archive" / run.name and (moved / CONFIG_FILE).is_file()
    assert (launch_dir(moved) / LAUNCH_FILE).is_file()  # its log goes with it
    # gone from every list of the root (the app's pages read these), listed when asked
    assert run_paths(root, launched=True) == [other]
    assert [r.path for r in list_runs(root)] == [other]
    assert archived_paths(root) == [moved]
    back = restore_run(moved, root=root)
    assert back == run and (launch_dir(run) / "log.txt").read_text() == "trainer output\n"
    assert archived_paths(root) == []
    assert set(run_paths(root, launched=True)) == {run, other}


def test_delete_removes_the_run_and_its_launch_record(tmp_path):
    root = tmp_path / "runs"
    run = make_run(root, "r1", launched=True)
    archived = archive_run(make_run(root, "r2"), root=root)
    delete_run(run, root=root)
    assert not run.exists() and not launch_dir(run).exists()
    delete_run(archived, root=root)
    assert not archived.exists()
    assert {p.name for p in root.iterdir()} == {"archive", ".launches"}
    assert not any(p.name.startswith(".trash") for p in root.rglob("*"))


def test_running_runs_and_foreign_folders_are_left_alone(tmp_path):
    root = tmp_path / "runs"
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        running = make_run(root, "busy", state="running", pid=proc.pid)
        for action in (archive_run, delete_run):
            with pytest.raises(RunError, match="busy is running"):
                action(running, root=root)
        assert (running / CONFIG_FILE).is_file()
    finally:
        proc.kill()
        proc.wait()
    outside = make_run(tmp_path / "elsewhere", "r9")
    with pytest.raises(RunError, match="not a run folder directly in"):
        delete_run(outside, root=root)
    with pytest.raises(RunError, match="not a run folder directly in"):
        delete_run(root / "sub" / ".." / ".." / "elsewhere" / "r9", root=root)
    (root / "notes").mkdir()
    with pytest.raises(RunError, match="is not a run"):
        delete_run(root / "notes", root=root)
    assert (outside / CONFIG_FILE).is_file() and (root / "notes").is_dir()
    # an archived name taken in the root: restore refuses instead of overwriting
    archived = archive_run(make_run(root, "twin"), root=root)
    make_run(root, "twin")
    with pytest.raises(RunError, match="already exists"):
        restore_run(archived, root=root)
