"""Fold-parallel cross-validation: K folds of one architecture trained at once.

Longer than 600 lines: the schedule, the stacked steps of every kernel and the lanes that run
them share one fold-state type and one epoch loop, and read best side by side.

The paper's models are small and its minibatch of 10 patches (Pons et al. 2016, §2) leaves a
CPU or GPU mostly idle, so training the 10 folds one after another wastes most of the machine.
Here the folds' parameters are stacked along a new leading axis
(``torch.func.stack_module_state``) and every step runs one forward/backward over all the
folds of a stack. Kernels (:data:`KERNELS`):

- ``banded`` (time, frequency, timefreq): :mod:`tfcnn.banded`, each 1×n / m×1 convolution as
  one batched matrix product, pooled before bias and ReLU (exact rewrites), through autograd;
- ``blackbox``: :mod:`tfcnn.blackbox_kernel`, a hand-written step whose dense update is fused
  into its gradient product (the 3.27 M-weight layer is memory-bound at batch 10);
- ``vmap``: ``torch.vmap(functional_call)`` of the module's own forward (any model; on an
  accelerator);
- ``loop``: :func:`tfcnn.fold_training.train_fold` on each fold in turn.

How the folds are scheduled (:func:`fold_schedule`): one stack of all folds, except the
Black-box model on a CPU, where each fold's 13 MB dense layer should stay in cache between
steps: there a stack is one fold, and ``lanes`` worker threads (one per torch thread, each
computing on one thread) train the folds side by side, each lane taking the next fold when it
finishes one. One thread per lane also keeps a busy machine from stalling the step: no lane
waits for a descheduled sibling thread (:mod:`tfcnn.threads`).

Each fold keeps the semantics of :func:`tfcnn.fold_training.train_fold` (independent training):

- its own model, trained only on its own training patches: the loss is the sum over folds of
  each fold's mean cross-entropy, so fold k's gradient is exactly the gradient of its own loss;
- its own data order, drawn from its own generator (:func:`tfcnn.fold_training.fold_generator`,
  :func:`tfcnn.fold_training.epoch_order`), and the same number of SGD steps per epoch as
  ``train_fold``;
- its own learning rate (a tensor of shape ``(K,)``) driven by its own
  :class:`tfcnn.fold_training.LossSchedule`, plain SGD ``p_k -= lr_k * g_k``;
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
its loss is the mean over its real patches only. Dropout masks differ from those of a
sequential run (results agree statistically, and exactly, to float rounding, for models
without dropout): the autograd kernels draw them per fold from the global generator (seeded
per stack), the Black-box kernel from a generator of the fold's own (seed, epoch), so a fold's
masks do not depend on which folds share its stack or lane.

Given each fold's :class:`tfcnn.train_state.FoldStateFile`, a fold's state is saved after
each epoch (its weights copied out of the stack, its tracker, its data-order generator and
the global generator) and a run continues from the saved epochs: folds that had finished stay
out of the stack, the others rejoin it, each from its own epoch.

With ``config.amp`` the products run in bfloat16 where that pays (CUDA, CPUs with native
bf16: :func:`tfcnn.banded.amp_product_dtype`); weights and updates stay float32.
"""

from __future__ import annotations

import copy
import hashlib
import math
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call, stack_module_state

from tfcnn import blackbox_kernel
from tfcnn.banded import amp_product_dtype, banded_forward, supports
from tfcnn.config import TrainConfig, training_stages
from tfcnn.device import autocast
from tfcnn.errors import ConfigError
from tfcnn.fold_training import (
    FoldData,
    FoldTracker,
    FoldTraining,
    cpu_state_dict,
    epoch_order,
    fold_generator,
    train_fold,
)
from tfcnn.models import build_model, stage_params
from tfcnn.threads import torch_threads, training_lanes
from tfcnn.train_state import FoldStateFile, rng_state, set_rng_state

#: ``kernel`` choices of :func:`train_folds_parallel`: ``banded`` (:mod:`tfcnn.banded`),
#: ``blackbox`` (:mod:`tfcnn.blackbox_kernel`), ``vmap`` (``torch.vmap(functional_call)``:
#: grouped convolutions, batched matmuls), ``loop`` (:func:`tfcnn.fold_training.train_fold` on
#: each fold in turn) and ``auto`` (see :func:`choose_kernel`).
KERNELS: tuple[str, ...] = ("auto", "banded", "blackbox", "vmap", "loop")


