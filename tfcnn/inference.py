"""Inference: audio (or a log-mel) + checkpoint → per-patch probabilities → song vote.

The stages are the training ones (Pons et al. 2016, §2): mono 44.1 kHz → log-mel (40 × T)
→ ``(x - mean) / std`` with the checkpoint's scalar statistics → non-overlapping 80-frame
patches → model → softmax → majority vote. Training evaluates its test songs through
:func:`patch_probabilities` too, so a fold's reported accuracy and ``predict`` with that
fold's checkpoint agree.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from tfcnn.audio import iter_audio, require_sound
from tfcnn.checkpoint import Checkpoint, load_checkpoint
from tfcnn.errors import AudioError, CheckpointError, ConfigError
from tfcnn.evaluate import song_vote
from tfcnn.features import log_mel_stream, to_patches
from tfcnn.models import ARCHITECTURES
from tfcnn.paths import display

#: Where the shipped models live: ``<repo>/checkpoints/synth-<arch>.safetensors``.
CHECKPOINT_DIR = Path(__file__).resolve().parent.parent / "checkpoints"
DEFAULT_ARCH = "timefreq"
#: Patches per forward pass; large enough for speed, small enough for any GPU/CPU memory.
BATCH_SIZE = 256


@dataclass
class Prediction:
    """What the model thinks of one song.

    Attributes
    ----------
    path : str or None
        The file (or name) predicted.
    classes : tuple of str
        Class names in output order.
    patch_probs : np.ndarray, shape (n_patches, n_classes)
        Softmax output per 80-frame patch.
    probabilities : np.ndarray, shape (n_classes,)
        Mean of ``patch_probs`` over patches.
    prediction : str
        Class name chosen by the song vote (:func:`tfcnn.evaluate.song_vote`).
    log_mel : np.ndarray, shape (n_mels, T)
        The (not normalised) log-mel spectrogram.
    patch_seconds : float
        Duration of one patch (≈ 1.86 s).
    index : int
        Index of ``prediction`` in ``classes``.
    model : dict
        What the model was trained on (:attr:`tfcnn.checkpoint.Checkpoint.provenance`).
    """

    path: str | None
    classes: tuple[str, ...]
    patch_probs: np.ndarray
    probabilities: np.ndarray
    prediction: str
    log_mel: np.ndarray
    patch_seconds: float
    index: int = -1
    model: dict = field(default_factory=dict)

    @property
    def n_patches(self) -> int:
        return int(self.patch_probs.shape[0])

    def to_dict(self) -> dict:
        """The CLI's JSON object: path, prediction, probabilities per class, patches, and
        ``model``: what the model was trained on."""
        return {
            "path": self.path,
            "prediction": self.prediction,
            "probabilities": {c: float(p) for c, p in zip(self.classes, self.probabilities)},
            "patches": self.n_patches,
            "model": dict(self.model),
        }


def _model_device(model: torch.nn.Module) -> torch.device:
    return next(model.parameters()).device


@torch.no_grad()
def patch_probabilities(model: torch.nn.Module, patches, *, batch_size: int = BATCH_SIZE,
                        device=None) -> np.ndarray:
    """Softmax output of ``model`` for normalised patches, in batches, in eval mode.

    Parameters
    ----------
    model : torch.nn.Module
        A :mod:`tfcnn.models` model (its train/eval mode is restored afterwards).
    patches : np.ndarray or torch.Tensor, shape (n, n_mels, frames) or (n, 1, n_mels, frames)
        Normalised log-mel patches.
    batch_size : int, keyword-only
        Patches per forward pass.
    device : str or torch.device, optional, keyword-only
        Where to compute; the model is moved there. Default: where the model already is.

    Returns
    -------
    np.ndarray, shape (n, n_classes), float32
        Rows sum to 1.
    """
    if (isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer))
            or batch_size < 1):
        raise ConfigError(f"batch_size must be a positive integer, got {batch_size!r}")
    if device is not None:
        model.to(device)
    target = _model_device(model)
    x = torch.as_tensor(patches)
    if x.ndim == 3:
        x = x.unsqueeze(1)  # (n, n_mels, frames) -> (n, 1, n_mels, frames)
    if x.ndim != 4 or x.shape[1] != 1:
        raise ConfigError(
            f"patches must have shape (n, n_mels, frames) or (n, 1, n_mels, frames), "
            f"got {tuple(x.shape)}"
        )
    n_classes = model.output.out_features
    if x.shape[0] == 0:
        return np.zeros((0, n_classes), dtype=np.float32)
    was_training = model.training
    model.eval()
    try:
        out = []
        for start in range(0, x.shape[0], batch_size):
            batch = x[start:start + batch_size].to(target, torch.float32)  # (b, 1, n_mels, frames)
            logits = model(batch)                                            # (b, n_classes)
            out.append(torch.softmax(logits.float(), dim=1).cpu())
    finally:
        model.train(was_training)
    return torch.cat(out).numpy()


def _as_checkpoint(checkpoint, device) -> Checkpoint:
    if isinstance(checkpoint, Checkpoint):
        return checkpoint
    if checkpoint is None:
        checkpoint = default_checkpoint()
    return load_checkpoint(checkpoint, device=device)


def _label(source, name: str | None) -> str | None:
    if name is not None:
        return str(name)
    if isinstance(source, (str, os.PathLike)):
        return display(source)
    return getattr(source, "name", None)


def predict_features(spec: np.ndarray, checkpoint, *, name: str | None = None,
                     device="cpu") -> Prediction:
    """Predict a song from its log-mel spectrogram (not normalised).

    Parameters
    ----------
    spec : np.ndarray, shape (n_mels, T)
        Log-mel from :func:`tfcnn.features.log_mel` with the checkpoint's front end.
    checkpoint : Checkpoint, str or Path
        A loaded checkpoint or its file (None: the shipped default).
    name : str, optional, keyword-only
        Name of the song (for messages and ``Prediction.path``).
    device : str or torch.device, keyword-only

    Returns
    -------
    Prediction
    """
    ckpt = _as_checkpoint(checkpoint, device)
    fe = ckpt.front_end
    label = name or "audio"
    spec = np.asarray(spec, dtype=np.float32)
    if spec.ndim != 2 or spec.shape[0] != fe.n_mels:
        raise AudioError(
            f"{label}: expected a log-mel of shape ({fe.n_mels}, T), got {spec.shape}"
        )
    want = (ckpt.arch_params.get("n_mels", fe.n_mels),
            ckpt.arch_params.get("patch_frames", fe.patch_frames))
    if want != (fe.n_mels, fe.patch_frames):
        raise CheckpointError(
            f"checkpoint {ckpt.path}: model input {want} differs from its front end "
            f"({fe.n_mels} bands, {fe.patch_frames} frames)"
        )
    x = (spec - np.float32(ckpt.norm_mean)) / np.float32(ckpt.norm_std)     # (n_mels, T)
    patches = to_patches(x, patch_frames=fe.patch_frames)                    # (n, n_mels, frames)
    if patches.shape[0] == 0:
        raise AudioError(
            f"{label}: audio is too short ({spec.shape[1]} frames); a prediction needs at "
            f"least {fe.min_patch_samples / fe.sample_rate:.2f} s (one patch of "
            f"{fe.patch_frames} frames)"
        )
    probs = patch_probabilities(ckpt.model, patches, device=device)          # (n, n_classes)
    vote = song_vote(probs)
    return Prediction(
        path=name, classes=tuple(ckpt.classes), patch_probs=probs,
        probabilities=probs.mean(axis=0), prediction=ckpt.classes[vote], log_mel=spec,
        patch_seconds=fe.patch_seconds, index=vote, model=ckpt.provenance,
    )


def predict(source, checkpoint=None, *, name: str | None = None, device="cpu") -> Prediction:
    """Predict the class of one song.

    Parameters
    ----------
    source : str, Path, bytes or binary file-like
        Audio file or its content (any format :func:`tfcnn.audio.load_audio` reads).
    checkpoint : Checkpoint, str or Path, optional
        A loaded checkpoint or its file; default: the shipped ``timefreq`` model.
    name : str, optional, keyword-only
        Name used in messages and ``Prediction.path`` (default: the path).
    device : str or torch.device, keyword-only

    Returns
    -------
    Prediction

    Raises
    ------
    AudioError
        Unreadable audio, too short for one patch (< 1.81 s) or silent.
    CheckpointError
        Missing or broken checkpoint.
    """
    ckpt = _as_checkpoint(checkpoint, device)
    fe = ckpt.front_end
    label = _label(source, name)
    peak = np.zeros(1, dtype=np.float32)  # the loudest sample seen so far

    def measured(blocks):
        for block in blocks:
            peak[0] = max(peak[0], np.max(np.abs(block)))
            yield block

    # Decoded and transformed block by block: memory stays bounded for hours of audio.
    blocks = measured(iter_audio(source, sample_rate=fe.sample_rate, name=label))
    spec = log_mel_stream(blocks, front_end=fe, device=device)  # (n_mels, T)
    if spec.shape[1] >= fe.patch_frames:  # a too-short file is named as such below
        require_sound(peak, name=label)
    return predict_features(spec, ckpt, name=label, device=device)


def default_checkpoint(arch: str = DEFAULT_ARCH) -> Path:
    """The shipped model of ``arch``, trained on the default SynthBallroom (synthetic data).

    Raises
    ------
    ConfigError
        Unknown architecture.
    CheckpointError
        The file is not there (create it with ``make checkpoints``).
    """
    if arch not in ARCHITECTURES:
        raise ConfigError(
            f"unknown architecture {arch!r}; valid architectures: {', '.join(ARCHITECTURES)}"
        )
    path = CHECKPOINT_DIR / f"synth-{arch}.safetensors"
    if not path.is_file():
        raise CheckpointError(
            f"{path}: no shipped {arch} checkpoint; create it with `make checkpoints` "
            "or pass --checkpoint PATH"
        )
    return path
