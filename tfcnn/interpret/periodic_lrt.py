"""Is a filter periodic at some tempo? A likelihood-ratio test against fitted smooth noise.

The null hypothesis is a family of smooth noises: autoregressive sequences whose spectrum falls
with frequency (AR(1), and AR(2) with two real positive roots, which falls like ω⁻⁴ and follows
smoother filters). The alternative adds, on top of such noise, one periodic pattern at a tempo
of the tested range: a sinusoid (any phase) or two onset bumps one beat apart (any position,
1.5 or 3 frames wide). For each filter both models are fitted by maximum (conditional) Gaussian
likelihood over the family's members and every pattern; the statistic is

    LR = 2 (max ℓ(noise + pattern) - max ℓ(noise))

computed twice: once over the sinusoids, once over the pulse pairs. The two searches differ in
size (a few independent frequencies against thousands of pulse positions), so one statistic
over both would test a cosine at the threshold the pulse search sets; each gets its own null
table and the filter's p-value is ``min(1, 2 min(p_sinusoid, p_pulses))`` (Bonferroni over
the two).

Their null distributions are not textbook ones (the maximum over tempi, positions and
members, and smooth noises outside the family such as Gaussian-smoothed noise), so they are
tabulated by simulation (``scripts/tempo_null_tables.py``, fixed seeds, shipped as
``tfcnn/data/tempo_null.json``): AR(1) noise with φ uniform in 0-0.98 and Gaussian-smoothed
noise with σ log-uniform in 0.5-8 frames, split into sub-families by the parameter. Each
p-value is read conditionally on two smoothnesses (lag-1 correlation): of the member the
alternative fitted (a periodic filter's own noise, which the pattern does not make look
smooth) and of the member the null fitted (smooth noise is smooth to both fits; a periodic
filter over rough noise looks smooth only to the null's). It is the largest p over the
sub-families that cover that cell (valid for each).

Per tempo band the same statistic restricted to the band's patterns gives band p-values; the
bank-level test counts the filters with p ≤ 0.05 against a binomial (an excess of small
p-values), per band with Holm's correction over the bands.
Measured power and size: ``docs/tempo-study.md``.
"""

from __future__ import annotations

import functools
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import resources

import numpy as np
from scipy.stats import binom

from tfcnn.errors import ConfigError
from tfcnn.interpret.periodicity import DEFAULT_FRAME_RATE_HZ, as_filters

#: Members of the null family: AR(2) roots (a, b), b = 0 being AR(1). Real, non-negative
#: second roots only: a spectrum with complex roots has a peak, which is the alternative.
MEMBERS: tuple[tuple[float, float], ...] = (
    tuple((a, 0.0) for a in (-0.3, 0.0, 0.3, 0.5, 0.65, 0.8, 0.9, 0.95, 0.98))
    + tuple((a, b) for a in (0.5, 0.65, 0.8, 0.9, 0.95, 0.98)
            for b in (0.3, 0.5, 0.7, 0.85, 0.95) if b <= a)
)
#: Sinusoid tempi: at least 1.6 cycles in a 60-frame window (one slow wave is no tempo).
SINUSOID_BPMS: tuple[float, ...] = tuple(float(b) for b in range(69, 225, 2))
#: Two-pulse tempi (one beat fits a 60-frame window down to 60 BPM), bump widths and offsets.
PULSE_BPMS: tuple[float, ...] = tuple(float(b) for b in range(60, 225, 3))
BUMP_SIGMAS: tuple[float, ...] = (1.5, 3.0)
PULSE_OFFSET_STEP: float = 2.0
#: The per-filter test searches patterns from this tempo up: at least 2.3 beats in a 60-frame
#: window. Slower patterns fit the slow wave of smooth noise as well as a tempo (very smooth
#: AR noise then looks like a periodic filter over rough noise); below, the band test and the
#: power per tempo speak instead.
HEADLINE_MIN_BPM: float = 100.0
#: Tempo bands of the bank-level test (BPM, low inclusive).
BANDS: tuple[tuple[float, float], ...] = ((60.0, 100.0), (100.0, 140.0), (140.0, 180.0),
                                          (180.0, 225.0))
