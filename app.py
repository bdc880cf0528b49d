"""tfcnn home page: the paper in brief, the four architectures, the active data set.

Run with ``make run`` (or ``streamlit run app.py``). Pages live in ``pages/``; every page
shares the data-set chooser of the sidebar (``tfcnn.appstate.data_sidebar``).
"""

import streamlit as st

from tfcnn import appstate
from tfcnn.errors import TfcnnError
from tfcnn.synth import WHAT_SYNTH_SHOWS
from tfcnn.ui import access

st.set_page_config(page_title="tfcnn: musically motivated CNNs", page_icon="🎼", layout="wide")
access.require_access()

st.title("Musically motivated CNNs for Ballroom dance classification")
st.markdown(
    "A reproduction of Pons, Lidy & Serra (2016), *Experimenting with musically motivated "
    "convolutional neural networks*. Instead of a black-box CNN with square-ish filters, the "
    "paper designs filters from musical knowledge: **1×60 temporal filters** that can only "
    "learn rhythm and **32×1 frequency filters** that can only learn timbre. On Ballroom the "
    "paper reports **Time-Frequency** at 86.54 ± 4.29 % against Black-box's 87.25 ± 3.39 % "
    "(10 folds) with **16× fewer parameters**, and the 7k-parameter Time model at 81.79 %. "
    "The paper gives no test of whether the first two differ; tfcnn's Results page compares "
    "runs with an interval and an equivalence test."
)

st.subheader("The four architectures")
st.dataframe(appstate.architecture_table(), hide_index=True,
             column_config={"#params": st.column_config.NumberColumn(format="localized"),
                            "paper #params": st.column_config.NumberColumn(format="localized"),
                            "layers": st.column_config.TextColumn(width="large")})
st.caption("Input: a 40-band log-mel patch of 80 frames (1.86 s). #params are counted on the "
           "models built by `tfcnn.models` for 8 classes; accuracies are the paper's 10-fold "
           "results on Ballroom.")
st.markdown("**Time-Frequency** (paper Fig. 1): the temporal branch pools over all bands, "
            "so it can only learn temporal cues; the frequency branch pools over all frames, "
            "so it can only learn spectral cues.")
st.graphviz_chart(appstate.TIMEFREQ_DOT, width="stretch")

st.subheader("Active data set")
path = appstate.data_sidebar()
if path is None:
    st.info("Enter the data set's folder in the sidebar.")
else:
    dataset = None
    if not path.exists() and appstate.data_choice()["source"] == "synth":
        st.info(f"The embedded SynthBallroom is not generated yet at `{path}`. Create it with "
                f"`make data` or `python -m tfcnn synth {path}`.")
    else:
        try:
            dataset = appstate.load_dataset_cached(path)
        except TfcnnError as exc:
            st.error(str(exc))
    if dataset is not None:
        n_cached, n_total = appstate.cache_progress(dataset)
        cols = st.columns([2, 1, 1, 1.4])
        cols[0].metric("Data set", dataset.name)
        cols[1].metric("Tracks", dataset.n_tracks)
        cols[2].metric("Classes", len(dataset.classes))
        cols[3].metric("Features cached", f"{n_cached} / {n_total}")
        st.caption(f"`{dataset.root}` ({dataset.kind} layout)")
        st.dataframe(appstate.class_counts(dataset).set_index("class").T,
                     width="stretch")
        for remark in dataset.report:
            st.warning(remark)
        if dataset.kind == "synth":
            st.info(WHAT_SYNTH_SHOWS)

st.subheader("Pages")
cols = st.columns(len(appstate.existing_pages()) - 1)
for col, (page, label, icon) in zip(cols, appstate.existing_pages()[1:]):
    col.page_link(page, label=label, icon=icon)
