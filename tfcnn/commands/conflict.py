"""``python -m tfcnn conflict DATA MODEL [MODEL ...] [--out JSON] [--json]``.

Models trained on SynthBallroom ``paper`` predict a ``conflict`` set (``python -m tfcnn synth
DIR --scenario conflict``): per architecture, the share of predictions that follow the
tempo's, the rhythm's and the sounds' dance, with bootstrap intervals over tracks
(:mod:`tfcnn.cue_conflict`). A MODEL is a checkpoint or a run folder (all its fold models).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def add_parser(subparsers) -> None:
    p = subparsers.add_parser(
        "conflict",
        help="which cue (tempo, rhythm, timbre) models trained on paper follow",
        description="Predict a SynthBallroom conflict set (each track: one dance's tempo, a "
                    "second's rhythm, a third's sounds) and report, per architecture, the "
                    "share of predictions naming each cue's dance (chance 12.5 %%), with 95 %% "
                    "bootstrap intervals over tracks.",
    )
    p.add_argument("data", metavar="DATA", help="a conflict set folder")
    p.add_argument("models", metavar="MODEL", nargs="+",
                   help="checkpoint (.safetensors) or run folder (its fold models)")
    p.add_argument("--device", default="cpu")
    p.add_argument("--out", default=None, help="write the report (JSON) here")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    # torch (through inference) loads only when the command runs: --help stays fast
    from tfcnn.cue_conflict import (CueShares, evaluate_conflict, format_report,
                                    models_by_arch, write_report)

    report = evaluate_conflict(models_by_arch(args.models), args.data, device=args.device)
    if args.out:
        write_report(Path(args.out), report)
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        print(format_report(report, [CueShares.from_dict(a) for a in report["architectures"]]))
    return 0
