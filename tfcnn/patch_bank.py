"""All tracks' patches in one device tensor, and each fold's normalised training data.

Normalisation (paper §2): one scalar mean and std over the log-mel values, not attribute-wise,
so the relations between bins and frames stay intact; over the fold's training songs
(``clean`` protocol) or the whole data set (``paper``, as the original code).
"""

from __future__ import annotations

import math

import numpy as np
import torch

from tfcnn.config import FRONT_END
from tfcnn.errors import DatasetError, RunError
from tfcnn.features import to_patches
from tfcnn.fold_training import FoldData
from tfcnn.folds import Fold, paper_validation_split


class PatchBank:
    """All tracks' patches in one device tensor, un-normalised (normalised per fold).

    Parameters
    ----------
    specs : list of np.ndarray, each (n_mels, T_i)
        Log-mel spectrograms, one per track.
    track_ids : list of str
        For messages.
    patch_frames : int
    device : torch.device
    frames_per_beat : int, optional
        Set when ``specs`` are beat-synchronous (:func:`tfcnn.features.model_input`): a
        track too short for one patch is then named in beats.

    Attributes
    ----------
    x : torch.Tensor, shape (n_patches, n_mels, patch_frames), float32, on the device
    track : np.ndarray, shape (n_patches,)
        Track index of each patch.
    counts : np.ndarray, shape (n_tracks,)
        Patches per track.
    """

    def __init__(self, specs: list[np.ndarray], track_ids: list[str], *, patch_frames: int,
                 device: torch.device, frames_per_beat: int | None = None):
        patches = [to_patches(np.asarray(s, dtype=np.float32), patch_frames=patch_frames)
                   for s in specs]  # each (n_i, n_mels, patch_frames)
        self.counts = np.array([p.shape[0] for p in patches], dtype=np.int64)
        short = [track_ids[i] for i in np.flatnonzero(self.counts == 0)]
        if short:
            patch = (f"{patch_frames / frames_per_beat:g} beats = {patch_frames} frames of "
                     f"{frames_per_beat} per beat" if frames_per_beat else
                     f"{patch_frames * FRONT_END.hop_length / FRONT_END.sample_rate:.2f} s "
                     f"= {patch_frames} frames")
            raise DatasetError(
                f"{len(short)} track(s) shorter than one patch ({patch}): "
                f"{', '.join(short[:5])}" + (" ..." if len(short) > 5 else "")
            )
        self.offsets = np.concatenate([[0], np.cumsum(self.counts)[:-1]])
        self.track = np.repeat(np.arange(len(specs)), self.counts)  # (n_patches,)
        self.x = torch.from_numpy(np.concatenate(patches, axis=0)).to(device)
        # Statistics over the full spectrograms (every frame, not only the patched ones).
        self.sums = np.array([float(np.sum(s, dtype=np.float64)) for s in specs])
        self.sumsq = np.array([float(np.sum(np.square(s, dtype=np.float64))) for s in specs])
        self.sizes = np.array([s.size for s in specs], dtype=np.float64)

    def norm(self, tracks: np.ndarray) -> tuple[float, float]:
        """One scalar mean and std over the log-mel values of ``tracks``."""
        n = self.sizes[tracks].sum()
        mean = self.sums[tracks].sum() / n
        var = max(self.sumsq[tracks].sum() / n - mean * mean, 0.0)
        std = math.sqrt(var)
        return float(mean), float(std if std > 0 else 1.0)

    def patch_index(self, tracks: np.ndarray) -> np.ndarray:
        """Indices of the patches of ``tracks``, track by track in the given order, shape (n,)."""
        if len(tracks) == 0:
            return np.empty(0, dtype=np.int64)
        return np.concatenate([np.arange(self.offsets[t], self.offsets[t] + self.counts[t])
                               for t in tracks]).astype(np.int64)

    def take(self, index: np.ndarray, mean: float, std: float) -> torch.Tensor:
        """Normalised patches ``(len(index), 1, n_mels, patch_frames)`` on the device."""
        idx = torch.as_tensor(index, dtype=torch.long).to(self.x.device)
        return ((self.x.index_select(0, idx) - mean) / std).unsqueeze(1)

    def labels(self, index: np.ndarray, labels: np.ndarray) -> torch.Tensor:
        """The track labels of patches ``index``, shape (len(index),), int64 on the device."""
        return torch.as_tensor(labels[self.track[index]], dtype=torch.long).to(self.x.device)


def fold_data(bank: PatchBank, fold: Fold, labels: np.ndarray, *, protocol: str, seed: int
              ) -> tuple[FoldData, float, float]:
    """A fold's normalised train/val tensors and its normalisation ``(mean, std)``.

    ``paper`` protocol: statistics over the whole data set and a random 1/9 of the training
    patches for validation (the original code); ``clean``: statistics over the fold's
    training songs and its validation songs' patches.
    """
    if protocol == "paper":
        mean, std = bank.norm(np.arange(len(bank.counts)))
        train_all = bank.patch_index(fold.train)
        tr, va = paper_validation_split(int(train_all.size), seed)
        train_idx, val_idx = train_all[tr], train_all[va]
    else:
        mean, std = bank.norm(fold.train)
        train_idx, val_idx = bank.patch_index(fold.train), bank.patch_index(fold.val)
    if train_idx.size == 0:
        raise RunError(f"fold {fold.index}: its training songs give no patches")
    data = FoldData(
        fold=fold.index,
        train_x=bank.take(train_idx, mean, std),
        train_y=bank.labels(train_idx, labels),
        val_x=bank.take(val_idx, mean, std),
        val_y=bank.labels(val_idx, labels),
        seed=seed,
    )
    return data, mean, std
