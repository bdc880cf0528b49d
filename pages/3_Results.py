"""Results: our Table 1 beside the paper's, per-fold accuracies, confusion, curves, tests."""

import json

import streamlit as st

from tfcnn import locations, plots
from tfcnn.errors import TfcnnError
from tfcnn.synth import WHAT_SYNTH_SHOWS
from tfcnn.ui import access, compare_view, lab, results, run_control, sidebar
from tfcnn.ui import sweep as sweep_ui

access.require_access()
st.title("Results (Table 1)")
sidebar.data_sidebar()

shipped = results.shipped_results()
run_sets, run_dirs = {}, {}
for folder in run_control.run_folders():
    try:
        rs = results.run_results(folder)
    except TfcnnError as exc:
        st.warning(str(exc))
        continue
    if rs is not None:
        run_sets[rs.label], run_dirs[rs.label] = rs, folder

with st.sidebar:
    st.header("Results to compare")
    use_shipped = st.checkbox("Shipped SynthBallroom results", value=bool(shipped),
                              disabled=not shipped)
    chosen = st.multiselect("Training runs", list(run_sets), default=list(run_sets)[:4])

sets = (shipped if use_shipped else []) + [run_sets[label] for label in chosen]
if not shipped:
    st.info("The shipped SynthBallroom results (`checkpoints/table1-synth.json`) are not "
            "available yet.")
sweep_ui.sweep_results()
if not sets:
    st.info("No results to show: train on the Train page (a run appears here once a fold "
            "is complete).")
    st.stop()

st.subheader("Table 1: ours beside the paper's")
table = results.results_table(sets)
st.dataframe(table.drop(columns=["mean", "std"]), hide_index=True,
             column_config={"#params": st.column_config.NumberColumn(format="localized"),
                            "paper #params": st.column_config.NumberColumn(format="localized")})
st.caption("Accuracy: song-level majority vote over 1.86 s patches, mean ± std (np.std) over "
           "folds. The paper's column is the real Ballroom data set (10 folds); shipped "
           "results are trained on synthetic data (SynthBallroom).")
if use_shipped and shipped:
    st.info(WHAT_SYNTH_SHOWS)

left, right = st.columns(2)
left.plotly_chart(plots.fold_strip({rs.label: rs.accuracies for rs in sets if rs.accuracies}))
right.plotly_chart(plots.accuracy_vs_params(
    table.dropna(subset=["#params", "mean"])
    .rename(columns={"architecture": "label", "run": "hover", "#params": "params"})
    .fillna({"std": 0.0})))
right.caption("The paper's efficiency argument: on Ballroom it reports Time-Frequency within "
              "0.7 points of Black-box with 16× fewer parameters. Whether two of your runs "
              "differ is answered below, with an interval, not by this plot.")

lab.scenario_matrix(lab.matrix_rows(locations.checkpoints_dir(), run_control.run_folders()))

st.subheader("Comparing two results (A − B over folds)")
compare_view.comparison_panel(compare_view.result_options(
    locations.checkpoints_dir() / locations.SHIPPED_TABLE if use_shipped else None,
    {label: run_dirs[label] for label in chosen}))

st.subheader("One result in detail")
own = [i for i, r in enumerate(sets) if r.source == "run"]
detail = st.selectbox("Result", [rs.label for rs in sets], index=own[0] if own else 0)
rs = next(r for r in sets if r.label == detail)
left, right = st.columns(2)
if rs.confusion is not None:
    left.plotly_chart(plots.confusion_heatmap(rs.confusion, rs.classes))
else:
    left.info("No confusion matrix in these results.")
if not rs.history.empty:
    right.plotly_chart(plots.training_curves(rs.history))
else:
    right.info("No training curves for these results.")

st.subheader("Export")
c1, c2 = st.columns(2)
c1.download_button("Table as CSV", table.to_csv(index=False), file_name="table1.csv",
                   mime="text/csv")
c2.download_button("Results as JSON", json.dumps(
    [{"label": r.label, "arch": r.arch, "n_params": r.n_params, "mean": r.mean, "std": r.std,
      "per_fold": r.accuracies, "source": r.source} for r in sets], indent=2),
    file_name="results.json", mime="application/json")
