"""What a prediction is worth: calibrated confidence, the unsure flag and the track's tempo;
and one song classified with all of it (:func:`classify`, what ``predict`` prints and the
Predict page shows).

:func:`assess` takes a :class:`~tfcnn.inference.Prediction` and the checkpoint that made it
and adds what a user needs to judge it: the calibrated song probabilities and the confidence
of the predicted class (:mod:`tfcnn.calibration`), whether the prediction is unsure (weak
confidence or no steady beat, by the checkpoint's thresholds; too few patches to vote), and the
tempo estimated from the same log-mel
(:mod:`tfcnn.tempo`), matched against the classes' tempo ranges in real Ballroom
(:class:`TempoMatch`). A clip of fewer than :data:`MIN_VOTE_PATCHES` patches is always unsure:
one patch is no vote, whatever its probability.
"""

from __future__ import annotations

import functools
import time
from dataclasses import dataclass

import numpy as np
import pandas as pd

from tfcnn.calibration import Calibration, Check, tempered_song_probabilities
from tfcnn.checkpoint import as_checkpoint
from tfcnn.config import FRONT_END, FrontEnd
from tfcnn.inference import Prediction, predict
from tfcnn.interpret.tempi import class_tempi, class_tempo_ranges, classes_at
from tfcnn.tempo import TempoEstimate, estimate_tempo, tempo_resolution_bpm
from tfcnn.threads import per_request

#: A song of fewer patches is unsure whatever its confidence: one patch is no vote.
MIN_VOTE_PATCHES = 2
#: Why a song is unsure when it has fewer than :data:`MIN_VOTE_PATCHES` patches.
TOO_FEW_PATCHES = "too few patches to vote"
#: A predicted song's tempo is matched against these quantiles of each class's real Ballroom
#: tempi, widened by the estimate's resolution (the interquartile range leaves real tracks
#: out: the Ballroom waltz at 83.4 BPM lies below Waltz's 84-87).
TEMPO_MATCH_QUANTILES: tuple[float, float] = (0.05, 0.95)


@functools.lru_cache(maxsize=1)
def _ballroom_ranges() -> pd.DataFrame:
    return class_tempo_ranges(class_tempi("ballroom"), quantiles=TEMPO_MATCH_QUANTILES)


def ballroom_tempo_ranges() -> pd.DataFrame:
    """Each dance's tempo range in the real Ballroom annotations: the
    :data:`TEMPO_MATCH_QUANTILES` of its tracks (index ``dance``; ``low``, ``median``,
    ``high``, ``n``; ``attrs["quantiles"]``)."""
    return _ballroom_ranges().copy()


@dataclass(frozen=True)
class TempoMatch:
    """Which classes' tempo ranges hold a song's estimated tempo.

    Attributes
    ----------
    bpm : float
        The estimated tempo.
    tolerance_bpm : float
        Each range is widened by this much on both sides (the estimate's resolution at
        ``bpm``, :func:`tfcnn.tempo.tempo_resolution_bpm`).
    classes : tuple of str
        Classes whose widened range holds ``bpm``.
    octave_classes : tuple of str
        Other classes whose widened range holds half or double ``bpm``.
    quantiles : (float, float)
        The quantiles of each class's tempi that make its range.
    """

    bpm: float
    tolerance_bpm: float
    classes: tuple[str, ...]
    octave_classes: tuple[str, ...]
    quantiles: tuple[float, float]

    def rule(self) -> str:
        """How the match is made, in words."""
        lo, hi = self.quantiles
        return (f"a class matches when its {lo:.0%}–{hi:.0%} range of real Ballroom tempi, "
                f"widened by the estimate's resolution (±{self.tolerance_bpm:.1f} BPM here), "
                "holds the tempo")

    def text(self) -> str:
        """``"inside the range of Waltz; at half or double tempo: ..."``."""
        text = (f"inside the range of {', '.join(self.classes)}" if self.classes
                else "inside no class's range")
        if self.octave_classes:
            text += f"; at half or double tempo: {', '.join(self.octave_classes)}"
        return text


def tempo_match(bpm: float, ranges: pd.DataFrame | None = None, *,
                front_end: FrontEnd = FRONT_END) -> TempoMatch:
    """Classes whose tempo range (:func:`ballroom_tempo_ranges` by default) holds ``bpm``,
    each range widened by the estimate's resolution at that tempo, and the classes whose
    range holds its half or double instead."""
    ranges = ballroom_tempo_ranges() if ranges is None else ranges

    def at(tempo: float) -> list[str]:
        tolerance = tempo_resolution_bpm(tempo, front_end=front_end)
        widened = ranges.assign(low=ranges["low"] - tolerance, high=ranges["high"] + tolerance)
        return classes_at(tempo, widened)

    tolerance = tempo_resolution_bpm(bpm, front_end=front_end)

    inside = at(bpm)
    octave = [c for f in (0.5, 2.0) for c in at(bpm * f) if c not in inside]
    quantiles = tuple(ranges.attrs.get("quantiles", TEMPO_MATCH_QUANTILES))
    return TempoMatch(bpm=float(bpm), tolerance_bpm=tolerance, classes=tuple(inside),
                      octave_classes=tuple(dict.fromkeys(octave)), quantiles=quantiles)


