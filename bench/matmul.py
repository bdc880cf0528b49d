"""This CPU's matrix-product peak (float32 and bfloat16) and what a Black-box step costs.

- **peak**: GFLOP/s of a large ``torch.mm`` (float32 and bfloat16, best of a few) on torch's
  threads: the ceiling a training kernel can reach here;
- **Black-box step**: the floating-point operations of one training patch of the paper's
  Black-box model as :mod:`tfcnn.blackbox_kernel` computes it (convolution forward and its
  weights' gradient, the 200-unit layer forward, its input gradient and its fused update),
  counted from the model's shapes.

So a measured throughput (``python -m bench.crossval --arch blackbox``, patches/s summed over
folds) converts to a share of the peak: ``patches/s × MFLOP per patch / peak``. Run with
``python -m bench matmul``.
"""

from __future__ import annotations

import argparse
import sys
import time

import torch

from tfcnn.config import CLASSES, FRONT_END
from tfcnn.models import build_model


def peak_gflops(dtype: torch.dtype, *, n: int = 2048, repeats: int = 5) -> float:
    """Best GFLOP/s of an (n, n) @ (n, n) product in ``dtype``."""
    a = torch.randn(n, n).to(dtype)
    b = torch.randn(n, n).to(dtype)
    torch.mm(a, b)  # warm-up
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        torch.mm(a, b)
        best = min(best, time.perf_counter() - start)
    return 2 * n ** 3 / best / 1e9


def blackbox_mflop_per_patch() -> float:
    """MFLOP of one Black-box training patch in the kernel's step (multiply-adds count 2)."""
    model = build_model("blackbox", len(CLASSES))
    conv = model.conv.weight                    # (filters, 1, kh, kw)
    hidden = model.hidden.weight                # (200, n_in)
    out_h = FRONT_END.n_mels - conv.shape[2] + 1
    out_w = FRONT_END.patch_frames - conv.shape[3] + 1
    conv_macs = out_h * out_w * conv.numel()
    dense_macs = hidden.numel()
    # conv: forward + weights' gradient; dense: forward + input gradient + fused update
    return 2 * (2 * conv_macs + 3 * dense_macs) / 1e6


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.matmul",
                                     description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=2048, help="matrix size")
    args = parser.parse_args(argv or [])
    fp32 = peak_gflops(torch.float32, n=args.n)
    bf16 = peak_gflops(torch.bfloat16, n=args.n)
    mflop = blackbox_mflop_per_patch()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, "
          f"{args.n}x{args.n} products")
    print(f"matmul peak float32  {fp32:8.1f} GFLOP/s")
    print(f"matmul peak bfloat16 {bf16:8.1f} GFLOP/s  (bf16 / fp32 {bf16 / fp32:.2f}x)")
    print(f"Black-box training step: {mflop:.1f} MFLOP per patch; at the float32 peak "
          f"{fp32 * 1e3 / mflop:,.0f} patches/s, at the bfloat16 peak {bf16 * 1e3 / mflop:,.0f}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
