"""The data-set chooser in the sidebar, shared by every page, and cached data-set loads.

The choice persists across pages (session state) and across app restarts (a small JSON file
in the runs folder).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import streamlit as st

from tfcnn.atomic import write_json_atomic
from tfcnn.datasets import Dataset, load_dataset
from tfcnn.errors import TfcnnError
from tfcnn.locations import default_data_dir, runs_root

#: The sidebar's data-set sources: key -> label.
DATA_SOURCES: dict[str, str] = {
    "synth": "Embedded SynthBallroom",
    "ballroom": "Ballroom folder",
    "folder": "Folder per class",
}

#: The saved choice, in the runs folder.
SETTINGS_FILE = ".app-settings.json"
_SESSION_KEY = "tfcnn_data"


def _load_choice() -> dict:
    try:
        saved = json.loads((runs_root() / SETTINGS_FILE).read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        saved = {}
    saved = saved if isinstance(saved, dict) else {}
    choice = saved.get("data") if isinstance(saved.get("data"), dict) else {}
    source = choice.get("source") if choice.get("source") in DATA_SOURCES else "synth"
    return {"source": source, "path": str(choice.get("path") or "")}


def _save_choice(choice: dict) -> None:
    try:
        write_json_atomic(runs_root() / SETTINGS_FILE, {"data": choice})
    except OSError:
        pass  # a read-only runs folder only loses persistence across restarts


def data_choice() -> dict:
    """The current data-set choice ``{"source", "path"}`` of this browser session."""
    if _SESSION_KEY not in st.session_state:
        st.session_state[_SESSION_KEY] = _load_choice()
    return st.session_state[_SESSION_KEY]


def chosen_data_dir(choice: dict | None = None) -> Path | None:
    """Folder of the chosen data set, or None when a custom path is not given yet."""
    choice = choice or data_choice()
    if choice["source"] == "synth":
        return default_data_dir()
    path = choice["path"].strip()
    return Path(path).expanduser().resolve() if path else None


def data_sidebar() -> Path | None:
    """Render the data-set chooser in the sidebar; return the chosen folder.

    Every page calls this first, so the choice is visible and editable everywhere; it is
    kept in the session state and in ``<runs>/.app-settings.json``. Returns None when a
    custom source is chosen but its folder is not given yet.
    """
    choice = data_choice()
    keys = list(DATA_SOURCES)
    with st.sidebar:
        st.header("Data set")
        source = st.radio("Source", keys, index=keys.index(choice["source"]),
                          format_func=DATA_SOURCES.get)
        if source == "synth":
            path = choice["path"]
            st.caption(f"`{default_data_dir()}`")
        else:
            path = st.text_input(
                "Folder", value=choice["path"],
                placeholder="/data/BallroomData" if source == "ballroom" else "/data/my-genres",
                help="Ballroom: the archive's BallroomData/ folder or the merged 8-folder "
                     "layout. Folder per class: one sub-folder of audio files per class.")
    new = {"source": source, "path": path}
    if new != choice:
        st.session_state[_SESSION_KEY] = new
        _save_choice(new)
    return chosen_data_dir(new)


def _stamp(path: Path) -> float:
    """A value that changes when files are added to / removed from ``path`` (cache key)."""
    try:
        stamp = path.stat().st_mtime
        for child in path.iterdir():
            if child.is_dir():
                stamp = max(stamp, child.stat().st_mtime)
        return stamp
    except OSError:
        return 0.0


@st.cache_data(show_spinner="Reading the data set…", max_entries=8)
def _cached_dataset(path: str, stamp: float) -> Dataset:
    return load_dataset(path)


def load_dataset_cached(path: str | os.PathLike) -> Dataset:
    """:func:`tfcnn.datasets.load_dataset`, cached until the folder's content changes."""
    path = Path(path)
    return _cached_dataset(str(path), _stamp(path))


def active_dataset() -> Dataset:
    """Sidebar chooser + data set, or ``st.info`` and stop when there is none to show.

    Returns the :class:`tfcnn.datasets.Dataset`; a bad folder shows ``st.error`` and stops
    the page (the sidebar stays usable).
    """
    path = data_sidebar()
    if path is None:
        st.info("Enter the data set's folder in the sidebar.")
        st.stop()
    if not path.exists() and data_choice()["source"] == "synth":
        st.info(f"The embedded SynthBallroom is not generated yet at `{path}`. Create it with "
                f"`make data` or `python -m tfcnn synth {path}` (a few minutes).")
        st.stop()
    try:
        return load_dataset_cached(path)
    except TfcnnError as exc:
        st.error(str(exc))
        st.stop()
