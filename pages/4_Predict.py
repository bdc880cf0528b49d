"""Predict: classify an uploaded track (or one of the data set) with a shipped or trained model."""

import time

import streamlit as st

from tfcnn import appstate, plots
from tfcnn.checkpoint import describe_provenance
from tfcnn.config import FRONT_END
from tfcnn.errors import TfcnnError

st.set_page_config(page_title="tfcnn · Predict", page_icon="🔮", layout="wide")
st.title("Predict the dance of a track")
data_dir = appstate.data_sidebar()

SOURCES = ("Upload a file", "A track of the data set", "A file on this machine")
with st.sidebar:
    st.header("Prediction")
    checkpoints = appstate.list_checkpoints()
    choice = st.selectbox("Model", checkpoints, format_func=lambda c: c.label,
                          help="Shipped models are trained on SynthBallroom (synthetic data); "
                               "run folds come from the Train page.")
    source = st.radio("Audio", SOURCES)

if choice is None:
    st.info("No model yet: train one on the Train page or create the shipped ones with "
            "`make checkpoints`.")
    st.stop()

audio = None  # (bytes, name) of the track to classify
if source == SOURCES[0]:
    upload = st.file_uploader(
        f"WAV, FLAC, OGG, MP3 or Opus; any sample rate and channels; at most "
        f"{appstate.MAX_UPLOAD_MB} MB and {appstate.MAX_DURATION_S / 60:.0f} min, at least "
        f"{FRONT_END.min_patch_samples / FRONT_END.sample_rate:.2f} s (one patch)",
        type=list(appstate.AUDIO_TYPES))
    if upload is not None:
        audio = (upload.getvalue(), upload.name)
elif source == SOURCES[1]:
    try:
        dataset = appstate.load_dataset_cached(data_dir) if data_dir else None
    except TfcnnError as exc:
        st.error(str(exc))
        dataset = None
    if dataset is None or dataset.tracks.empty:
        st.info("No data set with tracks is selected in the sidebar.")
    else:
        labels = [f"{row.dance} / {row.track}" for row in dataset.tracks.itertuples()]
        pick = st.selectbox("Track", range(len(labels)), format_func=labels.__getitem__)
        audio = (dataset.tracks.iloc[pick]["path"], labels[pick])
else:
    path = st.text_input("Path of an audio file", placeholder="/music/track.wav")
    if path.strip():
        audio = (path.strip(), path.strip())

if audio is None:
    st.info("Choose a track to classify.")
    st.stop()

try:
    data, name = appstate.read_audio_source(audio[0], name=audio[1])
    start = time.perf_counter()
    pred, signal = appstate.predict_bytes(data, name=name, checkpoint_path=choice.path)
    elapsed = time.perf_counter() - start
except TfcnnError as exc:
    st.error(str(exc))
    st.stop()

n_patches = pred.patch_probs.shape[0]
votes = int((pred.patch_probs.argmax(axis=1) == list(pred.classes).index(pred.prediction)).sum())
left, right = st.columns(2)
left.success(f"Predicted dance: **{pred.prediction}**")
right.info(f"Model: {describe_provenance(pred.model)}")
cols = st.columns(4)
cols[0].metric("Prediction", pred.prediction)
cols[1].metric("Patch votes", f"{votes} / {n_patches}")
cols[2].metric("Duration", f"{signal.shape[0] / appstate.FRONT_END.sample_rate:.1f} s")
cols[3].metric("Computed in", f"{elapsed * 1000:.0f} ms")
st.caption(f"{name} · model: {choice.label} · majority vote over {n_patches} "
           f"non-overlapping {pred.patch_seconds:.2f} s patches (paper §2)")
st.audio(appstate.wav_bytes(signal), format="audio/wav")

left, right = st.columns([2, 3])
left.plotly_chart(plots.class_probability_bar(pred.probabilities, pred.classes,
                                              predicted=pred.prediction))
right.plotly_chart(plots.patch_timeline(pred.patch_probs, pred.classes,
                                        patch_seconds=pred.patch_seconds))
st.plotly_chart(plots.log_mel_heatmap(pred.log_mel, title="Log-mel input (dotted: patches)"))
