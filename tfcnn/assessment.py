"""What a prediction is worth: calibrated confidence, the unsure flag and the track's tempo.

:func:`assess` takes a :class:`~tfcnn.inference.Prediction` and the checkpoint that made it
and adds what a user needs to judge it: the calibrated song probabilities and the confidence
of the predicted class (:mod:`tfcnn.calibration`), whether the prediction is unsure (weak
confidence or no steady beat, by the checkpoint's thresholds), and the tempo estimated from the same log-mel
(:mod:`tfcnn.tempo`), to set beside the classes' tempo ranges.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from tfcnn.calibration import Calibration, tempered_song_probabilities
from tfcnn.tempo import TempoEstimate, estimate_tempo


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
    reasons : tuple of str
        Why the song is unsure (:meth:`Calibration.reasons`); empty when it is not.
    calibration : Calibration
        The checkpoint's calibration (the uncalibrated fallback if it has none).
    tempo : TempoEstimate
    """

    classes: tuple[str, ...]
    probabilities: np.ndarray
    predicted: str
    confidence: float
    reasons: tuple[str, ...]
    calibration: Calibration
    tempo: TempoEstimate

    @property
    def unsure(self) -> bool:
        return bool(self.reasons)

    @property
    def status(self) -> str:
        """``"confident"``, ``"unsure"``, or either with ``" (uncalibrated)"``."""
        word = "unsure" if self.unsure else "confident"
        return word if self.calibration.calibrated else f"{word} (uncalibrated)"

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
            "unsure_rule": cal.rule(),
            "tempo_bpm": self.tempo.bpm,
            "tempo_strength": self.tempo.strength,
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
                      reasons=calibration.reasons(confidence, tempo.strength),
                      calibration=calibration, tempo=tempo)
