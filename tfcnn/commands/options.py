"""The training options ``train`` and ``sweep`` share: defined once, read once.

``train`` takes one value of each architecture parameter (``--time-filter 1x60``), ``sweep``
a comma-separated list to sweep (``--time-filter 1x30,1x60``); everything else (data set,
architecture, folds, recipe, device, overrides) reads the same in both.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable

from tfcnn.config import ARCHS, FRONT_END, PRESETS, PROTOCOLS
from tfcnn.errors import ConfigError

_WIDTH = FRONT_END.patch_frames

#: The architecture parameters both commands take: (flag, metavar, one value (train), a
#: list of values (sweep)).
ARCH_OPTIONS: tuple[tuple[str, str, str, str], ...] = (
    ("--time-filter", "HxW", "temporal filter shape, bands x frames (paper: 1x60; at most "
     f"1x{_WIDTH}, the patch's width)", "temporal filter shapes to sweep, bands x frames, "
     f"e.g. 1x30,1x60,1x80 (at most 1x{_WIDTH}, the patch's width)"),
    ("--freq-filter", "HxW", "frequency filter shape, bands x frames (paper: 32x1)",
     "frequency filter shapes to sweep, bands x frames, e.g. 20x1,32x1"),
    ("--n-filters", "N", "filters per convolution branch (paper: 32)",
     "numbers of filters per convolution branch to sweep, e.g. 16,32"),
)


def _shape(text: str) -> tuple[int, int]:
    """``"1x60"`` → ``(1, 60)`` (frequency bins × time frames); :class:`ConfigError` when
    it is not one."""
    from tfcnn.models import parse_filter_shape  # torch: only when a shape is given

    return parse_filter_shape(text)


def one(item: Callable[[str], object]) -> Callable[[str], object]:
    """An argparse type reading one ``item`` (its :class:`ConfigError` as argparse's error)."""

    def parse(text: str):
        try:
            return item(text)
        except ConfigError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None

    return parse


def list_of(item: Callable[[str], object], name: str) -> Callable[[str], list]:
    """An argparse type reading a comma-separated list of ``item``
    (:func:`tfcnn.sweep.parse_list`)."""

    def parse(text: str) -> list:
        from tfcnn.sweep import parse_list  # torch (through training): only when parsing

        try:
            return parse_list(text, name=name, item=item)
        except ConfigError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None

    return parse


def add_training_options(p: argparse.ArgumentParser, *, grid: bool) -> None:
    """Add DATA_DIR, ``--arch``, ``--folds``, the recipe (``--preset``, ``--protocol``,
    ``--device``), its overrides (``--epochs``, ``--lr``, ``--batch-size``, ``--amp``) and
    the architecture parameters (``--time-filter``, ``--freq-filter``, ``--n-filters``).

    Parameters
    ----------
    p : argparse.ArgumentParser
    grid : bool
        False: one value per architecture parameter (``train``); True: a comma-separated
        list of values to sweep (``sweep``).
    """
    p.add_argument("data_dir", metavar="DATA_DIR", help="data set folder")
    p.add_argument("--arch", required=True, help=", ".join(ARCHS))
    p.add_argument("--folds", type=int, default=10, help="number of folds K (default 10)")
    p.add_argument("--preset", default="quick",
                   help=f"training recipe: {' | '.join(PRESETS)} (default quick)")
    p.add_argument("--protocol", default="clean",
                   help=f"{' | '.join(PROTOCOLS)}: clean (stratified, train-only "
                        "normalisation; default) or paper (as the original code)")
    p.add_argument("--device", default="auto", help="auto (cuda, mps, cpu), cpu, cuda, mps")
    p.add_argument("--epochs", type=int, default=None, help="override the preset's max epochs")
    p.add_argument("--lr", type=float, default=None, help="override the initial learning rate")
    p.add_argument("--batch-size", type=int, default=None, help="override the minibatch size")
    p.add_argument("--amp", action="store_true",
                   help="bfloat16 where it pays: autocast on CUDA, and the fold-parallel "
                        "kernel's products on CPUs with native bf16 (AVX512-BF16, AMX)")
    for flag, metavar, one_help, list_help in ARCH_OPTIONS:
        item = int if flag == "--n-filters" else _shape
        if grid:
            p.add_argument(flag, type=list_of(item, flag), default=None,
                           metavar=f"{metavar},...", help=list_help)
        else:
            p.add_argument(flag, type=int if item is int else one(item), default=None,
                           metavar=metavar, help=one_help)


def train_overrides(args: argparse.Namespace) -> dict:
    """The TrainConfig overrides the options give (None: the preset's value)."""
    return {"max_epochs": args.epochs, "lr": args.lr, "batch_size": args.batch_size,
            "amp": True if args.amp else None}
