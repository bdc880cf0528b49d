"""Does the model use tempo? Three tests of what it does, each with a null and an effect size.

Periodic weights are one way to encode tempo, not the only one (onset detectors combined by the
dense layer encode it without periodic weights), so these tests ask the model, not its weights:

* :func:`probe_class_test`: the class predicted for a probe (clicks, drums: 4/4; waltz: 3/4)
  at each tempo, against the classes whose tempo range holds that tempo; the null shifts the
  predicted sequence circularly along the tempo axis (it keeps the runs of equal predictions
  and breaks only their alignment with tempo);
* :func:`tempo_counterfactual`: SynthBallroom tracks re-rendered at other tempi with
  everything else fixed (same seed: same rhythm, sounds and mix); does the predicted class move
  into the class whose range holds the new tempo? The null permutes each track's predictions
  over its tempi (under "the prediction ignores tempo" they are exchangeable);
* :func:`filter_ablation`: each temporal filter's output zeroed in turn on the counterfactual's
  tracks at their own tempo (fresh seeds: songs the model never saw); the drop in accuracy
  per class is the filter's causal weight for that class.
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.stats import t as student_t
import torch

from tfcnn.checkpoint import as_checkpoint
from tfcnn.config import FRONT_END
from tfcnn.errors import ConfigError
from tfcnn.evaluate import song_vote
from tfcnn.features import log_mel_module
from tfcnn.inference import song_probabilities
from tfcnn.interpret.tempi import classes_at
from tfcnn.models import temporal_filters
from tfcnn.synth import render_track

#: Counterfactual defaults: tracks per class, seconds per render (4 patches), seed base
#: (far from the generator's seeds: songs the model never saw).
CF_TRACKS_PER_CLASS: int = 2
CF_SECONDS: float = 8.0
CF_SEED: int = 7_700_000
#: Permutations of the counterfactual's null (fixed seed).
N_PERMUTATIONS: int = 2000
STAT_SEED: int = 20161207
#: Fewer tracks than this get no interval over tracks (coverage measured from 4 up).
MIN_TRACKS_FOR_INTERVAL: int = 4


@dataclass(frozen=True)
class ProbeClassTest:
    """One probe kind's probe → class agreement against the circular-shift null.

    ``hits`` of ``n`` probes land in a class whose range holds their tempo; ``expected`` is
    the mean over all circular shifts, ``null_range`` their 2.5-97.5 % range, ``p_value`` the
    share of shifts (the identity included) with at least ``hits``.
    """

    kind: str
    meter: str
    hits: int
    n: int
    expected: float
    null_range: tuple[float, float]
    p_value: float


def probe_class_test(probes, ranges: pd.DataFrame) -> tuple[ProbeClassTest, ...]:
    """:class:`ProbeClassTest` per probe kind.

    Parameters
    ----------
    probes : :class:`tfcnn.interpret.probes.Probes`
    ranges : DataFrame from :func:`tfcnn.interpret.tempi.class_tempo_ranges`
    """
    holds = np.array([[c in classes_at(b, ranges) for c in probes.classes]
                      for b in probes.bpms])                          # (n_bpm, n_classes)
    n = len(probes.bpms)
    out = []
    for k, kind in enumerate(probes.kinds):
        pred = np.asarray(probes.predicted[k], dtype=int)
        shifted = np.array([holds[np.arange(n), np.roll(pred, s)].sum() for s in range(n)])
        hits = int(shifted[0])
        null = shifted[1:] if n > 1 else shifted
        out.append(ProbeClassTest(
            kind=kind, meter=f"{probes.meters[k]}/4", hits=hits, n=n,
            expected=float(null.mean()),
            null_range=(float(np.quantile(null, 0.025)), float(np.quantile(null, 0.975))),
            p_value=float(np.mean(shifted >= hits))))
    return tuple(out)


@dataclass(frozen=True)
class Counterfactual:
    """The same tracks at other tempi, and where the prediction goes.

    Attributes
    ----------
    renders : DataFrame
        One row per render: ``dance`` (the track's class), ``seed``, ``bpm``, ``own`` (the
        track's own class tempo), ``predicted``, ``hit`` (predicted class's range holds
        ``bpm``), ``stays`` (predicted == dance).
    hit_rate : float
        Share of renders predicted as a class whose range holds the render's tempo.
    null_rate : float
        The same expected under the within-track permutation null.
    difference_interval : (float, float)
        95 % interval over tracks of ``hit_rate - null_rate`` (:func:`difference_interval`);
        NaN with fewer than :data:`MIN_TRACKS_FOR_INTERVAL` tracks.
    p_value : float
        Share of permutations with at least as many hits (the observed one included).
    stay_rate : float
        Share of renders still predicted as the track's own class.
    """

    renders: pd.DataFrame
    hit_rate: float
    null_rate: float
    difference_interval: tuple[float, float]
    p_value: float
    stay_rate: float


def render_specs(dances: Sequence[str], seeds: Sequence[int], bpms: Sequence[float], *,
                 seconds: float, front_end=FRONT_END) -> np.ndarray:
    """Log-mel of ``render_track(dance, bpm, seed)`` for each triple, (n, n_mels, T)."""
    module = log_mel_module(front_end)
    out = []
    for d, s, b in zip(dances, seeds, bpms):
        y = render_track(d, bpm=float(b), seconds=seconds, seed=int(s),
                         sample_rate=front_end.sample_rate)
        with torch.inference_mode():
            out.append(module(torch.from_numpy(y[None].astype(np.float32)))[0].numpy())
    frames = min(s.shape[1] for s in out)
    return np.stack([s[:, :frames] for s in out])


def song_vote_classes(ckpt, specs, front_end) -> np.ndarray:
    """Song-vote class index of each spectrogram (as ``predict``), (n,)."""
    probs = song_probabilities(ckpt.model.eval(), list(specs), mean=ckpt.norm_mean,
                               std=ckpt.norm_std, patch_frames=front_end.patch_frames)
    return np.array([song_vote(p) for p in probs])


def counterfactual_tempi(ranges: pd.DataFrame) -> tuple[float, ...]:
    """Each class's median tempo (rounded), distinct, ascending: where the renders go."""
    return tuple(sorted({float(round(m)) for m in ranges["median"]}))


