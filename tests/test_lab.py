"""The SynthBallroom lab: chance interval, scenario × architecture verdicts, the heatmap,
and the app's lab views (generate a scenario, pick it, the matrix), run for real by AppTest."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from streamlit.testing.v1 import AppTest

from tfcnn import locations, plots
from tfcnn.errors import ConfigError
from tfcnn.paths import ENV_ALLOWED_ROOTS
from tfcnn.result_sets import RUN, SHIPPED, TableFile, result_set
from tfcnn.synth.lab import (accuracy_matrix, chance_interval, matrix_cells, matrix_text,
                             scenario_of, verdicts)

REPO = Path(__file__).resolve().parents[1]


# ----------------------------------------------------------------------------- statistics

def test_chance_interval_is_calibrated():
    lo, hi = chance_interval(480)
    assert 9.0 < lo < 12.5 < hi < 16.0
    # A guessing classifier on 480 tracks lands outside at most ~5 % of the time.
    rng = np.random.default_rng(0)
    acc = 100.0 * rng.binomial(480, 1 / 8, size=20000) / 480
    outside = np.mean((acc < lo) | (acc > hi))
    assert 0.02 < outside <= 0.05
    with pytest.raises(ConfigError, match="n_tracks.*0"):
        chance_interval(0)


def test_scenario_of_dataset_names():
    assert scenario_of("SynthBallroom") == "paper"
    assert scenario_of("SynthBallroom-timbre") == "timbre"
    assert scenario_of("Ballroom") is None and scenario_of(None) is None


def _row(dataset, arch, per_fold, n_tracks=480):
    per_fold = [float(a) for a in per_fold]
    return {"dataset": dataset, "arch": arch, "mean": float(np.mean(per_fold)),
            "std": float(np.std(per_fold)), "per_fold": per_fold, "n_tracks": n_tracks,
            "wall_s": 600.0}


def test_verdicts_follow_the_expectations():
    rng = np.random.default_rng(1)
    folds = lambda m: m + rng.normal(0, 3, 10)  # noqa: E731
    rows = [
        _row("SynthBallroom-tempo", "time", folds(70)),
        _row("SynthBallroom-tempo", "frequency", folds(30)),
        _row("SynthBallroom-timbre", "time", folds(60)),       # Time above Frequency:
        _row("SynthBallroom-timbre", "frequency", folds(40)),  # contradicts the expectation
        _row("SynthBallroom-shuffled", "time", folds(12.5) * 0 + 12.5),
        _row("SynthBallroom-shuffled", "frequency", folds(30)),  # leakage would show here
        _row("SynthBallroom-rhythm", "time", folds(50)),
        _row("SynthBallroom-rhythm", "frequency", folds(45)),  # above, but not far above
        _row("SynthBallroom-tempo", "timefreq", folds(72)),
        _row("Ballroom", "time", folds(80)),  # not a scenario: left out
    ]
    cells = matrix_cells([result_set(f"run-{i}", row, source=RUN)
                          for i, row in enumerate(rows)])
    got = {(v.scenario, v.arch): v.ok for v in verdicts(cells)}
    assert got == {
        ("tempo", "time"): True, ("tempo", "frequency"): True, ("tempo", "timefreq"): None,
        ("rhythm", "time"): False, ("rhythm", "frequency"): False,
        ("timbre", "time"): False, ("timbre", "frequency"): False,
        ("shuffled", "time"): True, ("shuffled", "frequency"): False,
    }
    matrix = accuracy_matrix(cells)
    assert list(matrix.index) == ["tempo", "rhythm", "timbre", "shuffled"]
    assert list(matrix.columns) == ["time", "frequency", "timefreq"]
    assert np.isnan(matrix.loc["rhythm", "timefreq"])
    text = matrix_text(cells)
    assert "| tempo |" in text and "✓ (10 min)" in text and "✗" in text


def colour_at(scale, z: float, zmin: float = 0.0, zmax: float = 100.0) -> tuple[int, ...]:
    """The (r, g, b) a plotly colour scale gives to ``z``, interpolated as plotly does."""
    pos = (z - zmin) / (zmax - zmin)
    stops = [(p, tuple(int(v) for v in c[4:-1].split(","))) for p, c in scale]
    for (p0, c0), (p1, c1) in zip(stops, stops[1:]):
        if p0 <= pos <= p1:
            w = 0.0 if p1 == p0 else (pos - p0) / (p1 - p0)
            return tuple(round(a + w * (b - a)) for a, b in zip(c0, c1))
    raise AssertionError(f"{z} outside the scale")


def test_scenario_heatmap_marks_chance():
    matrix = pd.DataFrame({"time": [70.0, 12.0], "frequency": [30.0, np.nan]},
                          index=["tempo", "shuffled"])
    fig = plots.scenario_heatmap(matrix)
    (trace,) = fig.data
    assert trace.type == "heatmap" and list(trace.x) == ["time", "frequency"]
    assert (trace.zmin, trace.zmax) == (0.0, 100.0)
    # White at chance (plotly ignores zmid once zmin/zmax are set: the scale itself moves).
    assert colour_at(trace.colorscale, 12.5) == (255, 255, 255)
    assert colour_at(trace.colorscale, 0.0) == (103, 0, 31)  # below chance: red
    assert colour_at(trace.colorscale, 100.0) == (5, 48, 97)  # above: blue
    r, g, b = colour_at(trace.colorscale, 50.0)
    assert b > r and (r, g, b) != (255, 255, 255)  # 50 % is well above chance: blue
    r, g, b = colour_at(trace.colorscale, 10.0)
    assert r > b  # just below chance: reddish, not the blue 50 % used to get
    assert "chance 12.5" in trace.colorbar.ticktext
    assert trace.text[1][1] == "—"
    with pytest.raises(ConfigError, match="no scenario"):
        plots.scenario_heatmap(pd.DataFrame())


# ----------------------------------------------------------------------------- the app

@pytest.fixture
def lab_env(tmp_path, monkeypatch):
    from tfcnn.synth import generate

    root = tmp_path / "data"
    default = generate(root / "synth-ballroom", per_class=1, seconds=2.0, progress=False)
    ckpt = tmp_path / "checkpoints"
    ckpt.mkdir()
    rows = [_row(f"SynthBallroom-{sc}", arch, np.full(10, m), n_tracks=160)
            for sc, arch, m in [("tempo", "time", 60.0), ("tempo", "frequency", 20.0),
                                ("shuffled", "time", 12.5)]]
    (ckpt / "table1-scenarios.json").write_text(json.dumps({"rows": rows}))
    # The shipped default table: its rows are the paper scenario's (data set SynthBallroom).
    paper = {arch: _row("SynthBallroom", arch, np.full(10, m))
             for arch, m in [("time", 85.0), ("frequency", 60.0)]}
    (ckpt / "table1-synth.json").write_text(json.dumps(
        {"rows": list(paper.values()), "runs": {a: {**r, "arch": a} for a, r in paper.items()}}))
    monkeypatch.setenv(locations.ENV_DATA_DIR, str(default))
    monkeypatch.setenv(ENV_ALLOWED_ROOTS, str(root))  # the operator allows the data root
    monkeypatch.setenv(locations.ENV_RUNS_DIR, str(tmp_path / "runs"))
    monkeypatch.setenv(locations.ENV_CHECKPOINTS_DIR, str(ckpt))
    return {"root": root, "default": default}


def _page(name: str) -> AppTest:
    at = AppTest.from_file(str(REPO / "app.py"), default_timeout=60)
    at.switch_page(name)
    return at


def test_data_page_generates_a_scenario_and_the_sidebar_picks_it(lab_env):
    at = _page("pages/1_Data.py").run()
    assert not at.exception
    assert not [s for s in at.sidebar.selectbox if s.label == "Scenario"]  # one set only
    form_select = next(s for s in at.selectbox if s.label == "Scenario")
    form_select.set_value("tempo")
    at.number_input[0].set_value(1)
    at.number_input[1].set_value(2.0)
    next(b for b in at.button if b.label == "Generate").click().run()
    assert not at.exception, [e.value for e in at.exception]
    out = lab_env["root"] / "synth-tempo"
    assert (out / "metadata.csv").is_file() and (out / "scenario.json").is_file()
    assert any("synth-tempo" in s.value for s in at.success)
    assert any("generating tempo: 8 / 8" in p.proto.text for p in at.get("progress"))

    # The sets present, and the sidebar now offers both.
    again = _page("pages/1_Data.py").run()
    listed = again.dataframe[0].value
    assert list(listed["scenario"]) == ["paper", "tempo"]
    pick = next(s for s in again.sidebar.selectbox if s.label == "Scenario")
    pick.set_value(str(out.resolve())).run()
    assert not again.exception
    # The session's data set is now the tempo scenario (the Data page names it).
    assert any("SynthBallroom-tempo" in c.value for c in again.caption)


def test_results_page_shows_the_scenario_matrix(lab_env):
    at = _page("pages/3_Results.py").run()
    assert not at.exception, [e.value for e in at.exception]
    heat = [c for c in at.get("plotly_chart") if "Scenario" in c.proto.spec]
    assert len(heat) == 1
    verdict = next(t.value for t in at.table if "verdict" in t.value.columns)
    assert dict(zip(verdict.index + "/" + verdict["architecture"],
                    verdict["verdict"])) == {"paper/time": "✓", "paper/frequency": "✓",
                                             "tempo/time": "✓", "tempo/frequency": "✓",
                                             "shuffled/time": "✓"}
    # each set size gets its own chance interval (160 scenario tracks, 480 paper tracks)
    chance = next(c.value for c in at.caption if c.value.startswith("Chance 12.5 %"))
    assert "on 160 tracks (tempo, shuffled): 7.5-18.1 %" in chance
    assert "on 480 tracks (paper): 9.6-15.6 %" in chance


# ----------------------------------------------------------------------------- the recipe

def test_scenarios_recipe_script_on_a_tiny_set(tmp_path):
    """``make scenarios``' script, cut down to two scenarios, one arch, two seeds and one
    epoch; ``paper`` brings the conflict set and its evaluation by every paper fold model."""
    from scripts.train_scenarios import main

    out = tmp_path / "table1-scenarios.json"
    args = ["--data-root", str(tmp_path / "data"), "--scenarios", "tempo,paper",
            "--archs", "time", "--per-class", "3", "--seconds", "2", "--folds", "3",
            "--seeds", "0,1", "--runs", str(tmp_path / "runs"), "--out", str(out),
            "--threads", "1", "--device", "cpu", "--note", "tiny", "--quiet"]
    assert main(args + ["--epochs", "1"]) == 0
    table = json.loads(out.read_text())
    assert table["recipe"]["per_class"] == 3 and not table["recipe"]["default_size"]
    assert table["recipe"]["seeds"] == [0, 1] and "--seeds 0,1" in table["recipe"]["command"]
    assert table["note"].endswith("tiny")
    assert set(table["scenarios"]) == {"tempo", "paper", "conflict"}
    assert table["scenarios"]["tempo"]["dataset"] == "SynthBallroom-tempo"
    assert table["scenarios"]["tempo"]["n_tracks"] == 24
    assert sorted(table["runs"]) == ["paper/time/s0", "paper/time/s1", "tempo/time/s0",
                                     "tempo/time/s1"]
    assert (tmp_path / "runs" / "tempo-time-s1" / "results.json").is_file()
    # the two seeds are two cross-validations (the seed draws the folds), pooled in one cell
    cells = matrix_cells(TableFile.read(out).result_sets())
    assert [(c.scenario, c.arch, c.seeds, len(c.per_fold), c.n_tracks) for c in cells] == [
        ("paper", "time", (0, 1), 6, 24), ("tempo", "time", (0, 1), 6, 24)]
    tempo = cells[1]
    means = [r["mean"] for r in table["rows"] if r["scenario"] == "tempo"]
    assert tempo.mean == pytest.approx(np.mean(means))
    assert tempo.seed_std == pytest.approx(np.std(means))
    # the conflict set (another data seed): 3 fold models × 2 seeds of time predicted every
    # one of its 24 tracks; the tempo scenario's models are the control
    arch, control = table["conflict"]["architectures"]
    assert arch["arch"] == "time" and arch["n_models"] == 6 and arch["n_tracks"] == 24
    assert control["arch"] == "time trained on tempo" and control["n_models"] == 6
    assert table["conflict"]["set"] == {"per_class": 3, "seconds": 2.0, "seed": 1000}
    shares = arch["shares"]
    assert sum(shares[k]["share"] for k in ("tempo", "rhythm", "timbre", "none")) == (
        pytest.approx(1.0))
    # Rebuilding from the finished runs keeps every row and the conflict entry, and no set
    # is generated again.
    out.unlink()
    assert main(args + ["--table-only"]) == 0
    again = json.loads(out.read_text())
    assert again["rows"] == table["rows"]
    assert again["conflict"]["architectures"] == table["conflict"]["architectures"]


def test_a_run_with_fewer_folds_does_not_replace_a_fuller_cell():
    from tfcnn.synth.lab import matrix_cells

    row = {"dataset": "SynthBallroom", "arch": "time", "mean": 91.0, "std": 3.0,
           "per_fold": [91.0] * 10}
    shipped = result_set("shipped", row, source=SHIPPED)
    demo = result_set("demo", {**row, "mean": 60.0, "per_fold": [60.0, 60.0]}, source=RUN)
    rerun = result_set("rerun", {**row, "mean": 90.0, "per_fold": [90.0] * 10}, source=RUN)
    assert [c.mean for c in matrix_cells([shipped, demo])] == [91.0]
    assert [c.mean for c in matrix_cells([shipped, demo, rerun])] == [90.0]


def test_results_page_shows_cues_in_conflict_and_measured_calibration(lab_env):
    """The shipped cue-conflict report and the shipped models' calibration, as shipped."""
    ckpt = Path(locations.checkpoints_dir())
    for name in (locations.SHIPPED_CONFLICT, locations.SHIPPED_RELIABILITY):
        (ckpt / name).write_bytes((REPO / "checkpoints" / name).read_bytes())
    at = _page("pages/3_Results.py").run()
    assert not at.exception, [e.value for e in at.exception]
    shipped = json.loads((REPO / "checkpoints" / locations.SHIPPED_CONFLICT).read_text())
    cues = next(d.value for d in at.dataframe if "tempo (%)" in d.value.columns)
    assert list(cues["architecture"]) == [a["arch"] for a in shipped["architectures"]]
    assert list(cues["verdict"]) == [a["verdict"] for a in shipped["architectures"]]
    assert any("Cue conflict" in c.proto.spec or "whose dance" in c.proto.spec
               for c in at.get("plotly_chart"))
    ece = next(d.value for d in at.dataframe if "ECE (%)" in d.value.columns)
    measured = json.loads((REPO / "checkpoints" / locations.SHIPPED_RELIABILITY).read_text())
    assert sorted(ece["ECE (%)"]) == sorted(round(100 * m["ece"], 1)
                                            for m in measured["models"].values())
    assert any("Reliability on test songs" in c.proto.spec for c in at.get("plotly_chart"))
