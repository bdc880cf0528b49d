"""The tempo study of one checkpoint: the per-filter table and a graded verdict, as numbers.

Three statements, each with its own figure and chance level (:class:`Verdict`):

1. **Periodic**: k of n filters hold periodic structure beyond noise as smooth as themselves
   (:mod:`tfcnn.interpret.smooth_null`, Benjamini-Hochberg at FDR q).
2. **Tuned**: m of those k respond most to probes at their own tempo interval, or half or
   double it (:func:`tfcnn.interpret.probes.tuned_filters`).
3. **Class-relevant**: j of those m have a tempo interval overlapping a class's tempo range
   (:mod:`tfcnn.interpret.tempi`).

Periodic structure is not learned tempo; only the three together support "tempo". The chance
levels of 2 and 3 are expected counts for response peaks or intervals placed at random; their
p-values treat the filters as independent and are descriptions, not the headline test.
Nothing here builds sentences: :mod:`tfcnn.interpret.report` formats these objects.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from tfcnn.checkpoint import as_checkpoint
from tfcnn.config import BALLROOM_BPM_RANGE, FRONT_END
from tfcnn.errors import ConfigError
from tfcnn.interpret.baseline import N_BASELINE_MODELS, RandomBaseline, random_baseline
from tfcnn.interpret.functional import (CF_TRACKS_PER_CLASS, FunctionalEvidence,
                                        functional_evidence)
from tfcnn.interpret.periodic_lrt import (BANDS, PowerCurve, periodic_test, power_curve,
                                          shipped_tables)
from tfcnn.interpret.periodicity import filter_tempi, lag1_correlation, periodicity_map
from tfcnn.interpret.probes import (PROBE_BPMS, PROBE_SECONDS, Probes, best_probe_bpms,
                                    probe_class_activations, probe_sweep, tuned_filters)
from tfcnn.interpret.smooth_null import (FDR_Q, N_SURROGATES, benjamini_hochberg,
                                         smooth_null_pvalues)
from tfcnn.interpret.tempi import (class_tempi, class_tempo_ranges, classes_overlapping,
                                   overlap_chance)
from tfcnn.models import conv_filters, frequency_filters, temporal_filters
from tfcnn.threads import per_request

#: Columns of :func:`filter_table`, in order.
TABLE_COLUMNS: tuple[str, ...] = (
    "filter", "peak_bpm", "bpm_low", "bpm_high", "strength", "smoothness", "lr", "pattern",
    "pattern_bpm", "p_value", "q_value", "periodic", "best_probe_bpm", "tuned",
    "tuned_chance", "classes", "class_chance", "most_active", "activation",
)
#: The tempo test: the likelihood-ratio test where its tables apply (1×60 filters at the
#: paper's frame rate), else the width-agnostic surrogate test.
TEST_LR, TEST_SURROGATE = "likelihood-ratio", "surrogate"


def checkpoint_filters(checkpoint) -> dict[str, np.ndarray | None]:
    """Every kind of first-layer filter a checkpoint has: ``temporal`` (n, width),
    ``frequency`` (n, height), ``blackbox`` (n, height, width); None where absent."""
    model = as_checkpoint(checkpoint).model
    return {"temporal": temporal_filters(model), "frequency": frequency_filters(model),
            "blackbox": conv_filters(model)}


def frame_rate_of(checkpoint) -> float:
    """Frames per second of the checkpoint's front end."""
    return float((getattr(checkpoint, "front_end", None) or FRONT_END).frame_rate_hz)


