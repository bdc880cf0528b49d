"""A real 10-fold cross-validation, folds trained together vs one after another.

Where ``bench crossval`` times one epoch on random data, this trains an architecture the way
a user does (``tfcnn.train.train_run``: the preset's epochs, learning-rate halving, early
stop, best-validation model, song-level vote) on a learnable data set (SynthBallroom by
default), once with ``--sequential`` (the baseline), once fold-parallel, and with ``--amp``
once more fold-parallel under AMP. It prints the wall-time ratios and the per-fold test
accuracies side by side with a paired comparison against the sequential run
(:func:`tfcnn.compare.compare_scores`: the difference with its 95 % interval, the Wilcoxon p
and whether the two are equivalent within ±2 points).

About 10 minutes for ``time`` on a 2-core CPU (the sequential run is most of it). Run with
``python -m bench parity`` or ``python -m bench.parity --arch time --data data/synth-ballroom``.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from tfcnn.compare import compare_scores
from tfcnn.locations import default_data_dir
from tfcnn.request import RunRequest
from tfcnn.result_sets import RUN, result_set
from tfcnn.train import train_run

#: The app's data set (``TFCNN_DATA_DIR``), else where ``make run`` generates SynthBallroom.
DEFAULT_DATA = default_data_dir()


def _run(data: Path, arch: str, out_dir: Path, *, folds: int, preset: str, epochs: int | None,
         device: str, sequential: bool, amp: bool) -> tuple[dict, float]:
    """One cross-validation in ``out_dir``; its results and wall time (s)."""
    request = RunRequest(data, arch=arch, n_folds=folds, preset=preset, device=device,
                         epochs=epochs, amp=amp)
    start = time.perf_counter()
    results = train_run(request, out_dir, sequential=sequential)
    return results, time.perf_counter() - start


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.parity",
                                     description=__doc__.split("\n")[0])
    parser.add_argument("--arch", default="time", help="architecture (default time)")
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA,
                        help=f"data set folder (default {DEFAULT_DATA}, made by `make run`)")
    parser.add_argument("--folds", type=int, default=10, help="folds (default 10)")
    parser.add_argument("--preset", default="quick", help="training recipe (default quick)")
    parser.add_argument("--epochs", type=int, default=None,
                        help="override the preset's maximum epochs")
    parser.add_argument("--amp", action="store_true", help="also train fold-parallel with --amp")
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda, mps")
    args = parser.parse_args(argv or [])
    if not args.data.is_dir():
        print(f"bench parity: no data set at {args.data}; run `make run` (or `python -m tfcnn "
              f"synth {args.data}`) first, or pass --data DIR")
        return 1

    modes = {"sequential": dict(sequential=True, amp=False),
             "parallel": dict(sequential=False, amp=False)}
    if args.amp:
        modes["parallel+amp"] = dict(sequential=False, amp=True)
    results, walls = {}, {}
    with tempfile.TemporaryDirectory(prefix="tfcnn-parity-") as tmp:
        for name, mode in modes.items():
            results[name], walls[name] = _run(args.data, args.arch, Path(tmp) / name,
                                              folds=args.folds, preset=args.preset,
                                              epochs=args.epochs, device=args.device, **mode)
            print(f"{name}: {walls[name]:.1f} s", flush=True)

    base = "sequential"
    print(f"\n{args.arch} on {args.data} ({args.folds} folds, preset {args.preset}, "
          f"device {results[base].get('device')}):")
    print(f"{'how':<14} {'wall s':>8} {'×':>6} {'song acc %':>12} {'Wilcoxon p':>11}")
    verdicts = []
    for name, res in results.items():
        acc = f"{res['mean']:.2f} ± {res['std']:.2f}"
        p = ""
        if name != base:
            test = compare_scores(result_set(name, res, source=RUN),
                                  result_set(base, results[base], source=RUN))
            p = "identical" if test.p_wilcoxon is None else f"{test.p_wilcoxon:.3f}"
            verdicts.append(f"{name} − {base}: {test.mean_difference:+.2f} points, 95 % CI "
                            f"[{test.ci95[0]:+.2f}, {test.ci95[1]:+.2f}] (corrected t), "
                            f"verdict: {test.verdict}")
        print(f"{name:<14} {walls[name]:8.1f} {walls[base] / walls[name]:6.2f} {acc:>12} {p:>11}")
    print("\n".join(verdicts))
    print("per-fold song accuracy (%):")
    print("  fold " + " ".join(f"{name:>13}" for name in results))
    for k in range(len(results[base]["per_fold"])):
        print(f"  {k:4d} " + " ".join(f"{res['per_fold'][k]:13.1f}" for res in results.values()))
    print("  mean " + " ".join(f"{np.mean(res['per_fold']):13.1f}" for res in results.values()))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
