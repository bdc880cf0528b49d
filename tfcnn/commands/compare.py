"""``python -m tfcnn compare RUN_A RUN_B [--margin POINTS] [--unpaired] [--json]``.

A run is a run folder or a row of a Table 1 file, ``FILE.json:ARCH``. Folds are paired when
both runs tested the same songs in each fold; otherwise the command stops with one
``error:`` line (exit 2) unless ``--unpaired``. Output: A − B in accuracy points with its
95 % interval (corrected resampled t), the p values, the equivalence test and a verdict.
"""

from __future__ import annotations

import argparse
import json

from tfcnn.evaluate import DEFAULT_MARGIN, format_comparison


def add_parser(subparsers) -> None:
    p = subparsers.add_parser(
        "compare",
        help="compare two runs' per-fold accuracies (interval, tests, verdict)",
        description="Compare run A with run B over their folds: mean difference A − B with a "
                    "95 % interval from the corrected resampled t-test (Nadeau & Bengio "
                    "2003), Wilcoxon p, equivalence within ±MARGIN points (TOST), and a "
                    "verdict: 'A better' if the interval lies above 0, 'B better' if below, "
                    "else 'equivalent within ±m points' if TOST p < 0.05, else "
                    "'inconclusive'.",
    )
    for name in ("run_a", "run_b"):
        p.add_argument(name, metavar=name.upper(),
                       help="run folder, or FILE.json:ARCH for a row of a Table 1 file "
                            "(e.g. checkpoints/table1-synth.json:timefreq)")
    p.add_argument("--margin", type=float, default=DEFAULT_MARGIN, metavar="POINTS",
                   help=f"equivalence margin in accuracy points (default {DEFAULT_MARGIN:g})")
    p.add_argument("--unpaired", action="store_true",
                   help="compare the two sets of folds without pairing them (for runs on "
                        "different fold assignments or without fold fingerprints)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    # pandas (through the run reader) loads only when the command runs: `--help` stays fast.
    from tfcnn.compare import compare_scores
    from tfcnn.result_sets import load_result_set

    a, b = load_result_set(args.run_a), load_result_set(args.run_b)
    result = compare_scores(a, b, margin=args.margin, paired=not args.unpaired)
    print(json.dumps(result.to_dict(), indent=2) if args.json else format_comparison(result))
    return 0