def filter_table(checkpoint, *, probes: Probes | None = None, activations=None,
                 ranges: pd.DataFrame | None = None, n_surrogates: int = N_SURROGATES,
                 q: float = FDR_Q, bpm_range: Sequence[float] = BALLROOM_BPM_RANGE
                 ) -> pd.DataFrame:
    """One row per temporal filter: its tempo interval and the three tests' per-filter parts.

    Parameters
    ----------
    checkpoint : path or Checkpoint
        A model with 1×n temporal filters (``time``, ``timefreq``, ``timefreq-init``).
    probes : Probes, optional, keyword-only
        Fills ``best_probe_bpm``, ``tuned``, ``tuned_chance`` and (unless ``activations``
        is given) ``most_active``.
    activations : np.ndarray (n_filters, n_classes), optional, keyword-only
        Mean pooled activation per class (e.g. over a data set's patches); fills
        ``most_active``/``activation``.
    ranges : DataFrame from :func:`tfcnn.interpret.tempi.class_tempo_ranges`, optional
        Fills ``classes`` (overlapping class ranges) and ``class_chance``.
    n_surrogates, q : keyword-only
        Surrogates per filter and FDR level of the periodicity test.
    bpm_range : (float, float), keyword-only

    Returns
    -------
    pandas.DataFrame, shape (n_filters, 19)
        ``filter``; ``peak_bpm`` with its interval ``bpm_low``..``bpm_high``; ``strength``
        (0..1); ``smoothness`` (lag-1 correlation); ``lr``, ``pattern`` (``sinusoid`` or
        ``pulses``) and ``pattern_bpm`` of the likelihood-ratio test (NaN/None under the
        surrogate test); ``p_value`` against smooth noise;
        ``q_value`` (Benjamini-Hochberg); ``periodic`` (q ≤ ``q``); ``best_probe_bpm``;
        ``tuned`` (bool or None without probes); ``tuned_chance``; ``classes`` (list of
        class names whose range the interval overlaps); ``class_chance``; ``most_active``;
        ``activation``. ``attrs``: ``q``, ``test`` (:data:`TEST_LR` or
        :data:`TEST_SURROGATE`), ``bank_p`` (excess of p ≤ 0.05 over filters) and ``band_bank_p`` (per
        band of :data:`tfcnn.interpret.periodic_lrt.BANDS`, Holm), None under the surrogate test.

    Raises
    ------
    ConfigError
        The model has no temporal filters, or ``activations`` has the wrong shape.
    """
    ckpt = as_checkpoint(checkpoint)
    filters = temporal_filters(ckpt.model)
    if filters is None:
        raise ConfigError(f"a {ckpt.arch!r} model has no 1×n temporal filters to analyse "
                          "(only time, timefreq and timefreq-init have them)")
    kw = dict(frame_rate=frame_rate_of(ckpt), bpm_range=bpm_range)
    tempi = filter_tempi(filters, **kw)
    n = len(filters)
    tables = shipped_tables()
    if filters.shape[1] == tables.width and abs(kw["frame_rate"] - tables.frame_rate) < 1e-6:
        test = periodic_test(filters, frame_rate=kw["frame_rate"], tables=tables)
        p, test_name = test.p_value, TEST_LR
        lr, pattern, pattern_bpm = test.stats.lr, test.stats.pattern, test.stats.bpm
        bank = {"bank_p": test.bank_p, "band_bank_p": [float(v) for v in test.band_bank_p]}
    else:
        p, test_name = smooth_null_pvalues(filters, n_surrogates=n_surrogates, **kw), TEST_SURROGATE
        lr, pattern, pattern_bpm = [np.nan] * n, [None] * n, [np.nan] * n
        bank = {"bank_p": None, "band_bank_p": None}
    qv = benjamini_hochberg(p)
    if activations is None and probes is not None and probes.activations is not None:
        activations = probe_class_activations(probes)
    if activations is not None:
        activations = np.asarray(activations, dtype=float)
        if activations.shape != (n, len(ckpt.classes)):
            raise ConfigError(f"activations must have shape (n_filters, n_classes) = "
                              f"{(n, len(ckpt.classes))}, got {activations.shape}")
    intervals = [t.interval for t in tempi]
    if probes is not None and probes.activations is not None:
        tuned, tuned_chance = tuned_filters(probes, intervals)
        best = best_probe_bpms(probes)
    else:
        tuned, tuned_chance, best = [None] * n, [np.nan] * n, [np.nan] * n
    smooth = lag1_correlation(filters)
    rows = []
    for i, t in enumerate(tempi):
        most, act = None, float("nan")
        if activations is not None and np.isfinite(activations[i]).any():
            c = int(np.nanargmax(activations[i]))
            most, act = ckpt.classes[c], float(activations[i, c])
        lo, hi = t.interval if t.interval is not None else (np.nan, np.nan)
        has_ranges = ranges is not None and t.interval is not None
        rows.append({
            "filter": i,
            "peak_bpm": np.nan if t.peak_bpm is None else t.peak_bpm,
            "bpm_low": lo, "bpm_high": hi,
            "strength": t.strength,
            "smoothness": float(smooth[i]),
            "lr": float(lr[i]), "pattern": pattern[i], "pattern_bpm": float(pattern_bpm[i]),
            "p_value": float(p[i]), "q_value": float(qv[i]),
            "periodic": bool(qv[i] <= q),
            "best_probe_bpm": float(best[i]),
            "tuned": None if tuned[i] is None else bool(tuned[i]),
            "tuned_chance": float(tuned_chance[i]),
            "classes": classes_overlapping(t.interval, ranges) if has_ranges else [],
            "class_chance": (overlap_chance(hi - lo, ranges, bpm_range=bpm_range)
                             if has_ranges else np.nan),
            "most_active": most, "activation": act,
        })
    table = pd.DataFrame(rows, columns=list(TABLE_COLUMNS))
    table.attrs.update(q=float(q), test=test_name, **bank)
    return table


