"""Fold-parallel cross-validation: K folds of one architecture trained in one batched pass.

The paper's models are tiny (3k-3M parameters) and its minibatch of 10 patches (Pons et al.
2016, §2) leaves a CPU or GPU mostly idle, so training the 10 folds one after another wastes
most of the machine. Here the K folds' parameters are stacked along a new leading axis
(``torch.func.stack_module_state``) and every step runs one forward/backward over all the
active folds. Kernels (:data:`KERNELS`): for the musically motivated models (time,
frequency, timefreq) a stacked forward that writes each 1×n / m×1 convolution as one batched
matrix product with a banded matrix and pools before bias and ReLU (:data:`STACKED_FORWARDS`,
exact rewrites); for any other model ``torch.vmap(functional_call)`` of its own forward
(grouped convolutions) on an accelerator, and plain :func:`tfcnn.train.train_fold` per fold
on a CPU, where the black-box model is compute-bound already at batch 10 and stacking it
measured slower.

Each fold keeps the semantics of :func:`tfcnn.train.train_fold` (independent training):

- its own model, trained only on its own training patches: the loss is the sum over folds of
  each fold's mean cross-entropy, so fold k's gradient is exactly the gradient of its own loss;
- its own data order, drawn from its own generator (:func:`tfcnn.train.fold_generator`,
  :func:`tfcnn.train.epoch_order`), and the same number of SGD steps per epoch as
  ``train_fold``;
- its own learning rate (a tensor of shape ``(K,)``) driven by its own
  :class:`tfcnn.train.LossSchedule`, plain SGD ``p_k -= lr_k * g_k`` done by hand on the
  stacked parameters;
- its own validation after every epoch, through :func:`tfcnn.train.evaluate_patches` on the
  fold's own model (its weights copied out of the stack), and its own best-validation
  weights (CPU copies, same tie rule as ``train_fold``);
- its own early stop: a stopped fold is dropped from the stack (the remaining folds'
  parameters are re-stacked), so it costs nothing afterwards.

Folds with different numbers of training patches: an epoch runs ``max_k steps_k`` steps; a
fold that has finished its epoch gets an all-masked minibatch for the remaining steps (zero
loss weight, and its update is also masked), so it takes exactly ``steps_k`` SGD steps and
waits for the others. A fold's last, partial minibatch is padded and masked the same way, so
its loss is the mean over its real patches only. Dropout masks are drawn independently per
fold (``randomness="different"``); they come from the global generator, so a fold's dropout
masks, unlike its data order, differ from those of a sequential run: results agree
statistically, and exactly (to float rounding) for models without dropout.
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call, stack_module_state

from tfcnn.config import TrainConfig
from tfcnn.errors import ConfigError
from tfcnn.train import (
    FoldData,
    FoldTraining,
    LossSchedule,
    _autocast,
    _cpu_state_dict,
    _finite_or_none,
    _is_better,
    epoch_order,
    evaluate_patches,
    fold_generator,
    train_fold,
)


@dataclass
class _Fold:
    """Bookkeeping of one fold while it trains in the stack (what ``train_fold`` keeps)."""

    model: nn.Module  # the fold's own module: validated and returned with its weights
    data: FoldData
    generator: torch.Generator
    schedule: LossSchedule
    n_train: int
    n_steps: int  # SGD steps per epoch, ceil(n_train / batch) as in train_fold
    history: list
    best_state: dict | None = None
    best_epoch: int = 0
    best_acc: float = -math.inf
    best_loss: float = math.inf


# --------------------------------------------------------------------------- stacked kernels
#
# The musically motivated branches end in a max-pool over the whole of one axis (all bands
# for the temporal filters, all frames for the frequency filters, Pons et al. 2016 §1). Two
# exact rewrites make them cheap for K stacked folds:
# - a 1×n convolution along one axis is a matrix product with a banded (Toeplitz) matrix
#   built from the filters, so the K folds' convolutions become one ``bmm`` with large,
#   well-shaped operands instead of K small convolutions;
# - max_m relu(a_m + b) = relu(max_m a_m + b) (bias constant along the pooled axis, relu
#   monotonic), so bias and relu act on the pooled map only, 40× (80×) fewer elements.


def _banded_reversed(weight: torch.Tensor, length: int) -> torch.Tensor:
    """Banded matrices of 1-D filters, columns in reverse position order.

    ``band[k, f, t, P - 1 - j] = weight[k, f, t - j]`` (0 outside the filter): column j of
    the matrix of a "valid" cross-correlation (as ``conv2d``), P = L - width + 1 positions.

    Parameters
    ----------
    weight : torch.Tensor, shape (K, n_filters, width)
    length : int
        Input length L.

    Returns
    -------
    torch.Tensor, shape (K, n_filters, L, P)
        A strided view (no copy): window t of ``[0]*(P-1) + w + [0]*(L-width)``.
    """
    width = weight.shape[-1]
    n_pos = length - width + 1
    padded = F.pad(weight, (n_pos - 1, length - width))  # (K, F, L + P - 1)
    return padded.unfold(-1, n_pos, 1)  # (K, F, L, P), positions reversed


class _MaxOverRows(torch.autograd.Function):
    """``h.amax(dim=2)`` whose backward routes each gradient to the maximum's row.

    ``Tensor.max(dim)`` (values and indices) is ~10× slower than ``amax`` on a CPU when
    reducing a middle axis, and ``amax``'s own backward averages over ties; here the forward
    is ``amax`` and the backward is ``max``'s (ties among real-valued activations aside).
    """

    @staticmethod
    def forward(ctx, h: torch.Tensor) -> torch.Tensor:  # h (K, B, R, C) → (K, B, C)
        values = h.amax(dim=2)
        ctx.save_for_backward(h, values)
        return values

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:
        h, values = ctx.saved_tensors
        return torch.where(h == values.unsqueeze(2), grad.unsqueeze(2), 0.0)  # (K, B, R, C)


def _banded_conv_maxpool(weight: torch.Tensor, bias: torch.Tensor, rows: torch.Tensor
                         ) -> torch.Tensor:
    """relu(conv1d along the last axis), max-pooled over the row axis, for K stacked folds.

    Parameters
    ----------
    weight : torch.Tensor, shape (K, n_filters, width)
    bias : torch.Tensor, shape (K, n_filters)
    rows : torch.Tensor, shape (K, B, R, L)
        Filters run along L (length); the pool spans all R rows.

    Returns
    -------
    torch.Tensor, shape (K, B, n_filters * P), P = L - width + 1
        Flattened filter-major, as ``torch.flatten`` of the conv/pool feature map.
    """
    k, n_filters, width = weight.shape
    _, batch, n_rows, length = rows.shape
    n_pos = length - width + 1
    band = _banded_reversed(weight, length).permute(0, 2, 3, 1)  # (K, L, P reversed, F)
    band = band.reshape(k, length, n_pos * n_filters).to(rows.dtype)  # (K, L, P*F)
    h = torch.bmm(rows.reshape(k, batch * n_rows, length), band)  # (K, B*R, P*F)
    h = _MaxOverRows.apply(h.view(k, batch, n_rows, n_pos * n_filters))  # (K, B, P*F)
    h = h.view(k, batch, n_pos, n_filters).flip(2)  # positions back in order, (K, B, P, F)
    h = F.relu(h + bias[:, None, None, :].to(h.dtype))
    return h.transpose(2, 3).reshape(k, batch, n_filters * n_pos)  # (K, B, F*P)


def _time_branch(p: dict, prefix: str, x: torch.Tensor) -> torch.Tensor:
    """Stacked ``_TimeBranch``: 1×n filters, pool over all bands. x (K, B, 1, M, N)."""
    weight = p[prefix + "conv.weight"]  # (K, F, 1, 1, n)
    k, n_filters = weight.shape[:2]
    rows = x.squeeze(2)  # (K, B, M, N): filters along frames, pool over bands
    return _banded_conv_maxpool(weight.reshape(k, n_filters, -1), p[prefix + "conv.bias"], rows)


def _freq_branch(p: dict, prefix: str, x: torch.Tensor) -> torch.Tensor:
    """Stacked ``_FreqBranch``: m×1 filters, pool over all frames. x (K, B, 1, M, N)."""
    weight = p[prefix + "conv.weight"]  # (K, F, 1, m, 1)
    k, n_filters = weight.shape[:2]
    rows = x.squeeze(2).transpose(2, 3)  # (K, B, N, M): filters along bands, pool over frames
    return _banded_conv_maxpool(weight.reshape(k, n_filters, -1), p[prefix + "conv.bias"], rows)


def _linear(p: dict, prefix: str, h: torch.Tensor) -> torch.Tensor:
    """Stacked ``nn.Linear``: h (K, B, in) → (K, B, out)."""
    weight, bias = p[prefix + "weight"], p[prefix + "bias"]  # (K, out, in), (K, out)
    return torch.baddbmm(bias.unsqueeze(1).to(h.dtype), h, weight.transpose(1, 2).to(h.dtype))


def _stacked_time(model: nn.Module, p: dict, x: torch.Tensor) -> torch.Tensor:
    h = _time_branch(p, "time_branch.", x)  # (K, B, 32 * 21)
    h = F.dropout(h, model.dropout.p, model.training)
    return _linear(p, "output.", h)


def _stacked_frequency(model: nn.Module, p: dict, x: torch.Tensor) -> torch.Tensor:
    h = _freq_branch(p, "freq_branch.", x)  # (K, B, 32 * 9)
    h = F.dropout(h, model.dropout.p, model.training)
    return _linear(p, "output.", h)


def _stacked_timefreq(model: nn.Module, p: dict, x: torch.Tensor) -> torch.Tensor:
    h = torch.cat([_time_branch(p, "time_branch.", x),
                   _freq_branch(p, "freq_branch.", x)], dim=2)  # (K, B, 960)
    h = F.relu(_linear(p, "hidden.", h))  # (K, B, hidden)
    h = F.dropout(h, model.dropout.p, model.training)
    return _linear(p, "output.", h)


#: Stacked forwards by architecture: ``f(template, stacked_params, x (K, B, 1, M, N)) ->
#: logits (K, B, n_classes)``, numerically the module's forward for each fold.
STACKED_FORWARDS: dict[str, Callable] = {
    "time": _stacked_time,
    "frequency": _stacked_frequency,
    "timefreq": _stacked_timefreq,
    "timefreq-init": _stacked_timefreq,
}

#: ``kernel`` choices of :func:`train_folds_parallel`: ``banded`` (:data:`STACKED_FORWARDS`),
#: ``vmap`` (``torch.vmap(functional_call)``: grouped convolutions, batched matmuls), ``loop``
#: (:func:`tfcnn.train.train_fold` on each fold in turn) and ``auto`` (see :func:`choose_kernel`).
KERNELS: tuple[str, ...] = ("auto", "banded", "vmap", "loop")


def _has_banded_filters(model: nn.Module) -> bool:
    """True when every conv of ``model`` is 1×n or m×1 with a pool over the whole other axis."""
    for name in ("time_branch", "freq_branch"):
        branch = getattr(model, name, None)
        if branch is None:
            continue
        kh, kw = branch.conv.kernel_size
        if (name == "time_branch" and kh != 1) or (name == "freq_branch" and kw != 1):
            return False
    return True


def choose_kernel(template: nn.Module, device: torch.device, kernel: str = "auto") -> str:
    """The kernel that trains folds of ``template``'s architecture fastest on ``device``.

    ``auto`` → ``banded`` when the architecture has a stacked forward (time, frequency,
    timefreq with 1×n / m×1 filters); else ``vmap`` on an accelerator and ``loop`` on a CPU,
    where the black-box model's 12×8 convolution is already compute-bound at batch 10 and
    stacking it (grouped convolution) measured slower than one fold after another.
    A kernel that cannot run this architecture raises ``ConfigError``.
    """
    if kernel not in KERNELS:
        raise ConfigError(f"unknown kernel {kernel!r}; valid kernels: {', '.join(KERNELS)}")
    banded = (getattr(template, "arch", "") in STACKED_FORWARDS
              and _has_banded_filters(template))
    if kernel == "auto":
        if banded:
            return "banded"
        return "loop" if device.type == "cpu" else "vmap"
    if kernel == "banded" and not banded:
        raise ConfigError(
            f"kernel 'banded' needs a time, frequency or timefreq model with 1×n / m×1 "
            f"filters, got {getattr(template, 'arch', type(template).__name__)!r}"
        )
    return kernel


def stacked_forward(template: nn.Module, kernel: str) -> Callable:
    """``forward(params, buffers, x) -> logits`` for K folds' stacked weights.

    Parameters
    ----------
    template : nn.Module
        A model of the architecture; its ``training`` flag switches dropout.
    kernel : {"banded", "vmap"}
        The banded-matrix forward of :data:`STACKED_FORWARDS`, or
        ``torch.vmap(functional_call)`` of the module's own forward.

    Returns
    -------
    callable
        ``(params {name: (K, ...)}, buffers, x (K, B, 1, n_mels, frames)) -> (K, B, n_classes)``;
        each fold draws its own dropout masks.
    """
    if kernel == "banded":
        fast = STACKED_FORWARDS[template.arch]
        return lambda params, buffers, x: fast(template, params, x)

    def one_fold(p, b, x):
        return functional_call(template, (p, b), (x,))  # (B, n_classes)

    return torch.vmap(one_fold, randomness="different")  # each fold its own dropout masks


def _check_inputs(models: Sequence[nn.Module], datas: Sequence[FoldData]) -> None:
    """Raise ``ConfigError`` unless there is one model per fold, all of one architecture."""
    if len(models) == 0:
        raise ConfigError("train_folds_parallel needs at least one fold, got 0 models")
    if len(models) != len(datas):
        raise ConfigError(
            f"train_folds_parallel needs one model per fold, got {len(models)} models "
            f"for {len(datas)} folds"
        )
    shapes0 = {k: tuple(v.shape) for k, v in models[0].state_dict().items()}
    for i, model in enumerate(models[1:], start=1):
        shapes = {k: tuple(v.shape) for k, v in model.state_dict().items()}
        if shapes != shapes0:
            raise ConfigError(
                f"train_folds_parallel needs models of one architecture; model {i} "
                f"({getattr(model, 'arch', type(model).__name__)}) differs from model 0 "
                f"({getattr(models[0], 'arch', type(models[0]).__name__)})"
            )
    for data in datas:
        if int(data.train_y.shape[0]) == 0:
            raise ConfigError(f"fold {data.fold}: no training patches")


def _restack(stacked: dict[str, torch.Tensor], keep: torch.Tensor) -> dict[str, torch.Tensor]:
    """Rows ``keep`` of every stacked tensor, as fresh leaves (``requires_grad`` kept)."""
    return {
        name: t.detach().index_select(0, keep).requires_grad_(t.requires_grad)
        for name, t in stacked.items()
    }


@torch.no_grad()
def _copy_out(stacked: dict[str, torch.Tensor], row: int, model: nn.Module) -> None:
    """Copy fold ``row`` of the stack into that fold's own module (same device)."""
    for name, tensor in model.named_parameters():
        tensor.copy_(stacked[name][row])


