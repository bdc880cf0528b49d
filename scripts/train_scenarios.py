"""Generate the SynthBallroom scenarios, cross-validate architectures on each, and write the
scenario × architecture Table 1 to ``checkpoints/table1-scenarios.json`` (``make scenarios``).

The committed recipe: scenarios ``paper``, ``tempo``, ``rhythm``, ``timbre``, ``shuffled``
(``tfcnn.synth.scenarios``), each generated into ``<data-root>/synth-<scenario>``
(``synth-ballroom`` for ``paper``); architectures ``time``, ``frequency``, ``timefreq``;
10-fold cross-validation, ``quick`` preset, ``clean`` protocol, seed 0. Each run goes to
``<runs>/<scenario>-<arch>/``. The cheap architectures run first on every scenario, and the
table is rewritten after every run, so an interrupted session still leaves every finished
cell. Re-running continues unfinished runs and skips finished ones.

    python -m scripts.train_scenarios --per-class 60
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

SCENARIO_ARCHS: tuple[str, ...] = ("time", "frequency", "timefreq")
#: Scenario order: the cues first, the calibrated default last (``table1-synth.json`` has it).
SCENARIO_RUN_ORDER: tuple[str, ...] = ("tempo", "timbre", "shuffled", "rhythm", "paper")
LABEL = "trained on SynthBallroom scenarios (synthetic)"


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m scripts.train_scenarios", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data-root", default="data", help="where the scenario folders go")
    p.add_argument("--scenarios", default=",".join(SCENARIO_RUN_ORDER),
                   help="comma-separated scenarios, in run order")
    p.add_argument("--archs", default=",".join(SCENARIO_ARCHS),
                   help="comma-separated architectures (default: time,frequency,timefreq)")
    p.add_argument("--per-class", type=int, default=60, help="tracks per dance (default 60)")
    p.add_argument("--seconds", type=float, default=30.0, help="track length (default 30)")
    p.add_argument("--folds", type=int, default=10)
    p.add_argument("--preset", default="quick")
    p.add_argument("--protocol", default="clean")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--epochs", type=int, default=None, help="override (for smoke tests only)")
    p.add_argument("--workers", type=int, default=2, help="generator processes")
    p.add_argument("--device", default="auto")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    p.add_argument("--runs", default="runs/scenarios", help="run folders go here")
    p.add_argument("--out", default="checkpoints/table1-scenarios.json", help="the table")
    p.add_argument("--note", default="", help="a remark stored in the table (e.g. why the "
                                              "set is smaller than the default)")
    p.add_argument("--quiet", action="store_true")
    p.add_argument("--table-only", action="store_true",
                   help="generate and train nothing: rebuild the table from finished runs")
    return p


def _fold_line(event: dict) -> None:
    """One stderr line per finished fold (the run's progress.jsonl has the details)."""
    if event.get("event") == "fold_end":
        acc = event.get("accuracy")
        print(f"  fold {event['fold']}: {'-' if acc is None else f'{acc:.1f} %'}",
              file=sys.stderr, flush=True)


def _names(text: str, valid, what: str) -> list[str]:
    from tfcnn.errors import ConfigError

    names = [n.strip() for n in text.split(",") if n.strip()]
    bad = [n for n in names if n not in valid]
    if bad or not names:
        raise ConfigError(f"unknown {what}(s) {bad or text!r}; valid: {', '.join(valid)}")
    return names


#: Recipe fields that must agree for a previous table's cells to stay beside new ones.
_RECIPE_KEYS: tuple[str, ...] = ("per_class", "seconds", "n_folds", "preset", "protocol",
                                 "seed", "epochs")


def _keep_previous_cells(previous: dict, args, rows: list[dict], runs: dict, archs: list[str],
                         scenarios: list[str]) -> tuple[list[dict], dict, list[str], list[str]]:
    """Keep the cells of ``previous`` that this invocation has no run folder for.

    A column can then be added (``--archs timefreq``) after the other columns' run folders are
    gone. Only a previous table made with the same recipe contributes; a cell with a run folder
    here is always rebuilt from that folder.
    """
    recipe = previous.get("recipe") or {}
    ours = {"per_class": args.per_class, "seconds": args.seconds, "n_folds": args.folds,
            "preset": args.preset, "protocol": args.protocol, "seed": args.seed,
            "epochs": args.epochs}
    if any(recipe.get(k) != ours[k] for k in _RECIPE_KEYS):
        return rows, runs, archs, scenarios
    have = {(r["scenario"], r["arch"]) for r in rows}
    kept = [r for r in previous.get("rows", []) if (r.get("scenario"), r.get("arch")) not in have]
    kept_runs = {k: v for k, v in (previous.get("runs") or {}).items()
                 if tuple(k.split("/", 1)) not in have}
    all_archs = list(dict.fromkeys([*recipe.get("archs", []), *archs]))
    all_scenarios = list(dict.fromkeys([*recipe.get("scenarios", []), *scenarios]))
    return kept + rows, {**kept_runs, **runs}, all_archs, all_scenarios


def write_table(args, *, scenarios: list[str], archs: list[str], sets: dict,
                device) -> dict:
    """Collect every finished (or partly finished) run into the table and write it."""
    from tfcnn.runs import read_results
    from tfcnn.result_sets import TableFile, table_row_of_run
    from tfcnn.provenance import code_version, machine_info

    rows, runs = [], {}
    for arch in archs:
        for sc in scenarios:
            out = Path(args.runs) / f"{sc}-{arch}"
            row = table_row_of_run(out, scenario=sc) if (out / "config.json").is_file() \
                else None
            if row is None:
                continue
            rows.append(row)
            runs[f"{sc}/{arch}"] = read_results(out)
    rows, runs, archs, scenarios = _keep_previous_cells(TableFile.read(args.out).content, args, rows,
                                                        runs, archs, scenarios)
    table = {
        "label": LABEL,
        "note": "Accuracies on SynthBallroom scenarios, synthetic data sets in which the cue "
                "that separates the classes is known (tfcnn.synth.scenarios); not comparable "
                "to the paper's Ballroom figures." + (f" {args.note}" if args.note else ""),
        "recipe": {"command": "python -m scripts.train_scenarios --per-class "
                              f"{args.per_class} --seconds {args.seconds:g}",
                   "scenarios": scenarios, "archs": archs, "per_class": args.per_class,
                   "seconds": args.seconds, "n_folds": args.folds, "preset": args.preset,
                   "protocol": args.protocol, "seed": args.seed, "epochs": args.epochs,
                   "default_size": args.per_class == 60 and args.seconds == 30.0},
        "code_version": code_version(),
        "machine": machine_info(device),
        "scenarios": sets,
        "total_wall_s": sum(r.get("wall_s") or 0.0 for r in rows),
        "rows": rows,
        "runs": runs,
    }
    TableFile(table).write(args.out)
    return table


def main(argv: list[str] | None = None) -> int:
    from tfcnn.datasets import load_dataset
    from tfcnn.errors import ConfigError, TfcnnError
    from tfcnn.models import ARCHITECTURES
    from tfcnn.synth import generate
    from tfcnn.result_sets import TableFile
    from tfcnn.synth.lab import matrix_cells, matrix_text
    from tfcnn.synth.scenarios import SCENARIOS, scenario_dirname
    from tfcnn.device import select_device
    from tfcnn.request import RunRequest
    from tfcnn.train import train_run

    args = build_parser().parse_args(argv)
    try:
        scenarios = _names(args.scenarios, SCENARIOS, "scenario")
        archs = _names(args.archs, ARCHITECTURES, "architecture")
        device = select_device(args.device)
        if args.threads is not None:
            if args.threads < 1:
                raise ConfigError(f"--threads must be >= 1, got {args.threads}")
            import torch

            torch.set_num_threads(args.threads)
        sets = dict(TableFile.read(args.out).content.get("scenarios", {}))
        for sc in scenarios:
            folder = Path(args.data_root) / scenario_dirname(sc)
            entry = dict(sets.get(sc, {}))
            if not args.table_only:
                start = time.perf_counter()
                generate(folder, scenario=sc, per_class=args.per_class, seconds=args.seconds,
                         seed=args.seed, workers=args.workers, progress=not args.quiet)
                wall = time.perf_counter() - start
                if wall > 5.0 or "generation_wall_s" not in entry:  # keep the real render time
                    entry["generation_wall_s"] = wall
            if (folder / "metadata.csv").is_file():
                dataset = load_dataset(folder)
                entry.update(dataset=dataset.name, folder=str(folder),
                             n_tracks=dataset.n_tracks, cue=SCENARIOS[sc].cue)
            sets[sc] = entry
        write_table(args, scenarios=scenarios, archs=archs, sets=sets, device=device)
        for arch in archs:
            for sc in scenarios if not args.table_only else []:
                out = Path(args.runs) / f"{sc}-{arch}"
                resume = (out / "config.json").is_file()
                print(f"== {sc} / {arch} -> {out}{' (resuming)' if resume else ''}",
                      file=sys.stderr)
                request = RunRequest(
                    Path(args.data_root) / scenario_dirname(sc), arch=arch,
                    n_folds=args.folds, preset=args.preset, protocol=args.protocol,
                    device=str(device), seed=args.seed, epochs=args.epochs)
                results = train_run(request, out, resume=resume,
                                    progress=None if args.quiet else _fold_line)
                print(f"{sc} / {arch}: {results['mean']:.2f} ± {results['std']:.2f} % "
                      f"({results.get('wall_s', 0):.0f} s)", file=sys.stderr)
                write_table(args, scenarios=scenarios, archs=archs, sets=sets, device=device)
        table = write_table(args, scenarios=scenarios, archs=archs, sets=sets, device=device)
        print(matrix_text(matrix_cells(TableFile(table).result_sets())))
    except TfcnnError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
