"""Predict: classify uploads, a microphone recording, a data-set track or a file on this machine
with a shipped or trained model: calibrated confidence, unsure state, tempo beside the classes' ranges."""

import streamlit as st

from tfcnn import locations, plots
from tfcnn.checkpoint import describe_provenance
from tfcnn.config import FRONT_END
from tfcnn.errors import TfcnnError
from tfcnn.ui import access, calibration_view, predict, sidebar
from tfcnn.ui import assessment as views
from tfcnn.ui.text import plain

access.require_access()
st.title("Predict the dance of a track")
data_dir = sidebar.data_sidebar()

SOURCES = ("Upload files", "Record from the microphone", "A track of the data set",
           "A file on this machine")
with st.sidebar:
    st.header("Prediction")
    source = st.radio("Audio", SOURCES)
# The model in the page's width, so its whole name shows; what it learnt before any upload.
choice = st.selectbox("Model", predict.list_checkpoints(), key="model",
                      format_func=lambda c: views.checkpoint_label(c.path),
                      help="architecture · where it comes from · fold · its test accuracy · "
                           "whether its confidence is calibrated. Run folds come from the "
                           "Train page.")
if choice is None:
    st.info("No model yet: train one on the Train page or create the shipped ones with "
            "`make checkpoints`.")
    st.stop()
checkpoint = predict.load_checkpoint_cached(choice.path)
st.info(f"This model: {plain(describe_provenance(checkpoint.provenance))}. It knows only what it "
        "learnt there: audio unlike that data set gets a guess among its classes.")

audio = []  # (bytes or path, name) of each track to classify
track_id = None  # a data-set track's id, to say whether the model saw it
if source == SOURCES[0]:
    uploads = st.file_uploader(
        f"WAV, FLAC, OGG, MP3 or Opus; any sample rate and channels; at most "
        f"{predict.MAX_UPLOAD_MB} MB and {predict.MAX_DURATION_S / 60:.0f} min each, at least "
        f"{FRONT_END.min_patch_samples / FRONT_END.sample_rate:.2f} s (one patch); several "
        "files at once give a table", type=list(predict.AUDIO_TYPES), accept_multiple_files=True)
    audio = [(u.getvalue(), u.name) for u in uploads or []]
elif source == SOURCES[1]:
    recording = st.audio_input("Record a few seconds (at least "
                               f"{FRONT_END.min_patch_samples / FRONT_END.sample_rate:.1f} s)")
    if recording is not None:
        audio = [(recording.getvalue(), "microphone recording")]
elif source == SOURCES[2]:
    try:
        dataset = sidebar.load_dataset_cached(data_dir) if data_dir else None
    except TfcnnError as exc:
        st.error(str(exc))
        dataset = None
    if dataset is None or dataset.tracks.empty:
        st.info("No data set with tracks is selected in the sidebar.")
    else:
        labels = [f"{row.dance} / {row.track}" for row in dataset.tracks.itertuples()]
        pick = st.selectbox("Track", range(len(labels)), format_func=labels.__getitem__)
        row = dataset.tracks.iloc[pick]
        audio, track_id = [(row["path"], labels[pick])], str(row["track"])
        st.markdown(f"True class: **{plain(row['dance'])}**. "
                    + views.track_role(choice.path, data_dir, track_id))
else:
    path = st.text_input("Path of an audio file", placeholder="/music/track.wav",
                         help="A file inside the data folders the operator allows "
                              "(the project's data/ and TFCNN_ALLOWED_ROOTS).")
    if path.strip():
        audio = [(path.strip(), path.strip())]

if not audio:
    st.info("Choose a track to classify.")
    st.stop()

results = []
for source_item, label in audio:
    try:
        data, name = predict.read_audio_source(source_item, name=label)
    except TfcnnError as exc:
        results.append(views.FileResult(label, error=str(exc)))
        continue
    results.append(views.classify(data, name, checkpoint,
                                  max_duration_s=predict.MAX_DURATION_S))

if len(results) > 1:
    table = views.results_table(results)
    st.dataframe(views.shown_table(table), hide_index=True, column_config=views.SHOWN_COLUMNS)
    st.download_button("Download the table (CSV)", views.results_csv(table),
                       file_name="predictions.csv", mime="text/csv")
    shown = st.selectbox("Details of", range(len(results)),
                         format_func=lambda i: results[i].name)
    result = results[shown]
else:
    result = results[0]

if result.error is not None:
    st.error(result.error)
    st.stop()

pred, assessment, signal = result.prediction, result.assessment, result.signal
n_patches = pred.n_patches
votes = int((pred.patch_probs.argmax(axis=1) == pred.index).sum())
left, right = st.columns(2)
if assessment.unsure:
    left.warning(f"Unsure: **{plain(pred.prediction)}** at {assessment.confidence:.0%} "
                 f"({', '.join(assessment.reasons)}: {assessment.why()})")
else:
    left.success(f"Predicted dance: **{plain(pred.prediction)}** "
                 f"({assessment.confidence:.0%}; {assessment.why()})")
right.caption(calibration_view.model_line(
    choice.path, shipped_file=locations.checkpoints_dir() / locations.SHIPPED_RELIABILITY))
st.caption(f"Rule: {assessment.rule()}.")
cols = st.columns(5)
cols[0].metric("Prediction", pred.prediction)
cols[1].metric("Confidence", f"{assessment.confidence:.0%}",
               help="calibrated probability of the predicted class"
               if assessment.calibration.calibrated else "uncalibrated model: mean probability")
cols[2].metric("Patch votes", f"{votes} / {n_patches}")
cols[3].metric("Tempo (BPM)", f"{assessment.tempo.bpm:.0f}",
               help=f"beat strength {assessment.tempo.strength:.2f}"
               + (f" (unsure below {assessment.calibration.beat_threshold:.2f})"
                  if assessment.calibration.beat_threshold is not None else ""))
cols[4].metric("Computed in", f"{result.seconds * 1000:.0f} ms")
st.caption(f"{plain(result.name)} · {signal.shape[0] / FRONT_END.sample_rate:.1f} s · majority vote "
           f"over {n_patches} non-overlapping {pred.patch_seconds:.2f} s patches (paper §2)")
st.audio(predict.wav_bytes(signal), format="audio/wav")

left, right = st.columns([2, 3])
left.plotly_chart(plots.class_probability_bar(
    assessment.probabilities, pred.classes, predicted=pred.prediction,
    axis_title="calibrated probability" if assessment.calibration.calibrated
    else "mean patch probability (uncalibrated)"))
right.plotly_chart(plots.patch_timeline(pred.patch_probs, pred.classes,
                                        patch_seconds=pred.patch_seconds))
ranges = views.ballroom_tempo_ranges()
st.markdown(views.tempo_sentence(assessment, pred.prediction, ranges))
st.plotly_chart(plots.tempo_ranges(ranges, tempo_bpm=assessment.tempo.bpm,
                                   classes=pred.classes))
st.plotly_chart(plots.log_mel_heatmap(pred.log_mel, title="Log-mel input (dotted: patches)"))
