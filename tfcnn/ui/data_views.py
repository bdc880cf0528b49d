"""What the Home and Data pages show about a data set: class counts, the feature cache,
one track's log-mel."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd
import streamlit as st

from tfcnn.audio import load_audio
from tfcnn.cache import cache_state, load_features
from tfcnn.config import FRONT_END
from tfcnn.datasets import Dataset
from tfcnn.features import log_mel


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
    """Log-mel (n_mels, T) of one data-set track (not normalised), cached per path."""
    y = load_audio(path)
    return log_mel(y, FRONT_END.sample_rate)
