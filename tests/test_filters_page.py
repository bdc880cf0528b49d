"""The Filters page (AppTest, real checkpoints on disk) and its figure builders."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import pytest
import torch
from streamlit.testing.v1 import AppTest

from tfcnn import interpret, locations
from tfcnn.interpret import plots as iplots
from tfcnn.interpret.study import tempo_shown
from tfcnn.checkpoint import save_checkpoint
from tfcnn.config import CLASSES, FRONT_END, PRESETS
from tfcnn.errors import ConfigError
from tfcnn.models import build_model

REPO = Path(__file__).resolve().parents[1]
PAGE = "pages/5_Filters.py"
TIMEOUT_S = 300
FRAME_RATE = FRONT_END.frame_rate_hz


def cosine(bpm: float, phase: float = 0.0) -> np.ndarray:
    return np.cos(2 * np.pi * np.arange(60) * bpm / (60 * FRAME_RATE) + phase)


def save(model, path: Path) -> Path:
    save_checkpoint(path, model, classes=CLASSES, norm_mean=0.3, norm_std=1.1,
                    front_end=FRONT_END, train_config=PRESETS["quick"], metrics={})
    return path


def planted_time_model():
    torch.manual_seed(1)
    model = build_model("time", len(CLASSES))
    with torch.no_grad():
        for i, bpm in enumerate((100, 120, 176, 204)):
            model.time_branch.conv.weight[i, 0, 0] = torch.from_numpy(0.1 * cosine(bpm)).float()
    return model


# ------------------------------------------------------------------ figures

@pytest.fixture(scope="module")
def study(tmp_path_factory) -> interpret.TempoStudy:
    path = save(planted_time_model(), tmp_path_factory.mktemp("fig") / "time.safetensors")
    return interpret.tempo_study(path, probe_bpms=tuple(range(60, 225, 20)), probe_seconds=4.0,
                                 n_baseline_models=10, n_surrogates=199)


def test_filters_over_time_has_seconds_axis_and_beat_grid(study):
    fig = iplots.filters_over_time(study.filters["temporal"], grid_bpm=120.0, table=study.table)
    assert len(fig.data) == 32
    assert fig.data[0].x[-1] == pytest.approx(59 / FRAME_RATE)            # seconds, ≈ 1.37
    lines = [s for s in fig.layout.shapes if s.xref == "x"]               # first subplot
    assert [s.x0 for s in lines] == pytest.approx([0.0, 0.5, 1.0])        # 120 BPM = 0.5 s
    assert len(fig.layout.shapes) == 32 * 3
    assert fig.data[1].line.color == iplots.TUNED_COLOUR                  # planted 120 BPM
    assert study.table["periodic"].iloc[1]                                # red = the test
    fast = iplots.filters_over_time(study.filters["temporal"], grid_bpm=224.0)
    assert len(fast.layout.shapes) == 32 * 6                               # 0 .. 1.34 s
    with pytest.raises(ConfigError, match="bpm"):
        iplots.filters_over_time(study.filters["temporal"], grid_bpm=-5)


def test_heatmap_histogram_and_baseline_figures(study):
    bpms, scores = study.heatmap
    heat = iplots.periodicity_heatmap(bpms, scores, table=study.table)
    assert np.asarray(heat.data[0].z).shape == (32, len(bpms))
    marked = dict(zip(heat.data[1].y, heat.data[1].x))
    assert marked[1] == pytest.approx(120, abs=2) and marked[3] == pytest.approx(204, abs=2)
    assert set(marked) == set(study.table.loc[study.table["periodic"], "filter"])
    low = dict(zip(heat.data[1].y, heat.data[1].error_x.arrayminus))      # interval bars
    assert 5 < low[1] < 40

    hist = iplots.dominant_bpm_histogram(study.table, study.tempi, classes=study.classes,
                                         baseline=study.baseline)
    bars = [t for t in hist.data if isinstance(t, go.Bar)]
    # every filter with a tempo once; strength 0 or a peak at 60 / 224 BPM is no tempo
    shown = tempo_shown(study.table["peak_bpm"], study.table["strength"])
    assert sum(sum(b.y) for b in bars) == shown.sum() < 32
    assert shown[study.table["periodic"]].all()
    boxes = [t for t in hist.data if isinstance(t, go.Box)]
    assert [b.name for b in boxes] == list(CLASSES)

    base = iplots.baseline_strengths(study.table, study.baseline)
    assert len(base.data[0].x) == len(study.baseline.strengths) and len(base.data[1].x) == 32


def test_probe_figures(study):
    tuning = iplots.tuning_curves(study.probes, table=study.table)
    z = np.asarray(tuning.data[0].z)
    assert z.shape == (32, len(study.probes.bpms))
    assert np.nanmax(z) <= 1.0 + 1e-9 and np.nanmin(z) >= -1e-9
    tmap = iplots.tempo_class_map(study.probes, study.ranges)
    scatters = [t for t in tmap.data if isinstance(t, go.Scatter)]
    assert [s.name for s in scatters] == ["click probes (4/4)", "drums probes (4/4)",
                                          "waltz probes (3/4)"]
    assert set(scatters[0].y) <= set(CLASSES)


def test_growth_figure_has_one_line_per_statement():
    growth = pd.DataFrame({"fold": [0, 0, 0], "epoch": [0, 1, 5], "periodic": [0, 2, 4],
                           "n_filters": [32] * 3, "tuned": [0, 1, 3],
                           "tuned_expected": [0.0, 0.5, 1.0], "relevant": [0, 1, 2],
                           "relevant_expected": [0.0, 0.4, 1.5], "path": ["a", "b", "c"]})
    fig = iplots.growth_figure(growth)
    assert [t.name for t in fig.data] == ["periodic (fold 0)", "tuned (fold 0)",
                                          "class-relevant (fold 0)"]
    assert list(fig.data[0].y) == [0, 2, 4] and list(fig.data[0].x) == [0, 1, 5]


def test_filter_images_for_models_without_temporal_filters():
    freq = iplots.filter_images(np.random.default_rng(0).standard_normal((32, 32)),
                                kind="frequency")
    assert np.asarray(freq.data[0].z).shape == (32, 32)
    box = iplots.filter_images(np.random.default_rng(0).standard_normal((32, 12, 8)),
                               kind="blackbox")
    z = np.asarray(box.data[0].z, dtype=float)
    assert z.shape == (4 * 13 - 1, 8 * 9 - 1) and np.isnan(z).sum() > 0
    with pytest.raises(ConfigError, match="kind"):
        iplots.filter_images(np.zeros((3, 4)), kind="time")


# ------------------------------------------------------------------ the page

@pytest.fixture
def page_env(tmp_path, monkeypatch) -> Path:
    checkpoints = tmp_path / "checkpoints"
    save(planted_time_model(), checkpoints / "synth-time.safetensors")
    torch.manual_seed(0)
    save(build_model("frequency", len(CLASSES)), checkpoints / "synth-frequency.safetensors")
    monkeypatch.setenv(locations.ENV_CHECKPOINTS_DIR, str(checkpoints))
    monkeypatch.setenv(locations.ENV_RUNS_DIR, str(tmp_path / "runs"))
    monkeypatch.setenv(locations.ENV_DATA_DIR, str(tmp_path / "no-data"))
    return checkpoints


def filters_page() -> AppTest:
    """The app with the Filters page selected, as after a click on its sidebar link.

    (Pages run through the app's entry point, ``st.navigation``, not alone.)
    """
    at = AppTest.from_file(str(REPO / "app.py"), default_timeout=TIMEOUT_S)
    at.run()  # the entry point registers the pages (st.navigation) before one is chosen
    at.switch_page(PAGE)
    return at


def figures(at: AppTest) -> list[dict]:
    return [json.loads(el.proto.spec) for el in at.get("plotly_chart")]


def test_page_shows_the_study_of_a_time_checkpoint(page_env):
    at = filters_page().run()
    assert not at.exception, [e.value for e in at.exception]
    assert at.sidebar.selectbox[0].value == "shipped: synth-time"       # the Time model first
    verdict = at.info[0].value.split("\n\n")
    assert verdict[0].startswith("Probe → class: ") and "expected" in verdict[0]
    periodic = next(v for v in verdict if v.startswith("Periodic filters: "))
    assert "100-224 BPM" in periodic and "Below 100 BPM" in periodic     # its power, per tempo
    figs = figures(at)
    # power, trained, untrained, strengths, heatmap, histogram, 2 probes
    assert len(figs) == 8
    assert figs[0]["layout"]["title"]["text"].startswith("What the filter test finds")
    figs = figs[1:]
    assert len(figs[0]["layout"]["shapes"]) == 32 * 3                    # grid at 120 BPM
    assert len(at.dataframe) == 1 and len(at.dataframe[0].value) == 32
    columns = list(at.dataframe[0].value.columns)
    assert "Tempo (BPM, interval)" in columns and "q (FDR)" in columns
    assert not any("_" in c for c in columns)                          # readable names
    # the study is on disk beside the checkpoint: a fresh session reads it back
    assert list((page_env / ".tfcnn-cache" / "studies").glob("*.json"))

    at.sidebar.slider[0].set_value(224).run()                            # grid follows the slider
    assert not at.exception
    assert len(figures(at)[1]["layout"]["shapes"]) == 32 * 6          # [0]: power


def test_page_shows_filter_images_for_a_frequency_model(page_env):
    at = filters_page().run()
    at.sidebar.selectbox[0].select("shipped: synth-frequency").run()
    assert not at.exception, [e.value for e in at.exception]
    assert "no 1×n temporal filters" in at.info[0].value
    titles = [f["layout"]["title"]["text"] for f in figures(at)]
    assert any("frequency filters (32×1)" in t for t in titles)
    assert any("Tempo → class map" in t for t in titles)
    assert len(at.dataframe) == 0


def test_page_without_checkpoints_says_what_to_do(tmp_path, monkeypatch):
    monkeypatch.setenv(locations.ENV_CHECKPOINTS_DIR, str(tmp_path / "empty"))
    monkeypatch.setenv(locations.ENV_RUNS_DIR, str(tmp_path / "runs"))
    monkeypatch.setenv(locations.ENV_DATA_DIR, str(tmp_path / "no-data"))
    at = filters_page().run()
    assert not at.exception
    assert "No model yet" in at.info[0].value


def test_page_uses_the_chosen_data_sets_tempi(page_env, synth_dataset, folder_dataset,
                                              monkeypatch):
    monkeypatch.setenv(locations.ENV_DATA_DIR, str(synth_dataset))      # exact tempi
    at = filters_page().run()
    tempi_radio = next(r for r in at.sidebar.radio if r.label == "Class tempi")
    tempi_radio.set_value("data").run()
    assert not at.exception, [e.value for e in at.exception]
    assert "data-set tempo range" in at.info[0].value                  # probe → class line
    assert not at.warning

    monkeypatch.setenv(locations.ENV_DATA_DIR, str(folder_dataset))     # no tempo annotations
    at = filters_page().run()
    next(r for r in at.sidebar.radio if r.label == "Class tempi").set_value("data").run()
    assert not at.exception
    assert "no tempo annotations" in at.warning[0].value
    assert "Ballroom tempo range" in at.info[0].value


def test_the_shipped_models_default_studies_ship_and_are_current():
    """A fresh checkout's first Filters render reads the shipped study (`make studies`):
    missing or stale entries (new checkpoint, null tables or study format) fail here."""
    from scripts.shipped_studies import STUDIED, default_study_args

    from tfcnn import interpret
    from tfcnn.locations import checkpoints_dir

    for stem in STUDIED:
        path = checkpoints_dir() / f"{stem}.safetensors"
        for functional in (False, True):
            entry = interpret.study_cache_path(path, **default_study_args(functional))
            assert entry.is_file(), f"{entry} missing: run `make studies` and git add -f it"
            study = interpret.cache.study_from_json(
                json.loads(entry.read_text(encoding="utf-8")))
            assert study.arch == stem.removeprefix("synth-") and study.verdict is not None
            # the toggle's study holds the counterfactual the verdict's first question needs
            assert (study.functional.counterfactual is not None) == functional