def render_grid(checkpoint, ranges: pd.DataFrame, *,
                tracks_per_class: int = CF_TRACKS_PER_CLASS, seconds: float = CF_SECONDS,
                seed: int = CF_SEED, tempi: Sequence[float] | None = None
                ) -> tuple[pd.DataFrame, np.ndarray]:
    """Fresh SynthBallroom tracks of every class, each rendered at every tempo of ``tempi``.

    Returns
    -------
    renders : DataFrame
        ``dance``, ``seed``, ``bpm``, ``own`` (the track's class median tempo, rounded as
        the tempi are).
    specs : np.ndarray, shape (n_renders, n_mels, T)

    Raises
    ------
    ConfigError
        A class the generator cannot render, or fewer than two tempi.
    """
    ckpt = as_checkpoint(checkpoint)
    front_end = getattr(ckpt, "front_end", None) or FRONT_END
    tempi = tuple(counterfactual_tempi(ranges) if tempi is None else tempi)
    if len(tempi) < 2:
        raise ConfigError(f"the counterfactual needs at least two tempi, got {tempi}")
    rows = [(d, seed + 1000 * c + j, float(b))
            for c, d in enumerate(ckpt.classes) for j in range(int(tracks_per_class))
            for b in tempi]
    dances, seeds, bpms = zip(*rows)
    specs = render_specs(dances, seeds, bpms, seconds=float(seconds), front_end=front_end)
    median = ranges["median"].to_dict()
    renders = pd.DataFrame({"dance": dances, "seed": seeds, "bpm": bpms})
    renders["own"] = renders["dance"].map(lambda d: float(round(median.get(d, np.nan)))
                                          if d in median else np.nan)
    return renders, specs


