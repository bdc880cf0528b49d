"""``python -m bench [NAME ...]``: run every benchmark in ``bench/``, or only the named ones."""

from __future__ import annotations

import argparse
import sys

from bench import benchmark_names, run


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench",
        description="Benchmarks that print ratios against a baseline run in the same process.",
    )
    parser.add_argument(
        "names", nargs="*", metavar="NAME",
        help=f"benchmarks to run (default: all): {', '.join(benchmark_names())}",
    )
    names = parser.parse_args(argv).names
    unknown = [name for name in names if name not in benchmark_names()]
    if unknown:
        parser.error(f"unknown benchmark {unknown[0]!r}; valid: {', '.join(benchmark_names())}")
    return run(names)


if __name__ == "__main__":
    sys.exit(main())