def choose_kernel(template: nn.Module, device: torch.device, kernel: str = "auto") -> str:
    """The kernel that trains folds of ``template``'s architecture fastest on ``device``.

    ``auto`` → ``banded`` when the architecture has a stacked forward (time, frequency,
    timefreq with 1×n / m×1 filters), ``blackbox`` for the Black-box model; else ``vmap`` on
    an accelerator and ``loop`` on a CPU. A kernel that cannot run this architecture raises
    ``ConfigError``.
    """
    if kernel not in KERNELS:
        raise ConfigError(f"unknown kernel {kernel!r}; valid kernels: {', '.join(KERNELS)}")
    arch = getattr(template, "arch", type(template).__name__)
    if kernel == "auto":
        if supports(template):
            return "banded"
        if blackbox_kernel.supports(template):
            return "blackbox"
        return "loop" if torch.device(device).type == "cpu" else "vmap"
    if kernel == "banded" and not supports(template):
        raise ConfigError(f"kernel 'banded' needs a time, frequency or timefreq model with "
                          f"1×n / m×1 filters, got {arch!r}")
    if kernel == "blackbox" and not blackbox_kernel.supports(template):
        raise ConfigError(f"kernel 'blackbox' needs a blackbox model, got {arch!r}")
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


@dataclass(frozen=True)
class Schedule:
    """How :func:`train_folds_parallel` runs K folds: ``lanes`` worker threads, each training
    stacks of up to ``stack_size`` folds (one thread, the caller's, when ``lanes`` is 1)."""

    lanes: int
    stack_size: int


def fold_schedule(kernel: str, device: str | torch.device, n_folds: int,
                  lanes: int | None = None) -> Schedule:
    """The schedule of ``n_folds`` folds trained with ``kernel`` on ``device``.

    On an accelerator: one stack of all folds. On a CPU (``banded`` and ``blackbox``, whose
    dropout masks come from each fold's own generator, so the result does not depend on the
    schedule): ``lanes`` worker threads (default :func:`tfcnn.threads.training_lanes`, one
    per torch thread), each computing on one thread, so no lane waits for a descheduled
    sibling on a busy machine; ``banded`` splits the folds into one stack per lane,
    ``blackbox`` trains stacks of one fold (its 13 MB dense layer stays in cache from step
    to step; stacks of 2 and 10 measured slower), each lane taking the next fold.
    """
    if torch.device(device).type != "cpu" or kernel not in ("banded", "blackbox"):
        return Schedule(lanes=1, stack_size=max(1, n_folds))
    n_lanes = training_lanes() if lanes is None else lanes
    if isinstance(n_lanes, bool) or not isinstance(n_lanes, int) or n_lanes < 1:
        raise ConfigError(f"lanes must be an integer >= 1, got {lanes!r}")
    n_lanes = min(n_lanes, n_folds)
    if kernel == "blackbox":
        return Schedule(lanes=n_lanes, stack_size=1)
    return Schedule(lanes=n_lanes, stack_size=math.ceil(n_folds / n_lanes))


class _AutogradStep:
    """One SGD step of K stacked folds through autograd of a stacked forward.

    ``step(params, buffers, x, y, mask, lr, generators) -> (loss (K,), correct (K,))``:
    the sum over folds of each fold's mean cross-entropy over its real patches, one
    backward, then ``p_k -= lr_k * g_k``. Dropout masks: fold k's from ``generators[k]``
    with the banded forward, from the global generator with ``vmap``.
    """

    def __init__(self, forward: Callable, device: torch.device, config: TrainConfig,
                 *, takes_generators: bool) -> None:
        self.forward, self.device, self.config = forward, device, config
        self.takes_generators = takes_generators

    def __call__(self, params: dict, buffers: dict, x: torch.Tensor, y: torch.Tensor,
                 mask: torch.Tensor, lr: torch.Tensor, generators=None
                 ) -> tuple[torch.Tensor, torch.Tensor]:
        with autocast(self.device, self.config):
            if self.takes_generators:
                logits = self.forward(params, buffers, x, generators)  # (K, B, n_classes)
            else:
                logits = self.forward(params, buffers, x)
        logits = logits.float()
        ce = F.cross_entropy(logits.flatten(0, 1), y.flatten(),
                             reduction="none").view_as(mask)  # (K, B)
        counts = mask.sum(dim=1)  # (K,) real patches in this step's minibatch
        # Mean over the real patches: a padded slot has weight 0 (train_fold's mean).
        loss = (ce * mask).sum(dim=1) / counts.clamp(min=1.0)  # (K,)
        correct = ((logits.detach().argmax(dim=2) == y).to(mask.dtype) * mask).sum(dim=1)
        # Folds are independent: d(sum_k loss_k)/d(theta_k) = d(loss_k)/d(theta_k).
        loss.sum().backward()
        with torch.no_grad():
            for p in params.values():
                if p.grad is not None:
                    p.addcmul_(lr.view(-1, *([1] * (p.dim() - 1))), p.grad, value=-1.0)
                    p.grad = None
        return loss.detach(), correct


