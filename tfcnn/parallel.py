"""Fold-parallel cross-validation: K folds of one architecture trained in one batched pass.

The paper's models are tiny (3k-3M parameters) and its minibatch of 10 patches (Pons et al.
2016, §2) leaves a CPU or GPU mostly idle, so training the 10 folds one after another wastes
most of the machine. Here the K folds' parameters are stacked along a new leading axis
(``torch.func.stack_module_state``) and every step runs one forward/backward over all the
active folds. Kernels (:data:`KERNELS`): for the musically motivated models (time,
frequency, timefreq) the banded kernel of :mod:`tfcnn.banded` (each 1×n / m×1 convolution as
one batched matrix product, pooled before bias and ReLU: exact rewrites); for any other model
``torch.vmap(functional_call)`` of its own forward (grouped convolutions) on an accelerator,
and plain :func:`tfcnn.fold_training.train_fold` per fold on a CPU, where the black-box model
is compute-bound already at batch 10 and stacking it measured slower.

Each fold keeps the semantics of :func:`tfcnn.fold_training.train_fold` (independent training):

- its own model, trained only on its own training patches: the loss is the sum over folds of
  each fold's mean cross-entropy, so fold k's gradient is exactly the gradient of its own loss;
- its own data order, drawn from its own generator (:func:`tfcnn.fold_training.fold_generator`,
  :func:`tfcnn.fold_training.epoch_order`), and the same number of SGD steps per epoch as
  ``train_fold``;
- its own learning rate (a tensor of shape ``(K,)``) driven by its own
  :class:`tfcnn.fold_training.LossSchedule`, plain SGD ``p_k -= lr_k * g_k`` done by hand on the
  stacked parameters;
- its own validation after every epoch: the numbers :func:`tfcnn.fold_training.evaluate_patches`
  gives on the fold's own model, computed for all folds in one stacked forward per batch
  (:func:`_evaluate_stacked`), and its own best-validation weights (copied out of the stack
  to CPU, same tie rule as ``train_fold``);
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

Given each fold's :class:`tfcnn.train_state.FoldStateFile`, a fold's state is saved after
each epoch (its weights copied out of the stack, its tracker, its data-order generator and
the global generator the dropout masks come from) and a run continues from the saved
epochs: folds that had finished stay out of the stack, the others rejoin it, each from its
own epoch.

With ``config.amp`` the banded kernel multiplies in bfloat16 where that pays (CUDA, CPUs with
native bf16: :func:`tfcnn.banded.amp_product_dtype`); the rest stays float32 on a CPU.
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

from tfcnn.banded import amp_product_dtype, banded_forward, supports
from tfcnn.config import TrainConfig, training_stages
from tfcnn.device import autocast
from tfcnn.errors import ConfigError
from tfcnn.fold_training import (
    FoldData,
    FoldTracker,
    FoldTraining,
    epoch_order,
    cpu_state_dict,
    fold_generator,
    train_fold,
)
from tfcnn.models import build_model, stage_params
from tfcnn.train_state import FoldStateFile, rng_state, set_rng_state


@dataclass
class _Fold:
    """One fold while it trains in the stack: its module, data order and bookkeeping."""

    model: nn.Module  # the fold's own module: validated and returned with its weights
    data: FoldData
    generator: torch.Generator
    tracker: FoldTracker
    n_train: int
    n_steps: int  # SGD steps per epoch, ceil(n_train / batch) as in train_fold


#: ``kernel`` choices of :func:`train_folds_parallel`: ``banded`` (:mod:`tfcnn.banded`),
#: ``vmap`` (``torch.vmap(functional_call)``: grouped convolutions, batched matmuls), ``loop``
#: (:func:`tfcnn.fold_training.train_fold` on each fold in turn) and ``auto``
#: (see :func:`choose_kernel`).
KERNELS: tuple[str, ...] = ("auto", "banded", "vmap", "loop")


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
    banded = supports(template)
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


def stacking_pays(arch: str, arch_params: dict, n_classes: int, device: torch.device) -> bool:
    """Whether training the folds of ``arch`` together beats one after another on ``device``.

    True when :func:`choose_kernel` picks a stacked kernel (not ``loop``) for every model a
    fold of ``arch`` trains (:func:`tfcnn.config.training_stages`).
    """
    return all(
        choose_kernel(build_model(stage, n_classes, **stage_params(stage, arch_params)),
                      device) != "loop"
        for stage in training_stages(arch)
    )


def stacked_forward(template: nn.Module, kernel: str,
                    product_dtype: torch.dtype | None = None) -> Callable:
    """``forward(params, buffers, x) -> logits`` for K folds' stacked weights.

    Parameters
    ----------
    template : nn.Module
        A model of the architecture; its ``training`` flag switches dropout.
    kernel : {"banded", "vmap"}
        The banded-matrix forward of :data:`tfcnn.banded.STACKED_FORWARDS`, or
        ``torch.vmap(functional_call)`` of the module's own forward.
    product_dtype : torch.dtype, optional
        ``banded`` only: dtype of the convolutions' matrix products (see
        :func:`tfcnn.banded.amp_product_dtype`); None keeps the activations' dtype.

    Returns
    -------
    callable
        ``(params {name: (K, ...)}, buffers, x (K, B, 1, n_mels, frames)) -> (K, B, n_classes)``;
        each fold draws its own dropout masks.
    """
    if kernel == "banded":
        return banded_forward(template, product_dtype)

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
    """Rows ``keep`` of every stacked tensor, as fresh leaves (``requires_grad`` and layout
    kept)."""
    return _matmul_layout({
        name: t.detach().index_select(0, keep).requires_grad_(t.requires_grad)
        for name, t in stacked.items()
    })


def _matmul_layout(stacked: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The stacked dense-layer weights (K, out, in) re-stored with ``in`` as the middle axis.

    Same shapes and values, other strides: ``weight.transpose(1, 2)`` becomes contiguous,
    the layout :func:`_linear` multiplies fastest, and autograd's weight gradient (computed as
    ``h^T @ grad``) has the weight's own strides, so it is kept as is instead of being copied
    into the default layout on every step (8 MB for the Time-Frequency hidden layer).
    Other tensors are returned unchanged.
    """
    out = {}
    for name, t in stacked.items():
        if name.endswith("weight") and t.dim() == 3:
            leaf = t.detach().transpose(1, 2).contiguous().transpose(1, 2)  # (K, out, in)
            out[name] = leaf.requires_grad_(t.requires_grad)
        else:
            out[name] = t
    return out


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


