"""The Filters page's heavy part for a model never analysed: its tempo study, idle vs busy.

:func:`tfcnn.interpret.tempo_study` with the page's default arguments (Ballroom class ranges,
probes at 60-224 BPM, no counterfactual) on an untrained ``time`` model, the probe log-mels
not yet computed in this process (each timed call clears that in-process cache, as in a fresh
app server; nothing is written to disk). Timed with torch's default thread count and with one
thread per request (:data:`tfcnn.threads.REQUEST_THREADS`, what ``tempo_study`` uses), idle and
while two processes spin on the CPU. Prints the times and their ratios. Run with
``python -m bench filters``.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

import torch

from tfcnn.checkpoint import load_checkpoint
from tfcnn.config import CLASSES, FRONT_END, TrainConfig
from tfcnn.interpret import probes, study
from tfcnn.models import build_model
from tfcnn.threads import REQUEST_THREADS, torch_threads

from bench._load import busy_processes, print_idle_busy


def untrained_time_checkpoint():
    """An untrained ``time`` model as a loaded Checkpoint (written to a temporary file)."""
    import tempfile
    from pathlib import Path

    from tfcnn.checkpoint import save_checkpoint

    torch.manual_seed(0)
    with tempfile.TemporaryDirectory() as tmp:
        path = save_checkpoint(Path(tmp) / "time.safetensors", build_model("time", len(CLASSES)),
                               classes=CLASSES, norm_mean=0.0, norm_std=1.0,
                               front_end=FRONT_END, train_config=TrainConfig().to_dict(),
                               metrics={}, extra={"note": "untrained, for bench/filters.py"})
        return load_checkpoint(path)


def study_s(checkpoint, threads: int, repeats: int) -> float:
    """Best wall time of a cold study (probe log-mels recomputed) on ``threads`` threads."""
    best = float("inf")
    with torch_threads(threads):
        for _ in range(repeats):
            probes.probe_specs.cache_clear()
            start = time.perf_counter()
            study.tempo_study.__wrapped__(checkpoint)  # the threads set here, not the policy's
            best = min(best, time.perf_counter() - start)
    return best


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.filters",
                                     description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=2, help="runs per case, best kept")
    args = parser.parse_args(argv or [])
    checkpoint = untrained_time_checkpoint()
    study.tempo_study(checkpoint)  # warm-up: lazy imports, white-noise baseline
    modes = {"torch default": torch.get_num_threads(), "one per request": REQUEST_THREADS}
    idle = {name: study_s(checkpoint, n, args.repeats) for name, n in modes.items()}
    with busy_processes():
        busy = {name: study_s(checkpoint, n, args.repeats) for name, n in modes.items()}
    print(f"tempo study of an untrained time model (3 probe kinds x 83 tempi, cold), cpu, "
          f"{os.cpu_count()} cores")
    print_idle_busy(idle, busy, modes, unit="s", scale=1.0)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
