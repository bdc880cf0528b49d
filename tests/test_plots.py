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
    assert [t.name for t in fig.data if t.showlegend] == ["fold 0", "fold 1"]
    assert [t.line.dash for t in fig.data[:4]] == ["solid", "dash", "solid", "dash"]
    first = fig.data[0]
    assert list(first.x) == [1, 2, 3] and list(first.y) == [1.0, 0.0, -1.0]
    assert plots.training_curves([]).data == ()
    assert {t.mode for t in fig.data} == {"lines"}
    # after a fold's first epoch its curves are single points: drawn as markers, not as
    # lines that plotly would leave empty
    first_epoch = plots.training_curves([r for r in history if r["epoch"] == 1])
    assert {t.mode for t in first_epoch.data} == {"markers"}


def test_training_curves_accuracy_in_percent_and_whole_epochs():
    history = [{"fold": 0, "epoch": e, "train_loss": 1.0, "train_acc": 0.25 * e,
                "val_loss": 1.1, "val_acc": 0.2 * e} for e in (1, 2, 3)]
    fig = plots.training_curves(history)
    train_acc = next(t for t in fig.data if t.xaxis == "x2" and t.line.dash == "solid")
    assert list(train_acc.y) == pytest.approx([25.0, 50.0, 75.0])
    assert fig.layout.yaxis2.title.text == "accuracy (%)"
    assert fig.layout.yaxis.title.text == "loss"
    for axis in (fig.layout.xaxis, fig.layout.xaxis2):  # 3 epochs: a tick per epoch, no 1.5
        assert axis.dtick == 1 and axis.tickformat == "d" and axis.tickmode == "linear"
    # one title, no subplot titles (annotations) that could sit on top of it
    assert fig.layout.title.text.startswith("Training curves") and not fig.layout.annotations


@pytest.mark.parametrize("n_epochs, dtick", [(3, 1), (8, 1), (9, 2), (40, 5), (98, 20),
                                             (150, 20), (400, 50)])
def test_epoch_axis_steps_are_whole_epochs(n_epochs, dtick):
    axis = plots.epoch_axis(n_epochs)
    assert axis["dtick"] == dtick and n_epochs / dtick <= 8


def test_training_curves_stages_continue_one_line_per_fold():
    history = [{"fold": 0, "stage": stage, "epoch": e, "train_loss": 1.0, "train_acc": 0.5,
                "val_loss": 1.0, "val_acc": 0.5}
               for stage, n in (("time", 3), ("frequency", 2), ("timefreq", 4))
               for e in range(1, n + 1)]
    fig = plots.training_curves(history)
    assert list(fig.data[0].x) == list(range(1, 10))  # 3 + 2 + 4 epochs, in stage order
    assert [row[1] for row in fig.data[0].customdata][3] == "frequency"
    assert fig.layout.xaxis.title.text == "epoch (over the stages)"


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


def params_rows() -> pd.DataFrame:
    """Two series at the same parameter count (shipped and a run, both ``time``)."""
    return pd.DataFrame({
        "series": ["shipped (SynthBallroom)", "shipped (SynthBallroom)", "run-2"],
        "arch": ["time", "blackbox", "time"], "params": [7336, 3275312, 7336],
        "mean": [80.0, 85.0, 79.0], "std": [3.0, 2.0, 4.0]})


def test_accuracy_vs_params_log_axis_one_trace_per_series():
    fig = plots.accuracy_vs_params(params_rows())
    assert fig.layout.xaxis.type == "log"
    assert [t.name for t in fig.data] == ["paper (Ballroom)", "shipped (SynthBallroom)",
                                          "run-2"]
    paper, shipped, run = fig.data
    assert [c[0] for c in shipped.customdata] == [7336.0, 3275312.0]  # exact counts
    assert list(shipped.y) == [80.0, 85.0] and list(shipped.error_y.array) == [3.0, 2.0]
    assert list(paper.y) == [PAPER_TABLE1[n].mean for n in PAPER_TABLE1]
    # same count, drawn side by side: the run's point is not on top of the shipped one
    assert run.x[0] != shipped.x[0]
    assert abs(np.log10(run.x[0]) - np.log10(7336)) <= 0.07
    assert len(plots.accuracy_vs_params(params_rows(), include_paper=False).data) == 2


