"""tfcnn.export: the Results page's CSV tables, written and read back with pandas."""

from __future__ import annotations

import io
import json

import numpy as np
import pandas as pd
import pytest

from tfcnn.config import CLASSES
from tfcnn.errors import RunError
from tfcnn.export import (confusion_frame, csv_name, datasets_of, per_fold_frame,
                          recall_frame, results_json)
from tfcnn.result_sets import RUN, SHIPPED, result_set, results_table


def round_trip(frame: pd.DataFrame, *, index: bool = False) -> pd.DataFrame:
    """The frame as the download button's CSV text, read back as a user would."""
    return pd.read_csv(io.StringIO(frame.to_csv(index=index)),
                       index_col=0 if index else None)


@pytest.fixture
def sets():
    confusion = np.eye(8, dtype=int) * 5
    confusion[0, 1] = 5  # ChaChaCha: 5 of 10 right
    confusion[7, 7] = 0  # Waltz: never tested
    shipped = result_set("shipped time", {
        "arch": "time", "n_params": 7336, "classes": list(CLASSES),
        "dataset": {"name": "SynthBallroom"}, "folds": [0, 1, 2],
        "per_fold": [92.5, 87.25, 90.0], "confusion": confusion.tolist()}, source=SHIPPED)
    run = result_set("2026-run b", {"arch": "frequency", "n_params": 3368,
                                    "dataset": {"name": "synth-tempo"}, "folds": [1, 3],
                                    "per_fold": [61.0, 66.5]}, source=RUN)
    return [shipped, run]


def test_table_csv_keeps_mean_and_std_numeric(sets):
    back = round_trip(results_table(sets))
    assert back["mean (%)"].dtype == np.float64 and back["std (%)"].dtype == np.float64
    assert back["#params"].dtype == np.int64 and back["paper #params"].dtype == np.int64
    assert list(back["mean (%)"]) == pytest.approx([np.mean([92.5, 87.25, 90.0]), 63.75])
    assert list(back["std (%)"]) == pytest.approx([np.std([92.5, 87.25, 90.0]), 2.75])
    assert list(back["dataset"]) == ["SynthBallroom", "synth-tempo"]
    assert list(back["source"]) == ["shipped", "run"]


def test_per_fold_csv_is_a_long_table_with_the_real_fold_indices(sets):
    back = round_trip(per_fold_frame(sets))
    assert list(back.columns) == ["run", "source", "dataset", "architecture", "fold",
                                  "accuracy (%)"]
    assert back["fold"].dtype == np.int64 and back["accuracy (%)"].dtype == np.float64
    assert list(back["fold"]) == [0, 1, 2, 1, 3]
    assert list(back["accuracy (%)"]) == [92.5, 87.25, 90.0, 61.0, 66.5]
    assert list(back["run"]) == ["shipped time"] * 3 + ["2026-run b"] * 2
    assert per_fold_frame([]).empty


def test_confusion_csv_is_the_matrix_of_counts(sets):
    back = round_trip(confusion_frame(sets[0]), index=True)
    assert list(back.index) == list(CLASSES) and list(back.columns) == list(CLASSES)
    assert all(dtype == np.int64 for dtype in back.dtypes)
    np.testing.assert_array_equal(back.to_numpy(), sets[0].confusion.astype(int))
    with pytest.raises(RunError, match="2026-run b: no confusion matrix"):
        confusion_frame(sets[1])


def test_recall_csv_per_class_from_the_confusion_matrix(sets):
    back = round_trip(recall_frame(sets[0])).set_index("class")
    assert back["songs"].dtype == np.int64 and back["recall (%)"].dtype == np.float64
    assert back.loc["ChaChaCha", "songs"] == 10 and back.loc["ChaChaCha", "correct"] == 5
    assert back.loc["ChaChaCha", "recall (%)"] == 50.0
    assert back.loc["Jive", "recall (%)"] == 100.0
    assert np.isnan(back.loc["Waltz", "recall (%)"])  # no test song: no recall
    assert set(back["dataset"]) == {"SynthBallroom"} and set(back["run"]) == {"shipped time"}


def test_file_names_say_table_data_set_and_result(sets):
    assert csv_name("recall", dataset="SynthBallroom", label="shipped time") == \
        "recall_SynthBallroom_shipped-time.csv"
    assert csv_name("table1", dataset=datasets_of(sets)) == \
        "table1_SynthBallroom-synth-tempo.csv"
    assert csv_name("x", dataset="a/../b", label="") == "x_a-..-b.csv"


def test_results_json_lists_every_set_with_its_folds():
    sets = [result_set("run-a", {"arch": "time", "per_fold": [70.0, 80.0], "folds": [0, 2],
                                 "dataset": "d"}, source=RUN)]
    (entry,) = json.loads(results_json(sets))
    assert entry == {"label": "run-a", "source": RUN, "dataset": "d", "arch": "time",
                     "n_params": None, "mean": 75.0, "std": 5.0, "folds": [0, 2],
                     "per_fold": [70.0, 80.0]}
