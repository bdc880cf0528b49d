"""The benchmarks run end to end (real subprocesses, tiny sizes) and print what they promise.

Their numbers are not checked here (timings on a shared machine are noise at these sizes);
the structure is: every mode timed, ratios and per-fold accuracies printed side by side.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def run_bench(*args: str) -> str:
    proc = subprocess.run([sys.executable, "-m", *args], cwd=ROOT, capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return proc.stdout


def test_crossval_prints_every_mode_and_the_targets():
    out = run_bench("bench.crossval", "--arch", "time", "--tracks", "16", "--folds", "2",
                    "--amp", "--repeat", "2", "--threads", "2", "--baseline-threads", "1")
    assert "16 of 698 Ballroom-sized tracks" in out and "2 folds" in out
    for row in ("sequential", "sequential/1thr", "banded (parallel)", "banded/1lane",
                "amp (parallel)"):
        assert row in out, out
    assert "target ≥ 4× (issue 6): banded" in out
    # The per-fold table: one line per fold with one accuracy per mode, then the means.
    fold_lines = [line.split() for line in out.splitlines()
                  if line.split()[:1] in (["0"], ["1"], ["mean"])]
    assert [len(cols) for cols in fold_lines] == [6, 6, 6], out


def test_parity_trains_both_ways_and_compares(synth_dataset):
    out = run_bench("bench.parity", "--arch", "frequency", "--data", str(synth_dataset),
                    "--folds", "2", "--epochs", "1")
    lines = out.splitlines()
    sequential = next(line for line in lines if line.startswith("sequential "))
    assert sequential.split()[2] == "1.00", sequential  # the baseline's own ratio
    parallel = next(line for line in lines if line.startswith("parallel "))
    # wall, ratio, "mean ± std", then the Wilcoxon p (or "identical") against sequential
    assert len(parallel.split()) == 7, parallel
    assert "per-fold song accuracy" in out


def test_parity_without_data_says_how_to_get_it(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "bench.parity", "--data",
                           str(tmp_path / "missing")], cwd=ROOT, capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 1
    assert "no data set at" in proc.stdout and "make run" in proc.stdout
    assert "Traceback" not in proc.stderr


def test_state_save_prints_bytes_ms_and_the_share_of_an_epoch(synth_dataset):
    out = run_bench("bench.state_save", "--archs", "time,frequency", "--data",
                    str(synth_dataset), "--steps", "2", "--repeat", "1", "--history", "3")
    assert "32 songs" in out and "training patches" in out
    rows = {line.split()[0]: line.split() for line in out.splitlines()[2:]}
    assert set(rows) == {"time", "frequency"}
    for cols in rows.values():
        assert int(cols[1].replace(",", "")) > 0 and cols[4].endswith("%")


def test_filters_bench_times_both_thread_policies_idle_and_busy():
    out = run_bench("bench.filters", "--repeats", "1")
    assert "tempo study of an untrained time model" in out
    rows = [line.split() for line in out.splitlines()
            if line.startswith(("torch default", "one per request"))]
    assert len(rows) == 2 and all(r[-1].endswith("x") for r in rows), out
    assert "busy: default / one per request:" in out
    assert "Filters page, first render of a model never analysed" in out and "(target < 8 s)" in out


def test_matmul_bench_prints_both_peaks_and_the_black_box_step_cost():
    out = run_bench("bench.matmul", "--n", "256")
    assert "matmul peak float32" in out and "matmul peak bfloat16" in out
    # 2·(2·29·73·3072 + 3·3,270,400) multiply-add FLOPs: the kernel's step, from the shapes
    assert "Black-box training step: 45.6 MFLOP per patch" in out, out
