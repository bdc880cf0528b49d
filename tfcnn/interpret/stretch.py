"""The tempo counterfactual on the user's own tracks: each time-stretched, pitch kept.

SynthBallroom's counterfactual (:func:`tfcnn.interpret.functional.render_grid`) re-renders a
track at a new tempo with everything else fixed. A track the user brings cannot be
re-rendered, so it is time-stretched instead: its log-mel is resampled in time
(:func:`tfcnn.features.resample_frames`), every band by the same factor, so the bands (pitch)
stay where they are and only the pace changes, as a phase vocoder's magnitudes do. The factor
takes the track from its estimated tempo (:func:`tfcnn.tempo.estimate_tempo`) to every class's
median tempo; the model predicts each stretch, and the same test as for SynthBallroom asks
whether the prediction moves into the class whose range holds the new tempo
(:func:`tfcnn.interpret.functional.summarise_counterfactual`: permutation null within each
track, a t interval over tracks).

What a stretch changes besides the tempo: onsets are smeared or sharpened by the
interpolation (a 2× stretch halves every note's attack slope), and the factor rises with the
target tempo, so anything that changes with the factor lines up with tempo. The permutation
null is "the prediction does not depend on the stretch", not "the model ignores tempo": a
"yes" here is the model following pace and articulation together (SynthBallroom's renders
separate them). Every stretch of a track is cut to the same whole patches, so the song vote
counts as many patches at every tempo. An octave error of the tempo estimate shifts every
target's factor by 2 (the estimate is in the renders table, column ``own``). With fewer
than :data:`~tfcnn.interpret.functional.MIN_TRACKS_FOR_INTERVAL` tracks there is no interval
over tracks (the difference is reported alone).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from tfcnn.checkpoint import as_checkpoint
from tfcnn.config import FRONT_END
from tfcnn.errors import ConfigError
from tfcnn.features import resample_frames
from tfcnn.interpret.functional import (Counterfactual, counterfactual_tempi,
                                        song_vote_classes, summarise_counterfactual)
from tfcnn.interpret.tempi import classes_at
from tfcnn.tempo import estimate_tempo
from tfcnn.threads import per_request

#: Stretches beyond these factors (new tempo / track tempo) are left out: the interpolation
#: then smears or sharpens onsets more than it moves the tempo.
MIN_FACTOR: float = 0.5
MAX_FACTOR: float = 2.0


def stretched(spec: np.ndarray, factor: float) -> np.ndarray:
    """``spec`` played ``factor`` times faster (tempo × factor), bands unchanged:
    ``(n_mels, round(T / factor))``."""
    if not factor > 0:
        raise ConfigError(f"stretch factor must be > 0, got {factor!r}")
    return resample_frames(spec, max(1, int(round(spec.shape[1] / float(factor)))))


@per_request
def stretch_counterfactual(checkpoint, specs: Sequence[np.ndarray], names: Sequence[str],
                           ranges: pd.DataFrame, *, bpms: Sequence[float] | None = None
                           ) -> Counterfactual:
    """Each track stretched to every class tempo, predicted, and tested as SynthBallroom's.

    Parameters
    ----------
    checkpoint : Checkpoint, str or Path
    specs : sequence of np.ndarray, each (n_mels, T_i)
        Log-mel of each track (not normalised), from the checkpoint's front end.
    names : sequence of str
        A label per track (``dance`` in the renders table).
    ranges : DataFrame
        Class tempo ranges (:func:`tfcnn.interpret.tempi.class_tempo_ranges`).
    bpms : sequence of float, optional
        Each track's tempo; default its estimate from the log-mel.

    Returns
    -------
    Counterfactual
        ``renders``: ``dance`` (the track's name), ``seed`` (its index), ``bpm`` (the
        stretch's tempo), ``own`` (the track's tempo), ``factor``, ``frames`` (every
        stretch of a track is cut to the same whole patches), ``predicted``, ``hit``,
        ``stays`` (predicted as the unstretched track cut to those frames).

    Raises
    ------
    ConfigError
        No track, names and specs of different lengths, or a track with fewer than two
        class tempi within a factor of 2 of its own.
    """
    ckpt = as_checkpoint(checkpoint)
    front_end = getattr(ckpt, "front_end", None) or FRONT_END
    if not specs or len(specs) != len(names):
        raise ConfigError(f"the stretch counterfactual needs one name per track, got "
                          f"{len(specs)} tracks and {len(names)} names")
    tempi = counterfactual_tempi(ranges)
    rows, stretches = [], []
    for i, (spec, name) in enumerate(zip(specs, names)):
        bpm = float(bpms[i]) if bpms is not None else estimate_tempo(
            spec, front_end=front_end).bpm
        frames = spec.shape[1]
        targets = [t for t in tempi if MIN_FACTOR <= t / bpm <= MAX_FACTOR
                   and round(frames * bpm / t) >= front_end.patch_frames]
        if len(targets) < 2:
            raise ConfigError(f"{name}: at {bpm:.0f} BPM fewer than two class tempi "
                              f"({', '.join(f'{t:.0f}' for t in tempi)}) lie within a factor "
                              f"of {MAX_FACTOR:g} of the track's own with a whole patch "
                              f"left ({frames} frames)")
        # every stretch (and the track itself) votes over the same whole patches: a faster
        # stretch is shorter, and fewer patches alone would change the vote with the tempo
        versions = [stretched(spec, t / bpm) for t in targets]
        keep = min(v.shape[1] for v in versions) // front_end.patch_frames * \
            front_end.patch_frames
        own = song_vote_classes(ckpt, [spec[:, :keep]], front_end)[0]
        for t, v in zip(targets, versions):
            rows.append({"dance": str(name), "seed": i, "bpm": float(t), "own": round(bpm, 1),
                         "factor": t / bpm, "frames": keep,
                         "own_class": ckpt.classes[int(own)]})
            stretches.append(v[:, :keep])
    predicted = [ckpt.classes[int(k)] for k in song_vote_classes(ckpt, stretches, front_end)]
    renders = pd.DataFrame(rows).assign(predicted=predicted)
    renders["hit"] = [p in classes_at(b, ranges) for p, b in zip(renders["predicted"],
                                                                 renders["bpm"])]
    renders["stays"] = renders["predicted"] == renders.pop("own_class")
    return summarise_counterfactual(renders, ranges)