#: Validation patches per fold in one stacked forward (a multiple of the paper's batch; larger
#: activations fall out of cache on a CPU).
VAL_BATCH = 40


@torch.no_grad()
def _evaluate_stacked(forward: Callable, params: dict, buffers: dict, template: nn.Module,
                      folds: list[_Fold], config: TrainConfig, device: torch.device
                      ) -> list[tuple[float, float]]:
    """Each fold's validation loss and accuracy, all folds in one forward per batch.

    The same numbers as :func:`tfcnn.fold_training.evaluate_patches` on each fold's own model (to
    float rounding: sums taken in another order): mean cross-entropy over the fold's
    validation patches and the fraction classified right. Folds with fewer patches are
    padded and masked; a fold without validation patches gets ``(nan, nan)``.
    """
    sizes = [int(f.data.val_y.shape[0]) for f in folds]
    k, n_max = len(folds), max(sizes)
    if n_max == 0:
        return [(math.nan, math.nan)] * k
    was_training = template.training
    template.eval()
    x0 = next(f.data.val_x for f, n in zip(folds, sizes) if n)  # shape and dtype of a patch
    loss_sum = torch.zeros(k, device=device, dtype=torch.float64)
    correct = torch.zeros(k, device=device, dtype=torch.int64)
    for start in range(0, n_max, VAL_BATCH):
        width = min(VAL_BATCH, n_max - start)
        xb = torch.zeros((k, width, *x0.shape[1:]), dtype=x0.dtype, device=device)
        yb = torch.zeros((k, width), dtype=torch.int64, device=device)
        mask = torch.zeros((k, width), dtype=torch.bool, device=device)
        for row, (fold, n) in enumerate(zip(folds, sizes)):
            m = max(0, min(width, n - start))
            xb[row, :m] = fold.data.val_x[start:start + m]
            yb[row, :m] = fold.data.val_y[start:start + m]
            mask[row, :m] = True
        with autocast(device, config):
            logits = forward(params, buffers, xb)  # (K, width, n_classes)
        logits = logits.float()
        ce = F.cross_entropy(logits.flatten(0, 1), yb.flatten(), reduction="none").view(k, width)
        loss_sum += torch.where(mask, ce, 0.0).double().sum(dim=1)
        correct += ((logits.argmax(dim=2) == yb) & mask).sum(dim=1)
    template.train(was_training)
    losses, hits = loss_sum.tolist(), correct.tolist()
    return [(losses[row] / n, hits[row] / n) if n else (math.nan, math.nan)
            for row, n in enumerate(sizes)]


