"""``python -m tfcnn table RUN_DIR... [--json]``: Table 1 of the paper, ours beside theirs."""

from __future__ import annotations

import json


def add_parser(subparsers) -> None:
    p = subparsers.add_parser(
        "table",
        help="print Table 1 (accuracy mean ± std) for run folders beside the paper's",
        description="Table 1 of Pons et al. (2016): architecture, #params, accuracy "
                    "mean ± std over folds; the paper's figures beside ours.",
    )
    p.add_argument("run_dirs", nargs="+", metavar="RUN_DIR", help="run folders")
    p.add_argument("--json", action="store_true", help="print the rows as a JSON list")
    p.set_defaults(run=run)


def run(args) -> int:
    # pandas (through the run reader) loads only when the command runs: `--help` stays fast.
    from tfcnn.table1 import format_table, table_row

    rows = [table_row(path) for path in args.run_dirs]
    if args.json:
        print(json.dumps(rows, indent=2))
    else:
        print(format_table(rows))
    return 0
