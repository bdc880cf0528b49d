"""Probes: click tracks, 4/4 drum loops and 3/4 waltz loops at every tempo through a model.

Each probe goes through the checkpoint's own front end, normalisation and 80-frame patches.
Two things are read out: each temporal filter's pooled activation per probe tempo (its tuning
curve) and the class the model predicts per tempo (the tempo → class map). A filter is *tuned*
when its tuning curve peaks inside its own tempo interval or at half or double of it
(:func:`tuned_filters`).
"""

from __future__ import annotations

import functools
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from tfcnn.checkpoint import load_checkpoint
from tfcnn.config import FRONT_END, FrontEnd
from tfcnn.errors import CheckpointError, ConfigError, DatasetError
from tfcnn.evaluate import song_vote
from tfcnn.features import log_mel_module, to_patches
from tfcnn.models import temporal_filters
from tfcnn.synth import render_click_track, render_drum_loop, render_waltz_loop

#: Probe tempi (BPM) and duration (s): 8 s gives four 80-frame patches per probe.
PROBE_BPMS: tuple[float, ...] = tuple(float(b) for b in range(60, 225, 2))
PROBE_SECONDS: float = 8.0
#: Probe kinds: name → (renderer, beats per bar). Clicks and drums are 4/4, the waltz 3/4.
PROBE_RENDERERS = {
    "click": (lambda bpm, seconds, sr: render_click_track(bpm=bpm, seconds=seconds,
                                                          sample_rate=sr), 4),
    "drums": (lambda bpm, seconds, sr: render_drum_loop(bpm=bpm, seconds=seconds,
                                                        sample_rate=sr), 4),
    "waltz": (lambda bpm, seconds, sr: render_waltz_loop(bpm=bpm, seconds=seconds,
                                                         sample_rate=sr), 3),
}
PROBE_KINDS: tuple[str, ...] = tuple(PROBE_RENDERERS)
#: Probes rendered and transformed together (bounds memory: ~30 MB of STFT per probe).
PROBE_BATCH: int = 8
#: A filter is tuned when its probe response peaks at its tempo interval times one of these.
TUNING_FACTORS: tuple[float, ...] = (0.5, 1.0, 2.0)


def as_checkpoint(checkpoint):
    """A loaded :class:`tfcnn.checkpoint.Checkpoint` from a path or a loaded one."""
    if isinstance(checkpoint, (str, os.PathLike)):
        return load_checkpoint(Path(checkpoint))
    if not hasattr(checkpoint, "model"):
        raise CheckpointError(
            f"expected a checkpoint path or a loaded Checkpoint, got {type(checkpoint).__name__}"
        )
    return checkpoint


def render_probe(kind: str, *, bpm: float, seconds: float, sample_rate: int) -> np.ndarray:
    """One probe signal, (n_samples,) float32; an unknown kind raises ConfigError."""
    try:
        renderer, _ = PROBE_RENDERERS[kind]
    except KeyError:
        raise ConfigError(
            f"unknown probe kind {kind!r}; valid kinds: {', '.join(PROBE_RENDERERS)}"
        ) from None
    return renderer(bpm, seconds, sample_rate)


@functools.lru_cache(maxsize=64)
def probe_patches(kind: str, bpms: tuple[float, ...], seconds: float,
                  front_end: FrontEnd) -> np.ndarray:
    """Log-mel patches of every probe, not normalised: (n_bpm, n_patches, n_mels, frames).

    Cached: the probes depend on the front end only, not on the checkpoint.
    """
    module = log_mel_module(front_end)  # the front end of training and predict, batched
    out = []
    for start in range(0, len(bpms), PROBE_BATCH):
        y = np.stack([render_probe(kind, bpm=bpm, seconds=seconds,
                                   sample_rate=front_end.sample_rate)
                      for bpm in bpms[start:start + PROBE_BATCH]])     # (batch, n_samples)
        with torch.inference_mode():
            specs = module(torch.from_numpy(y.astype(np.float32))).numpy()  # (batch, mels, T)
        out.extend(to_patches(spec, patch_frames=front_end.patch_frames) for spec in specs)
    n = min(len(p) for p in out)
    if n == 0:
        raise ConfigError(f"probes of {seconds} s are shorter than one patch "
                          f"({front_end.patch_seconds:.2f} s)")
    patches = np.stack([p[:n] for p in out])
    patches.setflags(write=False)
    return patches


