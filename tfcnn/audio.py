"""Audio input: any file or upload → mono float32 at 44.1 kHz, with clear errors.

The paper's front end runs at 44.1 kHz on a mono signal (Pons et al. 2016, §2; the original
code used Essentia's ``MonoLoader``). Everything that enters the pipeline passes through
:func:`load_audio`, so training, the CLI and the app all see the same signal.

Files are decoded by content with libsndfile (WAV, FLAC, OGG-Vorbis, OGG-Opus, MP3, ...):
a ``.mp3`` that really holds a WAV loads as the WAV it is. Several channels are mixed down by
their mean; any other sample rate is resampled with soxr (high quality).
"""

from __future__ import annotations

import contextlib
import io
import os
import threading
from pathlib import Path
from typing import BinaryIO, Union

import numpy as np
import soundfile as sf
import soxr

from tfcnn.atomic import atomic_path
from tfcnn.config import FRONT_END, FrontEnd
from tfcnn.errors import AudioError

#: What :func:`load_audio` accepts: a path, raw file bytes, or a binary file-like object
#: (e.g. a Streamlit ``UploadedFile``).
AudioSource = Union[str, os.PathLike, bytes, bytearray, memoryview, BinaryIO]

#: soxr quality used for every resampling in the project ("HQ": 20-bit precision, flat to
#: 0.95 of Nyquist; plenty for 16-bit audio and 40 mel bands).
RESAMPLE_QUALITY = "HQ"

# libsndfile raises these for bytes it cannot decode (and ValueError / EOFError for some
# truncated headers); they all mean "not audio we can read".
_DECODE_ERRORS = (sf.SoundFileError, RuntimeError, ValueError, EOFError, TypeError)


_STDERR_LOCK = threading.Lock()


@contextlib.contextmanager
def _quiet_c_stderr():
    """Silence what the C decoders print on fd 2 (mpg123's "Note: Trying to resync..." on a
    corrupt MP3), so a bad file gives one error line, not decoder chatter."""
    with _STDERR_LOCK:
        try:
            saved = os.dup(2)
        except OSError:  # no fd 2 (some embedded interpreters): nothing to silence
            yield
            return
        try:
            with open(os.devnull, "wb") as devnull:
                os.dup2(devnull.fileno(), 2)
                yield
        finally:
            os.dup2(saved, 2)
            os.close(saved)


def _label(source: AudioSource, name: str | None) -> str:
    """The name used in error messages: ``name`` if given, else the path, else a placeholder."""
    if name is not None:
        return str(name)
    if isinstance(source, (str, os.PathLike)):
        return str(source)
    return str(getattr(source, "name", None) or "<audio bytes>")


def _check_rate(sample_rate: object, label: str) -> None:
    """Raise unless ``sample_rate`` is a positive integer number of Hz."""
    if (
        isinstance(sample_rate, bool)
        or not isinstance(sample_rate, (int, np.integer))
        or sample_rate <= 0
    ):
        raise AudioError(
            f"{label}: sample_rate must be a positive integer (Hz), got {sample_rate!r}"
        )


def _read_source(source: AudioSource, label: str) -> bytes | Path:
    """Check that ``source`` exists and is non-empty; return a path or the raw bytes."""
    if isinstance(source, (str, os.PathLike)):
        path = Path(source)
        if not path.exists():
            raise AudioError(f"{label}: no such file")
        if path.is_dir():
            raise AudioError(f"{label}: is a directory, not an audio file")
        if path.stat().st_size == 0:
            raise AudioError(f"{label}: file is empty (0 bytes)")
        return path
    if isinstance(source, (bytes, bytearray, memoryview)):
        data = bytes(source)
    elif hasattr(source, "read"):
        if hasattr(source, "seek"):
            source.seek(0)
        data = source.read()
        if not isinstance(data, (bytes, bytearray)):
            raise AudioError(f"{label}: file object must be opened in binary mode")
        data = bytes(data)
    else:
        raise AudioError(
            f"{label}: cannot read audio from a {type(source).__name__}; "
            "give a path, bytes or a binary file object"
        )
    if not data:
        raise AudioError(f"{label}: file is empty (0 bytes)")
    return data


def resample(y: np.ndarray, *, orig_rate_hz: int, target_rate_hz: int) -> np.ndarray:
    """Resample a mono signal with soxr (the project's one resampling path).

    Parameters
    ----------
    y : np.ndarray, shape (n_samples,)
        Mono signal.
    orig_rate_hz, target_rate_hz : int
        Sample rates in Hz.

    Returns
    -------
    np.ndarray, shape (round(n_samples * target / orig),), float32
    """
    _check_rate(orig_rate_hz, "resample")
    _check_rate(target_rate_hz, "resample")
    y = np.ascontiguousarray(y, dtype=np.float32)
    if orig_rate_hz == target_rate_hz:
        return y
    return soxr.resample(y, orig_rate_hz, target_rate_hz, quality=RESAMPLE_QUALITY)


