"""Fold-parallel cross-validation: K folds of one architecture trained in one batched pass.

The paper's models are tiny (3k-3M parameters) and its minibatch of 10 patches (Pons et al.
2016, §2) leaves a CPU or GPU mostly idle, so training the 10 folds one after another wastes
most of the machine. Here the K folds' parameters are stacked along a new leading axis
(``torch.func.stack_module_state``) and every step runs one forward/backward over all the
active folds. Kernels (:data:`KERNELS`): for the musically motivated models (time,
frequency, timefreq) a stacked forward that writes each 1×n / m×1 convolution as one batched
matrix product with a banded matrix and pools before bias and ReLU (:data:`STACKED_FORWARDS`,
exact rewrites); for any other model ``torch.vmap(functional_call)`` of its own forward
(grouped convolutions) on an accelerator, and plain :func:`tfcnn.fold_training.train_fold` per fold
on a CPU, where the black-box model is compute-bound already at batch 10 and stacking it
measured slower.

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

With ``config.amp`` the banded kernel multiplies in bfloat16 where that pays (CUDA, CPUs with
native bf16: :func:`amp_product_dtype`); the rest stays float32 on a CPU.
"""

from __future__ import annotations

import copy
import functools
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call, stack_module_state

from tfcnn.config import TrainConfig, training_stages
from tfcnn.device import autocast, no_autocast
from tfcnn.errors import ConfigError
from tfcnn.fold_training import (
    FoldData,
    FoldTracker,
    FoldTraining,
    epoch_order,
    fold_generator,
    train_fold,
)
from tfcnn.models import build_model, stage_params


@dataclass
class _Fold:
    """One fold while it trains in the stack: its module, data order and bookkeeping."""

    model: nn.Module  # the fold's own module: validated and returned with its weights
    data: FoldData
    generator: torch.Generator
    tracker: FoldTracker
    n_train: int
    n_steps: int  # SGD steps per epoch, ceil(n_train / batch) as in train_fold


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
# The backward never builds the dense gradient map: only each pooled value's winning row
# gets gradient, so the weights' gradient gathers those windows of the input (1/40 of the
# work of the product's own backward). On a 2-core CPU the forward product is then most of
# a step; the rest is kept to few passes over memory (reused buffers, no layout copies).


class _Workspace:
    """What the banded kernels share within one training loop: the dtype of their matrix
    products, and buffers for their large temporaries, reused from step to step.

    On a CPU a fresh multi-megabyte tensor costs page faults every step (the backward's
    gather is several megabytes), so they are reused. Buffers are only for values that do not outlive the call that fills them; one workspace per training
    loop (not shared between threads). They are keyed by tag, shape, dtype and device.

    Parameters
    ----------
    product_dtype : torch.dtype, optional
        dtype of the convolutions' matrix products (``torch.bfloat16`` for AMP); None: that
        of the activations.
    """

    def __init__(self, product_dtype: torch.dtype | None = None) -> None:
        self.product_dtype = product_dtype
        self._buffers: dict[tuple, torch.Tensor] = {}

    def get(self, tag: str, shape: tuple[int, ...], dtype: torch.dtype, device: torch.device,
            *, zeros: bool = False) -> torch.Tensor:
        """The buffer for ``tag`` of this shape (zero-filled when created with ``zeros``)."""
        key = (tag, tuple(shape), dtype, device)
        buffer = self._buffers.get(key)
        if buffer is None:
            make = torch.zeros if zeros else torch.empty
            buffer = self._buffers[key] = make(shape, dtype=dtype, device=device)
        return buffer


