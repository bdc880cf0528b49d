"""The sweep in the app: queue ``python -m tfcnn sweep`` from the Train page, follow its
tasks, and show a sweep's grid on the Results page.

A sweep goes through the app's launch queue (:mod:`tfcnn.launches`: it takes one slot like a
training run, waits as queued, is cancellable there) and runs as a subprocess in its own
session (never inside a page run); everything shown is read back from its launch record and
its folder (``sweep.json``, ``events.jsonl`` and the grid points' run folders,
:mod:`tfcnn.sweep`), so a sweep survives a browser reload and an app restart.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import streamlit as st

from tfcnn import launches, plots
from tfcnn.config import ENGINE_NAMES, FRONT_END
from tfcnn.contrasts import cv_test_train_ratio, family_sentence, setting_contrasts
from tfcnn.errors import ConfigError, TfcnnError
from tfcnn.locations import checkpoints_dir, runs_root
from tfcnn.request import BEATS_OFF, RunRequest, SweepRequest, show_value
from tfcnn.result_sets import sweep_reports
from tfcnn.runs import (
    LAUNCH_FILE,
    LAUNCHES_DIR,
    LOG_FILE,
    QUEUED,
    SWEEP_KIND,
    WITHDRAWN,
    launch_dir,
    launch_kind,
    read_launch,
    running_identity,
)
from tfcnn.sweep import (
    SWEEP_FILE,
    SweepProgress,
    grid_rows,
    read_events,
    read_spec,
    seed_summary,
    sweep_progress,
)

#: Where a shape's length lies and its unit: ``1x60`` → 60 frames, ``32x1`` → 32 bands.
LENGTH_AXES = {"patch_frames": (None, "patch width (frames)"),
               "time_filter": (1, "temporal filter length (frames)"),
               "freq_filter": (0, "frequency filter height (mel bands)"),
               "n_filters": (None, "filters per branch"),
               "frames_per_beat": (None, f"frames per beat (0: the paper's frames, "
                                         f"'{BEATS_OFF}')")}

#: Sweep states in which the monitor offers Cancel.
CANCELLABLE = ("queued", "starting", "running")


# ----------------------------------------------------------------------------- no streamlit


def sweep_folders(root: Path | None = None, *, launched: bool = False) -> list[Path]:
    """Sweep folders (with a ``sweep.json``) directly under the runs root, newest name first.

    With ``launched``, also the sweeps the app launched (their folder may not exist yet).
    """
    root = root or runs_root()
    if not root.is_dir():
        return []
    found = {p for p in root.iterdir() if (p / SWEEP_FILE).is_file()}
    queue = root / LAUNCHES_DIR
    if launched and queue.is_dir():
        found |= {root / p.name for p in queue.iterdir() if (p / LAUNCH_FILE).is_file()
                  and launch_kind(read_launch(root / p.name) or {}) == SWEEP_KIND}
    return sorted(found, key=lambda p: p.name, reverse=True)


def grid_request(base: RunRequest, *, arch: str, time_filters: str = "",
                 freq_filters: str = "", n_filters: str = "", patch_frames: str = "",
                 frames_per_beat: str = "", seeds: str = "0") -> SweepRequest:
    """The sweep the Train page's controls describe: ``base``'s recipe (folds, preset,
    protocol, device, epochs, AMP) for ``arch``, over the lists as written on the command
    line (``1x30,1x60``, ``80,160``, ``off,10``, ``0,1,2``; empty: not swept).

    Raises
    ------
    ConfigError
        A bad list, architecture or shape, with the message the CLI gives (a filter that
        does not fit the patch names the patch and the largest shape that fits).
    """
    return SweepRequest.from_text(base.replace(arch=arch), seeds=seeds, grid={
        "patch_frames": patch_frames, "time_filter": time_filters, "freq_filter": freq_filters,
        "n_filters": n_filters, "frames_per_beat": frames_per_beat})


def launch_sweep(sweep: SweepRequest, *, engine: str, root: Path | None = None) -> Path:
    """Queue ``sweep`` on ``engine`` (:func:`tfcnn.launches.submit_sweep`); return its sweep
    folder.

    It starts at once when a launch slot is free, else when one frees. Its output goes to
    ``<runs>/.launches/<sweep>/log.txt``.
    """
    return launches.submit_sweep(sweep, engine=engine, root=root or runs_root())


def sweep_log_tail(out: Path, *, lines: int = 12) -> str:
    """The last lines of a sweep's launch log ('' without one)."""
    path = launch_dir(out) / LOG_FILE
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except FileNotFoundError:
        return ""


