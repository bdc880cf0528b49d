"""Filters: do the 1×60 temporal filters learn tempo? (Pons et al. 2016, §3)."""

from pathlib import Path

import streamlit as st

from tfcnn import appstate, interpret
from tfcnn import interpret_plots as iplots
from tfcnn.errors import TfcnnError
from tfcnn.ui import access

st.set_page_config(page_title="tfcnn · Filters", page_icon="🥁", layout="wide")
access.require_access()
st.title("Do the temporal filters learn tempo?")
st.caption("A 1×60 filter spans 60 frames ≈ 1.39 s: one beat at 60 BPM, about five at 224 BPM "
           "(Pons et al. 2016, §3). Each filter's weights are tested for a beat period and "
           "compared with untrained filters of the same shape; click and drum probes at every "
           "tempo show what the model does with tempo alone.")
data_dir = appstate.data_sidebar()

choices = appstate.list_checkpoints()
if not choices:
    st.info("No model yet: shipped checkpoints appear in `checkpoints/`, trained folds under "
            "`runs/` (train one on the Train page).")
    st.stop()
labels = [c.label for c in choices]
preferred = next((i for i, c in enumerate(choices) if c.path.stem.endswith("-time")), 0)
TEMPI = {"ballroom": "Real Ballroom (shipped track table)",
         "data": "Chosen data set (its annotated tempi; SynthBallroom: exact)"}
with st.sidebar:
    st.header("Model")
    label = st.selectbox("Checkpoint", labels, index=preferred)
    tempi_key = st.radio("Class tempi", list(TEMPI), format_func=TEMPI.get)
    grid_bpm = st.slider("Beat grid (BPM)", 60, 224, 120, step=1)
path = choices[labels.index(label)].path


@st.cache_data(show_spinner="Measuring the filters and running the probes…", max_entries=8)
def study(path: str, stamp: float, tempi_dir: str | None):
    tempi, name, note = interpret.tempi_for(tempi_dir)
    return interpret.tempo_study(appstate.load_checkpoint_cached(path), tempi=tempi,
                                 ranges_name=name), note


tempi_dir = str(data_dir) if tempi_key == "data" and data_dir and Path(data_dir).exists() else None
if tempi_key == "data" and tempi_dir is None:
    st.warning("The chosen data set is not available; using the real Ballroom tempi.")
try:
    result, note = study(str(path), path.stat().st_mtime, tempi_dir)
except (TfcnnError, OSError) as exc:
    st.error(str(exc))
    st.stop()
if note:
    st.warning(note)

st.subheader("Verdict")
st.info(result.verdict)

if result.table is None:
    for kind, weights in result.filters.items():
        if weights is not None and kind != "temporal":
            st.plotly_chart(iplots.filter_images(weights, kind=kind))
    if result.probes is not None:
        st.plotly_chart(iplots.tempo_class_map(result.probes, result.ranges,
                                               ranges_name=result.ranges_name))
    st.stop()

st.subheader("The filters over time, trained vs untrained")
st.caption(f"Dotted lines: beats at {grid_bpm} BPM (pick the tempo in the sidebar). Red: "
           "periodic beyond the random 95th percentile; titles give the dominant BPM "
           "(* = significant).")
left, right = st.columns(2)
left.plotly_chart(iplots.filters_over_time(
    result.filters["temporal"], frame_rate_hz=result.frame_rate, grid_bpm=grid_bpm,
    table=result.table, n_cols=4, title=f"Trained ({result.arch})"))
right.plotly_chart(iplots.filters_over_time(
    result.baseline.example, frame_rate_hz=result.frame_rate, grid_bpm=grid_bpm,
    table=result.baseline_table, n_cols=4, title="Untrained (random init, seed 0)"))
st.plotly_chart(iplots.baseline_strengths(result.table, result.baseline))

st.subheader("Which tempi?")
st.plotly_chart(iplots.periodicity_heatmap(*result.heatmap, table=result.table))
st.plotly_chart(iplots.dominant_bpm_histogram(
    result.table, result.tempi, classes=result.classes, baseline=result.baseline,
    tempi_name=result.ranges_name))

if result.probes is not None:
    st.subheader("Probes: click tracks and drum loops at 60-224 BPM")
    left, right = st.columns(2)
    left.plotly_chart(iplots.tuning_curves(result.probes, table=result.table))
    right.plotly_chart(iplots.tempo_class_map(result.probes, result.ranges,
                                              ranges_name=result.ranges_name))

st.subheader("Per filter")
st.dataframe(result.table, hide_index=True)
st.caption("strength: chance-corrected periodicity (0 = typical untrained filter, 1 = perfectly "
           "periodic); p_value: fraction of untrained filters at least as strong; significant: "
           "above the untrained 95th percentile; smoothness: lag-1 correlation; beyond_smooth: "
           "also above the 95th percentile of red noise as smooth as the filter (the stricter "
           "test the verdict's answer uses); candidates: octave-related tempi with strength.")