#: The tables were simulated for this filter width and frame rate.
TABLE_WIDTH: int = 60
#: Smoothness bins of the conditional tables: lag-1 correlation of the alternative's member.
SMOOTHNESS_EDGES: tuple[float, ...] = (0.1, 0.3, 0.45, 0.6, 0.7, 0.8, 0.87, 0.93, 0.97)
#: ... and of the null's member (the second axis of the per-pattern tables).
NULL_EDGES: tuple[float, ...] = (0.5, 0.7, 0.8, 0.87, 0.93, 0.97)
#: The two pattern searches, each with its own statistic and tables.
PATTERNS: tuple[str, ...] = ("sinusoid", "pulses")
#: Version of the tables' layout (tables of another design are refused).
TABLE_DESIGN: int = 3
#: A family's bin is used only with at least this many simulated filters in it.
MIN_BIN_FILTERS: int = 200
#: Tail probabilities at which the tables store the statistic.
P_LEVELS: tuple[float, ...] = tuple(float(p) for p in np.geomspace(0.99, 1e-4, 40))
TABLE_FILE = "tempo_null.json"
#: Measured power per tempo (``scripts/tempo_power.py``), quoted by the verdict.
POWER_FILE = "tempo_power.json"


def member_lag1(a: float, b: float) -> float:
    """Lag-1 autocorrelation of the AR(2) process with real roots a, b: (a+b)/(1+ab)."""
    return (a + b) / (1.0 + a * b)


def smoothness_bin(member: np.ndarray, edges: Sequence[float] = SMOOTHNESS_EDGES) -> np.ndarray:
    """Bin of each fitted member (indices into MEMBERS) on ``edges``."""
    lag1 = np.array([member_lag1(*m) for m in MEMBERS])
    return np.digitize(lag1[np.asarray(member, dtype=int)], edges)


def smoothness_cell(alt_member: np.ndarray, null_member: np.ndarray) -> np.ndarray:
    """Cell of the per-pattern tables: alternative's bin × null's bin, flattened."""
    return (smoothness_bin(alt_member) * (len(NULL_EDGES) + 1)
            + smoothness_bin(null_member, NULL_EDGES))


def _whitener(a: float, b: float, width: int) -> np.ndarray:
    """Innovations of AR(2) with roots a, b: ``e_t = x_t - (a+b) x_{t-1} + ab x_{t-2}``,
    (width - 2, width) (the conditional likelihood: every member sees the same frames)."""
    m = np.zeros((width - 2, width))
    i = np.arange(width - 2)
    m[i, i + 2], m[i, i + 1], m[i, i] = 1.0, -(a + b), a * b
    return m


def pulse_templates(width: int, frame_rate: float) -> tuple[np.ndarray, np.ndarray]:
    """Two equal Gaussian bumps one beat apart at every offset: (M, width) and their BPMs (M,)."""
    t = np.arange(width, dtype=np.float64)
    rows, bpms = [], []
    for bpm in PULSE_BPMS:
        period = 60.0 * frame_rate / bpm
        for sigma in BUMP_SIGMAS:
            for c in np.arange(0.0, width - period + 1e-9, PULSE_OFFSET_STEP):
                rows.append(np.exp(-0.5 * ((t - c) / sigma) ** 2)
                            + np.exp(-0.5 * ((t - c - period) / sigma) ** 2))
                bpms.append(bpm)
    return np.array(rows).reshape(-1, width), np.array(bpms)