@dataclass(frozen=True)
class Assessment:
    """A prediction's calibrated confidence and the track's tempo.

    Attributes
    ----------
    classes : tuple of str
    probabilities : np.ndarray, shape (n_classes,)
        Calibrated song probabilities (mean of the tempered patch probabilities).
    predicted : str
        The class the vote chose (as in the prediction).
    confidence : float
        Calibrated probability of ``predicted``.
    calibration : Calibration
        The checkpoint's calibration (the uncalibrated fallback if it has none).
    tempo : TempoEstimate
    n_patches : int
        Patches the song vote had.
    tempo_match : TempoMatch
        The classes whose real Ballroom tempo range holds the tempo.
    """

    classes: tuple[str, ...]
    probabilities: np.ndarray
    predicted: str
    confidence: float
    calibration: Calibration
    tempo: TempoEstimate
    n_patches: int
    tempo_match: TempoMatch

    @property
    def reasons(self) -> tuple[str, ...]:
        """Why the song is unsure (the rules of :meth:`checks` that fired); empty when it
        is not."""
        return tuple(c.reason for c in self.checks() if c.fired)

    @property
    def unsure(self) -> bool:
        return bool(self.reasons)

    @property
    def status(self) -> str:
        """``"confident"``, ``"unsure"``, or either with ``" (uncalibrated)"``."""
        word = "unsure" if self.unsure else "confident"
        return word if self.calibration.calibrated else f"{word} (uncalibrated)"

    def checks(self) -> tuple[Check, ...]:
        """Each rule of the unsure flag on this song: confidence, beat strength (when the
        checkpoint has a beat rule) and the number of patches."""
        return self.calibration.checks(self.confidence, self.tempo.strength) + (
            Check("patches", str(self.n_patches), str(MIN_VOTE_PATCHES),
                  self.n_patches < MIN_VOTE_PATCHES, TOO_FEW_PATCHES),)

    def why(self) -> str:
        """Which rule decided: the ones that fired (``"confidence 31 % < 34 %"``), or, for a
        confident song, every rule it passed."""
        checks = self.checks()
        fired = [c for c in checks if c.fired]
        return "; ".join(c.text() for c in (fired or checks))

    def rule(self) -> str:
        """The whole unsure rule in words: the calibration's and the patch count's."""
        return (f"{self.calibration.rule()}; always unsure with fewer than "
                f"{MIN_VOTE_PATCHES} patches (one patch is no vote)")

    def to_dict(self) -> dict:
        """JSON fields added to a prediction's (``predict --json``)."""
        cal = self.calibration
        return {
            "calibrated_probabilities": {c: float(p) for c, p in
                                         zip(self.classes, self.probabilities)},
            "confidence": self.confidence,
            "unsure": self.unsure,
            "unsure_reasons": list(self.reasons),
            "calibrated": cal.calibrated,
            "temperature": cal.temperature,
            "unsure_threshold": cal.unsure_threshold,
            "beat_threshold": cal.beat_threshold,
            "unsure_rule": self.rule(),
            "unsure_why": self.why(),
            "tempo_bpm": self.tempo.bpm,
            "tempo_strength": self.tempo.strength,
            "tempo_classes": list(self.tempo_match.classes),
            "tempo_octave_classes": list(self.tempo_match.octave_classes),
            "tempo_tolerance_bpm": self.tempo_match.tolerance_bpm,
        }


def assess(prediction, checkpoint) -> Assessment:
    """Calibrated confidence, unsure flag and tempo of one prediction.

    Parameters
    ----------
    prediction : tfcnn.inference.Prediction
        With ``patch_probs`` (n_patches, n_classes) and ``log_mel`` (n_mels, T).
    checkpoint : tfcnn.checkpoint.Checkpoint
        The checkpoint that made it (its calibration and front end are used).

    Returns
    -------
    Assessment
    """
    calibration = Calibration.from_dict(checkpoint.calibration)
    probs = tempered_song_probabilities(prediction.patch_probs,
                                        calibration.temperature)  # (n_classes,)
    classes = tuple(prediction.classes)
    confidence = float(probs[classes.index(prediction.prediction)])
    tempo = estimate_tempo(prediction.log_mel, front_end=checkpoint.front_end)
    return Assessment(classes=classes, probabilities=np.asarray(probs),
                      predicted=prediction.prediction, confidence=confidence,
                      calibration=calibration, tempo=tempo,
                      n_patches=int(prediction.n_patches),
                      tempo_match=tempo_match(tempo.bpm, front_end=checkpoint.front_end))


@dataclass(frozen=True)
class Classification:
    """One song classified and assessed.

    Attributes
    ----------
    prediction : tfcnn.inference.Prediction
        With its decoded ``signal`` when it was kept.
    assessment : Assessment
    seconds : float
        Time the prediction and its assessment took.
    """

    prediction: Prediction
    assessment: Assessment
    seconds: float

    def to_dict(self) -> dict:
        """The ``predict --json`` object of the song."""
        return {**self.prediction.to_dict(), **self.assessment.to_dict()}


@per_request
def classify(source, checkpoint, *, name: str | None = None, device="cpu",
             max_duration_s: float | None = None, keep_signal: bool = False) -> Classification:
    """Predict one song (:func:`tfcnn.inference.predict`) and assess it (:func:`assess`).

    Parameters
    ----------
    source : str, Path, bytes or binary file-like
        The audio file or its content.
    checkpoint : Checkpoint, str or Path
    name : str, optional, keyword-only
        Name used in messages (default: the path).
    device : str or torch.device, keyword-only
    max_duration_s : float, optional, keyword-only
        Refuse longer audio (the app's limit; the CLI has none).
    keep_signal : bool, keyword-only
        Keep the decoded signal (``prediction.signal``) to play it back.

    Raises
    ------
    AudioError, CheckpointError
        With a message that names the file and the problem.
    """
    start = time.perf_counter()
    ckpt = as_checkpoint(checkpoint, device=device)
    prediction = predict(source, ckpt, name=name, device=device,
                         max_duration_s=max_duration_s, keep_signal=keep_signal)
    assessment = assess(prediction, ckpt)
    return Classification(prediction, assessment, time.perf_counter() - start)
