"""``python -m tfcnn``: a thin argparse front over the package's stages.

Each sub-command lives in ``tfcnn/commands/<name>.py`` with ``add_parser(subparsers)`` and
``run(args) -> int``; this file only dispatches and turns project errors into one line.
"""

from __future__ import annotations

import argparse
import importlib
import sys
import warnings

from tfcnn import __version__
from tfcnn.errors import TfcnnError

COMMANDS = ("synth", "download", "features", "train", "sweep", "table", "compare", "plan",
            "predict", "calibrate", "filters", "conflict")


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


def _warning_line(message, category, filename, lineno, line=None) -> str:
    """Warnings as one ``warning: ...`` line (no source location: the user did not write it)."""
    return f"warning: {message}\n"


def main(argv: list[str] | None = None) -> int:
    # File names need not be valid UTF-8: print them with escapes instead of failing.
    for stream in (sys.stdout, sys.stderr):
        if hasattr(stream, "reconfigure"):
            stream.reconfigure(errors="backslashreplace")
    warnings.formatwarning = _warning_line
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
