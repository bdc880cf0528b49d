"""Filters: do the 1×60 temporal filters learn tempo? (Pons et al. 2016, §3)."""

from pathlib import Path

import streamlit as st

from tfcnn import interpret
from tfcnn.errors import TfcnnError
from tfcnn.interpret import plots as iplots
from tfcnn.interpret import report
from tfcnn.interpret.growth import run_with_snapshots
from tfcnn.interpret.stretch import stretch_counterfactual
from tfcnn.ui import access, predict, sidebar
from tfcnn.ui.text import plain

access.require_access()
st.title("Do the temporal filters learn tempo?")
st.caption("A 1×60 filter spans 60 frames ≈ 1.39 s: one beat at 60 BPM, about five at 224 BPM "
           "(Pons et al. 2016, §3). Each filter is tested for periodic structure beyond noise "
           "as smooth as itself; click and drum (4/4) and waltz (3/4) probes at every tempo "
           "test whether periodic filters respond at their own tempo.")
data_dir = sidebar.data_sidebar()

choices = predict.list_checkpoints()
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
    functional = st.toggle("Ask the model: tempo counterfactual and filter ablation",
                           help="Fresh SynthBallroom tracks re-rendered at every class tempo; "
                                "about a minute the first time, then cached by checkpoint.")
path = choices[labels.index(label)].path


@st.cache_data(show_spinner="Measuring the filters and running the probes…", max_entries=8)
def study(path: str, stamp: float, tempi_dir: str | None, functional: bool):
    tempi, name, note = interpret.tempi_for(tempi_dir)
    return interpret.cached_study(path, tempi=tempi, ranges_name=name,
                                  functional=functional), note


@st.cache_data(show_spinner="Studying every training snapshot…", max_entries=4)
def growth(run_dir: str, tempi_dir: str | None):
    tempi, name, _ = interpret.tempi_for(tempi_dir)
    return interpret.growth_table(run_dir, tempi=tempi, ranges_name=name)


tempi_dir = str(data_dir) if tempi_key == "data" and data_dir and Path(data_dir).exists() else None
if tempi_key == "data" and tempi_dir is None:
    st.warning("The chosen data set is not available; using the real Ballroom tempi.")
try:
    result, note = study(str(path), path.stat().st_mtime, tempi_dir, functional)
except (TfcnnError, OSError) as exc:
    st.error(str(exc))
    st.stop()
if note:
    st.warning(note)

st.subheader("Verdict")
st.info("\n\n".join(report.study_text(result)))
if result.verdict is not None and result.verdict.power:
    st.plotly_chart(iplots.power_figure(result.verdict.power))
if result.functional is not None and result.functional.counterfactual is not None:
    st.plotly_chart(iplots.counterfactual_figure(result.functional.counterfactual,
                                                 result.classes))

#: Uploads the stretch counterfactual takes at once (each is stretched to ~8 tempi).
MAX_STRETCH_TRACKS = 4

with st.expander("Your own tracks: does the prediction follow their tempo when stretched?"):
    st.caption("Each track is time-stretched (pitch kept: its log-mel resampled in time) from "
               "its estimated tempo to every class's median tempo within a factor of 2, and "
               "predicted; the test is the counterfactual's above. At most "
               f"{MAX_STRETCH_TRACKS} files, {predict.MAX_UPLOAD_MB} MB and "
               f"{predict.MAX_DURATION_S / 60:.0f} min each.")
    uploads = st.file_uploader("Tracks to stretch", type=list(predict.AUDIO_TYPES),
                               accept_multiple_files=True, key="stretch_uploads")
    if uploads:
        try:
            checkpoint = predict.load_checkpoint_cached(path)
            specs, names = predict.uploaded_log_mels(
                [(u.getvalue(), u.name) for u in uploads[:MAX_STRETCH_TRACKS]], checkpoint)
            cf = stretch_counterfactual(checkpoint, specs, names, result.ranges)
        except TfcnnError as exc:
            st.error(plain(str(exc)))
        else:
            st.info(plain(report.stretch_line(cf)))
            st.plotly_chart(iplots.counterfactual_figure(cf, result.classes))
            st.dataframe(cf.renders, hide_index=True)

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
           "periodic beyond equally smooth noise (the verdict's test, FDR q = "
           f"{result.verdict.q:g}); titles give each filter's tempo (* = periodic).")
left, right = st.columns(2)
left.plotly_chart(iplots.filters_over_time(
    result.filters["temporal"], frame_rate_hz=result.frame_rate, grid_bpm=grid_bpm,
    table=result.table, n_cols=4, title=f"Trained ({result.arch})"))
right.plotly_chart(iplots.filters_over_time(
    result.baseline.example, frame_rate_hz=result.frame_rate, grid_bpm=grid_bpm,
    n_cols=4, title="Untrained (random init, seed 0)"))
st.plotly_chart(iplots.baseline_strengths(result.table, result.baseline))

st.subheader("Which tempi?")
st.plotly_chart(iplots.periodicity_heatmap(*result.heatmap, table=result.table))
st.plotly_chart(iplots.dominant_bpm_histogram(
    result.table, result.tempi, classes=result.classes, baseline=result.baseline,
    tempi_name=result.ranges_name))

if result.probes is not None:
    st.subheader("Probes: clicks and drums in 4/4, waltz in 3/4, at 60-224 BPM")
    left, right = st.columns(2)
    left.plotly_chart(iplots.tuning_curves(result.probes, table=result.table))
    right.plotly_chart(iplots.tempo_class_map(result.probes, result.ranges,
                                              ranges_name=result.ranges_name))

st.subheader("Per filter")
st.dataframe(report.readable_table(result.table), hide_index=True)
st.caption("Tempo: the score's peak and its half-power interval (a 60-frame window resolves "
           "about 43 BPM). Periodicity strength: 0 = a typical white-noise filter, 1 = "
           "perfectly periodic; '-' where the strength is 0 or the peak sits at an end of "
           "60-224 BPM (a slow wave, not a tempo). p: likelihood ratio of a periodic pattern "
           "against smooth noise (each averaged over its family), read from simulated null "
           "tables; q: "
           "Benjamini-Hochberg over the filters. Tuned: the strongest probe response lies "
           "in the tempo interval, or half or double it.")

run_dir = run_with_snapshots(path)
if run_dir is not None and st.toggle("Growth over the run's training snapshots"):
    st.subheader("Does it grow with training?")
    try:
        table = growth(str(run_dir), tempi_dir)
    except TfcnnError as exc:
        st.error(str(exc))
        st.stop()
    st.plotly_chart(iplots.growth_figure(table))
    st.dataframe(table.drop(columns="path"), hide_index=True)
