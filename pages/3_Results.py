"""Results: our Table 1 beside the paper's, per-fold accuracies, confusion, curves, tests."""

import streamlit as st

from tfcnn import locations, plots
from tfcnn.result_sets import TableFile, params_points
from tfcnn.synth import WHAT_SYNTH_SHOWS
from tfcnn.ui import access, calibration_view, compare_view, lab, results, run_control, sidebar
from tfcnn.ui import sweep as sweep_ui

access.require_access()
st.title("Results (Table 1)")
sidebar.data_sidebar()

shipped_table = TableFile.read(locations.checkpoints_dir() / locations.SHIPPED_TABLE)
shipped = shipped_table.result_sets()
runs = results.run_result_sets(run_control.run_folders())

with st.sidebar:
    st.header("Results to compare")
    use_shipped = st.checkbox("Shipped SynthBallroom results", value=bool(shipped),
                              disabled=not shipped)
    chosen = st.multiselect("Training runs", list(runs), default=list(runs)[:4])

sets = (shipped if use_shipped else []) + [runs[label][0] for label in chosen]
if not shipped:
    st.info("The shipped SynthBallroom results (`checkpoints/table1-synth.json`) are not "
            "available yet.")
if not sets:
    st.info("No results to show: train on the Train page (a run appears here once a fold "
            "is complete).")
    sweep_ui.sweep_results()
    st.stop()

st.subheader("Table 1: ours beside the paper's")
results.table_view(sets)
st.caption("Accuracy: song-level majority vote over 1.86 s patches, mean and std (np.std) "
           "over folds, in %. The paper's columns are the real Ballroom data set (10 folds); "
           "shipped results are trained on synthetic data (SynthBallroom).")
if use_shipped and shipped:
    st.info(WHAT_SYNTH_SHOWS)
    for arch, why in shipped_table.not_retrained.items():
        st.caption(f"**{arch}**: {why}")

st.plotly_chart(plots.fold_strip({rs.label: rs.accuracies for rs in sets if rs.accuracies}))
st.plotly_chart(plots.accuracy_vs_params(params_points(sets)))
st.caption("The paper's efficiency argument: on Ballroom it reports Time-Frequency within "
              "0.7 points of Black-box with 16× fewer parameters. Points at one parameter "
              "count are drawn side by side (exact count on hover). Whether two of your runs "
              "differ is answered below, with an interval, not by this plot.")

lab.scenario_matrix(lab.matrix_sets(locations.checkpoints_dir(),
                                   [rs for rs, _ in runs.values()]))
lab.conflict_panel(locations.checkpoints_dir())
sweep_ui.sweep_results()

st.subheader("The paper's headline comparisons")
compare_view.headline_panel(sets)

st.subheader("Comparing two results (A − B over folds)")
compare_view.comparison_panel({rs.label: rs for rs in sets})

st.subheader("Calibration measured on test songs")
calibration_view.calibration_panel(calibration_view.measured(
    locations.checkpoints_dir() / locations.SHIPPED_RELIABILITY if use_shipped else None,
    {label: runs[label][1] for label in chosen},
    shipped_table=shipped_table.path if use_shipped else None))

st.subheader("One result in detail")
detail = results.detail_view(sets)

st.subheader("Export")
results.export_view(sets, detail)