@dataclass(frozen=True)
class Probes:
    """What the model does with probes at every tempo.

    Attributes
    ----------
    bpms : np.ndarray, shape (n_bpm,)
    kinds : tuple of str
        E.g. ("click", "drums", "waltz").
    classes : tuple of str
    activations : np.ndarray, shape (n_kinds, n_filters, n_bpm) or None
        Each temporal filter's pooled activation (post-ReLU, max over bands as in the model,
        mean over time and patches); None for models without temporal filters.
    probabilities : np.ndarray, shape (n_kinds, n_bpm, n_classes)
    predicted : np.ndarray, shape (n_kinds, n_bpm), int
        Class of each probe by song vote over its patches (as ``predict``).
    """

    bpms: np.ndarray
    kinds: tuple[str, ...]
    classes: tuple[str, ...]
    activations: np.ndarray | None
    probabilities: np.ndarray
    predicted: np.ndarray

    @property
    def meters(self) -> tuple[int, ...]:
        """Beats per bar of each kind (4 or 3)."""
        return tuple(PROBE_RENDERERS[k][1] if k in PROBE_RENDERERS else 4 for k in self.kinds)

    @property
    def tuning(self) -> np.ndarray | None:
        """Tuning curves, (n_filters, n_bpm): each kind's curve scaled to its own maximum,
        then averaged over kinds (so no kind dominates by loudness)."""
        if self.activations is None:
            return None
        peak = np.maximum(self.activations.max(axis=2, keepdims=True), 1e-12)
        return (self.activations / peak).mean(axis=0)

    def tempo_class_map(self) -> pd.DataFrame:
        """Long table: ``kind``, ``meter``, ``bpm``, ``predicted`` (class), ``probability``."""
        rows = []
        for k, kind in enumerate(self.kinds):
            for b, bpm in enumerate(self.bpms):
                c = int(self.predicted[k, b])
                rows.append({"kind": kind, "meter": f"{self.meters[k]}/4", "bpm": float(bpm),
                             "predicted": self.classes[c],
                             "probability": float(self.probabilities[k, b, c])})
        return pd.DataFrame(rows)


