"""Which cue does each architecture follow? Models trained on SynthBallroom ``paper`` predict
the ``conflict`` set, where every track plays one dance's tempo, a second dance's meter and
rhythm pattern and a third dance's sounds (:mod:`tfcnn.synth.scenarios`).

For every track and model the prediction either names the tempo's dance, the rhythm's, the
sounds', or none of them. The **share** of a cue is the fraction of (model, track) pairs whose
prediction names that cue's dance. The set is balanced (each dance is each cue's source on
1/8 of the tracks, never two cues at once), so a model that ignores a cue matches it on 1/8
of the tracks: the **chance share** is 12.5 % for each cue and 62.5 % for "none".

Intervals are percentile bootstraps over tracks (the tracks are the sampled units; several
models of one architecture, folds or seeds, predict the same tracks, so their predictions are
resampled together): 95 % intervals of each share and of the leading cue's margin over the
runner-up. An architecture **follows** a cue when that margin's interval lies above 0.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tfcnn.atomic import write_json_atomic
from tfcnn.cache import front_end_key, load_features
from tfcnn.checkpoint import load_checkpoint
from tfcnn.config import CLASSES
from tfcnn.datasets import SCENARIO_FILE, load_dataset
from tfcnn.errors import ConfigError, RunError
from tfcnn.evaluate import song_vote
from tfcnn.features import model_input
from tfcnn.fold_training import EVAL_BATCH_SIZE
from tfcnn.inference import song_probabilities
from tfcnn.runs import FOLD_MODEL_FILE, complete_folds, fold_dir
from tfcnn.synth.generate import read_sources
from tfcnn.synth.scenarios import CUES

#: The outcome beside the cues: the prediction names none of the track's three dances.
NONE = "none"
#: Chance share of each cue (and of ``none``) for a model blind to the cues.
CHANCE: dict[str, float] = {**{cue: 1.0 / len(CLASSES) for cue in CUES},
                            NONE: 1.0 - len(CUES) / len(CLASSES)}
#: Bootstrap resamples of the tracks.
N_BOOT = 2000
LEVEL = 0.95


def models_by_arch(refs: Sequence[str | os.PathLike]) -> dict[str, list[Path]]:
    """Checkpoints grouped by architecture: a file is one model, a run folder all its
    complete folds' models.

    Raises
    ------
    RunError
        A path that is neither a checkpoint nor a run folder with a complete fold.
    """
    out: dict[str, list[Path]] = {}
    for ref in refs:
        path = Path(ref)
        if path.is_dir():
            paths = [fold_dir(path, k) / FOLD_MODEL_FILE for k in complete_folds(path)]
            paths = [p for p in paths if p.is_file()]
            if not paths:
                raise RunError(f"{path}: no complete fold with a model")
        elif path.is_file():
            paths = [path]
        else:
            raise RunError(f"{path}: no such checkpoint or run folder")
        for p in paths:
            out.setdefault(load_checkpoint(p).arch, []).append(p)
    return out


def predicted_classes(checkpoints: Sequence[str | os.PathLike], data_dir, *,
                      device: str = "cpu") -> tuple[np.ndarray, list[str]]:
    """Song-vote class of every track of ``data_dir`` by every checkpoint.

    Returns
    -------
    predictions : np.ndarray, shape (n_models, n_tracks), int64
        Class index (of :data:`tfcnn.config.CLASSES`) per model and track.
    track_ids : list of str
        The tracks, in the data set's order.
    """
    dataset = load_dataset(data_dir)
    out, features = [], {}
    for path in checkpoints:
        ckpt = load_checkpoint(path)
        if tuple(ckpt.classes) != tuple(CLASSES):
            raise ConfigError(f"{path}: classes {list(ckpt.classes)} are not the eight "
                              f"Ballroom dances")
        key = front_end_key(ckpt.front_end)
        if key not in features:
            features[key] = load_features(dataset, front_end=ckpt.front_end)
        fs = features[key]
        inputs = [model_input(spec, front_end=ckpt.front_end).frames for spec in fs.specs]
        probs = song_probabilities(ckpt.model, inputs, mean=ckpt.norm_mean, std=ckpt.norm_std,
                                   patch_frames=ckpt.front_end.patch_frames,
                                   batch_size=EVAL_BATCH_SIZE, device=device)
        out.append([song_vote(p) for p in probs])
    ids = list(next(iter(features.values())).track_ids) if features else []
    return np.asarray(out, dtype=np.int64).reshape(len(out), len(ids)), ids


def cue_hits(predictions: np.ndarray, sources: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Per cue (and ``none``), whether each prediction names that cue's dance.

    Parameters
    ----------
    predictions : np.ndarray, shape (n_models, n_tracks), int
    sources : mapping of cue to np.ndarray, shape (n_tracks,), int
        Class index of each track's tempo, rhythm and sounds dance.

    Returns
    -------
    dict of str to np.ndarray, each (n_models, n_tracks), bool
    """
    hits = {cue: predictions == np.asarray(sources[cue])[None, :] for cue in CUES}
    hits[NONE] = ~np.any(np.stack(list(hits.values())), axis=0)
    return hits


