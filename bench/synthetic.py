"""A Ballroom-sized synthetic feature set, so training can be benchmarked without the audio.

Ballroom (Pons et al. 2016, §2): 698 tracks of ≈30 s in 8 classes; at 44.1 kHz with hop 1024
a 30 s track gives 1292 frames of 40 mel bands, i.e. 16 patches of 80 frames. Here the values
are random (standard normal) and the labels random over 8 classes: the cost of training is
that of the real data set, the accuracy is chance.

Run with ``python -m bench synthetic`` (prints its size).
"""

from __future__ import annotations

import sys
import time

import numpy as np
import torch

from tfcnn.cache import FeatureSet
from tfcnn.config import CLASSES, FRONT_END, TrainConfig
from tfcnn.fold_training import FoldData, fold_seed
from tfcnn.folds import make_folds
from tfcnn.patch_bank import PatchBank, fold_data

#: Ballroom's size: tracks, and frames of a 30 s track (1 + 30 * 44100 // 1024).
BALLROOM_TRACKS = 698
BALLROOM_FRAMES = 1292


def ballroom_sized_features(seed: int = 0, *, n_tracks: int = BALLROOM_TRACKS,
                            n_frames: int = BALLROOM_FRAMES,
                            n_mels: int = FRONT_END.n_mels) -> FeatureSet:
    """Random log-mel "spectrograms" of Ballroom's size.

    Parameters
    ----------
    seed : int
        Seeds values and labels (deterministic).
    n_tracks, n_frames, n_mels : int, keyword-only
        Size; defaults 698 tracks × 40 bands × 1292 frames (≈ 144 MB of float32).

    Returns
    -------
    FeatureSet
        ``specs``: n_tracks arrays of shape (n_mels, n_frames), float32, standard normal;
        ``labels``: (n_tracks,) int64 in ``[0, 8)``, shuffled, balanced;
        ``track_ids``: ``"synthetic-0000"``, ...
    """
    rng = np.random.default_rng(seed)
    values = rng.standard_normal((n_tracks, n_mels, n_frames), dtype=np.float32)
    # Random but balanced (as Ballroom roughly is), so stratified folds exist for any size.
    labels = rng.permutation(np.arange(n_tracks, dtype=np.int64) % len(CLASSES))
    return FeatureSet(specs=list(values), labels=labels,
                      track_ids=[f"synthetic-{i:04d}" for i in range(n_tracks)])


def fold_datas(features: FeatureSet, *, n_folds: int = 10, seed: int = 0,
               device: torch.device | str = "cpu") -> list[FoldData]:
    """Folds as :func:`tfcnn.train.train_run` trains them (``clean`` protocol).

    Song-level stratified folds (:func:`tfcnn.folds.make_folds`), each fold's normalised
    patches from :func:`tfcnn.patch_bank.fold_data` (one scalar mean/std from its training
    songs), tensors on ``device``, seeds from :func:`tfcnn.fold_training.fold_seed`.

    Returns
    -------
    list of FoldData
        ``train_x (n_train_k, 1, n_mels, 80)`` float32, ``train_y (n_train_k,)`` int64, and
        the validation songs' patches likewise, one per fold.
    """
    device = torch.device(device)
    labels = np.asarray(features.labels, dtype=np.int64)
    bank = PatchBank(features.specs, list(features.track_ids),
                     patch_frames=FRONT_END.patch_frames, device=device)
    folds = make_folds(labels, n_folds=n_folds, seed=seed, protocol="clean")
    return [fold_data(bank, fold, labels, protocol="clean", seed=fold_seed(seed, fold.index))[0]
            for fold in folds]


def bench_config(*, epochs: int) -> TrainConfig:
    """The paper's recipe (batch 10, lr 0.01) cut to ``epochs`` epochs, for benchmarks."""
    return TrainConfig(preset="bench", max_epochs=epochs)


def main(argv: list[str] | None = None) -> int:
    t0 = time.perf_counter()
    features = ballroom_sized_features()
    seconds = time.perf_counter() - t0
    n_patches = sum(s.shape[1] // FRONT_END.patch_frames for s in features.specs)
    n_bytes = sum(s.nbytes for s in features.specs)
    print(f"Ballroom-sized synthetic features: {len(features.specs)} tracks x "
          f"{features.specs[0].shape[0]} bands x {features.specs[0].shape[1]} frames, "
          f"{n_patches} patches of {FRONT_END.patch_frames} frames, "
          f"{n_bytes / 2**20:.0f} MiB float32, {len(set(features.labels.tolist()))} classes "
          f"(made in {seconds:.1f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
