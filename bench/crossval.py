"""Cross-validation: all folds trained together (tfcnn.parallel) vs one after another.

On the Ballroom-sized synthetic feature set (:mod:`bench.synthetic`; by default a subset of
its tracks to bound the time on a CPU, stated in the output), for each architecture: the
same folds, seeds and epochs trained by ``train_fold`` fold after fold (the baseline, with
torch's threads, and with ``--baseline-threads 1`` also on one thread) and by
``train_folds_parallel`` (the kernel chosen for the architecture on its default schedule; on
a CPU also on one lane, the schedule before lanes; optionally the generic ``vmap`` kernel to
show what the banded rewrite adds, and ``--amp``). Prints the wall and CPU time ratios, the
patches per second summed over folds, and the per-fold validation accuracies side by side
(random labels: chance, ≈ 12.5 %, on all; the tests check agreement on learnable data).

Targets on a 2-core CPU: ``time`` ≥ 4×, ``timefreq`` ≥ 3× faster than sequential.

Run with ``python -m bench crossval`` or, with options,
``python -m bench.crossval --arch time --tracks 698 --epochs 1 --device cuda``.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time

import numpy as np
import torch

from bench.synthetic import BALLROOM_TRACKS, ballroom_sized_features, bench_config, fold_datas
from tfcnn.models import build_model
from tfcnn.banded import amp_product_dtype
from tfcnn.parallel import KERNELS, choose_kernel, fold_schedule, train_folds_parallel
from tfcnn.device import select_device
from tfcnn.fold_training import train_fold
from tfcnn.threads import torch_threads

#: Targets (parallel vs sequential wall time, 10 folds, a 2-core CPU).
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


def bench_arch(arch: str, datas, config, device: torch.device, kernels: list[str],
               amp: bool = False, repeat: int = 1, baseline_threads: int | None = None
               ) -> dict:
    """Time sequential vs parallel training of all folds; returns times and accuracies.

    With ``amp`` the chosen parallel kernel is also timed under ``config.amp`` (bfloat16
    products where they pay, :func:`tfcnn.banded.amp_product_dtype`); the sequential
    baseline stays float32. With ``repeat`` > 1 the modes run in turn that many times and
    each keeps its fastest run (a shared machine's noise only ever adds time).

    Returns
    -------
    dict
        ``{mode: (results, wall_s, cpu_s)}``, "sequential" first.
    """
    def sequential(threads: int | None = None):
        def run():
            models = _fresh_models(arch, datas, device)
            with torch_threads(threads or torch.get_num_threads()):
                return [train_fold(m, d, config, device=device) for m, d in zip(models, datas)]
        return run

    def parallel(kernel, run_config, lanes=None):
        def run():
            models = _fresh_models(arch, datas, device)
            return train_folds_parallel(models, datas, run_config, device=device, kernel=kernel,
                                        lanes=lanes)
        return run

    modes = {"sequential": sequential()}
    if baseline_threads:
        modes[f"sequential/{baseline_threads}thr"] = sequential(baseline_threads)
    for kernel in kernels:
        name = choose_kernel(build_model(arch, 8), device, kernel)
        if f"{name} (parallel)" in modes or name == "loop":
            continue  # same as a kernel already timed (or the sequential loop itself)
        modes[f"{name} (parallel)"] = parallel(kernel, config)
        if fold_schedule(name, device, len(datas)).lanes > 1:
            modes[f"{name}/1lane"] = parallel(kernel, config, lanes=1)
    if amp:
        modes["amp (parallel)"] = parallel("auto", dataclasses.replace(config, amp=True))
    rows: dict = {}
    for _ in range(max(1, repeat)):
        for name, run in modes.items():
            timed = _timed(run, device)
            if name not in rows or timed[1] < rows[name][1]:
                rows[name] = timed
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
    parser.add_argument("--amp", action="store_true",
                        help="also time the parallel kernel with --amp (bfloat16 products on "
                             "CUDA and on CPUs with native bf16)")
    parser.add_argument("--repeat", type=int, default=1,
                        help="run each mode this many times in turn and keep its fastest "
                             "(default 1)")
    parser.add_argument("--baseline-threads", type=int, default=None, metavar="N",
                        help="also time the sequential baseline on N torch threads (1: the "
                             "best the old code does on a busy machine)")
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
    if args.amp:
        dtype = amp_product_dtype(device, dataclasses.replace(config, amp=True))
        print(f"--amp: banded products in {dtype or 'float32 (no native bfloat16 here)'}")
    for arch in args.arch:
        rows = bench_arch(arch, datas, config, device, args.kernels, args.amp,
                          args.repeat, args.baseline_threads)
        seq, seq_wall, seq_cpu = rows["sequential"]
        patches = sum(n_train) * args.epochs
        print(f"\n{arch}: {'how':<22} {'wall s':>8} {'cpu s':>8} {'wall ×':>7} {'cpu ×':>7} "
              f"{'patches/s':>10}")
        for name, (_, wall, cpu) in rows.items():
            print(f"{'':{len(arch) + 1}} {name:<22} {wall:8.1f} {cpu:8.1f} "
                  f"{seq_wall / wall:7.2f} {seq_cpu / cpu:7.2f} {patches / wall:10.0f}")
        target = TARGETS.get(arch)
        if target is not None:
            verdicts = [f"{name.split(' ')[0]} {seq_wall / wall:.2f}× "
                        f"{'met' if seq_wall / wall >= target else 'NOT met'}"
                        for name, (_, wall, _) in rows.items()
                        if not name.startswith("sequential")]
            print(f"{'':{len(arch) + 1}} target ≥ {target:.0f}× (issue 6): "
                  + "; ".join(verdicts))
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
