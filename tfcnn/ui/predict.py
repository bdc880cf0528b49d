"""What the Predict and Filters pages need: the models to choose from, cached checkpoints,
checks of an uploaded file, and one prediction of it."""

from __future__ import annotations

import io
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf
import streamlit as st

from tfcnn import paths
from tfcnn.audio import load_audio, require_patch, require_sound
from tfcnn.checkpoint import Checkpoint, load_checkpoint
from tfcnn.config import FRONT_END, FrontEnd
from tfcnn.errors import AudioError
from tfcnn.features import log_mel
from tfcnn.inference import Prediction, predict_features
from tfcnn.locations import checkpoints_dir, runs_root
from tfcnn.runs import FOLD_MODEL_FILE, fold_dir, list_runs
from tfcnn.ui.sidebar import allowed_roots

#: Upload limits stated in the Predict page (server.maxUploadSize in .streamlit/config.toml).
MAX_UPLOAD_MB = 20
MAX_DURATION_S = 600.0

AUDIO_TYPES: tuple[str, ...] = ("wav", "flac", "ogg", "mp3", "opus")


@dataclass(frozen=True)
class CheckpointChoice:
    """A model the Predict page can use."""

    label: str
    path: Path


def list_checkpoints() -> list[CheckpointChoice]:
    """Shipped models first (``checkpoints/*.safetensors``), then every run fold's model."""
    choices = [CheckpointChoice(f"shipped: {p.stem}", p)
               for p in sorted(checkpoints_dir().glob("*.safetensors"))]
    # The default model (timefreq, the paper's proposal) first when shipped.
    choices.sort(key=lambda c: (not c.path.stem.endswith("-timefreq"), c.label))
    for run in list_runs(runs_root()):
        for fold in run.complete:
            path = fold_dir(run.path, fold) / FOLD_MODEL_FILE
            if path.is_file():
                choices.append(CheckpointChoice(f"run {run.name} ({run.arch}) fold {fold}",
                                                path))
    return choices


@st.cache_resource(show_spinner="Loading the model…", max_entries=8)
def _cached_checkpoint(path: str, stamp: float) -> Checkpoint:
    return load_checkpoint(path)


def load_checkpoint_cached(path: str | os.PathLike) -> Checkpoint:
    """:func:`tfcnn.checkpoint.load_checkpoint`, cached per file version (model in eval mode)."""
    path = Path(path)
    try:
        stamp = path.stat().st_mtime
    except OSError:
        stamp = 0.0  # let load_checkpoint raise its CheckpointError
    return _cached_checkpoint(str(path), stamp)


def read_audio_source(source: str | os.PathLike | bytes, *, name: str | None = None
                      ) -> tuple[bytes, str]:
    """The bytes and display name of an upload or a file on this machine.

    A path must name a regular file inside :func:`tfcnn.ui.sidebar.allowed_roots`; every
    other path raises :class:`tfcnn.errors.AccessError` with one message that reveals nothing
    about it. A file over the size limit raises :class:`AudioError`.
    """
    limit = MAX_UPLOAD_MB * 1024 * 1024
    if isinstance(source, (bytes, bytearray)):
        data, label = bytes(source), name or "upload"
    else:
        data = paths.read_confined_file(source, allowed_roots(), max_bytes=limit)
        label = name or paths.display(source)
    if len(data) > limit:
        raise AudioError(f"{label}: file is {len(data) / 2**20:.1f} MB; the limit is "
                         f"{MAX_UPLOAD_MB} MB")
    return data, label


def check_audio(y: np.ndarray, *, name: str, front_end: FrontEnd = FRONT_END) -> None:
    """Reject a signal the Predict page cannot use: too long, silent or shorter than a patch.

    Parameters
    ----------
    y : np.ndarray, shape (n_samples,), mono at ``front_end.sample_rate``.
    name : file name for the message.
    """
    seconds = y.shape[0] / front_end.sample_rate
    if seconds > MAX_DURATION_S:
        raise AudioError(f"{name}: audio is {seconds / 60:.1f} min long; the limit is "
                         f"{MAX_DURATION_S / 60:.0f} min")
    require_patch(y, front_end=front_end, name=name)
    require_sound(y, name=name)


def predict_bytes(data: bytes, *, name: str, checkpoint_path: str | os.PathLike
                  ) -> tuple[Prediction, np.ndarray]:
    """Decode, check and classify an audio file given as bytes.

    Returns
    -------
    (prediction, signal) : (tfcnn.inference.Prediction, np.ndarray (n_samples,))
        The prediction and the mono 44.1 kHz signal it was computed from.

    Raises
    ------
    AudioError, CheckpointError
        With a message that names the file and the problem (shown by the page as st.error).
    """
    if len(data) == 0:
        raise AudioError(f"{name}: file is empty (0 bytes)")
    checkpoint = load_checkpoint_cached(checkpoint_path)
    fe = checkpoint.front_end
    # The header's duration is checked before decoding (a small file may hold hours).
    y = load_audio(data, sample_rate=fe.sample_rate, name=name,
                   max_duration_s=MAX_DURATION_S)  # (n_samples,) mono
    check_audio(y, name=name, front_end=fe)
    # The stages of tfcnn.inference.predict, with the decoded signal kept for the checks
    # above and the audio player.
    spec = log_mel(y, fe.sample_rate, front_end=fe)  # (n_mels, T)
    return predict_features(spec, checkpoint, name=name), y


def wav_bytes(y: np.ndarray, *, sample_rate: int = FRONT_END.sample_rate) -> bytes:
    """A mono signal as 16-bit WAV bytes (for ``st.audio`` of a decoded track)."""
    buffer = io.BytesIO()
    sf.write(buffer, np.clip(y, -1.0, 1.0), sample_rate, format="WAV", subtype="PCM_16")
    return buffer.getvalue()
