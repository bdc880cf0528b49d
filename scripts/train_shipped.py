"""Regenerate the shipped models and Table 1 on SynthBallroom (``make checkpoints``).

The committed recipe: all five architectures (``blackbox``, ``timefreq``, ``time``,
``frequency``, ``timefreq-init``), 10-fold cross-validation, ``quick`` preset, ``clean``
protocol, seed 0, on the default SynthBallroom. Each architecture's run goes to
``runs/shipped-<arch>/``; its fold-0 model is copied to ``checkpoints/synth-<arch>.safetensors``
and the five results to ``checkpoints/table1-synth.json``. Everything is labelled as trained
on SynthBallroom, a synthetic data set: these are demo models, not Ballroom models.

Re-running continues unfinished runs (``--resume`` semantics); ``--fresh`` starts over.

    python -m scripts.train_shipped --data data/synth-ballroom
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

import torch

from tfcnn.atomic import atomic_path
from tfcnn.commands.train import ProgressBars
from tfcnn.config import ARCHS
from tfcnn.device import select_device
from tfcnn.errors import ConfigError, TfcnnError
from tfcnn.locations import (
    CHECKPOINTS_DIR,
    DEFAULT_DATA_DIR,
    DEFAULT_RUNS_DIR,
    REPO_ROOT,
    SHIPPED_TABLE,
)
from tfcnn.request import RunRequest
from tfcnn.result_sets import TableFile, epoch_curves, table_row_of_run
from tfcnn.runs import FOLD_MODEL_FILE, fold_dir, read_results
from tfcnn.table1 import format_table
from tfcnn.train import train_run

LABEL = "trained on SynthBallroom (synthetic)"


def _copy_atomic(src: Path, dst: Path) -> None:
    with atomic_path(dst) as tmp:
        shutil.copyfile(src, tmp)


def _relative(path: Path) -> str:
    """``path`` relative to the repository (how the recipe records it)."""
    return str(path.relative_to(REPO_ROOT))


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m scripts.train_shipped", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", default=_relative(DEFAULT_DATA_DIR), help="SynthBallroom folder")
    p.add_argument("--archs", default=",".join(ARCHS),
                   help="comma-separated architectures (default: all five)")
    p.add_argument("--folds", type=int, default=10)
    p.add_argument("--preset", default="quick")
    p.add_argument("--protocol", default="clean")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--epochs", type=int, default=None, help="override (for smoke tests only)")
    p.add_argument("--device", default="auto")
    p.add_argument("--sequential", action="store_true")
    p.add_argument("--runs", default=_relative(DEFAULT_RUNS_DIR),
                   help="where the runs go (runs/shipped-<arch>)")
    p.add_argument("--checkpoints", default=_relative(CHECKPOINTS_DIR),
                   help="where shipped files go")
    p.add_argument("--fresh", action="store_true",
                   help="delete existing runs/shipped-<arch> folders first")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    p.add_argument("--quiet", action="store_true")
    p.add_argument("--table-only", action="store_true",
                   help="train nothing: rebuild table1-synth.json from finished runs")
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        archs = [a.strip() for a in args.archs.split(",") if a.strip()]
        bad = [a for a in archs if a not in ARCHS]
        if bad or not archs:
            raise ConfigError(f"unknown architecture(s) {bad or args.archs!r}; valid: "
                              f"{', '.join(ARCHS)}")
        device = select_device(args.device)
        if args.threads is not None:
            if args.threads < 1:
                raise ConfigError(f"--threads must be >= 1, got {args.threads}")
            torch.set_num_threads(args.threads)
        runs_root, ckpt_root = Path(args.runs), Path(args.checkpoints)
        # training one architecture keeps the others' rows
        previous = TableFile.read(ckpt_root / SHIPPED_TABLE).content
        rows = {r["arch"]: r for r in previous.get("rows", []) if isinstance(r, dict)}
        results_by_arch = dict(previous.get("runs", {}))
        curves = dict(previous.get("curves", {}))
        for arch in archs:
            out = runs_root / f"shipped-{arch}"
            if args.table_only:
                results = read_results(out)
                if results is None:
                    continue
            else:
                if args.fresh and out.exists():
                    shutil.rmtree(out)
                resume = (out / "config.json").is_file()
                print(f"== {arch} -> {out}{' (resuming)' if resume else ''}", file=sys.stderr)
                bars = ProgressBars(enabled=not args.quiet)
                try:
                    request = RunRequest(args.data, arch=arch, n_folds=args.folds,
                                         preset=args.preset, protocol=args.protocol,
                                         device=str(device), seed=args.seed, epochs=args.epochs)
                    results = train_run(request, out, resume=resume, progress=bars,
                                        sequential=args.sequential)
                finally:
                    bars.close()
            _copy_atomic(fold_dir(out, 0) / FOLD_MODEL_FILE,
                         ckpt_root / f"synth-{arch}.safetensors")
            row = table_row_of_run(out, checkpoint=f"synth-{arch}.safetensors (fold 0)")
            rows[arch] = row
            results_by_arch[arch] = results
            curves[arch] = epoch_curves(out)
            print(f"{arch}: {row['mean']:.2f} ± {row['std']:.2f} % "
                  f"({row['wall_s']:.0f} s)", file=sys.stderr)
        order = [a for a in ARCHS if a in rows]
        # why a row is missing or partial: kept for rows still missing, said for partial rows
        not_retrained = {a: why for a, why in previous.get("not_retrained", {}).items()
                         if a not in rows}
        for arch in order:
            done, planned = rows[arch].get("n_folds_complete"), rows[arch].get("n_folds")
            if done is not None and planned is not None and done < planned:
                not_retrained[arch] = (
                    f"{done} of {planned} folds trained so far; the row and its comparisons "
                    f"use those folds. The rest resume with `python -m scripts.train_shipped "
                    f"--data {args.data} --archs {arch}`.")
        table = TableFile.of_runs(
            label=LABEL,
            note="Models and accuracies from SynthBallroom, a synthetic data set generated "
                 "by tfcnn.synth; not comparable to the paper's Ballroom figures.",
            recipe={"command": "python -m scripts.train_shipped --data " + str(args.data),
                    "archs": list(ARCHS), "n_folds": args.folds, "preset": args.preset,
                    "protocol": args.protocol, "seed": args.seed, "epochs": args.epochs},
            rows=[rows[a] for a in order],
            runs={a: results_by_arch[a] for a in order if a in results_by_arch},
            device=device, curves={a: curves[a] for a in order if a in curves},
            **({"not_retrained": not_retrained} if not_retrained else {}))
        table.write(ckpt_root / SHIPPED_TABLE)
        print(format_table(table.rows))
    except TfcnnError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