@functools.lru_cache(maxsize=4)
def _prepared(width: int, frame_rate: float):
    """Per member: whitener, whitened constant, orthonormal whitened sinusoid pairs and
    normalised whitened pulse templates (each orthogonal to the constant)."""
    t = np.arange(width, dtype=np.float64)
    omega = 2 * np.pi * np.array(SINUSOID_BPMS) / (60.0 * frame_rate)
    keep = 60.0 * frame_rate / np.array(SINUSOID_BPMS) * 1.6 <= width
    sin_bpms = np.array(SINUSOID_BPMS)[keep]
    pairs = np.stack([np.cos(np.outer(omega[keep], t)), np.sin(np.outer(omega[keep], t))],
                     axis=2)                                          # (K, width, 2)
    pulses, pulse_bpms = pulse_templates(width, frame_rate)          # (M, width)
    members = []
    for a, b in MEMBERS:
        li = _whitener(a, b, width)                                   # (n, width)
        q0 = li @ np.ones(width)
        q0 /= np.linalg.norm(q0)
        s = np.einsum("vw,kwj->kvj", li, pairs)                       # (K, n, 2)
        s -= q0[None, :, None] * np.einsum("v,kvj->kj", q0, s)[:, None, :]
        qs = np.linalg.qr(s)[0]                                       # (K, n, 2)
        p = pulses @ li.T                                             # (M, n)
        p -= np.outer(p @ q0, q0)
        p /= np.maximum(np.linalg.norm(p, axis=1, keepdims=True), 1e-12)
        members.append((li, q0, qs, p))
    return members, sin_bpms, pulse_bpms


@dataclass(frozen=True)
class LRStatistics:
    """The likelihood-ratio statistic of every filter (see the module docstring).

    Attributes
    ----------
    lr : np.ndarray, shape (n,)
        Over the patterns at :data:`HEADLINE_MIN_BPM` and faster (the larger of the two
        below).
    pattern_lr : dict of str to np.ndarray, shape (n,)
        Per pattern search of :data:`PATTERNS`: over its patterns at
        :data:`HEADLINE_MIN_BPM` and faster.
    pattern_member : dict of str to np.ndarray of int, shape (n,)
        Index into :data:`MEMBERS` of the noise each search's alternative fitted.
    null_member : np.ndarray of int, shape (n,)
        Index into :data:`MEMBERS` of the noise the null fitted.
    band_lr : np.ndarray, shape (n, n_bands)
        Over the patterns of each band of :data:`BANDS`.
    member : np.ndarray of int, shape (n,)
        Index into :data:`MEMBERS` of the noise the alternative (of ``lr``) fitted.
    bpm : np.ndarray, shape (n,)
        Tempo of the best-fitting pattern.
    pattern : tuple of str
        ``"sinusoid"`` or ``"pulses"`` per filter.
    """

    lr: np.ndarray
    pattern_lr: dict
    pattern_member: dict
    null_member: np.ndarray
    band_lr: np.ndarray
    member: np.ndarray
    bpm: np.ndarray
    pattern: tuple[str, ...]


