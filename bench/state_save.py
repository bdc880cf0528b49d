"""Cost of the per-epoch resumable state against the epoch it protects.

For each architecture, on SynthBallroom-sized folds (default: the data set in ``data/``
counted the way training counts it, 10 folds, 80 % of the songs trained on), this process
times:

- **epoch**: SGD steps at the paper's batch of 10 (a sample of ``--steps`` steps, scaled to
  a whole epoch of the fold's training patches);
- **save**: one :meth:`tfcnn.train_state.FoldStateFile.save` of what ``train_fold`` saves
  after an epoch (weights, optimizer, a tracker holding ``--history`` epoch records and a
  kept best model, every generator), written atomically and fsynced;

and prints bytes per save, ms per save and the ratio save / epoch. Run with
``python -m bench state_save`` or ``python -m bench.state_save --archs time --steps 20``.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import soundfile as sf
import torch
import torch.nn.functional as F

from tfcnn.config import FRONT_END, PRESETS
from tfcnn.fold_training import FoldData, FoldTracker, cpu_state_dict
from tfcnn.locations import default_data_dir
from tfcnn.models import build_model
from tfcnn.train_state import FoldStateFile, rng_state

ARCHS: tuple[str, ...] = ("time", "timefreq", "blackbox")


def synthballroom_patches(root: Path, *, n_folds: int = 10) -> tuple[int, int]:
    """(training patches, songs) of one fold of the data set in ``root`` (80 % of the songs)."""
    patches = []
    for path in sorted(root.glob("*/*.wav")) + sorted(root.glob("*/*.flac")):
        frames = FRONT_END.n_frames(sf.info(str(path)).frames)
        patches.append(frames // FRONT_END.patch_frames)
    if not patches:
        raise SystemExit(f"error: no audio files under {root}")
    share = (n_folds - 2) / n_folds  # one fold tests, one validates
    return int(sum(patches) * share), len(patches)


def _epoch_seconds(model, n_train: int, steps: int) -> float:
    """Seconds of one training epoch of ``n_train`` patches, from ``steps`` timed steps."""
    batch = 10
    x = torch.randn(batch * steps, 1, FRONT_END.n_mels, FRONT_END.patch_frames)
    y = torch.randint(0, 8, (batch * steps,))
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01)
    model.train()
    t0 = time.perf_counter()
    for i in range(steps):
        xb, yb = x[i * batch:(i + 1) * batch], y[i * batch:(i + 1) * batch]
        loss = F.cross_entropy(model(xb), yb)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    return (time.perf_counter() - t0) / steps * (n_train / batch)


def _save_cost(model, folder: Path, history: int, repeat: int) -> tuple[int, float]:
    """(bytes, median ms) of saving the state ``train_fold`` saves after an epoch."""
    data = FoldData(fold=0, train_x=torch.zeros(1, 1, 1, 1), train_y=torch.zeros(1),
                    val_x=torch.zeros(0), val_y=torch.zeros(0), seed=0)
    tracker = FoldTracker(data, PRESETS["paper"])
    tracker.history = [{"event": "epoch", "fold": 0, "epoch": e, "train_loss": 1.0,
                        "train_acc": 0.5, "val_loss": 1.0, "val_acc": 0.5, "lr": 0.01,
                        "seconds": 1.0} for e in range(1, history + 1)]
    tracker.best_state, tracker.best_epoch = cpu_state_dict(model), history
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01)
    state = FoldStateFile(folder / "fold-00.pt", {"fold": 0})
    generator = torch.Generator().manual_seed(0)
    times, size = [], 0
    for _ in range(repeat):
        t0 = time.perf_counter()
        size = state.save(model=cpu_state_dict(model), optimizer=optimizer.state_dict(),
                          tracker=tracker.state_dict(), rng=rng_state(generator))
        times.append(time.perf_counter() - t0)
    return size, 1000 * statistics.median(times)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.state_save", description=__doc__)
    parser.add_argument("--archs", default=",".join(ARCHS))
    parser.add_argument("--data", default=None,
                        help="data set to size the folds by (default: the embedded SynthBallroom)")
    parser.add_argument("--steps", type=int, default=50, help="timed SGD steps per arch")
    parser.add_argument("--history", type=int, default=200,
                        help="epoch records held in the saved tracker")
    parser.add_argument("--repeat", type=int, default=5, help="saves timed per arch")
    args = parser.parse_args(argv)
    root = Path(args.data) if args.data else default_data_dir()
    n_train, n_songs = synthballroom_patches(root)
    print(f"fold of {root.name}: {n_songs} songs, {n_train} training patches; "
          f"{torch.get_num_threads()} threads; state with {args.history} epoch records")
    print(f"{'arch':<10} {'bytes/save':>12} {'ms/save':>9} {'s/epoch':>9} {'save/epoch':>11}")
    with tempfile.TemporaryDirectory(dir=root.parent) as folder:  # the data's disk
        for arch in args.archs.split(","):
            torch.manual_seed(0)
            model = build_model(arch, 8)
            epoch_s = _epoch_seconds(model, n_train, args.steps)
            size, save_ms = _save_cost(model, Path(folder), args.history, args.repeat)
            print(f"{arch:<10} {size:>12,} {save_ms:>9.1f} {epoch_s:>9.1f} "
                  f"{save_ms / 1000 / epoch_s:>10.2%}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
