"""Untrained filters of the same shape: what a random initialisation looks like (a description).

Untrained (Glorot-uniform) filters are white, trained ones smooth, so the untrained filters are
no null for "periodic": smooth noise beats them easily (see
:mod:`tfcnn.interpret.smooth_null` for the test). They are shown beside the trained filters
and their strengths as a histogram, so a reader sees what training changed.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import torch

from tfcnn.config import BALLROOM_BPM_RANGE
from tfcnn.errors import ConfigError
from tfcnn.interpret.periodicity import (DEFAULT_FRAME_RATE_HZ, check_range, filter_tempi,
                                         lag1_correlation)
from tfcnn.models import build_model, temporal_filters

#: Untrained models per baseline (x 32 filters each = 1600 filters).
N_BASELINE_MODELS: int = 50


@dataclass(frozen=True)
class RandomBaseline:
    """Periodicity of untrained filters.

    Attributes
    ----------
    arch : str
    n_models : int
        Untrained models (seeds 0 .. n_models-1).
    strengths : np.ndarray, shape (n_models * n_filters,)
    peak_bpms : np.ndarray, shape (n_models * n_filters,)
        NaN where no BPM is testable.
    smoothness : np.ndarray, shape (n_models * n_filters,)
        Lag-1 correlation of every untrained filter.
    example : np.ndarray, shape (n_filters, width)
        The filters of the seed-0 model, to draw next to the trained ones.
    """

    arch: str
    n_models: int
    strengths: np.ndarray
    peak_bpms: np.ndarray
    smoothness: np.ndarray
    example: np.ndarray


@functools.lru_cache(maxsize=16)
def _baseline_cached(arch: str, params_json: str, n_classes: int, n_models: int,
                     frame_rate: float, lo: float, hi: float) -> RandomBaseline:
    params = json.loads(params_json)
    banks = []
    with torch.random.fork_rng(devices=[]):  # leave the caller's RNG state alone
        for seed in range(n_models):
            torch.manual_seed(seed)
            filters = temporal_filters(build_model(arch, n_classes, **params))
            if filters is None:
                raise ConfigError(f"architecture {arch!r} with {params} has no temporal filters")
            banks.append(filters)
    stacked = np.concatenate(banks, axis=0)                       # (n_models * n_filters, width)
    tempi = filter_tempi(stacked, frame_rate=frame_rate, bpm_range=(lo, hi))
    strengths = np.array([t.strength for t in tempi])
    peaks = np.array([np.nan if t.peak_bpm is None else t.peak_bpm for t in tempi])
    smooth = lag1_correlation(stacked)
    for a in (strengths, peaks, smooth):
        a.setflags(write=False)
    return RandomBaseline(arch=arch, n_models=n_models, strengths=strengths, peak_bpms=peaks,
                          smoothness=smooth, example=banks[0])


def random_baseline(arch: str, arch_params: Mapping | None = None, *, n_classes: int = 8,
                    n_models: int = N_BASELINE_MODELS,
                    frame_rate: float = DEFAULT_FRAME_RATE_HZ,
                    bpm_range: Sequence[float] = BALLROOM_BPM_RANGE) -> RandomBaseline:
    """Strengths of the temporal filters of ``n_models`` untrained models (seeds 0..n-1).

    The models are built as training starts them (``build_model`` with the same architecture
    and parameters). Cached per arguments.

    Raises
    ------
    ConfigError
        Unknown architecture, one without temporal filters, or ``n_models < 1``.
    """
    if int(n_models) < 1:
        raise ConfigError(f"n_models must be >= 1, got {n_models!r}")
    lo, hi, frame_rate = check_range(bpm_range, frame_rate)
    params = {k: v for k, v in dict(arch_params or {}).items() if k != "n_classes"}
    return _baseline_cached(str(arch), json.dumps(params, sort_keys=True), int(n_classes),
                            int(n_models), frame_rate, lo, hi)
