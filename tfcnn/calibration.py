"""Honest confidence: temperature scaling of patch probabilities and an "unsure" threshold.

A network trained with cross-entropy is often over-confident: a song that belongs to none of
its classes still gets 90 % for one of them. Temperature scaling (Guo et al. 2017) divides
the logits by one scalar ``T`` fitted on held-out data, here the fold's validation songs, by
minimising their patch-level negative log-likelihood. It changes no arg-max, so the vote and
the accuracy stay as trained.

Song level: the calibrated song probabilities are the mean of the calibrated patch
probabilities; the song's **confidence** is that mean for the class the vote chose. The song
is **unsure** when its confidence is below a threshold chosen on the same validation songs:
the :data:`UNSURE_QUANTILE` quantile of their confidences, so about 5 % of songs like the
validation songs are flagged and anything less convincing than those is too. A classifier
trained on eight dances can be confident about audio that is none of them (speech gets a
confident "Rumba"), so a second rule looks at the input: the song is also unsure when its
beat is weaker (tempo strength, :mod:`tfcnn.tempo`) than the validation songs' beats
("probably not ballroom": dance music has a steady beat). With both rules each takes half the
quantile (2.5 % each), so at most about 5 % of songs like the validation songs are flagged.

Only probabilities are needed: ``softmax(log p / T) = softmax(logits / T)`` because a
softmax ignores a constant added to every logit.

A checkpoint without a calibration (older files, or the ``paper`` protocol, which has no
validation songs) uses ``T = 1`` and :data:`UNCALIBRATED_UNSURE_THRESHOLD`, labelled
uncalibrated.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from scipy.optimize import minimize_scalar

from tfcnn.errors import ConfigError
from tfcnn.evaluate import song_vote
from tfcnn.runs import FOLD_RESULT_FILE

#: Validation songs whose confidence falls below the threshold (the threshold's quantile).
UNSURE_QUANTILE = 0.05
#: Without a calibration: unsure when the predicted class has less than half the probability.
UNCALIBRATED_UNSURE_THRESHOLD = 0.5
#: Search interval of the temperature (log-uniform).
TEMPERATURE_BOUNDS = (0.05, 100.0)
#: Smallest probability taken to the log (float32 softmax outputs underflow to 0).
_TINY = float(np.finfo(np.float32).tiny)


@dataclass(frozen=True)
class Check:
    """One rule of the unsure flag applied to one song.

    Attributes
    ----------
    name : str
        What is compared (``"confidence"``, ``"beat strength"``, ``"patches"``).
    value, cutoff : str
        The song's value and the rule's cutoff, as text.
    fired : bool
        Whether this rule flags the song unsure.
    reason : str
        The reason it gives when it fires.
    """

    name: str
    value: str
    cutoff: str
    fired: bool
    reason: str

    def text(self) -> str:
        """``"confidence 31 % < 34 %"`` / ``"beat strength 0.45 ≥ 0.20"``."""
        return f"{self.name} {self.value} {'<' if self.fired else '≥'} {self.cutoff}"


@dataclass(frozen=True)
class Calibration:
    """A checkpoint's calibration.

    Attributes
    ----------
    temperature : float
        Logits are divided by it (1: unchanged).
    unsure_threshold : float
        A song whose confidence is below it is flagged unsure.
    calibrated : bool
        False for the fallback of a checkpoint without a calibration.
    n_songs, n_patches : int
        Validation songs and patches it was fitted on (0 when uncalibrated).
    nll_before, nll_after : float or None
        Mean patch negative log-likelihood on them at ``T = 1`` and at ``temperature``.
    quantile : float
        Share of validation songs the rules may flag together: ``unsure_threshold`` (and
        ``beat_threshold``) are the ``quantile`` quantile of the validation confidences (and
        tempo strengths), ``quantile / 2`` each when both rules are used.
    beat_threshold : float or None
        A song whose tempo strength is below it is flagged unsure (no steady beat). None: no
        beat rule.
    """

    temperature: float = 1.0
    unsure_threshold: float = UNCALIBRATED_UNSURE_THRESHOLD
    calibrated: bool = False
    n_songs: int = 0
    n_patches: int = 0
    nll_before: float | None = None
    nll_after: float | None = None
    quantile: float = UNSURE_QUANTILE
    beat_threshold: float | None = None

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, meta: dict | None) -> "Calibration":
        """The calibration stored in checkpoint metadata; the uncalibrated one if none."""
        if not meta:
            return cls()
        try:
            temperature = float(meta["temperature"])
            threshold = float(meta["unsure_threshold"])
        except (KeyError, TypeError, ValueError):
            raise ConfigError(
                f"calibration needs numbers temperature and unsure_threshold, got {meta!r}"
            ) from None
        if not (math.isfinite(temperature) and temperature > 0 and 0 <= threshold <= 1):
            raise ConfigError(
                f"calibration temperature must be > 0 and unsure_threshold in [0, 1], got "
                f"{temperature!r} and {threshold!r}"
            )
        known = {k: meta[k] for k in ("n_songs", "n_patches", "nll_before", "nll_after",
                                      "quantile", "beat_threshold") if k in meta}
        return cls(temperature=temperature, unsure_threshold=threshold,
                   calibrated=bool(meta.get("calibrated", True)), **known)

    def rule(self) -> str:
        """The unsure rule in words, for pages and reports."""
        if not self.calibrated:
            return (f"uncalibrated model: unsure when the predicted class has less than "
                    f"{self.unsure_threshold:.0%} probability")
        rule = (f"unsure when the calibrated probability of the predicted class is below "
                f"{self.unsure_threshold:.0%}")
        if self.beat_threshold is not None:
            rule += f" or the beat strength is below {self.beat_threshold:.2f}"
        share = self.quantile if self.beat_threshold is None else self.quantile / 2
        return (f"{rule}: each the {share:.1%} quantile of the {self.n_songs} validation "
                f"songs (temperature {self.temperature:.2f})")

    def checks(self, confidence: float, beat_strength: float | None = None
               ) -> tuple[Check, ...]:
        """Each rule applied to one song: the confidence, and the beat strength when there
        is a beat rule and a strength."""
        out = [Check("confidence", f"{confidence:.1%}", f"{self.unsure_threshold:.1%}",
                     confidence < self.unsure_threshold, "weak evidence for any class")]
        if self.beat_threshold is not None and beat_strength is not None:
            out.append(Check("beat strength", f"{beat_strength:.2f}",
                             f"{self.beat_threshold:.2f}",
                             beat_strength < self.beat_threshold, "no steady beat"))
        return tuple(out)

    def reasons(self, confidence: float, beat_strength: float | None = None) -> tuple[str, ...]:
        """Why a song is unsure (the :meth:`checks` that fire; empty: it is not)."""
        return tuple(c.reason for c in self.checks(confidence, beat_strength) if c.fired)


def _log_probs(patch_probs) -> np.ndarray:
    p = np.asarray(patch_probs, dtype=np.float64)
    if p.ndim != 2 or p.shape[1] < 2:
        raise ConfigError(f"patch probabilities must have shape (n, n_classes >= 2), got {p.shape}")
    return np.log(np.maximum(p, _TINY))


def temper(patch_probs, temperature: float) -> np.ndarray:
    """Patch probabilities at temperature ``T``: ``softmax(log p / T)``.

    Parameters
    ----------
    patch_probs : array-like, shape (n, n_classes)
        Softmax outputs of the model.
    temperature : float
        > 0.

    Returns
    -------
    np.ndarray, shape (n, n_classes), float64
        Rows sum to 1; the arg-max of every row is unchanged.
    """
    if not temperature > 0:
        raise ConfigError(f"temperature must be > 0, got {temperature!r}")
    z = _log_probs(patch_probs) / float(temperature)    # (n, n_classes)
    z -= z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def _nll(log_p: np.ndarray, labels: np.ndarray, temperature: float) -> float:
    z = log_p / temperature                                               # (n, n_classes)
    z_max = z.max(axis=1, keepdims=True)
    log_norm = (z_max + np.log(np.exp(z - z_max).sum(axis=1, keepdims=True)))[:, 0]
    return float(np.mean(log_norm - z[np.arange(z.shape[0]), labels]))


def fit_temperature(patch_probs, labels) -> tuple[float, float, float]:
    """Temperature minimising the mean negative log-likelihood of ``labels``.

    Parameters
    ----------
    patch_probs : array-like, shape (n, n_classes)
    labels : array-like of int, shape (n,)

    Returns
    -------
    (temperature, nll_at_1, nll_at_temperature)
    """
    log_p = _log_probs(patch_probs)
    labels = np.asarray(labels, dtype=np.int64)
    if labels.shape != (log_p.shape[0],) or log_p.shape[0] == 0:
        raise ConfigError(
            f"need one label per patch and at least one patch, got {labels.shape} labels "
            f"for {log_p.shape[0]} patches"
        )
    lo, hi = (math.log(b) for b in TEMPERATURE_BOUNDS)
    best = minimize_scalar(lambda s: _nll(log_p, labels, math.exp(s)), bounds=(lo, hi),
                           method="bounded", options={"xatol": 1e-4})
    temperature = float(math.exp(best.x))
    return temperature, _nll(log_p, labels, 1.0), _nll(log_p, labels, temperature)


def tempered_song_probabilities(patch_probs, temperature: float) -> np.ndarray:
    """Calibrated song probabilities: mean of the tempered patch probabilities, (n_classes,)."""
    return temper(patch_probs, temperature).mean(axis=0)


def song_confidence(patch_probs, predicted: int, temperature: float) -> float:
    """Calibrated probability of the ``predicted`` class (the vote's) for one song."""
    return float(tempered_song_probabilities(patch_probs, temperature)[int(predicted)])


def fit_calibration(song_patch_probs: list, song_labels, *, predicted=None,
                    beat_strengths=None, quantile: float = UNSURE_QUANTILE) -> Calibration:
    """Temperature and unsure threshold from validation songs.

    Parameters
    ----------
    song_patch_probs : list of array-like, each (n_patches_i, n_classes)
        Patch probabilities of each validation song.
    song_labels : array-like of int, shape (n_songs,)
        True class of each song.
    predicted : array-like of int, shape (n_songs,), optional, keyword-only
        The class chosen per song (default: :func:`tfcnn.evaluate.song_vote`, as a
        prediction); the confidence is taken for it.
    beat_strengths : array-like of float, shape (n_songs,), optional, keyword-only
        Tempo strength of each validation song (:func:`tfcnn.tempo.estimate_tempo`); gives
        ``beat_threshold`` (None without).
    quantile : float, keyword-only
        Share of validation songs the rules may flag (halved per rule with two rules).

    Returns
    -------
    Calibration
    """
    if not song_patch_probs:
        raise ConfigError("calibration needs at least one validation song")
    labels = np.asarray(song_labels, dtype=np.int64)
    if labels.shape != (len(song_patch_probs),):
        raise ConfigError(
            f"{labels.size} labels for {len(song_patch_probs)} validation songs"
        )
    if not 0 <= quantile <= 1:
        raise ConfigError(f"quantile must be in [0, 1], got {quantile!r}")
    counts = [np.shape(p)[0] for p in song_patch_probs]
    patches = np.concatenate([np.asarray(p) for p in song_patch_probs])   # (n_patches, C)
    temperature, before, after = fit_temperature(patches, np.repeat(labels, counts))
    if predicted is None:
        predicted = [song_vote(p) for p in song_patch_probs]
    confidences = [song_confidence(p, k, temperature)
                   for p, k in zip(song_patch_probs, predicted)]
    share = quantile if beat_strengths is None else quantile / 2
    return Calibration(temperature=temperature,
                       unsure_threshold=float(np.quantile(confidences, share)),
                       calibrated=True, n_songs=len(song_patch_probs),
                       n_patches=int(patches.shape[0]), nll_before=before, nll_after=after,
                       quantile=float(quantile),
                       beat_threshold=None if beat_strengths is None
                       else float(np.quantile(np.asarray(beat_strengths, float), share)))


# --------------------------------------------------------------------------- measured on test songs
#
# Calibration measured, not only fitted: the confidence a page shows (the calibrated song
# probability of the predicted class) against how often that prediction is right, on test
# songs the model never saw (validation songs fitted the temperature, so they cannot judge it).

#: Equal-width confidence bins of the reliability diagram and the ECE.
ECE_BINS = 10
#: Bootstrap resamples (over songs) of the ECE's interval and of its null.
N_BOOT = 2000


def expected_calibration_error(confidences, correct, *, n_bins: int = ECE_BINS) -> float:
    """ECE: the song-weighted mean gap between confidence and accuracy over confidence bins.

    ``ECE = Σ_b (n_b / N) · |accuracy_b − mean confidence_b|`` over ``n_bins`` equal-width
    bins of [0, 1] (Guo et al. 2017; the top bin includes 1).

    Parameters
    ----------
    confidences : array-like of float, shape (N,)
        Shown probability of the predicted class, in [0, 1].
    correct : array-like of bool, shape (N,)
        Whether each prediction was right.

    Returns
    -------
    float
        In [0, 1].
    """
    conf, hit = _check_reliability_input(confidences, correct)
    index = np.minimum((conf * n_bins).astype(np.int64), n_bins - 1)   # (N,)
    # per bin |Σ hits − Σ confidences| / N = (n_b / N) · |accuracy_b − confidence_b|
    gap = np.abs(np.bincount(index, weights=hit, minlength=n_bins)
                 - np.bincount(index, weights=conf, minlength=n_bins))
    return float(gap.sum() / conf.size)


def _check_reliability_input(confidences, correct) -> tuple[np.ndarray, np.ndarray]:
    conf = np.asarray(confidences, dtype=np.float64)
    hit = np.asarray(correct, dtype=np.float64)
    if conf.ndim != 1 or conf.size == 0 or hit.shape != conf.shape:
        raise ConfigError(f"need one correctness per confidence and at least one song, got "
                          f"{np.shape(confidences)} confidences and {np.shape(correct)} flags")
    if not np.all((conf >= 0) & (conf <= 1)):
        raise ConfigError("confidences must lie in [0, 1]")
    return conf, hit


@dataclass(frozen=True)
class Reliability:
    """How well a model's shown confidence matches its accuracy on test songs.

    Attributes
    ----------
    n_songs : int
    ece : float
        Expected calibration error (fraction, :func:`expected_calibration_error`).
    ece_ci95 : (float, float)
        Percentile bootstrap interval over songs.
    ece_null95 : float
        95th percentile of the ECE a perfectly calibrated model with these confidences
        shows on this many songs (each song right with probability its confidence): the
        ECE is biased upwards on few songs, and values up to this are consistent with
        perfect calibration.
    mean_confidence, accuracy : float
        Over the songs (their difference is the over-confidence).
    bins : tuple of dict
        Per bin with songs: ``lo``, ``hi``, ``n``, ``confidence`` (mean), ``accuracy``.
    source : str
        Which probability: ``"calibrated"`` (the checkpoint's temperature) or ``"raw"``.
    """

    n_songs: int
    ece: float
    ece_ci95: tuple[float, float]
    ece_null95: float
    mean_confidence: float
    accuracy: float
    bins: tuple[dict, ...]
    source: str = "calibrated"

    @property
    def consistent_with_calibration(self) -> bool:
        """The ECE is no larger than a perfectly calibrated model's would be 95 % of the time."""
        return self.ece <= self.ece_null95

    def sentence(self) -> str:
        """One line for a page: ECE, interval, and what perfect calibration would show."""
        over = self.mean_confidence - self.accuracy
        lean = ("over-confident" if over > 0 else "under-confident") + (
            f" by {100 * abs(over):.1f} points on average")
        verdict = ("consistent with perfect calibration at this size"
                   if self.consistent_with_calibration else "miscalibrated beyond what "
                   "this many songs explain")
        return (f"ECE {100 * self.ece:.1f} % on {self.n_songs} test songs (95 % CI "
                f"{100 * self.ece_ci95[0]:.1f}-{100 * self.ece_ci95[1]:.1f}; a perfectly "
                f"calibrated model shows up to {100 * self.ece_null95:.1f} % here): {verdict}; "
                f"{lean}")

    def to_dict(self) -> dict:
        return {**asdict(self), "ece_ci95": list(self.ece_ci95), "bins": list(self.bins)}

    @classmethod
    def from_dict(cls, data: dict) -> "Reliability":
        try:
            return cls(n_songs=int(data["n_songs"]), ece=float(data["ece"]),
                       ece_ci95=(float(data["ece_ci95"][0]), float(data["ece_ci95"][1])),
                       ece_null95=float(data["ece_null95"]),
                       mean_confidence=float(data["mean_confidence"]),
                       accuracy=float(data["accuracy"]),
                       bins=tuple(dict(b) for b in data.get("bins", [])),
                       source=str(data.get("source", "calibrated")))
        except (KeyError, TypeError, ValueError, IndexError):
            raise ConfigError(f"not a reliability record: {data!r}"[:200]) from None


def reliability(confidences, correct, *, n_bins: int = ECE_BINS, n_boot: int = N_BOOT,
                seed: int = 0, source: str = "calibrated") -> Reliability:
    """ECE with a bootstrap interval, its null under perfect calibration, and the diagram.

    Parameters
    ----------
    confidences : array-like of float, shape (N,)
        Shown probability of each song's predicted class.
    correct : array-like of bool, shape (N,)
    n_bins, n_boot, seed : int, keyword-only
    source : str, keyword-only
        What ``confidences`` are (stored with the result).

    Returns
    -------
    Reliability
    """
    conf, hit = _check_reliability_input(confidences, correct)
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, conf.size, size=(n_boot, conf.size))
    boot = [expected_calibration_error(conf[i], hit[i], n_bins=n_bins) for i in idx]
    null = [expected_calibration_error(conf, rng.random(conf.size) < conf, n_bins=n_bins)
            for _ in range(n_boot)]
    index = np.minimum((conf * n_bins).astype(np.int64), n_bins - 1)
    bins = tuple({"lo": b / n_bins, "hi": (b + 1) / n_bins, "n": int((index == b).sum()),
                  "confidence": float(conf[index == b].mean()),
                  "accuracy": float(hit[index == b].mean())}
                 for b in range(n_bins) if (index == b).any())
    return Reliability(n_songs=int(conf.size),
                       ece=expected_calibration_error(conf, hit, n_bins=n_bins),
                       ece_ci95=(float(np.percentile(boot, 2.5)), float(np.percentile(boot, 97.5))),
                       ece_null95=float(np.percentile(null, 95)),
                       mean_confidence=float(conf.mean()), accuracy=float(hit.mean()),
                       bins=bins, source=source)


