"""Sweep engines: what Ray costs over running the same tasks in this process.

The same grid (time architecture, two temporal filter lengths × two seeds × two folds, a few
epochs; by default on a tiny SynthBallroom generated here, so the engine's own cost is a
visible share) is run three ways, each into its own sweep folder:

- baseline: every task by :func:`tfcnn.engines.run_fold_task` one after another in this
  process (after one untimed warm-up task, so imports are not counted), its fold installed
  and each grid point summarised, exactly what the Ray engine does around a task;
- ray: :func:`tfcnn.sweep.run_sweep` on a local Ray with ``--ray-cpus`` CPUs (default 1, so
  tasks run one at a time as in the baseline and the difference is Ray's overhead: worker
  processes and their imports, scheduling, moving the folds back); a fresh Ray for each
  load, as every ``tfcnn sweep --engine ray`` starts one, its start-up timed on its own line;
- local engine: :func:`tfcnn.sweep.run_sweep` with the fold-parallel local engine.

Every mode runs idle, then busy (two processes spinning on the CPU, as the other benches
do). Prints wall times, their ratio to the baseline under the same load, busy/idle, and
Ray's overhead per task.

Run with ``python -m bench sweep`` or ``python -m bench.sweep --epochs 5 --ray-cpus 2``.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import tempfile
import time
from pathlib import Path

from bench._load import BUSY_PROCESSES, busy_processes

#: The grid every mode runs: its base run, swept values and seeds.
GRID = dict(base=dict(arch="time", n_folds=2, device="cpu"),
            grid=(("time_filter", ((1, 8), (1, 16))),), seeds=(0, 1))


def _baseline(spec, out: Path) -> float:
    """Every task in this process, one after another, as the Ray engine handles each."""
    from tfcnn.engines import install_fold, run_fold_task
    from tfcnn.sweep import prepare_sweep, summarise_point

    prepare_sweep(spec, out, resume=False)
    t0 = time.perf_counter()
    for task in spec.tasks():
        outcome = run_fold_task(spec.to_dict(), task.point.to_dict(), task.fold, threads=1)
        install_fold(out / task.point.name, task.fold, outcome)
    for point in spec.points():
        summarise_point(spec, point, out)
    return time.perf_counter() - t0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.sweep",
                                     description=__doc__.split("\n")[0])
    parser.add_argument("--data", default=None,
                        help="data set folder (default: a tiny SynthBallroom made here)")
    parser.add_argument("--epochs", type=int, default=3, help="epochs per fold (default 3)")
    parser.add_argument("--ray-cpus", type=int, default=1,
                        help="CPUs of the local Ray (default 1: tasks one at a time)")
    args = parser.parse_args(argv or [])

    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    import ray
    import torch

    from tfcnn.datasets import load_dataset
    from tfcnn.engines import RAY_WORKER_NICENESS, LocalEngine, RayEngine, run_fold_task
    from tfcnn.request import RunRequest, SweepRequest
    from tfcnn.sweep import run_sweep
    from tfcnn.synth import generate

    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory(prefix="bench-sweep-") as tmp:
        tmp = Path(tmp)
        data = args.data
        if data is None:
            data = tmp / "synth-ballroom"
            generate(data, per_class=4, seconds=8.0, seed=0, workers=2, progress=False)
        dataset = load_dataset(data)
        spec = SweepRequest(RunRequest(data, epochs=args.epochs, **GRID["base"]),
                            grid=GRID["grid"], seeds=GRID["seeds"])
        n = len(spec.tasks())
        print(f"{n} tasks: time, filters 1x8 and 1x16 x seeds 0,1 x 2 folds x {args.epochs} "
              f"epochs, on {dataset.name} ({dataset.n_tracks} tracks); torch threads 1")
        warm = spec.tasks()[0]
        run_fold_task(spec.to_dict(), warm.point.to_dict(), warm.fold, threads=1)  # imports

        # Each mode idle, then with BUSY_PROCESSES spinning processes (a shared machine).
        walls: dict[str, dict[str, float]] = {}
        for load in ("idle", "busy"):
            with busy_processes() if load == "busy" else contextlib.nullcontext():
                walls[load] = {
                    "base": _baseline(spec, tmp / f"baseline-{load}"),
                    "local": run_sweep(spec, tmp / f"local-{load}",
                                       engine=LocalEngine(threads=1)).wall_s}
        os.environ.setdefault(RAY_WORKER_NICENESS, "0")  # the engine's setting
        start_up: dict[str, float] = {}
        for load in ("idle", "busy"):
            # A fresh Ray per load, as each `tfcnn sweep --engine ray` starts one: its
            # workers start cold (a second sweep on a warm Ray would skip their imports).
            with busy_processes() if load == "busy" else contextlib.nullcontext():
                t0 = time.perf_counter()
                ray.init(num_cpus=args.ray_cpus, include_dashboard=False,
                         log_to_driver=False,
                         runtime_env={"env_vars": {"OMP_NUM_THREADS": "1"}})
                start_up[load] = time.perf_counter() - t0
                try:
                    walls[load]["ray"] = run_sweep(spec, tmp / f"ray-{load}",
                                                   engine=RayEngine(retries=0)).wall_s
                finally:
                    ray.shutdown()

    names = {"base": "in process, task after task (baseline)",
             "ray": f"ray, {args.ray_cpus} CPU(s), start-up excluded",
             "local": "local engine (folds of a grid point together)"}
    print(f"{'mode':<48} {'idle s':>8} {'ratio':>6} {'busy s':>8} {'ratio':>6} "
          f"{'busy/idle':>9}  (busy: {BUSY_PROCESSES} spinning processes; ratio: to the "
          f"baseline under the same load)")
    for key, name in names.items():
        idle, busy = walls["idle"][key], walls["busy"][key]
        print(f"{name:<48} {idle:8.2f} {idle / walls['idle']['base']:6.2f} {busy:8.2f} "
              f"{busy / walls['busy']['base']:6.2f} {busy / idle:9.2f}")
    print(f"{'ray start-up (ray.init)':<48} {start_up['idle']:8.2f} {'-':>6} "
          f"{start_up['busy']:8.2f} {'-':>6} {start_up['busy'] / start_up['idle']:9.2f}")
    for load in ("idle", "busy"):
        print(f"ray overhead per task, {load}: "
              f"{(walls[load]['ray'] - walls[load]['base']) / n:+.2f} s "
              f"(ray - baseline over {n} tasks; with {args.ray_cpus} CPU(s))")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