def cancel_sweep(out: Path) -> str:
    """Cancel a sweep: withdraw it when queued, else SIGTERM its verified process group
    (complete folds are kept).

    Returns the outcome of :func:`tfcnn.launches.cancel` (``"withdrawn"``, ``"signalled"``,
    ``"gone"``, ``"stale"``); a sweep started from a terminal is found by the PID of its
    ``sweep_start`` event.
    """
    starts = [e for e in read_events(out) if e.get("event") == "sweep_start"]
    pid = starts[-1].get("pid") if starts else None
    return launches.cancel(out, status_pid=pid if isinstance(pid, int) else None)


def task_status(task: dict, *, active: bool = True) -> str:
    """A task's line: ``queued``, ``running · epoch 3/20``, ``done · 87.50 %``, ``failed:
    ...``, with ``attempt N`` for a retried task and an earlier attempt's failure.

    ``active``: whether its sweep is queued or running; a pending task of a stopped sweep is
    ``not trained`` (``--resume`` trains it).
    """
    state = task["state"]
    if state == "pending":
        text = "queued" if active else "not trained"
    elif state == "running":
        text = f"running · epoch {task['epoch']}/{task['max_epochs']}"
    elif state == "complete":
        acc = task.get("accuracy")
        text = "done · " + ("-" if acc is None else f"{acc:.2f} %")
    else:
        text = f"failed: {task.get('message') or '?'}"
    attempts = int(task.get("attempts") or 0)
    if attempts > 1 or (state == "pending" and attempts and active):
        text += f" · attempt {attempts + (state == 'pending')}"  # a retry
    if state != "failed" and task.get("message"):
        text += f" (an earlier attempt failed: {task['message']})"
    return text


def sweep_view(out: Path) -> SweepProgress:
    """Sweep folder ``out`` (or a launched sweep not started yet) as the monitor shows it.

    Returns
    -------
    SweepProgress
        Its ``state`` is ``queued``, ``starting`` (its process runs, its folder is not
        written yet), ``cancelled`` (also: withdrawn while queued), else
        :func:`tfcnn.sweep.sweep_state`; each task also has ``status``, its line
        (:func:`task_status`). No tasks when neither the folder nor the launch has a grid.

    Raises
    ------
    RunError
        A damaged ``sweep.json``.
    """
    out = Path(out)
    record = read_launch(out) or {}
    if (out / SWEEP_FILE).is_file():
        progress = sweep_progress(out)
        if progress.state == "new" and running_identity(record) is not None:
            progress.state = "starting"
    else:
        try:
            spec = SweepRequest.from_dict(record["spec"])
        except (KeyError, TypeError, ValueError, AttributeError, ConfigError):
            spec = None
        progress = sweep_progress(out, spec=spec) if spec is not None else \
            SweepProgress(state="new", tasks=[], engine=None)
        progress.engine = record.get("engine")
        if record.get("state") == QUEUED:
            progress.state = "queued"
        elif record.get("state") == WITHDRAWN:
            progress.state = "cancelled"
        elif running_identity(record) is not None:
            progress.state = "starting"
        else:
            progress.state = "failed"  # its process ended before it wrote the sweep folder
    if progress.state in ("interrupted", "failed") and record.get("cancelled"):
        progress.state = "cancelled"
    active = progress.state in ("new", *CANCELLABLE)
    for task in progress.tasks:
        task["status"] = task_status(task, active=active)
    return progress


def grid_frame(out: Path) -> tuple[pd.DataFrame, list[str]]:
    """The sweep's grid rows as a table, with a numeric ``length`` column for the plot, and
    the swept parameters."""
    spec = read_spec(out)
    params = [name for name, _ in spec.grid]
    frame = pd.DataFrame(grid_rows(out))
    if params:
        axis = params[0]
        index, _ = LENGTH_AXES[axis]
        frame["length"] = [_length(v, index) for v in frame[axis]]
    return frame, params


def _length(value: str, index: int | None) -> float:
    if value == BEATS_OFF:
        return 0.0  # the paper's frames, at the origin of the frames-per-beat axis
    return float(value) if index is None else float(str(value).split("x")[index])


# ----------------------------------------------------------------------------- streamlit


