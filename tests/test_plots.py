"""tfcnn.plots: every figure builder returns a figure whose data says what it should."""

from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import pytest

from tfcnn import plots
from tfcnn.config import CLASSES, FRONT_END, PAPER_TABLE1
from tfcnn.errors import ConfigError


@pytest.fixture
def tracks() -> pd.DataFrame:
    return pd.DataFrame({
        "dance": ["Jive", "Jive", "Waltz", "Tango", "Jive"],
        "bpm": [170.0, 172.0, 86.0, np.nan, 168.0],
    })


def test_class_counts_bar_counts_every_class_in_order(tracks):
    fig = plots.class_counts_bar(tracks)
    (bar,) = fig.data
    assert isinstance(bar, go.Bar)
    assert list(bar.x) == list(CLASSES)
    assert dict(zip(bar.x, bar.y)) == {c: {"Jive": 3, "Waltz": 1, "Tango": 1}.get(c, 0)
                                       for c in CLASSES}


def test_tempo_box_one_box_per_class_with_known_tempo(tracks):
    fig = plots.tempo_box(tracks)
    assert [t.name for t in fig.data] == ["Jive", "Waltz"]  # Tango has only NaN
    assert sorted(fig.data[0].y) == [168.0, 170.0, 172.0]
    assert all(isinstance(t, go.Box) and t.boxpoints == "all" for t in fig.data)


def test_log_mel_heatmap_time_axis_in_seconds_and_patch_lines():
    spec = np.arange(40 * 200, dtype=np.float32).reshape(40, 200)
    fig = plots.log_mel_heatmap(spec)
    (heat,) = fig.data
    assert np.asarray(heat.z).shape == (40, 200)
    assert heat.x[0] == 0.0
    assert heat.x[-1] == pytest.approx(199 / FRONT_END.frame_rate_hz)
    assert fig.layout.xaxis.title.text == "time (s)"
    # patch boundaries at 80 and 160 frames (1.86 s and 3.72 s)
    xs = sorted(shape.x0 for shape in fig.layout.shapes)
    assert xs == pytest.approx([80 / FRONT_END.frame_rate_hz, 160 / FRONT_END.frame_rate_hz])
    with pytest.raises(ConfigError, match="shape"):
        plots.log_mel_heatmap(np.zeros(10))


def test_patch_timeline_marks_each_patch_winner():
    probs = np.full((3, 8), 0.02)
    probs[0, 1] = probs[1, 1] = probs[2, 7] = 0.86
    fig = plots.patch_timeline(probs, CLASSES)
    heat, votes = fig.data
    assert np.asarray(heat.z).shape == (8, 3)
    assert list(votes.y) == ["Jive", "Jive", "Waltz"]
    assert list(votes.x) == pytest.approx([0.5 * FRONT_END.patch_seconds,
                                           1.5 * FRONT_END.patch_seconds,
                                           2.5 * FRONT_END.patch_seconds])
    with pytest.raises(ConfigError, match="patch_probs"):
        plots.patch_timeline(np.zeros((3, 5)), CLASSES)


def test_class_probability_bar_highlights_prediction():
    p = np.linspace(0.05, 0.2, 8)
    p = p / p.sum()
    fig = plots.class_probability_bar(p, CLASSES)
    (bar,) = fig.data
    assert list(bar.y) == list(CLASSES)
    assert list(bar.x) == pytest.approx(list(p))
    colours = list(bar.marker.color)
    assert colours.count("#d62728") == 1 and colours[-1] == "#d62728"  # Waltz is max
    fig = plots.class_probability_bar(p, CLASSES, predicted="Jive")
    assert list(fig.data[0].marker.color).index("#d62728") == 1


def test_training_curves_one_line_per_fold_split_and_metric():
    history = [
        {"event": "epoch", "fold": f, "epoch": e, "train_loss": 2.0 - e, "train_acc": 0.1 * e,
         "val_loss": 2.1 - e, "val_acc": 0.1 * e}
        for f in (0, 1) for e in (1, 2, 3)
    ]
    fig = plots.training_curves(history)
    assert len(fig.data) == 2 * 4
    names = [t.name for t in fig.data]
    assert "fold 0 train" in names and "fold 1 val" in names
    assert sum(bool(t.showlegend) for t in fig.data) == 4  # one entry per fold and split
    first = fig.data[0]
    assert list(first.x) == [1, 2, 3] and list(first.y) == [1.0, 0.0, -1.0]
    assert plots.training_curves([]).data == ()


def test_fold_strip_one_box_per_run():
    fig = plots.fold_strip({"time": [80.0, 85.0], "frequency": [60.0, 58.0]})
    assert [t.name for t in fig.data] == ["time", "frequency"]
    assert list(fig.data[1].y) == [60.0, 58.0]


def test_confusion_heatmap_rows_normalised_counts_as_text():
    conf = np.eye(8, dtype=int) * 4
    conf[0, 1] = 4  # class 0: half right
    fig = plots.confusion_heatmap(conf, CLASSES)
    (heat,) = fig.data
    z = np.asarray(heat.z)
    assert z[0, 0] == 0.5 and z[0, 1] == 0.5 and z[3, 3] == 1.0
    assert heat.text[0][1] == "4"
    raw = plots.confusion_heatmap(conf, CLASSES, normalise=False)
    assert np.asarray(raw.data[0].z)[0, 0] == 4
    with pytest.raises(ConfigError, match="confusion"):
        plots.confusion_heatmap(np.zeros((3, 3)), CLASSES)


def test_accuracy_vs_params_log_axis_with_paper_rows():
    rows = pd.DataFrame({"label": ["time", "blackbox"], "params": [7336, 3275312],
                         "mean": [80.0, 85.0], "std": [3.0, 2.0]})
    fig = plots.accuracy_vs_params(rows)
    assert fig.layout.xaxis.type == "log"
    paper, ours = fig.data
    assert list(ours.x) == [7336.0, 3275312.0] and list(ours.y) == [80.0, 85.0]
    assert list(ours.error_y.array) == [3.0, 2.0]
    assert list(paper.y) == [PAPER_TABLE1[n].mean for n in PAPER_TABLE1]
    assert list(paper.hovertext) == list(PAPER_TABLE1)
    lo, hi = fig.layout.xaxis.range  # decades, with room for the labels
    assert lo < np.log10(3368) and hi > np.log10(3275312)
    assert len(plots.accuracy_vs_params(rows, include_paper=False).data) == 1


def test_accuracy_vs_filter_length_seed_points_and_spread():
    rows = pd.DataFrame({"length": [30, 30, 60, 60, 120], "seed": [0, 1, 0, 1, 0],
                         "mean": [70.0, 74.0, 80.0, 80.0, None], "n_filters": [16] * 5})
    fig = plots.accuracy_vs_filter_length(rows, length_title="frames")
    seeds, line = fig.data
    assert list(seeds.y) == [70.0, 74.0, 80.0, 80.0]  # the grid point without a mean is left out
    assert list(line.x) == [30.0, 60.0] and list(line.y) == [72.0, 80.0]
    assert list(line.error_y.array) == [2.0, 0.0]  # np.std over the seeds
    assert fig.layout.xaxis.title.text == "frames"
    two = pd.concat([rows, rows.assign(n_filters=32, mean=rows["mean"] + 5)])
    fig = plots.accuracy_vs_filter_length(two, group="n_filters")
    assert len(fig.data) == 4 and fig.data[3].name.startswith("n_filters 32")
    assert list(fig.data[3].y) == [77.0, 85.0]
