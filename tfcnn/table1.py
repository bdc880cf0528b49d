"""Table 1 of the paper beside ours: one row per run, and the rows as aligned text."""

from __future__ import annotations

import os

from tfcnn.config import PAPER_TABLE1, TIMEFREQ_INIT, PaperRow
from tfcnn.runs import Run, read_fold_result, read_run


def paper_row_for(arch: str) -> PaperRow | None:
    """The paper's Table 1 row that ``arch`` reproduces (``timefreq-init`` → ``timefreq``,
    the original code's active configuration), or None."""
    return PAPER_TABLE1.get("timefreq" if arch == TIMEFREQ_INIT else arch)


def table_row(run: Run | str | os.PathLike) -> dict:
    """One Table 1 row for a run (a :class:`tfcnn.runs.Run` or its folder): ours beside the
    paper's.

    Returns
    -------
    dict
        ``run``, ``arch``, ``n_params``, ``mean``, ``std`` (percent, over complete folds; None
        when no fold is complete), ``n_folds_complete``, ``n_folds``, ``protocol``, ``preset``,
        ``dataset``, ``trained_on``, ``wall_s``, ``status``, ``max_epochs``,
        ``epochs_per_fold`` and ``best_epoch_per_fold`` (complete folds, ascending),
        ``n_folds_capped`` (complete folds that ran to ``max_epochs`` instead of being ended
        by the schedule), and ``paper_params``, ``paper_mean``, ``paper_std`` (None for an
        arch without a paper row).
    """
    if not isinstance(run, Run):
        run = read_run(run)
    paper = paper_row_for(run.arch)
    max_epochs = (run.config.get("train_config") or {}).get("max_epochs")
    folds = [read_fold_result(run.path, k) or {} for k in run.complete]
    epochs = [f.get("epochs") for f in folds]
    return {
        "run": str(run.path),
        "arch": run.arch,
        "n_params": run.n_params,
        "mean": run.mean,
        "std": run.std,
        "n_folds_complete": run.n_complete,
        "n_folds": run.n_folds,
        "protocol": run.config.get("protocol"),
        "preset": run.config.get("preset"),
        "dataset": run.config.get("dataset", {}).get("name"),
        "trained_on": run.results.get("trained_on"),
        "wall_s": run.wall_s,
        "status": run.status,
        "max_epochs": max_epochs,
        "epochs_per_fold": epochs,
        "best_epoch_per_fold": [f.get("best_epoch") for f in folds],
        "n_folds_capped": sum(1 for e in epochs if max_epochs and e is not None
                              and e >= max_epochs),
        "paper_params": None if paper is None else paper.params,
        "paper_mean": None if paper is None else paper.mean,
        "paper_std": None if paper is None else paper.std,
    }


def format_table(rows: list[dict]) -> str:
    """Table 1 as aligned text: our accuracy beside the paper's (Pons et al. 2016, Table 1)."""
    def pm(mean, std):
        return "-" if mean is None else f"{mean:.2f} ± {std:.2f} %"

    def num(n):
        return "-" if n is None else f"{n:,}"

    def wall(s):
        if s is None:
            return "-"
        return f"{s:.0f} s" if s < 3600 else f"{s / 3600:.1f} h"

    def capped(r):
        if not r.get("max_epochs") or not r.get("n_folds_complete"):
            return "-"
        return f"{r.get('n_folds_capped', 0)}/{r['n_folds_complete']} at {r['max_epochs']}"

    header = ("architecture", "#params", "accuracy (ours)", "paper #params", "paper accuracy",
              "folds", "protocol", "dataset", "hit epoch cap", "wall time")
    body = [(r["arch"], num(r["n_params"]), pm(r["mean"], r["std"]), num(r["paper_params"]),
             pm(r["paper_mean"], r["paper_std"]),
             f"{r['n_folds_complete']}/{r['n_folds']}", str(r["protocol"]),
             str(r["dataset"]), capped(r), wall(r["wall_s"])) for r in rows]
    widths = [max(len(line[i]) for line in [header, *body]) for i in range(len(header))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(line, widths)).rstrip()
             for line in [header, *body]]
    lines.insert(1, "  ".join("-" * w for w in widths))
    notes = sorted({r["trained_on"] for r in rows if r.get("trained_on")})
    for note in notes:
        lines.append(f"(ours: {note}; paper: Ballroom, 10-fold, Pons et al. 2016 Table 1)")
    if any(r["arch"] == TIMEFREQ_INIT for r in rows):
        lines.append("(timefreq-init is compared with the paper's timefreq row)")
    return "\n".join(lines)