def train_folds_parallel(
    models: Sequence[nn.Module],
    datas: Sequence[FoldData],
    config: TrainConfig,
    *,
    device: str | torch.device,
    on_epoch: Callable[[dict], None] | None = None,
    kernel: str = "auto",
    states: Sequence[FoldStateFile] | None = None,
) -> list[FoldTraining]:
    """Train K folds of one architecture at once, each as
    :func:`tfcnn.fold_training.train_fold` would.

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
        agree to float rounding.
    states : sequence of FoldStateFile, optional
        One per fold, in the order of ``datas``: where each fold's resumable state goes
        after every epoch, and the saved state it continues from when there is one (as in
        :func:`tfcnn.fold_training.train_fold`).

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
    states = list(states) if states is not None else [None] * len(datas)
    if kernel == "loop":
        return [train_fold(model, data, config, device=device, on_epoch=on_epoch, state=state)
                for model, data, state in zip(models, datas, states)]
    batch = int(config.batch_size)
    folds: list[_Fold] = []
    for model, data, state in zip(models, datas, states):
        n_train = int(data.train_y.shape[0])
        generator = fold_generator(data.seed)
        folds.append(_Fold(
            model=model.to(device),
            data=data,
            generator=generator,
            tracker=FoldTracker(data, config, on_epoch, _saver(state, model, generator)),
            n_train=n_train,
            n_steps=math.ceil(n_train / batch),
        ))
    # Dropout draws from the global generator (per fold through vmap): seeded, so repeatable.
    torch.manual_seed(int(datas[0].seed))
    _restore(folds, states)
    active = [f for f in folds if not f.tracker.finished]  # folds still training, stack order
    if not active:
        return [f.tracker.result() for f in folds]

    # A copy of the architecture, called functionally with each fold's stacked weights.
    template = copy.deepcopy(active[0].model)
    params, buffers = stack_module_state([f.model for f in active])  # each (K, ...) on device
    params = _matmul_layout(params)

    forward = stacked_forward(template, kernel, amp_product_dtype(device, config))

    while active:
        t0 = time.perf_counter()
        k = len(active)
        lr = torch.tensor([f.tracker.lr for f in active], device=device)  # (K,)
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
            xb = torch.empty((k, batch, *train_x[0].shape[1:]), dtype=train_x[0].dtype,
                             device=device)
            yb = torch.empty((k, batch), dtype=train_y[0].dtype, device=device)
            for row, (x, y, i) in enumerate(zip(train_x, train_y, idx)):
                torch.index_select(x, 0, i, out=xb[row])
                torch.index_select(y, 0, i, out=yb[row])
            with autocast(device, config):
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
                        p.addcmul_(step_lr.view(-1, *([1] * (p.dim() - 1))), p.grad, value=-1.0)
                        p.grad = None
            loss_sum += loss.detach().double() * counts
            correct += n_correct.double()
        # One host sync per epoch, not per step.
        train_loss = (loss_sum / torch.tensor([f.n_train for f in active], device=device,
                                              dtype=torch.float64)).tolist()
        train_acc = (correct.round().long().cpu().numpy() / [f.n_train for f in active]).tolist()
        share = (time.perf_counter() - t0) / k

        t1 = time.perf_counter()
        validation = _evaluate_stacked(forward, params, buffers, template, active, config,
                                       device)
        share_val = (time.perf_counter() - t1) / k
        keep = []
        for row, fold in enumerate(active):
            t1 = time.perf_counter()
            _copy_out(params, row, fold.model)
            val_loss, val_acc = validation[row]
            # The fold's share of the shared epoch, plus its own bookkeeping from t1 on.
            # Each fold counts its own epochs: a resumed stack may join folds saved at
            # different epochs.
            fold.tracker.end_epoch(
                fold.model, epoch=fold.tracker.epoch + 1, train_loss=train_loss[row],
                train_acc=train_acc[row], val_loss=val_loss, val_acc=val_acc,
                started=t1 - share - share_val)
            if not fold.tracker.finished:
                keep.append(row)
        if not keep:
            break
        if len(keep) < k:
            # Drop stopped folds from the stack: from now on they cost nothing.
            rows = torch.tensor(keep, dtype=torch.int64, device=device)
            params, buffers = _restack(params, rows), _restack(buffers, rows)
            active = [active[row] for row in keep]
            # A fresh workspace: the old one's buffers have the old fold count's shapes.
            forward = stacked_forward(template, kernel, amp_product_dtype(device, config))

    return [f.tracker.result() for f in folds]


def _saver(state: FoldStateFile | None, model: nn.Module, generator: torch.Generator
           ) -> Callable[[FoldTracker], None] | None:
    """The tracker's ``save`` hook of one stacked fold (``model`` holds its copied-out
    weights when it is called), or None without a state file."""
    if state is None:
        return None

    def save(tracker: FoldTracker) -> None:
        state.save(model=cpu_state_dict(model), optimizer=None, tracker=tracker.state_dict(),
                   rng=rng_state(generator))

    return save


def _restore(folds: list[_Fold], states: list[FoldStateFile | None]) -> None:
    """Load each fold's saved state, if any, into its module, tracker and generator.

    The global generator (dropout) is one for the whole stack: it is set from the saved
    state of the least advanced fold still training, the stack's state when the folds were
    saved together (the usual case; folds saved apart continue equal in distribution).
    """
    resumed = []
    for fold, state in zip(folds, states):
        saved = state.load() if state is not None else None
        if saved is None:
            continue
        fold.model.load_state_dict(saved["model"])
        fold.tracker.load_state_dict(saved["tracker"])
        resumed.append((fold, saved))
    training = [(f, s) for f, s in resumed if not f.tracker.finished]
    for fold, saved in resumed:
        set_rng_state(saved["rng"], fold.generator)  # data order; global state set below
    if training:
        fold, saved = min(training, key=lambda fs: fs[0].tracker.epoch)
        set_rng_state(saved["rng"], fold.generator)