def lr_statistics(filters, *, frame_rate: float = DEFAULT_FRAME_RATE_HZ,
                  chunk: int = 2000) -> LRStatistics:
    """The likelihood-ratio statistic of each filter, over all patterns and per tempo band.

    Parameters
    ----------
    filters : np.ndarray, shape (n_filters, width)
    frame_rate : float, keyword-only
    chunk : int, keyword-only
        Filters per block (bounds memory).

    Returns
    -------
    LRStatistics
    """
    x = as_filters(filters)
    n_f, width = x.shape
    members, sin_bpms, pulse_bpms = _prepared(width, float(frame_rate))
    bands = np.array(BANDS)
    sin_band = np.digitize(sin_bpms, bands[1:, 0])                    # band of each tempo
    pul_band = np.digitize(pulse_bpms, bands[1:, 0])
    sin_head, pul_head = sin_bpms >= HEADLINE_MIN_BPM, pulse_bpms >= HEADLINE_MIN_BPM
    n = width - 2
    lr, band_lr = np.zeros(n_f), np.zeros((n_f, len(BANDS)))
    member, bpm = np.zeros(n_f, dtype=int), np.zeros(n_f)
    null_member = np.zeros(n_f, dtype=int)
    pattern_lr = {k: np.zeros(n_f) for k in PATTERNS}
    pattern_member = {k: np.zeros(n_f, dtype=int) for k in PATTERNS}
    pattern = np.empty(n_f, dtype=object)
    for start in range(0, n_f, chunk):
        xs = x[start:start + chunk]
        m = len(xs)
        l0 = np.full(m, -np.inf)
        l1 = np.full((m, len(BANDS)), -np.inf)
        best = np.full(m, -np.inf)
        best_of = {k: np.full(m, -np.inf) for k in PATTERNS}
        for i, (li, q0, qs, p) in enumerate(members):
            y = xs @ li.T                                             # (m, n) innovations
            y -= np.outer(y @ q0, q0)
            r0 = np.maximum(np.sum(y * y, axis=1), 1e-300)
            es = np.sum(np.einsum("mv,kvj->mkj", y, qs) ** 2, axis=2)  # (m, K)
            ep = (y @ p.T) ** 2                                        # (m, M)
            null_better = -n / 2 * np.log(r0) > l0
            null_member[start:start + m][null_better] = i
            l0 = np.maximum(l0, -n / 2 * np.log(r0))
            for k in range(len(BANDS)):
                e = np.maximum(es[:, sin_band == k].max(axis=1, initial=0.0),
                               ep[:, pul_band == k].max(axis=1, initial=0.0))
                l1[:, k] = np.maximum(l1[:, k], -n / 2 * np.log(np.maximum(r0 - e, 1e-300 * r0)))
            es_h, ep_h = es[:, sin_head], ep[:, pul_head]              # resolvable tempi
            for name, e in (("sinusoid", es_h.max(axis=1)), ("pulses", ep_h.max(axis=1))):
                a = -n / 2 * np.log(np.maximum(r0 - e, 1e-300 * r0))
                won = a > best_of[name]
                best_of[name][won] = a[won]
                pattern_member[name][start:start + m][won] = i
            e_all = np.maximum(es_h.max(axis=1), ep_h.max(axis=1))
            a1 = -n / 2 * np.log(np.maximum(r0 - e_all, 1e-300 * r0))
            better = a1 > best
            best[better] = a1[better]
            member[start:start + m][better] = i
            sin_win = es_h.max(axis=1) >= ep_h.max(axis=1)
            tempo = np.where(sin_win, sin_bpms[sin_head][np.argmax(es_h, axis=1)],
                             pulse_bpms[pul_head][np.argmax(ep_h, axis=1)])
            bpm[start:start + m][better] = tempo[better]
            pattern[start:start + m][better] = np.where(sin_win, "sinusoid", "pulses")[better]
        lr[start:start + m] = 2 * (best - l0)
        for name in PATTERNS:
            pattern_lr[name][start:start + m] = np.maximum(2 * (best_of[name] - l0), 0.0)
        band_lr[start:start + m] = 2 * (l1 - l0[:, None])
    return LRStatistics(lr=np.maximum(lr, 0.0), pattern_lr=pattern_lr,
                        pattern_member=pattern_member, null_member=null_member,
                        band_lr=np.maximum(band_lr, 0.0), member=member, bpm=bpm,
                        pattern=tuple(pattern))


# ---------------------------------------------------------------- the null tables


def tail_quantiles(values: np.ndarray) -> list[float] | None:
    """The statistic at each of :data:`P_LEVELS` (upper tail), None with too few values.

    Below ``5 / n`` the empirical quantile is replaced by an exponential tail fitted to the
    top 5 % (the statistic is a maximum of chi-square-like terms: its tail is close to
    exponential), so the table reaches p-values the simulation cannot count.
    """
    v = np.sort(np.asarray(values, dtype=float))
    n = len(v)
    if n < MIN_BIN_FILTERS:
        return None
    t05 = float(np.quantile(v, 0.95))
    scale = float(np.mean(v[v > t05] - t05)) if np.any(v > t05) else 1.0
    out = []
    for p in P_LEVELS:
        q = float(np.quantile(v, 1 - p)) if p * n >= 5 else t05 + scale * math.log(0.05 / p)
        out.append(max(q, out[-1]) if out else q)
    return [round(q, 3) for q in out]  # 3 decimals: the shipped tables stay small


def p_from_quantiles(quantiles: Sequence[float], value: float) -> float:
    """Upper-tail p of ``value`` from a :func:`tail_quantiles` row (log-linear between levels,
    exponential beyond the last)."""
    q = np.asarray(quantiles, dtype=float)
    logp = np.log(np.array(P_LEVELS))
    if value <= q[0]:
        return 1.0 if value < q[0] else float(P_LEVELS[0])
    if value >= q[-1]:
        slope = (logp[-1] - logp[-6]) / max(q[-1] - q[-6], 1e-12)    # d log p / d value
        return float(math.exp(logp[-1] + slope * (value - q[-1])))
    j = int(np.searchsorted(q, value, side="right"))
    f = (value - q[j - 1]) / max(q[j] - q[j - 1], 1e-12)
    return float(math.exp(logp[j - 1] + f * (logp[j] - logp[j - 1])))


