"""Plotly figure builders for the app and notebooks: each returns a figure, none shows it.

Every builder takes plain arrays/tables (never a Streamlit object) so it is testable on its
data: traces, x/y values and axis types.

Longer than 600 lines: the app's figures live together so they share one layout and one class
colour order (a class has the same colour on every page).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from tfcnn.config import BALLROOM_BPM_RANGE, CLASSES, FRONT_END, PAPER_TABLE1
from tfcnn.errors import ConfigError

#: One stable colour per dance, used by every figure so a class looks the same everywhere.
CLASS_COLOURS: tuple[str, ...] = (
    "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728",
    "#9467bd", "#8c564b", "#e377c2", "#7f7f7f",
    "#bcbd22", "#17becf",
)

_LAYOUT = dict(margin=dict(l=10, r=10, t=40, b=10), template="plotly_white")
#: Red (below) - white - blue (above): plotly's RdBu, an odd number of colours around white.
DIVERGING: tuple[str, ...] = ("rgb(103,0,31)", "rgb(178,24,43)", "rgb(214,96,77)",
                              "rgb(244,165,130)", "rgb(253,219,199)", "rgb(255,255,255)",
                              "rgb(209,229,240)", "rgb(146,197,222)", "rgb(67,147,195)",
                              "rgb(33,102,172)", "rgb(5,48,97)")


def class_colour(index: int) -> str:
    """The colour of class number ``index`` (cycled when there are more than 10 classes)."""
    return CLASS_COLOURS[index % len(CLASS_COLOURS)]


def class_counts_bar(tracks: pd.DataFrame, *, classes: Sequence[str] = CLASSES) -> go.Figure:
    """Tracks per class as a bar chart.

    Parameters
    ----------
    tracks : DataFrame with a ``dance`` column, one row per track.
    classes : class order of the x axis (classes without tracks show 0).
    """
    counts = tracks["dance"].value_counts()
    y = [int(counts.get(c, 0)) for c in classes]
    fig = go.Figure(go.Bar(x=list(classes), y=y, text=y, textposition="outside",
                           marker_color=[class_colour(i) for i in range(len(classes))]))
    fig.update_layout(title="Tracks per class", xaxis_title="class",
                      yaxis_title="tracks", **_LAYOUT)
    return fig


def tempo_box(tracks: pd.DataFrame, *, classes: Sequence[str] = CLASSES) -> go.Figure:
    """Tempo (BPM) distribution per class: one box with all points per class.

    Parameters
    ----------
    tracks : DataFrame with ``dance`` and ``bpm`` columns (NaN tempos are left out).
    classes : class order; a class with no known tempo gets no trace.
    """
    fig = go.Figure()
    known = tracks.dropna(subset=["bpm"])
    for i, dance in enumerate(classes):
        bpm = known.loc[known["dance"] == dance, "bpm"].to_numpy(dtype=float)
        if bpm.size == 0:
            continue
        fig.add_trace(go.Box(y=bpm, name=dance, boxpoints="all", jitter=0.4, pointpos=0,
                             marker=dict(size=4, color=class_colour(i)),
                             line=dict(color=class_colour(i))))
    fig.update_layout(title="Tempo per class", yaxis_title="tempo (BPM)", showlegend=False,
                      **_LAYOUT)
    return fig


#: Columns a log-mel heatmap draws at most: about one per screen pixel of a wide page.
MAX_HEATMAP_COLUMNS = 800


def log_mel_heatmap(spec: np.ndarray, *, frame_rate_hz: float = FRONT_END.frame_rate_hz,
                    patch_frames: int | None = FRONT_END.patch_frames,
                    title: str = "Log-mel spectrogram",
                    max_columns: int = MAX_HEATMAP_COLUMNS) -> go.Figure:
    """A log-mel spectrogram as a heatmap, time in seconds on x, mel band on y.

    Parameters
    ----------
    spec : np.ndarray, shape (n_mels, T)
        Log-compressed mel energies (normalised or not).
    frame_rate_hz : frames per second (44100 / 1024 for the paper's front end).
    patch_frames : draw a dotted line at every patch boundary (80 frames ≈ 1.86 s, the
        network's input width, paper §2); ``None`` draws none.
    max_columns : a longer spectrogram is drawn with adjacent frames averaged in groups of
        ``ceil(T / max_columns)`` (a 30 s track: pairs), each column at its group's mean
        time: the page cannot show more columns than it has pixels, and sends half the data.
    """
    spec = np.asarray(spec)
    if spec.ndim != 2:
        raise ConfigError(f"log-mel must be 2-D (n_mels, T), got shape {spec.shape}")
    n_mels, n_frames = spec.shape
    t = np.arange(n_frames) / frame_rate_hz  # (T,) frame times in seconds
    group = -(-n_frames // max_columns)
    if group > 1:
        n_full = n_frames // group * group
        drawn = spec[:, :n_full].reshape(n_mels, -1, group).mean(axis=2)  # (n_mels, T // group)
        times = t[:n_full].reshape(-1, group).mean(axis=1)
    else:
        drawn, times = spec, t
    fig = go.Figure(go.Heatmap(z=drawn, x=times, y=np.arange(n_mels), colorscale="Viridis",
                               colorbar=dict(title="log")))
    # One shape list, not add_vline per boundary: a 30 s track has 15 (0.2 s of plotly work).
    lines = [dict(type="line", xref="x", yref="paper", x0=x, x1=x, y0=0, y1=1,
                  line=dict(color="white", dash="dot", width=1))
             for x in np.arange(patch_frames, n_frames, patch_frames) / frame_rate_hz
             ] if patch_frames else []
    fig.update_layout(title=title, xaxis_title="time (s)", yaxis_title="mel band",
                      shapes=lines, **_LAYOUT)
    return fig


def patch_timeline(patch_probs: np.ndarray, classes: Sequence[str], *,
                   patch_seconds: float = FRONT_END.patch_seconds) -> go.Figure:
    """Which patch voted for what: per-patch class probabilities along the track.

    A heatmap of probabilities (class × patch) with a marker on each patch's winning class;
    the song label is the majority vote of these winners (paper §2).

    Parameters
    ----------
    patch_probs : np.ndarray, shape (n_patches, n_classes)
    classes : class names, length n_classes.
    patch_seconds : duration of one patch (80 frames ≈ 1.86 s).
    """
    probs = np.asarray(patch_probs, dtype=float)
    if probs.ndim != 2 or probs.shape[1] != len(classes):
        raise ConfigError(f"patch_probs must have shape (n_patches, {len(classes)}), "
                          f"got {probs.shape}")
    n_patches = probs.shape[0]
    centres = (np.arange(n_patches) + 0.5) * patch_seconds  # (n_patches,) seconds
    winners = probs.argmax(axis=1)
    # x0/dx give each cell its patch's width, also when there is a single patch.
    fig = go.Figure(go.Heatmap(z=probs.T, x0=patch_seconds / 2, dx=patch_seconds,
                               y=list(classes), zmin=0.0, zmax=1.0, colorscale="Blues",
                               colorbar=dict(title="p")))
    fig.add_trace(go.Scatter(x=centres, y=[classes[k] for k in winners], mode="markers",
                             name="patch vote",
                             marker=dict(symbol="x", size=9, color="#d62728")))
    fig.update_layout(title=f"Per-patch predictions ({patch_seconds:.2f} s patches)",
                      xaxis=dict(title="time (s)", range=[0, n_patches * patch_seconds]),
                      yaxis=_class_axis(classes), showlegend=False, **_LAYOUT)
    return fig


def _class_axis(classes: Sequence[str]) -> dict:
    """A class axis in the checkpoint's class order, first class at the top, on every plot."""
    return dict(title="class", categoryorder="array", categoryarray=list(classes),
                autorange="reversed")


def tempo_ranges(ranges: pd.DataFrame, *, tempo_bpm: float | None = None,
                 classes: Sequence[str] | None = None, source: str = "Ballroom") -> go.Figure:
    """Each class's tempo range as a bar, with a track's estimated tempo as a line.

    Parameters
    ----------
    ranges : DataFrame indexed by class with ``low``, ``median``, ``high`` (BPM), as
        :func:`tfcnn.interpret.class_tempo_ranges` returns.
    tempo_bpm : the track's estimated tempo (also drawn at half and double, dotted).
    classes : class order (default: the order of ``ranges``).
    source : where the ranges come from, for the title.
    """
    classes = list(classes) if classes is not None else list(ranges.index)
    rows = ranges.reindex(classes)
    fig = go.Figure(go.Bar(
        y=classes, x=rows["high"] - rows["low"], base=rows["low"], orientation="h",
        marker_color=[class_colour(i) for i in range(len(classes))], opacity=0.6,
        hovertemplate="%{y}: %{base:.0f}–%{x:.0f} BPM wide<extra></extra>", name="range"))
    fig.add_trace(go.Scatter(x=rows["median"], y=classes, mode="markers", name="median",
                             marker=dict(symbol="line-ns-open", size=14, color="black")))
    if tempo_bpm is not None:
        fig.add_vline(x=tempo_bpm, line=dict(color="#d62728", width=3),
                      annotation_text=f"this track ≈ {tempo_bpm:.0f} BPM",
                      annotation_position="top")
        for factor in (0.5, 2.0):
            if BALLROOM_BPM_RANGE[0] / 1.5 <= tempo_bpm * factor <= BALLROOM_BPM_RANGE[1] * 1.5:
                fig.add_vline(x=tempo_bpm * factor, line=dict(color="#d62728", width=1,
                                                                dash="dot"))
    lo, hi = ranges.attrs.get("quantiles", (0.25, 0.75))
    fig.update_layout(title=f"Class tempo ranges ({source}, {lo:.0%}–{hi:.0%} of tracks; "
                            "dotted: ½× and 2× this track)",
                      xaxis=dict(title="tempo (BPM)"), yaxis=_class_axis(classes),
                      showlegend=False, **_LAYOUT)
    return fig


def class_probability_bar(probabilities: np.ndarray, classes: Sequence[str], *,
                          predicted: str | None = None,
                          axis_title: str = "mean patch probability") -> go.Figure:
    """Probability per class as horizontal bars; the predicted class is highlighted.

    Parameters
    ----------
    probabilities : np.ndarray, shape (n_classes,)
    classes : class names, length n_classes.
    predicted : class to highlight (the song vote); defaults to the most probable class.
    axis_title : what the probabilities are (e.g. "calibrated probability").
    """
    p = np.asarray(probabilities, dtype=float)
    if p.shape != (len(classes),):
        raise ConfigError(f"probabilities must have shape ({len(classes)},), got {p.shape}")
    if predicted is None:
        predicted = classes[int(p.argmax())]
    colours = ["#d62728" if c == predicted else "#9fb7d6" for c in classes]
    fig = go.Figure(go.Bar(x=p, y=list(classes), orientation="h", marker_color=colours,
                           text=[f"{v:.1%}" for v in p], textposition="outside"))
    fig.update_layout(title="Probability per class", xaxis=dict(range=[0, 1.1],
                      title=axis_title), yaxis=_class_axis(classes), **_LAYOUT)
    return fig


#: Curves of a run are drawn in percent; the records store accuracies as fractions.
_ACCURACY_KEYS = ("train_acc", "val_acc")
#: Integer steps the epoch axis may use, so it never shows a fractional epoch.
_EPOCH_STEPS = (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000)


def epoch_axis(n_epochs: float, *, title: str = "epoch") -> dict:
    """An x axis of whole epochs: ticks every 1, 2, 5, 10, ... epochs, at most about 8 ticks.

    Parameters
    ----------
    n_epochs : the largest epoch drawn.
    """
    dtick = next((d for d in _EPOCH_STEPS if n_epochs / d <= 8), _EPOCH_STEPS[-1])
    return dict(title=title, tickmode="linear", tick0=0, dtick=dtick, tickformat="d")


def _fold_timeline(part: pd.DataFrame) -> pd.DataFrame:
    """One fold's records in training order, with ``x`` the epoch counted over its stages.

    A fold trained in stages (``timefreq-init``: time, then frequency, then both) restarts
    ``epoch`` at 1 in each stage; ``x`` continues after the previous stages' last epoch.
    """
    part = part.copy()
    if "stage" not in part or part["stage"].nunique() < 2:
        return part.sort_values("epoch").assign(x=part["epoch"])
    order = {stage: i for i, stage in enumerate(dict.fromkeys(part["stage"]))}
    part = part.assign(_order=part["stage"].map(order)).sort_values(["_order", "epoch"])
    last = part.groupby("_order")["epoch"].max().sort_index()
    offset = last.cumsum().shift(fill_value=0)  # epochs of the stages before each stage
    return part.assign(x=part["epoch"] + part["_order"].map(offset)).drop(columns="_order")


def training_curves(history: pd.DataFrame | Sequence[Mapping]) -> go.Figure:
    """Loss and accuracy (%) per epoch, one colour per fold (train solid, validation dashed).

    Parameters
    ----------
    history : epoch records as written to ``progress.jsonl`` (``fold``, ``epoch``,
        ``train_loss``, ``train_acc``, ``val_loss``, ``val_acc``, accuracies as fractions;
        optional ``stage``), as a table or a list.

    Returns
    -------
    go.Figure
        Loss on the left axis pair, accuracy in percent on the right; per fold up to four
        lines (one legend entry per fold); whole-epoch ticks. A fold trained in several
        stages is one continuous line, its epochs counted over the stages.
    """
    df = pd.DataFrame(list(history) if not isinstance(history, pd.DataFrame) else history)
    fig = make_subplots(rows=1, cols=2, horizontal_spacing=0.14)
    n_epochs, staged = 1.0, False
    if not df.empty:
        for i, (fold, part) in enumerate(df.groupby("fold", sort=True)):
            part = _fold_timeline(part)
            stages = "stage" in part and part["stage"].nunique() > 1
            staged = staged or stages
            n_epochs = max(n_epochs, float(part["x"].max()))
            stage = part["stage"].astype(str) if stages else pd.Series("", index=part.index)
            first = True
            for metric, split in [("loss", "train"), ("loss", "val"),
                                  ("acc", "train"), ("acc", "val")]:
                key = f"{split}_{metric}"
                if key not in part:
                    continue
                y = part[key].astype(float) * (100.0 if key in _ACCURACY_KEYS else 1.0)
                unit = " %" if key in _ACCURACY_KEYS else ""
                fig.add_trace(go.Scatter(
                    # one epoch is one point: a line through it would draw nothing
                    x=part["x"], y=y, mode="lines" if len(part) > 1 else "markers",
                    name=f"fold {int(fold)}",
                    legendgroup=f"fold {int(fold)}", showlegend=first,
                    customdata=np.stack([part["epoch"], stage], axis=-1),
                    hovertemplate=(f"fold {int(fold)} {split} · epoch %{{customdata[0]}}"
                                   + (" (%{customdata[1]})" if stages else "")
                                   + f": %{{y:.3g}}{unit}<extra></extra>"),
                    line=dict(color=class_colour(i), dash="solid" if split == "train" else "dash"),
                    marker=dict(color=class_colour(i),
                                symbol="circle" if split == "train" else "circle-open"),
                ), row=1, col=1 if metric == "loss" else 2)
                first = False
    axis = epoch_axis(n_epochs, title="epoch" + (" (over the stages)" if staged else ""))
    fig.update_xaxes(**axis)
    fig.update_yaxes(title_text="loss", row=1, col=1)
    fig.update_yaxes(title_text="accuracy (%)", row=1, col=2)
    fig.update_layout(title="Training curves (solid: train, dashed: validation)", **_LAYOUT)
    return fig


def fold_strip(per_fold: Mapping[str, Sequence[float]]) -> go.Figure:
    """Per-fold test accuracies (%) per run: a box with every fold as a point.

    Parameters
    ----------
    per_fold : ``{run label: [accuracy of fold 0, fold 1, ...]}`` in percent.
    """
    fig = go.Figure()
    for i, (label, acc) in enumerate(per_fold.items()):
        fig.add_trace(go.Box(y=np.asarray(acc, dtype=float), name=label, boxpoints="all",
                             jitter=0.3, pointpos=0, marker=dict(color=class_colour(i)),
                             line=dict(color=class_colour(i))))
    fig.update_layout(title="Test accuracy per fold", yaxis_title="accuracy (%)",
                      showlegend=False, **_LAYOUT)
    return fig


def confusion_heatmap(confusion: np.ndarray, classes: Sequence[str], *,
                      normalise: bool = True) -> go.Figure:
    """Song-level confusion matrix (rows: true class, columns: predicted class).

    Parameters
    ----------
    confusion : np.ndarray, shape (n_classes, n_classes), counts summed over folds.
    classes : class names.
    normalise : show each row as fractions of that class's tracks (counts in the hover).
    """
    counts = np.asarray(confusion, dtype=float)
    if counts.shape != (len(classes), len(classes)):
        raise ConfigError(f"confusion must have shape ({len(classes)}, {len(classes)}), "
                          f"got {counts.shape}")
    z = counts
    if normalise:
        rows = counts.sum(axis=1, keepdims=True)
        z = np.divide(counts, rows, out=np.zeros_like(counts), where=rows > 0)
    text = [[f"{int(c)}" for c in row] for row in counts]
    fig = go.Figure(go.Heatmap(z=z, x=list(classes), y=list(classes), colorscale="Blues",
                               text=text, texttemplate="%{text}",
                               colorbar=dict(title="fraction" if normalise else "tracks")))
    fig.update_layout(title="Confusion matrix (songs)", xaxis_title="predicted",
                      yaxis=dict(title="true", autorange="reversed"), **_LAYOUT)
    return fig


#: Colours of the series of :func:`accuracy_vs_params` after the paper's (orange).
_SERIES_COLOURS: tuple[str, ...] = tuple(c for c in CLASS_COLOURS if c != "#ff7f0e")
_PAPER_SERIES = "paper (Ballroom)"
#: Horizontal spread (decades) of the series drawn at one parameter count, at most.
_DODGE_DECADES = 0.12
#: Two parameter counts closer than this (decades) get labels on opposite sides of their points.
_LABEL_GAP_DECADES = 0.5


def accuracy_vs_params(rows: pd.DataFrame, *, include_paper: bool = True) -> go.Figure:
    """Accuracy versus number of parameters on a log x axis (the paper's efficiency argument).

    One trace per series (the paper's Table 1, the shipped results, each run), named in the
    legend; the architecture is written once above each parameter count's points, never on
    the points. Series sharing a parameter count are drawn side by side (a small horizontal
    offset, the exact count in the hover), so no two error bars cover each other.

    Parameters
    ----------
    rows : table with ``series`` (legend name), ``arch``, ``params``, ``mean`` and ``std``
        (accuracy %) columns, one row per point; an optional ``hover`` column is shown on
        hover.
    include_paper : add the paper's Table 1 (Ballroom) as the first series.

    Returns
    -------
    go.Figure
        Scatter traces with ``customdata`` the exact parameter count; one annotation per
        distinct parameter count (its architectures); both axis ranges fixed to hold every
        point, error bar and label.
    """
    points = rows.assign(hover=rows["hover"] if "hover" in rows else rows["series"])
    points = points[["series", "arch", "params", "mean", "std", "hover"]]
    if include_paper:  # first, so our points are drawn on top
        paper = pd.DataFrame([{"series": _PAPER_SERIES, "arch": name, "params": row.params,
                               "mean": row.mean, "std": row.std,
                               "hover": f"{name}, paper (Ballroom, 10 folds)"}
                              for name, row in PAPER_TABLE1.items()])
        points = pd.concat([paper, points], ignore_index=True) if len(points) else paper
    points = points.astype({"params": float, "mean": float, "std": float})
    fig = go.Figure()
    if points.empty:
        fig.update_layout(title="Accuracy vs. number of parameters", **_LAYOUT)
        return fig
    series = list(dict.fromkeys(points["series"]))
    step = min(0.04, _DODGE_DECADES / max(len(series) - 1, 1))
    for i, name in enumerate(series):
        part = points[points["series"] == name]
        offset = (i - (len(series) - 1) / 2) * step  # decades
        is_paper = name == _PAPER_SERIES
        colour = "#ff7f0e" if is_paper else _SERIES_COLOURS[
            (i - (1 if include_paper else 0)) % len(_SERIES_COLOURS)]
        fig.add_trace(go.Scatter(
            x=part["params"] * 10.0 ** offset, y=part["mean"],
            error_y=dict(type="data", array=part["std"]), mode="markers", name=name,
            customdata=np.stack([part["params"], part["std"]], axis=-1),
            hovertext=part["hover"],
            hovertemplate="%{hovertext}<br>%{customdata[0]:,.0f} parameters<br>"
                          "%{y:.2f} ± %{customdata[1]:.2f} %<extra></extra>",
            marker=dict(size=11, color=colour, symbol="diamond" if is_paper else "circle")))
    log_x = np.log10(points["params"].to_numpy())  # (n_points,)
    low = (points["mean"] - points["std"]).to_numpy()
    high = (points["mean"] + points["std"]).to_numpy()
    span = max(float(high.max() - low.min()), 1.0)
    # one label per parameter count, above its highest error bar; of two counts closer
    # than _LABEL_GAP_DECADES the left one's label goes below its lowest bar instead
    groups = points.assign(top=high, bottom=low).groupby("params", sort=True)
    labels = [(float(np.log10(p)), float(g["top"].max()), float(g["bottom"].min()),
               " / ".join(dict.fromkeys(g["arch"].astype(str)))) for p, g in groups]
    below = [k + 1 < len(labels) and labels[k + 1][0] - labels[k][0] < _LABEL_GAP_DECADES
             for k in range(len(labels))]
    for (x, top, bottom, text), under in zip(labels, below):
        fig.add_annotation(x=x, y=bottom if under else top, text=text, showarrow=False,
                           yanchor="top" if under else "bottom", yshift=-4 if under else 4,
                           font=dict(size=12))
    fig.update_layout(
        title="Accuracy vs. number of parameters",
        xaxis=dict(type="log", title="parameters (log scale)", dtick=1, tickformat="~s",
                   range=[float(log_x.min()) - 0.35, float(log_x.max()) + 0.35]),
        yaxis=dict(title="accuracy (%)",
                   range=[float(low.min()) - (0.15 if any(below) else 0.05) * span,
                          float(high.max()) + 0.15 * span]),
        legend=dict(orientation="h", yanchor="top", y=-0.22, x=0), **_LAYOUT)
    return fig


def diverging_colorscale(midpoint: float, *, zmin: float, zmax: float,
                         colours: Sequence[str] = DIVERGING) -> list[list]:
    """A plotly colour scale whose middle colour (white) sits at ``midpoint``, not half way.

    plotly's ``zmid`` is ignored once ``zmin``/``zmax`` are given, so the scale itself is
    built asymmetric: the first half of ``colours`` spans ``[zmin, midpoint]`` and the second
    half ``[midpoint, zmax]``.

    Returns
    -------
    list of [position in 0..1, colour]
    """
    if not zmin < midpoint < zmax:
        raise ConfigError(f"midpoint {midpoint} must lie inside ({zmin}, {zmax})")
    mid = (midpoint - zmin) / (zmax - zmin)
    half = len(colours) // 2
    low = [[mid * i / half, c] for i, c in enumerate(colours[:half + 1])]
    high = [[mid + (1 - mid) * i / half, c] for i, c in enumerate(colours[half:])][1:]
    return low + high


def scenario_heatmap(matrix: pd.DataFrame, *, chance: float = 100.0 / len(CLASSES),
                     labels: pd.DataFrame | None = None) -> go.Figure:
    """Accuracy of each architecture on each SynthBallroom scenario, chance marked.

    Parameters
    ----------
    matrix : DataFrame, shape (n_scenarios, n_archs)
        Mean song accuracy in percent; index scenarios, columns architectures, NaN where
        nothing ran (:func:`tfcnn.synth.lab.accuracy_matrix`).
    chance : float
        Accuracy of guessing (%); the colour scale is white there, red below, blue above,
        and the colour bar marks it.
    labels : DataFrame like ``matrix``, optional
        Text per cell (e.g. "87.3 ± 4.1 ✓"); default: the mean.

    Returns
    -------
    plotly.graph_objects.Figure
        One heatmap trace: x = architectures, y = scenarios (first on top).
    """
    if matrix.empty:
        raise ConfigError("no scenario results to draw")
    z = matrix.to_numpy(dtype=float)
    text = (labels.reindex(index=matrix.index, columns=matrix.columns).fillna("—").to_numpy()
            if labels is not None else
            np.where(np.isnan(z), "—", np.char.mod("%.1f", np.nan_to_num(z))))
    ticks = sorted({0.0, chance, 50.0, 100.0})
    fig = go.Figure(go.Heatmap(
        z=z, x=list(matrix.columns), y=list(matrix.index), text=text,
        texttemplate="%{text}", zmin=0.0, zmax=100.0,
        colorscale=diverging_colorscale(chance, zmin=0.0, zmax=100.0),
        colorbar=dict(title="accuracy (%)", tickvals=ticks,
                      ticktext=[f"chance {t:.1f}" if t == chance else f"{t:g}" for t in ticks]),
        hovertemplate="%{y} · %{x}: %{z:.1f} %<extra></extra>"))
    fig.update_layout(title=f"Scenario × architecture (song accuracy; chance {chance:.1f} %)",
                      xaxis_title="architecture", yaxis_title="scenario",
                      yaxis=dict(autorange="reversed"), **_LAYOUT)
    return fig


def accuracy_vs_filter_length(rows: pd.DataFrame, *, length_title: str = "filter length",
                              group: str | None = None) -> go.Figure:
    """A sweep's accuracy versus filter length: every seed a point, the seeds' spread a bar.

    Parameters
    ----------
    rows : table with one row per grid point: ``length`` (filter length, e.g. frames of a
        1×n temporal filter), ``seed``, ``mean`` (that seed's cross-validation accuracy, %);
        rows without a ``mean`` are left out.
    length_title : the x axis title (with its unit).
    group : optional column (e.g. ``n_filters``): one colour and line per value.

    Returns
    -------
    go.Figure
        Per group, a markers trace of the seeds and a line through the mean over seeds with
        ``np.std`` over seeds as error bars; a tick at each swept length (a log axis when
        the longest is at least 4× the shortest, as in a doubling grid); legend below.
    """
    data = rows.dropna(subset=["mean"]) if len(rows) else rows
    fig = go.Figure()
    groups = [(None, data)] if group is None or not len(data) else \
        [(value, part) for value, part in data.groupby(group, sort=True)]
    for i, (value, part) in enumerate(groups):
        colour = class_colour(i)
        name = "" if value is None else f"{group} {value}: "
        fig.add_trace(go.Scatter(
            x=part["length"].astype(float), y=part["mean"].astype(float), mode="markers",
            name=f"{name}each seed", marker=dict(size=8, color=colour, opacity=0.5),
            hovertext=[f"seed {s}" for s in part["seed"]]))
        stats = part.groupby("length")["mean"].agg(["mean", lambda v: float(np.std(v))])
        stats.columns = ["mean", "std"]
        fig.add_trace(go.Scatter(
            x=stats.index.astype(float), y=stats["mean"], mode="lines+markers",
            error_y=dict(type="data", array=stats["std"]), name=f"{name}mean ± std over seeds",
            marker=dict(size=11, color=colour), line=dict(color=colour)))
    lengths = sorted({float(v) for v in data["length"]}) if len(data) else []
    xaxis = dict(title=length_title)
    if lengths:
        xaxis.update(tickmode="array", tickvals=lengths, ticktext=[f"{v:g}" for v in lengths])
        if lengths[0] > 0 and lengths[-1] / lengths[0] >= 4:
            xaxis["type"] = "log"
    fig.update_layout(title="Accuracy vs. filter length (spread over seeds)", xaxis=xaxis,
                      yaxis_title="accuracy (%)",
                      legend=dict(orientation="h", yanchor="top", y=-0.22, x=0), **_LAYOUT)
    return fig


def reliability_diagram(curves: Mapping[str, Sequence[Mapping]]) -> go.Figure:
    """Reliability diagram: accuracy against shown confidence per confidence bin.

    Parameters
    ----------
    curves : mapping of label to sequence of dict
        Per model, its bins (:attr:`tfcnn.calibration.Reliability.bins`: ``confidence``,
        ``accuracy``, ``n``, ``lo``, ``hi``).

    Returns
    -------
    plotly.graph_objects.Figure
        The diagonal (perfect calibration) and one line per model, marker size ∝ songs.
    """
    if not curves:
        raise ConfigError("no reliability measurements to draw")
    fig = go.Figure(go.Scatter(x=[0, 1], y=[0, 1], mode="lines", name="perfect calibration",
                               line=dict(color="grey", dash="dot")))
    for k, (label, bins) in enumerate(curves.items()):
        n = [int(b["n"]) for b in bins]
        fig.add_trace(go.Scatter(
            x=[b["confidence"] for b in bins], y=[b["accuracy"] for b in bins],
            mode="lines+markers", name=label,
            marker=dict(size=[6 + 14 * np.sqrt(c / max(n)) for c in n],
                        color=class_colour(k)),
            customdata=[[b["lo"], b["hi"], c] for b, c in zip(bins, n)],
            hovertemplate="confidence %{customdata[0]:.1f}-%{customdata[1]:.1f}: "
                          "%{customdata[2]} songs, mean confidence %{x:.2f}, right "
                          "%{y:.0%}<extra>" + str(label) + "</extra>"))
    fig.update_layout(title="Reliability on test songs (song level, the confidence shown)",
                      xaxis=dict(title="confidence shown (mean per bin)", range=[0, 1]),
                      yaxis=dict(title="share of songs right", range=[0, 1]), **_LAYOUT)
    return fig


def cue_shares_bar(shares: Mapping[str, Mapping[str, Sequence[float]]], *,
                   chance: Mapping[str, float]) -> go.Figure:
    """Which cue each architecture follows on the conflict set, with intervals and chance.

    Parameters
    ----------
    shares : mapping of architecture to mapping of cue to (share, low, high)
        Fractions (:attr:`tfcnn.cue_conflict.CueShares.shares`).
    chance : mapping of cue to float
        Chance share per cue (drawn as a marker line).

    Returns
    -------
    plotly.graph_objects.Figure
        Grouped bars: x = cue, one bar per architecture, 95 % intervals as error bars.
    """
    if not shares:
        raise ConfigError("no cue-conflict results to draw")
    cues = list(next(iter(shares.values())))
    fig = go.Figure()
    for k, (arch, by_cue) in enumerate(shares.items()):
        values = [by_cue[c] for c in cues]
        fig.add_trace(go.Bar(
            x=cues, y=[100 * v[0] for v in values], name=arch, marker_color=class_colour(k),
            error_y=dict(type="data", symmetric=False,
                         array=[100 * (v[2] - v[0]) for v in values],
                         arrayminus=[100 * (v[0] - v[1]) for v in values])))
    fig.add_trace(go.Scatter(x=cues, y=[100 * chance[c] for c in cues], mode="markers",
                             name="chance", marker=dict(symbol="line-ew-open", size=40,
                                                        color="black")))
    fig.update_layout(barmode="group", title="Conflict set: whose dance the prediction names",
                      xaxis_title="the dance of the track's …",
                      yaxis_title="share of predictions (%)", **_LAYOUT)
    return fig
