"""The log-mel front end against its definition (issue 2 §3, Essentia-equivalent).

The reference below is written straight from the definition in float64 with explicit loops
and formulas; it shares no code with ``tfcnn.features``.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from tfcnn.config import FRONT_END, FrontEnd
from tfcnn.errors import AudioError, ConfigError
from tfcnn.features import (
    LogMel,
    blackman_harris_window,
    log_mel,
    log_mel_module,
    mel_filterbank,
    n_frames,
    to_patches,
)

SR = 44100


# --- an independent float64 reference, from the definition -------------------------------

def _ref_mel(f_hz: float) -> float:
    return 1127.01048 * math.log(1.0 + f_hz / 700.0)


def _ref_hz(mel: float) -> float:
    return 700.0 * (math.exp(mel / 1127.01048) - 1.0)


def _ref_edges(n_mels: int = 40, f_max: float = 22050.0) -> list[float]:
    top = _ref_mel(f_max)
    return [_ref_hz(top * i / (n_mels + 1)) for i in range(n_mels + 2)]


def _ref_window(n: int = 2048) -> np.ndarray:
    w = np.array([0.44959 - 0.49364 * math.cos(2 * math.pi * i / (n - 1))
                  + 0.05677 * math.cos(4 * math.pi * i / (n - 1)) for i in range(n)])
    return w * 2.0 / w.sum()


def _ref_filterbank(n_mels: int = 40, n_fft: int = 2048, sr: int = SR) -> np.ndarray:
    edges = _ref_edges(n_mels, sr / 2)
    n_bins = n_fft // 2 + 1
    fb = np.zeros((n_mels, n_bins))
    for b in range(n_mels):
        lo, mid, hi = edges[b], edges[b + 1], edges[b + 2]
        for k in range(n_bins):
            f = k * sr / n_fft
            if lo <= f < mid:
                fb[b, k] = (_ref_mel(f) - _ref_mel(lo)) / (_ref_mel(mid) - _ref_mel(lo))
            elif mid <= f < hi:
                fb[b, k] = (_ref_mel(hi) - _ref_mel(f)) / (_ref_mel(hi) - _ref_mel(mid))
        fb[b] /= fb[b].sum()
    return fb


def _ref_log_mel(y: np.ndarray) -> np.ndarray:
    """(n_samples,) -> (40, T), float64: frames centred on k·1024, zero padding 1024."""
    y = np.asarray(y, dtype=np.float64)
    n_fft, hop = 2048, 1024
    n_out = 1 + int(np.ceil(len(y) / hop))  # Essentia: the last frame is centred at/past the end
    padded = np.concatenate([np.zeros(n_fft // 2), y, np.zeros(n_out * hop)])
    window, fb = _ref_window(n_fft), _ref_filterbank()
    out = np.empty((40, n_out))
    for t in range(n_out):
        frame = padded[t * hop: t * hop + n_fft]
        if len(frame) < n_fft:
            frame = np.concatenate([frame, np.zeros(n_fft - len(frame))])
        power = np.abs(np.fft.rfft(frame * window)) ** 2  # (1025,)
        out[:, t] = np.log10(1.0 + 10000.0 * (fb @ power))
    return out


def _signal(seconds: float, *, seed: int = 0) -> np.ndarray:
    """Noise + tones + silence + a loud burst: exercises every part of the dynamic range."""
    rng = np.random.default_rng(seed)
    n = int(seconds * SR)
    t = np.arange(n) / SR
    y = 0.05 * rng.standard_normal(n)
    for f, a in ((110.0, 0.3), (440.0, 0.2), (3520.0, 0.1), (15000.0, 0.05)):
        y += a * np.sin(2 * np.pi * f * t + rng.uniform(0, 2 * np.pi))
    y[n // 3: n // 3 + 5000] = 0.0                      # digital silence
    y[n // 2: n // 2 + 3000] *= 3.0                      # a loud burst (clips above 1)
    y[-7000:] = 1e-6 * rng.standard_normal(7000)         # -120 dB tail
    return y.astype(np.float32)


# --- the definition ----------------------------------------------------------------------

def test_window_matches_definition_and_sums_to_two():
    w = blackman_harris_window(FRONT_END)
    assert w.shape == (2048,)
    assert w.sum() == pytest.approx(2.0, abs=1e-12)
    np.testing.assert_allclose(w, _ref_window(), rtol=0, atol=1e-15)
    np.testing.assert_allclose(w, w[::-1], atol=1e-15)  # symmetric


def test_filterbank_matches_definition_with_unit_rows():
    fb = mel_filterbank(FRONT_END)
    assert fb.shape == (40, 1025)
    np.testing.assert_allclose(fb.sum(axis=1), 1.0, atol=1e-12)
    np.testing.assert_allclose(fb, _ref_filterbank(), rtol=0, atol=1e-14)
    # The top edge (22050 Hz, bin 1024) is excluded by the half-open interval.
    assert fb[:, -1].sum() == 0.0
    buffers = dict(LogMel().named_buffers())
    assert set(buffers) == {"window", "filterbank"}
    assert buffers["filterbank"].dtype == torch.float32
    np.testing.assert_allclose(buffers["filterbank"].numpy(), fb, atol=1e-7)


@pytest.mark.parametrize("n_samples", [1, 1023, 1024, 1025, 2047, 2048, 44100, 80896])
def test_frame_count_is_one_plus_ceil_len_over_hop(n_samples):
    y = np.full(n_samples, 0.1, dtype=np.float32)
    assert log_mel(y, SR).shape == (40, 1 + -(-n_samples // 1024))
    assert n_frames(n_samples) == 1 + -(-n_samples // 1024)


def test_equals_float64_reference_to_1e4():
    y = _signal(6.0)
    ours = log_mel(y, SR)
    ref = _ref_log_mel(y)
    assert ours.dtype == np.float32 and ours.shape == ref.shape == (40, 260)
    assert np.abs(ours - ref).max() <= 1e-4
    assert ref.min() < 1e-3 and ref.max() > 3.0  # the test covered quiet and loud cells


@pytest.mark.parametrize("band", [2, 5, 10, 20, 30, 38])
@pytest.mark.parametrize("offset", [1.0, 1.03])
def test_sine_lands_in_band_with_nearest_centre(band, offset):
    centres = np.array(_ref_edges()[1:-1])
    f = centres[band] * offset
    nearest = int(np.argmin(np.abs(np.log(centres / f))))
    t = np.arange(SR) / SR
    y = (0.5 * np.sin(2 * np.pi * f * t)).astype(np.float32)
    spec = log_mel(y, SR)  # (40, T)
    assert int(np.argmax(spec[:, 5:-5].mean(axis=1))) == nearest


def test_batched_equals_one_by_one():
    ys = np.stack([_signal(3.0, seed=s) for s in range(3)])  # (3, n)
    module = LogMel()
    with torch.no_grad():
        batched = module(torch.from_numpy(ys)).numpy()  # (3, 40, T)
    assert batched.shape == (3, 40, 1 + -(-ys.shape[1] // 1024))
    for i in range(3):
        np.testing.assert_allclose(batched[i], log_mel(ys[i], SR), rtol=0, atol=1e-5)


@pytest.mark.parametrize("block_frames", [7, 44, 45, 100, 10_000])
def test_fft_blocking_changes_no_value(monkeypatch, block_frames):
    """Blocks of frames within a track (7, 44) or of whole tracks (45+): same values (the
    FFT library may round a block's last odd frames differently, by ~1 ulp)."""
    import tfcnn.features as features

    ys = torch.from_numpy(np.stack([_signal(1.0, seed=s) for s in range(5)]))  # 44 frames
    module = LogMel()
    whole = module(ys)
    monkeypatch.setitem(features._CHUNK_FRAMES, "cpu", block_frames)
    np.testing.assert_allclose(module(ys).numpy(), whole.numpy(), rtol=0, atol=1e-6)


def test_resamples_other_rates_to_44100():
    sr = 22050
    t = np.arange(2 * sr) / sr
    y = (0.5 * np.sin(2 * np.pi * 1000.0 * t)).astype(np.float32)
    spec = log_mel(y, sr)
    assert spec.shape == (40, 1 + -(-2 * SR // 1024))
    direct = log_mel((0.5 * np.sin(2 * np.pi * 1000.0 * np.arange(2 * SR) / SR))
                     .astype(np.float32), SR)
    assert int(np.argmax(spec.mean(axis=1))) == int(np.argmax(direct.mean(axis=1)))
    np.testing.assert_allclose(spec[:, 3:-3], direct[:, 3:-3], atol=0.05)


def test_module_is_cached_per_front_end_and_device():
    assert log_mel_module(FRONT_END, "cpu") is log_mel_module(FrontEnd(), torch.device("cpu"))
    other = FrontEnd(n_mels=20)
    assert log_mel_module(other, "cpu") is not log_mel_module(FRONT_END, "cpu")
    assert log_mel(np.zeros(4096, np.float32), SR, front_end=other).shape == (20, 5)


def test_silence_is_zero():
    assert np.all(log_mel(np.zeros(10000, np.float32), SR) == 0.0)


# --- patches -----------------------------------------------------------------------------

def test_to_patches_non_overlapping_remainder_dropped():
    spec = np.arange(40 * 250, dtype=np.float32).reshape(40, 250)
    patches = to_patches(spec)
    assert patches.shape == (3, 40, 80) and patches.flags.c_contiguous
    for i in range(3):
        np.testing.assert_array_equal(patches[i], spec[:, 80 * i: 80 * (i + 1)])
    assert to_patches(spec[:, :79]).shape == (0, 40, 80)
    assert to_patches(spec, patch_frames=50).shape == (5, 40, 50)
    tensor = to_patches(torch.from_numpy(spec))
    assert isinstance(tensor, torch.Tensor)
    np.testing.assert_array_equal(tensor.numpy(), patches)


# --- bad parameters ----------------------------------------------------------------------

@pytest.mark.parametrize(
    "front_end, match",
    [
        (FrontEnd(n_fft=256, hop_length=128, n_mels=120), "contains no FFT bin"),
        (FrontEnd(compression=0.0), "compression must be > 0, got 0.0"),
        (FrontEnd(window_sum=-1.0), "window_sum must be > 0, got -1.0"),
        (FrontEnd(hop_length=4096), "hop_length must be <= n_fft.*4096 > 2048"),
        (FrontEnd(n_fft=2047), "n_fft must be an even number >= 2, got 2047"),
    ],
)
def test_bad_front_end_raises_config_error(front_end, match):
    with pytest.raises(ConfigError, match=match):
        LogMel(front_end)


def test_bad_inputs_raise_project_errors():
    with pytest.raises(ConfigError, match="front_end must be a FrontEnd, got str"):
        LogMel("paper")
    with pytest.raises(ConfigError, match="patch_frames must be a positive integer, got 0"):
        to_patches(np.zeros((40, 100)), patch_frames=0)
    with pytest.raises(ConfigError, match=r"spectrogram \(n_mels, T\), got shape \(2, 40, 100\)"):
        to_patches(np.zeros((2, 40, 100)))
    with pytest.raises(AudioError, match=r"non-empty mono signal.*got shape \(0,\)"):
        log_mel(np.zeros(0, np.float32), SR)
    with pytest.raises(AudioError, match=r"got shape \(2, 100\)"):
        log_mel(np.zeros((2, 100), np.float32), SR)
    with pytest.raises(AudioError, match=r"got \(2, 3, 100\)"):
        LogMel()(torch.zeros(2, 3, 100))


def test_front_end_never_imports_librosa_or_numba():
    """numba would compile kernels on a user's first request (issue 2 §3)."""
    import subprocess
    import sys

    code = (
        "import sys, numpy as np, tfcnn.audio, tfcnn.features as f;"
        "f.log_mel(np.zeros(5000, np.float32), 22050);"
        "print(sorted(m for m in ('librosa', 'numba') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=120, check=True)
    assert out.stdout.strip() == "[]"