def _band_matrix(weight: torch.Tensor, length: int, work: _Workspace, dtype: torch.dtype
                 ) -> torch.Tensor:
    """The matrices of K folds' "valid" 1-D cross-correlations, filters side by side.

    ``band[k, t, p * F + f] = weight[k, f, t - p]`` for ``0 <= t - p < width``, else 0: a
    signal ``s`` of length L times ``band[k]`` gives ``conv1d(s, weight[k])`` at every
    position p = 0..P-1 for every filter f, P = L - width + 1.

    Parameters
    ----------
    weight : torch.Tensor, shape (K, F, width)
    length : int
        Signal length L.
    work : _Workspace
        Holds the matrix between calls: its zeros never change, so a call only rewrites the
        taps.
    dtype : torch.dtype
        The matrix's dtype (the activations').

    Returns
    -------
    torch.Tensor, shape (K, L, P * F)
        A view of a workspace buffer, valid until the next call with the same shapes.
    """
    k, n_filters, width = weight.shape
    n_pos = length - width + 1
    band = work.get("band", (k, length, n_pos, n_filters), dtype, weight.device, zeros=True)
    # The taps lie on diagonals: band[k, p + j, p, f] = weight[k, f, j]. A strided view
    # (k, j, p, f) of those diagonals takes every tap in one copy.
    taps = band.as_strided((k, width, n_pos, n_filters),
                           (length * n_pos * n_filters, n_pos * n_filters,
                            (n_pos + 1) * n_filters, 1))
    taps.copy_(weight.detach().permute(0, 2, 1).unsqueeze(2).expand(k, width, n_pos, n_filters))
    return band.view(k, length, n_pos * n_filters)


#: Positions per block of the banded product (see :func:`_position_blocks`).
POSITION_BLOCK = 7


def _position_blocks(n_pos: int) -> list[tuple[int, int]]:
    """Blocks ``[first, last)`` of output positions, computed one product each.

    A block of n positions reads ``n + width - 1`` of the ``length`` inputs, so splitting the
    band matrix's columns skips most of its structural zeros (1×60 filters on 80 frames in
    blocks of 7: 66 of 80 rows) and keeps each block's activations in cache.
    """
    return [(first, min(first + POSITION_BLOCK, n_pos))
            for first in range(0, n_pos, POSITION_BLOCK)]


def _first_max_rows(h: torch.Tensor, values: torch.Tensor) -> torch.Tensor:
    """Index of the first row holding each column's maximum (``max_pool2d``'s tie rule).

    ``Tensor.max(dim)`` and ``argmax`` over a middle axis are much slower than ``amax`` on a
    CPU; here the winner comes from two vectorised elementwise passes and one ``amax``:
    ``h >= max`` is 1 on a maximum and 0 elsewhere, so ``(h >= max) * (R - r)`` peaks at the
    first maximum's row r. Overwrites ``h``.

    Parameters
    ----------
    h : torch.Tensor, shape (K, B, R, C)
    values : torch.Tensor, shape (K, B, C)
        ``h.amax(dim=2)``.

    Returns
    -------
    torch.Tensor, shape (K, B, C), int64 in ``[0, R)`` (R - 1 where a column holds a NaN)
    """
    n_rows = h.shape[2]
    rank = torch.arange(n_rows, 0, -1, device=h.device, dtype=h.dtype).view(1, 1, -1, 1)
    # ge into h's own float storage: a bool output is slower on a CPU.
    is_max = torch.ge(h, values.unsqueeze(2), out=h)  # 1.0 on a maximum, 0.0 below
    first = is_max.mul_(rank).amax(dim=2)  # (K, B, C): R - r of the first maximum
    return (n_rows - first).long().clamp_(0, n_rows - 1)


