"""``python -m tfcnn download ballroom --to DIR [--archive FILE]``: fetch the real Ballroom."""

from __future__ import annotations

import argparse
from pathlib import Path

from tfcnn.download import BALLROOM_MD5, BALLROOM_URL, download_ballroom

#: Where the real data set goes unless ``--to`` says otherwise (git-ignored ``data/``).
DEFAULT_BALLROOM_DIR = Path(__file__).resolve().parents[2] / "data" / "ballroom"


def add_parser(subparsers) -> None:
    p = subparsers.add_parser(
        "download",
        help="download the Ballroom data set (698 excerpts, about 1.5 GB)",
        description="Download data1.tar.gz of the ISMIR 2004 tempo contest with a progress bar "
                    "(resumable), verify its md5, unpack it atomically to DIR/BallroomData and "
                    "check it against the shipped track table.",
    )
    p.add_argument("dataset", choices=["ballroom"], help="data set to fetch")
    p.add_argument("--to", type=Path, default=DEFAULT_BALLROOM_DIR, metavar="DIR",
                   help=f"target folder (default: {DEFAULT_BALLROOM_DIR})")
    p.add_argument("--archive", type=Path, metavar="FILE",
                   help="use a data1.tar.gz downloaded by hand instead of the network")
    p.add_argument("--url", default=BALLROOM_URL, help=f"download URL (default: {BALLROOM_URL})")
    p.add_argument("--md5", default=BALLROOM_MD5,
                   help="expected md5 of the archive; 'none' skips the check")
    p.add_argument("--keep-archive", action="store_true",
                   help="keep data1.tar.gz after unpacking (default: delete the download)")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from tfcnn.datasets import describe  # pandas: off `download --help`

    md5 = None if str(args.md5).lower() == "none" else args.md5
    dataset = download_ballroom(args.to, url=args.url, md5=md5, progress=not args.quiet,
                                archive=args.archive, keep_archive=args.keep_archive)
    info = describe(dataset)
    print(f"{info['name']}: {info['n_tracks']} tracks in {info['n_classes']} classes at "
          f"{dataset.root}")
    for line in dataset.report:
        print(f"  {line}")
    print(f"next: python -m tfcnn features {dataset.root}")
    return 0
