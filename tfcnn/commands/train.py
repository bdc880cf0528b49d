"""``python -m tfcnn train DATA_DIR --arch NAME ...``: the paper's K-fold cross-validation.

Only wiring: arguments → a :class:`tfcnn.request.RunRequest` → :func:`tfcnn.train.train_run`, its progress events → tqdm bars.
"""

from __future__ import annotations

import sys
from datetime import datetime


from tfcnn.commands.options import add_request_options
from tfcnn.errors import ConfigError
from tfcnn.locations import runs_root
from tfcnn.request import RunRequest


def add_parser(subparsers) -> None:
    p = subparsers.add_parser(
        "train",
        help="cross-validate one architecture on a data set (writes a run folder)",
        description="K-fold cross-validation of one architecture (Pons et al. 2016, §2). "
                    "Writes config.json, progress.jsonl, fold-XX/model.safetensors + "
                    "result.json and results.json into the run folder.",
    )
    add_request_options(p, grid=False)
    p.add_argument("--out", default=None, metavar="RUN_DIR",
                   help="run folder (default <runs>/<date>-<arch>, runs/ or $TFCNN_RUNS_DIR)")
    p.add_argument("--resume", action="store_true",
                   help="continue the run in --out: keep complete folds, redo the rest")
    p.add_argument("--sequential", action="store_true",
                   help="train folds one after another (no fold-parallel training)")
    p.add_argument("--threads", type=int, default=None, metavar="N",
                   help="CPU threads for torch (default: torch's choice; 1 is often fastest "
                        "for these small models on a busy machine)")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.set_defaults(run=run)


def fold_end_line(event: dict) -> None:
    """A training ``progress`` callback that prints one stderr line per finished fold
    (long scripted runs: the run's ``progress.jsonl`` has the details)."""
    if event.get("event") == "fold_end":
        acc = event.get("accuracy")
        print(f"  fold {event['fold']}: {'-' if acc is None else f'{acc:.1f} %'}",
              file=sys.stderr, flush=True)


class ProgressBars:
    """tqdm bars fed by the run's progress events: one bar per fold (stage), over epochs."""

    def __init__(self, *, enabled: bool, out=None):
        self.enabled = enabled
        self.out = out
        self.bars: dict[tuple, object] = {}

    def __call__(self, event: dict) -> None:
        if not self.enabled:
            return
        from tqdm import tqdm  # off the --help path
        if self.out is not None:  # the first event: the run folder is set up
            tqdm.write(f"run folder: {self.out}", file=sys.stderr)
            self.out = None

        kind = event.get("event")
        if kind == "fold_start":
            self._max_epochs = event.get("max_epochs")
        elif kind == "epoch":
            key = (event["fold"], event.get("stage"))
            bar = self.bars.get(key)
            if bar is None:
                # timefreq-init: this fold's previous stage (time, frequency) has ended
                for other in [k for k in self.bars if k[0] == key[0]]:
                    self.bars.pop(other).close()
                label = f"fold {event['fold']}"
                if event.get("stage"):
                    label += f" {event['stage']}"
                bar = tqdm(total=getattr(self, "_max_epochs", None), desc=label, unit="ep",
                           file=sys.stderr, leave=True, dynamic_ncols=True)
                self.bars[key] = bar
            val = event.get("val_acc")
            bar.set_postfix(loss=f"{event['train_loss']:.3f}" if event.get("train_loss")
                            is not None else "nan",
                            val_acc="-" if val is None else f"{val:.3f}",
                            lr=f"{event['lr']:.2g}", refresh=False)
            bar.update(1)
        elif kind == "features" and event.get("done") == event.get("total"):
            tqdm.write(f"features: {event['total']} tracks ready", file=sys.stderr)
        elif kind == "fold_end":
            for (fold, _), bar in list(self.bars.items()):
                if fold == event["fold"]:
                    bar.close()
                    del self.bars[(fold, _)]
            acc = event.get("accuracy")
            tqdm.write(f"fold {event['fold']}: song accuracy "
                       f"{'-' if acc is None else f'{acc:.2f} %'}", file=sys.stderr)

    def close(self) -> None:
        for bar in self.bars.values():
            bar.close()
        self.bars.clear()


def run(args) -> int:
    # Bad values fail here, before a run folder exists (a filter shape loads torch to check).
    request = RunRequest.from_args(args)
    if args.threads is not None and args.threads < 1:
        raise ConfigError(f"--threads must be >= 1, got {args.threads}")
    out = args.out
    if out is None:
        if args.resume:
            raise ConfigError("--resume needs --out RUN_DIR (the run folder to continue)")
        out = runs_root() / f"{datetime.now():%Y%m%d-%H%M%S}-{request.arch}"
    # torch and the training stack load only when the command runs: `--help` stays fast.
    import torch

    from tfcnn.train import RunCancelled, train_run

    if args.threads is not None:
        torch.set_num_threads(args.threads)
    bars = ProgressBars(enabled=not args.quiet, out=out)
    try:
        results = train_run(request, out, resume=args.resume, progress=bars,
                            sequential=args.sequential)
    except RunCancelled as exc:
        bars.close()
        print(f"cancelled: {exc}; continue it with the same command plus --resume (--out {out})",
              file=sys.stderr)
        return 143
    finally:
        bars.close()
    mean, std = results.get("mean"), results.get("std")
    folds = results.get("folds", [])
    if mean is not None:
        print(f"{results['arch']}: {mean:.2f} ± {std:.2f} % song accuracy over "
              f"{len(folds)} fold(s) ({results.get('protocol')} protocol, "
              f"{results.get('wall_s', 0):.0f} s) -> {out}")
    return 0
