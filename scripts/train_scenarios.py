"""Generate the SynthBallroom scenarios, cross-validate architectures on each with one or more
seeds, and write the scenario × architecture Table 1 to ``checkpoints/table1-scenarios.json``
(``make scenarios``).

The committed recipe: scenarios ``paper``, ``tempo``, ``rhythm``, ``timbre``, ``shuffled``
(``tfcnn.synth.scenarios``), each generated into ``<data-root>/synth-<scenario>``
(``synth-ballroom`` for ``paper``); architectures ``time``, ``frequency``, ``timefreq``;
10-fold cross-validation, ``quick`` preset, ``clean`` protocol, training seeds ``--seeds``
(each seed also draws its folds; the lab pools a cell's seeds as corrected repeated k-fold
cross-validation and shows their spread). Each run goes to
``<runs>/<scenario>-<arch>-s<seed>/``.
Seed by seed, the cheap architectures run first on every scenario, and the table is rewritten
after every run, so an interrupted session still leaves every finished cell. Re-running
continues unfinished runs and skips finished ones.

When ``paper`` is among the scenarios, the ``conflict`` set (one dance's tempo, a second's
rhythm, a third's sounds per track) is generated at the same size, from another data seed
(fresh tempi and render seeds), and every fold model of every ``paper`` run predicts it; so
do the single-cue scenarios' models, as controls. The table's ``conflict`` entry says, per
architecture, which cue the predictions follow (:mod:`tfcnn.cue_conflict`).

    python -m scripts.train_scenarios --per-class 60 --seeds 0,1,2
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
    p.add_argument("--seeds", default="0",
                   help="comma-separated training seeds, one cross-validation each (default 0; "
                        "the lab's recipe: 0,1,2)")
    p.add_argument("--data-seed", type=int, default=0, help="seed of the generated sets")
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
    p.add_argument("--no-conflict", action="store_true",
                   help="skip the conflict set and its evaluation by the paper models")
    return p


def _names(text: str, valid, what: str) -> list[str]:
    from tfcnn.errors import ConfigError

    names = [n.strip() for n in text.split(",") if n.strip()]
    bad = [n for n in names if n not in valid]
    if bad or not names:
        raise ConfigError(f"unknown {what}(s) {bad or text!r}; valid: {', '.join(valid)}")
    return names


#: Recipe fields that must agree for a previous table's cells to stay beside new ones.
_RECIPE_KEYS: tuple[str, ...] = ("per_class", "seconds", "n_folds", "preset", "protocol",
                                 "data_seed", "epochs")


#: The conflict set is drawn with ``--data-seed`` plus this, so its tempi and render seeds are
#: fresh draws, not those of the paper tracks the models trained on.
CONFLICT_SEED_OFFSET = 1000


def run_dir(args, scenario: str, arch: str, seed: int) -> Path:
    """A cell's run folder for one seed."""
    return Path(args.runs) / f"{scenario}-{arch}-s{seed}"


def _seeds(text: str) -> list[int]:
    from tfcnn.errors import ConfigError

    try:
        seeds = [int(s) for s in text.split(",") if s.strip()]
    except ValueError:
        raise ConfigError(f"--seeds must be comma-separated integers, got {text!r}") from None
    if not seeds or min(seeds) < 0 or len(set(seeds)) != len(seeds):
        raise ConfigError(f"--seeds must be distinct integers >= 0, got {text!r}")
    return seeds


def _keep_previous_cells(previous: dict, args, rows: list[dict], runs: dict, archs: list[str],
                         scenarios: list[str], seeds: list[int]
                         ) -> tuple[list[dict], dict, list[str], list[str], list[int]]:
    """Keep the cells of ``previous`` that this invocation has no run folder for.

    A column (``--archs timefreq``) or a seed (``--seeds 3``) can then be added after the
    other cells' run folders are gone. Only a previous table made with the same recipe
    contributes; a cell with a run folder here is always rebuilt from that folder.
    """
    recipe = previous.get("recipe") or {}
    if any(recipe.get(k) != _recipe(args)[k] for k in _RECIPE_KEYS):
        return rows, runs, archs, scenarios, seeds
    have = {(r["scenario"], r["arch"], r["seed"]) for r in rows}
    kept = [r for r in previous.get("rows", [])
            if (r.get("scenario"), r.get("arch"), r.get("seed")) not in have]
    kept_runs = {k: v for k, v in (previous.get("runs") or {}).items()
                 if k not in {f"{sc}/{a}/s{s}" for sc, a, s in have}}
    all_archs = list(dict.fromkeys([*recipe.get("archs", []), *archs]))
    all_scenarios = list(dict.fromkeys([*recipe.get("scenarios", []), *scenarios]))
    all_seeds = sorted({*recipe.get("seeds", []), *seeds})
    return kept + rows, {**kept_runs, **runs}, all_archs, all_scenarios, all_seeds


def _recipe(args) -> dict:
    return {"per_class": args.per_class, "seconds": args.seconds, "n_folds": args.folds,
            "preset": args.preset, "protocol": args.protocol, "data_seed": args.data_seed,
            "epochs": args.epochs}


