"""Home: the paper in brief, the four architectures, the pages, the active data set."""

import streamlit as st

from tfcnn.synth import WHAT_SYNTH_SHOWS
from tfcnn.ui import access
from tfcnn.ui.architectures import TIMEFREQ_DOT, architecture_table
from tfcnn.ui.data_views import cache_progress, class_counts
from tfcnn.ui.pages import PAGES
from tfcnn.ui.sidebar import active_dataset
from tfcnn.ui.text import code, plain

access.require_access()
st.title("Musically motivated CNNs for Ballroom dance classification")
st.markdown(
    "A reproduction of Pons, Lidy & Serra (2016), *Experimenting with musically motivated "
    "convolutional neural networks*. Instead of a black-box CNN with square-ish filters, the "
    "paper designs filters from musical knowledge: **1×60 temporal filters**, meant for "
    "temporal cues such as tempo and rhythm, and **32×1 frequency filters**, meant for "
    "spectral cues such as timbre. That is a design intention, not a guarantee: a temporal "
    "filter also sees how a sound starts and fades, which is part of its timbre (in the "
    "SynthBallroom lab's `timbre` scenario, where only the sounds differ between dances, Time "
    "still recognises 70 % of the Tango tracks). On Ballroom the "
    "paper reports **Time-Frequency** at 86.54 ± 4.29 % against Black-box's 87.25 ± 3.39 % "
    "(10 folds) with **16× fewer parameters**, and the 7k-parameter Time model at 81.79 %. "
    "The paper gives no test of whether the first two differ; tfcnn's Results page compares "
    "runs with an interval and an equivalence test."
)

st.subheader("The four architectures")
# A static table wraps its cells: every layer sequence reads in full at any window width.
st.table(architecture_table().set_index("architecture").style.format(
    {"#params": "{:,}", "paper #params": "{:,}"}))
st.caption("Input: a 40-band log-mel patch of 80 frames (1.86 s). #params are counted on the "
           "models built by `tfcnn.models` for 8 classes; accuracies are the paper's 10-fold "
           "results on Ballroom.")
st.markdown("**Time-Frequency** (paper Fig. 1): the temporal branch pools over all bands, "
            "so it responds to a time course wherever it lies in frequency (tempo, rhythm, "
            "but also a note's attack and decay); the frequency branch pools over all frames, "
            "so it responds to a spectral shape whenever it occurs (timbre, pitch). Which cue "
            "each architecture actually follows is measured on the Results page "
            "(SynthBallroom lab: cues in conflict).")
st.graphviz_chart(TIMEFREQ_DOT, width="stretch")

st.subheader("Pages")
cols = st.columns(len(PAGES) - 1)
for col, p in zip(cols, PAGES[1:]):
    col.page_link(p.path, label=p.title, icon=p.icon)

st.subheader("Active data set")
dataset = active_dataset()
n_cached, n_total = cache_progress(dataset)
cols = st.columns([2, 1, 1, 1.4])
cols[0].metric("Data set", dataset.name)
cols[1].metric("Tracks", dataset.n_tracks)
cols[2].metric("Classes", len(dataset.classes))
cols[3].metric("Features cached", f"{n_cached} / {n_total}")
st.caption(f"{code(dataset.root)} ({dataset.kind} layout)")
st.table(class_counts(dataset).set_index("class").T)
for remark in dataset.report:
    st.warning(plain(remark))
if dataset.kind == "synth":
    st.info(WHAT_SYNTH_SHOWS)