def tempo_shown(peak_bpm, strength, *, bpm_range: Sequence[float] = BALLROOM_BPM_RANGE):
    """Whether a filter's peak is a tempo worth naming: strength above 0 and the peak not at
    an end of the searched range (a slow wave or a ramp peaks there). Scalars or arrays."""
    lo, hi = (float(b) for b in bpm_range)
    peak = np.asarray(peak_bpm, dtype=float)
    ok = (np.asarray(strength, dtype=float) > 0) & (peak > lo + 1) & (peak < hi - 1)
    return bool(ok) if ok.ndim == 0 else ok


def count_tail(chances: Sequence[float], observed: int) -> float:
    """P(X ≥ observed) for X a sum of independent Bernoulli(chances) (Poisson-binomial)."""
    dist = np.array([1.0])
    for c in chances:
        dist = np.convolve(dist, [1.0 - c, c])
    return float(dist[int(observed):].sum()) if observed > 0 else 1.0


@dataclass(frozen=True)
class Statement:
    """One graded statement: ``count`` of ``out_of`` filters, against ``expected`` by chance.

    ``filters`` are the filter indices that satisfy it; ``p_value`` the chance of a count at
    least this large (None for the periodic statement, whose control is the FDR).
    """

    count: int
    out_of: int
    filters: tuple[int, ...]
    expected: float | None = None
    p_value: float | None = None


@dataclass(frozen=True)
class Verdict:
    """The graded verdict of a tempo study (see the module docstring).

    Attributes
    ----------
    n_filters : int
    q : float
        FDR level of the periodicity test.
    periodic : Statement
        Filters periodic beyond equally smooth noise, out of ``n_filters``.
    tuned : Statement or None
        Of the periodic filters, those whose probe response peaks at their tempo; None
        without probes.
    relevant : Statement or None
        Of the tuned filters (of the periodic ones without probes), those whose tempo
        interval overlaps a class range; None without class ranges.
    relevant_of : str
        ``"tuned"`` or ``"periodic"``: which statement ``relevant`` narrows.
    class_counts : tuple of (class, count)
        How many of ``relevant``'s filters overlap each class (a filter may overlap two).
    intervals : tuple of (filter, bpm, low, high)
        The tempo of each periodic filter: under the likelihood-ratio test the tempo of the
        pattern it fitted (what made the filter periodic), else the periodicity score's
        peak; ``low``-``high``: the score's half-power interval.
    ranges_name : str
        Where the class ranges come from (``"Ballroom"`` or ``"data-set"``).
    test : str
        :data:`TEST_LR` or :data:`TEST_SURROGATE`.
    bank_p : float or None
        Is the bank as a whole more periodic than smooth noise (the count of filters at
        p ≤ 0.05 against a binomial)?
    band_bank_p : tuple of float or None
        The same per tempo band (:data:`tfcnn.interpret.periodic_lrt.BANDS`), Holm-adjusted.
    power : tuple of PowerCurve
        What the filter test finds at ``level`` (cosine and two-pulse filters holding 60 %
        of the variance), measured by simulation; empty under the surrogate test.
    """

    n_filters: int
    q: float
    periodic: Statement
    tuned: Statement | None
    relevant: Statement | None
    relevant_of: str
    class_counts: tuple[tuple[str, int], ...]
    intervals: tuple[tuple[int, float, float, float], ...]
    ranges_name: str
    test: str = TEST_SURROGATE
    bank_p: float | None = None
    band_bank_p: tuple[float, ...] | None = None
    power: tuple[PowerCurve, ...] = ()

    @property
    def level(self) -> float:
        """The per-filter p a lone discovery needs under Benjamini-Hochberg: q / n_filters
        (the strictest level the count is made at; more discoveries relax it)."""
        return self.q / max(self.n_filters, 1)

    @property
    def bands(self) -> tuple[tuple[float, float], ...]:
        return BANDS

    def figures(self) -> dict:
        """The three counts as a flat dict (for growth tables and JSON)."""
        return {"periodic": self.periodic.count, "n_filters": self.n_filters,
                "tuned": None if self.tuned is None else self.tuned.count,
                "tuned_expected": None if self.tuned is None else self.tuned.expected,
                "relevant": None if self.relevant is None else self.relevant.count,
                "relevant_expected": None if self.relevant is None else self.relevant.expected}


