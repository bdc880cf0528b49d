"""The sweep in the app, run for real by streamlit's AppTest: the Train page launches a sweep
subprocess and follows its tasks to the end; the Results page shows its grid and plot."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from tfcnn import appstate
from tfcnn.errors import ConfigError
from tfcnn.ui import sweep as sweep_ui

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def app_env(synth_dataset, tmp_path, monkeypatch) -> Path:
    runs = tmp_path / "runs"
    monkeypatch.setenv(appstate.ENV_DATA_DIR, str(synth_dataset))
    monkeypatch.setenv(appstate.ENV_RUNS_DIR, str(runs))
    monkeypatch.setenv(appstate.ENV_CHECKPOINTS_DIR, str(tmp_path / "no-checkpoints"))
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    monkeypatch.delenv("TFCNN_APP_PASSWORD", raising=False)
    return runs


def page(name: str) -> AppTest:
    at = AppTest.from_file(str(REPO / "app.py"), default_timeout=60)
    at.switch_page(name)
    return at


def test_bad_grid_is_an_error_before_anything_starts(synth_dataset, tmp_path):
    with pytest.raises(ConfigError, match="time_filter \\(1, 99\\) does not fit"):
        sweep_ui.launch_sweep(synth_dataset, arch="time", time_filters="1x30,1x99",
                              root=tmp_path)
    with pytest.raises(ConfigError, match="seeds: cannot read 'x'"):
        sweep_ui.launch_sweep(synth_dataset, arch="time", seeds="0,x", root=tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_train_page_launches_a_sweep_and_results_show_its_grid(app_env):
    at = page("pages/2_Train.py").run()
    assert not at.exception
    inputs = {n.label: n for n in at.sidebar.number_input}
    inputs["Folds"].set_value(2)
    inputs["Max epochs (0 = preset's)"].set_value(1)
    texts = {t.label: t for t in at.sidebar.text_input}
    texts["Temporal filters (bins x frames)"].set_value("1x8,1x16")
    texts["Seeds"].set_value("0,1")
    next(b for b in at.sidebar.button if b.label == "Launch sweep").click().run()
    assert not at.exception and not at.error
    # The subprocess creates the sweep folder; its launch log exists at once.
    out = app_env / next((app_env / appstate.LAUNCHES_DIR).glob("sweep-*-time")).name

    deadline = time.monotonic() + 150
    text = ""
    while time.monotonic() < deadline:
        at.run()
        text = " ".join(m.value for m in at.markdown)
        if "`finished`" in text or "`failed`" in text:
            break
        time.sleep(1.0)
    assert f"**{out.name}** · `finished` · local engine · 8/8 tasks complete" in text, \
        sweep_ui.sweep_log_tail(out)
    tasks = next(d.value for d in at.dataframe if "task" in d.value.columns)
    assert list(tasks["state"]) == ["complete"] * 8
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
