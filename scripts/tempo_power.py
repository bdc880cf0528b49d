"""Power and size of the tempo likelihood-ratio test (``python -m scripts.tempo_power``).

Simulates filters of known truth (fixed seed, :mod:`tfcnn.interpret.planted`) and runs them
through :func:`tfcnn.interpret.periodic_lrt.periodic_test`:

1. power per tempo (one filter at a time): a cosine or two onset bumps one beat apart holding ``--share`` of the
   variance, the rest AR(1) noise (φ 0.3, 0.5, 0.7), at the per-filter levels 0.05 and
   0.05 / 32 (a lone discovery among a model's 32 filters under Benjamini-Hochberg needs
   p ≤ 0.05 / 32: the level the verdict counts at, at its strictest);
2. power in a bank: 16 planted filters beside 16 noise filters (the bank the issue tried),
   counted as the verdict counts (Benjamini-Hochberg at q = 0.05);
3. size: the share of smooth-noise filters with p ≤ 0.05 and ≤ 0.05 / 32, and of banks of 32
   with any Benjamini-Hochberg discovery at q = 0.05 (the false discovery rate under the
   complete null).

Writes ``tfcnn/data/tempo_power.json`` (what the verdict quotes) and prints the Markdown tables
of ``docs/tempo-study.md``.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from tfcnn.atomic import write_json_atomic
from tfcnn.interpret.periodic_lrt import POWER_FILE, count_combination, holm, periodic_test
from tfcnn.interpret.planted import (ar1_noise, ar2_noise, gauss_noise, planted_filters,
                                     standardised)
from tfcnn.interpret.smooth_null import benjamini_hochberg

SEED = 20161206
OUT = Path(__file__).resolve().parents[1] / "tfcnn" / "data" / POWER_FILE
TEMPI = tuple(float(b) for b in range(60, 225, 8)) + (224.0,)
NOISE_PHIS = (0.3, 0.5, 0.7)
LEVELS = (0.05, 0.05 / 32)
NULLS = {"AR(1) 0.3": ("ar", 0.3), "AR(1) 0.6": ("ar", 0.6), "AR(1) 0.8": ("ar", 0.8),
         "AR(1) 0.9": ("ar", 0.9), "AR(1) 0.95": ("ar", 0.95),
         "AR(2) 0.8, 0.5": ("ar2", (0.8, 0.5)), "AR(2) 0.9, 0.3": ("ar2", (0.9, 0.3)),
         "AR(2) 0.9, 0.5": ("ar2", (0.9, 0.5)), "Gauss σ=1": ("gauss", 1.0),
         "Gauss σ=2": ("gauss", 2.0), "Gauss σ=3": ("gauss", 3.0), "Gauss σ=5": ("gauss", 5.0),
         # outside the simulated families: smooth noise plus as much white noise
         "AR(1) 0.9 + white": ("ar+white", 0.9)}


def null_filters(kind: str, value, n: int, rng: np.random.Generator) -> np.ndarray:
    """``n`` filters of one null condition of :data:`NULLS`: (n, 60)."""
    if kind == "ar":
        return ar1_noise(value, n, rng)
    if kind == "ar2":
        return ar2_noise(*value, n, rng)
    if kind == "ar+white":
        return standardised(ar1_noise(value, n, rng)) + rng.standard_normal((n, 60))
    return gauss_noise(value, n, rng)


def power_table(n: int, share: float, rng: np.random.Generator) -> dict:
    """``{pattern: {phi: {level: [power per tempo]}}}``."""
    out: dict = {}
    for pattern in ("cosine", "pulses"):
        out[pattern] = {}
        for phi in NOISE_PHIS:
            p = np.stack([periodic_test(planted_filters(pattern, bpm, share, n, rng,
                                                        noise_phi=phi)).p_value
                          for bpm in TEMPI])                        # (n_tempi, n)
            out[pattern][str(phi)] = {str(a): np.mean(p <= a, axis=1).round(3).tolist()
                                      for a in LEVELS}
    return out


def bank_power_table(n_banks: int, share: float, rng: np.random.Generator) -> dict:
    """The issue's bank: 16 planted filters beside 16 AR(1) noise filters (φ uniform 0.2-0.8),
    Benjamini-Hochberg at q = 0.05 as the verdict counts: share of planted filters found and
    false discoveries per bank, per tempo. ``{pattern: {"found": [...], "false": [...]}}``."""
    out: dict = {}
    for pattern in ("cosine", "pulses"):
        found, false = [], []
        for bpm in TEMPI:
            f, fd = [], []
            for _ in range(n_banks):
                bank = np.concatenate([planted_filters(pattern, bpm, share, 16, rng),
                                       ar1_noise(rng.uniform(0.2, 0.8, 16), 16, rng)])
                q = benjamini_hochberg(periodic_test(bank).p_value)
                f.append(np.mean(q[:16] <= 0.05))
                fd.append(np.sum(q[16:] <= 0.05))
            found.append(round(float(np.mean(f)), 3))
            false.append(round(float(np.mean(fd)), 3))
        out[pattern] = {"found": found, "false_per_bank": false}
    return out


def size_table(n: int, n_banks: int, rng: np.random.Generator) -> dict:
    out = {}
    for name, (kind, value) in NULLS.items():
        x = null_filters(kind, value, n, rng)
        p = periodic_test(x).p_value
        banks = null_filters(kind, value, 32 * n_banks, rng)
        bank_test = periodic_test(banks)
        bp = bank_test.p_value.reshape(n_banks, 32)
        band_p = bank_test.band_p.reshape(n_banks, 32, -1)
        any_bh = int(sum(np.any(benjamini_hochberg(row) <= 0.05) for row in bp))
        # the bank-level tests as the verdict runs them, one bank of 32 at a time
        bank_rejects = int(sum(count_combination(row) <= 0.05 for row in bp))
        band_rejects = int(sum(np.any(holm([count_combination(b[:, k])
                                            for k in range(b.shape[1])]) <= 0.05)
                               for b in band_p))
        out[name] = {str(a): float(np.mean(p <= a)) for a in LEVELS}
        out[name]["banks_with_discovery"] = [any_bh, n_banks]
        out[name]["bank_test_rejects"] = [bank_rejects, n_banks]
        out[name]["band_test_rejects"] = [band_rejects, n_banks]
    return out


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=200, help="filters per power cell")
    parser.add_argument("--share", type=float, default=0.6)
    parser.add_argument("--null-n", type=int, default=1000, help="filters per null condition")
    parser.add_argument("--banks", type=int, default=40, help="banks of 32 per null condition")
    parser.add_argument("--bank-reps", type=int, default=6, help="16+16 banks per tempo")
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args(argv)
    rng = np.random.default_rng(SEED)
    power = power_table(args.n, args.share, rng)
    size = size_table(args.null_n, args.banks, rng)
    bank = bank_power_table(args.bank_reps, args.share, rng)
    doc = {"seed": SEED, "n": args.n, "share": args.share, "tempi": list(TEMPI),
           "levels": list(LEVELS), "power": power, "size": size, "bank_power": bank,
           "bank_reps": args.bank_reps}
    write_json_atomic(args.out, doc)
    print(f"Power ({args.n} filters per cell, share {args.share:.0%}, p ≤ 0.05/32 | ≤ 0.05):\n")
    print("| pattern | noise φ | " + " | ".join(f"{b:.0f}" for b in TEMPI) + " |")
    print("| --- | ---: | " + " | ".join("---:" for _ in TEMPI) + " |")
    for pattern, by_phi in power.items():
        for phi, lv in by_phi.items():
            cells = [f"{s:.2f} \\| {w:.2f}" for s, w in zip(lv[str(LEVELS[1])], lv[str(LEVELS[0])])]
            print(f"| {pattern} | {phi} | " + " | ".join(cells) + " |")
    print(f"\nIn a bank of 16 planted + 16 noise filters (BH q = 0.05; {args.bank_reps} banks "
          "per tempo): share of planted found | false discoveries per bank\n")
    print("| pattern | " + " | ".join(f"{b:.0f}" for b in TEMPI) + " |")
    print("| --- | " + " | ".join("---:" for _ in TEMPI) + " |")
    for pattern, r in bank.items():
        cells = [f"{f:.2f} \\| {d:.1f}" for f, d in zip(r["found"], r["false_per_bank"])]
        print(f"| {pattern} | " + " | ".join(cells) + " |")
    print(f"\nSize ({args.null_n} filters; {args.banks} banks of 32 per condition):\n")
    print("| noise | p ≤ 0.05 | p ≤ 0.05/32 | banks with a BH discovery | bank test p ≤ 0.05 "
          "| a band test p ≤ 0.05 (Holm) |")
    print("| --- | ---: | ---: | ---: | ---: | ---: |")
    for name, s in size.items():
        k, m = s["banks_with_discovery"]
        kb, _ = s["bank_test_rejects"]
        kd, _ = s["band_test_rejects"]
        print(f"| {name} | {s[str(LEVELS[0])]:.3f} | {s[str(LEVELS[1])]:.4f} | {k} of {m} "
              f"| {kb} of {m} | {kd} of {m} |")


if __name__ == "__main__":
    main()
