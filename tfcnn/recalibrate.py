"""Calibrate an existing checkpoint on its fold's validation songs, after training.

A fold's split is reproducible: :func:`tfcnn.folds.make_folds` gives the same folds for the same
labels, replica groups, number of folds, seed and protocol. :func:`fold_split` rebuilds it and
checks it against the test songs the checkpoint recorded, so a wrong data set or seed is an
error, not a silently wrong calibration. :func:`calibrate_checkpoint` then predicts the
validation songs through the inference path and stores the fitted
:class:`~tfcnn.calibration.Calibration` in the checkpoint's metadata.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from tfcnn.cache import load_features
from tfcnn.calibration import (Calibration, Reliability, fit_calibration, reliability,
                               song_confidences)
from tfcnn.checkpoint import Checkpoint, load_checkpoint, update_metadata
from tfcnn.datasets import load_dataset
from tfcnn.errors import CheckpointError, ConfigError
from tfcnn.evaluate import song_vote
from tfcnn.folds import make_folds
from tfcnn.inference import predict_features
from tfcnn.runs import CONFIG_FILE, read_config
from tfcnn.tempo import estimate_tempo


@dataclass(frozen=True)
class FoldSplit:
    """Which songs of a data set were a checkpoint's training, validation and test songs.

    Attributes
    ----------
    fold : int
    train, val, test : tuple of str
        Track ids (as the feature cache names them).
    """

    fold: int
    train: tuple[str, ...]
    val: tuple[str, ...]
    test: tuple[str, ...]

    def role(self, track_id: str) -> str:
        """``"training"``, ``"validation"``, ``"test"`` or ``"unseen"`` for one track."""
        for name, ids in (("training", self.train), ("validation", self.val),
                          ("test", self.test)):
            if track_id in ids:
                return name
        return "unseen"


def split_settings(checkpoint: Checkpoint, *, n_folds: int | None = None,
                   seed: int | None = None) -> dict:
    """Folds, seed and protocol of a checkpoint: given, else its run folder's, else 10/0.

    A checkpoint inside a run folder (``<run>/fold-XX/model.safetensors``) reads them from
    ``<run>/config.json``; a copied one (the shipped models) uses the shipped recipe's
    defaults unless told otherwise.
    """
    config = {}
    if checkpoint.path is not None and (checkpoint.path.parent.parent / CONFIG_FILE).is_file():
        config = read_config(checkpoint.path.parent.parent)
    protocol = checkpoint.extra.get("protocol") or config.get("protocol") or "clean"
    return {
        "n_folds": int(n_folds if n_folds is not None else config.get("n_folds", 10)),
        "seed": int(seed if seed is not None else config.get("seed", 0)),
        "protocol": protocol,
    }


def fold_split(checkpoint: Checkpoint, dataset, *, n_folds: int, seed: int,
               protocol: str) -> FoldSplit:
    """Rebuild the fold a checkpoint was trained on and check it against its test songs.

    Raises
    ------
    CheckpointError
        The checkpoint records no fold, or the rebuilt test songs differ from the recorded
        ones (another data set, seed or number of folds).
    """
    fold_index = checkpoint.extra.get("fold")
    recorded = checkpoint.extra.get("test_track_ids")
    where = checkpoint.path or "checkpoint"
    if not isinstance(fold_index, int) or not isinstance(recorded, list):
        raise CheckpointError(f"{where}: records no fold and test songs; cannot rebuild its split")
    if fold_index >= n_folds:
        raise ConfigError(f"{where}: fold {fold_index} does not exist with {n_folds} folds")
    tracks = dataset.tracks
    folds = make_folds(tracks["label"].to_numpy(np.int64),
                       groups=tracks["replica_group"].tolist(), n_folds=n_folds, seed=seed,
                       protocol=protocol)
    ids = [str(t) for t in tracks["track"]]  # the ids the trainer records
    fold = folds[fold_index]
    test = tuple(ids[i] for i in fold.test)
    if sorted(test) != sorted(recorded):
        raise CheckpointError(
            f"{where}: fold {fold_index} rebuilt from {dataset.root} with {n_folds} folds, seed "
            f"{seed}, protocol {protocol} has other test songs than the checkpoint recorded "
            f"({len(set(test) & set(recorded))} of {len(recorded)} shared); pass the data set, "
            "--folds and --seed it was trained with"
        )
    return FoldSplit(fold=fold_index, train=tuple(ids[i] for i in fold.train),
                     val=tuple(ids[i] for i in fold.val), test=test)


def calibrate_checkpoint(path, data_dir, *, n_folds: int | None = None, seed: int | None = None,
                         out=None) -> Calibration:
    """Fit a checkpoint's calibration on its fold's validation songs and store it.

    Parameters
    ----------
    path : str or Path
        The checkpoint.
    data_dir : str or Path
        The data set it was trained on.
    n_folds, seed : int, optional, keyword-only
        Override the run folder's (or the shipped recipe's) values.
    out : str or Path, optional, keyword-only
        Where to write the calibrated checkpoint (default: replace ``path``).

    Returns
    -------
    Calibration
    """
    ckpt = load_checkpoint(path)
    settings = split_settings(ckpt, n_folds=n_folds, seed=seed)
    if settings["protocol"] != "clean":
        raise ConfigError(
            f"{path}: protocol {settings['protocol']!r} has no validation songs (it holds out "
            "patches of the training songs); only 'clean' checkpoints can be calibrated"
        )
    dataset = load_dataset(data_dir)
    if tuple(dataset.classes) != tuple(ckpt.classes):
        raise ConfigError(
            f"{data_dir}: classes {list(dataset.classes)} differ from the checkpoint's "
            f"{list(ckpt.classes)}"
        )
    split = fold_split(ckpt, dataset, **settings)
    features = load_features(dataset, front_end=ckpt.front_end)
    index = {t: i for i, t in enumerate(features.track_ids)}
    val = [index[t] for t in split.val]
    probs = [predict_features(features.specs[i], ckpt, name=features.track_ids[i]).patch_probs
             for i in val]
    strengths = [estimate_tempo(features.specs[i], front_end=ckpt.front_end).strength
                 for i in val]
    calibration = fit_calibration(probs, np.asarray(features.labels)[val],
                                  beat_strengths=strengths)
    update_metadata(path, {"calibration": calibration.to_dict()}, out=out)
    return calibration


def measure_checkpoint(path, data_dir, *, n_folds: int | None = None,
                       seed: int | None = None) -> Reliability:
    """Calibration of a checkpoint measured on its fold's test songs (song level, the
    confidence the Predict page shows: calibrated when the checkpoint has a calibration).

    Parameters
    ----------
    path : str or Path
    data_dir : str or Path
        The data set it was trained on (its test songs are rebuilt and checked).
    n_folds, seed : int, optional, keyword-only
        As for :func:`calibrate_checkpoint`.

    Returns
    -------
    Reliability
    """
    ckpt = load_checkpoint(path)
    dataset = load_dataset(data_dir)
    if tuple(dataset.classes) != tuple(ckpt.classes):
        raise ConfigError(f"{data_dir}: classes {list(dataset.classes)} differ from the "
                          f"checkpoint's {list(ckpt.classes)}")
    split = fold_split(ckpt, dataset, **split_settings(ckpt, n_folds=n_folds, seed=seed))
    features = load_features(dataset, front_end=ckpt.front_end)
    index = {t: i for i, t in enumerate(features.track_ids)}
    test = [index[t] for t in split.test]
    probs = [predict_features(features.specs[i], ckpt, name=features.track_ids[i]).patch_probs
             for i in test]
    predicted = [song_vote(p) for p in probs]
    calibration = Calibration.from_dict(ckpt.calibration) if ckpt.calibration else None
    confidence = song_confidences(probs, predicted, calibration=calibration)
    correct = np.asarray(predicted) == np.asarray(features.labels)[test]
    return reliability(confidence, correct,
                       source="calibrated" if calibration is not None else "raw")


def checkpoint_split(checkpoint, data_dir) -> FoldSplit:
    """The training/validation/test songs of a checkpoint (loaded or a path) on ``data_dir``."""
    ckpt = checkpoint if isinstance(checkpoint, Checkpoint) else load_checkpoint(checkpoint)
    settings = split_settings(ckpt)
    return fold_split(ckpt, load_dataset(data_dir), **settings)

