"""The sweep in the app: launch ``python -m tfcnn sweep`` from the Train page, follow its
tasks, and show a sweep's grid on the Results page.

A sweep runs as a subprocess in its own session (never inside a page run); everything shown
is read back from its folder (``sweep.json``, ``events.jsonl`` and the grid points' run
folders, :mod:`tfcnn.sweep`), so a sweep survives a browser reload and an app restart.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import streamlit as st

from tfcnn import appstate, plots
from tfcnn.engines import ENGINES
from tfcnn.errors import ConfigError, TfcnnError
from tfcnn.models import parse_filter_shape
from tfcnn.sweep import (
    SWEEP_FILE,
    format_param,
    grid_rows,
    make_spec,
    parse_list,
    read_events,
    read_spec,
    seed_summary,
    sweep_progress,
)

#: Where a shape's length lies and its unit: ``1x60`` → 60 frames, ``32x1`` → 32 bands.
LENGTH_AXES = {"time_filter": (1, "temporal filter length (frames)"),
               "freq_filter": (0, "frequency filter height (mel bands)"),
               "n_filters": (None, "filters per branch")}

_CHILDREN: dict[int, subprocess.Popen] = {}


# ----------------------------------------------------------------------------- no streamlit


def sweep_folders(root: Path | None = None) -> list[Path]:
    """Sweep folders (with a ``sweep.json``) directly under the runs root, newest first."""
    root = root or appstate.runs_root()
    if not root.is_dir():
        return []
    return sorted((p for p in root.iterdir() if (p / SWEEP_FILE).is_file()),
                  key=lambda p: p.name, reverse=True)


def sweep_command(data_dir, *, out, arch: str, grid: dict[str, str], seeds: str,
                  n_folds: int, preset: str, protocol: str, device: str, engine: str,
                  epochs: int | None = None, amp: bool = False) -> list[str]:
    """The ``python -m tfcnn sweep ...`` command line; ``grid`` maps CLI flags to lists."""
    cmd = [sys.executable, "-m", "tfcnn", "sweep", str(data_dir), "--arch", arch,
           "--seeds", seeds, "--folds", str(n_folds), "--preset", preset,
           "--protocol", protocol, "--device", device, "--engine", engine,
           "--out", str(out), "--quiet"]
    for flag, values in grid.items():
        if values.strip():
            cmd += [flag, values.strip()]
    if epochs:
        cmd += ["--epochs", str(int(epochs))]
    if amp:
        cmd.append("--amp")
    return cmd


def launch_sweep(data_dir, *, arch: str, time_filters: str = "", freq_filters: str = "",
                 n_filters: str = "", seeds: str = "0", n_folds: int = 10,
                 preset: str = "quick", protocol: str = "clean", device: str = "auto",
                 engine: str = "local", epochs: int | None = None, amp: bool = False,
                 root: Path | None = None) -> Path:
    """Check the grid, then start the sweep as a subprocess; return its sweep folder.

    The lists are written as on the command line (``1x30,1x60``, ``0,1,2``). Its output goes
    to ``<runs>/.launches/<sweep>/log.txt``.

    Raises
    ------
    ConfigError
        A bad list, architecture, shape or engine (before anything starts).
    """
    if engine not in ENGINES:
        raise ConfigError(f"unknown engine {engine!r}; valid engines: {', '.join(ENGINES)}")
    parsed = {}
    for key, text, item in (("time_filters", time_filters, parse_filter_shape),
                            ("freq_filters", freq_filters, parse_filter_shape),
                            ("n_filters", n_filters, int)):
        if text.strip():
            parsed[key] = parse_list(text, name=key.replace("_", " "), item=item)
    make_spec(data_dir, arch=arch, seeds=parse_list(seeds, name="seeds", item=int),
              n_folds=n_folds, preset=preset, protocol=protocol, device=device, **parsed)
    root = root or appstate.runs_root()
    out = root / f"sweep-{time.strftime('%Y%m%d-%H%M%S')}-{arch}"
    k = 1
    while out.exists() or appstate.launch_dir(out).exists():
        k += 1
        out = root / f"sweep-{time.strftime('%Y%m%d-%H%M%S')}-{arch}-{k}"
    side = appstate.launch_dir(out)
    side.mkdir(parents=True)
    cmd = sweep_command(data_dir, out=out, arch=arch, grid={
        "--time-filter": time_filters, "--freq-filter": freq_filters,
        "--n-filters": n_filters}, seeds=seeds, n_folds=n_folds, preset=preset,
        protocol=protocol, device=device, engine=engine, epochs=epochs, amp=amp)
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(appstate.REPO_ROOT),
                                                      env.get("PYTHONPATH", "")]))
    with open(side / appstate.LOG_FILE, "ab") as log:
        # Its own session: Cancel signals the whole group, closing the app does not.
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, cwd=appstate.REPO_ROOT, env=env,
                                start_new_session=True)
    _CHILDREN[proc.pid] = proc
    return out


def sweep_log_tail(out: Path, *, lines: int = 12) -> str:
    """The last lines of a sweep's launch log ('' without one)."""
    path = appstate.launch_dir(out) / appstate.LOG_FILE
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except FileNotFoundError:
        return ""


