"""Inference: audio (or a log-mel) + checkpoint → per-patch probabilities → song vote.

The stages are the training ones (Pons et al. 2016, §2): mono 44.1 kHz → log-mel (40 × T)
→ ``(x - mean) / std`` with the checkpoint's scalar statistics → non-overlapping 80-frame
patches → model → softmax → majority vote. Training evaluates its test songs through
:func:`song_probabilities` too, so a fold's reported accuracy and ``predict`` with that
fold's checkpoint agree.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from tfcnn.audio import iter_audio, require_sound
from tfcnn.checkpoint import Checkpoint, as_checkpoint
from tfcnn.errors import AudioError, CheckpointError, ConfigError
from tfcnn.evaluate import song_vote
from tfcnn.features import log_mel_stream, model_input
from tfcnn.locations import checkpoints_dir
from tfcnn.models import ARCHITECTURES
from tfcnn.paths import display
from tfcnn.threads import per_request

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
        Softmax output per patch (80 frames in the paper).
    probabilities : np.ndarray, shape (n_classes,)
        Mean of ``patch_probs`` over patches.
    prediction : str
        Class name chosen by the song vote (:func:`tfcnn.evaluate.song_vote`).
    log_mel : np.ndarray, shape (n_mels, T)
        The (not normalised) log-mel spectrogram.
    patch_seconds : float
        Duration of one patch (≈ 1.86 s for the paper's input; a beat-synchronous patch's
        at the song's estimated tempo).
    index : int
        Index of ``prediction`` in ``classes``.
    model : dict
        What the model was trained on (:attr:`tfcnn.checkpoint.Checkpoint.provenance`).
    signal : np.ndarray, shape (n_samples,), or None
        The decoded mono signal at the front end's rate, when :func:`predict` was asked to
        keep it (to play it back).
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
    signal: np.ndarray | None = None

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


def _check_batch_size(batch_size) -> None:
    if (isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer))
            or batch_size < 1):
        raise ConfigError(f"batch_size must be a positive integer, got {batch_size!r}")


@torch.no_grad()
def _probabilities(model: torch.nn.Module, batches, *, device=None) -> np.ndarray:
    """Softmax output of ``model`` (eval mode) for batches of shape (b, 1, n_mels, frames).

    Returns
    -------
    np.ndarray, shape (sum of b, n_classes), float32
    """
    if device is not None:
        model.to(device)
    target = _model_device(model)
    n_classes = model.output.out_features
    was_training = model.training
    model.eval()
    try:
        out = [np.zeros((0, n_classes), dtype=np.float32)]
        for batch in batches:
            batch = torch.as_tensor(batch).to(target, torch.float32)  # (b, 1, n_mels, frames)
            logits = model(batch)                                      # (b, n_classes)
            out.append(torch.softmax(logits.float(), dim=1).cpu().numpy())
    finally:
        model.train(was_training)
    return np.concatenate(out)


def _as_checkpoint(checkpoint, device) -> Checkpoint:
    """A loaded checkpoint; None means the shipped default."""
    return as_checkpoint(default_checkpoint() if checkpoint is None else checkpoint,
                         device=device)


def _label(source, name: str | None) -> str | None:
    if name is not None:
        return str(name)
    if isinstance(source, (str, os.PathLike)):
        return display(source)
    return getattr(source, "name", None)


def song_probabilities(model: torch.nn.Module, specs, *, mean: float, std: float,
                       patch_frames: int, batch_size: int = BATCH_SIZE,
                       device=None) -> list[np.ndarray]:
    """Log-mel → normalised patches → per-patch probabilities, for each of several songs.

    The one path from a spectrogram to the model's output: training's test pass,
    :func:`predict`, the app and the tempo probes all go through it. Patches reach the
    model one batch at a time, each normalised from a view of its song's spectrogram, so
    memory beyond the spectrograms stays one batch whatever the songs' lengths (the same
    numbers as normalising the whole spectrogram, cutting it into patches and running them
    through the model at once).

    Parameters
    ----------
    model : torch.nn.Module
    specs : sequence of np.ndarray, each (n_mels, T_i)
        Log-mel spectrograms (not normalised).
    mean, std : float, keyword-only
        The model's normalisation.
    patch_frames : int, keyword-only
    batch_size : int, keyword-only
        Patches per forward pass (patches of several songs share a batch).
    device : str or torch.device, optional, keyword-only
        Where to compute; the model is moved there. Default: where the model already is.
        The model runs in eval mode; its train/eval mode is restored afterwards.

    Returns
    -------
    list of np.ndarray, each (n_patches_i, n_classes), float32
        In the order of ``specs``; a song shorter than one patch gets 0 rows.
    """
    _check_batch_size(batch_size)
    if (isinstance(patch_frames, bool) or not isinstance(patch_frames, (int, np.integer))
            or patch_frames <= 0):
        raise ConfigError(f"patch_frames must be a positive integer, got {patch_frames!r}")
    specs = [np.asarray(s, dtype=np.float32) for s in specs]  # no copy when float32 already
    if not specs:
        return []
    for spec in specs:
        if spec.ndim != 2:
            raise ConfigError(
                f"song_probabilities expects spectrograms (n_mels, T), got shape {spec.shape}"
            )
    counts = [spec.shape[1] // patch_frames for spec in specs]
    batches = _patch_batches(specs, counts, mean=np.float32(mean), std=np.float32(std),
                             patch_frames=patch_frames, batch_size=batch_size)
    probs = _probabilities(model, batches, device=device)  # (sum n_i, n_classes)
    return np.split(probs, np.cumsum(counts)[:-1])


def _patch_batches(specs: list[np.ndarray], counts: list[int], *, mean: np.float32,
                   std: np.float32, patch_frames: int, batch_size: int):
    """Batches of normalised patches of consecutive songs, each ``(b, 1, n_mels, frames)``.

    Each piece is a view of a song's frames ``(n_mels, k * frames)`` reshaped to
    ``(n_mels, k, frames)``; only the normalised batch is a new array.
    """
    pieces, filled = [], 0
    for spec, n in zip(specs, counts):
        start = 0
        while start < n:
            k = min(batch_size - filled, n - start)
            view = spec[:, start * patch_frames:(start + k) * patch_frames]
            view = view.reshape(spec.shape[0], k, patch_frames)  # (n_mels, k, frames), a view
            pieces.append(view.transpose(1, 0, 2))                # (k, n_mels, frames)
            filled += k
            start += k
            if filled == batch_size:
                yield _normalised(pieces, mean, std)
                pieces, filled = [], 0
    if pieces:
        yield _normalised(pieces, mean, std)


def _normalised(pieces: list[np.ndarray], mean: np.float32, std: np.float32) -> np.ndarray:
    """``(x - mean) / std`` of the joined pieces, shape ``(b, 1, n_mels, frames)``, float32."""
    batch = np.concatenate(pieces) if len(pieces) > 1 else np.array(pieces[0])  # (b, ...)
    batch -= mean
    batch /= std
    return batch[:, None]


@per_request
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
    if spec.shape[1] < fe.patch_frames:
        raise AudioError(
            f"{label}: audio is too short ({spec.shape[1]} frames); a prediction needs at "
            f"least {fe.min_patch_samples / fe.sample_rate:.2f} s (one patch of "
            f"{fe.patch_frames} frames)"
        )
    # the frames the model was trained on: the log-mel, or beat-synchronous (as in training)
    frames = model_input(spec, front_end=fe)  # frames (n_mels, T')
    if frames.frames.shape[1] < fe.patch_frames:
        raise AudioError(
            f"{label}: audio is too short for this model's beat-synchronous input: "
            f"{frames.frames.shape[1] / fe.frames_per_beat:.1f} beats at the estimated "
            f"{frames.bpm:.0f} BPM, and a patch holds {fe.patch_frames / fe.frames_per_beat:g} "
            f"beats ({fe.patch_frames} frames of {fe.frames_per_beat} per beat)"
        )
    probs, = song_probabilities(ckpt.model, [frames.frames], mean=ckpt.norm_mean,
                                std=ckpt.norm_std, patch_frames=fe.patch_frames,
                                device=device)  # (n, n_classes)
    vote = song_vote(probs)
    return Prediction(
        path=name, classes=tuple(ckpt.classes), patch_probs=probs,
        probabilities=probs.mean(axis=0), prediction=ckpt.classes[vote], log_mel=spec,
        patch_seconds=fe.patch_frames * frames.frame_seconds, index=vote,
        model=ckpt.provenance,
    )


@per_request
def predict(source, checkpoint=None, *, name: str | None = None, device="cpu",
            max_duration_s: float | None = None, keep_signal: bool = False) -> Prediction:
    """Predict the class of one song: decode, check, log-mel, patches, model, vote.

    Parameters
    ----------
    source : str, Path, bytes or binary file-like
        Audio file or its content (any format :func:`tfcnn.audio.load_audio` reads).
    checkpoint : Checkpoint, str or Path, optional
        A loaded checkpoint or its file; default: the shipped ``timefreq`` model.
    name : str, optional, keyword-only
        Name used in messages and ``Prediction.path`` (default: the path).
    device : str or torch.device, keyword-only
    max_duration_s : float, optional, keyword-only
        Refuse longer audio (by its header before decoding, then by what is decoded).
    keep_signal : bool, keyword-only
        Keep the decoded signal in ``Prediction.signal``.

    Returns
    -------
    Prediction

    Raises
    ------
    AudioError
        Unreadable or empty audio, longer than ``max_duration_s``, too short for one patch
        (< 1.81 s) or silent.
    CheckpointError
        Missing or broken checkpoint.
    """
    ckpt = _as_checkpoint(checkpoint, device)
    fe = ckpt.front_end
    label = _label(source, name)
    peak = np.zeros(1, dtype=np.float32)  # the loudest sample seen so far
    kept: list[np.ndarray] = []

    def measured(blocks):
        for block in blocks:
            peak[0] = max(peak[0], np.max(np.abs(block)))
            if keep_signal:
                kept.append(block)
            yield block

    # Decoded and transformed block by block: memory stays bounded for hours of audio
    # (unless the signal is kept).
    blocks = measured(iter_audio(source, sample_rate=fe.sample_rate, name=label,
                                 max_duration_s=max_duration_s))
    spec = log_mel_stream(blocks, front_end=fe, device=device)  # (n_mels, T)
    if spec.shape[1] >= fe.patch_frames:  # a too-short file is named as such below
        require_sound(peak, name=label)
    prediction = predict_features(spec, ckpt, name=label, device=device)
    if keep_signal:
        prediction.signal = np.concatenate(kept) if kept else np.zeros(0, np.float32)
    return prediction


def default_checkpoint(arch: str = DEFAULT_ARCH) -> Path:
    """The shipped model of ``arch``, trained on the default SynthBallroom (synthetic data),
    in :func:`tfcnn.locations.checkpoints_dir`.

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
    path = checkpoints_dir() / f"synth-{arch}.safetensors"
    if not path.is_file():
        raise CheckpointError(
            f"{path}: no shipped {arch} checkpoint; create it with `make checkpoints` "
            "or pass --checkpoint PATH"
        )
    return path
