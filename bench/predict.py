"""Prediction latency for a 30 s track: a cached model vs a cold start, idle vs busy.

- **cached**: ``tfcnn.inference.predict(path, checkpoint)`` with a ``Checkpoint`` loaded once
  (what the app does with ``st.cache_resource``): decode + log-mel + patches + model + vote;
- **cold**: a fresh ``python -m tfcnn predict FILE --checkpoint P --json`` process, timed from
  its start to its first result on stdout (interpreter, imports, checkpoint load included);
- **busy**: the cached case again while two processes spin on the CPU (spawned and killed
  here), with torch's default thread count and with one thread per request
  (:data:`tfcnn.threads.REQUEST_THREADS`, what the CLI and the app use).

The model is an untrained ``timefreq`` (the default architecture) saved to a temporary
checkpoint; the track is 30 s of noise and clicks written as a WAV file. Prints both times and
their ratio. Run with ``python -m bench predict``.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from tfcnn.audio import write_wav
from tfcnn.checkpoint import load_checkpoint, save_checkpoint
from tfcnn.config import CLASSES, FRONT_END, TrainConfig
from tfcnn.inference import predict
from tfcnn.models import build_model
from tfcnn.threads import REQUEST_THREADS, torch_threads

from bench._load import busy_processes, print_idle_busy

TRACK_SECONDS = 30.0
ROOT = Path(__file__).resolve().parent.parent


def write_track(path: Path, *, duration_s: float = TRACK_SECONDS, seed: int = 0) -> Path:
    """A 30 s WAV: low noise plus a click every 0.5 s (120 BPM), 44.1 kHz mono."""
    sample_rate = FRONT_END.sample_rate
    rng = np.random.default_rng(seed)
    n = int(duration_s * sample_rate)
    y = 0.02 * rng.standard_normal(n)
    t = np.arange(int(0.03 * sample_rate)) / sample_rate
    click = np.sin(2 * np.pi * 1000.0 * t) * np.exp(-t * 100.0)
    for start in range(0, n - click.size, sample_rate // 2):
        y[start:start + click.size] += click
    return write_wav(path, (0.5 * y / np.abs(y).max()).astype(np.float32),
                     sample_rate=sample_rate)


def write_untrained_checkpoint(path: Path, arch: str = "timefreq") -> Path:
    torch.manual_seed(0)
    model = build_model(arch, len(CLASSES))
    return save_checkpoint(path, model, classes=CLASSES, norm_mean=0.0, norm_std=1.0,
                           front_end=FRONT_END, train_config=TrainConfig().to_dict(),
                           metrics={}, extra={"note": "untrained, for bench/predict.py"})


def cold_start_s(audio: Path, checkpoint: Path) -> float:
    """Wall time from spawning ``python -m tfcnn predict`` to its first line of output."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    cmd = [sys.executable, "-m", "tfcnn", "predict", str(audio), "--checkpoint",
           str(checkpoint), "--json"]
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    first = proc.stdout.readline()
    seconds = time.perf_counter() - start
    rest, err = proc.communicate(timeout=300)
    if proc.returncode != 0 or not first:
        raise RuntimeError(f"{' '.join(cmd)} failed ({proc.returncode}): {err.strip()}")
    return seconds


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.predict",
                                     description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=5, help="cached runs, best kept")
    parser.add_argument("--cold", type=int, default=2, help="cold-start runs, best kept")
    args = parser.parse_args(argv or [])

    with tempfile.TemporaryDirectory() as tmp:
        audio = write_track(Path(tmp) / "track.wav")
        ckpt_path = write_untrained_checkpoint(Path(tmp) / "timefreq.safetensors")
        checkpoint = load_checkpoint(ckpt_path)
        result = predict(audio, checkpoint)  # warm-up: first call pays lazy imports

        def best_s(threads: int) -> float:
            with torch_threads(threads):
                best = float("inf")
                for _ in range(args.repeats):
                    start = time.perf_counter()
                    predict(audio, checkpoint)
                    best = min(best, time.perf_counter() - start)
            return best

        default_threads = torch.get_num_threads()
        modes = {"torch default": default_threads, "one per request": REQUEST_THREADS}
        idle = {name: best_s(n) for name, n in modes.items()}
        cold = min(cold_start_s(audio, ckpt_path) for _ in range(args.cold))
        with busy_processes():
            busy = {name: best_s(n) for name, n in modes.items()}
    cached = idle["one per request"]
    print(f"30 s track ({result.patch_probs.shape[0]} patches), untrained timefreq, cpu, "
          f"{os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f} before the busy case")
    print(f"cached model (predict with a loaded Checkpoint): {1000 * cached:8.1f} ms")
    print(f"cold start (fresh `python -m tfcnn predict`):    {1000 * cold:8.1f} ms")
    print(f"cold / cached: {cold / cached:.1f}x")
    print_idle_busy(idle, busy, modes, unit="ms", scale=1000.0)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