def tempo_counterfactual(checkpoint, ranges: pd.DataFrame, *, renders: pd.DataFrame,
                         specs: np.ndarray) -> Counterfactual:
    """Predict every render of :func:`render_grid` and test whether the class follows tempo."""
    ckpt = as_checkpoint(checkpoint)
    front_end = getattr(ckpt, "front_end", None) or FRONT_END
    predicted = song_vote_classes(ckpt, specs, front_end)
    renders = renders.assign(predicted=[ckpt.classes[int(i)] for i in predicted])
    renders["hit"] = [p in classes_at(b, ranges) for p, b in zip(renders["predicted"],
                                                                 renders["bpm"])]
    renders["stays"] = renders["predicted"] == renders["dance"]
    return summarise_counterfactual(renders, ranges)


def difference_interval(observed: np.ndarray, expected: np.ndarray, sizes: np.ndarray
                        ) -> tuple[float, float]:
    """95 % interval of ``(Σ observed − Σ expected) / Σ sizes`` over tracks: a t interval
    with the ratio estimator's linearised standard error, ``n − 1`` degrees of freedom.

    Simulated (tracks with heterogeneous tempo-following, ``tests/test_tempo_functional.py``)
    it covers 94-97 % from 4 tracks up, where a percentile bootstrap over tracks covered 45,
    70, 83 and 86 % with 2, 3, 5 and 16 tracks. NaN below :data:`MIN_TRACKS_FOR_INTERVAL`.
    """
    n = len(observed)
    if n < MIN_TRACKS_FOR_INTERVAL:
        return float("nan"), float("nan")
    d = np.asarray(observed, float) - np.asarray(expected, float)
    sizes = np.asarray(sizes, float)
    estimate = d.sum() / sizes.sum()
    residual = d - estimate * sizes
    se = np.sqrt(n / (n - 1) * np.sum(residual ** 2)) / sizes.sum()
    half = float(student_t.ppf(0.975, n - 1)) * se
    return float(estimate - half), float(estimate + half)


def summarise_counterfactual(renders: pd.DataFrame, ranges: pd.DataFrame, *,
                             n_permutations: int = N_PERMUTATIONS) -> Counterfactual:
    """Hit rate, its permutation null and the interval over tracks from a renders table."""
    rng = np.random.default_rng(STAT_SEED)
    tracks = [g for _, g in renders.groupby(["dance", "seed"], sort=True)]
    # per track: hit[i, j] = prediction of render j lands in the range of render i's tempo
    mats = [np.array([[p in classes_at(b, ranges) for p in g["predicted"]] for b in g["bpm"]])
            for g in tracks]
    observed = np.array([np.trace(m) for m in mats], dtype=float)      # (n_tracks,)
    expected = np.array([m.mean(axis=1).sum() for m in mats])            # exact null mean
    sizes = np.array([len(m) for m in mats], dtype=float)
    total = float(sizes.sum())
    perm_hits = np.zeros(n_permutations)
    for r in range(n_permutations):
        perm_hits[r] = sum(m[np.arange(len(m)), rng.permutation(len(m))].sum() for m in mats)
    interval = difference_interval(observed, expected, sizes)
    return Counterfactual(
        renders=renders.reset_index(drop=True), hit_rate=float(observed.sum() / total),
        null_rate=float(expected.sum() / total), difference_interval=interval,
        p_value=float((1 + np.sum(perm_hits >= observed.sum())) / (1 + n_permutations)),
        stay_rate=float(renders["stays"].mean()))


