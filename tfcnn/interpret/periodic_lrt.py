"""Is a filter periodic at some tempo? A likelihood ratio of periodic against smooth noise.

Both hypotheses are families of zero-mean Gaussian sequences, and each filter's likelihood
under a family is its *average* likelihood over the family's members (a marginal, or
integrated, likelihood), not the best member's:

* the null, smooth noise: AR(1) with φ from -0.3 to 0.98, AR(2) with two real positive roots
  (a spectrum falling like ω⁻⁴) and white noise smoothed by a Gaussian of 0.7-8 frames;
* the alternative, a periodic pattern holding 30-97 % of the variance over AR(1) noise
  (φ 0-0.85): a sinusoid of random phase and amplitude at a tempo anywhere in a cell of the grid
  (the covariance ``cos ω(t - t')`` averaged over the cell's ω), or two onset bumps one beat apart (1.5 or 3 frames wide, at
  every position on a 2-frame grid: a rank-1 covariance each).

Every density is taken on the filter's direction only (mean removed, scale integrated out),
so a filter's size and offset say nothing. The statistic is

    T = log mean_alternative f(x) - log mean_null f(x)

computed over the sinusoids and over the pulse pairs, and the filter's statistic is the larger
of the two; the pulse search is read against a null that also holds smooth noise plus white
noise (a lone bump over white noise is not two onsets). Averaging instead of maximising is
what gives the test its power: a smooth-noise filter is likely under many smooth members at
once, a periodic one under a few sinusoids over rough noise, which a best-member fit of the
null (an AR(2) can follow one slow cosine) hides.

The null distribution of T is tabulated by simulation per sub-family of the three noises
(``scripts/tempo_null_tables.py``, fixed seeds, shipped as ``tfcnn/data/tempo_null.json``),
and a filter's p-value is the largest over the sub-families: valid for each of them.
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
from scipy.linalg import toeplitz
from scipy.special import logsumexp
from scipy.stats import binom

from tfcnn.errors import ConfigError
from tfcnn.interpret.periodicity import DEFAULT_FRAME_RATE_HZ, as_filters

#: Null members: AR(1) coefficients (0 is white noise) ...
NULL_AR1: tuple[float, ...] = (-0.3, 0.0, 0.3, 0.5, 0.65, 0.8, 0.9, 0.95, 0.98)
#: ... AR(2) with two real roots (a, b), b ≤ a: a spectrum with complex roots has a peak,
#: which is the alternative ...
NULL_AR2: tuple[tuple[float, float], ...] = tuple(
    (a, b) for a in (0.5, 0.65, 0.8, 0.9, 0.95, 0.98) for b in (0.3, 0.5, 0.7, 0.85, 0.95)
    if b <= a)
#: ... and Gaussian-smoothed white noise (σ in frames).
NULL_GAUSS: tuple[float, ...] = (0.7, 1.0, 1.5, 2.0, 3.0, 4.0, 5.0, 6.5, 8.0)
#: The pulse search's null adds smooth noise plus white noise: (kind, parameter, white share).
NULL_PLUS_WHITE: tuple[tuple[str, float, float], ...] = tuple(
    [("ar", a, w) for a in (0.5, 0.8, 0.9, 0.95) for w in (0.25, 0.5)]
    + [("gauss", g, w) for g in (2.0, 4.0, 8.0) for w in (0.25, 0.5)])
#: Alternative: the pattern's share of the variance, and the AR(1) noise under it.
ALT_SHARES: tuple[float, ...] = (0.3, 0.5, 0.7, 0.85, 0.97)
ALT_NOISE_AR1: tuple[float, ...] = (0.0, 0.3, 0.5, 0.7, 0.85)
#: Every covariance also holds this much white noise (relative): no member is singular.
NUGGET: float = 1e-3
#: Sinusoid tempi: at least 1.6 cycles in a 60-frame window (one slow wave is no tempo).
SINUSOID_STEP_BPM: float = 3.0
SINUSOID_BPMS: tuple[float, ...] = tuple(float(b) for b in range(69, 226, int(SINUSOID_STEP_BPM)))
#: Two-pulse tempi (one beat fits a 60-frame window down to 60 BPM), bump widths and offsets.
PULSE_BPMS: tuple[float, ...] = tuple(float(b) for b in range(60, 226, 3))
BUMP_SIGMAS: tuple[float, ...] = (1.5, 3.0)
PULSE_OFFSET_STEP: float = 2.0
#: The per-filter test is about tempi from here up: at least 2.3 beats in a 60-frame window.
#: Slower patterns fit the slow wave of smooth noise as well as a tempo; below, the band test
#: and the power per tempo speak instead.
HEADLINE_MIN_BPM: float = 100.0
#: The sinusoid search reaches this far below :data:`HEADLINE_MIN_BPM`: a window of 60 frames
#: resolves tempo only to about ±20 BPM, and a cosine at 100 BPM should not sit at the edge
#: of the grid it is matched against (measured: 40 → 59 % found at 100 BPM).
HEADLINE_SINUSOID_MIN_BPM: float = 90.0
#: Tempo bands of the bank-level test (BPM, low inclusive).
BANDS: tuple[tuple[float, float], ...] = ((60.0, 100.0), (100.0, 140.0), (140.0, 180.0),
                                          (180.0, 225.0))
#: The tables were simulated for this filter width and frame rate.
TABLE_WIDTH: int = 60
#: The two pattern searches.
PATTERNS: tuple[str, ...] = ("sinusoid", "pulses")
#: Version of the tables' layout and statistic (tables of another design are refused).
TABLE_DESIGN: int = 4
#: A sub-family's table is built only from at least this many simulated filters.
MIN_BIN_FILTERS: int = 200
#: Tail probabilities at which the tables store the statistic.
P_LEVELS: tuple[float, ...] = tuple(float(p) for p in np.geomspace(0.99, 1e-4, 40))
TABLE_FILE = "tempo_null.json"
#: Measured power per tempo (``scripts/tempo_power.py``), quoted by the verdict.
POWER_FILE = "tempo_power.json"


def design_constants() -> dict:
    """Everything the null tables depend on; tables built for other constants are refused."""
    return {"design": TABLE_DESIGN, "null_ar1": list(NULL_AR1),
            "null_ar2": [list(m) for m in NULL_AR2], "null_gauss": list(NULL_GAUSS),
            "null_plus_white": [list(m) for m in NULL_PLUS_WHITE],
            "alt_shares": list(ALT_SHARES), "alt_noise_ar1": list(ALT_NOISE_AR1),
            "nugget": NUGGET, "sinusoid_bpms": list(SINUSOID_BPMS),
            "pulse_bpms": list(PULSE_BPMS), "sinusoid_cell": "sinc", "bump_sigmas": list(BUMP_SIGMAS),
            "pulse_offset_step": PULSE_OFFSET_STEP, "headline_min_bpm": HEADLINE_MIN_BPM,
            "headline_sinusoid_min_bpm": HEADLINE_SINUSOID_MIN_BPM,
            "bands": [list(b) for b in BANDS], "p_levels": list(P_LEVELS)}


# ---------------------------------------------------------------- covariances


def ar1_correlation(phi: float, width: int) -> np.ndarray:
    """Correlation matrix of stationary AR(1) noise: (width, width)."""
    return np.eye(width) if phi == 0 else toeplitz(float(phi) ** np.arange(width))


def ar2_correlation(a: float, b: float, width: int) -> np.ndarray:
    """Correlation matrix of stationary AR(2) noise with real roots a, b: (width, width)."""
    h = np.zeros(width + 600)
    h[0] = 1.0
    for i in range(1, len(h)):
        h[i] = (a + b) * h[i - 1] - a * b * (h[i - 2] if i >= 2 else 0.0)
    g = np.array([np.dot(h[:len(h) - j], h[j:]) for j in range(width)])
    return toeplitz(g / g[0])


def gauss_correlation(sigma: float, width: int) -> np.ndarray:
    """Correlation matrix of white noise smoothed by a Gaussian of ``sigma`` frames."""
    return toeplitz(np.exp(-np.arange(width) ** 2 / (4.0 * sigma * sigma)))


def contrast_basis(width: int) -> np.ndarray:
    """Orthonormal basis of the sequences with mean 0: (width - 1, width)."""
    q = np.linalg.qr(np.column_stack([np.ones(width), np.eye(width)[:, :width - 1]]))[0]
    return q[:, 1:].T


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


@dataclass(frozen=True)
class _Dense:
    """Scale-free Gaussian densities of full covariances, stacked for one matrix product:
    ``roots`` (d, K·d) Cholesky factors of the precisions, ``logdet`` (K,)."""

    roots: np.ndarray
    logdet: np.ndarray

    @classmethod
    def of(cls, covariances, basis: np.ndarray) -> "_Dense":
        d = basis.shape[0]
        roots, logdet = [], []
        for c in covariances:
            cp = basis @ c @ basis.T
            cp = cp / np.trace(cp) * d + NUGGET * np.eye(d)
            prec = np.linalg.inv(cp)
            roots.append(np.linalg.cholesky((prec + prec.T) / 2))
            logdet.append(np.linalg.slogdet(cp)[1])
        return cls(roots=np.concatenate(roots, axis=1), logdet=np.array(logdet))

    def log_density(self, y: np.ndarray) -> np.ndarray:
        """(n, K) for unit directions ``y`` (n, d)."""
        d, k = y.shape[1], len(self.logdet)
        z = (y @ self.roots).reshape(len(y), k, d)
        return -0.5 * self.logdet[None, :] - d / 2 * np.log(np.einsum("nkd,nkd->nk", z, z))


@dataclass(frozen=True)
class _Pulses:
    """Scale-free densities of ``share · p pᵀ + (1 - share) · noise`` for every template p,
    by the Sherman-Morrison identity: per noise its precision and log-determinant and
    ``p' precision p`` per template."""

    templates: np.ndarray          # (M, d), |p|² = d
    noise: tuple                   # ((precision (d, d), logdet, quad (M,)), ...)

    @classmethod
    def of(cls, templates: np.ndarray, basis: np.ndarray, noise_width: int) -> "_Pulses":
        d = basis.shape[0]
        p = templates @ basis.T
        p *= np.sqrt(d) / np.linalg.norm(p, axis=1, keepdims=True)
        noise = []
        for phi in ALT_NOISE_AR1:
            rp = basis @ ar1_correlation(phi, noise_width) @ basis.T
            rp = rp / np.trace(rp) * d + NUGGET * np.eye(d)
            prec = np.linalg.inv(rp)
            noise.append((prec, np.linalg.slogdet(rp)[1], np.einsum("md,de,me->m", p, prec, p)))
        return cls(templates=p, noise=tuple(noise))

    def log_density(self, y: np.ndarray) -> np.ndarray:
        """(n, len(noise) · len(ALT_SHARES) · M) for unit directions ``y`` (n, d)."""
        d = y.shape[1]
        out = []
        for prec, logdet, quad in self.noise:
            u = np.einsum("nd,de,ne->n", y, prec, y)
            v = y @ prec @ self.templates.T                          # (n, M)
            for share in ALT_SHARES:
                r = share / (1 - share)
                q = (u[:, None] - r * v ** 2 / (1 + r * quad[None, :])) / (1 - share)
                ld = d * math.log(1 - share) + logdet + np.log1p(r * quad)
                out.append(-0.5 * ld[None, :] - d / 2 * np.log(q))
        return np.concatenate(out, axis=1)


