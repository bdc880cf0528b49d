"""Training: one fold (:func:`train_fold`) and the whole cross-validation (:func:`train_run`).

The recipe is the paper's (Pons et al. 2016, §2): minibatch SGD on mean cross-entropy, batch
10, learning rate 0.01 halved whenever the training loss gets stuck, and the model with the
best validation accuracy kept for testing. :class:`LossSchedule` holds the schedule rules as a
small pure object; :func:`train_fold` holds the epoch loop; :func:`train_run` wires data set,
folds, normalisation, training, evaluation and the run folder together.

Everything a fold trains on lives on the device as one tensor; minibatches are index slices
of a per-epoch ``torch.randperm`` drawn from a per-fold generator, so there is no DataLoader
and no per-batch host copy. ``tfcnn.parallel.train_folds_parallel`` implements the same
:func:`train_fold` semantics for several folds at once (the seam of ``docs/design.md``).
"""

from __future__ import annotations

import json
import math
import os
import signal
import socket
import subprocess
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F

from tfcnn import __version__
from tfcnn.config import FRONT_END, TrainConfig, preset as get_preset
from tfcnn.errors import ConfigError, DatasetError, RunError, TfcnnError
from tfcnn.atomic import write_json_atomic
from tfcnn.runs import (
    CONFIG_FILE,
    FOLD_MODEL_FILE,
    FOLD_RESULT_FILE,
    RESULTS_FILE,
    STATUS_FILE,
    append_event,
    fold_dir,
    snapshot_path,
)

#: ``timefreq-init``: a ``timefreq`` model whose two branches start from the ``time`` and
#: ``frequency`` models trained on the same fold (the original code's active configuration).
TIMEFREQ_INIT = "timefreq-init"
TIMEFREQ_INIT_STAGES: tuple[str, ...] = ("time", "frequency", "timefreq")

#: Patches per forward pass when evaluating (no gradients: memory is the only limit).
EVAL_BATCH_SIZE = 1024


class RunCancelled(RunError):
    """The run was cancelled (SIGTERM from the app, or Ctrl-C); complete folds are kept."""


# --------------------------------------------------------------------------- device


def select_device(name: str = "auto") -> torch.device:
    """The torch device called ``name``; ``auto`` picks CUDA, then MPS, then CPU.

    Raises :class:`ConfigError` for an unknown name or a device this machine lacks.
    """
    if not isinstance(name, str) or not name:
        raise ConfigError(f"device must be a name like 'auto', 'cpu', 'cuda', got {name!r}")
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        mps = getattr(torch.backends, "mps", None)
        if mps is not None and mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        device = torch.device(name)
    except (RuntimeError, ValueError):
        raise ConfigError(
            f"unknown device {name!r}; use auto, cpu, cuda, cuda:N or mps"
        ) from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"device {name!r} requested but CUDA is not available here")
    if device.type == "cuda" and device.index is not None:
        if device.index >= torch.cuda.device_count():
            raise ConfigError(
                f"device {name!r}: only {torch.cuda.device_count()} CUDA device(s) here"
            )
    if device.type == "mps":
        mps = getattr(torch.backends, "mps", None)
        if mps is None or not mps.is_available():
            raise ConfigError(f"device {name!r} requested but MPS is not available here")
    if device.type not in ("cpu", "cuda", "mps"):
        raise ConfigError(f"unsupported device {name!r}; use auto, cpu, cuda, cuda:N or mps")
    return device


# --------------------------------------------------------------------------- schedule


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


