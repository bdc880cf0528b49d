"""What the Home and Data pages show about a data set: class counts, the feature cache,
one track's log-mel."""

from __future__ import annotations

import os
from collections.abc import Callable

import numpy as np
import pandas as pd
import streamlit as st

from tfcnn import paths
from tfcnn.cache import cache_state, compute_spec, load_features
from tfcnn.datasets import Dataset
from tfcnn.ui.predict import MAX_DURATION_S, MAX_UPLOAD_MB


def class_counts(dataset: Dataset) -> pd.DataFrame:
    """Tracks per class of a data set: columns ``class``, ``tracks``."""
    counts = dataset.tracks["dance"].value_counts()
    return pd.DataFrame({"class": list(dataset.classes),
                         "tracks": [int(counts.get(c, 0)) for c in dataset.classes]})


def cache_progress(dataset: Dataset) -> tuple[int, int]:
    """``(n_cached, n_total)`` tracks with features in the cache."""
    return cache_state(dataset)


def build_cache(dataset: Dataset, progress: Callable[[int, int], None]) -> None:
    """Compute and cache the features of every track; ``progress(done, total)`` per track."""
    load_features(dataset, progress=progress)


@st.cache_data(show_spinner=False, max_entries=32)
def track_log_mel(path: str) -> np.ndarray:
    """Log-mel (n_mels, T) of one data-set track (not normalised; the core's front end,
    :func:`tfcnn.cache.compute_spec`), cached per path; audio over the app's duration limit
    is refused (from its header, else once that much is decoded)."""
    return compute_spec(path, max_duration_s=MAX_DURATION_S)


def playable(path: str) -> str | None:
    """Why the page will not play ``path`` (a file over the app's upload size limit, which
    Streamlit would hold in memory whole), or None."""
    try:
        size = os.stat(path).st_size
    except OSError as exc:
        return f"{paths.display(path)}: cannot be read ({exc.strerror})"
    if size > MAX_UPLOAD_MB * 2**20:
        return (f"{paths.display(path)}: {size / 2**20:.0f} MB is over the "
                f"{MAX_UPLOAD_MB} MB the page plays")
    return None
