"""The running-run ETA (tfcnn.eta) on replayed progress: a bound that only tightens and holds."""

from __future__ import annotations

import math
import re
from pathlib import Path

import numpy as np
import pytest

from tfcnn.config import PRESETS, training_stages
from tfcnn.eta import EtaTracker, run_eta
from tfcnn.fold_training import LossSchedule
from tfcnn.runs import Run


def simulated_events(*, arch: str, n_folds: int, max_epochs: int, stacked: bool,
                     seed: int) -> list[dict]:
    """The progress events of a run whose folds follow the real schedule on noisy losses
    (a decay to a plateau) with noisy epoch times (log-normal around 1 s)."""
    rng = np.random.default_rng(seed)
    train = PRESETS["quick"].with_overrides(max_epochs=max_epochs)
    events: list[dict] = [{"event": "fold_start", "fold": k, "max_epochs": max_epochs}
                          for k in range(n_folds)]
    records = {}  # (stage, fold) -> that fold's epoch records in that stage
    for stage in training_stages(arch):
        for fold in range(n_folds):
            schedule = LossSchedule.from_config(train)
            scale = rng.uniform(5, 25)
            records[stage, fold] = []
            for epoch in range(1, max_epochs + 1):
                loss = 0.3 + math.exp(-epoch / scale) + 0.02 * rng.standard_normal()
                records[stage, fold].append({"event": "epoch", "fold": fold, "epoch": epoch,
                                             "stage": stage, "train_loss": loss,
                                             "seconds": float(rng.lognormal(0.0, 0.3))})
                if schedule.step(loss) == "stop":
                    break
    if stacked:  # as tfcnn.parallel: a stage's folds epoch by epoch, then the next stage
        for stage in training_stages(arch):
            for epoch in range(max_epochs):
                events += [r[epoch] for (st, _), r in records.items()
                           if st == stage and epoch < len(r)]
    else:  # one fold after another, each through its stages
        for fold in range(n_folds):
            for stage in training_stages(arch):
                events += records[stage, fold]
    events += [{"event": "fold_end", "fold": k} for k in range(n_folds)]
    return events


def run_config(arch: str, n_folds: int, max_epochs: int) -> dict:
    return {"arch": arch, "n_folds": n_folds,
            "train_config": PRESETS["quick"].with_overrides(max_epochs=max_epochs).to_dict()}


def replay(events: list[dict], *, arch: str, n_folds: int, max_epochs: int):
    """``(eta, seconds actually left)`` after every epoch record, as a reader following the
    run would see them."""
    tracker = EtaTracker(run_config(arch, n_folds, max_epochs))
    total = sum(e.get("seconds", 0.0) for e in events)
    elapsed, out = 0.0, []
    for event in events:
        tracker.feed(event)
        if event.get("event") == "epoch":
            elapsed += event["seconds"]
            out.append((tracker.eta(), total - elapsed))
    return out


def test_run_eta_reads_a_run_like_the_tracker():
    events = simulated_events(arch="time", n_folds=3, max_epochs=80, stacked=False, seed=0)
    cut = len(events) // 2
    run = Run(path=Path("run"), status="running", config=run_config("time", 3, 80),
              events=tuple(events[:cut]))
    tracker = EtaTracker(run.config)
    for event in events[:cut]:
        tracker.feed(event)
    assert run_eta(run) == tracker.eta()


@pytest.mark.parametrize("arch,stacked", [("time", False), ("time", True),
                                          ("timefreq-init", False), ("timefreq-init", True)])