def forward_with_time_branch(model: torch.nn.Module, x: torch.Tensor, n_filters: int | None
                             ) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Logits ``(batch, n_classes)`` and the time branch's pooled map ``(batch, n_filters, T')``.

    Read with a forward hook on the model's own time branch (conv → ReLU → max-pool over all
    bands, §1), so the measured quantity is exactly what the dense layer sees.
    """
    captured: list[torch.Tensor] = []
    branch = getattr(model, "time_branch", None)
    handle = None
    if branch is not None and n_filters:
        handle = branch.register_forward_hook(lambda _m, _i, out: captured.append(out))
    try:
        logits = model(x)
    finally:
        if handle is not None:
            handle.remove()
    if not captured:
        return logits, None
    pooled = captured[0]                                        # (batch, n_filters * T')
    return logits, pooled.reshape(pooled.shape[0], n_filters, -1)


def probe_sweep(checkpoint, *, bpms: Sequence[float] = PROBE_BPMS,
                seconds: float = PROBE_SECONDS, kinds: Sequence[str] = PROBE_KINDS,
                batch_size: int = 256) -> Probes:
    """Feed probes of every kind at every BPM through a checkpoint.

    Parameters
    ----------
    checkpoint : path or Checkpoint
    bpms : sequence of float, keyword-only
        Probe tempi (default 60, 62, ..., 224: Ballroom's range, §3).
    seconds : float, keyword-only
        Probe duration; 8 s gives four patches.
    kinds : sequence of str, keyword-only
        Keys of :data:`PROBE_RENDERERS` (``click``, ``drums``: 4/4; ``waltz``: 3/4).
    batch_size : int, keyword-only
        Patches per forward pass.

    Returns
    -------
    Probes
    """
    ckpt = as_checkpoint(checkpoint)
    bpms = tuple(float(b) for b in bpms)
    kinds = tuple(kinds)
    if not bpms or not kinds:
        raise ConfigError(f"probe_sweep needs at least one BPM and one kind, got {bpms}, {kinds}")
    if float(seconds) <= 0:
        raise ConfigError(f"probe seconds must be > 0, got {seconds!r}")
    front_end = getattr(ckpt, "front_end", None) or FRONT_END
    model = ckpt.model.eval()
    filters = temporal_filters(model)
    n_filters = None if filters is None else filters.shape[0]
    n_classes = len(ckpt.classes)

    acts = None if n_filters is None else np.zeros((len(kinds), n_filters, len(bpms)))
    probs = np.zeros((len(kinds), len(bpms), n_classes))
    predicted = np.zeros((len(kinds), len(bpms)), dtype=np.int64)
    for k, kind in enumerate(kinds):
        patches = probe_patches(kind, bpms, float(seconds), front_end)  # (n_bpm, P, mels, 80)
        n_bpm, n_patch = patches.shape[:2]
        x = patches.reshape(n_bpm * n_patch, 1, *patches.shape[2:])      # (n_bpm·P, 1, mels, 80)
        x = torch.from_numpy(((x - ckpt.norm_mean) / ckpt.norm_std).astype(np.float32))
        logits, pooled = [], []
        with torch.no_grad():
            for start in range(0, len(x), batch_size):
                lg, pl = forward_with_time_branch(model, x[start:start + batch_size], n_filters)
                logits.append(lg)
                if pl is not None:
                    pooled.append(pl.mean(dim=2))            # (batch, n_filters): mean over time
        p = torch.softmax(torch.cat(logits), dim=1).numpy().reshape(n_bpm, n_patch, n_classes)
        probs[k] = p.mean(axis=1)
        predicted[k] = [song_vote(p[b]) for b in range(n_bpm)]
        if acts is not None:
            a = torch.cat(pooled).numpy().reshape(n_bpm, n_patch, n_filters)
            acts[k] = a.mean(axis=1).T                        # (n_filters, n_bpm)
    return Probes(bpms=np.array(bpms), kinds=kinds, classes=tuple(ckpt.classes),
                  activations=acts, probabilities=probs, predicted=predicted)


def tuning_windows(interval: tuple[float, float]) -> list[tuple[float, float]]:
    """The tempo windows that count as "the filter's own period": interval × TUNING_FACTORS."""
    lo, hi = interval
    return [(f * lo, f * hi) for f in TUNING_FACTORS]


def best_probe_bpms(probes: Probes) -> np.ndarray:
    """Probe tempo of each filter's strongest response, (n_filters,)."""
    if probes.tuning is None:
        raise ConfigError("these probes have no temporal-filter activations (model without "
                          "temporal filters)")
    return probes.bpms[np.argmax(probes.tuning, axis=1)]


def tuned_filters(probes: Probes, intervals: Sequence[tuple[float, float] | None]
                  ) -> tuple[np.ndarray, np.ndarray]:
    """Which filters respond most at their own tempo, and how often a random peak would.

    Parameters
    ----------
    probes : Probes
    intervals : sequence of (low, high) or None, one per filter
        Each filter's tempo interval (None: no tempo, never tuned).

    Returns
    -------
    tuned : np.ndarray of bool, shape (n_filters,)
        The best probe tempo lies in ``interval × f`` for some f in :data:`TUNING_FACTORS`.
    chance : np.ndarray, shape (n_filters,)
        The share of probe tempi inside those windows: the probability of "tuned" for a
        filter whose response peaked at a random probe tempo.
    """
    best = best_probe_bpms(probes)
    tuned = np.zeros(len(best), dtype=bool)
    chance = np.zeros(len(best))
    for i, interval in enumerate(intervals):
        if interval is None:
            continue
        inside = np.zeros(len(probes.bpms), dtype=bool)
        for lo, hi in tuning_windows(interval):
            inside |= (probes.bpms >= lo) & (probes.bpms <= hi)
        chance[i] = float(inside.mean())
        tuned[i] = bool(inside[int(np.argmin(np.abs(probes.bpms - best[i])))])
    return tuned, chance


def probe_class_activations(probes: Probes) -> np.ndarray:
    """Mean pooled activation of each filter over the probes predicted as each class.

    Returns
    -------
    np.ndarray, shape (n_filters, n_classes); NaN for classes never predicted on the probes.
    """
    if probes.activations is None:
        raise ConfigError("these probes have no temporal-filter activations (model without "
                          "temporal filters)")
    out = np.full((probes.activations.shape[1], len(probes.classes)), np.nan)
    for c in range(len(probes.classes)):
        kind_idx, bpm_idx = np.nonzero(probes.predicted == c)
        if len(kind_idx):
            out[:, c] = probes.activations[kind_idx, :, bpm_idx].mean(axis=0)
    return out


def dataset_class_activations(checkpoint, data_dir, *, max_tracks_per_class: int = 10,
                              batch_size: int = 256) -> np.ndarray:
    """Mean pooled activation of each temporal filter over a data set's patches, per class.

    Parameters
    ----------
    checkpoint : path or Checkpoint
    data_dir : path
        Any layout :func:`tfcnn.datasets.load_dataset` reads, with the checkpoint's classes.
    max_tracks_per_class : int, keyword-only
        First tracks of each class used (keeps this to seconds).

    Returns
    -------
    np.ndarray, shape (n_filters, n_classes); NaN for classes without tracks.
    """
    from tfcnn.audio import load_audio          # data-set readers stay off the page's fast path
    from tfcnn.datasets import load_dataset
    from tfcnn.features import log_mel

    ckpt = as_checkpoint(checkpoint)
    filters = temporal_filters(ckpt.model)
    if filters is None:
        raise ConfigError(f"a {ckpt.arch} model has no temporal filters")
    dataset = load_dataset(data_dir)
    missing = sorted(set(dataset.classes) - set(ckpt.classes))
    if missing:
        raise DatasetError(f"data set {dataset.root} has classes the checkpoint does not know: "
                           f"{', '.join(missing)}")
    front_end = getattr(ckpt, "front_end", None) or FRONT_END
    model = ckpt.model.eval()
    out = np.full((filters.shape[0], len(ckpt.classes)), np.nan)
    for dance, group in dataset.tracks.groupby("dance"):
        patches = []
        for path in group["path"].head(int(max_tracks_per_class)):
            y = load_audio(path, sample_rate=front_end.sample_rate)
            spec = log_mel(y, front_end.sample_rate, front_end=front_end)
            patches.append(to_patches(spec, patch_frames=front_end.patch_frames))
        x = np.concatenate(patches)
        if not len(x):
            continue
        x = torch.from_numpy(((x[:, None] - ckpt.norm_mean) / ckpt.norm_std).astype(np.float32))
        with torch.no_grad():
            means = [forward_with_time_branch(model, x[s:s + batch_size], filters.shape[0])[1]
                     .mean(dim=2) for s in range(0, len(x), batch_size)]
        out[:, list(ckpt.classes).index(dance)] = torch.cat(means).mean(dim=0).numpy()
    return out