def sweep_launcher(base: RunRequest, *, arch_choices) -> None:
    """Sidebar controls of a sweep (grid from filter shapes and seeds over ``base``'s recipe)
    and its Launch button.

    The grid is checked as it is typed, with the CLI's messages (a filter wider than the
    patch names the patch and the widest filter that fits); Launch stays off until it fits.
    """
    with st.sidebar.expander("Sweep (grid of inputs × filter shapes × seeds)"):
        arch = st.selectbox("Architecture", list(arch_choices),
                            index=list(arch_choices).index("time") if "time" in arch_choices
                            else 0, key="sweep-arch")
        time_filters = st.text_input("Temporal filters (bands x frames)", "1x30,1x60,1x80",
                                     help=f"Comma-separated; a patch is {FRONT_END.n_mels} "
                                          f"bands x {FRONT_END.patch_frames} frames (unless "
                                          "swept below), so the widest is "
                                          f"1x{FRONT_END.patch_frames}.")
        freq_filters = st.text_input("Frequency filters (bands x frames)", "",
                                     help="e.g. 20x1,32x1 (frequency or timefreq models); "
                                          f"at most {FRONT_END.n_mels} bands high.")
        n_filters = st.text_input("Filters per branch", "", help="e.g. 16,32; empty: 32")
        patch_frames = st.text_input("Patch widths (frames)", "",
                                     help=f"e.g. {FRONT_END.patch_frames},160,240; empty: the "
                                          f"paper's {FRONT_END.patch_frames}. Every filter "
                                          "must fit the narrowest.")
        frames_per_beat = st.text_input("Frames per beat", "",
                                        help=f"e.g. {BEATS_OFF},10: the paper's frames, and "
                                             "each track resampled to 10 frames per beat of "
                                             f"its estimated tempo; empty: {BEATS_OFF}.")
        seeds = st.text_input("Seeds", "0,1,2", help="One cross-validation per seed.")
        engine = st.selectbox("Engine", list(ENGINE_NAMES), key="sweep-engine",
                              help="local: this machine, folds of a grid point together; "
                                   "ray: one task per grid point × fold on a local Ray.")
        try:
            sweep = grid_request(base, arch=arch, time_filters=time_filters,
                                 freq_filters=freq_filters, n_filters=n_filters,
                                 patch_frames=patch_frames, frames_per_beat=frames_per_beat,
                                 seeds=seeds)
        except ConfigError as exc:
            sweep = None
            st.error(str(exc))
        if st.button("Launch sweep", disabled=sweep is None):
            try:
                out = launch_sweep(sweep, engine=engine)
                st.toast(f"Queued {out.name}")
            except TfcnnError as exc:
                st.error(str(exc))


@st.fragment(run_every=2)
def sweep_monitor() -> None:
    """Every sweep under the runs root, queued ones too, with per-task progress (re-read
    every 2 s); starts queued launches whose slot has freed."""
    root = runs_root()
    if root.is_dir():
        launches.pump(root)
    folders = sweep_folders(root, launched=True)
    if not folders:
        return
    st.subheader("Sweeps")
    for out in folders[:4]:
        try:
            view = sweep_view(out)
        except TfcnnError as exc:
            st.error(str(exc))
            continue
        counts = view.counts()
        total = max(len(view.tasks), 1)
        with st.container(border=True):
            head, action = st.columns([5, 1])
            head.markdown(f"**{out.name}** · `{view.state}` · {view.engine or '?'} "
                          f"engine · {counts['complete']}/{len(view.tasks)} tasks complete"
                          + (f" · {counts['failed']} failed" if counts["failed"] else ""))
            if view.state in CANCELLABLE and action.button("Cancel", key=f"cancel-{out.name}"):
                outcome = cancel_sweep(out)
                if outcome == "stale":
                    st.warning(f"{out.name}: its recorded process is no longer this sweep's "
                               "(stale PID); nothing was signalled.")
                else:
                    st.toast(f"Cancelling {out.name}")
            if view.state == "queued":
                st.caption("Waiting for a free slot (the operator allows "
                           f"{launches.max_concurrent()} run or sweep at a time).")
            st.progress(counts["complete"] / total,
                        text=f"{counts['running']} running, {counts['pending']} queued"
                             + (f", {counts['failed']} failed" if counts["failed"] else ""))
            if view.tasks:
                tasks = pd.DataFrame(view.tasks)
                tasks["progress"] = [
                    min(1.0, t["epoch"] / max(t["max_epochs"], 1)) if t["state"] == "running"
                    else float(t["state"] == "complete") for t in view.tasks]
                st.dataframe(tasks[["task", "status", "progress", "state", "accuracy",
                                    "attempts"]], hide_index=True, height=200,
                             column_config={"progress": st.column_config.ProgressColumn(
                                 min_value=0.0, max_value=1.0)}, key=f"tasks-{out.name}")
            if view.state in ("failed", "interrupted", "cancelled"):
                if (out / SWEEP_FILE).is_file():
                    st.caption(f"Complete folds are kept; continue with `python -m tfcnn "
                               f"sweep ... --out {out} --resume` (same grid).")
                log = sweep_log_tail(out)
                if log:
                    st.code(log, language=None)