def test_accuracy_vs_params_one_label_per_parameter_count_no_duplicates():
    fig = plots.accuracy_vs_params(params_rows())
    texts = [a.text for a in fig.layout.annotations]
    assert len(texts) == len(set(texts))
    assert sorted(texts) == sorted(["time", "blackbox", "frequency", "timefreq"])
    assert all(t.mode == "markers" for t in fig.data)  # no text on the points themselves
    same = pd.DataFrame({"series": ["a", "b"], "arch": ["timefreq", "timefreq-init"],
                         "params": [196816, 196816], "mean": [90.0, 91.0], "std": [1.0, 1.0]})
    texts = [a.text for a in plots.accuracy_vs_params(same, include_paper=False)
             .layout.annotations]
    assert texts == ["timefreq / timefreq-init"]


def test_accuracy_vs_params_ranges_hold_every_point_bar_and_label():
    fig = plots.accuracy_vs_params(params_rows())
    x_lo, x_hi = fig.layout.xaxis.range  # decades
    y_lo, y_hi = fig.layout.yaxis.range
    for trace in fig.data:
        lx = np.log10(np.asarray(trace.x, dtype=float))
        assert (lx > x_lo + 0.1).all() and (lx < x_hi - 0.1).all()
        y, err = np.asarray(trace.y, dtype=float), np.asarray(trace.error_y.array, dtype=float)
        assert (y - err > y_lo).all() and (y + err < y_hi).all()
    for label in fig.layout.annotations:  # labels beside their points, inside the plot
        assert x_lo < label.x < x_hi and y_lo < label.y < y_hi
    labels = {a.text: a for a in fig.layout.annotations}
    # above the highest error bar of its parameter count ...
    assert labels["time"].y == pytest.approx(PAPER_TABLE1["time"].mean + PAPER_TABLE1["time"].std)
    assert labels["time"].yanchor == "bottom"
    # ... except the left one of two close counts (frequency 3,368 and time 7,336): below
    frequency = PAPER_TABLE1["frequency"]
    assert labels["frequency"].yanchor == "top"
    assert labels["frequency"].y == pytest.approx(frequency.mean - frequency.std)
    assert labels["frequency"].y > y_lo + 0.1 * (y_hi - y_lo)  # room for its text below


def test_accuracy_vs_filter_length_seed_points_and_spread():
    rows = pd.DataFrame({"length": [30, 30, 60, 60, 120], "seed": [0, 1, 0, 1, 0],
                         "mean": [70.0, 74.0, 80.0, 80.0, None], "n_filters": [16] * 5})
    fig = plots.accuracy_vs_filter_length(rows, length_title="frames")
    seeds, line = fig.data
    assert list(seeds.y) == [70.0, 74.0, 80.0, 80.0]  # the grid point without a mean is left out
    assert list(line.x) == [30.0, 60.0] and list(line.y) == [72.0, 80.0]
    assert list(line.error_y.array) == [2.0, 0.0]  # np.std over the seeds
    assert fig.layout.xaxis.title.text == "frames"
    assert list(fig.layout.xaxis.tickvals) == [30.0, 60.0]  # a tick at each swept length
    assert fig.layout.xaxis.type != "log"  # 60 / 30 < 4: linear
    doubling = pd.DataFrame({"length": [30, 60, 120], "seed": [0, 0, 0],
                             "mean": [70.0, 75.0, 80.0]})
    fig = plots.accuracy_vs_filter_length(doubling)
    assert fig.layout.xaxis.type == "log" and list(fig.layout.xaxis.ticktext) == ["30", "60",
                                                                                   "120"]
    two = pd.concat([rows, rows.assign(n_filters=32, mean=rows["mean"] + 5)])
    fig = plots.accuracy_vs_filter_length(two, group="n_filters")
    assert len(fig.data) == 4 and fig.data[3].name.startswith("n_filters 32")
    assert list(fig.data[3].y) == [77.0, 85.0]


def test_log_mel_heatmap_of_a_long_track_averages_frame_pairs():
    spec = np.tile(np.arange(1292, dtype=np.float32), (40, 1))  # 30 s: frame index as value
    (heat,) = plots.log_mel_heatmap(spec).data
    z = np.asarray(heat.z)
    assert z.shape == (40, 646)  # ceil(1292 / 800) = 2 frames per column
    assert z[0, :3].tolist() == [0.5, 2.5, 4.5]  # each column the mean of its two frames
    assert heat.x[0] == pytest.approx(0.5 / FRONT_END.frame_rate_hz)  # at the pair's mean time
    assert heat.x[-1] == pytest.approx(1290.5 / FRONT_END.frame_rate_hz)
    short = np.zeros((40, 200), dtype=np.float32)
    assert np.asarray(plots.log_mel_heatmap(short).data[0].z).shape == (40, 200)  # untouched
