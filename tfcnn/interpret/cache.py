"""A checkpoint's tempo study on disk, keyed by the checkpoint's content hash.

The study takes seconds to tens of seconds (probes, 32 000 surrogate filters); the page and the
growth table read it back in milliseconds. Entries live in ``.tfcnn-cache/studies/`` beside the
checkpoint (git-ignored), named by a SHA-256 of the checkpoint's bytes, the study's parameters
and :data:`STUDY_FORMAT`, so an edited checkpoint or a changed method never reads a stale
entry. The format is plain JSON (no pickle: a cache folder may come from elsewhere).
"""

from __future__ import annotations

import dataclasses
import hashlib
import inspect
import json
import os
from importlib import resources
from pathlib import Path

import numpy as np
import pandas as pd

from tfcnn.atomic import write_json_atomic
from tfcnn.cache import CACHE_DIRNAME
from tfcnn.interpret.baseline import RandomBaseline
from tfcnn.interpret.functional import (Ablation, Counterfactual, FunctionalEvidence,
                                        ProbeClassTest)
from tfcnn.interpret.periodic_lrt import POWER_FILE, TABLE_FILE, PowerCurve
from tfcnn.interpret.probes import Probes
from tfcnn.interpret.study import Statement, TempoStudy, Verdict, tempo_study
from tfcnn.interpret.tempi import class_tempi

#: Bump when the study's method or this format changes: old entries are then ignored.
STUDY_FORMAT: int = 4
STUDIES_DIR = "studies"
_TYPES = {cls.__name__: cls for cls in (TempoStudy, Verdict, Statement, Probes, RandomBaseline,
                                         PowerCurve, FunctionalEvidence, ProbeClassTest,
                                         Counterfactual, Ablation)}


def _encode(value):
    """JSON-able form of a study's parts (arrays, frames, dataclasses, tuples, NaN)."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {"__dc__": type(value).__name__,
                **{f.name: _encode(getattr(value, f.name)) for f in dataclasses.fields(value)}}
    if isinstance(value, pd.DataFrame):
        frame = value.reset_index() if value.index.name else value
        return {"__df__": [[_encode(v) for v in row] for row in frame.itertuples(index=False)],
                "columns": list(frame.columns), "index": value.index.name,
                "attrs": _encode(dict(value.attrs))}
    if isinstance(value, np.ndarray):
        data = value.astype(object).tolist() if value.dtype.kind == "f" else value.tolist()
        return {"__nd__": _encode(data), "dtype": value.dtype.str}
    if isinstance(value, dict):
        return {str(k): _encode(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_encode(v) for v in value]
    if isinstance(value, np.generic):
        return _encode(value.item())
    if isinstance(value, float) and not np.isfinite(value):
        return None
    return value


def _decode(value, *, as_tuple: bool = True):
    if isinstance(value, dict):
        if "__dc__" in value:
            cls = _TYPES[value["__dc__"]]
            return cls(**{k: _decode(v) for k, v in value.items() if k != "__dc__"})
        if "__df__" in value:
            rows = [[_decode(v, as_tuple=False) for v in row] for row in value["__df__"]]
            frame = pd.DataFrame(rows, columns=value["columns"])
            if value["index"]:
                frame = frame.set_index(value["index"])
            frame.attrs.update(_decode(value["attrs"]))
            return frame
        if "__nd__" in value:
            data = value["__nd__"]
            dtype = np.dtype(value["dtype"])
            if dtype.kind == "f":
                return np.array(data, dtype=object).astype(dtype)  # None → NaN
            return np.array(data, dtype=dtype)
        return {k: _decode(v) for k, v in value.items()}
    if isinstance(value, list):
        items = [_decode(v, as_tuple=as_tuple) for v in value]
        return tuple(items) if as_tuple else items
    return value


def study_to_json(study: TempoStudy) -> dict:
    """A :class:`TempoStudy` as a JSON-able dict (:func:`study_from_json` reads it back)."""
    return {"format": STUDY_FORMAT, "study": _encode(study)}


def study_from_json(doc: dict) -> TempoStudy:
    """The :class:`TempoStudy` written by :func:`study_to_json`."""
    return _decode(doc["study"])


def file_sha256(path: str | os.PathLike) -> str:
    """SHA-256 of a file's bytes (hex)."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _data_sha() -> str:
    """Hash of the shipped null and power tables: rebuilding them invalidates old studies."""
    digest = hashlib.sha256()
    for name in (TABLE_FILE, POWER_FILE):
        digest.update(resources.files("tfcnn").joinpath("data", name).read_bytes())
    return digest.hexdigest()


def study_key(checkpoint_path: str | os.PathLike, params: dict) -> str:
    """Cache key: the checkpoint's content hash, the study parameters, the format and the
    shipped test tables."""
    text = json.dumps({"sha": file_sha256(checkpoint_path), "params": params,
                       "format": STUDY_FORMAT, "tables": _data_sha()}, sort_keys=True,
                      default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:32]


def cache_path(checkpoint_path: str | os.PathLike, key: str) -> Path:
    """Where the study of ``checkpoint_path`` with ``key`` is stored."""
    return Path(checkpoint_path).parent / CACHE_DIRNAME / STUDIES_DIR / f"{key}.json"


def study_cache_path(checkpoint_path: str | os.PathLike, *,
                     tempi: pd.DataFrame | None = None, **params) -> Path:
    """Where :func:`cached_study` keeps the study of ``checkpoint_path`` with these arguments.

    The key holds every parameter as the study will use it, defaults included, so the CLI
    and the page share entries whichever arguments they spell out.
    """
    defaults = {k: p.default for k, p in inspect.signature(tempo_study).parameters.items()
                if p.default is not inspect.Parameter.empty and k not in ("tempi", "activations")}
    tempi = class_tempi("ballroom") if tempi is None else tempi
    key_params = {k: [float(b) for b in v] if k == "probe_bpms" else v
                  for k, v in {**defaults, **params}.items()}
    key_params["tempi"] = hashlib.sha256(tempi.to_csv(index=False).encode("utf-8")).hexdigest()
    return cache_path(checkpoint_path, study_key(checkpoint_path, key_params))


def cached_study(checkpoint_path: str | os.PathLike, *, tempi: pd.DataFrame | None = None,
                 **params) -> TempoStudy:
    """:func:`tfcnn.interpret.study.tempo_study` of a checkpoint file, read from disk if done.

    Parameters
    ----------
    checkpoint_path : path
    tempi : DataFrame, optional
        Class tempi (part of the key through its content).
    **params
        Other keyword arguments of ``tempo_study`` (part of the key).

    Returns
    -------
    TempoStudy
        Computed once per checkpoint content and parameters; a cache folder that cannot be
        written only costs the recomputation.
    """
    tempi = class_tempi("ballroom") if tempi is None else tempi
    path = study_cache_path(checkpoint_path, tempi=tempi, **params)
    try:
        return study_from_json(json.loads(path.read_text(encoding="utf-8")))
    except (OSError, ValueError, KeyError, TypeError):
        pass
    study = tempo_study(checkpoint_path, tempi=tempi, **params)
    try:
        write_json_atomic(path, study_to_json(study))
    except OSError:
        pass                                   # read-only folder: the study is still returned
    return study
