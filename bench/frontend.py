"""Front-end speed: ``tfcnn.features`` against ``librosa.feature.melspectrogram``.

Both compute a 40-band mel spectrogram with a 2048-point STFT and hop 1024 on the same 30 s
clip at 44.1 kHz, in this process, best of several runs (librosa is warmed up first so its
numba compilation is not counted). Ours also applies the log compression of the paper;
librosa's call stops at the power mel spectrogram, so the comparison favours librosa.

Also the one-clip case while two processes spin on the CPU (spawned and killed here), with
torch's default thread count and with one thread. Run with ``python -m bench frontend``.
"""

from __future__ import annotations

import argparse
import os
import time
from collections.abc import Callable

import numpy as np
import torch

from tfcnn.config import FRONT_END
from tfcnn.features import log_mel, log_mel_module
from tfcnn.threads import torch_threads

from bench._load import BUSY_PROCESSES, busy_processes

SAMPLE_RATE = FRONT_END.sample_rate
CLIP_SECONDS = 30.0
BATCH_CLIPS = 100
#: Target: at least 2x faster than librosa on one clip.
TARGET_RATIO = 2.0


def make_clip(*, seconds: float = CLIP_SECONDS, seed: int = 0) -> np.ndarray:
    """A deterministic test clip: noise plus a few tones, float32, shape (n_samples,)."""
    rng = np.random.default_rng(seed)
    n = int(seconds * SAMPLE_RATE)
    t = np.arange(n) / SAMPLE_RATE
    y = 0.05 * rng.standard_normal(n)
    for freq_hz, amplitude in ((110.0, 0.3), (440.0, 0.2), (1760.0, 0.1), (7040.0, 0.05)):
        y += amplitude * np.sin(2 * np.pi * freq_hz * t)
    return (y / np.abs(y).max()).astype(np.float32)


def best_time_s(fn: Callable[[], object], *, repeats: int) -> float:
    """Fastest of ``repeats`` calls, in seconds."""
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def interleaved_best_s(
    fns: dict[str, Callable[[], object]], *, rounds: int, repeats: int
) -> dict[str, float]:
    """Best time of each function, timed in alternating blocks so load spikes hit both."""
    best = {name: float("inf") for name in fns}
    for _ in range(rounds):
        for name, fn in fns.items():
            best[name] = min(best[name], best_time_s(fn, repeats=repeats))
    return best


def _line(label: str, ours_s: float, librosa_s: float, unit: str) -> str:
    scale = 1e3 if unit == "ms" else 1.0
    return (
        f"frontend  {label:<22} ours {ours_s * scale:7.1f} {unit}  "
        f"librosa {librosa_s * scale:7.1f} {unit}  ratio {librosa_s / ours_s:4.1f}x"
    )


def main(argv: list[str] | None = None) -> int:
    """Print the timings of one clip and of a batch of clips; return 0."""
    argparse.ArgumentParser(prog="python -m bench frontend", description=__doc__).parse_args(argv)
    import librosa  # the baseline only; tfcnn itself never imports librosa

    def librosa_mel(y: np.ndarray) -> np.ndarray:
        return librosa.feature.melspectrogram(
            y=y, sr=SAMPLE_RATE, n_fft=FRONT_END.n_fft, hop_length=FRONT_END.hop_length,
            n_mels=FRONT_END.n_mels, power=2.0,
        )

    clip = make_clip()
    start = time.perf_counter()
    theirs = librosa_mel(clip)  # warm-up: numba compiles here
    warm_s = time.perf_counter() - start
    ours = log_mel(clip, SAMPLE_RATE)  # warm-up: builds the cached module
    # Essentia framing gives T = 1 + ceil(n / hop), librosa's centred frames 1 + n // hop:
    # one frame more when hop does not divide n; the work compared is the same.
    if ours.shape[0] != theirs.shape[0] or ours.shape[1] - theirs.shape[1] not in (0, 1):
        raise RuntimeError(f"shapes differ: ours {ours.shape}, librosa {theirs.shape}")
    load_1min = os.getloadavg()[0]
    cores = os.cpu_count() or 1
    print(
        f"frontend  load average {load_1min:.1f} on {cores} cores"
        + ("  (busy machine: timings are noisy)" if load_1min > 0.5 * cores else ""),
    )
    print(
        f"frontend  clip {CLIP_SECONDS:.0f} s at {SAMPLE_RATE} Hz -> {ours.shape}; "
        f"torch {torch.__version__}, {torch.get_num_threads()} threads; "
        f"librosa {librosa.__version__} warm-up {warm_s:.1f} s (not counted)",
        flush=True,
    )

    one = interleaved_best_s(
        {"ours": lambda: log_mel(clip, SAMPLE_RATE), "librosa": lambda: librosa_mel(clip)},
        rounds=10, repeats=5,
    )
    print(_line(f"one {CLIP_SECONDS:.0f} s clip", one["ours"], one["librosa"], "ms"), flush=True)
    # On a busy machine torch's thread pool waits for descheduled threads; one thread shows
    # the per-core cost (the feature cache's workers run this way).
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        single = interleaved_best_s(
            {"ours": lambda: log_mel(clip, SAMPLE_RATE), "librosa": lambda: librosa_mel(clip)},
            rounds=10, repeats=5,
        )
    finally:
        torch.set_num_threads(threads)
    print(_line("  same, torch 1 thread", single["ours"], single["librosa"], "ms"), flush=True)
    with busy_processes():
        busy = {}
        for label, n in (("default", threads), ("1 thread", 1)):
            with torch_threads(n):
                busy[label] = interleaved_best_s(
                    {"ours": lambda: log_mel(clip, SAMPLE_RATE),
                     "librosa": lambda: librosa_mel(clip)}, rounds=10, repeats=5)
    for label, idle in (("default", one), ("1 thread", single)):
        print(_line(f"  busy ({BUSY_PROCESSES} procs), {label}", busy[label]["ours"],
                    busy[label]["librosa"], "ms")
              + f"  ours busy/idle {busy[label]['ours'] / idle['ours']:.1f}x", flush=True)

    # A batch of different clips: the clip shifted in time and scaled.
    clips = np.stack([
        np.roll(clip, 997 * k) * np.float32(0.5 + 0.5 * k / BATCH_CLIPS)
        for k in range(BATCH_CLIPS)
    ])  # (batch, n_samples) float32
    batch = torch.from_numpy(clips)
    module = log_mel_module(FRONT_END, "cpu")

    def ours_batched() -> None:
        with torch.inference_mode():
            module(batch)  # (batch, n_mels, T)

    def librosa_loop() -> None:
        for y in clips:
            librosa_mel(y)

    many = interleaved_best_s({"ours": ours_batched, "librosa": librosa_loop}, rounds=2, repeats=1)
    print(_line(f"{BATCH_CLIPS} clips (batched)", many["ours"], many["librosa"], "s"), flush=True)

    ratio = one["librosa"] / one["ours"]
    verdict = "met" if ratio >= TARGET_RATIO else "NOT met"
    print(f"frontend  target >= {TARGET_RATIO:.0f}x on one clip: {verdict} ({ratio:.1f}x)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