def load_audio(
    source: AudioSource, *, sample_rate: int = FRONT_END.sample_rate, name: str | None = None
) -> np.ndarray:
    """Decode an audio file or buffer to a mono float32 signal at ``sample_rate``.

    Parameters
    ----------
    source : str, os.PathLike, bytes or binary file-like
        A path, or the file's bytes (e.g. an upload). The format is detected from the
        content, never from the extension.
    sample_rate : int, keyword-only
        Output sample rate in Hz (the paper's 44100 by default).
    name : str, optional, keyword-only
        Name used in error messages (defaults to the path or the file object's ``name``).

    Returns
    -------
    np.ndarray, shape (n_samples,), float32
        Mono signal (mean of the channels), resampled with soxr if needed.

    Raises
    ------
    AudioError
        Missing file, directory, empty file, undecodable bytes, zero-length audio or
        non-finite samples; the message names the file.
    """
    label = _label(source, name)
    _check_rate(sample_rate, label)
    raw = _read_source(source, label)
    try:
        # always_2d: (frames, channels) for every file, so the mix-down has one code path.
        with _quiet_c_stderr():
            data, file_rate = sf.read(
                io.BytesIO(raw) if isinstance(raw, bytes) else str(raw),
                dtype="float32",
                always_2d=True,
            )
    except _DECODE_ERRORS:
        # libsndfile's own text ("File does not exist or is not a regular file") misleads here.
        raise AudioError(
            f"{label}: cannot decode audio (not a WAV/FLAC/OGG/Opus/MP3 file, or corrupt)"
        ) from None
    if data.shape[0] == 0 or data.shape[1] == 0:
        raise AudioError(f"{label}: audio has zero length (no samples)")
    if not np.isfinite(data).all():
        raise AudioError(f"{label}: audio contains non-finite samples (NaN or inf)")
    # (frames, channels) -> (frames,): the paper's pipeline is mono (Essentia MonoLoader).
    y = data.mean(axis=1, dtype=np.float32) if data.shape[1] > 1 else data[:, 0]
    return resample(y, orig_rate_hz=int(file_rate), target_rate_hz=int(sample_rate))


#: Peak amplitude below which a signal counts as silent (-100 dBFS).
SILENCE_PEAK = 1e-5


def require_sound(y: np.ndarray, *, name: str | None = None) -> None:
    """Raise :class:`AudioError` if ``y`` is silent (peak below -100 dBFS).

    A silent file has no rhythm or timbre to classify, yet the network would still pick a
    class for it; the CLI and the app both refuse it through this check.

    Parameters
    ----------
    y : np.ndarray, shape (n_samples,)
        Mono signal.
    name : str, optional, keyword-only
        File name used in the message.
    """
    if np.size(y) and float(np.max(np.abs(y))) >= SILENCE_PEAK:
        return
    raise AudioError(f"{name or 'audio'}: audio is silent (peak below -100 dBFS); "
                     f"nothing to classify")


def require_patch(
    y: np.ndarray, *, front_end: FrontEnd = FRONT_END, name: str | None = None
) -> None:
    """Raise :class:`AudioError` if ``y`` is too short to give one patch of the front end.

    A signal of ``n`` samples gives ``T = 1 + ceil(n / hop_length)`` frames (Essentia's
    framing), and a prediction needs one patch of ``patch_frames`` frames (Pons et al. 2016
    §2): at least :attr:`FrontEnd.min_patch_samples` samples, 79,873 (1.81 s) for the paper's
    80 frames (the patch itself spans 80 hops, 1.86 s, since frames are centred).

    Parameters
    ----------
    y : np.ndarray, shape (n_samples,)
        Mono signal at ``front_end.sample_rate``.
    front_end : FrontEnd, keyword-only
    name : str, optional, keyword-only
        File name used in the message.
    """
    n = int(np.shape(y)[-1]) if np.ndim(y) else 0
    if n >= front_end.min_patch_samples:
        return
    label = name or "audio"
    got_s = n / front_end.sample_rate
    got_frames = front_end.n_frames(n)
    raise AudioError(
        f"{label}: audio is too short ({got_s:.2f} s, {got_frames} frames); a prediction "
        f"needs at least {front_end.min_patch_samples / front_end.sample_rate:.2f} s "
        f"(one patch of {front_end.patch_frames} frames)"
    )


def write_wav(path: str | os.PathLike, y: np.ndarray, *, sample_rate: int) -> Path:
    """Write ``y`` as a 16-bit PCM WAV file, atomically (temporary file + rename).

    Parameters
    ----------
    path : str or os.PathLike
        Destination; parent folders are created.
    y : np.ndarray, shape (n_samples,) or (n_samples, n_channels)
        Samples in [-1, 1] (values outside are clipped).
    sample_rate : int, keyword-only
        Sample rate in Hz.

    Returns
    -------
    Path
        The written file.
    """
    path = Path(path)
    y = np.asarray(y, dtype=np.float32)
    if y.ndim not in (1, 2) or y.shape[0] == 0:
        raise AudioError(
            f"{path}: expected samples of shape (n,) or (n, channels), got {y.shape}"
        )
    if not np.isfinite(y).all():
        raise AudioError(f"{path}: refusing to write non-finite samples (NaN or inf)")
    _check_rate(sample_rate, str(path))
    with atomic_path(path) as tmp:
        sf.write(tmp, np.clip(y, -1.0, 1.0), int(sample_rate), subtype="PCM_16", format="WAV")
    return path
