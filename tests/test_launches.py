"""Resuming a stopped run through the launch queue (tfcnn.launches): the real trainer."""

from __future__ import annotations

import json
import time

import pytest

from tfcnn import launches
from tfcnn.errors import RunError
from tfcnn.request import RunRequest
from tfcnn.runs import (
    FOLD_RESULT_FILE,
    STATUS_FILE,
    complete_folds,
    fold_dir,
    read_launch,
    read_run,
)
from tfcnn.train import train_run


@pytest.fixture
def stopped_run(synth_dataset, tmp_path, monkeypatch):
    """A 2-fold run with settings off the preset's, whose fold 1 was lost: as a run
    cancelled during its second fold."""
    monkeypatch.delenv(launches.ENV_MAX_RUNS, raising=False)
    run = tmp_path / "runs" / "r1"
    train_run(RunRequest(synth_dataset, "time", n_folds=2, preset="quick", epochs=2, lr=0.005,
                         time_filter=(1, 30), n_filters=4), run)
    (fold_dir(run, 1) / FOLD_RESULT_FILE).unlink()
    status = json.loads((run / STATUS_FILE).read_text())
    (run / STATUS_FILE).write_text(json.dumps({**status, "state": "cancelled"}))
    return run


def test_resume_command_carries_the_run_settings(stopped_run, synth_dataset):
    cmd = launches.resume_command(stopped_run)
    text = " ".join(cmd)
    assert cmd[1:4] == ["-m", "tfcnn", "train"] and cmd[-1] == "--resume"
    for part in ("--arch time", f"--out {stopped_run}", "--folds 2", "--preset quick",
                 "--epochs 2", "--lr 0.005", "--time-filter 1x30", "--n-filters 4"):
        assert part in text, (part, text)
    assert "--freq-filter" not in text and "--batch-size" not in text


def test_resume_through_the_queue_finishes_the_run(stopped_run):
    assert read_run(stopped_run).status == "cancelled"
    cmd = launches.submit_resume(stopped_run)
    record = read_launch(stopped_run)
    assert record["command"] == cmd and record["resume"] is True
    assert record["state"] in (launches.STARTED, launches.QUEUED)
    with pytest.raises(RunError, match="already queued|still running"):
        launches.submit_resume(stopped_run)
    deadline = time.monotonic() + 180
    while read_run(stopped_run).status in ("queued", "starting", "running"):
        assert time.monotonic() < deadline, read_run(stopped_run).log_tail
        launches.pump(stopped_run.parent)
        time.sleep(0.5)
    run = read_run(stopped_run)
    # the real trainer accepted the command (same configuration) and redid fold 1 only
    assert run.status == "finished", run.log_tail
    assert complete_folds(stopped_run) == [0, 1]
    assert sum(1 for e in run.events if e["event"] == "fold_start" and e["fold"] == 0) == 1
    launches.reap()
