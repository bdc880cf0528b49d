"""``python -m tfcnn filters CHECKPOINT [--json]`` / ``filters RUN_DIR --growth``.

Do the temporal filters learn tempo, and does the model use it? Prints one row per 1×n
temporal filter (tempo with its interval, periodicity strength, p and FDR q against smooth
noise, strongest probe tempo, tuned, class ranges overlapped) and the verdict, one line per
question (Pons et al. 2016, §3): probe → class; with ``--functional`` the tempo
counterfactual and the filter ablation; the filter and bank tests with their power. With
``--growth`` on a run folder trained with ``--snapshots``: the verdict's figures per epoch.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np

from tfcnn.config import BALLROOM_BPM_RANGE
from tfcnn.errors import ConfigError


def add_parser(subparsers) -> None:
    p = subparsers.add_parser(
        "filters",
        help="tempo study of a checkpoint's temporal filters (table + graded verdict)",
        description="Tempo (with its interval) and periodicity of each 1×n temporal filter, "
                    "tested against noise as smooth as the filter; click, drum (4/4) and "
                    "waltz (3/4) probes at 60-224 BPM (Pons et al. 2016, §3).",
    )
    p.add_argument("checkpoint", metavar="CHECKPOINT",
                   help="a .safetensors checkpoint (a run folder with --growth)")
    p.add_argument("--json", action="store_true", help="print the table and verdict as JSON")
    p.add_argument("--growth", action="store_true",
                   help="CHECKPOINT is a run folder: the verdict at each training snapshot")
    p.add_argument("--no-probes", dest="probes", action="store_false",
                   help="skip the probes (no tuning test, no most-active class; faster)")
    p.add_argument("--probe-step", type=float, default=2.0, metavar="BPM",
                   help="BPM step of the probe sweep over 60-224 (default 2)")
    p.add_argument("--data", metavar="DATA_DIR", default=None,
                   help="most-active class over this data set's patches (first 10 tracks "
                        "per class) instead of over the probes")
    p.add_argument("--functional", action="store_true",
                   help="also run the tempo counterfactual (SynthBallroom tracks re-rendered "
                        "at other tempi) and the filter ablation (about a minute)")
    p.add_argument("--functional-tracks", type=int, default=2, metavar="N",
                   help="fresh tracks per class for --functional (default 2)")
    p.add_argument("--stretch", nargs="+", metavar="AUDIO", default=None,
                   help="tempo counterfactual on your own tracks: each time-stretched (pitch "
                        "kept) to every class tempo and predicted")
    p.add_argument("--tempi", metavar="DATA_DIR", default=None,
                   help="match against this data set's annotated tempi (e.g. a SynthBallroom "
                        "folder: exact tempi) instead of the shipped Ballroom table")
    p.set_defaults(run=run)


def _format_rows(table) -> str:
    from tfcnn.interpret.report import tempo_label  # the study's imports stay off --help

    head = (f"{'filter':>6} {'tempo (BPM, interval)':<24} {'strength':>8} {'p':>6} {'q':>6} "
            f"{'periodic':>8} {'probe':>5} {'tuned':>5}  {'most active':<14} class ranges")
    lines = [head]
    for r in table.itertuples(index=False):
        tuned = "-" if r.tuned is None else ("yes" if r.tuned else "no")
        probe = "-" if math.isnan(r.best_probe_bpm) else f"{r.best_probe_bpm:.0f}"
        tempo = tempo_label(r.peak_bpm, r.bpm_low, r.bpm_high, strength=r.strength)
        lines.append(f"{r.filter:>6} {tempo:<24} "
                     f"{r.strength:>8.3f} {r.p_value:>6.3f} {r.q_value:>6.3f} "
                     f"{'yes' if r.periodic else 'no':>8} {probe:>5} {tuned:>5}  "
                     f"{r.most_active or '-':<14} {', '.join(r.classes) or '-'}")
    return "\n".join(lines)


def _probes_record(probes) -> dict | None:
    if probes is None:
        return None
    return {"bpms": probes.bpms.tolist(), "kinds": list(probes.kinds),
            "meters": [f"{m}/4" for m in probes.meters],
            "predicted": {kind: [probes.classes[int(c)] for c in probes.predicted[k]]
                          for k, kind in enumerate(probes.kinds)}}


def _stretch(paths, checkpoint_path, ranges):
    """The time-stretch counterfactual of ``paths`` (decoded and checked as ``predict``
    does: a bad file stops with one line naming it)."""
    from tfcnn.checkpoint import load_checkpoint
    from tfcnn.inference import predict
    from tfcnn.interpret.stretch import stretch_counterfactual

    checkpoint = load_checkpoint(Path(checkpoint_path))
    predictions = [predict(p, checkpoint) for p in paths]
    return stretch_counterfactual(checkpoint, [p.log_mel for p in predictions],
                                  [Path(p).name for p in paths], ranges)


def run(args) -> int:
    # torch and the model stack load only when the command runs: `--help` stays fast.
    from tfcnn.checkpoint import load_checkpoint
    from tfcnn.interpret import (cached_study, class_tempi, dataset_class_activations,
                                 growth_table, tempo_study)
    from tfcnn.interpret import report

    if args.functional_tracks < 1:
        raise ConfigError(f"--functional-tracks must be >= 1, got {args.functional_tracks}")
    if not args.probe_step > 0:
        raise ConfigError(f"--probe-step must be > 0 BPM, got {args.probe_step}")
    # an explicit --tempi folder without annotations is an error here (DatasetError)
    tempi = class_tempi(args.tempi) if args.tempi else None
    lo, hi = BALLROOM_BPM_RANGE
    params = dict(with_probes=args.probes, ranges_name="data-set" if args.tempi else "Ballroom",
                  functional=args.functional, functional_tracks=args.functional_tracks,
                  probe_bpms=tuple(float(b) for b in np.arange(lo, hi + 1e-9, args.probe_step)))
    if args.growth:
        growth = growth_table(args.checkpoint, tempi=tempi, **params)
        if args.json:
            print(json.dumps({"run": str(args.checkpoint),
                              "growth": report.plain_records(growth)}, indent=2))
        else:
            print(report.growth_text(growth))
        return 0
    if args.data:
        checkpoint = load_checkpoint(Path(args.checkpoint))
        study = tempo_study(checkpoint, tempi=tempi,
                            activations=dataset_class_activations(checkpoint, args.data),
                            **params)
    else:
        load_checkpoint(Path(args.checkpoint))      # a bad file fails here, with its name
        study = cached_study(args.checkpoint, tempi=tempi, **params)
    lines = report.study_text(study)
    stretch = None
    if args.stretch:
        stretch = _stretch(args.stretch, args.checkpoint, study.ranges)
        lines = lines + [report.stretch_line(stretch)]
    if args.json:
        print(json.dumps({
            "checkpoint": str(args.checkpoint), "arch": study.arch,
            "filters": [] if study.table is None else report.table_records(study.table),
            "verdict": (None if study.verdict is None
                        else report.verdict_record(study.verdict, study.functional)),
            "functional": report.functional_record(study.functional),
            "stretch": None if stretch is None else report.counterfactual_record(stretch),
            "text": lines,
            "probes": _probes_record(study.probes),
        }, indent=2))
        return 0
    if study.table is not None:
        print(_format_rows(study.table))
    for line in lines:
        print(f"verdict: {line}")
    return 0
