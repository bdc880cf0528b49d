"""Sweeps: the grid and its checks, the local engine through the CLI (run folders that
``table`` reads, ``--resume``), and a real local Ray with 2 CPUs: a 2 shapes × 2 seeds ×
2 folds sweep, and a worker killed mid-task, retried by Ray or reported with the other folds
kept and trained by ``--resume``."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from tfcnn.errors import ConfigError
from tfcnn.runs import complete_folds, read_fold_result, read_results
from tfcnn.engines import RAY_WORKER_NICENESS, RayEngine, make_engine
from tfcnn.request import RunRequest, SweepRequest
from tfcnn.sweep import (
    read_events,
    run_sweep,
    sweep_progress,
)

ROOT = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "RAY_USAGE_STATS_ENABLED": "0"}

#: The tiny grid: two temporal filter lengths, one epoch, two folds (the 32-track synthetic
#: set keeps two training songs per class in each).
BASE = dict(arch="time", n_folds=2, device="cpu", epochs=1)
TIME_FILTERS = ("time_filter", ((1, 8), (1, 16)))


def _spec(data, *, seeds, grid=(TIME_FILTERS,), **base) -> SweepRequest:
    return SweepRequest(RunRequest(data, **{**BASE, **base}), grid=grid, seeds=tuple(seeds))


def _cli(*args, timeout=180) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "tfcnn", *map(str, args)], cwd=ROOT,
                          env=ENV, capture_output=True, text=True, timeout=timeout)


# --------------------------------------------------------------------------- the grid


def test_grid_points_names_and_round_trip(tmp_path):
    spec = _spec(tmp_path, seeds=[0, 1], grid=(TIME_FILTERS, ("n_filters", (16, 32))))
    names = [p.name for p in spec.points()]
    assert names == [f"t1x{w}-n{n}-s{s}" for w in (8, 16) for n in (16, 32) for s in (0, 1)]
    assert len(spec.tasks()) == 8 * 2
    assert spec.points()[0].arch_params == {"time_filter": (1, 8), "n_filters": 16}
    assert type(spec).from_dict(json.loads(json.dumps(spec.to_dict()))) == spec


@pytest.mark.parametrize("change, needle", [
    (dict(arch="nope"), "unknown architecture 'nope'"),
    (dict(grid=(TIME_FILTERS, ("freq_filter", ((32, 1),)))),
     "architecture 'time' has no freq_filter"),
    (dict(grid=(("time_filter", ((1, 30), (1, 100))),)),
     r"time_filter \(1, 100\) does not fit .*1x100 is 100 frames wide but a patch is 80 "
     r"frames; the largest that fits is 1x80$"),
    (dict(seeds=[0, 0]), "seeds lists a seed twice"),
    (dict(n_folds=1), "n_folds must be an integer >= 2"),
    (dict(preset="slow"), "unknown preset 'slow'"),
])
def test_bad_grid_is_refused_before_anything_runs(tmp_path, change, needle):
    with pytest.raises(ConfigError, match=needle):
        _spec(tmp_path, **{"seeds": [0], **change})
    assert list(tmp_path.iterdir()) == []


def test_unknown_engine_lists_the_valid_ones():
    with pytest.raises(ConfigError, match="unknown engine 'slurm'; valid engines: local, ray"):
        make_engine("slurm")
    with pytest.raises(ConfigError, match="cpus per task must be an integer >= 1, got 0"):
        RayEngine(cpus_per_task=0)


def test_cli_bad_list_gives_one_error_line(synth_dataset, tmp_path):
    proc = _cli("sweep", synth_dataset, "--arch", "time", "--time-filter", "1x8,1xx",
                "--out", tmp_path / "s")
    assert proc.returncode == 2 and "1xx" in proc.stderr and "Traceback" not in proc.stderr
    proc = _cli("sweep", synth_dataset, "--arch", "time", "--freq-filter", "32x1",
                "--out", tmp_path / "s")
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert proc.stderr.strip().splitlines() == [
        "error: architecture 'time' has no freq_filter; it takes patch_frames, time_filter, "
        "n_filters"]


# --------------------------------------------------------------------------- local engine


def test_local_sweep_writes_run_folders_that_table_reads_and_resumes(synth_dataset, tmp_path):
    out = tmp_path / "sweep"
    args = ["sweep", synth_dataset, "--arch", "time", "--time-filter", "1x8,1x16",
            "--seeds", "0", "--folds", "2", "--epochs", "1", "--device", "cpu",
            "--engine", "local", "--out", out]
    proc = _cli(*args)
    assert proc.returncode == 0, proc.stderr
    assert "4 task(s) trained, 0 already complete, 0 failed" in proc.stdout
    for point in ("t1x8-s0", "t1x16-s0"):
        assert complete_folds(out / point) == [0, 1]
        results = read_results(out / point)
        assert results["complete"] and results["folds"] == [0, 1]
        config = json.loads((out / point / "config.json").read_text())
        assert config["arch_params"]["time_filter"] == [1, int(point[3:].split("-")[0])]
    # In this process: every task started in the sweep's own process, the folds together.
    events = read_events(out)
    sweep_pid = events[0]["pid"]
    starts = [e for e in events if e["event"] == "task_start"]
    assert len(starts) == 4 and {e["pid"] for e in starts} == {sweep_pid}
    table = _cli("table", out / "t1x8-s0", out / "t1x16-s0", "--json")
    assert table.returncode == 0, table.stderr
    assert [r["n_folds_complete"] for r in json.loads(table.stdout)] == [2, 2]

    again = _cli(*args, "--resume")
    assert again.returncode == 0, again.stderr
    assert "0 task(s) trained, 4 already complete" in again.stdout
    assert sweep_progress(out).counts()["complete"] == 4
    other = _cli(*[a if a != "1x8,1x16" else "1x8" for a in args], "--resume")
    assert other.returncode == 2 and "cannot resume" in other.stderr
    assert "time_filter" in other.stderr


# --------------------------------------------------------------------------- Ray


@pytest.fixture(scope="module")
def ray_session():
    """One local Ray with 2 CPUs for every Ray test here (starting one takes seconds)."""
    ray = pytest.importorskip("ray")
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    os.environ.setdefault(RAY_WORKER_NICENESS, "0")  # as the engine does: no starving
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False,
             runtime_env={"env_vars": {"OMP_NUM_THREADS": "1"}})
    yield ray
    ray.shutdown()


def test_ray_sweep_of_two_shapes_two_seeds_two_folds(ray_session, synth_dataset, tmp_path):
    spec = _spec(synth_dataset, seeds=[0, 1])
    out = tmp_path / "sweep"
    outcome = run_sweep(spec, out, engine=RayEngine(retries=0))
    assert outcome.failed == {} and len(outcome.ran) == 8 and outcome.engine == "ray"
    for point in spec.points():
        run_dir = out / point.name
        assert complete_folds(run_dir) == [0, 1]
        results = read_results(run_dir)
        assert results["complete"] and results["folds"] == [0, 1]
        assert results["arch"] == "time" and results["n_folds"] == 2
    # Each task ran in a Ray worker, not here.
    starts = [e for e in read_events(out) if e["event"] == "task_start"]
    assert len(starts) == 8 and os.getpid() not in {e["pid"] for e in starts}

    # A fold trained alone is fold k of the whole run: the split depends on the seed only.
    def test_ids(point_name):
        return [read_fold_result(out / point_name, k)["test_track_ids"] for k in (0, 1)]

    assert test_ids("t1x8-s0") == test_ids("t1x16-s0")
    assert test_ids("t1x8-s0") != test_ids("t1x8-s1")
    ids = test_ids("t1x8-s0")
    assert not set(ids[0]) & set(ids[1]) and len(ids[0]) + len(ids[1]) == 32
    assert sweep_progress(out).counts() == {"pending": 0, "running": 0, "complete": 8,
                                            "failed": 0}


def _sweep_killing_one_task(spec, out, engine) -> tuple:
    """Run the sweep in a thread; SIGKILL the worker of the first task once it trains."""
    box = {}
    thread = threading.Thread(
        target=lambda: box.update(outcome=run_sweep(spec, out, engine=engine)))
    thread.start()
    killed = None
    deadline = time.monotonic() + 300  # generous: a loaded machine starts workers slowly
    while killed is None and time.monotonic() < deadline and thread.is_alive():
        epochs = [e for e in read_events(out) if e["event"] == "task_epoch"]
        if epochs:
            task = epochs[0]["task"]
            pid = next(e["pid"] for e in read_events(out)
                       if e["event"] == "task_start" and e["task"] == task)
            os.kill(pid, signal.SIGKILL)
            killed = task
        time.sleep(0.05)
    thread.join(timeout=600)
    assert killed is not None, "no task reached its first epoch"
    assert not thread.is_alive(), "the sweep did not end"
    return box["outcome"], killed


#: Long enough (tens of epochs on 32 tracks) that a task is still training when it is killed.
SLOW = dict(grid=(("time_filter", ((1, 8),)),), epochs=200)


def test_ray_killed_task_is_reported_others_kept_then_resumed(ray_session, synth_dataset,
                                                              tmp_path):
    spec = _spec(synth_dataset, seeds=[0], **SLOW)
    out = tmp_path / "sweep"
    outcome, killed = _sweep_killing_one_task(spec, out, RayEngine(retries=0))
    assert list(outcome.failed) == [killed]
    survivor = ({"t1x8-s0/fold-00", "t1x8-s0/fold-01"} - {killed}).pop()
    assert outcome.ran == [survivor]
    run_dir = out / "t1x8-s0"
    kept = int(survivor[-2:])
    assert complete_folds(run_dir) == [kept]
    assert read_results(run_dir)["folds"] == [kept]  # summarised over the complete fold
    states = {t["task"]: t["state"] for t in sweep_progress(out).tasks}
    assert states == {killed: "failed", survivor: "complete"}

    before = (run_dir / f"fold-{kept:02d}" / "model.safetensors").read_bytes()
    resumed = run_sweep(spec, out, engine=RayEngine(retries=0), resume=True)
    assert resumed.ran == [killed] and resumed.skipped == [survivor] and not resumed.failed
    assert complete_folds(run_dir) == [0, 1] and read_results(run_dir)["complete"]
    # The retried task: complete, on its second attempt, the first attempt's failure kept.
    task = next(t for t in sweep_progress(out).tasks if t["task"] == killed)
    assert task["state"] == "complete" and task["attempts"] == 2
    assert task["message"] == outcome.failed[killed]
    assert (run_dir / f"fold-{kept:02d}" / "model.safetensors").read_bytes() == before


def test_ray_retries_a_task_whose_worker_died(ray_session, synth_dataset, tmp_path):
    spec = _spec(synth_dataset, seeds=[0], **SLOW)
    out = tmp_path / "sweep"
    outcome, killed = _sweep_killing_one_task(spec, out, RayEngine(retries=1))
    assert outcome.failed == {} and len(outcome.ran) == 2
    starts = [e["pid"] for e in read_events(out)
              if e["event"] == "task_start" and e["task"] == killed]
    assert len(starts) == 2 and starts[0] != starts[1]  # a second attempt, another worker
    assert next(t["attempts"] for t in sweep_progress(out).tasks if t["task"] == killed) == 2
    assert complete_folds(out / "t1x8-s0") == [0, 1]
    assert sweep_progress(out).counts()["complete"] == 2
