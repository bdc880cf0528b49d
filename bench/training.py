"""Training throughput: patches/s per architecture, device-resident data vs a DataLoader.

For each architecture and batch size (10, the paper's, and a large one), the same SGD steps
(forward, mean cross-entropy, backward, plain SGD update) on the same random patches, fed
two ways in this process:

- **resident**: the patches are one tensor on the device and a minibatch is an
  ``index_select`` of a per-epoch ``randperm`` (what ``tfcnn.fold_training`` does);
- **DataLoader**: a plain ``torch.utils.data.DataLoader`` (shuffle, default collate, no
  workers) over a NumPy array, each batch copied to the device.

Prints patches/s of both and their ratio (resident / DataLoader). Run with
``python -m bench training`` or ``python -m bench.training --patches 2000 --device cuda``.
"""

from __future__ import annotations

import argparse
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, Dataset

from tfcnn.config import FRONT_END, TrainConfig
from tfcnn.models import build_model
from tfcnn.device import autocast, select_device

ARCHS: tuple[str, ...] = ("time", "frequency", "timefreq", "blackbox")
BATCHES: tuple[int, ...] = (10, 256)


class _NumpyPatches(Dataset):
    """Patches ``(n, 1, n_mels, frames)`` and labels ``(n,)`` as NumPy arrays, item by item."""

    def __init__(self, x: np.ndarray, y: np.ndarray) -> None:
        self.x, self.y = x, y

    def __len__(self) -> int:
        return len(self.y)

    def __getitem__(self, i: int):
        return self.x[i], self.y[i]


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _step(model, optimizer, xb, yb, device, config) -> None:
    """One SGD step on a minibatch, as ``train_fold`` takes it."""
    with autocast(device, config):
        logits = model(xb)  # (b, n_classes)
    loss = F.cross_entropy(logits.float(), yb)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()


def resident_batches(x: torch.Tensor, y: torch.Tensor, batch: int, generator: torch.Generator):
    """Minibatches as index slices of device tensors (one permutation per pass)."""
    order = torch.randperm(len(y), generator=generator).to(x.device)
    for start in range(0, len(y), batch):
        idx = order[start:start + batch]
        yield x.index_select(0, idx), y.index_select(0, idx)


def loader_batches(loader: DataLoader, device: torch.device):
    """Minibatches from a DataLoader, copied to the device."""
    for xb, yb in loader:
        yield xb.to(device), yb.to(device)


def patches_per_s(arch: str, batches, device: torch.device, config: TrainConfig) -> float:
    """Throughput of one pass of SGD steps over ``batches`` (after one warm-up step)."""
    torch.manual_seed(0)
    model = build_model(arch, 8).to(device).train()
    optimizer = torch.optim.SGD(model.parameters(), lr=config.lr)
    batches = iter(batches)
    _step(model, optimizer, *next(batches), device, config)
    _sync(device)
    done, start = 0, time.perf_counter()
    for xb, yb in batches:
        _step(model, optimizer, xb, yb, device, config)
        done += len(yb)
    _sync(device)
    return done / (time.perf_counter() - start) if done else float("nan")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.training",
                                     description=__doc__.split("\n")[0])
    parser.add_argument("--archs", nargs="+", default=list(ARCHS), choices=ARCHS)
    parser.add_argument("--batches", nargs="+", type=int, default=list(BATCHES))
    parser.add_argument("--patches", type=int, default=800,
                        help="patches per measurement (default 800; blackbox uses a third)")
    parser.add_argument("--rounds", type=int, default=3,
                        help="alternating rounds, best kept (default 3: load spikes hit both)")
    parser.add_argument("--threads", type=int, default=None,
                        help="torch intra-op threads (default: torch's own)")
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda, mps")
    parser.add_argument("--amp", action="store_true", help="bfloat16 autocast (CUDA only)")
    args = parser.parse_args(argv or [])

    device = select_device(args.device)
    if args.threads:
        torch.set_num_threads(args.threads)
    config = TrainConfig(preset="bench", amp=args.amp)
    rng = np.random.default_rng(0)
    shape = (1, FRONT_END.n_mels, FRONT_END.patch_frames)
    print(f"device {device}, torch threads {torch.get_num_threads()}, amp "
          f"{bool(args.amp and device.type == 'cuda')}; random patches {shape}, SGD steps")
    print(f"{'arch':<10} {'batch':>5} {'resident/s':>11} {'DataLoader/s':>13} {'ratio':>6}")
    for arch in args.archs:
        # The black-box model costs ~10x the others per patch: fewer patches, same precision.
        n = max(3 * max(args.batches), args.patches // 3 if arch == "blackbox" else args.patches)
        x_np = rng.standard_normal((n, *shape), dtype=np.float32)  # (n, 1, n_mels, frames)
        y_np = rng.integers(0, 8, size=n, dtype=np.int64)
        x_dev = torch.from_numpy(x_np).to(device)
        y_dev = torch.from_numpy(y_np).to(device)
        for batch in args.batches:
            resident = plain = 0.0
            for _ in range(args.rounds):
                g = torch.Generator().manual_seed(0)
                resident = max(resident, patches_per_s(
                    arch, resident_batches(x_dev, y_dev, batch, g), device, config))
                loader = DataLoader(_NumpyPatches(x_np, y_np), batch_size=batch, shuffle=True,
                                    generator=torch.Generator().manual_seed(0))
                plain = max(plain, patches_per_s(arch, loader_batches(loader, device), device,
                                                 config))
            print(f"{arch:<10} {batch:5d} {resident:11.0f} {plain:13.0f} "
                  f"{resident / plain:6.2f}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