@dataclass(frozen=True)
class NullTables:
    """Simulated null quantiles: ``tables[name][family][bin]`` is a :func:`tail_quantiles`
    row or None. ``name`` is a pattern of :data:`PATTERNS` (bins: :func:`smoothness_cell`),
    ``"<pattern> alt"`` (bins: the alternative's :func:`smoothness_bin` alone, the fallback
    of a cell no sub-family covers) or ``"band0"``..``"band3"`` (bins: the alternative's
    :func:`smoothness_bin`); ``counts``: simulated filters per sub-family."""

    tables: dict
    families: tuple[str, ...]
    counts: dict
    seed: int
    width: int
    frame_rate: float

    def p_value(self, name: str, value: float, bin_: int, *,
                fallback: Sequence[tuple[str, int]] = ()) -> float:
        """Largest p over the families that cover ``bin_``; a bin no family covers uses the
        largest p over every ``(table, bin)`` of ``fallback`` that some family covers, else
        the largest p over every bin of ``name`` (the most conservative)."""
        rows = [self.tables[name][f][int(bin_)] for f in self.families]
        rows = [r for r in rows if r is not None]
        if not rows:
            rows = [self.tables[t][f][int(b)] for t, b in fallback for f in self.families]
            rows = [r for r in rows if r is not None]
        if not rows:
            rows = [r for f in self.families for r in self.tables[name][f] if r is not None]
        return max(p_from_quantiles(r, value) for r in rows)

    def filter_p_values(self, stats: LRStatistics) -> np.ndarray:
        """Each filter's p-value: ``min(1, 2 min(p_sinusoid, p_pulses))``, each read in its
        pattern's cell (:func:`smoothness_cell`), shape (n,).

        A cell that no sub-family covers (too few simulated filters land there) is read
        against every covered cell of its row (same alternative's smoothness, any null's)
        and the row's one-axis table, whichever gives the largest p: rare cells are where
        the statistic runs large, so the row's unconditioned table alone would be too
        liberal there."""
        out = np.ones(len(stats.lr))
        n_null = len(NULL_EDGES) + 1
        for name in PATTERNS:
            alt = stats.pattern_member[name]
            cells = smoothness_cell(alt, stats.null_member)
            bins = smoothness_bin(alt)
            p = np.array([self.p_value(name, v, c, fallback=[(f"{name} alt", b)] + [
                              (name, b * n_null + j) for j in range(n_null)])
                          for v, c, b in zip(stats.pattern_lr[name], cells, bins)])
            out = np.minimum(out, p)
        return np.minimum(1.0, len(PATTERNS) * out)

    def to_json(self) -> dict:
        return {"tables": self.tables, "families": list(self.families),
                "counts": dict(self.counts), "seed": self.seed, "width": self.width,
                "frame_rate": self.frame_rate, "p_levels": list(P_LEVELS),
                "members": [list(m) for m in MEMBERS], "edges": list(SMOOTHNESS_EDGES),
                "null_edges": list(NULL_EDGES), "design": TABLE_DESIGN,
                "headline_min_bpm": HEADLINE_MIN_BPM}

    @classmethod
    def from_json(cls, doc: dict) -> "NullTables":
        if (doc.get("members") != [list(m) for m in MEMBERS]
                or doc.get("edges") != list(SMOOTHNESS_EDGES)
                or doc.get("null_edges") != list(NULL_EDGES)
                or doc.get("design") != TABLE_DESIGN
                or doc.get("p_levels") != list(P_LEVELS)
                or doc.get("headline_min_bpm") != HEADLINE_MIN_BPM):
            raise ConfigError(f"{TABLE_FILE} was built for another test design; rebuild it "
                              "with python -m scripts.tempo_null_tables")
        return cls(tables=doc["tables"], families=tuple(doc["families"]),
                   counts={k: int(v) for k, v in doc["counts"].items()}, seed=int(doc["seed"]),
                   width=int(doc["width"]), frame_rate=float(doc["frame_rate"]))


