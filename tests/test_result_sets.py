"""tfcnn.result_sets: result sets read from a Table 1 file and a run folder, Table 1 numbers."""

from __future__ import annotations

import io
import json

import numpy as np
import pandas as pd
import pytest

from tfcnn.config import CLASSES, PAPER_TABLE1
from tfcnn.errors import RunError
from tfcnn.result_sets import (RUN, SHIPPED, TableFile, fold_accuracies, load_result_set,
                               params_points, result_set, results_table)


def curve(arch: str, fold: int, epochs: int) -> list[dict]:
    return [{"stage": arch, "fold": fold, "epoch": e, "train_loss": 2.0 / e,
             "train_acc": 0.1 * e, "val_loss": 2.2 / e, "val_acc": 0.09 * e, "lr": 0.01}
            for e in range(1, epochs + 1)]


@pytest.fixture
def table_file(tmp_path):
    """A Table 1 file shaped like checkpoints/table1-synth.json (runs, curves, notes)."""
    runs = {arch: {"arch": arch, "n_params": PAPER_TABLE1[arch].params,
                   "classes": list(CLASSES),
                   "dataset": {"name": "SynthBallroom", "kind": "synth"},
                   "folds": [0, 2, 3], "per_fold": [90.0, 80.0, 85.0],
                   "mean": 85.0, "std": float(np.std([90.0, 80.0, 85.0])),
                   "confusion": (np.eye(8, dtype=int) * 6).tolist()}
            for arch in ("timefreq", "time")}
    table = {"runs": runs, "curves": {"time": curve("time", 0, 4) + curve("time", 2, 3)},
             "not_retrained": {"blackbox": "about 4 h on this CPU"}}
    path = tmp_path / "table1-synth.json"
    path.write_text(json.dumps(table))
    return path


def test_fold_accuracies_reads_the_results_layout():
    assert fold_accuracies({"per_fold": [80.0, 90.0], "mean": 85.0}) == [80.0, 90.0]
    # results.json lists complete fold indices under "folds": they are not accuracies.
    assert fold_accuracies({"folds": [0, 1], "mean": 85.0}) == []
    assert fold_accuracies({}) == []


def shipped_results(path):
    return TableFile.read(path).result_sets()


def test_shipped_rows_carry_their_curves_data_set_and_fold_indices(table_file):
    timefreq, time = shipped_results(table_file)
    assert (timefreq.label, time.label) == ("shipped timefreq", "shipped time")
    assert time.source == SHIPPED and time.dataset == "SynthBallroom"
    assert time.folds == (0, 2, 3) and time.accuracies == [90.0, 80.0, 85.0]
    assert len(time.history) == 7 and sorted(time.history["fold"].unique()) == [0, 2]
    assert timefreq.history.empty  # no curves recorded for it
    assert time.series == "shipped (SynthBallroom)"
    assert TableFile.read(table_file).not_retrained == {"blackbox": "about 4 h on this CPU"}


def test_shipped_results_of_a_missing_or_broken_file_are_empty(tmp_path):
    assert shipped_results(tmp_path / "absent.json") == []
    (tmp_path / "broken.json").write_text("{not json")
    assert shipped_results(tmp_path / "broken.json") == []
    assert TableFile.read(tmp_path / "broken.json").not_retrained == {}
    with pytest.raises(RunError, match="broken.json: not a readable Table 1 JSON file"):
        TableFile.read(tmp_path / "broken.json", strict=True)
    with pytest.raises(RunError, match="absent.json: no such Table 1 file"):
        load_result_set(f"{tmp_path / 'absent.json'}:time")


def test_result_set_from_per_fold_only_and_without_fold_indices():
    rs = result_set("run-a", {"arch": "time", "per_fold": [70.0, 80.0],
                              "dataset": "my-folder"}, source=RUN)
    assert rs.mean == 75.0 and rs.std == 5.0 and rs.folds == (0, 1)
    assert rs.dataset == "my-folder" and rs.series == "run-a" and rs.confusion is None


