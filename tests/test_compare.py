"""``python -m tfcnn compare``: reading runs and Table 1 rows, pairing folds by their test
songs, refusing to pair what cannot be paired. Run folders are written here with the
fingerprints :mod:`tfcnn.folds` gives real folds; the CLI runs as a real subprocess."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tfcnn.__main__ import main
from tfcnn.compare import compare_scores, paired_accuracies
from tfcnn.errors import RunError
from tfcnn.folds import assignment_fingerprint, fold_fingerprint, make_folds, song_keys
from tfcnn.result_sets import RUN, load_result_set, result_set

REPO = Path(__file__).resolve().parents[1]
LABELS = np.repeat(np.arange(4), 10)  # 4 classes x 10 songs
KEYS = song_keys([f"song-{i:02d}" for i in range(LABELS.size)], [f"c{y}" for y in LABELS])


def results_for(accuracies, *, seed=0, fingerprints=True, order=None) -> dict:
    """A ``results.json`` object of a run with these per-fold accuracies (5 folds, clean)."""
    folds = make_folds(LABELS, n_folds=len(accuracies), seed=seed)
    order = list(range(len(folds))) if order is None else order
    results = {"arch": "time", "protocol": "clean", "n_folds": len(folds),
               "folds": order, "per_fold": [float(accuracies[k]) for k in order]}
    if fingerprints:
        results.update(
            assignment_fingerprint=assignment_fingerprint(folds, KEYS),
            fold_fingerprints=[fold_fingerprint(folds[k], KEYS) for k in order],
            n_train_tracks=[int(folds[k].train.size) for k in order],
            n_test_tracks=[int(folds[k].test.size) for k in order])
    return results


def write_run(folder: Path, results: dict | None) -> Path:
    """A run folder: its config.json and, when given, its results.json."""
    folder.mkdir(parents=True)
    (folder / "config.json").write_text(json.dumps({"arch": "time", "n_folds": 5}))
    if results is not None:
        (folder / "results.json").write_text(json.dumps(results))
    return folder


def cli(*args) -> subprocess.CompletedProcess:
    """``python -m tfcnn compare ARGS`` as a real subprocess."""
    return subprocess.run([sys.executable, "-m", "tfcnn", "compare", *map(str, args)],
                          cwd=REPO, capture_output=True, text=True, timeout=120)


def run_main(capsys, *args) -> subprocess.CompletedProcess:
    """The same command line through ``tfcnn.__main__.main`` in this process (faster)."""
    rc = main(["compare", *map(str, args)])
    out, err = capsys.readouterr()
    return subprocess.CompletedProcess(args, rc, out, err)


A = [90.0, 92.5, 95.0, 87.5, 92.5]
B = [80.0, 85.0, 82.5, 80.0, 85.0]


def test_cli_pairs_runs_on_the_same_folds_and_prints_json(tmp_path, capsys):
    a = write_run(tmp_path / "a", results_for(A))
    # B lists its folds in another order: pairing follows the test songs, not positions
    b = write_run(tmp_path / "b", results_for(B, order=[4, 2, 0, 1, 3]))
    proc = cli(a, b, "--json")
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert set(out) >= {"mean_difference", "ci95", "p_wilcoxon", "p_corrected_t", "margin",
                        "equivalent", "verdict", "paired", "n_folds", "runs"}
    assert out["paired"] is True and out["n_folds"] == [5, 5]
    assert out["mean_difference"] == pytest.approx(np.mean(np.subtract(A, B)))
    assert out["margin"] == 2.0 and out["verdict"] == "A better" and out["ci95"][0] > 0
    # 5 folds of 40 songs, 1/9 of the rest held out: 8 tested, 28 fitted on
    assert out["test_train_ratio"] == pytest.approx(8 / 28)
    assert out["runs"] == {"a": str(a), "b": str(b)}

    text = run_main(capsys, a, b, "--margin", "12").stdout
    assert f"A ({a}) better" in text and "±12 points" in text and "paired over folds" in text


def test_cli_refuses_to_pair_different_fold_assignments(tmp_path, capsys):
    a = write_run(tmp_path / "a", results_for(A, seed=0))
    b = write_run(tmp_path / "b", results_for(B, seed=1))
    proc = cli(a, b)
    assert proc.returncode == 2 and proc.stdout == ""
    (line,) = proc.stderr.splitlines()
    assert line.startswith("error: cannot pair folds:") and "different folds" in line
    assert "unpaired" in line

    proc = run_main(capsys, a, b, "--unpaired", "--json")
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert out["paired"] is False and "unpaired" in out["method"]
    assert out["rank_test"].startswith("Wilcoxon rank-sum")
    assert "unpaired" in run_main(capsys, a, b, "--unpaired").stdout


def test_runs_without_fingerprints_are_compared_only_unpaired(tmp_path, capsys):
    old = write_run(tmp_path / "old", results_for(A, fingerprints=False))
    new = write_run(tmp_path / "new", results_for(B))
    proc = run_main(capsys, old, new)
    assert proc.returncode == 2
    (line,) = proc.stderr.splitlines()
    assert line.startswith("error: cannot pair folds:") and "did not record" in line
    out = json.loads(run_main(capsys, old, new, "--unpaired", "--json").stdout)
    assert out["paired"] is False
    # the old run's ratio is assumed, 9 / (8 (K - 1)) = 9/32 for K = 5; the larger of the
    # two runs' ratios is used (the new run's 8 tested / 28 fitted)
    assert out["test_train_ratio"] == pytest.approx(max(9 / 32, 8 / 28))
    assert any("did not record its song counts" in note for note in out["notes"])


def test_cli_compares_two_rows_of_a_table(tmp_path, capsys):
    table = tmp_path / "table1.json"
    runs = {"time": results_for(A), "frequency": results_for(B)}
    rows = [{"arch": arch, **{k: r[k] for k in ("per_fold", "fold_fingerprints",
                                                "assignment_fingerprint")}}
            for arch, r in runs.items()]
    table.write_text(json.dumps({"rows": rows, "runs": runs}))
    proc = run_main(capsys, f"{table}:time", f"{table}:frequency", "--json")
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert out["paired"] and out["runs"]["a"] == f"{table}:time"
    # rows alone (no "runs" section) pair too: the rows carry the fingerprints
    table.write_text(json.dumps({"rows": rows}))
    proc = run_main(capsys, f"{table}:time", f"{table}:frequency", "--json")
    assert json.loads(proc.stdout)["paired"]

    proc = run_main(capsys, f"{table}:blackbox", f"{table}:time")
    assert proc.returncode == 2 and "no row 'blackbox'; rows: time, frequency" in proc.stderr
    proc = run_main(capsys, table, f"{table}:time")
    assert proc.returncode == 2 and f"{table}:ARCH" in proc.stderr


@pytest.mark.parametrize("args, needle", [
    (["--margin", "0"], "margin must be a positive number"),
    (["--margin", "nan"], "margin must be a positive number"),
])
def test_cli_bad_margin_is_one_error_line(tmp_path, args, needle, capsys):
    a = write_run(tmp_path / "a", results_for(A))
    proc = run_main(capsys, a, a, *args)
    assert proc.returncode == 2 and proc.stderr.startswith("error: ") and needle in proc.stderr
    assert "Traceback" not in proc.stderr


def test_missing_run_folder_is_one_error_line(tmp_path, capsys):
    proc = run_main(capsys, tmp_path / "nowhere", tmp_path / "nowhere")
    assert proc.returncode == 2 and "does not exist" in proc.stderr
    assert len(proc.stderr.splitlines()) == 1


def test_pairing_uses_the_common_complete_folds():
    a = result_set("a", results_for(A), source=RUN)
    partial = results_for(B)
    for key in ("folds", "per_fold", "fold_fingerprints", "n_train_tracks", "n_test_tracks"):
        partial[key] = partial[key][:3]  # a run with 3 of its 5 folds complete
    b = result_set("b", partial, source=RUN)
    acc_a, acc_b = paired_accuracies(a, b)
    assert acc_a.tolist() == A[:3] and acc_b.tolist() == B[:3]
    result = compare_scores(a, b)
    assert result.paired and result.n_folds == (3, 3)
    partial.update({key: partial[key][:1] for key in ("per_fold", "fold_fingerprints")})
    with pytest.raises(RunError, match="1 complete fold.* in common; .* at least 2"):
        paired_accuracies(a, result_set("b", partial, source=RUN))


def test_load_result_set_reads_a_run_folder(tmp_path):
    folder = write_run(tmp_path / "run", results_for(A))
    scores = load_result_set(folder)
    assert scores.label == str(folder) and scores.accuracies == A and scores.pairable
    with pytest.raises(RunError, match="no results yet"):
        load_result_set(write_run(tmp_path / "started", None))
    (tmp_path / "empty").mkdir()
    with pytest.raises(RunError, match="not a run folder"):
        load_result_set(tmp_path / "empty")