def _pooled_products(flat: torch.Tensor, band: torch.Tensor, work: _Workspace, batch: int,
                     n_filters: int, width: int, dtype: torch.dtype, *, need_winners: bool
                     ) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Band products of K folds' rows, max-pooled over each patch's rows, block by block.

    Parameters
    ----------
    flat : torch.Tensor, shape (K, B * R, L)
        The rows of B patches, R rows each, in the products' dtype.
    band : torch.Tensor, shape (K, L, P * F)
        :func:`_band_matrix` of the filters, in the products' dtype.
    work : _Workspace
        Holds the product buffers.
    batch, n_filters, width : int
        B, F and the filters' width.
    dtype : torch.dtype
        dtype of the pooling and of ``values`` (the activations'). Products in another dtype
        (bfloat16) are converted first: on a CPU max and compare run slower on bf16.
    need_winners : bool
        Also return each maximum's row (for the backward).

    Returns
    -------
    values : torch.Tensor, shape (K, B, P * F)
        ``max_r (flat @ band)`` per patch.
    winners : torch.Tensor or None, shape (K, B, P * F), int64
        The first row holding each maximum (:func:`_first_max_rows`).
    """
    k, rows_total, length = flat.shape
    n_rows = rows_total // batch
    n_pos = length - width + 1
    device = flat.device
    values = torch.empty((k, batch, n_pos * n_filters), dtype=dtype, device=device)
    winners = torch.empty(values.shape, dtype=torch.int64, device=device) if need_winners \
        else None
    blocks = _position_blocks(n_pos)
    largest = max(last - first for first, last in blocks)
    buffer = work.get("h", (k * rows_total * largest * n_filters,), dtype, device)
    for first, last in blocks:
        # Positions first..last-1 see only inputs first..last+width-2: a smaller product.
        cols = slice(first * n_filters, last * n_filters)
        shape = (k, rows_total, (last - first) * n_filters)
        h = buffer[:math.prod(shape)].view(shape)
        operands = flat[:, :, first:last + width - 1], band[:, first:last + width - 1, cols]
        if flat.dtype == dtype:
            torch.bmm(*operands, out=h)  # (K, B*R, n*F)
        else:
            product = work.get("product", (math.prod(shape),), flat.dtype, device)
            h.copy_(torch.bmm(*operands, out=product[:math.prod(shape)].view(shape)))
        h = h.view(k, batch, n_rows, -1)
        values[:, :, cols] = h.amax(dim=2)
        if need_winners:
            winners[:, :, cols] = _first_max_rows(h, values[:, :, cols])
    return values, winners


class _ConvMaxOverRows(torch.autograd.Function):
    """Max over all rows of each row's 1-D "valid" cross-correlation, K folds stacked.

    ``out[k, b, p, f] = max_r sum_j weight[k, f, j] * rows[k, b, r, p + j]``: the temporal
    (frequency) filters of the Time (Frequency) branch before bias and ReLU, pooled over all
    bands (frames), which commute with the pool (bias constant along it, ReLU monotonic).

    Forward: one ``bmm`` with the filters' band matrices (:func:`_band_matrix`), ``amax`` over
    the rows. Backward: only the winning row of each pooled value gets gradient, so the
    weights' gradient gathers those B·P·F windows of the input and sums them weighted by the
    output gradient; no dense (B·R)×(P·F) gradient map is built. The input rows get no
    gradient (they are data).
    """

    @staticmethod
    def forward(ctx, weight: torch.Tensor, rows: torch.Tensor, work: _Workspace
                ) -> torch.Tensor:
        # weight (K, F, width), rows (K, B, R, L) contiguous → (K, B, P, F)
        k, n_filters, width = weight.shape
        _, batch, n_rows, length = rows.shape
        n_pos = length - width + 1
        # Autocast off: the products' dtype is the workspace's (an out= product under
        # autocast would clash with a buffer of the activations' dtype).
        device = rows.device
        with no_autocast(device):
            dtype = work.product_dtype or rows.dtype
            band = _band_matrix(weight, length, work, dtype)  # (K, L, P*F)
            flat = rows.view(k, batch * n_rows, length).to(dtype)
            values, winners = _pooled_products(flat, band, work, batch, n_filters, width,
                                               rows.dtype, need_winners=ctx.needs_input_grad[0])
        if winners is not None:
            ctx.save_for_backward(rows, winners)
            ctx.width, ctx.weight_dtype, ctx.work = width, weight.dtype, work
        return values.view(k, batch, n_pos, n_filters)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> tuple[torch.Tensor, None, None]:
        rows, winners = ctx.saved_tensors  # (K, B, R, L), (K, B, P*F)
        k, batch, n_rows, length = rows.shape
        _, _, n_pos, n_filters = grad.shape
        width = ctx.width
        device = rows.device
        # Where each winning window starts in rows.flatten(): ((k*B + b)*R + r)*L + p.
        row_start = (torch.arange(k * batch, device=device).view(k, batch, 1, 1) * n_rows
                     + winners.view(k, batch, n_pos, n_filters)) * length
        start = row_start + torch.arange(n_pos, device=device).view(1, 1, n_pos, 1)
        start = start.permute(0, 3, 1, 2).reshape(k, -1)  # (K, F*B*P), filter major
        windows = rows.reshape(-1).unfold(0, width, 1)  # (numel - width + 1, width), a view
        g = grad.permute(0, 3, 1, 2).reshape(k, n_filters, 1, batch * n_pos).to(rows.dtype)
        picked = ctx.work.get("picked", (k * n_filters * batch * n_pos, width), rows.dtype,
                              device)
        torch.index_select(windows, 0, start.reshape(-1), out=picked)
        grad_weight = torch.bmm(g.flatten(0, 1), picked.view(k * n_filters, batch * n_pos, width))
        return grad_weight.view(k, n_filters, width).to(ctx.weight_dtype), None, None


def _banded_conv_maxpool(weight: torch.Tensor, bias: torch.Tensor, rows: torch.Tensor,
                         work: _Workspace) -> torch.Tensor:
    """relu(conv1d along the last axis), max-pooled over the row axis, for K stacked folds.

    Parameters
    ----------
    weight : torch.Tensor, shape (K, n_filters, width)
    bias : torch.Tensor, shape (K, n_filters)
    rows : torch.Tensor, shape (K, B, R, L)
        Filters run along L (length); the pool spans all R rows.
    work : _Workspace
        The training loop's product dtype and reusable buffers.

    Returns
    -------
    torch.Tensor, shape (K, B, n_filters * P), P = L - width + 1
        Flattened filter-major, as ``torch.flatten`` of the conv/pool feature map.
    """
    k, n_filters, width = weight.shape
    batch, length = rows.shape[1], rows.shape[3]
    pooled = _ConvMaxOverRows.apply(weight, rows.contiguous(), work)  # (K, B, P, F)
    h = F.relu(pooled + bias[:, None, None, :].to(pooled.dtype))
    return h.transpose(2, 3).reshape(k, batch, n_filters * (length - width + 1))


def _dropout(h: torch.Tensor, p: float, training: bool) -> torch.Tensor:
    """``F.dropout(h, p, training)`` with a mask drawn faster on a CPU.

    The same distribution (each unit kept with probability 1 - p, scaled by 1 / (1 - p)).
    ``F.dropout`` draws one ``bernoulli_`` sample per unit; for the paper's p = 0.5 each unit
    here takes one bit of a 32-bit random word, for other p ``uniform >= p``.
    """
    if not training or p == 0.0:
        return h
    if p >= 1.0:
        return torch.zeros_like(h)
    if p == 0.5:
        n = h.numel()
        words = torch.randint(0, 1 << 32, ((n + 31) // 32, 1), device=h.device)  # int64
        bits = (words >> torch.arange(32, device=h.device)) & 1  # (n/32, 32): fair coins
        keep = bits.view(-1)[:n].view(h.shape).to(h.dtype)
    else:
        keep = torch.rand(h.shape, device=h.device, dtype=h.dtype).ge_(p)
    return h * keep.mul_(1.0 / (1.0 - p))  # (shape of h): 0 or 1 / (1 - p)


def _branch(p: dict, prefix: str, x: torch.Tensor, work: _Workspace) -> torch.Tensor:
    """Stacked ``_TimeBranch`` or ``_FreqBranch``, by ``prefix``. x (K, B, 1, M, N).

    ``time_branch.``: 1×n filters along frames, pool over all bands; ``freq_branch.``: m×1
    filters along bands, pool over all frames (the patch transposed: rows are frames).
    """
    weight = p[prefix + "conv.weight"]  # (K, F, 1, 1, n) or (K, F, 1, m, 1)
    k, n_filters = weight.shape[:2]
    rows = x.squeeze(2)  # (K, B, M, N)
    if prefix == "freq_branch.":
        rows = rows.transpose(2, 3)  # (K, B, N, M)
    return _banded_conv_maxpool(weight.reshape(k, n_filters, -1), p[prefix + "conv.bias"], rows,
                                work)


def _linear(p: dict, prefix: str, h: torch.Tensor) -> torch.Tensor:
    """Stacked ``nn.Linear``: h (K, B, in) → (K, B, out).

    ``weight`` is best stored (in, out)-major (:func:`_matmul_layout`): then ``weight^T`` is
    a contiguous right operand and its gradient comes out in the weight's own layout.
    """
    weight, bias = p[prefix + "weight"], p[prefix + "bias"]  # (K, out, in), (K, out)
    return torch.baddbmm(bias.unsqueeze(1).to(h.dtype), h, weight.transpose(1, 2).to(h.dtype))


def _stacked_time(model: nn.Module, p: dict, x: torch.Tensor, work: _Workspace
                  ) -> torch.Tensor:
    h = _branch(p, "time_branch.", x, work)  # (K, B, 32 * 21)
    h = _dropout(h, model.dropout.p, model.training)
    return _linear(p, "output.", h)


def _stacked_frequency(model: nn.Module, p: dict, x: torch.Tensor, work: _Workspace
                       ) -> torch.Tensor:
    h = _branch(p, "freq_branch.", x, work)  # (K, B, 32 * 9)
    h = _dropout(h, model.dropout.p, model.training)
    return _linear(p, "output.", h)


def _stacked_timefreq(model: nn.Module, p: dict, x: torch.Tensor, work: _Workspace
                      ) -> torch.Tensor:
    h = torch.cat([_branch(p, "time_branch.", x, work),
                   _branch(p, "freq_branch.", x, work)], dim=2)  # (K, B, 960)
    h = _dropout(h, model.dropout.p, model.training)  # before both dense layers, as the module
    h = F.relu(_linear(p, "hidden.", h))  # (K, B, hidden)
    h = _dropout(h, model.dropout.p, model.training)
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
#: (:func:`tfcnn.fold_training.train_fold` on each fold in turn) and ``auto`` (see :func:`choose_kernel`).
KERNELS: tuple[str, ...] = ("auto", "banded", "vmap", "loop")


@functools.lru_cache(maxsize=1)
def cpu_has_native_bf16() -> bool:
    """True when this CPU multiplies bfloat16 natively (x86 AVX512-BF16 or AMX-BF16).

    Read from ``/proc/cpuinfo`` (Linux); False elsewhere. Without these instructions oneDNN
    emulates bfloat16 and a bf16 product is no faster than a float32 one.
    """
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            info = f.read()
    except OSError:
        return False
    flags = set()
    for line in info.splitlines():
        if line.startswith("flags"):
            flags.update(line.split(":", 1)[1].split())
    return bool(flags & {"avx512_bf16", "amx_bf16"})


def amp_product_dtype(device: torch.device, config: TrainConfig) -> torch.dtype | None:
    """dtype of the banded kernel's convolution products: bfloat16 under AMP where it pays.

    ``config.amp`` on CUDA (as autocast elsewhere in training), or on a CPU that multiplies
    bfloat16 natively (:func:`cpu_has_native_bf16`): there a bf16 product of the 1×60
    filters runs faster than a float32 one (``python -m bench.crossval --amp``). Otherwise None (the activations' dtype).
    Winners of the max-pool are picked on the bf16 products; the weights' gradient is taken
    from the float32 input.
    """
    if not config.amp:
        return None
    device = torch.device(device)
    if device.type == "cuda" or (device.type == "cpu" and cpu_has_native_bf16()):
        return torch.bfloat16
    return None


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
        The banded-matrix forward of :data:`STACKED_FORWARDS`, or
        ``torch.vmap(functional_call)`` of the module's own forward.
    product_dtype : torch.dtype, optional
        ``banded`` only: dtype of the convolutions' matrix products (see
        :func:`amp_product_dtype`); None keeps the activations' dtype.

    Returns
    -------
    callable
        ``(params {name: (K, ...)}, buffers, x (K, B, 1, n_mels, frames)) -> (K, B, n_classes)``;
        each fold draws its own dropout masks.
    """
    if kernel == "banded":
        fast = STACKED_FORWARDS[template.arch]
        work = _Workspace(product_dtype)
        return lambda params, buffers, x: fast(template, params, x, work)

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
) -> list[FoldTraining]:
    """Train K folds of one architecture at once, each as :func:`tfcnn.fold_training.train_fold` would.

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
            tracker=FoldTracker(data, config, on_epoch),
            n_train=n_train,
            n_steps=math.ceil(n_train / batch),
        ))
    # Dropout draws from the global generator (per fold through vmap): seeded, so repeatable.
    torch.manual_seed(int(datas[0].seed))

    # A copy of the architecture, called functionally with each fold's stacked weights.
    template = copy.deepcopy(folds[0].model)
    params, buffers = stack_module_state([f.model for f in folds])  # each (K, ...) on device
    params = _matmul_layout(params)

    forward = stacked_forward(template, kernel, amp_product_dtype(device, config))

    active = list(folds)  # folds still training, in stack order
    for epoch in range(1, int(config.max_epochs) + 1):
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
            action = fold.tracker.end_epoch(
                fold.model, epoch=epoch, train_loss=train_loss[row], train_acc=train_acc[row],
                val_loss=val_loss, val_acc=val_acc, started=t1 - share - share_val)
            if action != "stop":
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