def test_results_table_numbers_are_numbers_beside_the_paper(table_file):
    sets = shipped_results(table_file) + [result_set("run-x", {"arch": "timefreq-init",
                                                               "per_fold": [60.0, 70.0]},
                                                     source=RUN)]
    table = results_table(sets)
    for column in ("mean (%)", "std (%)", "paper mean (%)", "paper std (%)"):
        assert table[column].dtype == np.float64, column
    assert str(table["#params"].dtype) == "Int64" and table["folds complete"].dtype == np.int64
    assert list(table["mean (%)"]) == [85.0, 85.0, 65.0]
    assert table["std (%)"].iloc[0] == pytest.approx(np.std([90.0, 80.0, 85.0]))
    # timefreq-init reproduces the paper's timefreq row
    assert table["paper mean (%)"].iloc[2] == PAPER_TABLE1["timefreq"].mean
    assert table["#params"].isna().iloc[2]  # a run that did not record it
    assert not table.map(lambda v: isinstance(v, str) and "±" in v).any().any()


def test_results_table_says_what_each_set_was_trained_under(table_file):
    """A 2-fold, 10-epoch run beside 10-fold shipped rows: preset, epoch cap, folds complete
    of folds planned and protocol in the table and in its CSV; unrecorded ones say so."""
    run = result_set("small-run", {
        "arch": "time", "per_fold": [70.0, 80.0], "folds": [0, 1], "n_folds": 2,
        "protocol": "clean", "train_config": {"preset": "quick", "max_epochs": 10}},
        source=RUN)
    shipped = result_set("shipped time", {
        "arch": "time", "per_fold": [90.0] * 9, "n_folds": 10, "preset": "paper",
        "max_epochs": 2000, "protocol": "paper"}, source=SHIPPED)
    bare = shipped_results(table_file)[0]  # records none of them
    table = results_table([run, shipped, bare])
    columns = ["folds complete", "folds planned", "preset", "max epochs", "protocol"]
    assert table[columns].astype(object).values.tolist() == [
        [2, 2, "quick", 10, "clean"], [9, 10, "paper", 2000, "paper"],
        [3, 3, "—", pd.NA, "—"]]
    back = pd.read_csv(io.StringIO(table.to_csv(index=False)))
    assert back["max epochs"].tolist()[:2] == [10, 2000] and back["folds planned"].tolist() == [
        2, 10, 3]
    assert back["preset"].tolist() == ["quick", "paper", "—"]


def test_params_points_one_per_set_with_a_count_and_a_mean(table_file):
    sets = shipped_results(table_file) + [result_set("run-x", {"arch": "time"}, source=RUN)]
    points = params_points(sets)
    assert list(points["series"]) == ["shipped (SynthBallroom)"] * 2  # run-x has no mean
    assert list(points["params"]) == [PAPER_TABLE1["timefreq"].params,
                                      PAPER_TABLE1["time"].params]
    assert isinstance(points, pd.DataFrame) and points["std"].notna().all()


def test_a_lab_table_keys_entries_by_scenario_and_merges_row_and_results(tmp_path):
    """A scenarios table (``scenario/arch`` keys) read once gives what the lab, the compare
    command and the pages need: accuracies, data set size, pairing, curves where present."""
    results = {"arch": "time", "per_fold": [70.0, 80.0, 90.0], "folds": [0, 1, 2],
               "dataset": {"name": "SynthBallroom-tempo", "n_tracks": 24},
               "fold_fingerprints": ["a", "b", "c"], "assignment_fingerprint": "x",
               "n_train_tracks": [16, 16, 16], "n_test_tracks": [8, 8, 8], "n_folds": 3}
    row = {"arch": "time", "scenario": "tempo", "dataset": "SynthBallroom-tempo",
           "mean": 80.0, "std": 8.16, "n_params": 7336, "wall_s": 12.0}
    path = tmp_path / "table1-scenarios.json"
    TableFile({"rows": [row], "runs": {"tempo/time": results}}).write(path)
    table = TableFile.read(path)
    assert table.keys() == ["tempo/time"]
    (rs,) = table.result_sets()
    assert (rs.label, rs.arch, rs.dataset, rs.n_tracks, rs.n_params, rs.wall_s) == (
        "shipped tempo/time", "time", "SynthBallroom-tempo", 24, 7336, 12.0)
    assert rs.pairable and rs.test_train_ratio == 0.5 and rs.origin == str(path)
    loaded = load_result_set(f"{path}:tempo/time")
    assert loaded.label == f"{path}:tempo/time" and loaded.accuracies == [70.0, 80.0, 90.0]
    with pytest.raises(RunError, match="no row 'paper/time'; rows: tempo/time"):
        load_result_set(f"{path}:paper/time")


def test_fractions_beside_a_percent_mean_are_read_as_percent():
    rs = result_set("old", {"arch": "time", "mean": 85.0, "per_fold": [0.8, 0.9]}, source=RUN)
    assert rs.accuracies == [80.0, 90.0]
