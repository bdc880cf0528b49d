"""scripts/sweep_measure.py for real on the tiny synthetic set: both engines, one after the
other, 2 temporal filters × 2 seeds × 2 folds × 1 epoch, and the report it writes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from tfcnn.runs import complete_folds
from tfcnn.sweep import grid_rows

ROOT = Path(__file__).resolve().parents[1]


def test_measures_both_engines_and_writes_the_table(synth_dataset, tmp_path):
    out = tmp_path / "measure"
    proc = subprocess.run(
        [sys.executable, "-m", "scripts.sweep_measure", str(synth_dataset), "--out", str(out),
         "--time-filter", "1x8,1x16", "--seeds", "0,1", "--folds", "2", "--epochs", "1",
         "--device", "cpu"], cwd=ROOT, capture_output=True, text=True, timeout=600,
        env={**os.environ, "OMP_NUM_THREADS": "1", "RAY_USAGE_STATS_ENABLED": "0"})
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.loads((out / "report.json").read_text())
    assert [e["engine"] for e in report["engines"]] == ["local", "ray"]
    for engine in report["engines"]:
        folder = out / engine["engine"]
        assert engine["returncode"] == 0 and engine["folder"] == str(folder)
        assert 0 < engine["sweep_wall_s"] <= engine["process_wall_s"]
        assert [(p["time_filter"], p["seed"]) for p in engine["points"]] == [
            ("1x8", 0), ("1x8", 1), ("1x16", 0), ("1x16", 1)]
        # The report holds what the sweep folder holds: two folds per grid point.
        rows = grid_rows(folder)
        assert [p["accuracies"] for p in engine["points"]] == [r["accuracies"] for r in rows]
        assert all(len(p["accuracies"]) == 2 for p in engine["points"])
        assert complete_folds(folder / "t1x16-s1") == [0, 1]
        for setting in engine["summary"]:
            means = [p["mean"] for p in engine["points"]
                     if p["time_filter"] == setting["time_filter"]]
            assert setting["n_seeds"] == 2
            assert abs(setting["mean"] - sum(means) / 2) < 1e-9
            assert abs(setting["seed_std"] - abs(means[0] - means[1]) / 2) < 1e-9
    markdown = (out / "report.md").read_text()
    assert markdown == proc.stdout
    assert "| local | " in markdown and "| ray | " in markdown
    assert "| 1x16 | " in markdown and "seed 1" in markdown and "over seeds" in markdown
