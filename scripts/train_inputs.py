"""The lab's `rhythm` hypothesis tested on the CNN: the Time architecture trained with each
input option (the paper's 80-frame patch, longer patches with filters as long as a bar, a
tempo-normalised beat-synchronous input) and Frequency with the paper's input, on one
SynthBallroom scenario with the same folds; writes ``checkpoints/inputs-rhythm.json``.

Every run uses the same seed, so the same fold assignment: each variant is compared with the
paper-input Time and with Frequency fold by fold (:func:`tfcnn.compare.compare_scores`:
corrected resampled t, its 95 % interval and the minimum detectable difference at 80 %
power). Runs go to ``<runs>/<variant>/``; a rerun keeps finished runs and resumes the others.

    python -m scripts.train_inputs --data data/synth-rhythm --folds 5
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

#: name → (architecture, RunRequest fields): the paper's Time and Frequency first.
VARIANTS: dict[str, tuple[str, dict]] = {
    "time-p80": ("time", {}),
    "frequency-p80": ("frequency", {}),
    "time-p160-t1x120": ("time", {"patch_frames": 160, "time_filter": (1, 120)}),
    "time-p240-t1x180": ("time", {"patch_frames": 240, "time_filter": (1, 180)}),
    "time-b10-p80": ("time", {"frames_per_beat": 10}),
}
#: The variant every other one is compared with, and the gap the hypothesis is about.
REFERENCE, GAP_TO = "time-p80", "frequency-p80"


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m scripts.train_inputs", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", default="data/synth-rhythm", help="the scenario's data set")
    p.add_argument("--variants", default=",".join(VARIANTS),
                   help=f"comma-separated, in run order (default: {','.join(VARIANTS)})")
    p.add_argument("--folds", type=int, default=5)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--preset", default="quick")
    p.add_argument("--epochs", type=int, default=None, help="override (smoke tests only)")
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    p.add_argument("--runs", default="runs/inputs-rhythm", help="run folders go here")
    p.add_argument("--out", default="checkpoints/inputs-rhythm.json", help="the report")
    p.add_argument("--table-only", action="store_true",
                   help="train nothing: rebuild the report from finished runs")
    return p


def _fold_line(event: dict) -> None:
    if event.get("event") == "fold_end":
        acc = event.get("accuracy")
        print(f"  fold {event['fold']}: {'-' if acc is None else f'{acc:.1f} %'}",
              file=sys.stderr, flush=True)


def train_variants(args, names: list[str]) -> None:
    """Train every variant not finished yet (resuming an interrupted one)."""
    from tfcnn.request import RunRequest
    from tfcnn.runs import read_results
    from tfcnn.train import train_run

    for name in names:
        arch, fields = VARIANTS[name]
        out = Path(args.runs) / name
        if (out / "results.json").is_file() and read_results(out).get("folds"):
            print(f"{name}: finished, kept", file=sys.stderr)
            continue
        request = RunRequest(args.data, arch, n_folds=args.folds, preset=args.preset,
                             protocol="clean", device="cpu", seed=args.seed,
                             epochs=args.epochs, **fields)
        print(f"{name}: training ({' '.join(request.argv()[1:])})", file=sys.stderr, flush=True)
        train_run(request, out, resume=(out / "config.json").is_file(), progress=_fold_line)


def report(args, names: list[str]) -> dict:
    """Each variant's accuracy and its paired comparisons (JSON-able)."""
    from tfcnn.compare import compare_scores
    from tfcnn.provenance import code_version
    from tfcnn.request import RunRequest
    from tfcnn.result_sets import run_results
    from tfcnn.runs import read_config

    sets = {name: run_results(Path(args.runs) / name) for name in names}
    sets = {name: rs for name, rs in sets.items() if rs is not None}
    rows = {}
    for name, rs in sets.items():
        request = RunRequest.from_config(read_config(Path(args.runs) / name))
        row = {"arch": request.arch, "argv": request.argv()[1:], "mean": rs.mean, "std": rs.std,
               "accuracies": list(rs.accuracies), "n_params": rs.n_params,
               "wall_s": rs.wall_s}
        for other in (REFERENCE, GAP_TO):
            if other != name and other in sets:
                row[f"vs {other}"] = compare_scores(rs, sets[other]).to_dict()
        rows[name] = row
    return {"data": str(args.data), "n_folds": args.folds, "seed": args.seed,
            "preset": args.preset, "protocol": "clean", "epochs": args.epochs,
            "command": "python -m scripts.train_inputs " + " ".join(sys.argv[1:]),
            "code_version": code_version(), "variants": rows}


def main(argv: list[str] | None = None) -> int:
    from tfcnn.atomic import write_json_atomic
    from tfcnn.errors import ConfigError, TfcnnError

    args = build_parser().parse_args(argv)
    try:
        names = [n.strip() for n in args.variants.split(",") if n.strip()]
        bad = [n for n in names if n not in VARIANTS]
        if bad or not names:
            raise ConfigError(f"unknown variant(s) {bad or args.variants!r}; valid: "
                              f"{', '.join(VARIANTS)}")
        if not args.table_only:
            import torch

            torch.set_num_threads(args.threads)
            train_variants(args, names)
        write_json_atomic(args.out, report(args, names))
    except TfcnnError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"report: {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