@dataclass(frozen=True)
class _Model:
    basis: np.ndarray
    null: _Dense                   # smooth members
    null_white: _Dense             # smooth + white members
    sinusoids: _Dense
    sin_bpm: np.ndarray            # (K,) tempo of each sinusoid component
    pulses: _Pulses
    pulse_bpm: np.ndarray          # tempo of each pulse component, in log_density's order


@functools.lru_cache(maxsize=4)
def _model(width: int, frame_rate: float) -> _Model:
    basis = contrast_basis(width)
    smooth = ([ar1_correlation(a, width) for a in NULL_AR1]
              + [ar2_correlation(a, b, width) for a, b in NULL_AR2]
              + [gauss_correlation(g, width) for g in NULL_GAUSS])
    plus_white = [(1 - w) * (ar1_correlation(v, width) if kind == "ar"
                             else gauss_correlation(v, width)) + w * np.eye(width)
                  for kind, v, w in NULL_PLUS_WHITE]
    t = np.arange(width, dtype=np.float64)
    lag = t[:, None] - t[None, :]
    covs, sin_bpm = [], []
    for bpm in SINUSOID_BPMS:
        # the tempo anywhere in its grid cell (±1.5 BPM): cos(ω lag) averaged over the cell
        half = 2 * np.pi * SINUSOID_STEP_BPM / 2 / (60.0 * frame_rate)
        k = np.cos(2 * np.pi * bpm / (60.0 * frame_rate) * lag) * np.sinc(half * lag / np.pi)
        for share in ALT_SHARES:
            for phi in ALT_NOISE_AR1:
                covs.append(share * k + (1 - share) * ar1_correlation(phi, width))
                sin_bpm.append(bpm)
    templates, tbpm = pulse_templates(width, frame_rate)
    reps = len(ALT_NOISE_AR1) * len(ALT_SHARES)
    return _Model(basis=basis, null=_Dense.of(smooth, basis),
                  null_white=_Dense.of(smooth + plus_white, basis),
                  sinusoids=_Dense.of(covs, basis), sin_bpm=np.array(sin_bpm),
                  pulses=_Pulses.of(templates, basis, width), pulse_bpm=np.tile(tbpm, reps))


