"""Run the same sweep on each engine and write what it gives: accuracies per grid point ×
seed, mean ± std over seeds per filter shape, and each engine's wall time.

The committed recipe (the temporal filter length question of Pons et al. 2016 §3):

    python -m scripts.sweep_measure data/synth-ballroom

runs ``python -m tfcnn sweep DATA --arch time --time-filter 1x30,1x60,1x80 --seeds 0,1,2
--folds 10 --preset quick --engine local --out OUT/local``, then the same with ``--engine
ray --out OUT/ray``, one after the other (each a subprocess, timed from start to exit), and
writes ``OUT/report.json`` and ``OUT/report.md``. ``--resume`` continues interrupted sweeps
(the wall time is then that of the last invocation, and the report says so).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from tfcnn import launches
from tfcnn.atomic import write_json_atomic, write_text_atomic
from tfcnn.contrasts import cv_test_train_ratio, family_sentence, setting_contrasts
from tfcnn.errors import TfcnnError
from tfcnn.request import RunRequest, SweepRequest
from tfcnn.sweep import grid_rows, read_events, read_spec, seed_summary

ENGINES: tuple[str, ...] = ("local", "ray")
REPORT_JSON, REPORT_MD = "report.json", "report.md"


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m scripts.sweep_measure", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("data", metavar="DATA_DIR", help="data set folder")
    p.add_argument("--out", default="runs/sweep-measure",
                   help="one sweep folder per engine and the report go here")
    p.add_argument("--arch", default="time")
    p.add_argument("--time-filter", default="1x30,1x60,1x80")
    p.add_argument("--seeds", default="0,1,2")
    p.add_argument("--folds", type=int, default=10)
    p.add_argument("--preset", default="quick")
    p.add_argument("--epochs", type=int, default=None, help="override (for smoke tests only)")
    p.add_argument("--device", default="auto")
    p.add_argument("--engines", default=",".join(ENGINES),
                   help="comma-separated, run in this order (default local,ray)")
    p.add_argument("--resume", action="store_true",
                   help="continue the sweeps in --out instead of starting new ones")
    return p


@dataclass(frozen=True)
class EngineRun:
    """One engine's sweep: its folder, exit code and wall times (seconds)."""

    engine: str
    folder: Path
    returncode: int
    process_wall_s: float
    sweep_wall_s: float | None
    resumed: bool


def sweep_command(args: argparse.Namespace, engine: str, folder: Path) -> list[str]:
    """The ``python -m tfcnn sweep`` command line of one engine (:class:`ConfigError` for a
    bad grid)."""
    base = RunRequest(args.data, args.arch, n_folds=args.folds, preset=args.preset,
                      device=args.device, epochs=args.epochs)
    sweep = SweepRequest.from_text(base, grid={"time_filter": args.time_filter},
                                   seeds=args.seeds)
    return [*launches.sweep_command(sweep, folder, engine=engine),
            *(["--resume"] if args.resume else [])]


def run_engine(args: argparse.Namespace, engine: str, out: Path) -> EngineRun:
    """Run the sweep on ``engine`` into ``out/<engine>`` and time it."""
    folder = out / engine
    cmd = sweep_command(args, engine, folder)
    print(" ".join(cmd), file=sys.stderr, flush=True)
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, stdout=sys.stderr)  # the sweep's table goes to our log
    wall = time.perf_counter() - t0
    ends = [e for e in read_events(folder) if e.get("event") == "sweep_end"]
    return EngineRun(engine=engine, folder=folder, returncode=proc.returncode,
                     process_wall_s=wall, sweep_wall_s=ends[-1].get("wall_s") if ends else None,
                     resumed=args.resume)


