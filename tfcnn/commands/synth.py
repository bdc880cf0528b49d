"""``python -m tfcnn synth OUT_DIR [--scenario NAME]``: generate a SynthBallroom data set."""

from __future__ import annotations

import argparse
import time

#: The scenarios ``--help`` names (tfcnn.synth.scenarios.SCENARIOS is the registry; importing
#: it loads the renderer's numerical stack, so `synth --help` names them here and
#: tests/test_cli_start.py checks that they are the registry's). Run-time checks use the
#: registry itself.
SCENARIO_NAMES = ("paper", "tempo", "rhythm", "timbre", "shuffled", "conflict")


def add_parser(subparsers) -> None:
    p = subparsers.add_parser(
        "synth",
        help="generate a SynthBallroom data set (8 dances, 30 s WAVs + metadata.csv)",
        description="Generate SynthBallroom: deterministic 44.1 kHz mono 16-bit WAVs of the 8 "
                    "Ballroom dances with their real tempo distributions, meters and rhythms, "
                    "in OUT_DIR/<Dance>/<track>.wav plus OUT_DIR/scenario.json and "
                    "OUT_DIR/metadata.csv. A scenario controls which cue separates the "
                    "classes. A rerun completes an interrupted set and leaves a complete one "
                    "untouched.",
        epilog="The cue each scenario isolates: docs/lab.md (SynthBallroom as a lab).",
    )
    p.add_argument("out_dir", metavar="OUT_DIR", help="destination folder")
    p.add_argument("--scenario", default=SCENARIO_NAMES[0], metavar="NAME",
                   help=f"{' | '.join(SCENARIO_NAMES)} (default: {SCENARIO_NAMES[0]}, the set "
                        "calibrated to the paper)")
    p.add_argument("--per-class", type=int, default=60, metavar="N",
                   help="tracks per dance (default: 60)")
    p.add_argument("--seconds", type=float, default=30.0, metavar="S",
                   help="track length in seconds (default: 30)")
    p.add_argument("--seed", type=int, default=0, metavar="K", help="seed of the set (default: 0)")
    p.add_argument("--workers", type=int, default=2, metavar="W",
                   help="parallel processes (default: 2; the output does not depend on it)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    # The renderer's numerical stack loads only when the command runs: `--help` stays fast.
    from tfcnn.synth import generate

    start = time.perf_counter()
    out = generate(args.out_dir, scenario=args.scenario, per_class=args.per_class,
                   seconds=args.seconds, seed=args.seed, workers=args.workers,
                   progress=not args.quiet)
    n = 8 * args.per_class
    print(f"SynthBallroom ({args.scenario}): {n} tracks in {out} "
          f"({time.perf_counter() - start:.1f} s)")
    return 0
