"""Cross-validation: all folds trained together (tfcnn.parallel) vs one after another.

On the Ballroom-sized synthetic feature set (:mod:`bench.synthetic`; by default a subset of
its tracks to bound the time on a CPU, stated in the output), for each architecture: the
same folds, seeds and epochs trained by ``train_fold`` fold after fold (the baseline) and by
``train_folds_parallel`` (the stacked kernel chosen for the architecture, and optionally the
generic ``vmap`` kernel to show what the banded rewrite adds). Prints the wall and CPU time
ratios and the per-fold validation accuracies of both side by side (random labels: chance,
≈ 12.5 %, on both; the tests check agreement on learnable data).

Targets of issue 6 on a 2-core CPU: ``time`` ≥ 4×, ``timefreq`` ≥ 3× faster than sequential.

Run with ``python -m bench crossval`` or, with options,
``python -m bench.crossval --arch time --tracks 698 --epochs 1 --device cuda``.
"""

from __future__ import annotations

import argparse
import sys
import time

import numpy as np
import torch

from bench.synthetic import BALLROOM_TRACKS, ballroom_sized_features, bench_config, fold_datas
from tfcnn.models import build_model
from tfcnn.parallel import KERNELS, choose_kernel, train_folds_parallel
from tfcnn.train import select_device, train_fold

#: Issue 6 targets (parallel vs sequential wall time, 10 folds, this 2-core CPU).
TARGETS = {"time": 4.0, "timefreq": 3.0}


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _fresh_models(arch: str, datas, device) -> list[torch.nn.Module]:
    """One model per fold, initialised with the fold's seed (as train_run does)."""
    models = []
    for data in datas:
        torch.manual_seed(data.seed)
        models.append(build_model(arch, 8).to(device))
    return models


def _timed(fn, device: torch.device) -> tuple[object, float, float]:
    """``fn()``, its wall time and process CPU time (s)."""
    _sync(device)
    wall, cpu = time.perf_counter(), time.process_time()
    out = fn()
    _sync(device)
    return out, time.perf_counter() - wall, time.process_time() - cpu


def bench_arch(arch: str, datas, config, device: torch.device, kernels: list[str]) -> dict:
    """Time sequential vs parallel training of all folds; returns times and accuracies."""
    def sequential():
        models = _fresh_models(arch, datas, device)
        return [train_fold(m, d, config, device=device) for m, d in zip(models, datas)]

    seq, seq_wall, seq_cpu = _timed(sequential, device)
    rows = {"sequential": (seq, seq_wall, seq_cpu)}
    for kernel in kernels:
        name = choose_kernel(build_model(arch, 8), device, kernel)
        if any(k.startswith(name) for k in rows) or name == "loop":
            continue  # same as a kernel already timed (or the sequential loop itself)

        def parallel(kernel=kernel):
            models = _fresh_models(arch, datas, device)
            return train_folds_parallel(models, datas, config, device=device, kernel=kernel)

        rows[f"{name} (parallel)"] = _timed(parallel, device)
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.crossval",
                                     description=__doc__.split("\n")[0])
    parser.add_argument("--arch", nargs="+", default=["time", "timefreq"],
                        help="architectures (default: time timefreq)")
    parser.add_argument("--tracks", type=int, default=80,
                        help=f"tracks of the synthetic set (Ballroom: {BALLROOM_TRACKS}; default "
                             "80, the fewest for 10 stratified folds, to stay near a minute "
                             "per architecture on 2 cores)")
    parser.add_argument("--epochs", type=int, default=1, help="epochs per fold (default 1)")
    parser.add_argument("--folds", type=int, default=10, help="folds (default 10)")
    parser.add_argument("--kernels", nargs="+", default=["auto"], choices=KERNELS,
                        help="parallel kernels to time (default: auto; add vmap to see what "
                             "the banded rewrite adds)")
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda, mps")
    parser.add_argument("--threads", type=int, default=None,
                        help="torch intra-op threads (default: torch's own)")
    args = parser.parse_args(argv or [])

    device = select_device(args.device)
    if args.threads:
        torch.set_num_threads(args.threads)
    config = bench_config(epochs=args.epochs)
    features = ballroom_sized_features(0, n_tracks=args.tracks)
    datas = fold_datas(features, n_folds=args.folds, device=device)
    n_train = [int(d.train_y.shape[0]) for d in datas]
    print(f"device {device}, torch threads {torch.get_num_threads()}; {args.tracks} of "
          f"{BALLROOM_TRACKS} Ballroom-sized tracks (random), {args.folds} folds of "
          f"{min(n_train)}-{max(n_train)} training patches, {args.epochs} epoch(s), batch "
          f"{config.batch_size}, lr {config.lr}")
    for arch in args.arch:
        rows = bench_arch(arch, datas, config, device, args.kernels)
        seq, seq_wall, seq_cpu = rows["sequential"]
        print(f"\n{arch}: {'how':<22} {'wall s':>8} {'cpu s':>8} {'wall ×':>7} {'cpu ×':>7}")
        for name, (_, wall, cpu) in rows.items():
            print(f"{'':{len(arch) + 1}} {name:<22} {wall:8.1f} {cpu:8.1f} "
                  f"{seq_wall / wall:7.2f} {seq_cpu / cpu:7.2f}")
        target = TARGETS.get(arch)
        best = max(seq_wall / wall for name, (_, wall, _) in rows.items() if name != "sequential") \
            if len(rows) > 1 else 1.0
        if target is not None:
            print(f"{'':{len(arch) + 1}} target ≥ {target:.0f}× (issue 6): "
                  f"{'met' if best >= target else 'NOT met'} ({best:.2f}×)")
        names = list(rows)
        print(f"{'':{len(arch) + 1}} last-epoch val accuracy per fold (%):")
        heads = " ".join(f"{n.split(' ')[0]:>10}" for n in names)
        print(f"{'':{len(arch) + 1}} {'fold':>4} {heads}")
        for k in range(len(datas)):
            accs = [rows[n][0][k].history[-1]["val_acc"] for n in names]
            print(f"{'':{len(arch) + 1}} {k:4d} " + " ".join(f"{100 * a:10.1f}" for a in accs))
        means = [np.mean([r.history[-1]["val_acc"] for r in rows[n][0]]) for n in names]
        print(f"{'':{len(arch) + 1}} {'mean':>4} " + " ".join(f"{100 * m:10.1f}" for m in means))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
