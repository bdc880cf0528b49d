"""What the Predict and Filters pages need: the models to choose from, cached checkpoints,
an upload's or a local file's bytes within the limits, and a decoded signal to play back.
The prediction itself is the core's (:func:`tfcnn.assessment.classify`, through
:func:`tfcnn.ui.assessment.classify`)."""

from __future__ import annotations

import io
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf
import streamlit as st

from tfcnn import inference, paths
from tfcnn.checkpoint import Checkpoint, load_checkpoint
from tfcnn.config import FRONT_END
from tfcnn.errors import AudioError
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


def uploaded_log_mels(files: list[tuple[bytes, str]], checkpoint: Checkpoint
                      ) -> tuple[list[np.ndarray], list[str]]:
    """Log-mel and name of each uploaded ``(bytes, name)`` file, decoded with this page's
    limits (:data:`MAX_UPLOAD_MB`, :data:`MAX_DURATION_S`) and checked as ``predict``
    checks a song; a bad file raises one TfcnnError naming it."""
    specs, names = [], []
    for data, name in files:
        data, name = read_audio_source(data, name=name)
        specs.append(inference.predict(data, checkpoint, name=name,
                                       max_duration_s=MAX_DURATION_S).log_mel)
        names.append(name)
    return specs, names


def wav_bytes(y: np.ndarray, *, sample_rate: int = FRONT_END.sample_rate) -> bytes:
    """A mono signal as 16-bit WAV bytes (for ``st.audio`` of a decoded track)."""
    buffer = io.BytesIO()
    sf.write(buffer, np.clip(y, -1.0, 1.0), sample_rate, format="WAV", subtype="PCM_16")
    return buffer.getvalue()
