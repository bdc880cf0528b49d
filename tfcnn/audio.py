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
import errno
import io
import os
import re
import stat
import threading
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO, Union

import numpy as np
import soundfile as sf
import soxr

from tfcnn.atomic import atomic_path
from tfcnn.config import FRONT_END, FrontEnd
from tfcnn.errors import AudioError, AudioWarning
from tfcnn.paths import display

#: What :func:`load_audio` accepts: a path, raw file bytes, or a binary file-like object
#: (e.g. a Streamlit ``UploadedFile``).
AudioSource = Union[str, os.PathLike, bytes, bytearray, memoryview, BinaryIO]

#: soxr quality used for every resampling in the project ("HQ": 20-bit precision, flat to
#: 0.95 of Nyquist; plenty for 16-bit audio and 40 mel bands).
RESAMPLE_QUALITY = "HQ"

# libsndfile raises these for bytes it cannot decode (and ValueError / EOFError for some
# truncated headers); they all mean "not audio we can read".
_DECODE_ERRORS = (sf.SoundFileError, RuntimeError, ValueError, EOFError, TypeError)
# libsndfile's own text ("File does not exist or is not a regular file") misleads here.
_UNDECODABLE = "{label}: cannot decode audio (not a WAV/FLAC/OGG/Opus/MP3 file, or corrupt)"

#: Frames decoded per block by :func:`iter_audio` (about 24 s at 44.1 kHz, 4 MB as float32).
#: A block never holds more than this many samples over all channels, nor gives more than
#: this many samples after resampling: memory is bounded by it, never by header fields.
BLOCK_FRAMES = 1 << 20
#: Frames per read of a file whose header does not state its length (a streamed FLAC):
#: libsndfile fails the read that meets the end of such a file, so at most this much of its
#: last moment (0.09 s at 44.1 kHz) is dropped.
STREAM_BLOCK_FRAMES = 1 << 12

#: Sample rates a file may have (1 kHz to 384 kHz) and how many channels.
MIN_FILE_RATE_HZ = 1_000
MAX_FILE_RATE_HZ = 384_000
MAX_CHANNELS = 32
#: libsndfile's frame count for a file whose header leaves the length unset.
_UNKNOWN_FRAMES = 1 << 62


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
        return display(source)
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


def _open_source(source: AudioSource, label: str) -> BinaryIO:
    """A binary file object over ``source``: an opened regular file, or the bytes in memory.

    A path is opened by Python (any bytes in its name work) after its type is checked, so
    a directory, device or FIFO is refused before a decoder touches it.
    """
    if isinstance(source, (str, os.PathLike)):
        try:
            info = os.stat(source)
        except OSError as exc:
            raise AudioError(f"{label}: {_os_problem(exc)}") from None
        if stat.S_ISDIR(info.st_mode):
            raise AudioError(f"{label}: is a directory, not an audio file")
        if not stat.S_ISREG(info.st_mode):
            raise AudioError(f"{label}: not a regular file (a device, pipe or socket)")
        if info.st_size == 0:
            raise AudioError(f"{label}: file is empty (0 bytes)")
        try:
            return open(source, "rb")
        except OSError as exc:
            raise AudioError(f"{label}: {_os_problem(exc)}") from None
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
    return io.BytesIO(data)


def _os_problem(exc: OSError) -> str:
    """Words for why a path cannot be opened (a symlink loop is not a missing file)."""
    return {errno.ENOENT: "no such file",
            errno.ELOOP: "symbolic link loop (too many levels of symbolic links)",
            errno.EACCES: "permission denied",
            errno.ENOTDIR: "no such file (a parent is not a folder)",
            errno.ENAMETOOLONG: "file name too long"}.get(exc.errno,
                                                         exc.strerror or "cannot open")


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


def _truncation_note(extra_info: str) -> str | None:
    """libsndfile's note on a WAV whose data chunk is shorter than its header says."""
    match = re.search(r"^data\s*:\s*(\d+)\s*\(should be (\d+)\)", extra_info or "", re.M)
    if match and int(match.group(2)) < int(match.group(1)):
        return f"{int(match.group(2))} of the {int(match.group(1))} data bytes its header announces"
    return None


