"""The data-set chooser in the sidebar, shared by every page, and cached data-set loads.

The choice is kept per browser session (session state; the operator's default comes from
``TFCNN_DATA_DIR``). Folders a user names are confined to the allowed roots of
:mod:`tfcnn.paths`.
"""

from __future__ import annotations

import os
from pathlib import Path

import streamlit as st

from tfcnn import paths
from tfcnn.datasets import Dataset, load_dataset, synth_sets
from tfcnn.errors import AccessError, TfcnnError
from tfcnn.locations import default_data_dir
from tfcnn.ui.serve import ENV_PASSWORD, is_loopback
from tfcnn.ui.text import code, plain

#: The sidebar's data-set sources: key -> label.
DATA_SOURCES: dict[str, str] = {
    "synth": "Embedded SynthBallroom",
    "ballroom": "Ballroom folder",
    "folder": "Folder per class",
}

_SESSION_KEY = "tfcnn_data"
# The folder of the last choice that could be read: what the pages show after a refused one.
_ACTIVE_KEY = "tfcnn_data_active"
# Widget keys of the chooser (their values are copied into _SESSION_KEY on change).
_SOURCE_WIDGET = "tfcnn_data_source"
_PATH_WIDGET = "tfcnn_data_path"
_SYNTH_WIDGET = "tfcnn_data_synth"


def allowed_roots() -> tuple[Path, ...]:
    """Folders a user may name in the app: ``data/``, the default data set and
    ``$TFCNN_ALLOWED_ROOTS`` (:func:`tfcnn.paths.allowed_roots`)."""
    return paths.allowed_roots(extra=[default_data_dir()])


def data_choice() -> dict:
    """The current data-set choice ``{"source", "path"}`` of this browser session.

    Every session starts from the operator's default (the embedded SynthBallroom at
    ``$TFCNN_DATA_DIR``); a choice is never shared with other sessions.
    """
    if _SESSION_KEY not in st.session_state:
        st.session_state[_SESSION_KEY] = {"source": "synth", "path": ""}
    return st.session_state[_SESSION_KEY]


def _keep_choice() -> None:
    """on_change of the chooser's widgets: their values become the session's choice."""
    choice = data_choice()
    st.session_state[_SESSION_KEY] = {
        **choice,
        "source": st.session_state.get(_SOURCE_WIDGET, choice["source"]),
        "path": st.session_state.get(_PATH_WIDGET, choice["path"]),
    }


def _keep_synth_choice() -> None:
    """on_change of the scenario picker: the picked SynthBallroom set becomes the choice."""
    st.session_state[_SESSION_KEY] = {**data_choice(), "synth": st.session_state[_SYNTH_WIDGET]}


def chosen_data_dir(choice: dict | None = None) -> Path | None:
    """Folder of the chosen data set, or None when a custom path is not given yet."""
    choice = choice or data_choice()
    if choice["source"] == "synth":  # a set picked among synth_sets(), else the default
        return Path(choice["synth"]) if choice.get("synth") else default_data_dir()
    path = choice["path"].strip()
    return Path(path) if path else None


def serves_this_machine_only() -> bool:
    """Whether the app listens on the loopback interface and has no password: its user is
    then the operator, and a refused folder may say why (:func:`tfcnn.paths.folder_refusal`)."""
    return is_loopback(st.get_option("server.address")) and not os.environ.get(ENV_PASSWORD)


#: Characters Streamlit's Markdown may read as markup (CommonMark lets each be escaped).
def _refused(chosen: Path, exc: TfcnnError) -> Path:
    """Say on the page that ``chosen`` was refused and which data set stays active; return it."""
    st.error(plain(str(exc)))
    active = Path(st.session_state.get(_ACTIVE_KEY) or default_data_dir())
    try:
        name = f"{_cached_dataset(str(active), _stamp(active)).name} at {active}"
    except TfcnnError:
        name = str(active)
    st.info(plain(f"The active data set did not change: {name}."))
    return active


def data_sidebar() -> Path | None:
    """Render the data-set chooser in the sidebar; return the active data set's folder.

    Every page calls this first, so the choice is visible and editable everywhere; it is
    kept in this session's state only. The widgets have keys and copy their values into the
    choice in their ``on_change`` callbacks, so every edit sticks (a widget whose default
    changes between runs would be rebuilt and drop the edit). A folder the user names is read
    here (cached): when it is refused or unreadable the page says so, names the data set
    that stays active, and that folder is returned. Returns None when a custom source is
    chosen but its folder is not given yet.
    """
    choice = data_choice()
    # The choice is the truth (the callbacks ran before this script run); Streamlit drops a
    # keyed widget's value on a page without that widget, so the widgets restart from it.
    st.session_state[_SOURCE_WIDGET] = choice["source"]
    st.session_state[_PATH_WIDGET] = choice["path"]
    with st.sidebar:
        st.header("Data set")
        source = st.radio("Source", list(DATA_SOURCES), key=_SOURCE_WIDGET,
                          format_func=DATA_SOURCES.get, on_change=_keep_choice)
        if source == "synth":
            sets = {str(s.path): f"{s.scenario} ({s.n_tracks} tracks)"
                    for s in synth_sets(default_data_dir().parent)}
            if len(sets) > 1:  # scenarios generated beside the default set (Data page)
                st.session_state[_SYNTH_WIDGET] = (choice.get("synth") if choice.get("synth")
                                                   in sets else next(iter(sets)))
                st.selectbox("Scenario", list(sets), key=_SYNTH_WIDGET, format_func=sets.get,
                             on_change=_keep_synth_choice)
            st.caption(f"`{chosen_data_dir()}`")
        else:
            st.text_input(
                "Folder", key=_PATH_WIDGET, on_change=_keep_choice,
                placeholder="/data/BallroomData" if source == "ballroom" else "/data/my-genres",
                help="Ballroom: the archive's BallroomData/ folder or the merged 8-folder "
                     "layout. Folder per class: one sub-folder of audio files per class. "
                     "Only folders inside the operator's allowed folders can be used.")
    chosen = chosen_data_dir()
    if chosen is not None and source != "synth":
        try:
            load_dataset_cached(chosen)
        except TfcnnError as exc:
            return _refused(chosen, exc)
    if chosen is not None:
        st.session_state[_ACTIVE_KEY] = str(chosen)
    return chosen


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
    # every track, not only the folder, must resolve inside the allowed roots
    return load_dataset(path, roots=allowed_roots())


def load_dataset_cached(path: str | os.PathLike) -> Dataset:
    """:func:`tfcnn.datasets.load_dataset`, cached until the folder's content changes.

    Raises :class:`tfcnn.errors.AccessError` when the folder is not inside
    :func:`allowed_roots`: one message for every such path when the app is exposed, the
    reason and the allowed folders when it serves this machine only
    (:func:`tfcnn.paths.folder_refusal`).
    """
    roots = allowed_roots()
    try:
        path = paths.confine_dir(path, roots)
    except AccessError:
        raise AccessError(paths.folder_refusal(
            path, roots, private=serves_this_machine_only())) from None
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
    if not path.exists() and (data_choice()["source"] == "synth" or path == default_data_dir()):
        st.info(f"The embedded SynthBallroom is not generated yet at {code(path)}. Create it "
                f"with `make data` or {code(f'python -m tfcnn synth {path}')} (a few minutes).")
        st.stop()
    try:
        return load_dataset_cached(path)
    except TfcnnError as exc:
        st.error(plain(str(exc)))
        st.stop()
