"""``python -m tfcnn sweep DATA_DIR --arch NAME --time-filter 1x30,1x60 --seeds 0,1,2 ...``.

Only wiring: arguments → a :class:`tfcnn.request.SweepRequest` and an engine
(:mod:`tfcnn.engines`) →
:func:`tfcnn.sweep.run_sweep`, its task events → one line each, the grid → a table.
"""

from __future__ import annotations

import signal
import sys
from datetime import datetime
from pathlib import Path

from tfcnn.commands.options import add_request_options
from tfcnn.config import ENGINE_NAMES
from tfcnn.errors import ConfigError, RunError
from tfcnn.request import SweepRequest


def add_parser(subparsers) -> None:
    p = subparsers.add_parser(
        "sweep",
        help="cross-validate a grid of filter shapes x seeds (one task per grid point x fold)",
        description="A grid of architecture parameters x seeds, every grid point one K-fold "
                    "cross-validation and every (grid point, fold) one task, on this "
                    "machine (--engine local) or on Ray (--engine ray). Each grid point ends "
                    "as an ordinary run folder under --out, which `table` and the app read.",
    )
    add_request_options(p, grid=True)
    p.add_argument("--engine", default="local",
                   help=f"{' | '.join(ENGINE_NAMES)}: local trains in this process, all folds of "
                        f"a grid point together; ray runs one task per grid point x fold "
                        f"(default local)")
    p.add_argument("--address", default=None, metavar="ADDR",
                   help="ray: join this cluster (host:port from `ray start --head`, or auto); "
                        "default: start a Ray sized to this machine")
    p.add_argument("--cpus-per-task", type=int, default=1, metavar="N",
                   help="ray: CPUs (and torch threads) per task (default 1)")
    p.add_argument("--retries", type=int, default=2, metavar="N",
                   help="ray: reruns of a task whose worker died (default 2)")
    p.add_argument("--threads", type=int, default=None, metavar="N",
                   help="local: CPU threads for torch (default: torch's choice)")
    p.add_argument("--out", default=None, metavar="SWEEP_DIR",
                   help="sweep folder (default runs/sweep-<date>-<arch>)")
    p.add_argument("--resume", action="store_true",
                   help="continue the sweep in --out: keep complete folds, train the rest")
    p.add_argument("--quiet", action="store_true", help="no per-task lines")
    p.set_defaults(run=run)


class _TaskLines:
    """One stderr line per task start, end and failure, counted over the pending tasks."""

    def __init__(self, *, enabled: bool):
        self.enabled = enabled
        self.total = 0
        self.settled = 0

    def __call__(self, event: dict) -> None:
        kind = event.get("event")
        if kind == "sweep_start":
            self.total = int(event.get("pending", 0))
            self._say(f"{event.get('n_tasks')} tasks, {self.total} to train "
                      f"({event.get('engine')} engine)")
        elif kind == "task_start":
            self._say(f"started {event['task']} (pid {event.get('pid')} on "
                      f"{event.get('host')})")
        elif kind == "task_end":
            self.settled += 1
            acc = event.get("accuracy")
            self._say(f"[{self.settled}/{self.total}] {event['task']}: song accuracy "
                      f"{'-' if acc is None else f'{acc:.2f} %'} "
                      f"({event.get('seconds') or 0:.0f} s)")
        elif kind == "task_failed":
            self.settled += 1
            self._say(f"[{self.settled}/{self.total}] {event['task']} FAILED: "
                      f"{event.get('message')}")

    def _say(self, text: str) -> None:
        if self.enabled:
            print(text, file=sys.stderr, flush=True)


def _interrupt(signum, frame):
    raise KeyboardInterrupt


def run(args) -> int:
    from tfcnn.contrasts import cv_test_train_ratio, format_contrasts, setting_contrasts
    from tfcnn.engines import make_engine
    from tfcnn.sweep import format_grid, grid_rows, run_sweep, seed_summary

    if args.engine == "ray":
        options = dict(address=args.address, cpus_per_task=args.cpus_per_task,
                       retries=args.retries)
    else:
        if args.address is not None:
            raise ConfigError(f"--address {args.address!r} needs --engine ray")
        options = dict(threads=args.threads)
    engine = make_engine(args.engine, **options)
    spec = SweepRequest.from_args(args)
    out = args.out
    if out is None:
        if args.resume:
            raise ConfigError("--resume needs --out SWEEP_DIR (the sweep folder to continue)")
        out = Path("runs") / f"sweep-{datetime.now():%Y%m%d-%H%M%S}-{spec.base.arch}"
    # SIGTERM (the app's Cancel) stops the sweep like Ctrl-C: the Ray tasks are cancelled, a
    # Ray started here is shut down, complete folds are kept (training folds handle it
    # themselves: train_run turns it into a cancelled run).
    signal.signal(signal.SIGTERM, _interrupt)
    outcome = run_sweep(spec, out, engine=engine, resume=args.resume,
                        progress=_TaskLines(enabled=not args.quiet))
    params = [name for name, _ in spec.grid]
    rows = grid_rows(out)
    print(format_grid(rows, seed_summary(rows, params), params))
    if params and spec.base.n_folds >= 3:
        ratio = cv_test_train_ratio(spec.base.n_folds, spec.base.protocol)
        print("\n" + format_contrasts(setting_contrasts(rows, params, test_train_ratio=ratio)))
    print(f"{len(outcome.ran)} task(s) trained, {len(outcome.skipped)} already complete, "
          f"{len(outcome.failed)} failed; {outcome.wall_s:.0f} s ({outcome.engine} engine) "
          f"-> {out}")
    if outcome.failed:
        first = next(iter(outcome.failed.items()))
        raise RunError(f"{len(outcome.failed)} task(s) failed (first: {first[0]}: {first[1]}); "
                       f"complete folds are kept, rerun with --resume --out {out}")
    return 0
