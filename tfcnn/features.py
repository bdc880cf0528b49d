"""The paper's log-mel front end, as one ``torch.nn.Module``, plus patching.

Pons et al. (2016, §2): 40-band mel spectrograms from an STFT with a 2048-sample
Blackman-Harris window and 50 % overlap at 44.1 kHz, phases discarded, compressed with
log(1 + C·x), C = 10 000; the network sees non-overlapping patches of 80 frames.

The original code computed this with Essentia (FrameGenerator(2048, 1024) →
Windowing('blackmanharris62') → Spectrum → MelBands(40, htkMel, unit_sum, power) →
log10(1 + 10000·x)). This module reproduces that definition exactly (to float32 rounding)
without depending on Essentia:

- frames of ``n_fft`` samples every ``hop_length``; the first frame is centred on sample 0
  (``n_fft // 2`` zeros before it) and frames go on, zero-padded, until one is centred at or
  past the last sample, so ``T = 1 + ceil(n_samples / hop_length)`` as Essentia's
  ``FrameGenerator`` with its defaults (checked against Essentia in ``tests/test_essentia.py``);
- symmetric 3-term Blackman-Harris window ("blackmanharris62"), scaled to sum 2;
- power spectrum ``|rfft|²`` (``n_fft // 2 + 1`` bins);
- 40 triangular HTK-mel bands, evaluated in the mel domain, rows of unit sum;
- ``log10(1 + compression · x)``.

:class:`LogMel` is the single implementation (batched, CPU or GPU); :func:`log_mel` is its
NumPy entry point for one signal. librosa is deliberately not imported here: its numba
kernels would compile on a user's first request.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from collections.abc import Iterable

import numpy as np
import torch

from tfcnn.audio import resample
from tfcnn.config import FRONT_END, FrontEnd
from tfcnn.errors import AudioError, ConfigError
from tfcnn.tempo import estimate_tempo
from tfcnn.threads import per_request

#: Coefficients of Essentia's "blackmanharris62" window (3-term, -62 dB side lobes).
BLACKMAN_HARRIS_62: tuple[float, float, float] = (0.44959, 0.49364, 0.05677)

#: HTK mel scale m(f) = HTK_MEL_FACTOR · ln(1 + f / HTK_MEL_BREAK_HZ) (Essentia "htkMel").
HTK_MEL_FACTOR = 1127.01048
HTK_MEL_BREAK_HZ = 700.0

# Frames per FFT block in LogMel, by device type. On CPU, 256 frames (2 MiB of spectrum)
# stay in cache; larger blocks are slower per clip (fresh pages on every call; see
# `python -m bench frontend`). On a GPU, large blocks amortise kernel launches.
_CHUNK_FRAMES: dict[str, int] = {"cpu": 256, "default": 1 << 15}


def hz_to_mel(f_hz: np.ndarray | float) -> np.ndarray:
    """HTK mel of a frequency in Hz: ``1127.01048 · ln(1 + f / 700)``."""
    return HTK_MEL_FACTOR * np.log1p(np.asarray(f_hz, dtype=np.float64) / HTK_MEL_BREAK_HZ)


def mel_to_hz(m: np.ndarray | float) -> np.ndarray:
    """Inverse of :func:`hz_to_mel`."""
    return HTK_MEL_BREAK_HZ * np.expm1(np.asarray(m, dtype=np.float64) / HTK_MEL_FACTOR)


def n_frames(n_samples: int, *, front_end: FrontEnd = FRONT_END) -> int:
    """Number of frames of a signal: ``1 + ceil(n_samples / hop_length)`` (:meth:`FrontEnd.n_frames`)."""
    return front_end.n_frames(n_samples)


def blackman_harris_window(front_end: FrontEnd = FRONT_END) -> np.ndarray:
    """Symmetric 3-term Blackman-Harris window, scaled so that it sums to ``window_sum``.

    ``w[i] = a0 − a1·cos(2πi/(N−1)) + a2·cos(4πi/(N−1))`` with Essentia's
    "blackmanharris62" coefficients; the scaling to sum 2 is Essentia's ``normalized=True``.

    Returns
    -------
    np.ndarray, shape (n_fft,), float64
    """
    _check_front_end(front_end)
    a0, a1, a2 = BLACKMAN_HARRIS_62
    phase = 2.0 * np.pi * np.arange(front_end.n_fft) / (front_end.n_fft - 1)
    window = a0 - a1 * np.cos(phase) + a2 * np.cos(2.0 * phase)
    return window * (front_end.window_sum / window.sum())


def mel_edges_hz(front_end: FrontEnd = FRONT_END) -> np.ndarray:
    """The ``n_mels + 2`` band edges, equally spaced on the HTK mel scale.

    Returns
    -------
    np.ndarray, shape (n_mels + 2,), float64, Hz
    """
    mels = np.linspace(
        hz_to_mel(front_end.f_min_hz), hz_to_mel(front_end.f_max_hz), front_end.n_mels + 2
    )
    return mel_to_hz(mels)


def mel_centers_hz(front_end: FrontEnd = FRONT_END) -> np.ndarray:
    """Centre frequency (peak of the triangle) of each band, shape (n_mels,), Hz."""
    return mel_edges_hz(front_end)[1:-1]


def mel_filterbank(front_end: FrontEnd = FRONT_END) -> np.ndarray:
    """Triangular HTK-mel filterbank with rows of unit sum (Essentia ``MelBands``).

    Band ``b`` covers the FFT bins whose frequency ``f_k = k · sr / n_fft`` lies in
    ``[e_b, e_{b+2})``; the triangle is evaluated in the mel domain, rising on
    ``[e_b, e_{b+1})`` and falling on ``[e_{b+1}, e_{b+2})``; each row is then divided by its
    sum.

    Returns
    -------
    np.ndarray, shape (n_mels, n_fft // 2 + 1), float64

    Raises
    ------
    ConfigError
        If a band contains no FFT bin (too many bands for ``n_fft``).
    """
    _check_front_end(front_end)
    n_bins = front_end.n_fft // 2 + 1
    bin_hz = np.arange(n_bins) * front_end.sample_rate / front_end.n_fft  # (n_bins,)
    bin_mel = hz_to_mel(bin_hz)
    edges_hz = mel_edges_hz(front_end)  # (n_mels + 2,)
    edges_mel = hz_to_mel(edges_hz)
    lo, mid, hi = edges_hz[:-2, None], edges_hz[1:-1, None], edges_hz[2:, None]  # (n_mels, 1)
    m_lo, m_mid, m_hi = edges_mel[:-2, None], edges_mel[1:-1, None], edges_mel[2:, None]
    rising = (bin_mel - m_lo) / (m_mid - m_lo)  # (n_mels, n_bins)
    falling = (m_hi - bin_mel) / (m_hi - m_mid)
    weights = np.where(
        (bin_hz >= lo) & (bin_hz < mid),
        rising,
        np.where((bin_hz >= mid) & (bin_hz < hi), falling, 0.0),
    )
    sums = weights.sum(axis=1)
    empty = np.flatnonzero(sums <= 0.0)
    if empty.size:
        raise ConfigError(
            f"mel band {int(empty[0])} ({edges_hz[empty[0]]:.1f}-{edges_hz[empty[0] + 2]:.1f} Hz) "
            f"contains no FFT bin: n_mels={front_end.n_mels} is too many for "
            f"n_fft={front_end.n_fft} at {front_end.sample_rate} Hz"
        )
    return weights / sums[:, None]


def _check_front_end(front_end: FrontEnd) -> None:
    """Validate what :class:`FrontEnd` itself does not check."""
    if not isinstance(front_end, FrontEnd):
        raise ConfigError(f"front_end must be a FrontEnd, got {type(front_end).__name__}")
    if front_end.n_fft < 2 or front_end.n_fft % 2:
        raise ConfigError(f"n_fft must be an even number >= 2, got {front_end.n_fft}")
    if front_end.hop_length > front_end.n_fft:
        raise ConfigError(
            f"hop_length must be <= n_fft (frames may not skip samples), got "
            f"{front_end.hop_length} > {front_end.n_fft}"
        )
    if not front_end.compression > 0:
        raise ConfigError(f"compression must be > 0, got {front_end.compression}")
    if not front_end.window_sum > 0:
        raise ConfigError(f"window_sum must be > 0, got {front_end.window_sum}")


class LogMel(torch.nn.Module):
    """Log-compressed mel spectrogram of a batch of signals (the paper's front end).

    The window and the filterbank are float32 buffers, so ``.to(device)`` moves them with the
    module (as torchaudio's ``MelSpectrogram``). Parameters are validated in ``__init__``.

    Parameters
    ----------
    front_end : FrontEnd
        Sample rate, FFT size, hop, number of bands, compression constant.

    Examples
    --------
    >>> LogMel()(torch.zeros(2, 44100)).shape  # (batch, n_mels, 1 + 44100 // 1024)
    torch.Size([2, 40, 44])
    """

    window: torch.Tensor
    filterbank: torch.Tensor

    def __init__(self, front_end: FrontEnd = FRONT_END) -> None:
        super().__init__()
        _check_front_end(front_end)
        self.front_end = front_end
        # Buffers follow .to(device); not persistent: they derive from front_end, which a
        # checkpoint stores, so a state_dict never carries a stale filterbank.
        window = torch.from_numpy(blackman_harris_window(front_end)).float()  # (n_fft,)
        filterbank = torch.from_numpy(mel_filterbank(front_end)).float()  # (n_mels, n_bins)
        self.register_buffer("window", window, persistent=False)
        self.register_buffer("filterbank", filterbank, persistent=False)

    def forward(self, waveforms: torch.Tensor) -> torch.Tensor:
        """Log-mel spectrogram.

        Parameters
        ----------
        waveforms : torch.Tensor, shape (batch, n_samples) or (n_samples,)
            Mono signals at ``front_end.sample_rate``.

        Returns
        -------
        torch.Tensor, shape (batch, n_mels, T) or (n_mels, T), float32
            ``T = 1 + ceil(n_samples / hop_length)`` (:func:`n_frames`).
        """
        if waveforms.ndim not in (1, 2) or waveforms.shape[-1] == 0:
            raise AudioError(
                f"LogMel expects waveforms of shape (batch, n_samples) or (n_samples,) with "
                f"n_samples > 0, got {tuple(waveforms.shape)}"
            )
        if waveforms.ndim == 1:
            return self(waveforms[None])[0]
        fe = self.front_end
        n_out = fe.n_frames(waveforms.shape[-1])
        # The FFT runs on blocks of about _CHUNK_FRAMES frames (whole tracks when they are
        # short, slices of one track when it is long), so intermediates stay in cache and
        # memory is bounded for any batch or track length. Every frame is computed
        # independently: blocking changes no value (beyond float rounding).
        rows = _CHUNK_FRAMES.get(waveforms.device.type, _CHUNK_FRAMES["default"])
        tracks_per_block = max(1, rows // n_out)
        mel = torch.cat([
            self._mel_of_tracks(block, rows) for block in waveforms.split(tracks_per_block)
        ])  # (batch, T, n_mels)
        return self._compress(mel).transpose(1, 2).contiguous()  # (batch, n_mels, T)

    def of_frames(self, frames: torch.Tensor) -> torch.Tensor:
        """Log-mel of already cut frames (the streaming path, :func:`log_mel_stream`).

        Parameters
        ----------
        frames : torch.Tensor, shape (T, n_fft)
            Frame ``t`` holds the padded signal's samples ``[t·hop, t·hop + n_fft)``.

        Returns
        -------
        torch.Tensor, shape (n_mels, T), float32
        """
        rows = _CHUNK_FRAMES.get(frames.device.type, _CHUNK_FRAMES["default"])
        frames = frames.to(self.window.dtype)
        mel = torch.cat([self._mel(frames[t: t + rows])
                         for t in range(0, frames.shape[0], rows)])  # (T, n_mels)
        return self._compress(mel).T.contiguous()  # (n_mels, T)

    def _compress(self, mel: torch.Tensor) -> torch.Tensor:
        """Dynamic range compression log(1 + C·x), C = 10 000 (paper §2), base 10 as Essentia."""
        return torch.log10(mel.mul_(self.front_end.compression).add_(1.0))

    def _mel_of_tracks(self, waveforms: torch.Tensor, rows: int) -> torch.Tensor:
        """Mel band energies of a few tracks: (k, n_samples) -> (k, T, n_mels)."""
        fe = self.front_end
        n_samples = waveforms.shape[-1]
        n_out = fe.n_frames(n_samples)
        # Frames centred on multiples of hop: n_fft/2 zeros before the signal, and after it
        # as many as the last frame needs (Essentia's FrameGenerator(startFromZero=False),
        # T = 1 + ceil(n / hop)). unfold is a view.
        left = fe.n_fft // 2
        right = (n_out - 1) * fe.hop_length + fe.n_fft - left - n_samples
        padded = torch.nn.functional.pad(waveforms.to(self.window.dtype), (left, right))
        frames = padded.unfold(-1, fe.n_fft, fe.hop_length)  # (k, T, n_fft)
        k, n_out, _ = frames.shape
        if n_out <= rows:
            return self._mel(frames)
        return torch.cat([
            self._mel(frames[i, t: t + rows]) for i in range(k) for t in range(0, n_out, rows)
        ]).view(k, n_out, -1)

    def _mel(self, frames: torch.Tensor) -> torch.Tensor:
        """Mel band energies of raw frames: (..., n_fft) -> (..., n_mels)."""
        spectrum = torch.fft.rfft(frames * self.window)  # (..., n_fft // 2 + 1) complex
        # |X|² = re² + im², phases discarded (paper §2). Squaring the contiguous (re, im)
        # pairs first is faster than abs() (no sqrt) or squaring strided .real/.imag views.
        squares = torch.view_as_real(spectrum).square()  # (..., n_bins, 2)
        power = squares[..., 0] + squares[..., 1]  # (..., n_bins)
        return torch.matmul(power, self.filterbank.T)  # (..., n_mels)

    def extra_repr(self) -> str:
        fe = self.front_end
        return (
            f"sample_rate={fe.sample_rate}, n_fft={fe.n_fft}, hop_length={fe.hop_length}, "
            f"n_mels={fe.n_mels}, compression={fe.compression:g}"
        )


@functools.lru_cache(maxsize=16)
def _cached_module(front_end: FrontEnd, device: str) -> LogMel:
    """One :class:`LogMel` per (front end, device): the filterbank is built once."""
    return LogMel(front_end).to(device).eval()


def log_mel_module(
    front_end: FrontEnd = FRONT_END, device: str | torch.device = "cpu"
) -> LogMel:
    """The shared (cached) :class:`LogMel` for ``front_end`` on ``device``; do not mutate it."""
    return _cached_module(front_end, str(torch.device(device)))


@per_request
def log_mel(
    y: np.ndarray,
    sr: int,
    *,
    front_end: FrontEnd = FRONT_END,
    device: str | torch.device = "cpu",
) -> np.ndarray:
    """Log-mel spectrogram of one mono signal (NumPy entry point of :class:`LogMel`).

    Parameters
    ----------
    y : np.ndarray, shape (n_samples,)
        Mono signal.
    sr : int
        Its sample rate in Hz; resampled to ``front_end.sample_rate`` with soxr if different.
    front_end : FrontEnd, keyword-only
    device : str or torch.device, keyword-only
        Where to compute ("cpu", "cuda", ...).

    Returns
    -------
    np.ndarray, shape (n_mels, T), float32
        ``T = 1 + ceil(n_samples / hop_length)`` (after resampling; :func:`n_frames`).
    """
    y = np.asarray(y)
    if y.ndim != 1 or y.size == 0:
        raise AudioError(
            f"log_mel expects a non-empty mono signal (n_samples,), got shape {y.shape}"
        )
    if sr != front_end.sample_rate:
        if isinstance(sr, float) and sr.is_integer():
            sr = int(sr)
        # the same soxr path as load_audio
        y = resample(y, orig_rate_hz=sr, target_rate_hz=front_end.sample_rate)
    module = log_mel_module(front_end, device)
    with torch.inference_mode():
        waveform = torch.from_numpy(np.ascontiguousarray(y, dtype=np.float32))  # (n_samples,)
        out = module(waveform.to(module.window.device))  # (n_mels, T)
    return out.cpu().numpy()


def log_mel_stream(
    blocks: Iterable[np.ndarray],
    *,
    front_end: FrontEnd = FRONT_END,
    device: str | torch.device = "cpu",
) -> np.ndarray:
    """Log-mel of a mono signal given as consecutive blocks, in bounded memory.

    Equals :func:`log_mel` of the joined signal (same frames, same padding: ``n_fft // 2``
    zeros before, Essentia's ``T = 1 + ceil(n / hop)`` frames), but holds only one block and
    one frame's overlap of samples at a time, so a 3-hour file needs no 3-hour buffer.

    Parameters
    ----------
    blocks : iterable of np.ndarray, each shape (n_i,)
        The signal at ``front_end.sample_rate`` in pieces of any sizes (e.g.
        :func:`tfcnn.audio.iter_audio`).
    front_end : FrontEnd, keyword-only
    device : str or torch.device, keyword-only

    Returns
    -------
    np.ndarray, shape (n_mels, T), float32
    """
    module = log_mel_module(front_end, device)
    n_fft, hop = front_end.n_fft, front_end.hop_length
    # buf holds the padded signal from padded index p0 on; frame t spans [t·hop, t·hop+n_fft).
    buf = np.zeros(n_fft // 2, dtype=np.float32)
    p0, next_frame, n_samples = 0, 0, 0
    # One growing output array, not a list of per-block pieces joined at the end: the pieces,
    # interleaved on the heap with each block's large temporaries, kept the allocator from
    # reusing freed memory (a 3-hour file peaked at several times its log-mel's size).
    out = np.empty((front_end.n_mels, 0), dtype=np.float32)  # (n_mels, capacity)

    def emit(end_frame: int) -> None:
        nonlocal buf, p0, next_frame, out
        if end_frame <= next_frame:
            return
        start = next_frame * hop - p0
        piece = torch.from_numpy(buf[start: start + (end_frame - next_frame - 1) * hop + n_fft])
        frames = piece.unfold(0, n_fft, hop)  # (end_frame - next_frame, n_fft), a view
        if end_frame > out.shape[1]:  # grow by half: few copies, little unused room
            grown = np.empty((out.shape[0], max(end_frame, out.shape[1] * 3 // 2)), np.float32)
            grown[:, :next_frame] = out[:, :next_frame]
            out = grown
        with torch.inference_mode():
            mel = module.of_frames(frames.to(module.window.device))  # (n_mels, frames)
            out[:, next_frame:end_frame] = mel.cpu().numpy()
        next_frame = end_frame
        buf = buf[next_frame * hop - p0:]
        p0 = next_frame * hop

    for block in blocks:
        block = np.asarray(block, dtype=np.float32)
        if block.ndim != 1:
            raise AudioError(f"log_mel_stream expects mono blocks (n,), got shape {block.shape}")
        n_samples += block.size
        buf = np.concatenate([buf, block])
        # every frame that fits entirely in the samples seen so far
        emit((p0 + buf.size - n_fft) // hop + 1)
    if n_samples == 0:
        raise AudioError("log_mel_stream got no samples")
    total = front_end.n_frames(n_samples)
    # zeros after the signal, as many as the last frame needs
    buf = np.concatenate([buf, np.zeros((total - 1) * hop + n_fft - p0 - buf.size, np.float32)])
    emit(total)
    if out.shape[1] == total:
        return out  # (n_mels, T)
    return np.ascontiguousarray(out[:, :total])  # (n_mels, T)


@dataclass(frozen=True)
class ModelInput:
    """The frames a model's patches are cut from (:func:`model_input`).

    Attributes
    ----------
    frames : np.ndarray, shape (n_mels, T'), float32
        The log-mel itself (the paper's input, ``T' = T``) or resampled in time so that one
        beat spans ``front_end.frames_per_beat`` frames.
    frame_seconds : float
        Seconds of audio one frame spans (``1 / frame_rate_hz`` for the paper's input).
    bpm : float or None
        The tempo estimate the frames were resampled with (None: not resampled).
    """

    frames: np.ndarray
    frame_seconds: float
    bpm: float | None = None


def model_input(spec: np.ndarray, *, front_end: FrontEnd = FRONT_END) -> ModelInput:
    """The frames the model's patches are cut from: ``spec`` itself, or with
    ``front_end.frames_per_beat`` a beat-synchronous (tempo-normalised) version of it.

    The one place both training (:mod:`tfcnn.train`) and prediction
    (:func:`tfcnn.inference.predict_features`) turn a log-mel into the model's frames, so a
    checkpoint always sees the input it was trained on. The tempo is the track's estimate
    from its own log-mel (:func:`tfcnn.tempo.estimate_tempo`), never an annotation: a song
    to predict has none. Every band is resampled by the same factor
    ``frames_per_beat / (frame_rate_hz · 60 / bpm)`` with an antialiasing (area-weighted)
    linear filter when it shrinks, as beat-synchronous features in the MIR literature
    (there by averaging between beats; here at a fixed number of frames per beat, so a
    temporal filter of ``n`` frames spans ``n / frames_per_beat`` beats at any tempo).

    Parameters
    ----------
    spec : np.ndarray, shape (n_mels, T)
        Log-mel (not normalised) of the front end's log-mel part.
    front_end : FrontEnd, keyword-only

    Returns
    -------
    ModelInput
        ``frames`` of shape ``(n_mels, round(T · factor))`` when beat-synchronous.
    """
    spec = np.asarray(spec, dtype=np.float32)
    if spec.ndim != 2:
        raise ConfigError(f"model_input expects a log-mel (n_mels, T), got shape {spec.shape}")
    frame_s = 1.0 / front_end.frame_rate_hz
    if not front_end.beat_synchronous:
        return ModelInput(frames=spec, frame_seconds=frame_s)
    bpm = estimate_tempo(spec, front_end=front_end).bpm
    native = front_end.frame_rate_hz * 60.0 / bpm  # frames per beat in the log-mel
    factor = front_end.frames_per_beat / native
    n_out = max(1, int(round(spec.shape[1] * factor)))
    return ModelInput(frames=resample_frames(spec, n_out), frame_seconds=frame_s / factor,
                      bpm=float(bpm))


def resample_frames(spec: np.ndarray, n_out: int) -> np.ndarray:
    """``spec`` resampled in time to ``n_out`` frames, every band by the same factor: a
    time stretch of the log-mel that keeps its bands (pitch) where they are.

    Linear interpolation between frames; when frames are dropped the kernel widens
    (antialiasing, area-like averaging). The one implementation behind beat-synchronous
    inputs (:func:`model_input`) and the time-stretch counterfactual
    (:mod:`tfcnn.interpret.stretch`).

    Parameters
    ----------
    spec : np.ndarray, shape (n_mels, T)
    n_out : int
        Frames of the result (≥ 1).

    Returns
    -------
    np.ndarray, shape (n_mels, n_out), float32
    """
    if isinstance(n_out, bool) or not isinstance(n_out, (int, np.integer)) or n_out < 1:
        raise ConfigError(f"n_out must be a positive integer, got {n_out!r}")
    spec = np.asarray(spec, dtype=np.float32)
    with torch.inference_mode():
        x = torch.from_numpy(np.ascontiguousarray(spec))[None, None]  # (1, 1, n_mels, T)
        # bilinear over (bands, frames) with the bands' size unchanged: linear in time only
        y = torch.nn.functional.interpolate(x, size=(spec.shape[0], int(n_out)),
                                            mode="bilinear", align_corners=False,
                                            antialias=True)
    return y[0, 0].numpy().astype(np.float32, copy=False)


def to_patches(spec, *, patch_frames: int = FRONT_END.patch_frames):
    """Cut a spectrogram into non-overlapping patches, dropping the remainder.

    As the original code, a track of ``T`` frames gives ``T // patch_frames`` patches of 80
    frames (≈ 1.86 s each, Pons et al. 2016 §2); the last ``T % patch_frames`` frames are
    dropped.

    Parameters
    ----------
    spec : np.ndarray or torch.Tensor, shape (n_mels, T)
    patch_frames : int, keyword-only

    Returns
    -------
    np.ndarray or torch.Tensor, shape (T // patch_frames, n_mels, patch_frames)
        Same type as ``spec``, contiguous; shape ``(0, n_mels, patch_frames)`` when
        ``T < patch_frames``.
    """
    if (
        isinstance(patch_frames, bool)
        or not isinstance(patch_frames, (int, np.integer))
        or patch_frames <= 0
    ):
        raise ConfigError(f"patch_frames must be a positive integer, got {patch_frames!r}")
    patch_frames = int(patch_frames)
    if getattr(spec, "ndim", None) != 2:
        raise ConfigError(
            f"to_patches expects a spectrogram (n_mels, T), got shape {tuple(np.shape(spec))}"
        )
    n_mels, total = spec.shape
    n = total // patch_frames
    # (n_mels, n·pf) -> (n_mels, n, pf) -> (n, n_mels, pf)
    patches = spec[:, : n * patch_frames].reshape(n_mels, n, patch_frames).swapaxes(0, 1)
    if isinstance(patches, torch.Tensor):
        return patches.contiguous()
    return np.ascontiguousarray(patches)