@dataclass(frozen=True)
class Ablation:
    """Accuracy per class with each temporal filter zeroed in turn.

    Attributes
    ----------
    classes : tuple of str
    base : np.ndarray, shape (n_classes,)
        Accuracy per class with every filter (song vote on fresh renders at the class's own
        median tempo).
    drop : np.ndarray, shape (n_filters, n_classes)
        ``base - accuracy with filter i zeroed`` (positive: the class needs the filter).
    n_tracks : int
        Tracks per class.
    """

    classes: tuple[str, ...]
    base: np.ndarray
    drop: np.ndarray
    n_tracks: int

    def top(self, k: int = 3) -> list[tuple[int, str, float]]:
        """The ``k`` largest (filter, class, drop), largest first, positive drops only."""
        order = np.argsort(-self.drop, axis=None)[:k]
        return [(int(i), self.classes[int(c)], float(self.drop[i, c]))
                for i, c in (np.unravel_index(o, self.drop.shape) for o in order)
                if self.drop[i, c] > 0]


@contextlib.contextmanager
def zeroed_filter(model: torch.nn.Module, index: int, n_filters: int):
    """Within the block the time branch's output of filter ``index`` is 0 (as if its
    weights and bias were 0: ReLU then max-pool of 0 is 0)."""
    def hook(_m, _i, out):
        out = out.clone()
        view = out.reshape(out.shape[0], n_filters, -1)               # (batch, filters, T')
        view[:, index] = 0.0
        return view.reshape(out.shape)

    handle = model.time_branch.register_forward_hook(hook)
    try:
        yield
    finally:
        handle.remove()


def filter_ablation(checkpoint, *, renders: pd.DataFrame, specs: np.ndarray) -> Ablation:
    """Zero each temporal filter in turn; accuracy per class on the renders of
    :func:`render_grid` at each track's own class tempo (songs the model never saw).

    Raises
    ------
    ConfigError
        The model has no temporal filters, or no render is at its track's own tempo.
    """
    ckpt = as_checkpoint(checkpoint)
    filters = temporal_filters(ckpt.model)
    if filters is None:
        raise ConfigError(f"a {ckpt.arch} model has no temporal filters to ablate")
    front_end = getattr(ckpt, "front_end", None) or FRONT_END
    own = (renders["bpm"] == renders["own"]).to_numpy()
    if not own.any():
        raise ConfigError("no render is at its track's own class tempo: nothing to ablate on")
    specs = specs[own]
    truth = np.array([list(ckpt.classes).index(d) for d in renders.loc[own, "dance"]])
    n_classes = len(ckpt.classes)

    def per_class(pred):
        return np.array([np.mean(pred[truth == c] == c) if np.any(truth == c) else np.nan
                         for c in range(n_classes)])

    base = per_class(song_vote_classes(ckpt, specs, front_end))
    drop = np.zeros((len(filters), n_classes))
    for i in range(len(filters)):
        with zeroed_filter(ckpt.model, i, len(filters)):
            drop[i] = base - per_class(song_vote_classes(ckpt, specs, front_end))
    n_tracks = int(renders.loc[own].groupby("dance").size().min())
    return Ablation(classes=tuple(ckpt.classes), base=base, drop=np.nan_to_num(drop),
                    n_tracks=n_tracks)


@dataclass(frozen=True)
class FunctionalEvidence:
    """The three functional tests of one checkpoint (None where not run)."""

    probe_class: tuple[ProbeClassTest, ...]
    counterfactual: Counterfactual | None
    ablation: Ablation | None


def functional_evidence(checkpoint, probes, ranges: pd.DataFrame, *, model_tests: bool,
                        tracks_per_class: int = CF_TRACKS_PER_CLASS) -> FunctionalEvidence:
    """The probe → class test, and with ``model_tests`` the counterfactual and the ablation
    (one set of renders serves both)."""
    probe_class = () if probes is None else probe_class_test(probes, ranges)
    if not model_tests:
        return FunctionalEvidence(probe_class=probe_class, counterfactual=None, ablation=None)
    renders, specs = render_grid(checkpoint, ranges, tracks_per_class=tracks_per_class)
    ckpt = as_checkpoint(checkpoint)
    ablation = (filter_ablation(ckpt, renders=renders, specs=specs)
                if temporal_filters(ckpt.model) is not None else None)
    return FunctionalEvidence(
        probe_class=probe_class,
        counterfactual=tempo_counterfactual(ckpt, ranges, renders=renders, specs=specs),
        ablation=ablation)
