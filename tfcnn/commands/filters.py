"""``python -m tfcnn filters CHECKPOINT [--json]``: do the temporal filters learn tempo?

Prints one row per 1×n temporal filter (dominant BPM, periodicity strength, p-value against
untrained filters, ``tuned``: above the untrained 95th percentile, ``strict``: also above red
noise as smooth as the filter, the class it is most active on) and the verdict of the tempo
study (Pons et al. 2016, §3).
"""

from __future__ import annotations

import json
import math
from dataclasses import replace
from pathlib import Path

import numpy as np

from tfcnn.config import BALLROOM_BPM_RANGE
from tfcnn.errors import ConfigError


def add_parser(subparsers) -> None:
    p = subparsers.add_parser(
        "filters",
        help="tempo study of a checkpoint's temporal filters (table + verdict)",
        description="Dominant tempo and periodicity of each 1×n temporal filter of a "
                    "checkpoint, compared with untrained filters of the same shape, plus "
                    "click/drum probes at 60-224 BPM (Pons et al. 2016, §3).",
    )
    p.add_argument("checkpoint", metavar="CHECKPOINT", help="a .safetensors checkpoint")
    p.add_argument("--json", action="store_true", help="print the table and verdict as JSON")
    p.add_argument("--no-probes", dest="probes", action="store_false",
                   help="skip the click/drum probes (no most-active class, faster)")
    p.add_argument("--probe-step", type=float, default=2.0, metavar="BPM",
                   help="BPM step of the probe sweep over 60-224 (default 2)")
    p.add_argument("--data", metavar="DATA_DIR", default=None,
                   help="most-active class over this data set's patches (first 10 tracks "
                        "per class) instead of over the probes")
    p.add_argument("--tempi", metavar="DATA_DIR", default=None,
                   help="match against this data set's annotated tempi (e.g. a SynthBallroom "
                        "folder: exact tempi) instead of the shipped Ballroom table")
    p.set_defaults(run=run)


def _clean(value):
    """JSON-able: NaN → None, numpy scalars → Python."""
    if isinstance(value, float) and math.isnan(value):
        return None
    if hasattr(value, "item") and not isinstance(value, (list, dict, str)):
        return _clean(value.item())
    return value


def _format_rows(table) -> str:
    head = f"{'filter':>6} {'bpm':>7} {'strength':>8} {'p':>7} {'tuned':>5} {'strict':>6}  " \
           f"{'most active':<14} candidates (bpm:strength)"
    lines = [head]
    for row in table.itertuples(index=False):
        bpm = "-" if math.isnan(row.bpm) else f"{row.bpm:.1f}"
        cands = " ".join(f"{b:.0f}:{s:.2f}" for b, s in row.candidates)
        lines.append(f"{row.filter:>6} {bpm:>7} {row.strength:>8.3f} {row.p_value:>7.3f} "
                     f"{'yes' if row.significant else 'no':>5} "
                     f"{'yes' if row.beyond_smooth else 'no':>6}  "
                     f"{row.most_active or '-':<14} {cands}")
    return "\n".join(lines)


def run(args) -> int:
    # torch and the model stack load only when the command runs: `--help` stays fast.
    from tfcnn.checkpoint import load_checkpoint
    from tfcnn.interpret import (class_tempi, dataset_class_activations, filter_table,
                                 tempo_study)

    if not args.probe_step > 0:
        raise ConfigError(f"--probe-step must be > 0 BPM, got {args.probe_step}")
    checkpoint = load_checkpoint(Path(args.checkpoint))
    # an explicit --tempi folder without annotations is an error here (DatasetError)
    tempi = class_tempi(args.tempi) if args.tempi else None
    lo, hi = BALLROOM_BPM_RANGE
    study = tempo_study(checkpoint, tempi=tempi, with_probes=args.probes,
                        probe_bpms=tuple(np.arange(lo, hi + 1e-9, args.probe_step)),
                        ranges_name="data-set" if args.tempi else "Ballroom")
    if args.data and study.table is not None:
        acts = dataset_class_activations(checkpoint, args.data)
        table = filter_table(checkpoint, activations=acts, baseline=study.baseline)
        study = replace(study, table=table)
    if study.table is None:
        # no temporal filters: say so (the verdict explains) rather than print an empty table
        if args.json:
            print(json.dumps({"checkpoint": str(args.checkpoint), "arch": study.arch,
                              "filters": [], "verdict": study.verdict}, indent=2))
        else:
            print(study.verdict)
        return 0
    if args.json:
        rows = [{k: _clean(v) for k, v in row.items()}
                for row in study.table.to_dict(orient="records")]
        print(json.dumps({
            "checkpoint": str(args.checkpoint),
            "arch": study.arch,
            "baseline": {"quantile": study.baseline.quantile,
                         "threshold": study.baseline.threshold,
                         "n_filters": int(len(study.baseline.strengths))},
            "filters": rows,
            "verdict": study.verdict,
        }, indent=2))
    else:
        print(_format_rows(study.table))
        print(f"verdict: {study.verdict}")
    return 0
