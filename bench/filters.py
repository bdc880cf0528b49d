"""The Filters page's heavy part for a model never analysed: its tempo study, idle vs busy.

:func:`tfcnn.interpret.tempo_study` with the page's default arguments (Ballroom class ranges,
probes at 60-224 BPM, no counterfactual) on an untrained ``time`` model, the probe log-mels
not yet computed in this process (each timed call clears that in-process cache, as in a fresh
app server; nothing is written to disk). Timed with torch's default thread count and with one
thread per request (:data:`tfcnn.threads.REQUEST_THREADS`, what ``tempo_study`` uses), idle and
while two processes spin on the CPU; then the Filters page's whole first run for such a model
in a fresh app session (Streamlit's AppTest), idle and busy. Prints the times and their
ratios. Run with ``python -m bench filters``.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import torch

from tfcnn import locations
from tfcnn.checkpoint import load_checkpoint, save_checkpoint
from tfcnn.config import CLASSES, FRONT_END, TrainConfig
from tfcnn.interpret import probes, study
from tfcnn.models import build_model
from tfcnn.threads import REQUEST_THREADS, torch_threads

from bench._load import busy_processes, print_idle_busy

ROOT = Path(__file__).resolve().parent.parent


def save_untrained_time(path: Path) -> Path:
    """An untrained ``time`` model (seed 0) saved to ``path``."""
    torch.manual_seed(0)
    return save_checkpoint(path, build_model("time", len(CLASSES)), classes=CLASSES,
                           norm_mean=0.0, norm_std=1.0, front_end=FRONT_END,
                           train_config=TrainConfig().to_dict(), metrics={},
                           extra={"note": "untrained, for bench/filters.py"})


def untrained_time_checkpoint():
    """An untrained ``time`` model as a loaded Checkpoint (written to a temporary file)."""
    with tempfile.TemporaryDirectory() as tmp:
        return load_checkpoint(save_untrained_time(Path(tmp) / "time.safetensors"))


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


def page_first_render_s(checkpoint_file: Path) -> float:
    """Seconds of the Filters page's first run for ``checkpoint_file`` in a fresh app
    session (Streamlit's AppTest, the real page script), its study not on disk yet.

    The app reads its checkpoints folder from the environment (set here for this process)."""
    import streamlit as st
    from streamlit.testing.v1 import AppTest

    st.cache_data.clear()  # the page's in-process cache (a fresh server has none)
    folder = checkpoint_file.parent
    os.environ[locations.ENV_CHECKPOINTS_DIR] = str(folder)
    os.environ[locations.ENV_RUNS_DIR] = str(folder / "runs")
    os.environ[locations.ENV_DATA_DIR] = str(folder / "no-data")
    shutil.rmtree(folder / ".tfcnn-cache", ignore_errors=True)
    probes.probe_specs.cache_clear()
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=300)
    at.run()
    at.switch_page("pages/5_Filters.py")
    start = time.perf_counter()
    at.run()
    seconds = time.perf_counter() - start
    if at.exception:
        raise RuntimeError(f"the Filters page raised: {at.exception[0].value}")
    return seconds


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.filters",
                                     description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=2, help="runs per case, best kept")
    args = parser.parse_args(argv or [])
    checkpoint = untrained_time_checkpoint()
    study.tempo_study(checkpoint)  # warm-up: lazy imports, white-noise baseline
    modes = {"torch default": torch.get_num_threads(), "one per request": REQUEST_THREADS}
    idle = {name: study_s(checkpoint, n, args.repeats) for name, n in modes.items()}
    with tempfile.TemporaryDirectory() as tmp:
        page_file = save_untrained_time(Path(tmp) / "synth-time.safetensors")
        page_idle = page_first_render_s(page_file)
        with busy_processes():
            busy = {name: study_s(checkpoint, n, args.repeats) for name, n in modes.items()}
            page_busy = page_first_render_s(page_file)
    print(f"tempo study of an untrained time model (3 probe kinds x 83 tempi, cold), cpu, "
          f"{os.cpu_count()} cores")
    print_idle_busy(idle, busy, modes, unit="s", scale=1.0)
    print(f"Filters page, first render of a model never analysed (AppTest, fresh session): "
          f"idle {page_idle:.2f} s, busy {page_busy:.2f} s (target < 8 s)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
