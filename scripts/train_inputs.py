"""The lab's `rhythm` hypothesis tested on the CNN: the Time architecture trained with each
input option (the paper's 80-frame patch, longer patches with filters as long as a bar, a
tempo-normalised beat-synchronous input) and Frequency with the paper's input, on one
SynthBallroom scenario with the same folds; writes ``checkpoints/inputs-rhythm.json``.

Each seed draws one fold assignment that every variant shares, so each variant is compared
with the paper-input Time and with Frequency fold by fold, the seeds pooled as corrected
repeated k-fold cross-validation (:func:`tfcnn.contrasts.pooled_comparison`: 95 % interval,
minimum detectable difference at 80 % power), and Holm's correction over every contrast the
report holds (:func:`tfcnn.contrasts.family`). Runs go to ``<runs>/<variant>-s<seed>/``; a
rerun keeps finished runs and resumes the others.

    python -m scripts.train_inputs --data data/synth-rhythm --folds 5 --seeds 0,1,2
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

#: name → (architecture, RunRequest fields): the paper's Time and Frequency first.
VARIANTS: dict[str, tuple[str, dict]] = {
    "time-p80": ("time", {}),
    "frequency-p80": ("frequency", {}),
    "time-p160-t1x120": ("time", {"patch_frames": 160, "time_filter": (1, 120)}),
    "time-p240-t1x180": ("time", {"patch_frames": 240, "time_filter": (1, 180)}),
    "time-b10-p80": ("time", {"frames_per_beat": 10}),
    "time-b20-p160-t1x120": ("time", {"frames_per_beat": 20, "patch_frames": 160,
                                      "time_filter": (1, 120)}),
}
#: The variant every other one is compared with, and the gap the hypothesis is about.
REFERENCE, GAP_TO = "time-p80", "frequency-p80"


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m scripts.train_inputs", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", default="data/synth-rhythm", help="the scenario's data set")
    p.add_argument("--variants", default=",".join(VARIANTS),
                   help=f"comma-separated, in run order (default: {','.join(VARIANTS)})")
    p.add_argument("--folds", type=int, default=5)
    p.add_argument("--seeds", default="0,1,2", help="training seeds (each draws its folds)")
    p.add_argument("--preset", default="quick")
    p.add_argument("--epochs", type=int, default=None, help="override (smoke tests only)")
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    p.add_argument("--runs", default="runs/inputs-rhythm", help="run folders go here")
    p.add_argument("--out", default="checkpoints/inputs-rhythm.json", help="the report")
    p.add_argument("--table-only", action="store_true",
                   help="train nothing: rebuild the report from finished runs")
    return p


def run_dir(args, name: str, seed: int) -> Path:
    return Path(args.runs) / f"{name}-s{seed}"


def train_variants(args, names: list[str], seeds: list[int]) -> None:
    """Train every variant and seed not finished yet (resuming an interrupted one), seed by
    seed so an interrupted session leaves whole seeds."""
    from tfcnn.commands.train import fold_end_line
    from tfcnn.request import RunRequest
    from tfcnn.runs import read_results
    from tfcnn.train import train_run

    for seed in seeds:
        for name in names:
            arch, fields = VARIANTS[name]
            out = run_dir(args, name, seed)
            if (out / "results.json").is_file() and read_results(out).get("folds"):
                print(f"{out.name}: finished, kept", file=sys.stderr)
                continue
            request = RunRequest(args.data, arch, n_folds=args.folds, preset=args.preset,
                                 protocol="clean", device="cpu", seed=seed,
                                 epochs=args.epochs, **fields)
            print(f"{out.name}: training ({' '.join(request.argv()[1:])})", file=sys.stderr,
                  flush=True)
            train_run(request, out, resume=(out / "config.json").is_file(),
                      progress=fold_end_line)


#: An estimate within this fraction of the annotated tempo counts as right (MIREX's 4 %).
TEMPO_TOLERANCE = 0.04


def tempo_estimates(data) -> dict:
    """How the tempo estimate the beat-synchronous input uses compares with the data set's
    annotated tempi (``metadata.csv``'s ``bpm``): shares right, at half and at double; None
    without annotations."""
    import numpy as np

    from tfcnn.cache import load_features
    from tfcnn.config import FRONT_END
    from tfcnn.datasets import load_dataset
    from tfcnn.tempo import estimate_tempo

    dataset = load_dataset(data)
    features = load_features(dataset, front_end=FRONT_END)
    if "bpm" not in dataset.tracks or dataset.tracks["bpm"].isna().any():
        return None  # a data set without annotated tempi (not SynthBallroom)
    truth = dataset.tracks.set_index("track").loc[list(features.track_ids), "bpm"].astype(float)
    ratio = np.array([estimate_tempo(spec).bpm for spec in features.specs]) / truth.to_numpy()

    def share(target: float) -> float:
        return float(np.mean(np.abs(ratio / target - 1.0) <= TEMPO_TOLERANCE))

    right = np.abs(ratio - 1.0) <= TEMPO_TOLERANCE
    dances = dataset.tracks.set_index("track").loc[list(features.track_ids), "dance"].to_numpy()
    by_dance = {str(d): float(np.mean(right[dances == d])) for d in sorted(set(dances))}
    return {"n_tracks": int(ratio.size), "tolerance": TEMPO_TOLERANCE, "right": share(1.0),
            "right_by_dance": by_dance,
            "half": share(0.5), "double": share(2.0), "two_thirds": share(2 / 3),
            "three_halves": share(1.5),
            "meaning": "share of tracks whose estimated tempo is within the tolerance of the "
                       "annotated tempo times 1, 1/2, 2, 2/3, 3/2"}


def report(args, names: list[str], seeds: list[int]) -> dict:
    """Each variant's accuracy per seed and pooled, and its paired comparisons (JSON-able)."""
    import numpy as np

    from tfcnn.contrasts import cv_test_train_ratio, family, pooled_comparison
    from tfcnn.evaluate import POWER
    from tfcnn.provenance import code_version
    from tfcnn.request import RunRequest
    from tfcnn.result_sets import run_results
    from tfcnn.runs import read_config

    folds: dict[str, dict[int, list[float]]] = {}
    rows = {}
    for name in names:
        per_seed, argv, n_params, wall = {}, None, None, 0.0
        for seed in seeds:
            if not (run_dir(args, name, seed) / "results.json").is_file():
                continue
            rs = run_results(run_dir(args, name, seed))
            if rs is None or len(rs.accuracies) != args.folds:
                continue
            per_seed[seed] = [float(a) for a in rs.accuracies]
            argv = RunRequest.from_config(read_config(run_dir(args, name, seed))).replace(
                seed=0).argv()[1:]
            n_params, wall = rs.n_params, wall + float(rs.wall_s or 0.0)
        if not per_seed:
            continue
        folds[name] = per_seed
        every = np.concatenate(list(per_seed.values()))
        means = [float(np.mean(v)) for v in per_seed.values()]
        rows[name] = {"arch": VARIANTS[name][0], "argv": argv, "seeds": sorted(per_seed),
                      "mean": float(every.mean()), "std_over_folds": float(every.std()),
                      "seed_means": dict(zip(map(str, per_seed), means)),
                      "seed_spread": [min(means), max(means)], "per_fold": per_seed,
                      "n_params": n_params, "wall_s": wall}
    ratio = cv_test_train_ratio(args.folds, "clean")
    comparisons = []
    for name in rows:
        for other in (REFERENCE, GAP_TO):
            if other != name and other in folds and not (name == GAP_TO and other == REFERENCE):
                c = pooled_comparison(folds[name], folds[other], test_train_ratio=ratio,
                                      labels=(name, other))
                if c is not None:
                    comparisons.append(c)
    contrasts = family(comparisons)
    return {"data": str(args.data), "n_folds": args.folds, "seeds": seeds,
            "preset": args.preset, "protocol": "clean", "epochs": args.epochs,
            # the command that trains it (--table-only rebuilds the same report)
            "command": "python -m scripts.train_inputs " + " ".join(
                a for a in sys.argv[1:] if a != "--table-only"),
            "code_version": code_version(), "variants": rows,
            "contrasts": [k.to_dict() for k in contrasts],
            "tempo_estimate": tempo_estimates(args.data),
            "method": ("A − B in accuracy points over the folds of every seed both ran, paired "
                       "(same seed, same folds), corrected repeated k-fold t (Bouckaert & Frank "
                       "2004); mdd_alone: the true difference one contrast detects with "
                       f"probability {POWER} at 5 %; p_holm, verdict, simultaneous_ci, mdd: "
                       "Holm over every contrast listed (Bonferroni interval and level).")}


def main(argv: list[str] | None = None) -> int:
    from tfcnn.atomic import write_json_atomic
    from tfcnn.errors import ConfigError, TfcnnError

    args = build_parser().parse_args(argv)
    try:
        names = [n.strip() for n in args.variants.split(",") if n.strip()]
        bad = [n for n in names if n not in VARIANTS]
        if bad or not names:
            raise ConfigError(f"unknown variant(s) {bad or args.variants!r}; valid: "
                              f"{', '.join(VARIANTS)}")
        try:
            seeds = [int(s) for s in args.seeds.split(",") if s.strip()]
        except ValueError:
            raise ConfigError(f"--seeds must be comma-separated integers, got {args.seeds!r}"
                              ) from None
        if not args.table_only:
            import torch

            torch.set_num_threads(args.threads)
            train_variants(args, names, seeds)
        write_json_atomic(args.out, report(args, names, seeds))
    except TfcnnError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"report: {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
