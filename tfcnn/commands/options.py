"""The options ``train`` and ``sweep`` share, generated from the fields of
:class:`tfcnn.request.RunRequest`: ``train`` takes one value of each, ``sweep`` a
comma-separated list for the fields it sweeps (``--time-filter 1x30,1x60``, ``--seeds 0,1``)
and leaves out the ones a sweep sets itself (``--only-folds``, ``--snapshots``). The parsed
options become a request with :meth:`RunRequest.from_args` / :meth:`SweepRequest.from_args`.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable

from tfcnn.errors import ConfigError
from tfcnn.request import options, parse_list


def add_request_options(parser: argparse.ArgumentParser, *, grid: bool) -> None:
    """Add DATA_DIR and every option of a request to ``parser``.

    Parameters
    ----------
    parser : argparse.ArgumentParser
    grid : bool
        False: one value per option (``train``); True: ``sweep``'s options, a list of values
        for the swept ones.
    """
    for name, option, default in options():
        if grid and option.sweep is None:
            continue
        if option.flag is None:
            parser.add_argument(name, metavar=option.metavar, help=option.help)
        elif option.switch:
            parser.add_argument(option.flag, dest=name, action="store_true", help=option.help)
        elif grid and option.sweep == "grid":
            flag = option.grid_flag or option.flag
            parser.add_argument(flag, dest=name, type=_read(option.parse, listed=flag),
                                default=None if default is None else [default],
                                metavar=f"{option.metavar or name.upper()},...",
                                help=option.grid_help)
        else:
            parser.add_argument(option.flag, dest=name, type=_read(option.parse),
                                default=default, required=name == "arch",
                                metavar=option.metavar, help=option.help)


def _read(parse: Callable[[str], object], *, listed: str | None = None):
    """An argparse type reading one value, or a comma-separated list of them (the option
    ``listed``); a :class:`ConfigError` becomes argparse's error."""

    def read(text: str):
        try:
            return parse_list(text, name=listed, item=parse) if listed else parse(text)
        except ConfigError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None

    return read