def _log_mean(log_f: np.ndarray, keep: np.ndarray | None = None) -> np.ndarray:
    """log of the mean of exp(log_f[:, keep]) per row (all columns without ``keep``); -inf
    with nothing kept."""
    if keep is None:
        return logsumexp(log_f, axis=1) - math.log(log_f.shape[1])
    if not np.any(keep):
        return np.full(len(log_f), -np.inf)
    return logsumexp(log_f[:, keep], axis=1) - math.log(int(np.sum(keep)))


@dataclass(frozen=True)
class LRStatistics:
    """The likelihood-ratio statistic of every filter (see the module docstring).

    Attributes
    ----------
    lr : np.ndarray, shape (n,)
        ``max(T_sinusoid, T_pulses)`` over the patterns of the tested range (sinusoids from
        :data:`HEADLINE_SINUSOID_MIN_BPM`, pulse pairs from :data:`HEADLINE_MIN_BPM`).
    pattern_lr : dict of str to np.ndarray, shape (n,)
        Per pattern search of :data:`PATTERNS`.
    band_lr : np.ndarray, shape (n, n_bands)
        The same over the patterns of each band of :data:`BANDS`.
    bpm : np.ndarray, shape (n,)
        Tempo of the most likely pattern of the winning search.
    pattern : tuple of str
        ``"sinusoid"`` or ``"pulses"`` per filter.
    """

    lr: np.ndarray
    pattern_lr: dict
    band_lr: np.ndarray
    bpm: np.ndarray
    pattern: tuple[str, ...]


