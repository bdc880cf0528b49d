"""``python -m tfcnn``: a thin argparse front over the package's stages.

Each sub-command lives in ``tfcnn/commands/<name>.py`` with ``add_parser(subparsers)`` and
``run(args) -> int``; this file only dispatches and turns project errors into one line.
Only the module of the command being run is imported (``--help`` included): the others
appear in the command list by their one-line help below, so ``python -m tfcnn --help`` and
every ``python -m tfcnn COMMAND --help`` start without numpy, torch or scipy.
"""

from __future__ import annotations

import argparse
import importlib
import sys
import warnings

from tfcnn import __version__
from tfcnn.errors import TfcnnError

#: The sub-commands in the order ``--help`` lists them, with their one-line help (each
#: module's ``add_parser`` passes the same line; tests/test_cli_start.py checks they agree).
COMMANDS: dict[str, str] = {
    "synth": "generate a SynthBallroom data set (8 dances, 30 s WAVs + metadata.csv)",
    "download": "download the Ballroom data set (698 excerpts, about 1.5 GB)",
    "features": "compute and cache the log-mel features of a data set",
    "train": "cross-validate one architecture on a data set (writes a run folder)",
    "sweep": "cross-validate a grid of filter shapes x seeds (one task per grid point x fold)",
    "table": "print Table 1 (accuracy mean ± std) for run folders beside the paper's",
    "compare": "compare two runs' per-fold accuracies (interval, tests, verdict)",
    "plan": "tracks per class and seeds for a given interval width, from a pilot run",
    "predict": "predict the dance class of audio files",
    "calibrate": "fit a checkpoint's confidence calibration on its validation songs",
    "filters": "tempo study of a checkpoint's temporal filters (table + graded verdict)",
    "conflict": "which cue (tempo, rhythm, timbre) models trained on paper follow",
}


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """The CLI's parser.

    Parameters
    ----------
    only : str, optional
        Build the full sub-parser of this command alone (importing its module); the other
        commands get a stub carrying their one-line help. None builds every sub-parser.
    """
    parser = argparse.ArgumentParser(
        prog="python -m tfcnn",
        description="Musically motivated CNNs on music spectrograms (Pons et al. 2016).",
    )
    parser.add_argument("--version", action="version", version=f"tfcnn {__version__}")
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, help_line in COMMANDS.items():
        if only is None or name == only:
            importlib.import_module(f"tfcnn.commands.{name}").add_parser(subparsers)
        else:
            subparsers.add_parser(name, help=help_line)
    return parser


def _command_in(argv: list[str]) -> str:
    """The sub-command named in ``argv`` ('' when none is: then only the stubs are built)."""
    for arg in argv:
        if not arg.startswith("-"):
            return arg if arg in COMMANDS else ""
    return ""


def _warning_line(message, category, filename, lineno, line=None) -> str:
    """Warnings as one ``warning: ...`` line (no source location: the user did not write it)."""
    return f"warning: {message}\n"


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    # File names need not be valid UTF-8: print them with escapes instead of failing.
    for stream in (sys.stdout, sys.stderr):
        if hasattr(stream, "reconfigure"):
            stream.reconfigure(errors="backslashreplace")
    warnings.formatwarning = _warning_line
    args = build_parser(only=_command_in(argv)).parse_args(argv)
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