def build_tables(samples: dict[str, np.ndarray], *, seed: int, frame_rate: float
                 ) -> NullTables:
    """Tables from simulated null filters ``{family: (n, width)}``."""
    tables: dict = {**{k: {} for k in PATTERNS}, **{f"{k} alt": {} for k in PATTERNS},
                    **{f"band{k}": {} for k in range(len(BANDS))}}
    n_bins = len(SMOOTHNESS_EDGES) + 1
    n_cells = n_bins * (len(NULL_EDGES) + 1)
    widths = {s.shape[1] for s in samples.values()}
    for family, x in samples.items():
        stats = lr_statistics(x, frame_rate=frame_rate)
        bins = smoothness_bin(stats.member)
        for k in range(len(BANDS)):
            v = stats.band_lr[:, k]
            tables[f"band{k}"][family] = [tail_quantiles(v[bins == b]) for b in range(n_bins)]
        for name in PATTERNS:
            v, alt = stats.pattern_lr[name], stats.pattern_member[name]
            cells = smoothness_cell(alt, stats.null_member)
            tables[name][family] = [tail_quantiles(v[cells == c]) for c in range(n_cells)]
            alt_bins = smoothness_bin(alt)
            tables[f"{name} alt"][family] = [tail_quantiles(v[alt_bins == b])
                                             for b in range(n_bins)]
    return NullTables(tables=tables, families=tuple(samples),
                      counts={k: len(v) for k, v in samples.items()}, seed=seed,
                      width=widths.pop(), frame_rate=float(frame_rate))


@functools.lru_cache(maxsize=1)
def shipped_tables() -> NullTables:
    """The tables shipped in ``tfcnn/data`` (built by ``scripts/tempo_null_tables.py``)."""
    text = resources.files("tfcnn").joinpath("data", TABLE_FILE).read_text(encoding="utf-8")
    return NullTables.from_json(json.loads(text))


# ---------------------------------------------------------------- the tests


@dataclass(frozen=True)
class PeriodicTest:
    """Per-filter and bank-level results of the likelihood-ratio test.

    Attributes
    ----------
    stats : LRStatistics
    p_value : np.ndarray, shape (n,)
        Against the smooth-noise family, any tempo of the tested range:
        ``min(1, 2 min(p_sinusoid, p_pulses))`` (:meth:`NullTables.filter_p_values`).
    band_p : np.ndarray, shape (n, n_bands)
        The same restricted to each band of :data:`BANDS`.
    bank_p : float
        :func:`count_combination` of ``p_value`` over the filters (independence assumed).
    band_bank_p : np.ndarray, shape (n_bands,)
        The same per band, Holm-adjusted over the bands.
    """

    stats: LRStatistics
    p_value: np.ndarray
    band_p: np.ndarray
    bank_p: float
    band_bank_p: np.ndarray


#: The bank test counts filters at this per-filter level.
BANK_ALPHA: float = 0.05


def count_combination(p_values, *, alpha: float = BANK_ALPHA) -> float:
    """P(Bin(m, alpha) ≥ #{p ≤ alpha}): is there an excess of small p-values in the bank?

    Valid when each p-value is uniform or conservative (P(p ≤ alpha) ≤ alpha) and the filters
    independent; unlike Fisher's combination it loses no power to the many p-values that a
    conservative test pushes towards 1.
    """
    p = np.asarray(p_values, dtype=float)
    if p.size == 0:
        return 1.0
    return float(binom.sf(int(np.sum(p <= alpha)) - 1, p.size, alpha))


def holm(p_values) -> np.ndarray:
    """Holm-adjusted p-values (family-wise error over the given tests), same order."""
    p = np.asarray(p_values, dtype=float)
    m = len(p)
    order = np.argsort(p)
    adjusted = np.maximum.accumulate(p[order] * (m - np.arange(m)))
    out = np.empty(m)
    out[order] = np.minimum(adjusted, 1.0)
    return out