def compute_verdict(table: pd.DataFrame, *, has_ranges: bool, ranges_name: str = "Ballroom"
                    ) -> Verdict:
    """The graded :class:`Verdict` from a :func:`filter_table`."""
    q = float(table.attrs.get("q", FDR_Q))
    periodic = table[table["periodic"]]
    first = Statement(count=len(periodic), out_of=len(table),
                      filters=tuple(int(f) for f in periodic["filter"]))
    tuned_stmt = None
    narrowed = periodic
    if len(table) and table["tuned"].notna().all():
        tuned = periodic[periodic["tuned"].astype(bool)]
        chances = periodic["tuned_chance"].to_numpy(float)
        tuned_stmt = Statement(count=len(tuned), out_of=len(periodic),
                               filters=tuple(int(f) for f in tuned["filter"]),
                               expected=float(chances.sum()),
                               p_value=count_tail(chances, len(tuned)))
        narrowed = tuned
    relevant_stmt, counts = None, {}
    if has_ranges:
        hits = narrowed[narrowed["classes"].map(len) > 0]
        chances = narrowed["class_chance"].to_numpy(float)
        relevant_stmt = Statement(count=len(hits), out_of=len(narrowed),
                                  filters=tuple(int(f) for f in hits["filter"]),
                                  expected=float(chances.sum()),
                                  p_value=count_tail(chances, len(hits)))
        for classes in hits["classes"]:
            for c in classes:
                counts[c] = counts.get(c, 0) + 1
    test = table.attrs.get("test", TEST_SURROGATE)
    band = table.attrs.get("band_bank_p")
    power = (tuple(power_curve(pattern, level=q / max(len(table), 1))
                   for pattern in ("cosine", "pulses")) if test == TEST_LR else ())
    return Verdict(
        test=test, bank_p=table.attrs.get("bank_p"),
        band_bank_p=None if band is None else tuple(float(v) for v in band), power=power,
        n_filters=len(table), q=q, periodic=first, tuned=tuned_stmt, relevant=relevant_stmt,
        relevant_of="tuned" if tuned_stmt is not None else "periodic",
        class_counts=tuple(sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))),
        intervals=tuple((int(r.filter),
                         float(r.pattern_bpm if test == TEST_LR and np.isfinite(r.pattern_bpm)
                               else r.peak_bpm),
                         float(r.bpm_low), float(r.bpm_high))
                        for r in periodic.itertuples()),
        ranges_name=ranges_name,
    )


@dataclass(frozen=True)
class TempoStudy:
    """Everything the Filters page and the CLI show for one checkpoint.

    Attributes
    ----------
    arch : str
    classes : tuple of str
    frame_rate : float
    filters : dict
        From :func:`checkpoint_filters`.
    table : DataFrame or None
        :func:`filter_table` (None without temporal filters).
    verdict : Verdict or None
        None without temporal filters.
    baseline : RandomBaseline or None
        Untrained filters of the same shape (a description, not a test).
    heatmap : (bpms (K,), strengths (n_filters, K)) or None
    probes : Probes or None
    ranges : DataFrame
    tempi : DataFrame
    ranges_name : str
    notes : tuple of str
        What the study could not do (e.g. a model without temporal filters).
    functional : FunctionalEvidence or None
        What the model does with tempo (probe → class always with probes; the counterfactual
        and the ablation when asked for).
    """

    arch: str
    classes: tuple[str, ...]
    frame_rate: float
    filters: dict
    table: pd.DataFrame | None
    verdict: Verdict | None
    baseline: RandomBaseline | None
    heatmap: tuple[np.ndarray, np.ndarray] | None
    probes: Probes | None
    ranges: pd.DataFrame
    tempi: pd.DataFrame
    ranges_name: str
    notes: tuple[str, ...] = field(default=())
    functional: FunctionalEvidence | None = None


