"""Streamlit views of the SynthBallroom lab: generate a scenario, list the sets present, and
the scenario × architecture matrix of the Results page.

Everything computed here comes from :mod:`tfcnn.synth` and :mod:`tfcnn.datasets`; these
functions only draw widgets and wire the calls.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pandas as pd
import streamlit as st

from tfcnn import plots
from tfcnn.cue_conflict import CHANCE, METHOD, CueShares, read_report
from tfcnn.datasets import synth_sets
from tfcnn.errors import TfcnnError
from tfcnn.locations import SHIPPED_CONFLICT
from tfcnn.result_sets import ResultSet, TableFile
from tfcnn.synth.lab import (EXPECTATIONS, accuracy_matrix, cell_text, chance_interval,
                             matrix_cells, verdict_mark, verdicts)
from tfcnn.synth.scenarios import SCENARIOS, scenario_dirname

#: Shipped Table 1 files the matrix reads, in order (a later file wins a repeated cell).
SHIPPED_TABLES: tuple[str, ...] = ("table1-synth.json", "table1-scenarios.json")


def sets_table(data_root: Path) -> pd.DataFrame:
    """The SynthBallroom sets under ``data_root``: scenario, data set name, tracks, folder."""
    return pd.DataFrame([{"scenario": s.scenario, "data set": s.name, "tracks": s.n_tracks,
                          "folder": str(s.path)} for s in synth_sets(data_root)],
                        columns=["scenario", "data set", "tracks", "folder"])


def scenarios_panel(data_root: Path) -> None:
    """The Data page's lab: the sets present and a form that generates a scenario."""
    st.subheader("SynthBallroom lab: scenarios")
    st.markdown("Each scenario controls which cue separates the classes, so a model's "
                "accuracy says which cue its filters capture.")
    present = sets_table(data_root)
    if present.empty:
        st.info(f"No SynthBallroom set under `{data_root}` yet.")
    else:
        st.dataframe(present, hide_index=True)
    with st.form("generate-scenario"):
        names = list(SCENARIOS)
        scenario = st.selectbox("Scenario", names, format_func=lambda n: f"{n}: "
                                f"{SCENARIOS[n].cue}")
        c1, c2 = st.columns(2)
        per_class = c1.number_input("Tracks per dance", 1, 200, 60)
        seconds = c2.number_input("Seconds per track", 2.0, 60.0, 30.0, step=1.0)
        go = st.form_submit_button("Generate", type="primary")
    if go:
        generate_scenario(scenario, data_root=data_root, per_class=int(per_class),
                          seconds=float(seconds))


def generate_scenario(scenario: str, *, data_root: Path, per_class: int,
                      seconds: float) -> None:
    """Generate one scenario into its folder under ``data_root`` with a progress bar."""
    from tfcnn.synth import generate

    out = data_root / scenario_dirname(scenario)
    bar = st.progress(0.0, text=f"generating {scenario}…")
    try:
        generate(out, scenario=scenario, per_class=per_class, seconds=seconds,
                 progress=lambda done, total: bar.progress(
                     done / max(total, 1), text=f"generating {scenario}: {done} / {total}"))
    except TfcnnError as exc:
        st.error(str(exc))
        return
    st.success(f"{scenario}: {8 * per_class} tracks in `{out}`. Pick it in the sidebar.")


def matrix_sets(checkpoints_dir: Path, runs: Sequence[ResultSet]) -> list[ResultSet]:
    """The entries of the shipped tables, then the runs' result sets (a run with at least as
    many folds wins a repeated cell: :func:`tfcnn.synth.lab.matrix_cells`)."""
    shipped = [rs for name in SHIPPED_TABLES
               for rs in TableFile.read(checkpoints_dir / name).result_sets()]
    return [*shipped, *runs]


def _chance_text(cells) -> list[str]:
    """``" on 160 tracks (tempo, shuffled): 7.5-18.1 %"``, one per set size: the interval
    depends on the number of songs, and scenarios need not share one."""
    by_size: dict[int, list[str]] = {}
    for c in cells:
        if c.n_tracks and c.scenario not in by_size.setdefault(c.n_tracks, []):
            by_size[c.n_tracks].append(c.scenario)
    return [f"{';' if i else ''} on {n} tracks ({', '.join(names)}): "
            f"{chance_interval(n)[0]:.1f}-{chance_interval(n)[1]:.1f} %"
            for i, (n, names) in enumerate(sorted(by_size.items()))]


@st.cache_data(show_spinner=False, max_entries=4)
def _verdicts(cells: tuple) -> list:
    """:func:`tfcnn.synth.lab.verdicts`, cached: the paired rank tests take about a second."""
    return verdicts(list(cells))