@dataclass(frozen=True)
class CueShares:
    """One architecture's predictions on the conflict set, by cue.

    Attributes
    ----------
    arch : str
    models : tuple of str
    n_tracks : int
    shares : dict of str to (share, low, high)
        Share of predictions naming each cue's dance (and ``none``), with its 95 %
        bootstrap interval over tracks; fractions.
    per_model : tuple of dict
        Each model's shares (its spread over folds and seeds).
    lead : str
        The cue with the largest share.
    runner_up : str
    margin : (float, float, float)
        Lead's share minus the runner-up's, with its 95 % bootstrap interval.
    """

    arch: str
    models: tuple[str, ...]
    n_tracks: int
    shares: dict[str, tuple[float, float, float]]
    per_model: tuple[dict[str, float], ...]
    lead: str
    runner_up: str
    margin: tuple[float, float, float]

    @property
    def follows(self) -> str | None:
        """The cue it follows (margin interval above 0), or None."""
        return self.lead if self.margin[1] > 0 else None

    @property
    def above_chance(self) -> tuple[str, ...]:
        """The cues whose share's interval lies above chance, largest share first."""
        return tuple(c for c in sorted(CUES, key=lambda c: -self.shares[c][0])
                     if self.shares[c][1] > CHANCE[c])

    def verdict(self) -> str:
        """One sentence: which cue, by how much, and against chance."""
        share, lo, hi = self.shares[self.lead]
        m, mlo, mhi = self.margin
        used = (f"; above chance: {', '.join(self.above_chance)}" if self.above_chance
                else "; no cue above chance")
        if self.follows is None:
            return (f"no single cue leads: {self.lead} {100 * share:.0f} % and "
                    f"{self.runner_up} {100 * self.shares[self.runner_up][0]:.0f} % (margin "
                    f"{100 * m:+.0f} points, 95 % CI {100 * mlo:+.0f} to {100 * mhi:+.0f})"
                    f"{used}")
        return (f"follows {self.lead}: {100 * share:.0f} % of predictions (95 % CI "
                f"{100 * lo:.0f}-{100 * hi:.0f}; chance {100 * CHANCE[self.lead]:.1f} %), "
                f"{100 * m:.0f} points above {self.runner_up} (CI {100 * mlo:.0f} to "
                f"{100 * mhi:.0f}){used}")

    def to_dict(self) -> dict:
        return {"arch": self.arch, "models": list(self.models), "n_models": len(self.models),
                "n_tracks": self.n_tracks,
                "shares": {k: {"share": v[0], "ci95": [v[1], v[2]], "chance": CHANCE[k]}
                           for k, v in self.shares.items()},
                "per_model": list(self.per_model), "lead": self.lead,
                "runner_up": self.runner_up,
                "margin": {"difference": self.margin[0], "ci95": list(self.margin[1:])},
                "follows": self.follows, "above_chance": list(self.above_chance),
                "verdict": self.verdict()}

    @classmethod
    def from_dict(cls, data: dict) -> "CueShares":
        try:
            return cls(arch=str(data["arch"]), models=tuple(data["models"]),
                       n_tracks=int(data["n_tracks"]),
                       shares={k: (float(v["share"]), *map(float, v["ci95"]))
                               for k, v in data["shares"].items()},
                       per_model=tuple(data.get("per_model", [])), lead=str(data["lead"]),
                       runner_up=str(data["runner_up"]),
                       margin=(float(data["margin"]["difference"]),
                               *map(float, data["margin"]["ci95"])))
        except (KeyError, TypeError, ValueError) as exc:
            raise RunError(f"not a cue-conflict result ({exc})") from None


def cue_shares(predictions: np.ndarray, sources: Mapping[str, np.ndarray], *, arch: str,
               models: Sequence[str], n_boot: int = N_BOOT, seed: int = 0) -> CueShares:
    """Shares of each cue with bootstrap intervals over tracks (see the module docstring).

    Parameters
    ----------
    predictions : np.ndarray, shape (n_models, n_tracks), int
    sources : mapping of cue to np.ndarray, shape (n_tracks,), int
    arch : str
    models : sequence of str, length n_models
    n_boot, seed : int, keyword-only
    """
    predictions = np.asarray(predictions)
    if predictions.ndim != 2 or predictions.shape[0] != len(models) or predictions.shape[1] < 2:
        raise ConfigError(f"predictions must be (n_models = {len(models)}, n_tracks >= 2), got "
                          f"{predictions.shape}")
    hits = cue_hits(predictions, sources)
    per_track = {k: v.mean(axis=0) for k, v in hits.items()}             # (n_tracks,) each
    n = predictions.shape[1]
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, n, size=(n_boot, n))                           # (n_boot, n_tracks)
    boot = {k: v[idx].mean(axis=1) for k, v in per_track.items()}        # (n_boot,) each
    tail = 100 * (1 - LEVEL) / 2
    shares = {k: (float(per_track[k].mean()), *map(float, np.percentile(boot[k],
                                                                        [tail, 100 - tail])))
              for k in (*CUES, NONE)}
    ranked = sorted(CUES, key=lambda c: -shares[c][0])
    lead, runner = ranked[0], ranked[1]
    diff = boot[lead] - boot[runner]
    margin = (shares[lead][0] - shares[runner][0],
              *map(float, np.percentile(diff, [tail, 100 - tail])))
    per_model = tuple({"model": str(m), **{k: float(v[i].mean()) for k, v in hits.items()}}
                      for i, m in enumerate(models))
    return CueShares(arch=arch, models=tuple(str(m) for m in models), n_tracks=n,
                     shares=shares, per_model=per_model, lead=lead, runner_up=runner,
                     margin=margin)