def _epoch_indices(folds: list[_Fold], batch_size: int, device: torch.device
                   ) -> tuple[torch.Tensor, torch.Tensor, int]:
    """This epoch's minibatch indices of the active folds, padded to a common step count.

    Returns
    -------
    index : torch.Tensor, shape (K, S * batch_size), int64, on ``device``
        Fold k's permutation of ``range(n_train_k)``, then padding (patch 0).
    mask : torch.Tensor, shape (K, S * batch_size), float32, on ``device``
        1 for real slots, 0 for padding.
    n_steps : int
        ``S = max_k steps_k``.
    """
    n_steps = max(f.n_steps for f in folds)
    width = n_steps * batch_size
    index = torch.zeros((len(folds), width), dtype=torch.int64)
    mask = torch.zeros((len(folds), width), dtype=torch.float32)
    for row, fold in enumerate(folds):
        # The same draw as train_fold: one CPU permutation per epoch from the fold's generator.
        index[row, :fold.n_train] = epoch_order(fold.n_train, fold.generator, torch.device("cpu"))
        mask[row, :fold.n_train] = 1.0
    return index.to(device), mask.to(device), n_steps


def train_folds_parallel(
    models: Sequence[nn.Module],
    datas: Sequence[FoldData],
    config: TrainConfig,
    *,
    device: str | torch.device,
    on_epoch: Callable[[dict], None] | None = None,
    kernel: str = "auto",
) -> list[FoldTraining]:
    """Train K folds of one architecture at once, each as :func:`tfcnn.train.train_fold` would.

    Parameters
    ----------
    models : sequence of nn.Module, length K
        One model per fold, all of one architecture, each freshly built with its fold's seed.
        Moved to ``device``; on return each holds its fold's last-epoch weights (as
        ``train_fold`` leaves its model); the best ones are in the results.
    datas : sequence of FoldData, length K
        ``train_x (n_train_k, 1, n_mels, patch_frames)`` float32, ``train_y (n_train_k,)``
        int64, ``val_x``/``val_y`` likewise (may be empty: then the lowest training loss
        picks the kept model, as in ``train_fold``); fold sizes may differ.
    config : TrainConfig
        lr, batch_size, max_epochs, stop/halve patience and amp, shared by all folds.
    device : str or torch.device
        Where the stacked parameters and the data live (``"cpu"``, ``"cuda"``, ...).
    on_epoch : callable, optional
        Called with each fold's epoch record (``event, fold, epoch, train_loss, train_acc,
        val_loss, val_acc, lr, seconds``) right after that epoch, in fold order;
        ``seconds`` is the fold's share of the shared epoch's wall time.
    kernel : {"auto", "banded", "vmap", "loop"}
        How the folds are computed (see :data:`KERNELS`, :func:`choose_kernel`); results
        agree to float rounding. (Keyword-only addition to the seam of docs/design.md.)

    Returns
    -------
    list of FoldTraining
        In the order of ``datas``: best-validation ``state_dict`` (CPU tensors), the epoch
        records, the best epoch (1-based).

    Raises
    ------
    ConfigError
        No folds, a model count that differs from the fold count, models of different
        architectures, or a fold without training patches.
    """
    _check_inputs(models, datas)
    device = torch.device(device)
    kernel = choose_kernel(models[0], device, kernel)
    if kernel == "loop":
        return [train_fold(model, data, config, device=device, on_epoch=on_epoch)
                for model, data in zip(models, datas)]
    batch = int(config.batch_size)
    folds: list[_Fold] = []
    for model, data in zip(models, datas):
        n_train = int(data.train_y.shape[0])
        folds.append(_Fold(
            model=model.to(device),
            data=data,
            generator=fold_generator(data.seed),
            schedule=LossSchedule.from_config(config),
            n_train=n_train,
            n_steps=math.ceil(n_train / batch),
            history=[],
        ))
    # Dropout draws from the global generator (per fold through vmap): seeded, so repeatable.
    torch.manual_seed(int(datas[0].seed))

    # A copy of the architecture, called functionally with each fold's stacked weights.
    template = copy.deepcopy(folds[0].model)
    params, buffers = stack_module_state([f.model for f in folds])  # each (K, ...) on device

    forward = stacked_forward(template, kernel)

    active = list(folds)  # folds still training, in stack order
    for epoch in range(1, int(config.max_epochs) + 1):
        t0 = time.perf_counter()
        k = len(active)
        lr = torch.tensor([f.schedule.lr for f in active], device=device)  # (K,)
        index, mask, n_steps = _epoch_indices(active, batch, device)  # (K, S*B) each
        train_x = [f.data.train_x for f in active]
        train_y = [f.data.train_y for f in active]
        loss_sum = torch.zeros(k, device=device, dtype=torch.float64)
        correct = torch.zeros(k, device=device, dtype=torch.float64)
        template.train()
        for step in range(n_steps):
            cols = slice(step * batch, (step + 1) * batch)
            idx, m = index[:, cols], mask[:, cols]  # (K, B)
            # (K, B, 1, n_mels, frames): each fold's next minibatch, from its own patches
            xb = torch.stack([x.index_select(0, i) for x, i in zip(train_x, idx)])
            yb = torch.stack([y.index_select(0, i) for y, i in zip(train_y, idx)])  # (K, B)
            with _autocast(device, config):
                logits = forward(params, buffers, xb)  # (K, B, n_classes)
            logits = logits.float()
            ce = F.cross_entropy(logits.flatten(0, 1), yb.flatten(),
                                 reduction="none").view_as(m)  # (K, B)
            counts = m.sum(dim=1)  # (K,) real patches in this step's minibatch
            # Mean over the real patches: a padded slot has weight 0 (train_fold's mean).
            loss = (ce * m).sum(dim=1) / counts.clamp(min=1.0)  # (K,)
            n_correct = ((logits.detach().argmax(dim=2) == yb).to(m.dtype) * m).sum(dim=1)
            # Folds are independent: d(sum_k loss_k)/d(theta_k) = d(loss_k)/d(theta_k).
            loss.sum().backward()
            # Plain SGD, p_k -= lr_k * g_k; a fold whose epoch is over (count 0) stands still.
            step_lr = torch.where(counts > 0, lr, torch.zeros_like(lr))
            with torch.no_grad():
                for p in params.values():
                    if p.grad is not None:
                        p.sub_(step_lr.view(-1, *([1] * (p.dim() - 1))) * p.grad)
                        p.grad = None
            loss_sum += loss.detach().double() * counts
            correct += n_correct.double()
        # One host sync per epoch, not per step.
        train_loss = (loss_sum / torch.tensor([f.n_train for f in active], device=device,
                                              dtype=torch.float64)).tolist()
        train_acc = (correct.round().long().cpu().numpy() / [f.n_train for f in active]).tolist()
        share = (time.perf_counter() - t0) / k

        keep = []
        for row, fold in enumerate(active):
            t1 = time.perf_counter()
            _copy_out(params, row, fold.model)
            if int(fold.data.val_y.shape[0]) > 0:
                val_loss, val_acc = evaluate_patches(fold.model, fold.data.val_x,
                                                     fold.data.val_y, config=config)
                score_acc, score_loss = val_acc, val_loss
            else:
                val_loss = val_acc = math.nan
                score_acc, score_loss = -train_loss[row], train_loss[row]
            if fold.best_state is None or _is_better(score_acc, score_loss,
                                                     fold.best_acc, fold.best_loss):
                # The best model in the validation set is kept for testing (paper §2).
                fold.best_acc, fold.best_loss = score_acc, score_loss
                fold.best_state = _cpu_state_dict(fold.model)
                fold.best_epoch = epoch
            record = {
                "event": "epoch",
                "fold": fold.data.fold,
                "epoch": epoch,
                "train_loss": _finite_or_none(train_loss[row]),
                "train_acc": train_acc[row],
                "val_loss": _finite_or_none(val_loss),
                "val_acc": _finite_or_none(val_acc),
                "lr": fold.schedule.lr,
                "seconds": share + time.perf_counter() - t1,
            }
            fold.history.append(record)
            if on_epoch is not None:
                on_epoch(record)
            if fold.schedule.step(train_loss[row]) != "stop":
                keep.append(row)
        if not keep:
            break
        if len(keep) < k:
            # Drop stopped folds from the stack: from now on they cost nothing.
            rows = torch.tensor(keep, dtype=torch.int64, device=device)
            params, buffers = _restack(params, rows), _restack(buffers, rows)
            active = [active[row] for row in keep]

    return [FoldTraining(state_dict=f.best_state, history=f.history, best_epoch=f.best_epoch)
            for f in folds]
