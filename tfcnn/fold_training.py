"""Training one fold: its data, the paper's schedule, the epoch bookkeeping, the kept model.

The recipe is the paper's (Pons et al. 2016, §2): minibatch SGD on mean cross-entropy, batch
10, learning rate 0.01 halved whenever the training loss gets stuck, and the model with the
best validation accuracy kept for testing. :class:`LossSchedule` holds the schedule rules,
:class:`FoldTracker` the per-epoch bookkeeping and the best-model rule, :func:`train_fold`
the epoch loop of one fold. :func:`tfcnn.parallel.train_folds_parallel` trains several folds
at once through the same :class:`FoldTracker`, so both paths keep the same records and the
same model.

Everything a fold trains on lives on the device as one tensor; minibatches are index slices
of a per-epoch ``torch.randperm`` drawn from a per-fold generator, so there is no DataLoader
and no per-batch host copy.

Given a :class:`tfcnn.train_state.FoldStateFile`, both loops save the fold's state at the
end of every epoch (before reporting it) and continue from the saved epoch when there is one.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Callable

import torch
import torch.nn.functional as F

from tfcnn.config import TrainConfig
from tfcnn.device import autocast
from tfcnn.errors import RunError
from tfcnn.train_state import FoldStateFile, rng_state, set_rng_state

#: Patches per forward pass when evaluating (no gradients: memory is the only limit).
EVAL_BATCH_SIZE = 1024


@dataclass
class LossSchedule:
    """The paper's learning-rate schedule as a pure state machine over epoch losses.

    After each epoch (original code's rule, Pons et al. 2016 §2 "the learning rate is divided
    by two every time the training loss gets stuck until there is no more improvement"):

    - training loss above the reference loss → ``counter += 1``; stop once
      ``counter > stop_patience``;
    - otherwise, if ``counter > halve_patience`` → ``lr /= 2`` and ``counter = 0``; the
      reference becomes this epoch's loss.

    The first epoch always sets the reference (it starts at +inf).
    """

    lr: float
    stop_patience: int
    halve_patience: int
    counter: int = 0
    reference: float = math.inf
    stopped: bool = False

    @classmethod
    def from_config(cls, config: TrainConfig) -> "LossSchedule":
        return cls(lr=config.lr, stop_patience=config.stop_patience,
                   halve_patience=config.halve_patience)

    def step(self, train_loss: float) -> str:
        """Feed one epoch's mean training loss; returns ``"continue"``, ``"halve"`` or ``"stop"``.

        After ``"halve"``, :attr:`lr` already holds the new (halved) rate.
        """
        if self.stopped:
            return "stop"
        if not math.isfinite(train_loss):
            # A diverged loss can only get worse: stop and keep the best model so far.
            self.stopped = True
            return "stop"
        if train_loss > self.reference:
            self.counter += 1
            if self.counter > self.stop_patience:
                self.stopped = True
                return "stop"
            return "continue"
        action = "continue"
        if self.counter > self.halve_patience:
            self.lr /= 2.0
            self.counter = 0
            action = "halve"
        self.reference = train_loss
        return action


@dataclass
class FoldData:
    """Everything one fold trains on, already normalised and on the device.

    Attributes
    ----------
    fold : int
        Fold index (0-based).
    train_x : torch.Tensor, shape (n_train_patches, 1, n_mels, patch_frames), float32
    train_y : torch.Tensor, shape (n_train_patches,), int64
    val_x : torch.Tensor, shape (n_val_patches, 1, n_mels, patch_frames), float32
        May be empty (0 patches): then the lowest training loss picks the kept model.
    val_y : torch.Tensor, shape (n_val_patches,), int64
    seed : int
        This fold's data-order / init seed (see :func:`fold_seed`).
    """

    fold: int
    train_x: torch.Tensor
    train_y: torch.Tensor
    val_x: torch.Tensor
    val_y: torch.Tensor
    seed: int


@dataclass
class FoldTraining:
    """What training one fold returns.

    Attributes
    ----------
    state_dict : dict
        Weights of the epoch with the best validation accuracy (ties → lower validation
        loss), as CPU tensors.
    history : list of dict
        The epoch records, as written to ``progress.jsonl``.
    best_epoch : int
        1-based epoch of ``state_dict``.
    """

    state_dict: dict
    history: list[dict] = field(default_factory=list)
    best_epoch: int = 0


def fold_seed(seed: int, fold: int) -> int:
    """The seed of fold ``fold`` in a run seeded with ``seed`` (init, dropout, data order)."""
    return int(seed) * 1000 + int(fold)


def fold_generator(seed: int) -> torch.Generator:
    """The CPU generator that draws a fold's epoch orders.

    Orders are drawn on the CPU and moved to the device once per epoch, so a fold sees the
    same minibatches on every device and in :mod:`tfcnn.parallel`.
    """
    return torch.Generator(device="cpu").manual_seed(int(seed))


def epoch_order(n: int, generator: torch.Generator, device: torch.device) -> torch.Tensor:
    """A random permutation of ``range(n)`` (shape ``(n,)``, int64) on ``device``."""
    return torch.randperm(n, generator=generator).to(device, non_blocking=True)


@torch.no_grad()
def evaluate_patches(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, *,
                     batch_size: int = EVAL_BATCH_SIZE,
                     config: TrainConfig | None = None) -> tuple[float, float]:
    """Mean cross-entropy and accuracy of ``model`` (eval mode) on patches ``x`` with labels ``y``.

    Parameters
    ----------
    x : torch.Tensor, shape (n, 1, n_mels, patch_frames)
    y : torch.Tensor, shape (n,)

    Returns
    -------
    (loss, accuracy) : tuple of float
        ``(nan, nan)`` when ``n == 0``.
    """
    n = int(y.shape[0])
    if n == 0:
        return math.nan, math.nan
    was_training = model.training
    model.eval()
    loss_sum = torch.zeros((), device=x.device, dtype=torch.float64)
    correct = torch.zeros((), device=x.device, dtype=torch.int64)
    for start in range(0, n, batch_size):
        xb, yb = x[start:start + batch_size], y[start:start + batch_size]
        if config is not None:
            with autocast(x.device, config):
                logits = model(xb)  # (b, n_classes)
        else:
            logits = model(xb)
        logits = logits.float()
        loss_sum += F.cross_entropy(logits, yb, reduction="sum").double()
        correct += (logits.argmax(dim=1) == yb).sum()
    model.train(was_training)
    return float(loss_sum) / n, int(correct) / n


def cpu_state_dict(model: torch.nn.Module) -> dict:
    """A copy of ``model``'s state dict as CPU tensors."""
    return {k: v.detach().to("cpu", copy=True) for k, v in model.state_dict().items()}


def _finite_or_none(x: float) -> float | None:
    return float(x) if math.isfinite(x) else None


class FoldTracker:
    """One fold's bookkeeping across epochs: schedule, epoch records and the kept model.

    The best-model rule (paper §2: the model with the best validation accuracy is kept for
    testing): higher validation accuracy wins, equal accuracy → lower validation loss; a fold
    without validation patches keeps the epoch with the lowest training loss.

    Parameters
    ----------
    data : FoldData
    config : TrainConfig
        lr and the schedule's patience.
    on_epoch : callable, optional
        Called with each epoch record as it is made.
    save : callable, optional
        Called with the tracker after each epoch's bookkeeping, before ``on_epoch``: the
        loop's hook that saves the fold's resumable state, so an epoch is reported only
        once it is saved.
    """

    def __init__(self, data: FoldData, config: TrainConfig,
                 on_epoch: Callable[[dict], None] | None = None,
                 save: Callable[["FoldTracker"], None] | None = None) -> None:
        self.data = data
        self.schedule = LossSchedule.from_config(config)
        self.max_epochs = int(config.max_epochs)
        self.on_epoch = on_epoch
        self.save = save
        self.has_val = int(data.val_y.shape[0]) > 0
        self.history: list[dict] = []
        self.best_state: dict | None = None
        self.best_epoch = 0
        self._best = (-math.inf, math.inf)  # (score accuracy, score loss)

    @property
    def lr(self) -> float:
        """The learning rate of the next epoch."""
        return self.schedule.lr

    @property
    def epoch(self) -> int:
        """Epochs done (one record each)."""
        return len(self.history)

    @property
    def finished(self) -> bool:
        """Whether the fold's training is over: stopped by the schedule, or out of epochs."""
        return self.schedule.stopped or self.epoch >= self.max_epochs

    def state_dict(self) -> dict:
        """Schedule, epoch records and kept model, for :meth:`load_state_dict` (plain types
        and CPU tensors)."""
        s = self.schedule
        return {"schedule": {"lr": s.lr, "counter": s.counter, "reference": s.reference,
                             "stopped": s.stopped},
                "history": [dict(r) for r in self.history], "best_state": self.best_state,
                "best_epoch": self.best_epoch, "best": list(self._best)}

    def load_state_dict(self, state: dict) -> None:
        """Continue from :meth:`state_dict` (the patience rules come from the config)."""
        for name, value in state["schedule"].items():
            setattr(self.schedule, name, value)
        self.history = [dict(r) for r in state["history"]]
        self.best_state = state["best_state"]
        self.best_epoch = int(state["best_epoch"])
        self._best = tuple(state["best"])

    def _improves(self, acc: float, loss: float) -> bool:
        best_acc, best_loss = self._best
        if acc > best_acc:
            return True
        return acc == best_acc and loss < best_loss

    def end_epoch(self, model: torch.nn.Module, *, epoch: int, train_loss: float,
                  train_acc: float, val_loss: float, val_acc: float, started: float) -> str:
        """Record one finished epoch; returns the schedule's action for the next one.

        Keeps ``model``'s weights (as CPU tensors) when they beat the best so far, appends
        the epoch record ``{"event": "epoch", "fold", "epoch", "train_loss", "train_acc",
        "val_loss", "val_acc", "lr", "seconds"}`` (``seconds`` since ``started``, a
        ``time.perf_counter()`` value), steps the schedule, calls ``save``, then passes the
        record to ``on_epoch``.

        Returns
        -------
        str
            ``"continue"``, ``"halve"`` (:attr:`lr` is already the new rate) or ``"stop"``.
        """
        if self.has_val:
            score = (val_acc, val_loss)
        else:
            score = (-train_loss, train_loss)
        if self.best_state is None or self._improves(*score):
            self._best = score
            self.best_state = cpu_state_dict(model)
            self.best_epoch = epoch
        record = {
            "event": "epoch",
            "fold": self.data.fold,
            "epoch": epoch,
            "train_loss": _finite_or_none(train_loss),
            "train_acc": train_acc,
            "val_loss": _finite_or_none(val_loss),
            "val_acc": _finite_or_none(val_acc),
            "lr": self.schedule.lr,
            "seconds": time.perf_counter() - started,
        }
        self.history.append(record)
        action = self.schedule.step(train_loss)
        if self.save is not None:
            self.save(self)
        if self.on_epoch is not None:
            self.on_epoch(record)
        return action

    def result(self) -> FoldTraining:
        """The kept weights, the epoch records and the best epoch."""
        return FoldTraining(state_dict=self.best_state, history=self.history,
                            best_epoch=self.best_epoch)


def train_fold(model: torch.nn.Module, data: FoldData, config: TrainConfig, *,
               device: torch.device | str, on_epoch: Callable[[dict], None] | None = None,
               state: FoldStateFile | None = None) -> FoldTraining:
    """Train ``model`` on one fold with the paper's schedule; keep the best-validation weights.

    Parameters
    ----------
    model : torch.nn.Module
        Freshly built (its init seeded by the caller with ``data.seed``); moved to ``device``.
    data : FoldData
        Patches ``(n, 1, n_mels, patch_frames)`` and labels, on ``device``.
    config : TrainConfig
        lr, batch_size, max_epochs, stop/halve patience, amp.
    device : torch.device or str
    on_epoch : callable, optional
        Called with each epoch record ``{"event": "epoch", "fold", "epoch", "train_loss",
        "train_acc", "val_loss", "val_acc", "lr", "seconds"}`` as it happens.
    state : FoldStateFile, optional
        Where the fold's resumable state goes after every epoch; when it holds a saved
        state, training continues from that epoch (weights, optimizer, schedule, records,
        best model and every generator restored), and a finished one is returned as is.

    Returns
    -------
    FoldTraining
        Best state dict (CPU), the epoch records, the best epoch (1-based).
    """
    device = torch.device(device)
    n_train = int(data.train_y.shape[0])
    if n_train == 0:
        raise RunError(f"fold {data.fold}: no training patches")
    # Seeds dropout (and anything else drawing from the global generator) per fold.
    torch.manual_seed(data.seed)
    generator = fold_generator(data.seed)
    model.to(device)
    # Plain SGD (no momentum, no weight decay): the paper's "minibatch gradient descent".
    optimizer = torch.optim.SGD(model.parameters(), lr=config.lr)
    save = None
    if state is not None:
        def save(tracker: FoldTracker) -> None:
            for group in optimizer.param_groups:
                group["lr"] = tracker.lr  # the next epoch's rate, as the loop sets it below
            state.save(model=cpu_state_dict(model), optimizer=optimizer.state_dict(),
                       tracker=tracker.state_dict(), rng=rng_state(generator))
    tracker = FoldTracker(data, config, on_epoch, save)
    saved = state.load() if state is not None else None
    if saved is not None:
        model.load_state_dict(saved["model"])
        optimizer.load_state_dict(saved["optimizer"])
        tracker.load_state_dict(saved["tracker"])
        set_rng_state(saved["rng"], generator)
    batch = int(config.batch_size)

    for epoch in range(tracker.epoch + 1, int(config.max_epochs) + 1):
        if tracker.schedule.stopped:
            break
        t0 = time.perf_counter()
        model.train()
        order = epoch_order(n_train, generator, device)  # (n_train,)
        loss_sum = torch.zeros((), device=device, dtype=torch.float64)
        correct = torch.zeros((), device=device, dtype=torch.int64)
        for start in range(0, n_train, batch):
            idx = order[start:start + batch]
            xb = data.train_x.index_select(0, idx)  # (b, 1, n_mels, patch_frames)
            yb = data.train_y.index_select(0, idx)  # (b,)
            with autocast(device, config):
                logits = model(xb)  # (b, n_classes)
            loss = F.cross_entropy(logits.float(), yb)  # mean over the batch
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            loss_sum += loss.detach().double() * idx.shape[0]
            correct += (logits.detach().argmax(dim=1) == yb).sum()
        # One host sync per epoch, not per batch.
        train_loss = float(loss_sum) / n_train
        train_acc = int(correct) / n_train
        if tracker.has_val:
            val_loss, val_acc = evaluate_patches(model, data.val_x, data.val_y, config=config)
        else:
            val_loss, val_acc = math.nan, math.nan
        action = tracker.end_epoch(model, epoch=epoch, train_loss=train_loss,
                                   train_acc=train_acc, val_loss=val_loss, val_acc=val_acc,
                                   started=t0)
        if action == "stop":
            break
        if action == "halve":
            for group in optimizer.param_groups:
                group["lr"] = tracker.lr

    return tracker.result()
