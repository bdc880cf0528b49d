"""Checkpoints: weights + everything needed to rebuild and use a model, in one safetensors file.

The file is a plain safetensors file (no pickle: safe to load from an untrusted download).
Its header metadata ``"tfcnn"`` holds JSON with the format version, architecture and its
parameters, class list, normalisation mean/std, front-end config, training config, metrics,
code version and free-form extras. :func:`load_checkpoint` rebuilds the model alone from it
and raises :class:`~tfcnn.errors.CheckpointError` naming the file and the problem.
"""

from __future__ import annotations

import json
import math
import os
import stat
import struct
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load as load_safetensors_bytes
from safetensors.torch import save as save_safetensors_bytes

import tfcnn
from tfcnn.atomic import write_bytes_atomic
from tfcnn.config import FrontEnd
from tfcnn.errors import CheckpointError, ConfigError, TfcnnError
from tfcnn.jsonfile import parse_json
from tfcnn.models import ARCHITECTURES, build_model

#: Version of the metadata layout; files with a larger number need a newer tfcnn.
FORMAT_VERSION = 1
FORMAT_NAME = "tfcnn-checkpoint"
META_KEY = "tfcnn"
SUFFIX = ".safetensors"
#: Largest checkpoint file read (the paper's models are under 10 MB; a header may not make
#: us read a device or a multi-GB file).
MAX_CHECKPOINT_BYTES = 512 * 2**20


@dataclass
class Checkpoint:
    """A loaded checkpoint.

    Attributes
    ----------
    model : torch.nn.Module
        Rebuilt model with its weights, in eval mode, on the requested device.
    arch : str
        Architecture name (``"timefreq-init"`` kept as trained).
    arch_params : dict
        Resolved architecture parameters (``build_model(arch, len(classes), **arch_params)``).
    classes : tuple of str
        Class names in output order.
    norm_mean, norm_std : float
        Scalar normalisation of the log-mel input: ``(x - norm_mean) / norm_std``.
    front_end : FrontEnd
        Front end the model was trained with.
    train_config : dict
    metrics : dict
    meta : dict
        The whole metadata (format version, code version, extra, ...).
    path : Path or None
        File it was read from (None when loaded from bytes).
    """

    model: torch.nn.Module
    arch: str
    arch_params: dict
    classes: tuple[str, ...]
    norm_mean: float
    norm_std: float
    front_end: FrontEnd
    train_config: dict = field(default_factory=dict)
    metrics: dict = field(default_factory=dict)
    meta: dict = field(default_factory=dict)
    path: Path | None = None

    @property
    def extra(self) -> dict:
        return self.meta.get("extra") or {}

    @property
    def calibration(self) -> dict | None:
        """The stored calibration (temperature, unsure threshold), None if the file has none."""
        return self.meta.get("calibration") or None

    @property
    def provenance(self) -> dict:
        """What the model was trained on, from its metadata (None where it does not say).

        Returns
        -------
        dict
            ``arch``, ``dataset`` (name), ``dataset_kind``, ``trained_on`` (e.g. "trained on
            SynthBallroom (synthetic)"), ``protocol``, ``preset``, ``fold`` (the
            cross-validation fold it is the model of), ``test_accuracy`` (song accuracy on
            that fold's held-out test songs, %) and ``n_test_songs``.
        """
        extra, metrics = self.extra, self.metrics
        dataset = extra.get("dataset") if isinstance(extra.get("dataset"), dict) else {}
        return {
            "arch": self.arch,
            "dataset": dataset.get("name"),
            "dataset_kind": dataset.get("kind"),
            "trained_on": extra.get("trained_on"),
            "protocol": extra.get("protocol"),
            "preset": self.train_config.get("preset"),
            "fold": extra.get("fold", metrics.get("fold")),
            "test_accuracy": metrics.get("accuracy"),
            "n_test_songs": metrics.get("n_tracks"),
        }


def describe_provenance(provenance: dict) -> str:
    """One sentence of :attr:`Checkpoint.provenance`, for the CLI and the Predict page."""
    p = provenance
    if not p.get("dataset") and not p.get("trained_on"):
        return f"{p.get('arch')} model; its file does not say what it was trained on"
    parts = [f"{p.get('arch')} model {p.get('trained_on') or 'trained on ' + p['dataset']}"]
    setup = ", ".join(f"{k} {p[k]}" for k in ("protocol", "preset") if p.get(k))
    if setup:
        parts.append(setup)
    if p.get("test_accuracy") is not None:
        songs = f" on its {p['n_test_songs']} held-out test songs" if p.get("n_test_songs") else ""
        fold = f"fold {p['fold']} " if p.get("fold") is not None else ""
        parts.append(f"{fold}test accuracy {p['test_accuracy']:.2f} %{songs}")
    return "; ".join(parts)


