"""``python -m tfcnn plan PILOT [PILOT_B] [--half-width POINTS] [--json]``.

From a pilot run's per-fold variance (or two runs' paired differences), the interval
half-width and minimum detectable difference of designs with more tracks per class and more
seeds, and the cheapest design that reaches ``--half-width`` (model: :mod:`tfcnn.plan`).
"""

from __future__ import annotations

import argparse
import json
from dataclasses import asdict


def _int_list(text: str) -> list[int]:
    from tfcnn.errors import ConfigError

    try:
        values = [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise ConfigError(f"expected comma-separated integers, got {text!r}") from None
    if not values or min(values) < 1:
        raise ConfigError(f"expected integers >= 1, got {text!r}")
    return values


def add_parser(subparsers) -> None:
    p = subparsers.add_parser(
        "plan",
        help="tracks per class and seeds for a given interval width, from a pilot run",
        description="From a pilot's per-fold variance: the 95 %% interval half-width of A − B "
                    "(corrected repeated resampled t, as compare) and the difference detected "
                    "80 %% of the time, for more tracks per class and more seeds. One pilot "
                    "run plans the difference of two models like it; two runs on the same "
                    "folds plan their own difference.",
    )
    p.add_argument("pilot_a", metavar="PILOT",
                   help="run folder, or FILE.json:ARCH for a row of a Table 1 file")
    p.add_argument("pilot_b", metavar="PILOT_B", nargs="?", default=None,
                   help="a second run on the same folds (optional)")
    p.add_argument("--half-width", type=float, default=None, metavar="POINTS",
                   help="the interval half-width wanted, in accuracy points")
    p.add_argument("--per-class", default=None, metavar="N,N,...",
                   help="tracks per class to try (default 20,30,40,60,80,100,150,200,300,400)")
    p.add_argument("--seeds", default=None, metavar="S,S,...",
                   help="seeds to try (default 1,2,3,5,10)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    # the result readers (pandas) and scipy load only when the command runs: --help stays fast
    from tfcnn.compare import paired_accuracies
    from tfcnn.errors import ConfigError
    from tfcnn.plan import (PER_CLASS_STEPS, SEED_STEPS, cheapest, format_plan, make_pilot,
                            plan_table)
    from tfcnn.result_sets import load_result_set

    if args.half_width is not None and not args.half_width > 0:
        raise ConfigError(f"--half-width must be a positive number of points, got "
                          f"{args.half_width}")
    a = load_result_set(args.pilot_a)
    b = load_result_set(args.pilot_b) if args.pilot_b else None
    paired = b is None or (a.pairable and b.pairable)
    acc_a, acc_b = (paired_accuracies(a, b) if b is not None and paired
                    else (a.accuracies, None if b is None else b.accuracies))
    # songs per test fold: recorded, else the data set's songs over K
    n_test = (sum(a.n_test_tracks) / len(a.n_test_tracks) if a.n_test_tracks
              else a.n_tracks / a.n_folds if a.n_tracks and a.n_folds else None)
    if n_test is None:
        raise ConfigError(f"{a.label}: records neither its test songs per fold nor its data "
                          f"set's size; a plan needs one of them")
    # as compare: the larger recorded n_test/n_train, else K-fold with one validation fold
    ratios = [r.test_train_ratio for r in (a, b) if r is not None and r.test_train_ratio]
    label = a.label if b is None else f"{a.label} − {b.label}"
    pilot = make_pilot(acc_a, acc_b, n_test=n_test, n_classes=len(a.classes),
                       test_train_ratio=max(ratios) if ratios else 1.0 / max(a.n_folds - 2, 1),
                       n_folds=a.n_folds, paired=paired, label=label)
    designs = plan_table(pilot,
                         per_class=_int_list(args.per_class) if args.per_class else PER_CLASS_STEPS,
                         seeds=_int_list(args.seeds) if args.seeds else SEED_STEPS)
    if args.json:
        best = (cheapest(designs, half_width=args.half_width)
                if args.half_width is not None else None)
        print(json.dumps({"pilot": asdict(pilot), "half_width": args.half_width,
                          "designs": [asdict(d) for d in designs],
                          "cheapest": None if best is None else asdict(best)}, indent=2))
    else:
        print(format_plan(pilot, designs, half_width=args.half_width))
    return 0