def stacked_forward(template: nn.Module, kernel: str,
                    product_dtype: torch.dtype | None = None) -> Callable:
    """``forward(params, buffers, x) -> logits`` for K folds' stacked weights.

    Parameters
    ----------
    template : nn.Module
        A model of the architecture; its ``training`` flag switches dropout.
    kernel : {"banded", "blackbox", "vmap"}
        The banded-matrix forward of :data:`tfcnn.banded.STACKED_FORWARDS`, the Black-box
        kernel's, or ``torch.vmap(functional_call)`` of the module's own forward.
    product_dtype : torch.dtype, optional
        ``banded`` and ``blackbox``: dtype of the products (see
        :func:`tfcnn.banded.amp_product_dtype`); None keeps the activations' dtype.

    Returns
    -------
    callable
        ``(params {name: (K, ...)}, buffers, x (K, B, 1, n_mels, frames)) -> (K, B, n_classes)``.
    """
    return _stacked_kernel(template, kernel, product_dtype, None, None)[0]


def _stacked_kernel(template: nn.Module, kernel: str, product_dtype: torch.dtype | None,
                    device: torch.device | None, config: TrainConfig | None
                    ) -> tuple[Callable, Callable]:
    """``(forward, step)`` of ``kernel`` for ``template``'s architecture, with its own
    workspace (see :func:`stacked_forward` and :class:`_AutogradStep`)."""
    if kernel == "blackbox":
        fast = blackbox_kernel.BlackBoxKernel(template, product_dtype)
        return fast.forward, fast.train_step
    if kernel == "banded":
        forward = banded_forward(template, product_dtype)
        return forward, _AutogradStep(forward, device, config, takes_generators=True)

    def one_fold(p, b, x):
        return functional_call(template, (p, b), (x,))  # (B, n_classes)

    forward = torch.vmap(one_fold, randomness="different")  # each fold its own masks
    return forward, _AutogradStep(forward, device, config, takes_generators=False)


def dropout_generator(seed: int, epoch: int, device: torch.device) -> torch.Generator:
    """The generator of a fold's dropout masks in one epoch, from its seed and the epoch
    alone (the same on any stack, lane or resume)."""
    digest = hashlib.blake2b(f"tfcnn-dropout:{int(seed)}:{int(epoch)}".encode(),
                             digest_size=8).digest()
    return torch.Generator(device=device).manual_seed(int.from_bytes(digest, "little") >> 1)


@dataclass
class _Fold:
    """One fold while it trains: its module, data order and bookkeeping."""

    model: nn.Module  # the fold's own module: validated and returned with its weights
    data: FoldData
    generator: torch.Generator
    tracker: FoldTracker
    n_train: int
    n_steps: int  # SGD steps per epoch, ceil(n_train / batch) as in train_fold


class _Stack:
    """The folds of one stack still training: their stacked weights and the kernel.

    ``params``/``buffers`` are ``{name: (K, ...)}`` on the device, dense weights in the
    matmul layout (:func:`_matmul_layout`); :meth:`keep` drops finished folds.
    """

    def __init__(self, folds: list[_Fold], kernel: str, config: TrainConfig,
                 device: torch.device) -> None:
        self.folds, self.kernel, self.config, self.device = folds, kernel, config, device
        # A copy of the architecture, called functionally with each fold's stacked weights.
        self.template = copy.deepcopy(folds[0].model)
        params, self.buffers = stack_module_state([f.model for f in folds])
        self.params = _matmul_layout(params)
        self._new_kernel()

    def _new_kernel(self) -> None:
        # A fresh workspace: the old one's buffers have the old fold count's shapes.
        self.forward, self.step = _stacked_kernel(
            self.template, self.kernel, amp_product_dtype(self.device, self.config),
            self.device, self.config)

    def keep(self, rows: list[int]) -> None:
        """Keep only the folds at ``rows`` (stack order): the others cost nothing from now."""
        if len(rows) == len(self.folds):
            return
        index = torch.tensor(rows, dtype=torch.int64, device=self.device)
        self.params, self.buffers = _restack(self.params, index), _restack(self.buffers, index)
        self.folds = [self.folds[row] for row in rows]
        self._new_kernel()


class _Stopped(Exception):
    """A lane stops early because another lane failed or the run was interrupted."""


