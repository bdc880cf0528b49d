"""How much longer a running training run will take, from its own progress events.

Each fold (and each stage of ``timefreq-init``) trains until the paper's schedule stops it
or it reaches the epoch cap (:class:`tfcnn.fold_training.LossSchedule`). Replaying the
schedule over the training losses a fold has reported so far gives its state (the count of
epochs whose loss rose), hence how many epochs it may still train:

- at least ``stop_patience + 1 - counter`` (every next loss rises), and a fold not started
  yet at least ``stop_patience + 2`` (its first epoch only sets the reference);
- at most the epochs left to its cap.

Priced with the stage's measured epoch times (the median of its recent epoch records, and
an upper quantile of them for the bound) this gives a range that narrows as folds finish.
The upper end is the smallest bound made so far in the run (its finish time never moves
later on noise in the epoch times), and a likely value comes from the epochs the run's
finished folds took. Only the epoch count of the bounds is certain: a fold that runs to its
cap while the machine slows down can outlast the upper end.

Between two epoch records the clock runs down by at most one epoch (the one in progress,
at its typical time): an epoch slower than usual holds the estimate, and says by how much it
is over (:attr:`Eta.overdue_s`), instead of reaching 0 with work left. A resumed run (its
folds started again after their epoch records) has lost the epoch that was in progress and
redoes it; its estimate is read as at the end of that epoch, where the run left it, so it
does not jump up when Resume is pressed.
"""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass, replace

from tfcnn.config import training_stages
from tfcnn.fold_training import LossSchedule
from tfcnn.runs import PROGRESS_FILE, Run

#: Epoch records of a stage whose times price its remaining epochs: the median for the low
#: and likely values, a high quantile for the upper bound (epoch times vary with the load).
RECENT_EPOCHS = 20
HIGH_QUANTILE = 0.8


def _quantile(values: list[float], q: float) -> float:
    """The ``q`` quantile of ``values`` (nearest rank; 0.0 for none): a handful of values,
    every epoch, so no numpy."""
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


@dataclass(frozen=True)
class Eta:
    """Remaining time of a run, in seconds from its last epoch record (from now, as
    :func:`run_eta` gives it).

    Attributes
    ----------
    low_s : float
        If every unfinished fold stops as early as its schedule allows.
    high_s : float
        If every unfinished fold trains to its epoch cap (the smallest such bound so far).
    likely_s : float or None
        If every unfinished fold trains as many epochs as the run's finished folds did
        (median, within the bounds); None before a fold has finished each stage.
    epochs_left : tuple of int
        ``(fewest, most)`` epoch records still to come, over all folds and stages.
    epoch_s : float
        Typical seconds of the epoch in progress (the median of its stage's recent ones).
    overdue_s : float
        How far the epoch in progress runs over ``epoch_s`` (0 when it does not).
    resumed : bool
        The run was resumed and has not reported an epoch since.
    """

    low_s: float
    high_s: float
    likely_s: float | None
    epochs_left: tuple[int, int]
    epoch_s: float = 0.0
    overdue_s: float = 0.0
    resumed: bool = False

    def after(self, seconds: float) -> "Eta":
        """The same estimate ``seconds`` after the last epoch record: the epoch in progress
        counts down, by at most its typical time ``epoch_s``; the rest is ``overdue_s``."""
        seconds = max(seconds, 0.0)
        spent = min(seconds, self.epoch_s)

        def less(value: float | None) -> float | None:
            return None if value is None else max(value - spent, 0.0)

        return replace(self, low_s=less(self.low_s), high_s=less(self.high_s),
                       likely_s=less(self.likely_s), overdue_s=seconds - spent)


@dataclass
class _Stage:
    """One fold's stage as replayed so far."""

    schedule: LossSchedule
    epochs: int = 0
    done: bool = False


def _schedule(train: dict) -> LossSchedule:
    return LossSchedule(lr=float(train.get("lr", 0.01)),
                        stop_patience=int(train.get("stop_patience", 0)),
                        halve_patience=int(train.get("halve_patience", 0)))