def periodic_test(filters, *, frame_rate: float = DEFAULT_FRAME_RATE_HZ,
                  tables: NullTables | None = None) -> PeriodicTest:
    """The likelihood-ratio test of every filter and of the bank.

    Parameters
    ----------
    filters : np.ndarray, shape (n_filters, width)
        Width and frame rate must be those the tables were simulated for (60 frames at
        43.07 frames/s: the paper's 1×60 filters).
    frame_rate : float, keyword-only
    tables : NullTables, optional, keyword-only
        Default :func:`shipped_tables`.

    Raises
    ------
    ConfigError
        Filters of another width or frame rate than the tables'.
    """
    x = as_filters(filters)
    tables = shipped_tables() if tables is None else tables
    if x.shape[1] != tables.width or abs(float(frame_rate) - tables.frame_rate) > 1e-6:
        raise ConfigError(
            f"the likelihood-ratio tables are for 1×{tables.width} filters at "
            f"{tables.frame_rate:.2f} frames/s, got 1×{x.shape[1]} at {float(frame_rate):.2f}")
    stats = lr_statistics(x, frame_rate=frame_rate)
    bins = smoothness_bin(stats.member)
    flat = np.ptp(x, axis=1) <= 1e-12 * np.maximum(np.abs(x).max(axis=1), 1e-300)
    p = np.where(flat, 1.0, tables.filter_p_values(stats))
    band_p = np.array([[1.0 if flat[i] else tables.p_value(f"band{k}", stats.band_lr[i, k],
                                                           bins[i])
                        for k in range(len(BANDS))] for i in range(len(x))])
    return PeriodicTest(stats=stats, p_value=p, band_p=band_p, bank_p=count_combination(p),
                        band_bank_p=holm([count_combination(band_p[:, k])
                                          for k in range(len(BANDS))]))


# ---------------------------------------------------------------- measured power


@dataclass(frozen=True)
class PowerCurve:
    """Measured power of the test per tempo for one planted pattern (``scripts/tempo_power.py``).

    ``power[i]``: share of filters holding ``pattern`` at ``tempi[i]`` with ``share`` of
    their variance (the rest AR(1) noise with ``noise_phi``) that reach p ≤ ``level``.
    """

    pattern: str
    share: float
    noise_phi: float
    level: float
    tempi: tuple[float, ...]
    power: tuple[float, ...]
    n: int

    def at(self, bpm: float) -> float:
        """Power at the nearest measured tempo."""
        return self.power[int(np.argmin(np.abs(np.array(self.tempi) - float(bpm))))]

    def over(self, low: float, high: float) -> tuple[float, float]:
        """Smallest and largest power over the measured tempi in [low, high]."""
        sel = [p for b, p in zip(self.tempi, self.power) if low <= b <= high]
        return (min(sel), max(sel)) if sel else (float("nan"), float("nan"))


@functools.lru_cache(maxsize=1)
def _power_doc() -> dict:
    text = resources.files("tfcnn").joinpath("data", POWER_FILE).read_text(encoding="utf-8")
    return json.loads(text)


def power_curve(pattern: str, *, level: float, noise_phi: float = 0.5) -> PowerCurve:
    """The shipped power curve at the largest measured level ≤ ``level`` (conservative);
    below every measured level, the strictest one measured (then ``curve.level > level``
    and the power quoted is an upper bound: the verdict says so).

    Raises
    ------
    ConfigError
        Unknown pattern or noise.
    """
    doc = _power_doc()
    try:
        by_level = doc["power"][pattern][str(noise_phi)]
    except KeyError:
        raise ConfigError(f"no measured power for pattern {pattern!r} in AR({noise_phi}) "
                          f"noise; measured: {sorted(doc['power'])}") from None
    levels = sorted(float(a) for a in by_level)
    usable = [a for a in levels if a <= float(level) * (1 + 1e-9)] or levels[:1]
    chosen = max(usable)
    key = next(k for k in by_level if abs(float(k) - chosen) < 1e-12)
    return PowerCurve(pattern=pattern, share=float(doc["share"]), noise_phi=float(noise_phi),
                      level=chosen, tempi=tuple(doc["tempi"]), power=tuple(by_level[key]),
                      n=int(doc["n"]))
