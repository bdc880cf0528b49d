"""tfcnn.result_sets: result sets read from a Table 1 file and a run folder, Table 1 numbers."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from tfcnn.config import CLASSES, PAPER_TABLE1
from tfcnn.result_sets import (RUN, SHIPPED, fold_accuracies, not_retrained, params_points,
                               result_set, results_table, shipped_results)


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


def test_shipped_rows_carry_their_curves_data_set_and_fold_indices(table_file):
    timefreq, time = shipped_results(table_file)
    assert (timefreq.label, time.label) == ("shipped timefreq", "shipped time")
    assert time.source == SHIPPED and time.dataset == "SynthBallroom"
    assert time.folds == (0, 2, 3) and time.accuracies == [90.0, 80.0, 85.0]
    assert len(time.history) == 7 and sorted(time.history["fold"].unique()) == [0, 2]
    assert timefreq.history.empty  # no curves recorded for it
    assert time.series == "shipped (SynthBallroom)"
    assert not_retrained(table_file) == {"blackbox": "about 4 h on this CPU"}


def test_shipped_results_of_a_missing_or_broken_file_are_empty(tmp_path):
    assert shipped_results(tmp_path / "absent.json") == []
    (tmp_path / "broken.json").write_text("{not json")
    assert shipped_results(tmp_path / "broken.json") == []
    assert not_retrained(tmp_path / "broken.json") == {}


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
    assert str(table["#params"].dtype) == "Int64" and table["folds"].dtype == np.int64
    assert list(table["mean (%)"]) == [85.0, 85.0, 65.0]
    assert table["std (%)"].iloc[0] == pytest.approx(np.std([90.0, 80.0, 85.0]))
    # timefreq-init reproduces the paper's timefreq row
    assert table["paper mean (%)"].iloc[2] == PAPER_TABLE1["timefreq"].mean
    assert table["#params"].isna().iloc[2]  # a run that did not record it
    assert not table.map(lambda v: isinstance(v, str) and "±" in v).any().any()


def test_params_points_one_per_set_with_a_count_and_a_mean(table_file):
    sets = shipped_results(table_file) + [result_set("run-x", {"arch": "time"}, source=RUN)]
    points = params_points(sets)
    assert list(points["series"]) == ["shipped (SynthBallroom)"] * 2  # run-x has no mean
    assert list(points["params"]) == [PAPER_TABLE1["timefreq"].params,
                                      PAPER_TABLE1["time"].params]
    assert isinstance(points, pd.DataFrame) and points["std"].notna().all()