def write_table(args, *, scenarios: list[str], archs: list[str], seeds: list[int], sets: dict,
                device, conflict: dict | None = None) -> dict:
    """Collect every finished (or partly finished) run into the table and write it."""
    from tfcnn.runs import read_results
    from tfcnn.result_sets import TableFile, table_row_of_run

    rows, runs = [], {}
    for seed in seeds:
        for arch in archs:
            for sc in scenarios:
                out = run_dir(args, sc, arch, seed)
                row = (table_row_of_run(out, scenario=sc, seed=seed)
                       if (out / "config.json").is_file() else None)
                if row is None:
                    continue
                rows.append(row)
                runs[f"{sc}/{arch}/s{seed}"] = read_results(out)
    previous = TableFile.read(args.out).content
    rows, runs, archs, scenarios, seeds = _keep_previous_cells(previous, args, rows, runs,
                                                               archs, scenarios, seeds)
    if conflict is None and all((previous.get("recipe") or {}).get(k) == v
                                for k, v in _recipe(args).items()):
        conflict = previous.get("conflict")
    table = TableFile.of_runs(
        label=LABEL,
        note="Accuracies on SynthBallroom scenarios, synthetic data sets in which the cue "
             "that separates the classes is known (tfcnn.synth.scenarios); not comparable "
             "to the paper's Ballroom figures." + (f" {args.note}" if args.note else ""),
        recipe={"command": "python -m scripts.train_scenarios --per-class "
                           f"{args.per_class} --seconds {args.seconds:g} --seeds "
                           f"{','.join(str(s) for s in seeds)}",
                "scenarios": scenarios, "archs": archs, "seeds": seeds, **_recipe(args),
                "default_size": args.per_class == 60 and args.seconds == 30.0},
        rows=rows, runs=runs, device=device, scenarios=sets,
        **({"conflict": conflict} if conflict else {}))
    table.write(args.out)
    return table.content


#: Controls of the conflict measurement: models trained where one cue alone separates the
#: classes should follow that cue (labelled "<arch> trained on <scenario>").
CONFLICT_CONTROLS: tuple[str, ...] = ("tempo", "rhythm", "timbre")


def conflict_report(args, *, archs: list[str], seeds: list[int], device) -> dict | None:
    """Every fold model of every ``paper`` run predicts the conflict set, and so do the
    single-cue scenarios' models as controls (None: no paper run)."""
    from tfcnn.cue_conflict import evaluate_conflict, models_by_arch
    from tfcnn.synth.scenarios import scenario_dirname

    models = {}
    for sc in ("paper", *CONFLICT_CONTROLS):
        folders = [run_dir(args, sc, arch, seed) for arch in archs for seed in seeds]
        folders = [f for f in folders if (f / "results.json").is_file()]
        if sc == "paper" and not folders:
            return None
        for arch, paths in (models_by_arch(folders) if folders else {}).items():
            models[arch if sc == "paper" else f"{arch} trained on {sc}"] = paths
    return evaluate_conflict(models, Path(args.data_root) / scenario_dirname("conflict"),
                             device=str(device))


def main(argv: list[str] | None = None) -> int:
    from tfcnn.commands.train import fold_end_line
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
        seeds = _seeds(args.seeds)
        device = select_device(args.device)
        if args.threads is not None:
            if args.threads < 1:
                raise ConfigError(f"--threads must be >= 1, got {args.threads}")
            import torch

            torch.set_num_threads(args.threads)
        with_conflict = "paper" in scenarios and not args.no_conflict
        sets = dict(TableFile.read(args.out).content.get("scenarios", {}))
        for sc in scenarios + (["conflict"] if with_conflict else []):
            folder = Path(args.data_root) / scenario_dirname(sc)
            entry = dict(sets.get(sc, {}))
            if not args.table_only:
                start = time.perf_counter()
                generate(folder, scenario=sc, per_class=args.per_class, seconds=args.seconds,
                         seed=args.data_seed + (CONFLICT_SEED_OFFSET if sc == "conflict" else 0),
                         workers=args.workers, progress=not args.quiet)
                wall = time.perf_counter() - start
                if wall > 5.0 or "generation_wall_s" not in entry:  # keep the real render time
                    entry["generation_wall_s"] = wall
            if (folder / "metadata.csv").is_file():
                dataset = load_dataset(folder)
                entry.update(dataset=dataset.name, folder=str(folder),
                             n_tracks=dataset.n_tracks, cue=SCENARIOS[sc].cue)
            sets[sc] = entry
        table_args = dict(scenarios=scenarios, archs=archs, seeds=seeds, sets=sets,
                          device=device)
        write_table(args, **table_args)
        for seed in seeds:
            for arch in archs:
                for sc in scenarios if not args.table_only else []:
                    out = run_dir(args, sc, arch, seed)
                    resume = (out / "config.json").is_file()
                    print(f"== {sc} / {arch} / seed {seed} -> {out}"
                          f"{' (resuming)' if resume else ''}", file=sys.stderr)
                    request = RunRequest(
                        Path(args.data_root) / scenario_dirname(sc), arch=arch,
                        n_folds=args.folds, preset=args.preset, protocol=args.protocol,
                        device=str(device), seed=seed, epochs=args.epochs)
                    results = train_run(request, out, resume=resume,
                                        progress=None if args.quiet else fold_end_line)
                    print(f"{sc} / {arch} / seed {seed}: {results['mean']:.2f} ± "
                          f"{results['std']:.2f} % ({results.get('wall_s', 0):.0f} s)",
                          file=sys.stderr)
                    write_table(args, **table_args)
        conflict = conflict_report(args, archs=archs, seeds=seeds, device=device) if (
            with_conflict and (Path(args.data_root) / scenario_dirname("conflict")
                               / "metadata.csv").is_file()) else None
        table = write_table(args, **table_args, conflict=conflict)
        print(matrix_text(matrix_cells(TableFile(table).result_sets())))
        if conflict:
            from tfcnn.cue_conflict import CueShares, format_report

            print(format_report(conflict, [CueShares.from_dict(a)
                                           for a in conflict["architectures"]]))
    except TfcnnError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
