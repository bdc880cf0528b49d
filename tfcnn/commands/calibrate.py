"""``python -m tfcnn calibrate CHECKPOINT DATA [--folds K] [--seed S] [--out P]``.

Fits a checkpoint's temperature and unsure threshold on its fold's validation songs (rebuilt
from the data set, the number of folds and the seed, and checked against the test songs the
checkpoint recorded) and writes them into its metadata.
"""

from __future__ import annotations

import argparse


def add_parser(subparsers) -> None:
    p = subparsers.add_parser(
        "calibrate",
        help="fit a checkpoint's confidence calibration on its validation songs",
        description="Temperature scaling on the fold's validation songs and the two unsure "
                    "thresholds (calibrated confidence and beat strength, each the 2.5 % "
                    "quantile of the validation songs'), stored in the checkpoint. Folds and seed default to the run folder's config.json, else "
                    "to the shipped recipe (10 folds, seed 0).",
    )
    p.add_argument("checkpoint", metavar="CHECKPOINT", help="model file (.safetensors)")
    p.add_argument("data", metavar="DATA", help="the data set the checkpoint was trained on")
    p.add_argument("--folds", type=int, default=None, help="number of folds of its run")
    p.add_argument("--seed", type=int, default=None, help="seed of its run")
    p.add_argument("--out", default=None, help="write here instead of replacing CHECKPOINT")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from tfcnn.recalibrate import calibrate_checkpoint

    cal = calibrate_checkpoint(args.checkpoint, args.data, n_folds=args.folds, seed=args.seed,
                               out=args.out)
    print(f"{args.out or args.checkpoint}: temperature {cal.temperature:.3f} on "
          f"{cal.n_songs} validation songs ({cal.n_patches} patches; NLL {cal.nll_before:.3f} "
          f"-> {cal.nll_after:.3f}); unsure below {cal.unsure_threshold:.1%}")
    return 0