def shipped_grid_frame(entry: dict) -> pd.DataFrame:
    """A shipped engine entry's grid points as :func:`grid_frame` gives a sweep folder's."""
    frame = pd.DataFrame(entry["points"])
    index, _ = LENGTH_AXES[entry["params"][0]]
    frame["length"] = [_length(v, index) for v in frame[entry["params"][0]]]
    return frame


#: Columns of the grid and seed-summary tables that hold song accuracies in %.
_ACCURACY_COLUMNS = ("mean", "std", "seed_std", "min", "max")


def _sweep_table(frame: pd.DataFrame) -> None:
    """A grid or seed-summary table, accuracies in % with one decimal (numbers stay numbers
    for sorting and copying)."""
    st.dataframe(frame, hide_index=True, column_config={
        col: st.column_config.NumberColumn(f"{col} (%)", format="%.1f")
        for col in _ACCURACY_COLUMNS if col in frame.columns})


def contrasts_view(rows: list[dict], params: list[str], *, n_folds: int,
                   protocol: str = "clean") -> None:
    """Every pair of settings over the seeds they share, Holm over the pairs shown."""
    if n_folds < 3:
        return
    family = setting_contrasts(rows, params,
                               test_train_ratio=cv_test_train_ratio(n_folds, protocol))
    if not family:
        return
    st.dataframe(pd.DataFrame([{
        "A − B": f"{k.comparison.runs[0]} − {k.comparison.runs[1]}",
        "difference": round(k.comparison.mean_difference, 1),
        "95 % CI (alone)": f"{k.comparison.ci95[0]:+.1f} to {k.comparison.ci95[1]:+.1f}",
        "simultaneous CI": f"{k.simultaneous_ci[0]:+.1f} to {k.simultaneous_ci[1]:+.1f}",
        "p (Holm)": round(k.p_holm, 4), "verdict (family)": k.verdict,
        "detects (80 %)": round(k.mdd, 1), "paired folds": k.comparison.n_folds[0],
    } for k in family]), hide_index=True)
    st.caption("Pairs of settings compared over every seed both have (folds of all seeds "
               "pooled: corrected repeated k-fold t). " + family_sentence(len(family)))


def _shipped_sweep_view(label: str, report: dict, entry: dict) -> None:
    frame, params = shipped_grid_frame(entry), entry["params"]
    _sweep_table(frame.drop(columns=["accuracies", "length"], errors="ignore"))
    _sweep_table(pd.DataFrame(entry.get("summary", [])))
    n_folds = max((len(p.get("accuracies") or []) for p in entry["points"]), default=0)
    contrasts_view(entry["points"], params, n_folds=n_folds)
    st.plotly_chart(plots.accuracy_vs_filter_length(
        frame, length_title=LENGTH_AXES[params[0]][1]), key=f"grid-{label}")
    wall = entry.get("sweep_wall_s")
    st.caption(f"Data: {report.get('data', '?')}. "
               + (f"Wall time {wall / 60:.1f} min on this engine. " if wall else "")
               + (report.get("note") or "") + " Each point is one seed's cross-validation "
               "mean; the line is the mean over seeds with np.std over seeds.")


def sweep_results() -> None:
    """Results page: a chosen sweep's grid as a table and accuracy vs filter length (the
    sweeps under the runs folder, then the shipped ones)."""
    folders, shipped = sweep_folders(), sweep_reports(checkpoints_dir())
    if not folders and not shipped:
        return
    st.subheader("Sweeps: accuracy over a grid of filter shapes × seeds")
    choices = [*folders, *range(len(shipped))]
    out = st.selectbox("Sweep", choices, format_func=lambda c: shipped[c][0]
                       if isinstance(c, int) else c.name)
    if isinstance(out, int):
        _shipped_sweep_view(*shipped[out])
        return
    try:
        frame, params = grid_frame(out)
    except TfcnnError as exc:
        st.warning(str(exc))
        return
    _sweep_table(frame.drop(columns=["accuracies", "length"], errors="ignore"))
    if not params:
        return
    rows = grid_rows(out)
    _sweep_table(pd.DataFrame(seed_summary(rows, params)))
    spec = read_spec(out)
    contrasts_view(rows, params, n_folds=spec.base.n_folds,
                   protocol=spec.base.protocol)
    group = "n_filters" if "n_filters" in params[1:] else None
    st.plotly_chart(plots.accuracy_vs_filter_length(
        frame, length_title=LENGTH_AXES[params[0]][1], group=group), key=f"grid-{out.name}")
    st.caption("Each point is one seed's cross-validation mean (song accuracy over its "
               "complete folds); the line is the mean over seeds with np.std over seeds. "
               f"Swept: {', '.join(params)}; values as on the command line "
               f"({', '.join(show_value(spec.grid[0][0], v) for v in spec.grid[0][1])}).")
