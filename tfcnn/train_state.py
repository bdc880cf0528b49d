"""A fold's resumable training state: saved at the end of every epoch, refused when foreign.

The training loops (:func:`tfcnn.fold_training.train_fold`,
:func:`tfcnn.parallel.train_folds_parallel`) save, after each epoch's bookkeeping and before
the epoch is reported, everything the next epoch depends on, in one file per fold and
training stage (:class:`FoldStateFile`)::

    {"format": STATE_FORMAT, "identity": {...},      what the state belongs to
     "model": {name: tensor},                        the weights after this epoch
     "optimizer": dict or None,                      the torch optimizer's state dict
     "tracker": {...},                               schedule, epoch records, best model
     "rng": {...}}                                   torch, CUDA, numpy, python, data order

The file is written with :func:`tfcnn.atomic.write_bytes_atomic` (a temporary file, fsynced,
then renamed), so a kill at any moment leaves the previous epoch's state or this one, never half
of one; an interrupted fold therefore loses at most the epoch in flight. Restoring every
generator makes the continued fold draw the same minibatches and dropout masks as an
uninterrupted one: on the same device and thread count the weights are bit for bit equal.

The identity (:func:`fold_identity`) names the architecture stage, its parameters, the
training recipe, the fold's seed and test songs, its normalisation and a hash of the exact
training and validation tensors; a file whose identity differs is refused with a
:class:`tfcnn.errors.RunError` naming the first difference, never used.
"""

from __future__ import annotations

import hashlib
import io
import os
import random
from pathlib import Path

import numpy as np
import torch

from tfcnn.atomic import write_bytes_atomic
from tfcnn.errors import RunError

#: Version of the file layout; a file of another version is refused.
STATE_FORMAT = 1


def data_fingerprint(*tensors: torch.Tensor) -> str:
    """sha256 (16 hex digits) of the tensors' shapes, dtypes and bytes, in order.

    Parameters
    ----------
    *tensors : torch.Tensor
        Any shapes and devices (copied to the CPU to hash).
    """
    digest = hashlib.sha256()
    for tensor in tensors:
        cpu = tensor.detach().to("cpu").contiguous()
        digest.update(f"{tuple(cpu.shape)}|{cpu.dtype}|".encode())
        digest.update(cpu.view(torch.uint8).numpy().tobytes() if cpu.numel() else b"")
    return digest.hexdigest()[:16]


def fold_identity(*, fold: int, stage: str, stage_params: dict, train_config: dict, seed: int,
                  test_fingerprint: str, norm: tuple[float, float], data: str) -> dict:
    """What a fold's saved state must match to be resumed (JSON types only).

    Parameters
    ----------
    fold : int
        Fold index.
    stage : str
        The model being trained (the architecture, or a stage of ``timefreq-init``).
    stage_params : dict
        That model's resolved architecture parameters.
    train_config : dict
        :meth:`tfcnn.config.TrainConfig.to_dict`.
    seed : int
        The fold's seed (:func:`tfcnn.fold_training.fold_seed`).
    test_fingerprint : str
        :func:`tfcnn.folds.fold_fingerprint` of the fold's test songs.
    norm : (float, float)
        The fold's normalisation mean and std.
    data : str
        :func:`data_fingerprint` of the fold's training and validation patches and labels.
    """
    return {
        "fold": int(fold),
        "stage": str(stage),
        "stage_params": _plain(stage_params),
        "train_config": _plain(train_config),
        "seed": int(seed),
        "test_fingerprint": str(test_fingerprint),
        "norm": [float(norm[0]), float(norm[1])],
        "data_fingerprint": str(data),
    }


def _plain(value):
    """Tuples as lists, recursively: the identity compares equal after a save and load."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def rng_state(generator: torch.Generator) -> dict:
    """Every random state a training epoch draws from, as tensors and plain values.

    Parameters
    ----------
    generator : torch.Generator
        The fold's data-order generator (:func:`tfcnn.fold_training.fold_generator`).
    """
    kind, keys, pos, has_gauss, gauss = np.random.get_state(legacy=True)
    state = {
        "torch": torch.get_rng_state(),
        "generator": generator.get_state(),
        "numpy": [kind, torch.from_numpy(keys.astype(np.int64)), int(pos), int(has_gauss),
                  float(gauss)],
        "python": _plain(random.getstate()),
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict, generator: torch.Generator) -> None:
    """Restore what :func:`rng_state` captured (``generator`` is the fold's data order)."""
    torch.set_rng_state(state["torch"])
    generator.set_state(state["generator"])
    kind, keys, pos, has_gauss, gauss = state["numpy"]
    np.random.set_state((kind, keys.numpy().astype(np.uint32), pos, has_gauss, gauss))
    version, internal, gauss_next = state["python"]
    random.setstate((version, tuple(internal), gauss_next))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def _first_difference(saved: dict, wanted: dict) -> str | None:
    for key in wanted:
        if saved.get(key) != wanted[key]:
            return f"{key}: saved {saved.get(key)!r}, this run {wanted[key]!r}"
    return None


class FoldStateFile:
    """One fold's (and training stage's) saved state: :meth:`load`, :meth:`save`.

    Parameters
    ----------
    path : path-like
        The file (:func:`tfcnn.runs.state_path`).
    identity : dict
        :func:`fold_identity` of the fold as this run trains it.
    """

    def __init__(self, path: str | os.PathLike, identity: dict) -> None:
        self.path = Path(path)
        self.identity = identity
        self._loaded: dict | None = None
        self._read = False

    def load(self) -> dict | None:
        """The saved state, or None when there is none; read once, then remembered.

        Raises
        ------
        RunError
            The file cannot be read, is of another format, or belongs to another
            configuration, data set or fold split (the message names the first difference).
        """
        if self._read:
            return self._loaded
        if not self.path.is_file():
            self._read = True
            return None
        hint = f"delete {self.path} to train this fold again from its first epoch"
        try:
            state = torch.load(self.path, map_location="cpu", weights_only=True)
        except Exception as exc:  # unpickling raises many types; all mean "not a state"
            raise RunError(f"cannot resume from {self.path}: unreadable training state "
                           f"({type(exc).__name__}); {hint}") from None
        if not isinstance(state, dict) or state.get("format") != STATE_FORMAT:
            found = state.get("format") if isinstance(state, dict) else None
            raise RunError(f"cannot resume from {self.path}: state format {found!r}, "
                           f"expected {STATE_FORMAT}; {hint}")
        difference = _first_difference(state.get("identity") or {}, self.identity)
        if difference is not None:
            raise RunError(f"cannot resume from {self.path}: it was saved by another "
                           f"configuration ({difference}); {hint}")
        self._loaded, self._read = state, True
        return state

    def save(self, *, model: dict, optimizer: dict | None, tracker: dict, rng: dict) -> int:
        """Write the state atomically (fsynced before the rename); returns its size in bytes.

        Parameters
        ----------
        model : dict
            The weights after this epoch (CPU tensors).
        optimizer : dict or None
            The optimizer's state dict (None where the loop updates weights by hand).
        tracker : dict
            :meth:`tfcnn.fold_training.FoldTracker.state_dict`.
        rng : dict
            :func:`rng_state`.
        """
        state = {"format": STATE_FORMAT, "identity": self.identity, "model": model,
                 "optimizer": optimizer, "tracker": tracker, "rng": rng}
        buffer = io.BytesIO()
        torch.save(state, buffer)
        # Written by Python, not torch's own file writer: a full disk raises OSError (ENOSPC)
        # like every other write of the run folder.
        write_bytes_atomic(self.path, buffer.getvalue(), fsync=True)
        return buffer.tell()
