"""Data: class counts, tempo per class, a few tracks with their log-mel patches, the cache,
and the SynthBallroom lab (generate a scenario, the sets present)."""

import streamlit as st

from tfcnn import plots
from tfcnn.errors import TfcnnError
from tfcnn.locations import default_data_dir
from tfcnn.ui import access, data_views, lab, sidebar
from tfcnn.ui.text import code, plain

access.require_access()
st.title("Data")

with st.expander("SynthBallroom lab: generate a scenario", expanded=False):
    lab.scenarios_panel(default_data_dir().parent)

dataset = sidebar.active_dataset()
st.caption(f"**{plain(dataset.name)}** ({dataset.kind}) · {code(dataset.root)} · "
           f"{dataset.n_tracks} tracks")
for remark in dataset.report:
    st.warning(plain(remark))

left, right = st.columns(2)
left.plotly_chart(plots.class_counts_bar(dataset.tracks, classes=dataset.classes))
if dataset.tracks["bpm"].notna().any():
    right.plotly_chart(plots.tempo_box(dataset.tracks, classes=dataset.classes))
    source = {"synth": "exact tempo of each generated track (metadata.csv)",
              "ballroom": "tempo from the annotated beats of the shipped track table"}
    right.caption(f"Tempo: {source.get(dataset.kind, 'from the data set')}. The paper notes "
                  "that Ballroom classes are highly correlated with tempo (§2).")
else:
    right.info("No tempo is known for this folder-per-class data set.")

st.subheader("Feature cache")
n_cached, n_total = data_views.cache_progress(dataset)
st.progress(n_cached / max(n_total, 1), text=f"{n_cached} / {n_total} tracks have cached "
                                             "log-mel features")
if n_cached < n_total and st.button("Build the feature cache", type="primary"):
    bar = st.progress(0.0, text="computing log-mel features…")
    try:
        data_views.build_cache(dataset, lambda done, total: bar.progress(
            done / max(total, 1), text=f"computing log-mel features: {done} / {total}"))
        st.success("Feature cache complete.")
        st.rerun()
    except TfcnnError as exc:
        st.error(plain(str(exc)))

st.subheader("Listen")
with st.sidebar:
    st.header("Tracks")
    dance = st.selectbox("Class", dataset.classes)
    n_show = st.slider("Tracks to show", 1, 5, 2)
rows = dataset.tracks[dataset.tracks["dance"] == dance].head(n_show)
if rows.empty:
    st.info(f"No tracks of class {plain(dance)}.")
for row in rows.itertuples():
    bpm = "" if row.bpm != row.bpm else f" · {row.bpm:.1f} BPM"  # NaN != NaN
    st.markdown(f"**{plain(row.track)}** ({plain(row.dance)}{bpm})")
    unplayable = data_views.playable(row.path)
    if unplayable:
        st.warning(plain(unplayable))
        continue
    st.audio(row.path)
    try:
        spec = data_views.track_log_mel(row.path)
        st.plotly_chart(plots.log_mel_heatmap(spec, title="Log-mel (dotted: 80-frame patches)"),
                        key=f"mel-{row.track}")
    except TfcnnError as exc:
        st.error(plain(str(exc)))