def song_confidences(song_patch_probs: list, predicted, *,
                     calibration: Calibration | None) -> np.ndarray:
    """The confidence a page shows for each song: its predicted class's calibrated song
    probability (at ``T = 1`` without a calibration), shape (n_songs,)."""
    temperature = calibration.temperature if calibration is not None else 1.0
    return np.array([song_confidence(p, k, temperature)
                     for p, k in zip(song_patch_probs, predicted)], dtype=np.float64)


def folds_reliability(fold_results: list[dict]) -> Reliability | None:
    """:func:`reliability` over the test songs of every fold that recorded them (None when
    none did: runs trained before the confidences were stored)."""
    conf, hit, calibrated = [], [], []
    for r in fold_results:
        c, labels, preds = (r.get("test_confidence"), r.get("test_labels"),
                            r.get("predictions"))
        if isinstance(c, list) and isinstance(labels, list) and isinstance(preds, list) and (
                len(c) == len(labels) == len(preds)):
            conf += c
            hit += [int(p) == int(y) for p, y in zip(preds, labels)]
            calibrated.append(bool(r.get("test_confidence_calibrated", True)))
    if not conf:
        return None
    source = "calibrated" if all(calibrated) else "raw" if not any(calibrated) else "mixed"
    return reliability(conf, hit, source=source)


def read_reliabilities(path) -> dict[str, Reliability]:
    """The measurements of ``scripts/shipped_reliability.py``, by model file stem ({} when the
    file is missing or unreadable: nothing measured to show)."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
        return {stem: Reliability.from_dict(rec) for stem, rec in data["models"].items()}
    except (OSError, ValueError, KeyError, TypeError, AttributeError, ConfigError):
        return {}


def model_reliability(path, *, shipped=None) -> Reliability | None:
    """A model's calibration measured on its fold's test songs, where it is recorded.

    A fold model of a run folder (``<run>/fold-XX/model.safetensors``) reads its fold's
    ``result.json``; any other file is looked up by its stem in ``shipped`` (a
    :func:`read_reliabilities` file). None when neither has it.
    """
    path = Path(path)
    result = path.parent / FOLD_RESULT_FILE
    if result.is_file():
        try:
            fold = json.loads(result.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        return folds_reliability([fold]) if isinstance(fold, dict) else None
    return read_reliabilities(shipped).get(path.stem) if shipped is not None else None
