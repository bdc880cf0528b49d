"""What a prediction is worth: calibrated confidence, the unsure flag and the track's tempo;
and one song classified with all of it (:func:`classify`, what ``predict`` prints and the
Predict page shows).

:func:`assess` takes a :class:`~tfcnn.inference.Prediction` and the checkpoint that made it
and adds what a user needs to judge it: the calibrated song probabilities and the confidence
of the predicted class (:mod:`tfcnn.calibration`), whether the prediction is unsure (weak
confidence or no steady beat, by the checkpoint's thresholds), and the tempo estimated from the same log-mel
(:mod:`tfcnn.tempo`), to set beside the classes' tempo ranges.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from tfcnn.calibration import Calibration, tempered_song_probabilities
from tfcnn.checkpoint import as_checkpoint
from tfcnn.inference import Prediction, predict
from tfcnn.tempo import TempoEstimate, estimate_tempo
from tfcnn.threads import per_request


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