class _Lanes:
    """Runs stacks of folds on ``n`` worker threads (in the caller's thread when ``n`` is 1).

    Each worker computes on one torch thread and takes the next stack when it finishes one.
    ``lock`` serialises the folds' bookkeeping (saving states, reporting epochs); ``stop``
    tells the lanes to end at their next step (a lane failed, or the caller was
    interrupted: Ctrl-C, a cancelled run), and the first error is raised in the caller.
    """

    def __init__(self, n: int) -> None:
        self.n = n
        self.lock = threading.RLock()
        self.stop = threading.Event()
        self.running = n  # lanes still training: a fold's share of the machine's time

    def run(self, stacks: list[list[_Fold]], train: Callable[[list[_Fold], "_Lanes"], None]
            ) -> None:
        if self.n == 1:
            self.running = 1
            for stack in stacks:
                train(stack, self)
            return
        queue = list(reversed(stacks))

        def lane() -> None:
            torch.set_num_threads(1)  # this thread's own count (OpenMP keeps one per thread)
            try:
                while True:
                    with self.lock:
                        if not queue or self.stop.is_set():
                            return
                        stack = queue.pop()
                    train(stack, self)
            finally:
                with self.lock:
                    self.running -= 1

        with torch_threads(1), ThreadPoolExecutor(self.n, thread_name_prefix="tfcnn-lane") \
                as pool:
            futures = [pool.submit(lane) for _ in range(self.n)]
            try:
                while True:  # short waits: Ctrl-C and SIGTERM reach this thread
                    done, pending = wait(futures, timeout=0.5, return_when=FIRST_EXCEPTION)
                    if not pending or any(f.exception() is not None for f in done):
                        break
            finally:
                if not all(f.done() and f.exception() is None for f in futures):
                    self.stop.set()  # an error, or the caller interrupted: end every lane
                wait(futures)
        errors = [f.exception() for f in futures if f.exception() is not None]
        first = next((e for e in errors if not isinstance(e, _Stopped)), None)
        if first is not None:
            raise first


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
    lanes: int | None = None,
    on_fold_end: Callable[[int, FoldTraining], None] | None = None,
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
        val_loss, val_acc, lr, seconds``) right after that epoch, in fold order within a
        stack (one call at a time, possibly from a lane's thread); ``seconds`` is the fold's
        share of the machine's wall time in that epoch.
    kernel : {"auto", "banded", "blackbox", "vmap", "loop"}
        How the folds are computed (see :data:`KERNELS`, :func:`choose_kernel`); results
        agree to float rounding.
    states : sequence of FoldStateFile, optional
        One per fold, in the order of ``datas``: where each fold's resumable state goes
        after every epoch, and the saved state it continues from when there is one (as in
        :func:`tfcnn.fold_training.train_fold`).
    lanes : int, optional
        Worker threads where the schedule uses them (:func:`fold_schedule`); default one per
        torch thread.
    on_fold_end : callable, optional
        Called with a fold's position in ``datas`` and its result as soon as its stack has
        finished (one call at a time, possibly from a lane's thread), so a caller saves each
        fold while the others train: with stacks of one fold, as each fold ends.

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
        results = []
        for position, (model, data, state) in enumerate(zip(models, datas, states)):
            results.append(train_fold(model, data, config, device=device, on_epoch=on_epoch,
                                      state=state))
            if on_fold_end is not None:
                on_fold_end(position, results[-1])
        return results
    folds = _prepare_folds(models, datas, states, config, on_epoch, device)
    position = {id(f): i for i, f in enumerate(folds)}
    schedule = fold_schedule(kernel, device, len(folds), lanes)
    stacks = [folds[i:i + schedule.stack_size]
              for i in range(0, len(folds), schedule.stack_size)]

    def train(stack: list[_Fold], lanes: _Lanes) -> None:
        _train_stack(stack, kernel, config, device, lanes)
        if on_fold_end is not None:
            with lanes.lock:
                for fold in stack:
                    on_fold_end(position[id(fold)], fold.tracker.result())

    _Lanes(schedule.lanes).run(stacks, train)
    return [f.tracker.result() for f in folds]


def _prepare_folds(models: Sequence[nn.Module], datas: Sequence[FoldData],
                   states: list[FoldStateFile | None], config: TrainConfig,
                   on_epoch: Callable[[dict], None] | None, device: torch.device
                   ) -> list[_Fold]:
    """Each fold's module (on ``device``), data-order generator and tracker, continued from
    its saved state where there is one; the global generator seeded (dropout of the
    autograd kernels: seeded, so repeatable)."""
    batch = int(config.batch_size)
    folds = []
    for model, data, state in zip(models, datas, states):
        generator = fold_generator(data.seed)
        n_train = int(data.train_y.shape[0])
        folds.append(_Fold(
            model=model.to(device), data=data, generator=generator,
            tracker=FoldTracker(data, config, on_epoch, _saver(state, model, generator)),
            n_train=n_train, n_steps=math.ceil(n_train / batch)))
    torch.manual_seed(int(datas[0].seed))
    _restore(folds, states)
    return folds


def _train_stack(folds: list[_Fold], kernel: str, config: TrainConfig, device: torch.device,
                 lanes: _Lanes) -> None:
    """Train one stack of folds until each has finished: an epoch of SGD steps, the
    validation, each fold's bookkeeping; finished folds leave the stack."""
    active = [f for f in folds if not f.tracker.finished]
    if not active:
        return
    stack = _Stack(active, kernel, config, device)
    while stack.folds:
        t0 = time.perf_counter()
        train_loss, train_acc = _train_epoch(stack, int(config.batch_size), lanes.stop)
        validation = _evaluate_stacked(stack.forward, stack.params, stack.buffers,
                                       stack.template, stack.folds, config, device)
        # The fold's share of the machine's time: the stack's epoch over its folds and over
        # the lanes training beside it.
        share = (time.perf_counter() - t0) / (len(stack.folds) * max(1, lanes.running))
        with lanes.lock:
            keep = _end_epoch(stack, train_loss, train_acc, validation, share)
        stack.keep(keep)


def _train_epoch(stack: _Stack, batch: int, stop: threading.Event
                 ) -> tuple[list[float], list[float]]:
    """One epoch of SGD steps of every fold of ``stack``: each fold's mean training loss and
    accuracy over its own patches."""
    folds, device = stack.folds, stack.device
    k = len(folds)
    lr = torch.tensor([f.tracker.lr for f in folds], device=device)  # (K,)
    index, mask, n_steps = _epoch_indices(folds, batch, device)  # (K, S*B) each
    generators = [dropout_generator(f.data.seed, f.tracker.epoch + 1, device) for f in folds]
    train_x = [f.data.train_x for f in folds]
    train_y = [f.data.train_y for f in folds]
    loss_sum = torch.zeros(k, device=device, dtype=torch.float64)
    correct = torch.zeros(k, device=device, dtype=torch.float64)
    stack.template.train()
    for step in range(n_steps):
        if stop.is_set():
            raise _Stopped
        cols = slice(step * batch, (step + 1) * batch)
        idx, m = index[:, cols], mask[:, cols]  # (K, B)
        # (K, B, 1, n_mels, frames): each fold's next minibatch, from its own patches
        xb = torch.empty((k, batch, *train_x[0].shape[1:]), dtype=train_x[0].dtype,
                         device=device)
        yb = torch.empty((k, batch), dtype=train_y[0].dtype, device=device)
        for row, (x, y, i) in enumerate(zip(train_x, train_y, idx)):
            torch.index_select(x, 0, i, out=xb[row])
            torch.index_select(y, 0, i, out=yb[row])
        counts = m.sum(dim=1)  # (K,) real patches in this step's minibatch
        # A fold whose epoch is over (count 0) stands still.
        step_lr = torch.where(counts > 0, lr, torch.zeros_like(lr))
        loss, n_correct = stack.step(stack.params, stack.buffers, xb, yb, m, step_lr,
                                     generators)
        loss_sum += loss.double() * counts
        correct += n_correct.double()
    # One host sync per epoch, not per step.
    n_train = [f.n_train for f in folds]
    train_loss = (loss_sum / torch.tensor(n_train, device=device, dtype=torch.float64)).tolist()
    train_acc = (correct.round().long().cpu().numpy() / n_train).tolist()
    return train_loss, train_acc


def _end_epoch(stack: _Stack, train_loss: list[float], train_acc: list[float],
               validation: list[tuple[float, float]], share: float) -> list[int]:
    """Each fold's epoch bookkeeping (weights copied out of the stack, record, schedule,
    saved state); returns the stack rows of the folds still training."""
    keep = []
    for row, fold in enumerate(stack.folds):
        t1 = time.perf_counter()
        _copy_out(stack.params, row, fold.model)
        val_loss, val_acc = validation[row]
        # Each fold counts its own epochs: a resumed stack may join folds saved at
        # different epochs.
        fold.tracker.end_epoch(
            fold.model, epoch=fold.tracker.epoch + 1, train_loss=train_loss[row],
            train_acc=train_acc[row], val_loss=val_loss, val_acc=val_acc,
            started=t1 - share)
        if not fold.tracker.finished:
            keep.append(row)
    return keep


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