def scenario_matrix(sets: Sequence[ResultSet]) -> None:
    """The Results page's lab view: Table 1 grouped by data set as one heatmap + verdicts."""
    st.subheader("SynthBallroom lab: scenario × architecture")
    cells = matrix_cells(sets)
    if not cells:
        st.info("No results on SynthBallroom scenarios yet: generate one on the Data page and "
                "train on it, or ship `checkpoints/table1-scenarios.json`.")
        return
    marks = {(v.scenario, v.arch): v for v in _verdicts(tuple(cells))}
    matrix = accuracy_matrix(cells)
    labels = matrix.astype(object).copy()
    for c in cells:
        labels.loc[c.scenario, c.arch] = (f"{cell_text(c)} "
                                          f"{verdict_mark(marks[(c.scenario, c.arch)])}")
    st.plotly_chart(plots.scenario_heatmap(matrix, labels=labels))
    several = max(len(c.per_seed) for c in cells) > 1
    st.caption("Chance 12.5 %; 95 % interval of guessing"
               + "".join(_chance_text(cells)) + ". ✓ the 95 % interval shows the scenario's "
               "expectation, ✗ it contradicts it (every difference the interval allows falls "
               "short), ? not shown (the interval allows both), – none stated. Each verdict "
               "names the difference its design detects 80 % of the time. "
               + ("Cells of several seeds: the mean over seeds, each seed's mean beside it; "
                  "verdicts pool the folds of every seed (corrected repeated k-fold t)."
                  if several else "One seed per cell: the seed spread is not measured here "
                  "(in the shipped sweep the tempo × Time cell spans 40.0-47.5 % over three "
                  "seeds)."))
    # A static table wraps its long texts (expectation, figures), so every column shows at
    # 1400 px; the verdict sits beside the accuracy it judges.
    st.table(pd.DataFrame([{
        "scenario": c.scenario, "architecture": c.arch, "accuracy (%)": cell_text(c),
        "verdict": verdict_mark(marks[(c.scenario, c.arch)]),
        "expected": EXPECTATIONS.get(c.scenario, "—"),
        "figures": marks[(c.scenario, c.arch)].detail,
        "detects (80 %, points)": (None if marks[(c.scenario, c.arch)].mdd is None
                                   else round(marks[(c.scenario, c.arch)].mdd, 1)),
        "seeds": len(c.per_seed) or 1,
        "seed spread (sd, points)": None if c.seed_std is None else round(c.seed_std, 1),
        "folds": len(c.per_fold), "tracks": c.n_tracks, "data set": c.dataset,
        "source": c.source,
    } for c in cells]).set_index("scenario"))


def conflict_reports(checkpoints_dir: Path) -> list[tuple[str, dict, list]]:
    """The cue-conflict reports on offer: the shipped models'
    (:data:`tfcnn.locations.SHIPPED_CONFLICT`) and the lab matrix's (its ``conflict``)."""
    found = []
    try:
        shipped = read_report(checkpoints_dir / SHIPPED_CONFLICT)
    except TfcnnError as exc:
        st.warning(str(exc))
        shipped = None
    if shipped is not None:
        found.append(("shipped models (fold 0 of table1-synth.json)", *shipped))
    table = TableFile.read(checkpoints_dir / SHIPPED_TABLES[-1]).content
    if isinstance(table.get("conflict"), dict):
        try:
            found.append((f"lab matrix ({SHIPPED_TABLES[-1]}, every paper fold model)",
                          table["conflict"], [CueShares.from_dict(a) for a in
                                              table["conflict"].get("architectures", [])]))
        except TfcnnError as exc:
            st.warning(str(exc))
    return found


def conflict_panel(checkpoints_dir: Path) -> None:
    """Which cue each architecture follows on the conflict set: shares, intervals, verdicts."""
    reports = conflict_reports(checkpoints_dir)
    if not reports:
        return
    st.subheader("SynthBallroom lab: cues in conflict")
    st.markdown("Each track of the `conflict` set plays one dance's tempo, a second dance's "
                "meter and rhythm pattern and a third dance's sounds. Models trained on "
                "`paper` (where all three agree) predict it; the share of predictions naming "
                "each cue's dance says which cue the architecture follows.")
    label = (st.selectbox("Models", [r[0] for r in reports]) if len(reports) > 1
             else reports[0][0])
    report, shares = next((r[1], r[2]) for r in reports if r[0] == label)
    st.plotly_chart(plots.cue_shares_bar({s.arch: s.shares for s in shares},
                                         chance=report.get("chance", CHANCE)),
                    key=f"cues-{label}")
    st.dataframe(pd.DataFrame([{
        "architecture": s.arch, "models": len(s.models),
        **{f"{cue} (%)": f"{100 * v[0]:.1f} [{100 * v[1]:.1f}-{100 * v[2]:.1f}]"
           for cue, v in s.shares.items()},
        "verdict": s.verdict()} for s in shares]), hide_index=True)
    size = report.get("set") or {}
    st.caption(f"{report.get('dataset', '?')}: {report.get('n_tracks', '?')} tracks"
               + (f" ({size.get('per_class')} per dance, {size.get('seconds'):g} s, data seed "
                  f"{size.get('seed')}, not the seed of the training set)"
                  if size.get("seconds") else "")
               + f". {report.get('method', METHOD)}")
