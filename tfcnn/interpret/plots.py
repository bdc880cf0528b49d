"""Plotly figures of the tempo study (the Filters page); each returns a figure, none shows it.

Builders take plain arrays, DataFrames and the dataclasses of :mod:`tfcnn.interpret`, so a
test can check a figure by its data (traces, x/y values, shapes). Red marks the filters the
verdict's test finds periodic (``periodic`` column of the table).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from tfcnn.config import BALLROOM_BPM_RANGE, FRONT_END
from tfcnn.errors import ConfigError
from tfcnn.interpret.baseline import RandomBaseline
from tfcnn.interpret.functional import Counterfactual
from tfcnn.interpret.periodic_lrt import PowerCurve
from tfcnn.interpret.probes import Probes
from tfcnn.interpret.study import tempo_shown
from tfcnn.plots import class_colour

_LAYOUT = dict(margin=dict(l=10, r=10, t=50, b=10), template="plotly_white")
TUNED_COLOUR = "#d62728"
PLAIN_COLOUR = "#1f77b4"
BASELINE_COLOUR = "#7f7f7f"
GRID_COLOUR = "rgba(44, 160, 44, 0.55)"


def _mark_periodic(fig: go.Figure, table, name: str, colour: str) -> None:
    """Mark each periodic filter's tempo with its interval (an x with a horizontal bar on a
    filter × BPM heatmap), if ``table`` has the ``periodic`` column of
    :func:`tfcnn.interpret.filter_table`."""
    if table is None or "periodic" not in table:
        return
    hit = table[table["periodic"]]
    fig.add_trace(go.Scatter(
        x=hit["peak_bpm"], y=hit["filter"], mode="markers", name=name,
        marker=dict(symbol="x", color=colour, size=9),
        error_x=dict(type="data", symmetric=False, color=colour,
                     array=(hit["bpm_high"] - hit["peak_bpm"]).tolist(),
                     arrayminus=(hit["peak_bpm"] - hit["bpm_low"]).tolist())))


def _filters_2d(filters) -> np.ndarray:
    f = np.asarray(filters, dtype=float)
    if f.ndim != 2 or f.shape[0] == 0:
        raise ConfigError(f"expected filters of shape (n_filters, width), got {f.shape}")
    return f


def beat_times(*, bpm: float, duration_s: float) -> np.ndarray:
    """Beat onsets ``0, 60/bpm, 2·60/bpm, ...`` up to ``duration_s`` (seconds)."""
    if not bpm > 0:
        raise ConfigError(f"bpm must be > 0, got {bpm!r}")
    return np.arange(0.0, duration_s + 1e-9, 60.0 / bpm)


def filters_over_time(filters, *, frame_rate_hz: float = FRONT_END.frame_rate_hz,
                      grid_bpm: float | None = 120.0, table: pd.DataFrame | None = None,
                      n_cols: int = 8, title: str = "Temporal filters") -> go.Figure:
    """Every temporal filter as a curve over time (s), with beat-period grid lines.

    Parameters
    ----------
    filters : np.ndarray, shape (n_filters, width)
    frame_rate_hz : float, keyword-only
        Frames per second: tap ``n`` sits at ``n / frame_rate_hz`` seconds.
    grid_bpm : float or None, keyword-only
        Draw vertical lines every beat at this tempo (None: no grid).
    table : DataFrame from :func:`tfcnn.interpret.filter_table`, optional
        Titles show each filter's tempo (* = periodic); periodic filters are drawn in red.
    n_cols : int, keyword-only
        Subplots per row.
    """
    f = _filters_2d(filters)
    n, width = f.shape
    n_rows = int(np.ceil(n / n_cols))
    t = np.arange(width) / frame_rate_hz                      # seconds
    titles = []
    for i in range(n):
        label = f"#{i}"
        if table is not None and i < len(table):
            row = table.iloc[i]
            bpm = row.get("peak_bpm", np.nan)
            if np.isfinite(bpm):
                label += f" ~{bpm:.0f}" + ("*" if bool(row.get("periodic")) else "")
        titles.append(label)
    fig = make_subplots(rows=n_rows, cols=n_cols, subplot_titles=titles, shared_xaxes=True,
                        vertical_spacing=0.6 / max(n_rows, 1) / 2, horizontal_spacing=0.01)
    beats = beat_times(bpm=grid_bpm, duration_s=t[-1]) if grid_bpm else np.array([])
    shapes: list[dict] = []
    for i in range(n):
        r, c = i // n_cols + 1, i % n_cols + 1
        tuned = (table is not None and i < len(table)
                 and bool(table.iloc[i].get("periodic", False)))
        fig.add_trace(go.Scatter(x=t, y=f[i], mode="lines", name=f"filter {i}",
                                 showlegend=False,
                                 line=dict(width=1.5,
                                           color=TUNED_COLOUR if tuned else PLAIN_COLOUR)),
                      row=r, col=c)
        # one layout update with every grid line (add_vline per line is quadratic)
        axis = "" if i == 0 else str(i + 1)
        shapes.extend(dict(type="line", xref=f"x{axis}", yref=f"y{axis} domain", x0=float(b),
                           x1=float(b), y0=0, y1=1,
                           line=dict(color=GRID_COLOUR, width=1, dash="dot")) for b in beats)
    fig.update_layout(shapes=shapes)
    fig.update_yaxes(showticklabels=False)
    fig.update_xaxes(title_text="s", row=n_rows)
    fig.update_annotations(font_size=10)
    subtitle = f" — grid: beats at {grid_bpm:g} BPM" if grid_bpm else ""
    fig.update_layout(title=title + subtitle, height=110 * n_rows + 80, **_LAYOUT)
    return fig


def periodicity_heatmap(bpms, scores, *, table: pd.DataFrame | None = None,
                        title: str = "Periodicity of each filter at each tempo") -> go.Figure:
    """Filter × BPM heatmap of the chance-corrected periodicity score.

    Parameters
    ----------
    bpms : np.ndarray, shape (K,)
    scores : np.ndarray, shape (n_filters, K)
        From :func:`tfcnn.interpret.periodicity_map`.
    table : optional; periodic filters' tempi are marked with their intervals.
    """
    bpms = np.asarray(bpms, dtype=float)
    scores = np.asarray(scores, dtype=float)
    if scores.ndim != 2 or scores.shape[1] != len(bpms):
        raise ConfigError(f"scores must be (n_filters, {len(bpms)}), got {scores.shape}")
    fig = go.Figure(go.Heatmap(x=bpms, y=np.arange(len(scores)), z=scores, zmin=0, zmax=1,
                               colorscale="Viridis", colorbar=dict(title="strength"),
                               name="periodicity"))
    _mark_periodic(fig, table, "periodic (beyond equally smooth noise)", TUNED_COLOUR)
    fig.update_layout(title=title, xaxis_title="BPM", yaxis_title="filter",
                      height=520, **_LAYOUT)
    return fig


def dominant_bpm_histogram(table: pd.DataFrame, tempi: pd.DataFrame, *,
                           classes: Sequence[str], baseline: RandomBaseline | None = None,
                           bpm_range: Sequence[float] = BALLROOM_BPM_RANGE,
                           bin_bpm: float = 8.0, tempi_name: str = "Ballroom"
                           ) -> go.Figure:
    """Histogram of the filters' dominant BPMs above the classes' tempo distributions.

    Row 1: dominant BPM of periodic / other filters (and of untrained filters, scaled to the
    same count, as a step line). Row 2: each class's track tempi as a box plot, same x axis.
    """
    lo, hi = (float(b) for b in bpm_range)
    edges = np.arange(lo, hi + bin_bpm, bin_bpm)
    centres = (edges[:-1] + edges[1:]) / 2
    fig = make_subplots(rows=2, cols=1, shared_xaxes=True, row_heights=[0.5, 0.5],
                        vertical_spacing=0.04)
    # no tempo for filters of strength 0 or peaking at an end of the range (a slow wave)
    shown = tempo_shown(table["peak_bpm"].to_numpy(float), table["strength"].to_numpy(float),
                        bpm_range=bpm_range)
    for name, sel, colour in (("periodic filters", table["periodic"] & shown, TUNED_COLOUR),
                              ("other filters", ~table["periodic"] & shown, PLAIN_COLOUR)):
        counts, _ = np.histogram(table.loc[sel, "peak_bpm"].dropna(), bins=edges)
        fig.add_trace(go.Bar(x=centres, y=counts, name=name, marker_color=colour,
                             width=bin_bpm * 0.9), row=1, col=1)
    if baseline is not None:
        peaks = baseline.peak_bpms[np.isfinite(baseline.peak_bpms)]
        counts, _ = np.histogram(peaks, bins=edges)
        scale = len(table) / max(len(peaks), 1)
        fig.add_trace(go.Scatter(x=centres, y=counts * scale, mode="lines",
                                 line=dict(shape="hvh", color=BASELINE_COLOUR, dash="dash"),
                                 name="untrained filters (scaled)"), row=1, col=1)
    for c, dance in enumerate(classes):
        bpm = tempi.loc[tempi["dance"] == dance, "bpm"]
        if len(bpm):
            fig.add_trace(go.Box(x=bpm, name=dance, marker_color=class_colour(c),
                                 orientation="h", showlegend=False, boxpoints=False),
                          row=2, col=1)
    fig.update_layout(barmode="stack", height=560,
                      title=f"Dominant BPM of the filters vs {tempi_name} class tempi", **_LAYOUT)
    fig.update_yaxes(title_text="filters", row=1, col=1)
    fig.update_xaxes(title_text="BPM", range=[lo - bin_bpm, hi + bin_bpm], row=2, col=1)
    return fig


def tuning_curves(probes: Probes, *, table: pd.DataFrame | None = None,
                  title: str = "Tuning curves: pooled activation per probe tempo") -> go.Figure:
    """Filter × probe-BPM heatmap, each filter's curve scaled to [0, 1] (its own max).

    Scaling per filter shows *where* each filter responds; the absolute level differs
    between filters and is in the table. Periodic filters' tempo intervals are marked.
    """
    if probes.tuning is None:
        raise ConfigError("these probes have no temporal-filter activations")
    curves = probes.tuning                                    # (n_filters, n_bpm)
    lo = curves.min(axis=1, keepdims=True)
    span = np.maximum(curves.max(axis=1, keepdims=True) - lo, 1e-12)
    fig = go.Figure(go.Heatmap(x=probes.bpms, y=np.arange(len(curves)), z=(curves - lo) / span,
                               colorscale="Magma", colorbar=dict(title="scaled act."),
                               name="activation"))
    _mark_periodic(fig, table, "tempo of the weights (periodic filters)", "#17becf")
    fig.update_layout(title=title, xaxis_title="probe BPM", yaxis_title="filter", height=520,
                      **_LAYOUT)
    return fig


def tempo_class_map(probes: Probes, ranges: pd.DataFrame, *,
                    ranges_name: str = "Ballroom") -> go.Figure:
    """Predicted class per probe BPM, over the classes' real tempo ranges (bars).

    Parameters
    ----------
    probes : Probes
    ranges : DataFrame from :func:`tfcnn.interpret.class_tempo_ranges` (index = class).
    """
    classes = list(probes.classes)
    fig = go.Figure()
    for c, dance in enumerate(classes):
        if dance in ranges.index:
            r = ranges.loc[dance]
            fig.add_trace(go.Bar(x=[r["high"] - r["low"]], base=[r["low"]], y=[dance],
                                 orientation="h", marker_color=class_colour(c), opacity=0.3,
                                 name=f"{dance} range", showlegend=False, width=0.8,
                                 hovertemplate=f"{dance}: %{{base:.0f}}-{r['high']:.0f} BPM"))
    symbols = ("circle", "diamond", "square", "triangle-up")
    colours = ("black", "#ff7f0e", "#9467bd", "#8c564b")
    for k, kind in enumerate(probes.kinds):
        fig.add_trace(go.Scatter(
            x=probes.bpms, y=[classes[int(c)] for c in probes.predicted[k]], mode="markers",
            name=f"{kind} probes ({probes.meters[k]}/4)",
            marker=dict(symbol=symbols[k % len(symbols)], size=7,
                        color=colours[k % len(colours)])))
    lo, hi = ranges.attrs.get("quantiles", (0.25, 0.75))
    fig.update_layout(title=f"Tempo → class map (bars: {ranges_name} class tempo ranges, "
                            f"{100 * lo:.0f}-{100 * hi:.0f} %)", xaxis_title="probe BPM",
                      barmode="overlay",
                      yaxis=dict(categoryorder="array", categoryarray=classes[::-1]),
                      height=420, **_LAYOUT)
    return fig


def baseline_strengths(table: pd.DataFrame, baseline: RandomBaseline) -> go.Figure:
    """Strength of the trained filters beside untrained (random-init) ones: a description of
    what training changed, not the test (untrained filters are white, trained ones smooth)."""
    bins = dict(start=0.0, end=1.0, size=0.025)
    fig = go.Figure()
    fig.add_trace(go.Histogram(x=baseline.strengths, name=f"untrained ({len(baseline.strengths)})",
                               histnorm="probability", xbins=bins, marker_color=BASELINE_COLOUR,
                               opacity=0.6))
    fig.add_trace(go.Histogram(x=table["strength"], name=f"trained ({len(table)})",
                               histnorm="probability", xbins=bins, marker_color=TUNED_COLOUR,
                               opacity=0.6))
    fig.update_layout(barmode="overlay",
                      title="Periodicity strength: trained vs untrained (description)",
                      xaxis_title="strength", yaxis_title="fraction of filters", height=360,
                      **_LAYOUT)
    return fig


def filter_images(filters, *, kind: str, n_cols: int = 8) -> go.Figure:
    """Filters that are not 1×n, as images.

    Parameters
    ----------
    filters : np.ndarray
        ``(n_filters, height)`` frequency filters (kind ``"frequency"``: one column per
        filter, low band at the bottom) or ``(n_filters, height, width)`` black-box filters
        (kind ``"blackbox"``: a mosaic of ``n_cols`` filters per row, NaN gaps between).
    kind : str, keyword-only
    """
    f = np.asarray(filters, dtype=float)
    if kind == "frequency" and f.ndim == 2:
        fig = go.Figure(go.Heatmap(z=f.T, x=np.arange(len(f)), y=np.arange(f.shape[1]),
                                   colorscale="RdBu", zmid=0, name="weights"))
        fig.update_layout(title=f"{len(f)} frequency filters ({f.shape[1]}×1)",
                          xaxis_title="filter", yaxis_title="mel band (offset)", height=380,
                          **_LAYOUT)
        return fig
    if kind == "blackbox" and f.ndim == 3:
        n, h, w = f.shape
        n_rows = int(np.ceil(n / n_cols))
        mosaic = np.full((n_rows * (h + 1) - 1, n_cols * (w + 1) - 1), np.nan)
        for i in range(n):
            r, c = divmod(i, n_cols)
            mosaic[r * (h + 1):r * (h + 1) + h, c * (w + 1):c * (w + 1) + w] = f[i]
        fig = go.Figure(go.Heatmap(z=mosaic, colorscale="RdBu", zmid=0, name="weights"))
        fig.update_layout(title=f"{n} black-box filters ({h}×{w}: bands × frames)",
                          xaxis=dict(showticklabels=False), yaxis=dict(showticklabels=False),
                          height=120 * n_rows + 80, **_LAYOUT)
        return fig
    raise ConfigError(f"filter_images: kind {kind!r} with shape {f.shape} is not "
                      "'frequency' (n, h) or 'blackbox' (n, h, w)")


def growth_figure(growth: pd.DataFrame) -> go.Figure:
    """The graded verdict's three counts against the training epoch, one line each.

    Parameters
    ----------
    growth : DataFrame from :func:`tfcnn.interpret.growth_table`
        Several folds are drawn as separate line groups.
    """
    fig = go.Figure()
    series = (("periodic", "periodic", TUNED_COLOUR), ("tuned", "tuned", "#ff7f0e"),
              ("relevant", "class-relevant", "#2ca02c"))
    for fold, rows in growth.groupby("fold"):
        for column, label, colour in series:
            if rows[column].notna().any():
                fig.add_trace(go.Scatter(x=rows["epoch"], y=rows[column], mode="lines+markers",
                                         name=f"{label} (fold {fold})", line=dict(color=colour)))
    fig.update_layout(title="The verdict's figures during training", xaxis_title="epoch",
                      yaxis_title="filters", height=360, **_LAYOUT)
    return fig


def power_figure(curves: Sequence[PowerCurve]) -> go.Figure:
    """Power of the filter test per tempo at the verdict's level, one line per pattern."""
    fig = go.Figure()
    for c in curves:
        fig.add_trace(go.Scatter(x=list(c.tempi), y=list(c.power), mode="lines+markers",
                                 name=f"{c.pattern} ({c.share:.0%} of variance)"))
    level = curves[0].level if curves else float("nan")
    fig.add_vrect(x0=60, x1=100, fillcolor=BASELINE_COLOUR, opacity=0.12, line_width=0,
                  annotation_text="< 2.3 beats per window", annotation_position="top left")
    fig.update_layout(height=320, title=f"What the filter test finds at p ≤ {level:.2g} "
                      "(planted filters, AR(1) noise)", **_LAYOUT)
    fig.update_xaxes(title_text="tempo of the planted pattern (BPM)")
    fig.update_yaxes(title_text="share of filters found", range=[0, 1.02])
    return fig


def counterfactual_figure(cf: Counterfactual, classes: Sequence[str]) -> go.Figure:
    """Share of renders predicted as each class, per render tempo (the response curve)."""
    table = cf.renders.groupby(["bpm", "predicted"]).size().unstack(fill_value=0)
    table = table.div(table.sum(axis=1), axis=0)
    fig = go.Figure()
    for c, name in enumerate(classes):
        if name in table:
            fig.add_trace(go.Bar(x=[f"{b:.0f}" for b in table.index], y=table[name],
                                 name=name, marker_color=class_colour(c)))
    fig.update_layout(barmode="stack", height=360, title="Same tracks, other tempi: the "
                      "predicted class per render tempo", **_LAYOUT)
    fig.update_xaxes(title_text="render tempo (BPM)")
    fig.update_yaxes(title_text="share of renders")
    return fig
