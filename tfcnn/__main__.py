"""``python -m tfcnn``: a thin argparse front over the package's stages.

Each sub-command lives in ``tfcnn/commands/<name>.py`` with ``add_parser(subparsers)`` and
``run(args) -> int``; this file only dispatches and turns project errors into one line.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from tfcnn import __version__
from tfcnn.errors import TfcnnError

COMMANDS = ("synth", "download", "features", "train", "table", "compare", "predict",
            "calibrate",            "filters")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m tfcnn",
        description="Musically motivated CNNs on music spectrograms (Pons et al. 2016).",
    )
    parser.add_argument("--version", action="version", version=f"tfcnn {__version__}")
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in COMMANDS:
        try:
            module = importlib.import_module(f"tfcnn.commands.{name}")
        except ModuleNotFoundError as exc:
            if exc.name == f"tfcnn.commands.{name}":
                continue  # command not built yet
            raise
        module.add_parser(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.run(args) or 0)
    except TfcnnError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