@per_request  # one model's probes and renders: too little work to split over busy cores
def tempo_study(checkpoint, *, tempi: pd.DataFrame | None = None, ranges_name: str = "Ballroom",
                with_probes: bool = True, probe_bpms: Sequence[float] = PROBE_BPMS,
                probe_seconds: float = PROBE_SECONDS, activations=None,
                n_baseline_models: int = N_BASELINE_MODELS,
                n_surrogates: int = N_SURROGATES,
                bpm_range: Sequence[float] = BALLROOM_BPM_RANGE,
                functional: bool = False,
                functional_tracks: int = CF_TRACKS_PER_CLASS) -> TempoStudy:
    """Run the whole tempo study on one checkpoint.

    Parameters
    ----------
    checkpoint : path or Checkpoint
    tempi : DataFrame (``dance``, ``bpm``), optional, keyword-only
        Class tempi to match against; default the shipped real Ballroom table.
    ranges_name : str, keyword-only
        Name of that source.
    with_probes : bool, keyword-only
        Run :func:`tfcnn.interpret.probes.probe_sweep` (tuning and the tempo → class map).
    probe_bpms, probe_seconds : keyword-only
    activations : np.ndarray (n_filters, n_classes), optional, keyword-only
        Per-class activations for ``most_active`` (default: over the probes).
    n_baseline_models, n_surrogates, bpm_range : keyword-only
    functional : bool, keyword-only
        Also run the tempo counterfactual and the filter ablation on freshly rendered
        SynthBallroom tracks (about a minute; the model's classes must be SynthBallroom's).
    functional_tracks : int, keyword-only
        Fresh tracks per class of the counterfactual and the ablation.

    Returns
    -------
    TempoStudy
    """
    ckpt = as_checkpoint(checkpoint)
    classes = tuple(ckpt.classes)
    frame_rate = frame_rate_of(ckpt)
    filters = checkpoint_filters(ckpt)
    tempi = class_tempi("ballroom") if tempi is None else tempi
    ranges = class_tempo_ranges(tempi, classes=classes)
    probes = (probe_sweep(ckpt, bpms=probe_bpms, seconds=probe_seconds)
              if with_probes else None)
    evidence = (functional_evidence(ckpt, probes, ranges, model_tests=functional,
                                    tracks_per_class=functional_tracks)
                if len(ranges) and (probes is not None or functional) else None)
    common = dict(arch=ckpt.arch, classes=classes, frame_rate=frame_rate, filters=filters,
                  probes=probes, ranges=ranges, tempi=tempi, ranges_name=ranges_name,
                  functional=evidence)
    if filters["temporal"] is None:
        what = ("frequency" if filters["frequency"] is not None
                else "blackbox" if filters["blackbox"] is not None else "none")
        return TempoStudy(table=None, verdict=None, baseline=None, heatmap=None,
                          notes=(f"no-temporal-filters:{what}",), **common)
    baseline = random_baseline(ckpt.arch, ckpt.arch_params, n_classes=len(classes),
                               n_models=n_baseline_models, frame_rate=frame_rate,
                               bpm_range=bpm_range)
    table = filter_table(ckpt, probes=probes, activations=activations,
                         ranges=ranges if len(ranges) else None,
                         n_surrogates=n_surrogates, bpm_range=bpm_range)
    verdict = compute_verdict(table, has_ranges=bool(len(ranges)), ranges_name=ranges_name)
    heatmap = periodicity_map(filters["temporal"], frame_rate=frame_rate, bpm_range=bpm_range)
    return TempoStudy(table=table, verdict=verdict, baseline=baseline, heatmap=heatmap,
                      **common)