def _jsonable(value):
    """``json.dumps`` default: numpy scalars/arrays, paths, tuples of dataclasses."""
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    if hasattr(value, "to_dict"):
        return value.to_dict()
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def _as_dict(name: str, value) -> dict:
    if value is None:
        return {}
    if hasattr(value, "to_dict"):
        return value.to_dict()
    if isinstance(value, dict):
        return dict(value)
    raise ConfigError(f"{name} must be a dict or have .to_dict(), got {type(value).__name__}")


def _finite_float(name: str, value, *, positive: bool = False) -> float:
    try:
        x = float(value)
    except (TypeError, ValueError):
        x = float("nan")
    if not math.isfinite(x) or (positive and x <= 0):
        need = "a finite number > 0" if positive else "a finite number"
        raise ConfigError(f"{name} must be {need}, got {value!r}")
    return x


def save_checkpoint(path, model: torch.nn.Module, *, classes, norm_mean: float, norm_std: float,
                    front_end, train_config=None, metrics=None, extra=None,
                    calibration=None) -> Path:
    """Write ``model`` and its metadata to a safetensors file, atomically.

    Parameters
    ----------
    path : str or Path
        Destination (parent folders are created). Written to a temporary file in the same
        folder, then renamed, so a reader never sees half a file.
    model : torch.nn.Module
        A model from :func:`tfcnn.models.build_model` (has ``.arch``, ``.arch_params``).
    classes : sequence of str
        Class names in output order (length = the model's output size).
    norm_mean, norm_std : float
        Input normalisation computed on the training data.
    front_end : FrontEnd or dict
    train_config : TrainConfig or dict, optional
    metrics : dict, optional
    extra : dict, optional
        Anything else JSON-able (fold index, data set, run id, ...).
    calibration : dict or object with ``.to_dict()``, optional
        Temperature and unsure threshold (:class:`tfcnn.calibration.Calibration`).

    Returns
    -------
    Path
        The written file.
    """
    arch = getattr(model, "arch", None)
    if arch not in ARCHITECTURES:
        raise ConfigError(
            f"model has no known .arch ({arch!r}); build it with tfcnn.models.build_model"
        )
    classes = [str(c) for c in classes]
    n_out = getattr(model, "n_classes", None)
    if n_out is not None and len(classes) != n_out:
        raise ConfigError(f"{len(classes)} class names for a model with {n_out} outputs")
    meta = {
        "format": FORMAT_NAME,
        "format_version": FORMAT_VERSION,
        "arch": arch,
        "arch_params": dict(model.arch_params),
        "classes": classes,
        "norm_mean": _finite_float("norm_mean", norm_mean),
        "norm_std": _finite_float("norm_std", norm_std, positive=True),
        "front_end": _as_dict("front_end", front_end),
        "train_config": _as_dict("train_config", train_config),
        "metrics": dict(metrics or {}),
        "code_version": tfcnn.__version__,
        "created_utc": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "extra": dict(extra or {}),
    }
    if calibration is not None:
        meta["calibration"] = _as_dict("calibration", calibration)
    try:
        meta_json = json.dumps(meta, default=_jsonable, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"checkpoint metadata is not JSON-able: {exc}") from None
    # safetensors wants contiguous CPU tensors that share no storage
    tensors = {k: v.detach().to("cpu").contiguous().clone() for k, v in model.state_dict().items()}
    data = save_safetensors_bytes(tensors, metadata={META_KEY: meta_json})

    write_bytes_atomic(path, data, fsync=True)
    return path


def _read_header(data: bytes, where: str) -> dict:
    """The safetensors JSON header, checked against the file length."""
    if len(data) < 8:
        raise CheckpointError(
            f"{where}: not a safetensors checkpoint (only {len(data)} bytes)"
        )
    (n_header,) = struct.unpack("<Q", data[:8])
    if n_header > len(data) - 8:
        raise CheckpointError(
            f"{where}: truncated or not a safetensors checkpoint (header of {n_header} bytes, "
            f"file has {len(data)} bytes)"
        )
    try:
        header = parse_json(data[8:8 + n_header], where=where, error=CheckpointError,
                            max_bytes=MAX_CHECKPOINT_BYTES)
    except CheckpointError as exc:
        raise CheckpointError(f"{where}: corrupt header, not a safetensors checkpoint "
                              f"({str(exc).removeprefix(where + ': ')})") from None
    if not isinstance(header, dict):
        raise CheckpointError(f"{where}: corrupt header, not a safetensors checkpoint")
    return header