def cancel_sweep(out: Path) -> bool:
    """SIGTERM to the sweep's process group (complete folds are kept); whether one was sent."""
    starts = [e for e in read_events(out) if e.get("event") == "sweep_start"]
    pid = starts[-1].get("pid") if starts else None
    if not isinstance(pid, int):
        return False
    try:
        pgid = os.getpgid(pid)
        if pgid == pid and pgid != os.getpgid(0):
            os.killpg(pgid, signal.SIGTERM)  # launched by the app: the sweep and its workers
        else:
            os.kill(pid, signal.SIGTERM)  # started from a terminal: only the sweep
    except (ProcessLookupError, PermissionError):
        return False
    for child_pid, proc in list(_CHILDREN.items()):
        if proc.poll() is not None:
            del _CHILDREN[child_pid]
    return True


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
    return float(value) if index is None else float(str(value).split("x")[index])


# ----------------------------------------------------------------------------- streamlit


def sweep_launcher(data_dir, *, arch_choices, n_folds: int, preset: str, protocol: str,
                   device: str, epochs: int | None, amp: bool) -> None:
    """Sidebar controls of a sweep (grid from filter shapes and seeds) and its Launch button."""
    with st.sidebar.expander("Sweep (grid of filter shapes × seeds)"):
        arch = st.selectbox("Architecture", list(arch_choices),
                            index=list(arch_choices).index("time") if "time" in arch_choices
                            else 0, key="sweep-arch")
        time_filters = st.text_input("Temporal filters (bins x frames)", "1x30,1x60,1x80",
                                     help="Comma-separated; a patch has 80 frames.")
        freq_filters = st.text_input("Frequency filters (bins x frames)", "",
                                     help="e.g. 20x1,32x1 (frequency or timefreq models)")
        n_filters = st.text_input("Filters per branch", "", help="e.g. 16,32; empty: 32")
        seeds = st.text_input("Seeds", "0,1,2", help="One cross-validation per seed.")
        engine = st.selectbox("Engine", list(ENGINES), key="sweep-engine",
                              help="local: this machine, folds of a grid point together; "
                                   "ray: one task per grid point × fold on a local Ray.")
        if st.button("Launch sweep"):
            try:
                out = launch_sweep(data_dir, arch=arch, time_filters=time_filters,
                                   freq_filters=freq_filters, n_filters=n_filters,
                                   seeds=seeds, n_folds=n_folds, preset=preset,
                                   protocol=protocol, device=device, engine=engine,
                                   epochs=epochs, amp=amp)
                st.toast(f"Started {out.name}")
            except TfcnnError as exc:
                st.error(str(exc))


@st.fragment(run_every=2)
def sweep_monitor() -> None:
    """Every sweep under the runs root with its per-task progress (re-read every 2 s)."""
    folders = sweep_folders()
    if not folders:
        return
    st.subheader("Sweeps")
    for out in folders[:4]:
        try:
            progress = sweep_progress(out)
        except TfcnnError as exc:
            st.error(str(exc))
            continue
        counts = progress.counts()
        total = max(len(progress.tasks), 1)
        with st.container(border=True):
            head, action = st.columns([5, 1])
            head.markdown(f"**{out.name}** · `{progress.state}` · {progress.engine or '?'} "
                          f"engine · {counts['complete']}/{total} tasks complete"
                          + (f" · {counts['failed']} failed" if counts["failed"] else ""))
            if progress.state == "running" and action.button("Cancel",
                                                             key=f"cancel-{out.name}"):
                cancel_sweep(out)
                st.toast(f"Cancelling {out.name}")
            st.progress(counts["complete"] / total,
                        text=f"{counts['running']} running, {counts['pending']} pending")
            tasks = pd.DataFrame(progress.tasks)
            tasks["progress"] = [min(1.0, t["epoch"] / max(t["max_epochs"], 1))
                                 if t["state"] == "running" else float(t["state"] == "complete")
                                 for t in progress.tasks]
            st.dataframe(tasks[["task", "state", "progress", "accuracy", "attempts",
                                "message"]], hide_index=True, height=200,
                         column_config={"progress": st.column_config.ProgressColumn(
                             min_value=0.0, max_value=1.0)}, key=f"tasks-{out.name}")
            if progress.state in ("failed", "interrupted", "cancelled"):
                st.caption(f"Complete folds are kept; continue with `python -m tfcnn sweep ... "
                           f"--out {out} --resume` (same grid).")
                log = sweep_log_tail(out)
                if log:
                    st.code(log, language=None)


def sweep_results() -> None:
    """Results page: a chosen sweep's grid as a table and accuracy vs filter length."""
    folders = sweep_folders()
    if not folders:
        return
    st.subheader("Sweeps: accuracy over a grid of filter shapes × seeds")
    out = st.selectbox("Sweep", folders, format_func=lambda p: p.name)
    try:
        frame, params = grid_frame(out)
    except TfcnnError as exc:
        st.warning(str(exc))
        return
    shown = frame.drop(columns=["accuracies", "length"], errors="ignore")
    st.dataframe(shown, hide_index=True)
    if not params:
        return
    summary = pd.DataFrame(seed_summary(grid_rows(out), params))
    st.dataframe(summary, hide_index=True)
    group = "n_filters" if "n_filters" in params[1:] else None
    st.plotly_chart(plots.accuracy_vs_filter_length(
        frame, length_title=LENGTH_AXES[params[0]][1], group=group), key=f"grid-{out.name}")
    st.caption("Each point is one seed's cross-validation mean (song accuracy over its "
               "complete folds); the line is the mean over seeds with np.std over seeds. "
               f"Swept: {', '.join(params)}; values as on the command line "
               f"({', '.join(format_param(v) for v in read_spec(out).grid[0][1])}).")