def test_eta_upper_bound_only_tightens_and_holds(arch, stacked):
    for seed in range(3):
        events = simulated_events(arch=arch, n_folds=3, max_epochs=150, stacked=stacked,
                                  seed=seed)
        etas = replay(events, arch=arch, n_folds=3, max_epochs=150)
        highs = [eta.high_s for eta, _ in etas]
        assert all(b <= a + 1e-9 for a, b in zip(highs, highs[1:])), "the bound grew"
        for eta, left in etas:
            assert eta.low_s <= eta.high_s
            assert left <= eta.high_s + 1e-9, (left, eta)
            # the fewest epochs are certain; their time is the median's, so allow noise
            assert left >= 0.5 * eta.low_s, (left, eta)
        assert highs[-1] == pytest.approx(0.0, abs=1e-9)
        # it narrows as epochs pass, not only at the end
        assert highs[len(highs) // 2] < 0.9 * highs[0]


def test_likely_eta_comes_from_complete_folds():
    events = simulated_events(arch="time", n_folds=3, max_epochs=80, stacked=False, seed=1)
    # a run that is in fold 1 (fold 0 complete): cut after fold 1's third epoch
    fold0 = [e for e in events if e.get("fold") == 0 and e["event"] == "epoch"]
    cut = next(i for i, e in enumerate(events)
               if e.get("fold") == 1 and e.get("epoch") == 3)
    partial = events[:cut + 1] + [{"event": "fold_end", "fold": 0}]
    config = run_config("time", 3, 80)
    eta = run_eta(Run(path=Path("run"), status="running", config=config,
                      events=tuple(partial)))
    assert eta.likely_s is not None and eta.low_s <= eta.likely_s <= eta.high_s
    # fold 1 has len(fold0) - 3 epochs to go, fold 2 len(fold0), at about 1 s each
    expected = 2 * len(fold0) - 3
    assert 0.5 * expected < eta.likely_s < 2 * expected
    # not running, or nothing trained yet: no ETA
    assert run_eta(Run(path=Path("run"), status="finished", config=config,
                       events=tuple(events))) is None
    assert run_eta(Run(path=Path("run"), status="running", config=config,
                       events=tuple(events[:1]))) is None


def test_eta_text_gives_one_value_when_the_bounds_meet():
    from tfcnn.ui.run_control import eta_text

    # a cap of 2 epochs: after the first, the fewest and the most epochs left are both 1
    events = ({"event": "fold_start", "fold": 0, "max_epochs": 2},
              {"event": "epoch", "fold": 0, "epoch": 1, "stage": "time", "train_loss": 2.0,
               "seconds": 21.0})
    run = Run(path=Path("run"), status="running", config=run_config("time", 1, 2),
              events=events)
    assert eta_text(run) == "ETA 21 s"


def run_read_after(tmp_path, events, seconds: float, *, config=None) -> Run:
    """The run of ``events`` as read ``seconds`` after its last event was written."""
    import os
    import time

    progress = tmp_path / "progress.jsonl"
    progress.write_text("", encoding="utf-8")
    os.utime(progress, (time.time() - seconds, time.time() - seconds))
    return Run(path=tmp_path, status="running", config=config or run_config("time", 3, 80),
               events=tuple(events))


def test_run_eta_counts_down_the_epoch_in_progress_then_holds(tmp_path):
    """Read within an epoch, the ETA is that much less; read after more than an epoch's
    usual time, it has run down by one epoch and holds, saying how far the epoch is over."""
    events = simulated_events(arch="time", n_folds=3, max_epochs=80, stacked=False, seed=0)
    cut = len(events) // 2
    tracker = EtaTracker(run_config("time", 3, 80))
    for event in events[:cut]:
        tracker.feed(event)
    at_record = tracker.eta()
    assert 0.5 < at_record.epoch_s < 2.0  # the simulated epochs take about 1 s
    within = run_eta(run_read_after(tmp_path, events[:cut], 0.4 * at_record.epoch_s))
    assert within.high_s == pytest.approx(at_record.high_s - 0.4 * at_record.epoch_s, abs=0.2)
    assert within.overdue_s == pytest.approx(0.0, abs=0.2)
    late = run_eta(run_read_after(tmp_path, events[:cut], 30.0))
    assert late.high_s == pytest.approx(at_record.high_s - at_record.epoch_s, abs=0.2)
    assert late.low_s == pytest.approx(at_record.low_s - at_record.epoch_s, abs=0.2)
    assert late.low_s > 0 and late.overdue_s == pytest.approx(30.0 - at_record.epoch_s, abs=1)
    assert at_record.after(1e9).high_s == at_record.after(30.0).high_s


def test_eta_text_never_says_zero_while_work_remains(tmp_path):
    from tfcnn.ui.run_control import eta_text

    config = run_config("time", 1, 2)
    first = ({"event": "fold_start", "fold": 0, "max_epochs": 2},
             {"event": "epoch", "fold": 0, "epoch": 1, "stage": "time", "train_loss": 2.0,
              "seconds": 20.0})
    # the last epoch takes 45 s instead of 20: it says so, never "0 s"
    text = eta_text(run_read_after(tmp_path, first, 45.0, config=config))
    assert text == "ETA: finishing the last epoch (the current epoch is 25 s over its usual 20 s)"
    # every epoch reported, the folds being tested: no countdown at all
    done = first + ({"event": "epoch", "fold": 0, "epoch": 2, "stage": "time",
                     "train_loss": 1.9, "seconds": 20.0},)
    text = eta_text(run_read_after(tmp_path, done, 30.0, config=config))
    assert text == "ETA: every epoch done, testing and saving the last folds"
    for seconds in (0.0, 10.0, 19.0, 45.0, 600.0):
        text = eta_text(run_read_after(tmp_path, first, seconds, config=config))
        assert not re.search(r"(?<![\d.])0 s", text), (seconds, text)


def test_eta_does_not_jump_up_when_a_run_is_resumed(tmp_path):
    """Cancelled in an epoch, resumed: the folds start again (fold_start) and redo the lost
    epoch. Read then, the ETA is where the run left it (the epoch in progress counted as
    spent), and the first epoch record after the resume carries it on without a jump."""
    events = simulated_events(arch="time", n_folds=3, max_epochs=80, stacked=False, seed=2)
    cut = next(i for i, e in enumerate(events) if e.get("fold") == 1 and e.get("epoch") == 5)
    before = events[:cut + 1]
    tracker = EtaTracker(run_config("time", 3, 80))
    for event in before:
        tracker.feed(event)
    at_cancel = tracker.eta()
    left_at_cancel = run_eta(run_read_after(tmp_path, before, 1e4))  # fully counted down
    resumed = before + [{"event": "fold_start", "fold": k, "max_epochs": 80} for k in (1, 2)]
    just_resumed = run_eta(run_read_after(tmp_path, resumed, 0.0))  # the file was just written
    assert just_resumed.resumed and just_resumed.overdue_s == 0.0
    for value in ("low_s", "high_s", "likely_s"):
        assert getattr(just_resumed, value) == pytest.approx(getattr(left_at_cancel, value))
    # the redone epoch is reported: the likely value carries on from there (within its
    # time's noise), where an unheld ETA would jump up by the whole lost epoch
    after = run_eta(run_read_after(tmp_path, resumed + [events[cut + 1]], 0.0))
    assert not after.resumed and at_cancel.likely_s is not None
    for value in ("likely_s", "high_s"):
        assert getattr(after, value) == pytest.approx(getattr(just_resumed, value),
                                                      abs=0.5 * at_cancel.epoch_s), value
    assert at_cancel.likely_s - just_resumed.likely_s > 0.9 * at_cancel.epoch_s