def lr_statistics(filters, *, frame_rate: float = DEFAULT_FRAME_RATE_HZ,
                  chunk: int = 256) -> LRStatistics:
    """The likelihood-ratio statistic of each filter, over all patterns and per tempo band.

    Parameters
    ----------
    filters : np.ndarray, shape (n_filters, width)
    frame_rate : float, keyword-only
    chunk : int, keyword-only
        Filters per block (bounds memory: about ``chunk`` × 0.5 MB).

    Returns
    -------
    LRStatistics
    """
    x = as_filters(filters)
    model = _model(x.shape[1], float(frame_rate))
    y = (x - x.mean(axis=1, keepdims=True)) @ model.basis.T
    y /= np.maximum(np.linalg.norm(y, axis=1, keepdims=True), 1e-300)
    sin_head = model.sin_bpm >= HEADLINE_SINUSOID_MIN_BPM
    pul_head = model.pulse_bpm >= HEADLINE_MIN_BPM
    edges = [lo for lo, _ in BANDS[1:]]
    sin_band, pul_band = np.digitize(model.sin_bpm, edges), np.digitize(model.pulse_bpm, edges)
    n = len(x)
    lr_sin, lr_pul, bpm = np.zeros(n), np.zeros(n), np.zeros(n)
    band_lr = np.zeros((n, len(BANDS)))
    for s in range(0, n, chunk):
        ys = y[s:s + chunk]
        l0 = _log_mean(model.null.log_density(ys))
        l0w = _log_mean(model.null_white.log_density(ys))
        fs, fp = model.sinusoids.log_density(ys), model.pulses.log_density(ys)
        a = _log_mean(fs, sin_head) - l0
        b = _log_mean(fp, pul_head) - l0w
        lr_sin[s:s + chunk], lr_pul[s:s + chunk] = a, b
        best_sin = model.sin_bpm[sin_head][np.argmax(fs[:, sin_head], axis=1)]
        best_pul = model.pulse_bpm[pul_head][np.argmax(fp[:, pul_head], axis=1)]
        bpm[s:s + chunk] = np.where(a >= b, best_sin, best_pul)
        for k in range(len(BANDS)):
            band_lr[s:s + chunk, k] = np.maximum(_log_mean(fs, sin_band == k) - l0,
                                                 _log_mean(fp, pul_band == k) - l0w)
    return LRStatistics(lr=np.maximum(lr_sin, lr_pul),
                        pattern_lr={"sinusoid": lr_sin, "pulses": lr_pul}, band_lr=band_lr,
                        bpm=bpm, pattern=tuple("sinusoid" if a >= b else "pulses"
                                               for a, b in zip(lr_sin, lr_pul)))