def _read_meta(header: dict, where: str) -> dict:
    raw = header.get("__metadata__") or {}
    raw = raw.get(META_KEY) if isinstance(raw, dict) else None
    if raw is None:
        raise CheckpointError(
            f"{where}: a safetensors file without tfcnn metadata; not a tfcnn checkpoint"
        )
    if not isinstance(raw, str):
        raise CheckpointError(f"{where}: corrupt tfcnn metadata (not a JSON string)")
    try:
        meta = parse_json(raw, where=where, error=CheckpointError)
    except CheckpointError as exc:
        why = str(exc).removeprefix(where + ": ")
        raise CheckpointError(f"{where}: corrupt tfcnn metadata "
                              f"({'invalid JSON' if why.startswith('not valid') else why})"
                              ) from None
    if not isinstance(meta, dict):
        raise CheckpointError(f"{where}: corrupt tfcnn metadata (not an object)")
    version = meta.get("format_version")
    if not isinstance(version, int):
        raise CheckpointError(f"{where}: tfcnn metadata without a format version")
    if version > FORMAT_VERSION:
        raise CheckpointError(
            f"{where}: written by a newer tfcnn (checkpoint format {version}, this code "
            f"reads up to {FORMAT_VERSION}; code version {meta.get('code_version')!r}); "
            "upgrade tfcnn"
        )
    missing = [k for k in ("arch", "arch_params", "classes", "norm_mean", "norm_std",
                           "front_end") if k not in meta]
    if missing:
        raise CheckpointError(f"{where}: tfcnn metadata lacks {', '.join(missing)}")
    return meta


def read_metadata(path) -> dict:
    """A checkpoint file's tfcnn metadata, without reading its weights (for listings).

    Raises
    ------
    CheckpointError
        Missing or unreadable file, not a tfcnn checkpoint.
    """
    where = str(path)
    with _open_checkpoint(path) as f:
        try:
            head = f.read(8)
            n_header = struct.unpack("<Q", head)[0] if len(head) == 8 else 0
            # a corrupt length must not make us read (or allocate) more than the file holds
            data = head + f.read(min(n_header, os.fstat(f.fileno()).st_size))
        except OSError as exc:
            raise CheckpointError(f"{where}: cannot read ({exc.strerror or exc})") from None
    return _read_meta(_read_header(data, where), where)


def _open_checkpoint(path):
    """``path`` opened for reading, if it is a regular file of at most
    :data:`MAX_CHECKPOINT_BYTES` (opened non-blocking, so a FIFO cannot hang us; the type
    and size are checked on the open file)."""
    where = str(path)
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    except FileNotFoundError:
        raise CheckpointError(f"{where}: no such checkpoint file") from None
    except OSError as exc:
        raise CheckpointError(f"{where}: cannot read ({exc.strerror or exc})") from None
    info = os.fstat(fd)
    problem = ("is a directory, not a checkpoint file" if stat.S_ISDIR(info.st_mode) else
               "not a regular file (a device, pipe or socket)"
               if not stat.S_ISREG(info.st_mode) else
               f"{info.st_size / 2**20:.0f} MB; a checkpoint may be at most "
               f"{MAX_CHECKPOINT_BYTES / 2**20:.0f} MB"
               if info.st_size > MAX_CHECKPOINT_BYTES else None)
    if problem:
        os.close(fd)
        raise CheckpointError(f"{where}: {problem}")
    return os.fdopen(fd, "rb")


def update_metadata(path, updates: dict, *, out=None) -> Path:
    """Replace top-level metadata fields of a checkpoint file, keeping its weights.

    Parameters
    ----------
    path : str or Path
        An existing checkpoint (validated by reading it).
    updates : dict
        JSON-able fields to set (e.g. ``{"calibration": {...}}``); the format fields and the
        ones the model is rebuilt from cannot be changed this way.
    out : str or Path, optional, keyword-only
        Where to write (default: ``path`` itself, replaced atomically).

    Returns
    -------
    Path
        The written file.
    """
    frozen = {"format", "format_version", "arch", "arch_params", "classes", "norm_mean",
              "norm_std", "front_end"}
    bad = sorted(frozen & set(updates))
    if bad:
        raise ConfigError(f"cannot update checkpoint fields {', '.join(bad)}")
    where = str(path)
    load_checkpoint(path)  # raises CheckpointError for anything unusable
    data = Path(path).read_bytes()
    meta = {**_read_meta(_read_header(data, where), where), **updates}
    try:
        meta_json = json.dumps(meta, default=_jsonable, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"checkpoint metadata is not JSON-able: {exc}") from None
    tensors = load_safetensors_bytes(data)
    target = Path(out) if out is not None else Path(path)
    write_bytes_atomic(target, save_safetensors_bytes(tensors, metadata={META_KEY: meta_json}),
                       fsync=True)
    return target