# --------------------------------------------------------------------------- the seam


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
    same minibatches on every device and in ``tfcnn.parallel``.
    """
    return torch.Generator(device="cpu").manual_seed(int(seed))


def epoch_order(n: int, generator: torch.Generator, device: torch.device) -> torch.Tensor:
    """A random permutation of ``range(n)`` (shape ``(n,)``, int64) on ``device``."""
    return torch.randperm(n, generator=generator).to(device, non_blocking=True)


def _autocast(device: torch.device, config: TrainConfig):
    """bfloat16 autocast on CUDA when ``config.amp`` (needs no loss scaling); else a no-op."""
    enabled = bool(config.amp) and device.type == "cuda"
    return torch.autocast(device_type=device.type, dtype=torch.bfloat16, enabled=enabled)


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
            with _autocast(x.device, config):
                logits = model(xb)  # (b, n_classes)
        else:
            logits = model(xb)
        logits = logits.float()
        loss_sum += F.cross_entropy(logits, yb, reduction="sum").double()
        correct += (logits.argmax(dim=1) == yb).sum()
    model.train(was_training)
    return float(loss_sum) / n, int(correct) / n


def _is_better(val_acc: float, val_loss: float, best_acc: float, best_loss: float) -> bool:
    """Higher validation accuracy wins; equal accuracy → lower validation loss."""
    if val_acc > best_acc:
        return True
    return val_acc == best_acc and val_loss < best_loss


def _cpu_state_dict(model: torch.nn.Module) -> dict:
    return {k: v.detach().to("cpu", copy=True) for k, v in model.state_dict().items()}


def _finite_or_none(x: float) -> float | None:
    return float(x) if math.isfinite(x) else None


def train_fold(model: torch.nn.Module, data: FoldData, config: TrainConfig, *,
               device: torch.device | str, on_epoch: Callable[[dict], None] | None = None,
               ) -> FoldTraining:
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
    schedule = LossSchedule.from_config(config)
    has_val = int(data.val_y.shape[0]) > 0

    history: list[dict] = []
    best_state: dict | None = None
    best_epoch = 0
    best_acc, best_loss = -math.inf, math.inf
    batch = int(config.batch_size)

    for epoch in range(1, int(config.max_epochs) + 1):
        t0 = time.perf_counter()
        model.train()
        order = epoch_order(n_train, generator, device)  # (n_train,)
        loss_sum = torch.zeros((), device=device, dtype=torch.float64)
        correct = torch.zeros((), device=device, dtype=torch.int64)
        for start in range(0, n_train, batch):
            idx = order[start:start + batch]
            xb = data.train_x.index_select(0, idx)  # (b, 1, n_mels, patch_frames)
            yb = data.train_y.index_select(0, idx)  # (b,)
            with _autocast(device, config):
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
        if has_val:
            val_loss, val_acc = evaluate_patches(model, data.val_x, data.val_y, config=config)
        else:
            val_loss, val_acc = math.nan, math.nan

        lr_used = optimizer.param_groups[0]["lr"]
        score_acc = val_acc if has_val else -train_loss
        score_loss = val_loss if has_val else train_loss
        if best_state is None or _is_better(score_acc, score_loss, best_acc, best_loss):
            best_acc, best_loss = score_acc, score_loss
            best_state = _cpu_state_dict(model)
            best_epoch = epoch

        record = {
            "event": "epoch",
            "fold": data.fold,
            "epoch": epoch,
            "train_loss": _finite_or_none(train_loss),
            "train_acc": train_acc,
            "val_loss": _finite_or_none(val_loss),
            "val_acc": _finite_or_none(val_acc),
            "lr": lr_used,
            "seconds": time.perf_counter() - t0,
        }
        history.append(record)
        if on_epoch is not None:
            on_epoch(record)

        action = schedule.step(train_loss)
        if action == "stop":
            break
        if action == "halve":
            for group in optimizer.param_groups:
                group["lr"] = schedule.lr

    return FoldTraining(state_dict=best_state, history=history, best_epoch=best_epoch)


# --------------------------------------------------------------------------- the run


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def code_version() -> str:
    """``tfcnn <version>`` plus the git commit of the source tree when there is one."""
    version = f"tfcnn {__version__}"
    try:
        out = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=Path(__file__).resolve().parent,
            capture_output=True, text=True, timeout=5, check=False,
        )
        if out.returncode == 0 and out.stdout.strip():
            version += f" ({out.stdout.strip()})"
    except (OSError, subprocess.SubprocessError):
        pass
    return version


def machine_info(device: torch.device | None = None) -> dict:
    """Where a run trained: host, CPU count, torch version, device (and GPU name)."""
    info = {
        "host": socket.gethostname(),
        "cpu_count": os.cpu_count(),
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
    }
    if device is not None:
        info["device"] = str(device)
        if device.type == "cuda":
            info["gpu"] = torch.cuda.get_device_name(device)
    return info


def _stage_archs(arch: str) -> tuple[str, ...]:
    """The models trained, in order, for one fold of ``arch`` (the last one is tested)."""
    return ("time", "frequency", TIMEFREQ_INIT) if arch == TIMEFREQ_INIT else (arch,)


def _stage_params(stage_arch: str, arch_params: dict) -> dict:
    """The subset of ``arch_params`` that ``stage_arch`` accepts (timefreq-init's sub-models)."""
    from tfcnn.models import arch_param_names

    valid = set(arch_param_names(stage_arch))
    return {k: v for k, v in arch_params.items() if k in valid}


def _resolve_train_config(preset: str, overrides: dict | None, seed: int) -> TrainConfig:
    config = get_preset(preset)
    overrides = dict(overrides or {})
    unknown = sorted(set(overrides) - set(config.to_dict()) - {"epochs"})
    if unknown:
        raise ConfigError(
            f"unknown training override(s) {', '.join(unknown)}; valid: "
            f"epochs, {', '.join(k for k in config.to_dict() if k != 'preset')}"
        )
    if "epochs" in overrides:
        overrides.setdefault("max_epochs", overrides.pop("epochs"))
    return config.with_overrides(**overrides, seed=seed)


def _parse_only_folds(only_folds, n_folds: int) -> list[int]:
    if only_folds is None:
        return list(range(n_folds))
    folds = sorted({int(f) for f in only_folds})
    bad = [f for f in folds if not 0 <= f < n_folds]
    if bad or not folds:
        raise ConfigError(
            f"only_folds must be fold indices in 0..{n_folds - 1}, got {list(only_folds)!r}"
        )
    return folds


#: config.json keys that must agree for ``--resume`` (device, code version may change).
RESUME_KEYS: tuple[str, ...] = ("data", "arch", "arch_params", "train_config", "protocol",
                                "n_folds", "seed", "front_end")


def _prepare_run_dir(out: Path, run_config: dict, *, resume: bool) -> dict:
    """Create or reopen the run folder; returns the previous status (``{}`` for a new run)."""
    config_path = out / CONFIG_FILE
    if resume:
        if not config_path.is_file():
            raise RunError(f"cannot resume {out}: no {CONFIG_FILE} there (not a run folder)")
        old = json.loads(config_path.read_text(encoding="utf-8"))
        diffs = [f"{k}: run has {old.get(k)!r}, now {run_config.get(k)!r}"
                 for k in RESUME_KEYS if old.get(k) != run_config.get(k)]
        if diffs:
            raise RunError(f"cannot resume {out}: configuration differs ({'; '.join(diffs)})")
        status = {}
        if (out / STATUS_FILE).is_file():
            status = json.loads((out / STATUS_FILE).read_text(encoding="utf-8"))
        pid = status.get("pid")
        from tfcnn.runs import run_status

        if run_status(out) == "running" and pid != os.getpid():
            raise RunError(f"cannot resume {out}: it is still running (pid {pid})")
        return status
    if out.exists():
        if not out.is_dir():
            raise RunError(f"run folder {out} exists and is not a folder")
        if any(out.iterdir()):
            raise RunError(
                f"run folder {out} already exists and is not empty; use --resume to continue "
                f"it or choose another --out"
            )
    out.mkdir(parents=True, exist_ok=True)
    write_json_atomic(config_path, run_config)
    return {}


class _PatchBank:
    """All tracks' patches in one device tensor, un-normalised (normalised per fold).

    ``x``: (n_patches, n_mels, patch_frames) float32 on the device; ``track``: (n_patches,)
    numpy track index of each patch; per-track value sums for the normalisation statistics.
    """

    def __init__(self, specs: list[np.ndarray], track_ids: list[str], *, patch_frames: int,
                 device: torch.device):
        from tfcnn.features import to_patches

        patches = [to_patches(np.asarray(s, dtype=np.float32), patch_frames=patch_frames)
                   for s in specs]  # each (n_i, n_mels, patch_frames)
        self.counts = np.array([p.shape[0] for p in patches], dtype=np.int64)
        short = [track_ids[i] for i in np.flatnonzero(self.counts == 0)]
        if short:
            raise DatasetError(
                f"{len(short)} track(s) shorter than one patch ({FRONT_END.patch_seconds:.2f} s "
                f"= {patch_frames} frames): {', '.join(short[:5])}"
                + (" ..." if len(short) > 5 else "")
            )
        self.offsets = np.concatenate([[0], np.cumsum(self.counts)[:-1]])
        self.track = np.repeat(np.arange(len(specs)), self.counts)  # (n_patches,)
        self.x = torch.from_numpy(np.concatenate(patches, axis=0)).to(device)
        # Statistics over the full spectrograms (every frame, not only the patched ones).
        self.sums = np.array([float(np.sum(s, dtype=np.float64)) for s in specs])
        self.sumsq = np.array([float(np.sum(np.square(s, dtype=np.float64))) for s in specs])
        self.sizes = np.array([s.size for s in specs], dtype=np.float64)

    def norm(self, tracks: np.ndarray) -> tuple[float, float]:
        """One scalar mean and std over the log-mel values of ``tracks`` (paper §2: not
        attribute-wise, so the relations between bins and frames stay intact)."""
        n = self.sizes[tracks].sum()
        mean = self.sums[tracks].sum() / n
        var = max(self.sumsq[tracks].sum() / n - mean * mean, 0.0)
        std = math.sqrt(var)
        return float(mean), float(std if std > 0 else 1.0)

    def patch_index(self, tracks: np.ndarray) -> np.ndarray:
        """Indices of the patches of ``tracks``, track by track in the given order, shape (n,)."""
        if len(tracks) == 0:
            return np.empty(0, dtype=np.int64)
        return np.concatenate([np.arange(self.offsets[t], self.offsets[t] + self.counts[t])
                               for t in tracks]).astype(np.int64)

    def spectrogram(self, track: int) -> np.ndarray:
        """Un-normalised log-mel of one track's patches, joined: (n_mels, n_patches · frames)."""
        x = self.x[self.offsets[track]:self.offsets[track] + self.counts[track]]  # (n, n_mels, pf)
        return torch.cat(list(x), dim=1).cpu().numpy()

    def take(self, index: np.ndarray, mean: float, std: float) -> torch.Tensor:
        """Normalised patches ``(len(index), 1, n_mels, patch_frames)`` on the device."""
        idx = torch.as_tensor(index, dtype=torch.long).to(self.x.device)
        return ((self.x.index_select(0, idx) - mean) / std).unsqueeze(1)


def _labels_of(bank: _PatchBank, index: np.ndarray, labels: np.ndarray,
               device: torch.device) -> torch.Tensor:
    return torch.as_tensor(labels[bank.track[index]], dtype=torch.long).to(device)


def _fold_data(bank: _PatchBank, fold, labels: np.ndarray, protocol: str, seed: int,
               device: torch.device) -> tuple[FoldData, float, float]:
    """A fold's normalised train/val tensors and its normalisation (mean, std)."""
    from tfcnn.folds import paper_validation_split

    if protocol == "paper":
        # The original normalised with the whole data set (paper §2).
        mean, std = bank.norm(np.arange(len(bank.counts)))
        train_all = bank.patch_index(fold.train)
        tr, va = paper_validation_split(int(train_all.size), seed)
        train_idx, val_idx = train_all[tr], train_all[va]
    else:
        mean, std = bank.norm(fold.train)
        train_idx, val_idx = bank.patch_index(fold.train), bank.patch_index(fold.val)
    if train_idx.size == 0:
        raise RunError(f"fold {fold.index}: its training songs give no patches")
    data = FoldData(
        fold=fold.index,
        train_x=bank.take(train_idx, mean, std),
        train_y=_labels_of(bank, train_idx, labels, device),
        val_x=bank.take(val_idx, mean, std),
        val_y=_labels_of(bank, val_idx, labels, device),
        seed=seed,
    )
    return data, mean, std


class _Run:
    """One invocation of :func:`train_run`: the run folder, its events and its status."""

    def __init__(self, out: Path, progress: Callable[[dict], None] | None, prior: dict):
        self.out = out
        self.progress = progress
        self.t0 = time.perf_counter()
        self.prior_wall_s = float(prior.get("wall_s") or 0.0)
        self.started = prior.get("started") or _now()

    def emit(self, event: dict) -> None:
        append_event(self.out, event)
        if self.progress is not None:
            self.progress(event)

    def wall_s(self) -> float:
        return self.prior_wall_s + (time.perf_counter() - self.t0)

    def status(self, state: str, *, error: str | None = None) -> None:
        write_json_atomic(self.out / STATUS_FILE, {
            "state": state,
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "started": self.started,
            "finished": None if state == "running" else _now(),
            "error": error,
            "wall_s": self.wall_s(),
        })


class _SigtermToCancel:
    """Within the block, SIGTERM raises :class:`RunCancelled` (the app cancels runs with it).

    Only in the main thread (signal handlers cannot be set elsewhere); restored on exit.
    """

    def __enter__(self):
        self.previous = None
        if threading.current_thread() is threading.main_thread():
            def handler(signum, frame):
                raise RunCancelled("run cancelled (SIGTERM)")

            self.previous = signal.signal(signal.SIGTERM, handler)
        return self

    def __exit__(self, *exc):
        if self.previous is not None:
            signal.signal(signal.SIGTERM, self.previous)
        return False


def train_run(data_dir, *, arch: str, out_dir, n_folds: int = 10, only_folds=None,
              preset: str = "quick", protocol: str = "clean", device: str = "auto",
              seed: int = 0, overrides: dict | None = None, arch_params: dict | None = None,
              resume: bool = False, progress: Callable[[dict], None] | None = None,
              sequential: bool = False, snapshots=None) -> dict:
    """Cross-validate architecture ``arch`` on a data set; write everything to ``out_dir``.

    Parameters
    ----------
    data_dir : str or Path
        A data set folder (see :func:`tfcnn.datasets.load_dataset`).
    arch : str
        ``blackbox``, ``timefreq``, ``time``, ``frequency`` or ``timefreq-init`` (per fold:
        ``time`` and ``frequency`` are trained first and initialise the ``timefreq`` branches).
    out_dir : str or Path
        The run folder; must be new or empty unless ``resume``.
    n_folds : int
        K of the K-fold cross-validation (paper: 10).
    only_folds : iterable of int, optional
        Train only these folds (0-based); ``results.json`` then covers the complete folds.
    preset : {"quick", "paper"}
        Training recipe from :data:`tfcnn.config.PRESETS`.
    protocol : {"clean", "paper"}
        Fold protocol (see :mod:`tfcnn.folds`) and normalisation: training songs only
        (``clean``) or the whole data set (``paper``, as the original).
    device : str
        ``auto`` (CUDA, then MPS, then CPU), ``cpu``, ``cuda``, ``cuda:N`` or ``mps``.
    seed : int
        Seeds folds, model init, dropout and data order; a CPU run is repeatable.
    overrides : dict, optional
        TrainConfig fields to replace (``max_epochs`` or ``epochs``, ``lr``, ``batch_size``,
        ``amp``, ...); None values are ignored.
    arch_params : dict, optional
        Architecture parameters (e.g. ``{"time_filter": (1, 120)}``).
    resume : bool
        Continue the run in ``out_dir``: complete folds (``result.json`` present) are kept,
        incomplete ones retrained. The configuration must match (else :class:`RunError`).
    progress : callable, optional
        Called with every event written to ``progress.jsonl`` (dicts, see docs/design.md).
    sequential : bool
        Train folds one after another even when ``tfcnn.parallel`` is available.
    snapshots : iterable of int, optional
        Also save the weights at these epochs (0 = the initial weights) of fold 0, or of
        ``only_folds`` when given, to ``snapshots/`` in the run folder; such folds train one
        after another.

    Returns
    -------
    dict
        The content of ``results.json``.

    Raises
    ------
    ConfigError, DatasetError, RunError
        Bad parameters, data set or run folder. :class:`RunCancelled` on SIGTERM / Ctrl-C
        (status ``cancelled``; complete folds are kept).
    """
    from tfcnn.datasets import load_dataset, require_two_classes
    from tfcnn.folds import PROTOCOLS as FOLD_PROTOCOLS
    from tfcnn.models import ARCHITECTURES, build_model, count_parameters

    # ---- validate everything before touching the disk
    if arch not in ARCHITECTURES:
        raise ConfigError(
            f"unknown architecture {arch!r}; valid architectures: {', '.join(ARCHITECTURES)}"
        )
    if protocol not in FOLD_PROTOCOLS:
        raise ConfigError(
            f"unknown protocol {protocol!r}; valid protocols: {', '.join(FOLD_PROTOCOLS)}"
        )
    if isinstance(n_folds, bool) or not isinstance(n_folds, int) or n_folds < 2:
        raise ConfigError(f"n_folds must be an integer >= 2, got {n_folds!r}")
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ConfigError(f"seed must be an integer >= 0, got {seed!r}")
    config = _resolve_train_config(preset, overrides, seed)
    folds_wanted = _parse_only_folds(only_folds, n_folds)
    if snapshots is not None:
        snapshots = sorted({int(e) for e in snapshots})
        if not snapshots or snapshots[0] < 0:
            raise ConfigError(f"snapshots must be epochs >= 0, got {snapshots!r}")
    dev = select_device(device)
    dataset = load_dataset(data_dir)
    require_two_classes(dataset)
    n_classes = len(dataset.classes)
    probe = build_model(arch, n_classes, **dict(arch_params or {}))
    arch_params = json.loads(json.dumps(probe.arch_params))  # resolved, JSON types
    n_params = count_parameters(probe)
    del probe

    out = Path(out_dir)
    run_config = {
        "data": str(dataset.root),
        "dataset": {"name": dataset.name, "kind": dataset.kind, "root": str(dataset.root),
                    "n_tracks": int(dataset.n_tracks), "classes": list(dataset.classes)},
        "arch": arch,
        "arch_params": arch_params,
        "n_params": n_params,
        "preset": preset,
        "train_config": config.to_dict(),
        "protocol": protocol,
        "n_folds": n_folds,
        "only_folds": None if only_folds is None else folds_wanted,
        "seed": seed,
        "device": str(dev),
        "front_end": FRONT_END.to_dict(),
        "code_version": code_version(),
        "machine": machine_info(dev),
        "created": _now(),
    }
    if snapshots is not None:
        run_config["snapshots"] = {"epochs": snapshots,
                                   "folds": folds_wanted if only_folds is not None else [0]}
    prior = _prepare_run_dir(out, run_config, resume=resume)
    run = _Run(out, progress, prior)
    run.status("running")
    try:
        with _SigtermToCancel():
            try:
                results = _train_folds(run, dataset, arch=arch, arch_params=arch_params,
                                       n_params=n_params, config=config, protocol=protocol,
                                       n_folds=n_folds, folds_wanted=folds_wanted, seed=seed,
                                       device=dev, sequential=sequential, preset=preset,
                                       snapshots=run_config.get("snapshots"))
            except KeyboardInterrupt:
                raise RunCancelled("run cancelled (interrupted)") from None
    except RunCancelled as exc:
        run.emit({"event": "cancelled", "message": str(exc)})
        run.status("cancelled", error=str(exc))
        raise
    except BaseException as exc:
        message = str(exc) or type(exc).__name__
        if not isinstance(exc, TfcnnError):
            message = f"{type(exc).__name__}: {message}"
        try:
            run.emit({"event": "error", "message": message})
            run.status("failed", error=message)
        finally:
            raise
    run.emit({"event": "run_end", "mean": results.get("mean"), "std": results.get("std"),
              "wall_s": results.get("wall_s")})
    run.status("finished")
    return results


def _train_folds(run: _Run, dataset, *, arch: str, arch_params: dict, n_params: int,
                 config: TrainConfig, protocol: str, n_folds: int, folds_wanted: list[int],
                 seed: int, device: torch.device, sequential: bool, preset: str,
                 snapshots: dict | None = None) -> dict:
    """The body of :func:`train_run` once the run folder is ready."""
    from tfcnn.cache import load_features
    from tfcnn.folds import assignment_fingerprint, make_folds, song_keys

    from tfcnn.runs import complete_folds

    last = [0.0]

    def on_features(done: int, total: int) -> None:
        now = time.perf_counter()
        if done == total or now - last[0] > 1.0:  # at most one event a second
            last[0] = now
            run.emit({"event": "features", "done": int(done), "total": int(total)})

    features = load_features(dataset, front_end=FRONT_END, progress=on_features)
    labels = np.asarray(features.labels, dtype=np.int64)
    track_ids = list(features.track_ids)
    groups = dataset.tracks["replica_group"].tolist()
    folds = make_folds(labels, groups=groups, n_folds=n_folds, seed=seed, protocol=protocol)
    assignment = assignment_fingerprint(folds, song_keys(track_ids, dataset.tracks["dance"]))
    bank = _PatchBank(features.specs, track_ids, patch_frames=FRONT_END.patch_frames,
                      device=device)
    done = set(complete_folds(run.out))
    pending = [folds[k] for k in folds_wanted if k not in done]

    # snapshots need the model at each epoch, which only the one-fold loop exposes
    trainer = None if sequential or snapshots else _parallel_trainer()
    if trainer is not None and not _stacking_pays(arch, arch_params, len(dataset.classes),
                                                  device):
        # One fold after another, saving each as it ends: an interrupted run keeps them.
        trainer = None
    context = dict(bank=bank, labels=labels, track_ids=track_ids, classes=dataset.classes,
                   arch=arch, arch_params=arch_params, config=config, protocol=protocol,
                   seed=seed, device=device, dataset=dataset, snapshots=snapshots)
    if trainer is None or len(pending) < 2:
        for fold in pending:
            _run_folds_together(run, [fold], trainer=None, **context)
    else:
        _run_folds_together(run, pending, trainer=trainer, **context)
    return _write_results(run, dataset, arch=arch, n_params=n_params, protocol=protocol,
                          preset=preset, n_folds=n_folds, config=config, device=device,
                          assignment=assignment)


def _stacking_pays(arch: str, arch_params: dict, n_classes: int, device: torch.device) -> bool:
    """Whether training the folds together beats one after another for every stage of ``arch``
    (``tfcnn.parallel.choose_kernel`` falls back to a plain loop where it does not)."""
    from tfcnn.models import build_model
    from tfcnn.parallel import choose_kernel

    return all(
        choose_kernel(build_model(stage, n_classes, **_stage_params(stage, arch_params)),
                      device) != "loop"
        for stage in _stage_archs(arch)
    )


def _parallel_trainer():
    """``tfcnn.parallel.train_folds_parallel`` if that module is importable, else None."""
    try:
        from tfcnn.parallel import train_folds_parallel
    except ImportError:
        return None
    return train_folds_parallel


def _run_folds_together(run: _Run, folds: list, *, trainer, bank: _PatchBank,
                        labels: np.ndarray, track_ids: list[str], classes, arch: str,
                        arch_params: dict, config: TrainConfig, protocol: str, seed: int,
                        device: torch.device, dataset, snapshots: dict | None = None) -> None:
    """Train, test and save ``folds`` (one fold, or several at once through ``trainer``)."""
    from tfcnn.models import build_model, init_timefreq_from

    t0 = time.perf_counter()
    n_classes = len(classes)
    prepared = {}
    for fold in folds:
        s = fold_seed(seed, fold.index)
        data, mean, std = _fold_data(bank, fold, labels, protocol, s, device)
        prepared[fold.index] = (data, mean, std)
        run.emit({"event": "fold_start", "fold": fold.index,
                  "max_epochs": config.max_epochs,
                  "n_train_patches": int(data.train_y.shape[0]),
                  "n_val_patches": int(data.val_y.shape[0]),
                  "n_test_tracks": int(fold.test.size)})

    trained: dict[str, dict[int, tuple[torch.nn.Module, FoldTraining]]] = {}
    for stage in _stage_archs(arch):
        def on_epoch(record: dict, stage=stage) -> None:
            run.emit({**record, "stage": stage})

        models = []
        for fold in folds:
            # Deterministic init: the fold's seed, whatever trained the folds before it.
            torch.manual_seed(prepared[fold.index][0].seed)
            model = build_model(stage, n_classes, **_stage_params(stage, arch_params))
            if stage == TIMEFREQ_INIT:
                init_timefreq_from(model, trained["time"][fold.index][0],
                                   trained["frequency"][fold.index][0])
            models.append(model.to(device))
        if (snapshots and stage == _stage_archs(arch)[-1] and len(folds) == 1
                and folds[0].index in snapshots["folds"]):
            on_epoch = _snapshot_saver(run, folds[0].index, models[0], prepared[folds[0].index],
                                       classes, config, snapshots["epochs"], on_epoch)
        datas = [prepared[f.index][0] for f in folds]
        if trainer is None:
            outcomes = [train_fold(models[0], datas[0], config, device=device,
                                   on_epoch=on_epoch)]
        else:
            outcomes = trainer(models, datas, config, device=device, on_epoch=on_epoch)
        trained[stage] = {}
        for fold, model, outcome in zip(folds, models, outcomes):
            model.load_state_dict(outcome.state_dict)
            trained[stage][fold.index] = (model, outcome)

    seconds = (time.perf_counter() - t0) / len(folds)
    final = _stage_archs(arch)[-1]
    for fold in folds:
        model, outcome = trained[final][fold.index]
        data, mean, std = prepared[fold.index]
        del data
        _finish_fold(run, fold, model, outcome, mean=mean, std=std, bank=bank, labels=labels,
                     track_ids=track_ids, classes=classes, config=config, protocol=protocol,
                     seconds=seconds, dataset=dataset,
                     stages={st: trained[st][fold.index][1].best_epoch for st in trained})


def _snapshot_saver(run: _Run, fold: int, model: torch.nn.Module, prepared: tuple,
                    classes, config: TrainConfig, epochs: list[int],
                    on_epoch: Callable[[dict], None]) -> Callable[[dict], None]:
    """Save the initial weights now if epoch 0 is asked; return an ``on_epoch`` that also
    saves the weights at the end of each asked epoch (``runs.snapshot_path``)."""
    from tfcnn.checkpoint import save_checkpoint

    _, mean, std = prepared

    def save(epoch: int) -> None:
        save_checkpoint(snapshot_path(run.out, fold, epoch), model, classes=tuple(classes),
                        norm_mean=mean, norm_std=std, front_end=FRONT_END,
                        train_config=config.to_dict(), metrics={},
                        extra={"fold": fold, "epoch": epoch, "snapshot": True})

    if 0 in epochs:
        save(0)

    def on_epoch_and_save(record: dict) -> None:
        if record["epoch"] in epochs:
            save(record["epoch"])
        on_epoch(record)

    return on_epoch_and_save


def _test_probabilities(model: torch.nn.Module, bank: _PatchBank, tracks: np.ndarray,
                        mean: float, std: float, device: torch.device) -> list[np.ndarray]:
    """Per test track, its patch probabilities ``(n_patches_i, n_classes)``.

    Through :func:`tfcnn.inference.patch_probabilities`, the path ``predict`` uses, so a
    fold's test accuracy and a prediction with its checkpoint agree.
    """
    from tfcnn.inference import patch_probabilities

    index = bank.patch_index(tracks)  # patches of the test tracks, in track order
    x = bank.take(index, mean, std)  # (n, 1, n_mels, patch_frames)
    model.eval()
    probs = patch_probabilities(model, x, batch_size=EVAL_BATCH_SIZE, device=device)
    probs = probs.detach().cpu().numpy() if isinstance(probs, torch.Tensor) else np.asarray(probs)
    per_track = np.split(probs, np.cumsum(bank.counts[tracks])[:-1])
    return per_track


def _finish_fold(run: _Run, fold, model: torch.nn.Module, outcome: FoldTraining, *,
                 mean: float, std: float, bank: _PatchBank, labels: np.ndarray,
                 track_ids: list[str], classes, config: TrainConfig, protocol: str,
                 seconds: float, dataset, stages: dict) -> None:
    """Test a trained fold, save its checkpoint, then its ``result.json`` (last, atomically)."""
    from tfcnn.calibration import fit_calibration
    from tfcnn.tempo import estimate_tempo
    from tfcnn.checkpoint import save_checkpoint
    from tfcnn.evaluate import fold_metrics
    from tfcnn.folds import fold_fingerprint, song_keys

    tracks = fold.test
    device = next(model.parameters()).device
    per_track = _test_probabilities(model, bank, tracks, mean, std, device)
    metrics = fold_metrics(per_track, labels[tracks], n_classes=len(classes))
    # Temperature and unsure threshold from the validation songs (none in the paper protocol).
    calibration = fit_calibration(
        _test_probabilities(model, bank, fold.val, mean, std, device), labels[fold.val],
        beat_strengths=[estimate_tempo(bank.spectrogram(t)).strength for t in fold.val],
    ) if fold.val.size else None
    metrics = {**metrics, "fold": fold.index, "best_epoch": outcome.best_epoch}
    test_ids = [track_ids[i] for i in tracks]
    directory = fold_dir(run.out, fold.index)
    directory.mkdir(parents=True, exist_ok=True)
    model.cpu()
    save_checkpoint(
        directory / FOLD_MODEL_FILE, model, classes=tuple(classes), norm_mean=mean,
        norm_std=std, front_end=FRONT_END, train_config=config.to_dict(), metrics=metrics,
        extra={"fold": fold.index, "protocol": protocol, "test_track_ids": test_ids,
               "best_epoch": outcome.best_epoch, "stage_best_epochs": stages,
               "dataset": {"name": dataset.name, "kind": dataset.kind},
               "trained_on": _trained_on(dataset)},
        calibration=calibration,
    )
    result = {
        "fold": fold.index,
        **{k: v for k, v in metrics.items() if k != "fold"},
        "norm_mean": mean,
        "norm_std": std,
        "n_train_tracks": int(fold.train.size),
        "n_val_tracks": int(fold.val.size),
        "n_test_tracks": int(tracks.size),
        "test_track_ids": test_ids,
        "test_fingerprint": fold_fingerprint(fold, song_keys(track_ids, dataset.tracks["dance"])),
        "epochs": len(outcome.history),
        "stage_best_epochs": stages,
        "seconds": seconds,
    }
    write_json_atomic(directory / FOLD_RESULT_FILE, result)
    run.emit({"event": "fold_end", "fold": fold.index, "accuracy": metrics.get("accuracy"),
              "patch_accuracy": metrics.get("patch_accuracy"),
              "best_epoch": outcome.best_epoch, "seconds": seconds})


def _trained_on(dataset) -> str:
    if dataset.kind == "synth":
        return f"trained on {dataset.name} (synthetic)"
    return f"trained on {dataset.name}"


def _write_results(run: _Run, dataset, *, arch: str, n_params: int, protocol: str, preset: str,
                   n_folds: int, config: TrainConfig, device: torch.device,
                   assignment: str) -> dict:
    """``results.json`` over the run's complete folds (all of them once the run is done).

    Beside the summary it lists, per complete fold (aligned with ``folds``), the test-song
    fingerprint and the train/test song counts, and the fingerprint of the whole fold
    assignment: what ``compare`` needs to pair two runs' folds.
    """
    from tfcnn.evaluate import summarise
    from tfcnn.runs import complete_folds, read_fold_result

    done = complete_folds(run.out)
    fold_results = [read_fold_result(run.out, k) for k in done]
    summary = summarise(fold_results) if fold_results else {}
    results = {
        "arch": arch,
        "n_params": n_params,
        "classes": list(dataset.classes),
        "dataset": {"name": dataset.name, "kind": dataset.kind, "root": str(dataset.root),
                    "n_tracks": int(dataset.n_tracks)},
        "trained_on": _trained_on(dataset),
        "protocol": protocol,
        "preset": preset,
        "train_config": config.to_dict(),
        "n_folds": n_folds,
        "folds": done,
        "complete": len(done) == n_folds,
        "assignment_fingerprint": assignment,
        "fold_fingerprints": [r.get("test_fingerprint") for r in fold_results],
        "n_train_tracks": [r.get("n_train_tracks") for r in fold_results],
        "n_test_tracks": [r.get("n_test_tracks") for r in fold_results],
        **summary,
        "wall_s": run.wall_s(),
        "device": str(device),
        "machine": machine_info(device),
    }
    write_json_atomic(run.out / RESULTS_FILE, results)
    return results
