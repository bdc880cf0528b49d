"""Process identity and the launch queue (tfcnn.procs, tfcnn.launches), with real processes."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from tfcnn import launches
from tfcnn.atomic import write_json_atomic
from tfcnn.procs import GONE, SIGNALLED, STALE, identify, is_alive, is_tfcnn_train, signal_run
from tfcnn.request import RunRequest


@pytest.fixture
def sleeper():
    """A real, unrelated process (``sleep``) that must survive every stale cancel."""
    proc = subprocess.Popen(["sleep", "60"], start_new_session=True)
    deadline = time.monotonic() + 5  # until exec has given it its command line
    while not getattr(identify(proc.pid), "cmdline", ()) and time.monotonic() < deadline:
        time.sleep(0.01)
    yield proc
    proc.kill()
    proc.wait(timeout=10)


def fake_run(tmp_path, pid: int):
    """A run folder whose status.json claims ``pid`` is its running trainer (stale)."""
    run = tmp_path / "runs" / "20250101-000000-time-quick"
    run.mkdir(parents=True)
    write_json_atomic(run / "config.json", {"arch": "time", "n_folds": 2})
    write_json_atomic(run / "status.json", {"state": "running", "pid": pid,
                                            "started": "2025-01-01T00:00:00+00:00"})
    return run


def test_identity_has_start_time_and_command_line(sleeper):
    me = identify(sleeper.pid)
    assert me is not None and me.cmdline == ("sleep", "60") and me.started > 0
    assert is_alive(me)
    assert identify(2**22 + 12345) is None  # no such PID


def test_stale_status_pid_is_reported_not_killed(tmp_path, sleeper):
    run = fake_run(tmp_path, sleeper.pid)
    assert launches.cancel(run, status_pid=sleeper.pid) == STALE
    time.sleep(0.3)
    assert sleeper.poll() is None, "an unrelated process was signalled"


def test_recorded_identity_must_match(tmp_path, sleeper):
    run = fake_run(tmp_path, sleeper.pid)
    me = identify(sleeper.pid)
    # same PID, another start time (as after a reboot): stale
    other = type(me)(pid=me.pid, started=me.started + 1, cmdline=me.cmdline)
    assert signal_run(run, recorded=other) == STALE
    # the right identity but not a `tfcnn train --out run` command line: stale too
    assert signal_run(run, recorded=me) == STALE
    assert sleeper.poll() is None
    sleeper.kill()
    sleeper.wait()
    assert signal_run(run, recorded=me) == GONE


@pytest.mark.parametrize("command", ["train", "sweep"])
def test_a_real_trainer_command_line_is_signalled(tmp_path, command):
    run = tmp_path / "runs" / "r1"
    run.mkdir(parents=True)
    # A process whose command line is `python -m tfcnn train ... --out run` (or `sweep`, which
    # the app launches through the same queue) that just waits (a -c script standing in for
    # the module would not have that command line).
    stub = tmp_path / "stub"
    (stub / "tfcnn").mkdir(parents=True)
    (stub / "tfcnn" / "__init__.py").write_text("")
    (stub / "tfcnn" / "__main__.py").write_text("import time\ntime.sleep(60)\n")
    proc = subprocess.Popen([sys.executable, "-m", "tfcnn", command, "data", "--out", str(run)],
                            cwd=stub, start_new_session=True)
    try:
        deadline = time.monotonic() + 10
        while identify(proc.pid) is None or command not in identify(proc.pid).cmdline:
            assert time.monotonic() < deadline
            time.sleep(0.05)
        me = identify(proc.pid)
        assert is_tfcnn_train(me.cmdline, run)
        assert not is_tfcnn_train([*me.cmdline[:3], "table", *me.cmdline[4:]], run)
        assert signal_run(run, recorded=me) == SIGNALLED
        assert proc.wait(timeout=10) == -signal.SIGTERM
    finally:
        proc.kill()
        proc.wait()


def test_queue_starts_at_most_the_cap(tmp_path, monkeypatch):
    monkeypatch.setenv(launches.ENV_MAX_RUNS, "1")
    root = tmp_path / "runs"
    # no data set there: the trainer exits with one error line
    first = launches.submit(RunRequest(tmp_path / "no-data", "time", n_folds=2, epochs=1),
                            root=root)
    second = launches.submit(RunRequest(tmp_path / "no-data", "frequency", n_folds=2,
                                        epochs=1), root=root)
    states = [launches.read_launch(r)["state"] for r in (first, second)]
    assert states == [launches.STARTED, launches.QUEUED]
    # the first trainer fails at once: its slot frees and the second starts
    deadline = time.monotonic() + 180
    while launches.read_launch(second)["state"] == launches.QUEUED:
        assert time.monotonic() < deadline, "the queued run never started"
        launches.pump(root)
        time.sleep(0.3)
    record = launches.read_launch(second)
    assert str(second) in record["process"]["cmdline"]  # identity recorded at start
    # a queued run is withdrawn by cancel, never started
    third = launches.submit(RunRequest(tmp_path / "no-data", "time", n_folds=2, epochs=1),
                            root=root)
    if launches.read_launch(third)["state"] == launches.QUEUED:
        assert launches.cancel(third) == launches.WITHDRAWN
        launches.pump(root)
        assert launches.read_launch(third)["state"] == launches.WITHDRAWN
    for run in (first, second, third):
        record = launches.read_launch(run)
        if record.get("process"):
            try:
                os.kill(record["process"]["pid"], signal.SIGKILL)
            except ProcessLookupError:
                pass
    launches.reap()


def test_launch_record_is_json(tmp_path, monkeypatch):
    monkeypatch.setenv(launches.ENV_MAX_RUNS, "0")
    with pytest.raises(Exception, match="TFCNN_MAX_RUNS must be a positive integer"):
        launches.max_concurrent()
    monkeypatch.setenv(launches.ENV_MAX_RUNS, "2")
    assert launches.max_concurrent() == 2
    (tmp_path / ".launches" / "x").mkdir(parents=True)
    (tmp_path / ".launches" / "x" / "launch.json").write_bytes(b"\xff\xfe not json")
    assert launches.read_launch(tmp_path / "x") is None
    assert json.loads(json.dumps(launches.pump(tmp_path), default=str)) == []
