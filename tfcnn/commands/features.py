"""``python -m tfcnn features DATA_DIR [--workers 2] [--prune]``: build the feature cache of a
data set (and drop the entries of files that changed or went)."""

from __future__ import annotations

import argparse
import signal
import time
from pathlib import Path

from tfcnn.config import FRONT_END
from tfcnn.locations import DEFAULT_DATA_DIR


def add_parser(subparsers) -> None:
    p = subparsers.add_parser(
        "features",
        help="compute and cache the log-mel features of a data set",
        description="Decode every track and compute its 40-band log-mel (paper §2) once; the "
                    "cache lives in DATA_DIR/.tfcnn-cache and is reused by train and the app.",
    )
    p.add_argument("data_dir", nargs="?", type=Path, default=DEFAULT_DATA_DIR, metavar="DATA_DIR",
                   help=f"data set folder (default: {DEFAULT_DATA_DIR})")
    p.add_argument("--workers", type=int, default=2,
                   help="processes decoding and computing in parallel (default: 2)")
    p.add_argument("--prune", action="store_true",
                   help="afterwards delete cache entries of files that were edited, replaced "
                        "or removed (and leftovers of interrupted writes)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(run=run)


def _interrupt(signum, frame) -> None:
    raise KeyboardInterrupt  # the pool's clean-up path stops its workers, then exit 130


def run(args: argparse.Namespace) -> int:
    # SIGTERM unwinds like Ctrl-C, so the worker pool is shut down, not orphaned.
    signal.signal(signal.SIGTERM, _interrupt)
    # pandas and tqdm load when the command runs, not for `features --help`.
    from tqdm import tqdm

    from tfcnn.datasets import describe, load_dataset

    dataset = load_dataset(args.data_dir)
    # torch loads only once the data set reads: a bad folder fails fast, `--help` stays fast.
    from tfcnn.cache import (
        cache_state,
        load_features,
        prune_cache,
    )
    info = describe(dataset)
    print(f"{info['name']} ({info['kind']}): {info['n_tracks']} tracks, "
          f"{info['n_classes']} classes at {dataset.root}")
    for line in dataset.report:
        print(f"  {line}")
    n_cached, n_total = cache_state(dataset, front_end=FRONT_END)
    start = time.perf_counter()
    # No tqdm monitor thread: a single-threaded process may fork its workers (tfcnn.cache).
    tqdm.monitor_interval = 0
    with tqdm(total=n_total, unit="track", desc="log-mel", disable=args.quiet) as bar:
        def progress(done: int, total: int) -> None:
            bar.update(done - bar.n)

        features = load_features(dataset, front_end=FRONT_END, workers=args.workers,
                                 progress=progress)
    seconds = time.perf_counter() - start
    frames = sum(s.shape[1] for s in features.specs)
    patches = sum(s.shape[1] // FRONT_END.patch_frames for s in features.specs)
    print(f"computed {features.n_computed}, reused {n_total - features.n_computed} "
          f"(cached before: {n_cached}/{n_total}) in {seconds:.1f} s")
    print(f"{frames} frames = {frames / FRONT_END.frame_rate_hz / 60:.1f} min of audio, "
          f"{patches} patches of {FRONT_END.patch_frames} frames; cache: {features.cache_dir}")
    if args.prune:
        n_files, n_bytes = prune_cache(dataset, front_end=FRONT_END)
        print(f"pruned {n_files} stale cache entries ({n_bytes / 1e6:.1f} MB)")
    return 0
