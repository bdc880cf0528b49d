"""What the Home and Data pages show about a data set: class counts, the feature cache,
one track's log-mel."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd
import streamlit as st

from tfcnn.cache import cache_state, compute_spec, load_features
from tfcnn.datasets import Dataset


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
    :func:`tfcnn.cache.compute_spec`), cached per path."""
    return compute_spec(path)