def engine_report(run: EngineRun) -> dict:
    """What one engine's sweep gave: wall times, per grid point × seed, per setting."""
    rows = grid_rows(run.folder) if (run.folder / "sweep.json").is_file() else []
    spec = read_spec(run.folder) if rows else None
    params = [name for name, _ in spec.grid] if spec else []
    contrasts = (setting_contrasts(rows, params, test_train_ratio=cv_test_train_ratio(
        spec.base.n_folds, spec.base.protocol)) if params and spec.base.n_folds >= 3
        else [])
    return {"engine": run.engine, "folder": str(run.folder), "returncode": run.returncode,
            "process_wall_s": round(run.process_wall_s, 2),
            "sweep_wall_s": None if run.sweep_wall_s is None else round(run.sweep_wall_s, 2),
            "resumed": run.resumed, "params": params,
            "points": [{k: row[k] for k in (*params, "seed", "mean", "std", "accuracies",
                                            "n_folds_complete", "n_folds")} for row in rows],
            "summary": seed_summary(rows, params),
            "contrasts": [k.to_dict() for k in contrasts]}


def _pm(mean, std) -> str:
    return "-" if mean is None else f"{mean:.2f} ± {std:.2f} %"


def format_markdown(report: dict) -> str:
    """The report as markdown: wall time per engine, then each engine's grid."""
    lines = [f"Sweep on `{report['data']}`: `{' '.join(report['command'][3:])}` "
             f"({report['cpus']} CPUs, load average {report['load_before']:.1f} before).", "",
             "| engine | sweep wall time (s) | process wall time (s) | exit |",
             "| --- | ---: | ---: | ---: |"]
    for e in report["engines"]:
        sweep_wall = "-" if e["sweep_wall_s"] is None else f"{e['sweep_wall_s']:.1f}"
        lines.append(f"| {e['engine']}{' (resumed)' if e['resumed'] else ''} | {sweep_wall} "
                     f"| {e['process_wall_s']:.1f} | {e['returncode']} |")
    for e in report["engines"]:
        if not e["params"]:
            continue
        seeds = sorted({p["seed"] for p in e["points"]})
        params = e["params"]
        lines += ["", f"**{e['engine']}** (song accuracy, mean ± std over each seed's folds; "
                      "last column: mean ± std over seeds)", "",
                  "| " + " | ".join([*params, *(f"seed {s}" for s in seeds),
                                     "over seeds"]) + " |",
                  "| " + " | ".join(["---"] * (len(params) + len(seeds) + 1)) + " |"]
        for setting in e["summary"]:
            cells = [str(setting[p]) for p in params]
            for s in seeds:
                point = next(p for p in e["points"] if p["seed"] == s
                             and all(p[k] == setting[k] for k in params))
                cells.append(_pm(point["mean"], point["std"]))
            cells.append(_pm(setting["mean"], setting["seed_std"]))
            lines.append("| " + " | ".join(cells) + " |")
        if e.get("contrasts"):
            lines += ["", "| A − B | difference | 95 % CI (alone) | simultaneous CI | p (Holm) "
                          "| verdict (family) | detects (80 %) |",
                      "| --- | ---: | --- | --- | ---: | --- | ---: |"]
            for k in e["contrasts"]:
                lines.append(f"| {k['a']} − {k['b']} | {k['difference']:+.1f} | "
                             f"{k['ci95'][0]:+.1f} to {k['ci95'][1]:+.1f} | "
                             f"{k['simultaneous_ci'][0]:+.1f} to {k['simultaneous_ci'][1]:+.1f}"
                             f" | {k['p_holm']:.3g} | {k['verdict']} | {k['mdd']:.1f} |")
            lines += ["", family_sentence(len(e["contrasts"]))]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    engines = [e.strip() for e in args.engines.split(",") if e.strip()]
    unknown = [e for e in engines if e not in ENGINES]
    if unknown or not engines:
        print(f"error: unknown engine(s) {unknown or args.engines!r}; valid: "
              f"{', '.join(ENGINES)}", file=sys.stderr)
        return 2
    try:
        command = sweep_command(args, "ENGINE", Path(args.out) / "ENGINE")
    except TfcnnError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    load_before = os.getloadavg()[0]
    runs = [run_engine(args, engine, out) for engine in engines]
    report = {"data": str(args.data), "command": command,
              "cpus": os.cpu_count(), "load_before": load_before,
              "engines": [engine_report(run) for run in runs]}
    write_json_atomic(out / REPORT_JSON, report)
    text = format_markdown(report)
    write_text_atomic(out / REPORT_MD, text)
    print(text, end="")
    return max(run.returncode for run in runs)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