class _Replay:
    """The schedule state of every fold and stage of a run, fed one event at a time."""

    def __init__(self, config: dict) -> None:
        train = config.get("train_config") or {}
        self.train = train
        self.cap = int(train.get("max_epochs") or 0)
        self.stop_patience = int(train.get("stop_patience", 0))
        self.stages = training_stages(str(config.get("arch", "")))
        n_folds = int(config.get("n_folds") or 0)
        self.folds = list(config.get("only_folds") or range(n_folds))
        self.state: dict[tuple[int, str], _Stage] = {}
        self.complete: set[int] = set()
        self.seconds: dict[str, list[float]] = {s: [] for s in self.stages}
        self.finished_epochs: dict[str, list[int]] = {s: [] for s in self.stages}
        self.last_stage = self.stages[0] if self.stages else ""
        #: a fold started again after its epoch records (--resume), no epoch since
        self.resumed = False

    def feed(self, event: dict) -> bool:
        """Take one progress event; True when it was an epoch record."""
        kind = event.get("event")
        if kind == "fold_start" and "fold" in event:
            fold = int(event["fold"])
            if any(key[0] == fold for key in self.state) and fold not in self.complete:
                self.resumed = True
            return False
        if kind == "fold_end" and "fold" in event:
            fold = int(event["fold"])
            self.complete.add(fold)
            for stage in self.stages:
                st = self.state.get((fold, stage))
                if st is not None and not st.done:
                    st.done = True
                    self.finished_epochs[stage].append(st.epochs)
            return False
        if kind != "epoch" or "fold" not in event:
            return False
        stage = str(event.get("stage") or self.stages[-1])
        self.last_stage, self.resumed = stage, False
        key = (int(event["fold"]), stage)
        st = self.state.get(key)
        if st is None or int(event.get("epoch", 0)) == 1:  # a fold trained again from scratch
            st = self.state[key] = _Stage(_schedule(self.train))
            self.complete.discard(key[0])
        loss = event.get("train_loss")
        action = st.schedule.step(float("nan") if loss is None else float(loss))
        st.epochs += 1
        if action == "stop" or st.epochs >= self.cap:
            # this fold's stage is over (stacked folds report their end only at the end)
            st.done = True
            self.finished_epochs[stage].append(st.epochs)
        if isinstance(event.get("seconds"), (int, float)) and stage in self.seconds:
            self.seconds[stage].append(float(event["seconds"]))
        return True

    def _epoch_seconds(self, q: float) -> dict[str, float]:
        """Quantile ``q`` of each stage's recent epoch times (a stage with none yet: of
        every stage's)."""
        everything = [s for values in self.seconds.values() for s in values]
        fallback = _quantile(everything[-RECENT_EPOCHS:], q)
        return {stage: _quantile(values[-RECENT_EPOCHS:], q) if values else fallback
                for stage, values in self.seconds.items()}

    def epoch_s(self) -> float:
        """Typical seconds of the epoch in progress (its stage's median so far)."""
        return self._epoch_seconds(0.5).get(self.last_stage, 0.0)

    def remaining(self) -> tuple[float, float, float | None, int, int]:
        """``(low_s, high_s, likely_s, fewest epochs, most epochs)`` still to come."""
        typical, slow = self._epoch_seconds(0.5), self._epoch_seconds(HIGH_QUANTILE)
        low = high = likely = 0.0
        n_low = n_high = 0
        have_likely = all(self.finished_epochs[s] for s in self.stages)
        for fold in self.folds:
            if fold in self.complete:
                continue
            for stage in self.stages:
                st = self.state.get((fold, stage))
                if st is None:
                    done, lo, hi = 0, min(self.stop_patience + 2, self.cap), self.cap
                elif st.done:
                    continue
                else:
                    done, hi = st.epochs, self.cap - st.epochs
                    lo = min(self.stop_patience + 1 - st.schedule.counter, hi)
                n_low, n_high = n_low + lo, n_high + hi
                low += lo * typical[stage]
                high += hi * slow[stage]
                if have_likely:
                    epochs = statistics.median(self.finished_epochs[stage])
                    likely += min(max(epochs - done, lo), hi) * typical[stage]
        return low, high, likely if have_likely else None, n_low, n_high


class EtaTracker:
    """The ETA of one run, fed its progress events in order (:meth:`feed`), read any time
    (:meth:`eta`). :func:`run_eta` feeds a whole run; a reader following a live run can keep
    one and feed it the new events only.

    Parameters
    ----------
    config : dict
        The run's ``config.json`` (arch, n_folds, only_folds, train_config).
    """

    def __init__(self, config: dict) -> None:
        self._replay = _Replay(config)
        self._elapsed = 0.0
        self._deadline = float("inf")
        self._seen = False

    def feed(self, event: dict) -> None:
        """Take the next progress event."""
        if not self._replay.feed(event):
            return
        self._seen = True
        if isinstance(event.get("seconds"), (int, float)):
            self._elapsed += float(event["seconds"])
        # the bound made at this epoch, as a finish time on the run's epoch clock
        self._deadline = min(self._deadline, self._elapsed + self._replay.remaining()[1])

    def eta(self) -> Eta | None:
        """The remaining time after the events fed so far; None before the first epoch."""
        if not self._seen:
            return None
        low, high, likely, n_low, n_high = self._replay.remaining()
        high = max(min(high, self._deadline - self._elapsed), 0.0)
        low = min(low, high)
        if likely is not None:
            likely = min(max(likely, low), high)
        return Eta(low_s=low, high_s=high, likely_s=likely, epochs_left=(n_low, n_high),
                   epoch_s=self._replay.epoch_s(), resumed=self._replay.resumed)


def run_eta(run: Run) -> Eta | None:
    """The remaining time of a running run (:class:`Eta`); None when it is not running or
    has no epoch record yet."""
    if run.status != "running" or not run.config:
        return None
    tracker = EtaTracker(run.config)
    for event in run.events:
        tracker.feed(event)
    eta = tracker.eta()
    if eta is None:
        return None
    if eta.resumed:  # the lost epoch is being redone: where the run left off, held
        return replace(eta.after(eta.epoch_s), overdue_s=0.0)
    try:  # counted from the last record written, so it counts down between epochs
        since = time.time() - (run.path / PROGRESS_FILE).stat().st_mtime
    except OSError:
        return eta
    return eta.after(since)