def load_checkpoint(path, *, device="cpu") -> Checkpoint:
    """Read a checkpoint and rebuild its model.

    Parameters
    ----------
    path : str, Path or bytes
        The ``.safetensors`` file, or its content (e.g. an upload).
    device : str or torch.device
        Where to put the model.

    Returns
    -------
    Checkpoint
        With ``.model`` in eval mode.

    Raises
    ------
    CheckpointError
        Missing file, not a regular file (a device or FIFO), over
        :data:`MAX_CHECKPOINT_BYTES`, not a safetensors file, truncated or corrupt (JSON
        nested too deeply included), no tfcnn metadata, newer format, unknown architecture,
        or weights that do not fit the architecture.
    """
    if isinstance(path, (bytes, bytearray, memoryview)):
        data, where, file_path = bytes(path), "checkpoint", None
    else:
        file_path = Path(path)
        where = str(file_path)
        with _open_checkpoint(file_path) as f:
            try:
                data = f.read(MAX_CHECKPOINT_BYTES + 1)
            except OSError as exc:
                raise CheckpointError(f"{where}: cannot read ({exc.strerror or exc})") from None
        if len(data) > MAX_CHECKPOINT_BYTES:  # grew since it was opened
            raise CheckpointError(f"{where}: over the {MAX_CHECKPOINT_BYTES / 2**20:.0f} MB "
                                  "a checkpoint may have")

    meta = _read_meta(_read_header(data, where), where)
    arch = meta["arch"]
    if arch not in ARCHITECTURES:
        raise CheckpointError(
            f"{where}: unknown architecture {arch!r}; this code knows "
            f"{', '.join(ARCHITECTURES)}"
        )
    classes = meta["classes"]
    if not isinstance(classes, list) or not classes or not all(isinstance(c, str) for c in classes):
        raise CheckpointError(
            f"{where}: classes must be a non-empty list of names, got {classes!r}"
        )
    try:
        norm_mean = _finite_float("norm_mean", meta["norm_mean"])
        norm_std = _finite_float("norm_std", meta["norm_std"], positive=True)
        front_end = FrontEnd(**meta["front_end"])
        if not isinstance(meta["arch_params"], dict):
            raise ConfigError(f"arch_params must be an object, got {meta['arch_params']!r}")
        model = build_model(arch, len(classes), **meta["arch_params"])
    except (TfcnnError, TypeError) as exc:
        raise CheckpointError(f"{where}: incompatible metadata: {exc}") from None

    try:
        tensors = load_safetensors_bytes(data)
    except Exception as exc:  # safetensors raises its own error type for any corruption
        raise CheckpointError(f"{where}: truncated or corrupt tensor data ({exc})") from None
    expected = model.state_dict()
    missing = sorted(set(expected) - set(tensors))
    unexpected = sorted(set(tensors) - set(expected))
    if missing or unexpected:
        raise CheckpointError(
            f"{where}: weights do not match architecture {arch!r}: "
            f"missing {missing or 'none'}, unexpected {unexpected or 'none'}"
        )
    for name, ref in expected.items():
        if tuple(tensors[name].shape) != tuple(ref.shape):
            raise CheckpointError(
                f"{where}: weights do not match architecture {arch!r}: {name} has shape "
                f"{tuple(tensors[name].shape)}, expected {tuple(ref.shape)}"
            )
        if not torch.isfinite(tensors[name]).all():
            raise CheckpointError(f"{where}: weight {name} contains non-finite values")
    model.load_state_dict({k: v.to(ref.dtype) for k, v in tensors.items()
                           for ref in [expected[k]]})
    model.to(device).eval()
    return Checkpoint(
        model=model, arch=arch, arch_params=dict(model.arch_params), classes=tuple(classes),
        norm_mean=norm_mean, norm_std=norm_std, front_end=front_end,
        train_config=dict(meta.get("train_config") or {}),
        metrics=dict(meta.get("metrics") or {}), meta=meta, path=file_path,
    )


def as_checkpoint(checkpoint, *, device="cpu") -> Checkpoint:
    """``checkpoint`` itself when it is a loaded :class:`Checkpoint`, else
    :func:`load_checkpoint` of it (a path or the file's bytes) onto ``device``."""
    if isinstance(checkpoint, Checkpoint):
        return checkpoint
    if isinstance(checkpoint, (str, os.PathLike, bytes, bytearray, memoryview)):
        return load_checkpoint(checkpoint, device=device)
    raise CheckpointError(
        f"expected a checkpoint path or a loaded Checkpoint, got {type(checkpoint).__name__}"
    )