def iter_audio(
    source: AudioSource, *, sample_rate: int = FRONT_END.sample_rate, name: str | None = None,
    max_duration_s: float | None = None, block_frames: int = BLOCK_FRAMES,
) -> Iterator[np.ndarray]:
    """Decode an audio file block by block: mono float32 blocks at ``sample_rate``.

    The one decoding path of the project (:func:`load_audio` joins its blocks). Memory stays
    bounded by the block size whatever the file's length: each block is decoded, mixed to
    mono and resampled with a streaming soxr resampler (whose output equals one-shot
    resampling of the whole signal).

    Parameters
    ----------
    source : str, os.PathLike, bytes or binary file-like
        The format is detected from the content, never from the extension.
    sample_rate : int, keyword-only
        Output sample rate in Hz.
    name : str, optional, keyword-only
        Name used in messages.
    max_duration_s : float, optional, keyword-only
        Refuse longer audio: first by the duration the header states (before anything is
        decoded), then by the samples actually decoded (a header may lie).
    block_frames : int, keyword-only
        Samples per block: a read holds at most this many over all channels, and gives at
        most about this many once resampled. A file whose header leaves its length unset
        (a streamed FLAC) is read to its end in :data:`STREAM_BLOCK_FRAMES` frames.

    Yields
    ------
    np.ndarray, shape (n,), float32
        Consecutive pieces of the mono signal.

    Raises
    ------
    AudioError
        As :func:`load_audio`, and audio over ``max_duration_s``, a sample rate outside
        1-384 kHz or more than :data:`MAX_CHANNELS` channels.

    Warns
    -----
    AudioWarning
        A WAV file shorter than its header says (truncated): its samples are used.
    """
    label = _label(source, name)
    _check_rate(sample_rate, label)
    fh = _open_source(source, label)
    try:
        try:
            with _quiet_c_stderr():
                audio = sf.SoundFile(fh)
        except _DECODE_ERRORS:
            raise AudioError(_UNDECODABLE.format(label=label)) from None
        with audio:
            file_rate, channels = int(audio.samplerate), int(audio.channels)
            if not MIN_FILE_RATE_HZ <= file_rate <= MAX_FILE_RATE_HZ:
                raise AudioError(f"{label}: sample rate {file_rate} Hz is outside "
                                 f"{MIN_FILE_RATE_HZ // 1000}-{MAX_FILE_RATE_HZ // 1000} kHz")
            if not 1 <= channels <= MAX_CHANNELS:
                raise AudioError(f"{label}: {channels} channels; at most {MAX_CHANNELS} are "
                                 "read")
            streamed = audio.frames >= _UNKNOWN_FRAMES  # length unset in the header
            if (max_duration_s is not None and not streamed
                    and audio.frames / file_rate > max_duration_s):
                raise AudioError(_too_long(label, audio.frames / file_rate, max_duration_s))
            note = _truncation_note(audio.extra_info)
            if note:
                warnings.warn(AudioWarning(f"{label}: truncated WAV file: it holds {note}; "
                                           "using the samples present"), stacklevel=2)
            resampler = None
            if file_rate != sample_rate:
                resampler = soxr.ResampleStream(file_rate, int(sample_rate), 1,
                                                dtype="float32", quality=RESAMPLE_QUALITY)
            # frames per read: at most block_frames samples over all channels, and at most
            # block_frames samples once resampled up (a 1 kHz file gives 44 x more)
            step = max(1, block_frames // channels)
            step = max(1, min(step, block_frames * file_rate // int(sample_rate)))
            if streamed:
                step = min(step, STREAM_BLOCK_FRAMES)
            n_read = 0
            while True:
                try:
                    with _quiet_c_stderr():
                        # always_2d: (frames, channels), so the mix-down has one code path.
                        data = audio.read(step, dtype="float32", always_2d=True)
                except _DECODE_ERRORS:
                    if not (streamed and n_read and _at_end(fh)):
                        raise AudioError(_UNDECODABLE.format(label=label)) from None
                    # a lengthless stream ends with a failed read at the end of the file
                    data = np.zeros((0, channels), dtype=np.float32)
                last = data.shape[0] < step
                if data.shape[1] == 0 or (n_read == 0 and last and data.shape[0] == 0):
                    raise AudioError(f"{label}: audio has zero length (no samples)")
                n_read += data.shape[0]
                if max_duration_s is not None and n_read / file_rate > max_duration_s:
                    raise AudioError(_too_long(label, n_read / file_rate, max_duration_s,
                                               at_least=True))
                if not np.isfinite(data).all():
                    raise AudioError(f"{label}: audio contains non-finite samples (NaN or inf)")
                # (frames, channels) -> (frames,): the paper's pipeline is mono (MonoLoader).
                y = data.mean(axis=1, dtype=np.float32) if data.shape[1] > 1 else data[:, 0]
                if resampler is not None:
                    y = resampler.resample_chunk(np.ascontiguousarray(y), last=last)
                if y.size:
                    yield np.ascontiguousarray(y, dtype=np.float32)
                if last:
                    return
    finally:
        fh.close()


def _at_end(fh: BinaryIO) -> bool:
    """Whether the decoder has read ``fh`` to its end."""
    try:
        position = fh.tell()
        size = fh.seek(0, os.SEEK_END)
        return position >= size
    except (OSError, ValueError):
        return False


def _too_long(label: str, seconds: float, limit_s: float, *, at_least: bool = False) -> str:
    return (f"{label}: audio is {'over ' if at_least else ''}{seconds / 60:.1f} min long; "
            f"the limit is {limit_s / 60:.0f} min")


def load_audio(
    source: AudioSource, *, sample_rate: int = FRONT_END.sample_rate, name: str | None = None,
    max_duration_s: float | None = None,
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
    max_duration_s : float, optional, keyword-only
        Refuse longer audio, before decoding it when the header says so (:func:`iter_audio`).

    Returns
    -------
    np.ndarray, shape (n_samples,), float32
        Mono signal (mean of the channels), resampled with soxr if needed.

    Raises
    ------
    AudioError
        Missing file, directory, device or pipe, empty file, undecodable bytes, zero-length
        audio, non-finite samples or too long; the message names the file.
    """
    blocks = list(iter_audio(source, sample_rate=sample_rate, name=name,
                             max_duration_s=max_duration_s))
    if not blocks:
        raise AudioError(f"{_label(source, name)}: audio has zero length (no samples)")
    return blocks[0] if len(blocks) == 1 else np.concatenate(blocks)


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