# ---------------------------------------------------------------- the null tables


def tail_quantiles(values: np.ndarray) -> list[float] | None:
    """The statistic at each of :data:`P_LEVELS` (upper tail), None with too few values.

    Below ``5 / n`` the empirical quantile is replaced by an exponential tail fitted to the
    top 5 % (the statistic is a log likelihood ratio: its tail is close to exponential), so the table reaches p-values the simulation cannot count.
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
    """Simulated null quantiles: ``tables[name][family]`` is a :func:`tail_quantiles` row or
    None; ``name`` is ``"filter"`` (the statistic :attr:`LRStatistics.lr`) or ``"band0"``..
    ``"band3"`` (:attr:`LRStatistics.band_lr`); ``counts``: simulated filters per
    sub-family."""

    tables: dict
    families: tuple[str, ...]
    counts: dict
    seed: int
    width: int
    frame_rate: float

    def p_value(self, name: str, value: float) -> float:
        """Largest upper-tail p of ``value`` over the sub-families (valid for each)."""
        rows = [r for r in (self.tables[name][f] for f in self.families) if r is not None]
        if not rows:
            raise ConfigError(f"{TABLE_FILE} has no sub-family with a table for {name!r}")
        return max(p_from_quantiles(r, value) for r in rows)

    def filter_p_values(self, stats: LRStatistics) -> np.ndarray:
        """Each filter's p-value, shape (n,)."""
        return np.array([self.p_value("filter", v) for v in stats.lr])

    def to_json(self) -> dict:
        return {"tables": self.tables, "families": list(self.families),
                "counts": dict(self.counts), "seed": self.seed, "width": self.width,
                "frame_rate": self.frame_rate, "constants": design_constants()}

    @classmethod
    def from_json(cls, doc: dict) -> "NullTables":
        if doc.get("constants") != json.loads(json.dumps(design_constants())):
            raise ConfigError(f"{TABLE_FILE} was built for another test design; rebuild it "
                              "with python -m scripts.tempo_null_tables")
        return cls(tables=doc["tables"], families=tuple(doc["families"]),
                   counts={k: int(v) for k, v in doc["counts"].items()}, seed=int(doc["seed"]),
                   width=int(doc["width"]), frame_rate=float(doc["frame_rate"]))


def build_tables(samples: dict[str, np.ndarray], *, seed: int, frame_rate: float
                 ) -> NullTables:
    """Tables from simulated null filters ``{sub-family: (n, width)}``."""
    tables: dict = {"filter": {}, **{f"band{k}": {} for k in range(len(BANDS))}}
    widths = {s.shape[1] for s in samples.values()}
    for family, x in samples.items():
        stats = lr_statistics(x, frame_rate=frame_rate)
        tables["filter"][family] = tail_quantiles(stats.lr)
        for k in range(len(BANDS)):
            tables[f"band{k}"][family] = tail_quantiles(stats.band_lr[:, k])
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
        Against the smooth-noise family, any pattern of the tested range
        (:meth:`NullTables.filter_p_values`).
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
    flat = np.ptp(x, axis=1) <= 1e-12 * np.maximum(np.abs(x).max(axis=1), 1e-300)
    p = np.where(flat, 1.0, tables.filter_p_values(stats))
    band_p = np.array([[1.0 if flat[i] else tables.p_value(f"band{k}", stats.band_lr[i, k])
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
