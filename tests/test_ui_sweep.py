"""The sweep in the app, run for real by streamlit's AppTest: the Train page queues a sweep
behind a running training run (one launch slot), starts it when the run ends and follows its
tasks to the end; the Results page shows its grid and plot. The sweep controls refuse a
filter wider than the patch with the CLI's own message."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from tfcnn import launches, locations, runs
from tfcnn.__main__ import build_parser
from tfcnn.errors import ConfigError
from tfcnn.request import RunRequest, SweepRequest
from tfcnn.result_sets import sweep_reports
from tfcnn.sweep import read_events
from tfcnn.ui import sweep as sweep_ui

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def app_env(synth_dataset, tmp_path, monkeypatch) -> Path:
    runs = tmp_path / "runs"
    monkeypatch.setenv(locations.ENV_DATA_DIR, str(synth_dataset))
    monkeypatch.setenv(locations.ENV_RUNS_DIR, str(runs))
    monkeypatch.setenv(locations.ENV_CHECKPOINTS_DIR, str(tmp_path / "no-checkpoints"))
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    monkeypatch.delenv("TFCNN_APP_PASSWORD", raising=False)
    return runs


def page(name: str) -> AppTest:
    at = AppTest.from_file(str(REPO / "app.py"), default_timeout=60)
    at.run()  # the entry point registers the pages (st.navigation) before one is chosen
    at.switch_page(name)
    return at


def test_the_page_controls_make_the_sweep_the_cli_makes(synth_dataset, tmp_path):
    base = RunRequest(synth_dataset, "frequency", n_folds=3, epochs=2, freq_filter=(20, 1))
    sweep = sweep_ui.grid_request(base, arch="time", time_filters="1x30,1x60",
                                  n_filters=" 8 ", seeds="0,1")
    cli = SweepRequest.from_args(build_parser().parse_args(["sweep", *sweep.argv()]))
    assert cli == sweep and sweep.base.n_folds == 3 and sweep.base.epochs == 2
    assert [p.name for p in sweep.points()] == ["t1x30-n8-s0", "t1x30-n8-s1", "t1x60-n8-s0",
                                                "t1x60-n8-s1"]


def test_bad_grid_is_an_error_before_anything_starts(synth_dataset, tmp_path):
    base = RunRequest(synth_dataset, "time")
    with pytest.raises(ConfigError, match="time_filter \\(1, 99\\) does not fit"):
        sweep_ui.grid_request(base, arch="time", time_filters="1x30,1x99")
    with pytest.raises(ConfigError, match="seeds: cannot read 'x'"):
        sweep_ui.grid_request(base, arch="time", seeds="0,x")
    sweep = sweep_ui.grid_request(base, arch="time", time_filters="1x30")
    with pytest.raises(ConfigError, match="unknown engine 'slurm'"):
        sweep_ui.launch_sweep(sweep, engine="slurm", root=tmp_path)
    assert list(tmp_path.iterdir()) == []


#: What the CLI and the app say to ``--time-filter 1x30,1x120`` (the paper's 80-frame patch).
TOO_WIDE = ("time_filter (1, 120) does not fit its input of 40 x 80 (bands x frames): 1x120 "
            "is 120 frames wide but a patch is 80 frames; the largest that fits is 1x80")


def test_sweep_controls_refuse_a_filter_wider_than_the_patch_as_the_cli_does(app_env,
                                                                             synth_dataset):
    cli = subprocess.run([sys.executable, "-m", "tfcnn", "sweep", str(synth_dataset),
                          "--arch", "time", "--time-filter", "1x30,1x120", "--out",
                          str(app_env / "never")], cwd=REPO, capture_output=True, text=True,
                         timeout=120, env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert cli.returncode == 2 and cli.stderr.strip().splitlines() == [f"error: {TOO_WIDE}"]

    at = page("pages/2_Train.py").run()
    texts = {t.label: t for t in at.sidebar.text_input}
    texts["Temporal filters (bands x frames)"].set_value("1x30,1x120").run()
    assert not at.exception
    assert [e.value for e in at.sidebar.error] == [TOO_WIDE]
    assert next(b for b in at.sidebar.button if b.label == "Launch sweep").disabled
    texts = {t.label: t for t in at.sidebar.text_input}
    texts["Temporal filters (bands x frames)"].set_value("1x30,1x80").run()
    assert not at.sidebar.error
    assert not next(b for b in at.sidebar.button if b.label == "Launch sweep").disabled
    assert not (app_env / "never").exists() and not (app_env / runs.LAUNCHES_DIR).exists()


def test_task_status_lines():
    base = {"epoch": 0, "max_epochs": 20, "accuracy": None, "attempts": 0, "message": None}
    assert sweep_ui.task_status({**base, "state": "pending"}) == "queued"
    assert sweep_ui.task_status({**base, "state": "pending"}, active=False) == "not trained"
    assert sweep_ui.task_status({**base, "state": "running", "epoch": 3, "attempts": 1}) \
        == "running · epoch 3/20"
    assert sweep_ui.task_status({**base, "state": "complete", "accuracy": 87.5,
                                 "attempts": 1}) == "done · 87.50 %"
    assert sweep_ui.task_status({**base, "state": "failed", "attempts": 1,
                                 "message": "worker died"}) == "failed: worker died"
    # Retried: by Ray after its worker died (no failure recorded), or by --resume.
    assert sweep_ui.task_status({**base, "state": "running", "epoch": 1, "attempts": 2}) \
        == "running · epoch 1/20 · attempt 2"
    assert sweep_ui.task_status({**base, "state": "pending", "attempts": 1,
                                 "message": "worker died"}) \
        == "queued · attempt 2 (an earlier attempt failed: worker died)"
    assert sweep_ui.task_status({**base, "state": "complete", "accuracy": 50.0,
                                 "attempts": 2, "message": "worker died"}) \
        == "done · 50.00 % · attempt 2 (an earlier attempt failed: worker died)"


def _sweep_launches(runs_root: Path) -> list[Path]:
    """The sweeps launched into ``runs_root``, in the order they were queued."""
    records = [(runs.read_launch(runs_root / p.name), runs_root / p.name)
               for p in (runs_root / runs.LAUNCHES_DIR).iterdir() if p.is_dir()]
    return [path for record, path in sorted(
        ((r, p) for r, p in records if r and r.get("kind") == runs.SWEEP_KIND),
        key=lambda rp: (rp[0]["queued"], rp[1].name))]


def _head(at: AppTest, out: Path) -> str:
    return next((m.value for m in at.markdown if f"**{out.name}**" in m.value), "")


def test_train_page_queues_a_sweep_behind_a_run_then_follows_it(app_env, monkeypatch):
    monkeypatch.setenv(launches.ENV_MAX_RUNS, "1")
    at = page("pages/2_Train.py").run()
    assert not at.exception
    next(s for s in at.sidebar.selectbox if s.label == "Architecture").set_value("time")
    inputs = {n.label: n for n in at.sidebar.number_input}
    inputs["Folds"].set_value(2)
    inputs["Max epochs (0 = preset's)"].set_value(1)
    at.button(key="launch").click().run()
    run_dir = app_env / next((app_env / runs.LAUNCHES_DIR).glob("*-time-quick")).name
    assert runs.read_launch(run_dir)["state"] == runs.STARTED

    # The cap is 1 and the run holds the slot: the sweep waits, shown as queued.
    texts = {t.label: t for t in at.sidebar.text_input}
    texts["Temporal filters (bands x frames)"].set_value("1x8,1x16")
    texts["Seeds"].set_value("0,1")
    next(b for b in at.sidebar.button if b.label == "Launch sweep").click().run()
    assert not at.exception and not at.error
    (out,) = _sweep_launches(app_env)
    assert runs.read_launch(out)["state"] == runs.QUEUED and not out.exists()
    assert _head(at, out).startswith(f"**{out.name}** · `queued` · local engine · 0/8 tasks")
    tasks = next(d.value for d in at.dataframe if "status" in d.value.columns)
    assert list(tasks["status"]) == ["queued"] * 8
    assert any("Waiting for a free slot" in c.value for c in at.caption)
    # The training runs list does not take the sweep for a run.
    assert not any(f"**{out.name}** · time ·" in m.value for m in at.markdown)

    # A second sweep, cancelled while queued: withdrawn, never started.
    texts = {t.label: t for t in at.sidebar.text_input}
    texts["Temporal filters (bands x frames)"].set_value("1x8")
    texts["Seeds"].set_value("0")
    next(b for b in at.sidebar.button if b.label == "Launch sweep").click().run()
    second = _sweep_launches(app_env)[1]
    at.button(key=f"cancel-{second.name}").click().run()
    assert runs.read_launch(second)["state"] == runs.WITHDRAWN
    at.run()  # the card was drawn before its button acted
    assert "`cancelled`" in _head(at, second)

    deadline = time.monotonic() + 400  # the run, then the sweep's 8 tasks, on a busy machine
    head = ""
    while time.monotonic() < deadline:
        at.run()
        head = _head(at, out)
        if "`finished`" in head or "`failed`" in head:
            break
        time.sleep(1.0)
    assert f"**{out.name}** · `finished` · local engine · 8/8 tasks complete" in head, \
        sweep_ui.sweep_log_tail(out)
    # Started by the queue once the run had ended.
    record = runs.read_launch(out)
    assert record["state"] == runs.STARTED and record["process"]["started"] > 0
    sweep_started = next(e["started"] for e in read_events(out) if e["event"] == "sweep_start")
    assert runs.read_status(run_dir)["state"] == "finished"
    assert runs.read_status(run_dir)["finished"] <= sweep_started
    assert runs.read_launch(second)["state"] == runs.WITHDRAWN and not second.exists()

    tasks = next(d.value for d in at.dataframe if "status" in d.value.columns
                 and len(d.value) == 8)
    assert list(tasks["state"]) == ["complete"] * 8
    assert all(s.startswith("done · ") and s.endswith(" %") for s in tasks["status"])
    assert tasks["progress"].tolist() == [1.0] * 8

    results = page("pages/3_Results.py").run()
    assert not results.exception
    grid = next(d.value for d in results.dataframe if "point" in d.value.columns)
    assert list(grid["point"]) == ["t1x8-s0", "t1x8-s1", "t1x16-s0", "t1x16-s1"]
    assert list(grid["n_folds_complete"]) == [2, 2, 2, 2]
    spread = next(d.value for d in results.dataframe if "n_seeds" in d.value.columns)
    assert list(spread["time_filter"]) == ["1x8", "1x16"] and list(spread["n_seeds"]) == [2, 2]
    figure = results.get("plotly_chart")
    assert any("filter length" in chart.proto.spec for chart in figure)


def test_results_page_shows_the_shipped_sweep(app_env, tmp_path, monkeypatch):
    """The shipped sweep report (checkpoints/sweep-*.json) is listed per engine on Results,
    with its nine grid points and the per-shape summary read from the report."""
    shipped = tmp_path / "shipped"
    shipped.mkdir()
    report = REPO / "checkpoints" / "sweep-tempo-time.json"
    (shipped / report.name).write_bytes(report.read_bytes())
    (shipped / "sweep-broken.json").write_text("{not json", encoding="utf-8")
    monkeypatch.setenv(locations.ENV_CHECKPOINTS_DIR, str(shipped))
    found = sweep_reports(shipped)
    assert [label for label, _, _ in found] == [
        "shipped: sweep-tempo-time (local engine)", "shipped: sweep-tempo-time (ray engine)"]
    frame = sweep_ui.shipped_grid_frame(found[0][2])
    assert sorted(set(frame["length"])) == [30.0, 60.0, 80.0] and len(frame) == 9

    at = page("pages/3_Results.py").run()
    assert not at.exception
    box = next(s for s in at.selectbox if s.label == "Sweep")
    assert box.options == [label for label, _, _ in found]
    tables = [d.value for d in at.dataframe]
    summary = next(t for t in tables if "seed_std" in t.columns)
    local = {p["time_filter"]: p["mean"] for p in found[0][2]["summary"]}
    assert dict(zip(summary["time_filter"], summary["mean"])) == local
    # every pair of filter lengths over the 3 seeds' 30 folds, Holm over the 3 pairs
    family = next(t for t in tables if "p (Holm)" in t.columns)
    assert list(family["A − B"]) == ["1x60 − 1x30", "1x80 − 1x30", "1x60 − 1x80"]
    assert list(family["verdict (family)"]) == ["A better", "inconclusive", "inconclusive"]
    assert set(family["paired folds"]) == {30}
    assert any("Holm-adjusted over the 3 contrasts" in c.value for c in at.caption)
    # Accuracies shown in % with one decimal (25.625 reads "25.6"), still numbers underneath.
    shown = next(d for d in at.dataframe if "seed_std" in d.value.columns)
    config = json.loads(shown.proto.columns)
    assert {col: config[col]["type_config"]["format"] for col in ("mean", "seed_std", "min")} \
        == {"mean": "%.1f", "seed_std": "%.1f", "min": "%.1f"}
    assert config["mean"]["label"] == "mean (%)"