def source_indices(data_dir, track_ids: Sequence[str]) -> dict[str, np.ndarray]:
    """Class index of each track's tempo, rhythm and sounds dance, in ``track_ids`` order."""
    table = read_sources(data_dir).set_index("track")
    missing = [t for t in track_ids if t not in table.index]
    if missing:
        raise RunError(f"{data_dir}: metadata lacks track(s) {', '.join(missing[:3])}")
    index = {d: i for i, d in enumerate(CLASSES)}
    rows = table.loc[list(track_ids)]
    return {cue: rows[f"{cue}_of"].map(index).to_numpy(np.int64) for cue in CUES}


def evaluate_conflict(models: Mapping[str, Sequence[str | os.PathLike]], data_dir, *,
                      device: str = "cpu", n_boot: int = N_BOOT) -> dict:
    """Every architecture's cue shares on a conflict set, as one JSON-ready report.

    Parameters
    ----------
    models : mapping of architecture label to checkpoint paths
        The models trained on ``paper`` (several per label: folds, seeds).
    data_dir : path
        A ``conflict`` set (``python -m tfcnn synth DIR --scenario conflict``).

    Returns
    -------
    dict
        ``data``, ``dataset``, ``n_tracks``, ``chance``, ``method``, ``architectures`` (one
        :meth:`CueShares.to_dict` each).
    """
    dataset = load_dataset(data_dir)
    if not models:
        raise ConfigError("no models to evaluate")
    results = []
    sources = None
    for label, paths in models.items():
        if not paths:
            raise ConfigError(f"{label}: no checkpoint")
        predictions, ids = predicted_classes(paths, data_dir, device=device)
        if sources is None:
            sources = source_indices(data_dir, ids)
        results.append(cue_shares(predictions, sources, arch=label,
                                  models=[str(p) for p in paths], n_boot=n_boot).to_dict())
    try:
        record = json.loads((Path(data_dir) / SCENARIO_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        record = {}
    return {"data": str(data_dir), "dataset": dataset.name, "n_tracks": dataset.n_tracks,
            "set": {k: record.get(k) for k in ("per_class", "seconds", "seed")},
            "chance": CHANCE, "method": METHOD, "architectures": results}


#: How the report's numbers come about (stored with it).
METHOD = ("Each model predicts every conflict track by song vote; a cue's share is the "
          "fraction of (model, track) pairs whose prediction names that cue's dance. 95 % "
          f"intervals: percentile bootstrap over tracks ({N_BOOT} resamples, all models of an "
          "architecture resampled together). Chance: 12.5 % per cue, 62.5 % none (balanced "
          "set). 'Follows' = the leading cue's margin over the runner-up has an interval above 0.")


def write_report(path: str | os.PathLike, report: dict) -> None:
    write_json_atomic(path, report)


def read_report(path: str | os.PathLike) -> tuple[dict, list[CueShares]] | None:
    """A report written by :func:`evaluate_conflict` (None when missing); RunError if broken."""
    try:
        report = json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        raise RunError(f"{path}: not a readable cue-conflict report ({exc})") from None
    if not isinstance(report, dict) or not isinstance(report.get("architectures"), list):
        raise RunError(f"{path}: not a cue-conflict report")
    return report, [CueShares.from_dict(a) for a in report["architectures"]]


def format_report(report: dict, shares: Sequence[CueShares]) -> str:
    """The report as text: one block per architecture."""
    lines = [f"{report.get('dataset', '?')} ({report.get('n_tracks', '?')} tracks): which "
             f"cue the prediction follows; chance 12.5 % per cue, 62.5 % none"]
    for s in shares:
        cells = "  ".join(f"{k} {100 * v[0]:.1f} % [{100 * v[1]:.1f}-{100 * v[2]:.1f}]"
                          for k, v in s.shares.items())
        lines += [f"{s.arch} ({len(s.models)} model{'s' if len(s.models) > 1 else ''}): "
                  f"{cells}", f"  {s.verdict()}"]
    return "\n".join(lines)
