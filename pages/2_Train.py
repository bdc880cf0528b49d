"""Train: launch `python -m tfcnn train` subprocesses and follow them live from the run folders.

Training never runs inside the page (it would block every rerun): each Launch queues one
subprocess writing ``runs/<id>/``; the fragment below re-reads those folders every 2 s, so
runs survive a browser reload and an app restart.
"""

import streamlit as st

from tfcnn import plots
from tfcnn.banded import cpu_has_native_bf16
from tfcnn.config import ARCHS, MAX_EPOCHS, PRESETS, PROTOCOLS
from tfcnn.errors import TfcnnError
from tfcnn.locations import runs_root
from tfcnn.request import RunRequest
from tfcnn.ui import access, architectures, run_control, sidebar
from tfcnn.ui import sweep as sweep_ui
from tfcnn.ui.text import code, plain

access.require_access()
st.title("Train")

dataset = sidebar.active_dataset()
STATUS_ICONS = {"queued": ":gray[:material/schedule:]", "running": ":blue[:material/sync:]",
                "starting": ":blue[:material/start:]",
                "finished": ":green[:material/check_circle:]", "failed": ":red[:material/error:]",
                "cancelled": ":gray[:material/stop_circle:]",
                "interrupted": ":orange[:material/warning:]"}

with st.sidebar:
    st.header("Training")
    arch = st.selectbox("Architecture", ARCHS, index=ARCHS.index("time"),
                        help="One run per Launch. timefreq-init: Time-Frequency whose "
                             "branches start from the trained Time and Frequency models of "
                             "the same fold.")
    shapes = architectures.filter_controls(arch, n_classes=len(dataset.classes))
    frames_per_beat = architectures.frames_per_beat_control()
    n_folds = st.number_input("Folds", min_value=2, max_value=10, value=10,
                              help="The paper uses 10-fold cross-validation (80/10/10).")
    preset = st.selectbox("Preset", list(PRESETS), index=list(PRESETS).index("quick"),
                          help="paper: the original schedule (up to 2000 epochs); quick: the "
                               "same rules with few epochs, for CPUs and demos.")
    protocol = st.selectbox("Protocol", PROTOCOLS,
                            help="clean: stratified song-level folds, replica groups kept "
                                 "together, normalisation on training songs only. paper: as "
                                 "the original code.")
    cuda = run_control.cuda_available()
    device = st.selectbox("Device", run_control.device_options(),
                          help="Only the devices this machine has.")
    st.caption("CUDA GPU: **available**" if cuda else "CUDA GPU: not available (CPU training)")
    amp = st.checkbox("AMP (bfloat16)", value=False,
                      help="Faster, with bfloat16 rounding: autocast on CUDA, and the "
                           "fold-parallel kernel's products on CPUs with native bf16. "
                           + ("It pays on this machine." if cuda or cpu_has_native_bf16() else
                              "No effect on this machine (no CUDA GPU, no native bf16)."))
    seed = st.number_input("Seed", min_value=0, value=0)
    epochs = st.number_input("Max epochs (0 = preset's)", min_value=0,
                             max_value=MAX_EPOCHS, value=0,
                             help=f"quick: {PRESETS['quick'].max_epochs}, paper: "
                                  f"{PRESETS['paper'].max_epochs}")
# The sidebar's settings as a request (the paper's filters); the run adds the chosen shapes
# and patch width.
recipe = RunRequest(dataset.root, arch, n_folds=int(n_folds), preset=preset, protocol=protocol,
                    device=device, seed=int(seed), epochs=int(epochs) or None, amp=amp,
                    frames_per_beat=frames_per_beat)
request = recipe.replace(**shapes.arch_params) if shapes.error is None else None
sweep_ui.sweep_launcher(recipe, arch_choices=ARCHS)

st.markdown(
    "Each architecture is cross-validated in its own background process (`python -m tfcnn "
    "train`): song-level folds, SGD with the paper's learning-rate schedule, the model with the "
    "best validation accuracy kept per fold, and the song label decided by a majority vote "
    "over its 1.86 s patches (paper §2). Progress is read from the run folders, so runs keep "
    "going when you close the page and show up again after a restart.")
st.caption(f"Data set: **{plain(dataset.name)}** · {dataset.n_tracks} tracks · runs in "
           f"{code(runs_root())}")
# Launch beside the estimate it depends on (the settings are in the sidebar).
estimate, button = st.columns([5, 1], vertical_alignment="center")
launch = button.button("Launch", key="launch", type="primary", disabled=request is None,
                       help="Queue one `python -m tfcnn train` run with the sidebar's "
                            "settings and this estimate")
if request is not None:
    try:
        estimate.caption("Estimated: " + run_control.estimate_text(request,
                                                                   runs=str(runs_root())))
    except TfcnnError as exc:
        estimate.warning(f"No estimate: {exc}")
if launch and request is not None:
    try:
        run_dir = run_control.launch_training(request)
        st.toast(f"Queued {run_dir.name}")
    except TfcnnError as exc:
        st.error(str(exc))


@st.fragment(run_every=2)
def show_runs() -> None:
    folders = run_control.run_folders()
    if not folders:
        st.info("No runs yet: choose an architecture in the sidebar and press Launch.")
        return
    show_all = st.toggle(f"Show all {len(folders)} runs", value=False) if len(folders) > 6 \
        else True
    for i, folder in enumerate(folders if show_all else folders[:6]):
        try:
            view = run_control.run_view(folder)
        except TfcnnError as exc:
            st.error(str(exc))
            continue
        with st.container(border=True):
            head, action = st.columns([5, 1])
            done = sum(1 for f in view.fold_progress.values() if f >= 1.0)
            eta = run_control.eta_text(view)
            head.markdown(f"{STATUS_ICONS.get(view.status, '')} **{plain(view.name)}** · "
                          f"{view.arch} · `{view.status}` · {done}/{view.n_folds} folds"
                          + (f" · accuracy {view.mean:.2f} ± {view.std:.2f} %"
                             if view.mean is not None and view.std is not None else "")
                          + (f" · {eta}" if eta else ""))
            head.caption(plain(run_control.settings_text(view)))
            run_control.run_actions(view, action)
            if view.status == "queued":
                st.caption("Waiting for a free training slot (the operator allows "
                           f"{run_control.max_concurrent_runs()} at a time).")
            if view.error:
                st.error(view.error)
            if run_control.resumable(view):
                st.caption("Complete folds are kept; **Resume** runs "
                           f"`{run_control.resume_caption(view.path)}`")
            if view.status == "running" and view.features and \
                    view.features[0] < view.features[1]:
                st.progress(view.features[0] / max(view.features[1], 1),
                            text=f"log-mel features {view.features[0]}/{view.features[1]}")
            if view.status in ("running", "starting", "failed"):
                cols = st.columns(min(5, max(view.n_folds, 1)))
                for fold, frac in view.fold_progress.items():
                    cols[fold % len(cols)].progress(frac, text=f"fold {fold}")
            if not view.history.empty:
                with st.expander("Loss and accuracy",
                                 expanded=view.status == "running" or i == 0):
                    st.plotly_chart(plots.training_curves(view.history),
                                    key=f"curves-{view.name}")
            if view.status == "failed" and view.log_tail:
                st.code(view.log_tail, language=None)


st.subheader("Runs")
show_runs()
run_control.archived_runs()
sweep_ui.sweep_monitor()
