"""Reading run folders: status from status.json and live pids, progress tail, Table 1 rows."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from tfcnn.atomic import write_json_atomic
from tfcnn.errors import RunError
from tfcnn.procs import identify
from tfcnn.runs import (
    QUEUED,
    STARTED,
    RunFolder,
    append_event,
    complete_folds,
    fold_states,
    list_runs,
    read_progress,
    read_results,
    read_run,
    run_paths,
    run_status,
    write_launch,
)
from tfcnn.table1 import format_table, table_row


def _make_run(root, name, *, arch="time", state="finished", pid=None, n_folds=3,
              done=(0, 1), results=True):
    run = root / name
    run.mkdir(parents=True)
    write_json_atomic(run / "config.json", {
        "arch": arch, "preset": "quick", "protocol": "clean", "n_folds": n_folds,
        "n_params": 7336, "dataset": {"name": "SynthBallroom", "kind": "synth"},
    })
    write_json_atomic(run / "status.json", {
        "state": state, "pid": os.getpid() if pid is None else pid,
        "started": f"2026-01-0{len(name) % 9 + 1}T00:00:00+00:00", "finished": None,
        "error": None, "wall_s": 12.0,
    })
    for k in range(n_folds):
        append_event(run, {"event": "fold_start", "fold": k, "max_epochs": 5})
    for k in done:
        write_json_atomic(run / f"fold-{k:02d}" / "result.json", {"fold": k, "accuracy": 80.0})
    if results:
        write_json_atomic(run / "results.json", {
            "arch": arch, "n_params": 7336, "mean": 81.5, "std": 2.25, "wall_s": 12.0,
            "trained_on": "trained on SynthBallroom (synthetic)", "folds": list(done)})
    return run


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_status_states(tmp_path):
    assert run_status(_make_run(tmp_path, "a", state="finished")) == "finished"
    assert run_status(_make_run(tmp_path, "b", state="failed")) == "failed"
    assert run_status(_make_run(tmp_path, "c", state="cancelled")) == "cancelled"
    # "running" is believed only while its process lives.
    assert run_status(_make_run(tmp_path, "d", state="running")) == "running"
    assert run_status(_make_run(tmp_path, "e", state="running", pid=_dead_pid())) == "interrupted"


def test_status_without_status_file_uses_events(tmp_path):
    run = _make_run(tmp_path, "r", state="finished")
    (run / "status.json").unlink()
    assert run_status(run) == "interrupted"
    append_event(run, {"event": "run_end"})
    assert run_status(run) == "finished"


def test_fold_states_and_complete_folds(tmp_path):
    run = _make_run(tmp_path, "r", state="running", done=(0,))
    assert complete_folds(run) == [0]
    assert fold_states(run) == {0: "complete", 1: "running", 2: "running"}
    stopped = _make_run(tmp_path, "s", state="running", pid=_dead_pid(), done=(0,))
    assert fold_states(stopped) == {0: "complete", 1: "pending", 2: "pending"}


def test_read_progress_skips_a_half_written_last_line(tmp_path):
    run = _make_run(tmp_path, "r")
    with open(run / "progress.jsonl", "a") as fh:
        fh.write('{"event": "epoch", "fold": 0, "ep')  # trainer is mid-write
    events = read_progress(run)
    assert [e["event"] for e in events] == ["fold_start"] * 3
    # A broken line in the middle is damage, not a race: named in the error.
    with open(run / "progress.jsonl", "a") as fh:
        fh.write('\n{"event": "run_end"}\n')
    with pytest.raises(RunError, match="line 4"):
        read_progress(run)


def test_list_runs_skips_non_runs_and_missing_root(tmp_path):
    assert list_runs(tmp_path / "nope") == []
    _make_run(tmp_path, "one")
    _make_run(tmp_path, "three", arch="frequency", results=False)
    (tmp_path / "not-a-run").mkdir()
    runs = list_runs(tmp_path)
    assert sorted(r.name for r in runs) == ["one", "three"]
    one = next(r for r in runs if r.name == "one")
    assert (one.arch, one.status, one.n_complete, one.n_folds, one.mean) == \
        ("time", "finished", 2, 3, 81.5)
    assert next(r for r in runs if r.name == "three").mean is None


def test_missing_run_folder_is_a_run_error(tmp_path):
    with pytest.raises(RunError, match="does not exist"):
        run_status(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(RunError, match="not a run folder"):
        table_row(tmp_path / "empty")
    assert read_results(tmp_path / "empty") is None


def test_table_row_pairs_ours_with_the_paper(tmp_path):
    row = table_row(_make_run(tmp_path, "tfi", arch="timefreq-init"))
    assert (row["paper_params"], row["paper_mean"], row["paper_std"]) == (196_816, 86.54, 4.29)
    text = format_table([row, table_row(_make_run(tmp_path, "t"))])
    assert "81.50 ± 2.25 %" in text and "81.79 ± 4.72 %" in text and "86.54 ± 4.29 %" in text
    assert "synthetic" in text and "2/3" in text


def test_write_json_atomic_leaves_no_temporary_files(tmp_path):
    target = tmp_path / "x.json"
    write_json_atomic(target, {"a": 1})
    write_json_atomic(target, {"a": 2})
    assert json.loads(target.read_text()) == {"a": 2}
    assert [p.name for p in tmp_path.iterdir()] == ["x.json"]
    with pytest.raises(ValueError):
        write_json_atomic(target, {"a": float("nan")})  # not JSON: old content kept
    assert json.loads(target.read_text()) == {"a": 2}
    assert [p.name for p in tmp_path.iterdir()] == ["x.json"]


def test_table_row_counts_the_folds_that_hit_the_epoch_cap(tmp_path):
    run = _make_run(tmp_path, "capped", done=())
    config = json.loads((run / "config.json").read_text())
    write_json_atomic(run / "config.json", {**config, "train_config": {"max_epochs": 150}})
    for k, (epochs, best) in enumerate([(150, 149), (61, 40), (150, 150)]):
        write_json_atomic(run / f"fold-{k:02d}" / "result.json",
                          {"fold": k, "accuracy": 80.0, "epochs": epochs, "best_epoch": best})
    row = table_row(run)
    assert row["epochs_per_fold"] == [150, 61, 150]
    assert row["best_epoch_per_fold"] == [149, 40, 150]
    assert (row["max_epochs"], row["n_folds_capped"]) == (150, 2)
    assert "2/3 at 150" in format_table([row])


def test_resume_cuts_a_torn_last_line_so_new_events_stay_readable(tmp_path):
    config = {"arch": "time", "n_folds": 3, "seed": 0}
    run = RunFolder.create(tmp_path / "r", config)
    run.emit({"event": "fold_start", "fold": 0})
    run.set_status("failed", error="killed")
    with open(tmp_path / "r" / "progress.jsonl", "a") as fh:
        fh.write('{"event": "epoch", "fo')  # the trainer died mid-line
    again = RunFolder.reopen(tmp_path / "r", config)
    again.emit({"event": "fold_start", "fold": 1})
    assert [e["fold"] for e in read_progress(tmp_path / "r")] == [0, 1]
    with pytest.raises(RunError, match="configuration differs"):
        RunFolder.reopen(tmp_path / "r", {**config, "seed": 1})
    with pytest.raises(RunError, match="not empty"):
        RunFolder.create(tmp_path / "r", config)


def test_a_resumed_run_starts_until_its_trainer_writes_then_keeps_its_word(tmp_path):
    """Resume: the old trainer's "cancelled" reads "starting" while the new one starts; once
    the new trainer (the launch's PID) wrote "finished", that holds while it exits."""
    run_dir = tmp_path / "20260101-000000-time-quick"
    RunFolder.create(run_dir, {"arch": "time", "n_folds": 2})
    old = {"state": "cancelled", "pid": 1, "started": None, "finished": None, "error": None}
    write_json_atomic(run_dir / "status.json", old)
    write_launch(run_dir, {"state": STARTED, "resume": True, "arch": "time", "n_folds": 2,
                           "pid": os.getpid(), "process": identify(os.getpid()).to_dict()})
    assert read_run(run_dir).status == "starting"
    write_json_atomic(run_dir / "status.json", {**old, "state": "finished",
                                                "pid": os.getpid()})
    assert read_run(run_dir).status == "finished"  # its process is still alive (this one)


def test_read_run_of_a_launch_without_a_folder_yet(tmp_path):
    run_dir = tmp_path / "20260101-000000-time-quick"
    (tmp_path / ".launches" / run_dir.name).mkdir(parents=True)
    write_launch(run_dir, {"state": QUEUED, "arch": "time", "n_folds": 4})
    run = read_run(run_dir)
    assert (run.status, run.arch, run.n_folds) == ("queued", "time", 4)
    assert run_paths(tmp_path, launched=True) == [run_dir] and run_paths(tmp_path) == []
    write_launch(run_dir, {"state": STARTED, "arch": "time", "n_folds": 4,
                           "process": identify(os.getpid()).to_dict()})
    assert read_run(run_dir).status == "starting"
    write_launch(run_dir, {"state": STARTED, "arch": "time", "n_folds": 4, "process": None})
    run = read_run(run_dir)
    assert run.status == "failed"
    assert run.error == "the training process ended before it started"
