"""Train: launch `python -m tfcnn train` subprocesses and follow them live from the run folders.

Training never runs inside the page (it would block every rerun, STYLE.md): each
architecture is one subprocess writing ``runs/<id>/``; the fragment below re-reads those
folders every 2 s, so runs survive a browser reload and an app restart.
"""

import streamlit as st

from tfcnn import appstate, plots
from tfcnn.config import PRESETS
from tfcnn.errors import TfcnnError
from tfcnn.parallel import cpu_has_native_bf16
from tfcnn.ui import access
from tfcnn.ui import sweep as sweep_ui

st.set_page_config(page_title="tfcnn · Train", page_icon="🏋️", layout="wide")
access.require_access()
st.title("Train")

dataset = appstate.active_dataset()
STATUS_ICONS = {"queued": ":gray[:material/schedule:]", "running": ":blue[:material/sync:]", "starting": ":blue[:material/start:]",
                "finished": ":green[:material/check_circle:]", "failed": ":red[:material/error:]",
                "cancelled": ":gray[:material/stop_circle:]",
                "interrupted": ":orange[:material/warning:]"}

with st.sidebar:
    st.header("Training")
    archs = st.multiselect("Architectures", appstate.TRAINABLE_ARCHS, default=["time"],
                           help="timefreq-init: Time-Frequency whose branches start from the "
                                "trained Time and Frequency models of the same fold.")
    n_folds = st.number_input("Folds", min_value=2, max_value=10, value=10,
                              help="The paper uses 10-fold cross-validation (80/10/10).")
    preset = st.selectbox("Preset", list(PRESETS), index=list(PRESETS).index("quick"),
                          help="paper: the original schedule (up to 2000 epochs); quick: the "
                               "same rules with few epochs, for CPUs and demos.")
    protocol = st.selectbox("Protocol", ["clean", "paper"],
                            help="clean: stratified song-level folds, replica groups kept "
                                 "together, normalisation on training songs only. paper: as "
                                 "the original code.")
    cuda = appstate.cuda_available()
    device = st.selectbox("Device", appstate.device_options(),
                          help="Only the devices this machine has.")
    st.caption("CUDA GPU: **available**" if cuda else "CUDA GPU: not available (CPU training)")
    amp = st.checkbox("AMP (bfloat16)", value=False,
                      help="Faster, with bfloat16 rounding: autocast on CUDA, and the "
                           "fold-parallel kernel's products on CPUs with native bf16. "
                           + ("It pays on this machine." if cuda or cpu_has_native_bf16() else
                              "No effect on this machine (no CUDA GPU, no native bf16)."))
    seed = st.number_input("Seed", min_value=0, value=0)
    epochs = st.number_input("Max epochs (0 = preset's)", min_value=0,
                             max_value=appstate.MAX_EPOCHS_UI, value=0,
                             help=f"quick: {PRESETS['quick'].max_epochs}, paper: "
                                  f"{PRESETS['paper'].max_epochs}")
    launch = st.button("Launch", type="primary", disabled=not archs)
sweep_ui.sweep_launcher(dataset.root, arch_choices=appstate.TRAINABLE_ARCHS,
                        n_folds=int(n_folds), preset=preset, protocol=protocol,
                        device=device, epochs=int(epochs) or None, amp=amp)

st.markdown(
    "Each architecture is cross-validated in its own background process (`python -m tfcnn "
    "train`): song-level folds, SGD with the paper's learning-rate schedule, the model with the "
    "best validation accuracy kept per fold, and the song label decided by a majority vote "
    "over its 1.86 s patches (paper §2). Progress is read from the run folders, so runs keep "
    "going when you close the page and show up again after a restart.")
st.caption(f"Data set: **{dataset.name}** · {dataset.n_tracks} tracks · runs in "
           f"`{appstate.runs_root()}`")
if launch:
    for arch in archs:
        try:
            run_dir = appstate.launch_training(
                dataset.root, arch=arch, n_folds=int(n_folds), preset=preset,
                protocol=protocol, device=device, seed=int(seed), epochs=int(epochs) or None,
                amp=amp)
            st.toast(f"Queued {run_dir.name}")
        except TfcnnError as exc:
            st.error(str(exc))


@st.fragment(run_every=2)
def show_runs() -> None:
    folders = appstate.run_folders()
    if not folders:
        st.info("No runs yet: choose architectures in the sidebar and press Launch.")
        return
    show_all = st.toggle(f"Show all {len(folders)} runs", value=False) if len(folders) > 6 \
        else True
    for i, folder in enumerate(folders if show_all else folders[:6]):
        try:
            view = appstate.run_view(folder)
        except TfcnnError as exc:
            st.error(str(exc))
            continue
        with st.container(border=True):
            head, action = st.columns([5, 1])
            done = sum(1 for f in view.fold_progress.values() if f >= 1.0)
            head.markdown(f"{STATUS_ICONS.get(view.status, '')} **{view.name}** · "
                          f"{view.arch} · `{view.status}` · {done}/{view.n_folds} folds"
                          + (f" · accuracy {view.mean:.2f} ± {view.std:.2f} %"
                             if view.mean is not None and view.std is not None else "")
                          + (f" · ETA ≤ {appstate.format_seconds(view.eta_s)}"
                             if view.eta_s is not None else ""))
            if view.status in ("queued", "running", "starting"):
                if action.button("Cancel", key=f"cancel-{view.name}"):
                    outcome = appstate.cancel_run(view.path)
                    if outcome == "stale":
                        st.warning(f"{view.name}: its recorded process is no longer this "
                                   "run's trainer (stale PID); nothing was signalled.")
                    else:
                        st.toast(f"Cancelling {view.name}")
            if view.status == "queued":
                st.caption("Waiting for a free training slot (the operator allows "
                           f"{appstate.max_concurrent_runs()} at a time).")
            if view.error:
                st.error(view.error)
            if view.status in ("interrupted", "cancelled") and done < view.n_folds:
                st.caption(f"Complete folds are kept; continue with `python -m tfcnn train "
                           f"... --out {view.path} --resume` (same settings).")
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
sweep_ui.sweep_monitor()
