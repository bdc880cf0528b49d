"""The banded kernel: K folds' Time / Frequency / Time-Frequency forwards as batched matrix
products, for :func:`tfcnn.parallel.train_folds_parallel`.

Each stacked forward (:data:`STACKED_FORWARDS`) computes, for K folds' stacked weights, what
the module's own forward computes for each fold (exact rewrites, equal to float rounding).
:func:`banded_forward` is the entry point; :func:`supports` says which models it can run.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

from tfcnn.config import TrainConfig
from tfcnn.device import no_autocast


# # The musically motivated branches end in a max-pool over the whole of one axis (all bands
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
    gather is several megabytes), so they are reused. Buffers are only for values that do
    not outlive the call that fills them; one workspace per training loop (not shared
    between threads). They are keyed by tag, shape, dtype and device.

    Parameters
    ----------
    product_dtype : torch.dtype, optional
        dtype of the convolutions' matrix products (``torch.bfloat16`` for AMP); None: that
        of the activations.
    """

    def __init__(self, product_dtype: torch.dtype | None = None) -> None:
        self.product_dtype = product_dtype
        #: Each stacked fold's dropout generator for the current call (None: global).
        self.generators: list[torch.Generator] | None = None
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


def dropout_mask(shape: tuple[int, ...], p: float, *, device: torch.device,
                 dtype: torch.dtype = torch.float32,
                 generator: torch.Generator | None = None) -> torch.Tensor:
    """A dropout mask drawn faster on a CPU than ``F.dropout``'s: 0 or ``1 / (1 - p)``.

    The same distribution as ``F.dropout`` (each unit kept with probability 1 - p, scaled by
    1 / (1 - p)). ``F.dropout`` draws one ``bernoulli_`` sample per unit; for the paper's
    p = 0.5 each unit here takes one bit of a 32-bit random word, for other p
    ``uniform >= p``. Requires ``0 < p < 1``.

    Returns
    -------
    torch.Tensor, shape ``shape``, ``dtype``
    """
    if p == 0.5:
        n = math.prod(shape)
        words = torch.randint(0, 1 << 32, ((n + 31) // 32, 1), device=device,
                              generator=generator)  # int64
        bits = (words >> torch.arange(32, device=device)) & 1  # (n/32, 32): fair coins
        keep = bits.view(-1)[:n].view(shape).to(dtype)
    else:
        keep = torch.rand(shape, device=device, dtype=dtype, generator=generator).ge_(p)
        keep = keep.to(dtype)
    return keep.mul_(1.0 / (1.0 - p))


def _dropout(h: torch.Tensor, p: float, training: bool,
             generators: list[torch.Generator] | None = None) -> torch.Tensor:
    """``F.dropout(h, p, training)`` with the faster mask of :func:`dropout_mask`.

    ``h`` is (K, ...) for K stacked folds; with ``generators`` fold k's mask comes from
    ``generators[k]``, else every mask from the global generator.
    """
    if not training or p == 0.0:
        return h
    if p >= 1.0:
        return torch.zeros_like(h)
    if generators is None:
        return h * dropout_mask(tuple(h.shape), p, device=h.device, dtype=h.dtype)
    masks = [dropout_mask(tuple(h.shape[1:]), p, device=h.device, dtype=h.dtype, generator=g)
             for g in generators]
    return h * torch.stack(masks)


def _branch(p: dict, prefix: str, x: torch.Tensor, work: _Workspace) -> torch.Tensor:
    """Stacked :class:`tfcnn.models._Branch` (time or frequency), by ``prefix``. x (K, B, 1, M, N).

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
    h = _dropout(h, model.dropout.p, model.training, work.generators)
    return _linear(p, "output.", h)


def _stacked_frequency(model: nn.Module, p: dict, x: torch.Tensor, work: _Workspace
                       ) -> torch.Tensor:
    h = _branch(p, "freq_branch.", x, work)  # (K, B, 32 * 9)
    h = _dropout(h, model.dropout.p, model.training, work.generators)
    return _linear(p, "output.", h)


def _stacked_timefreq(model: nn.Module, p: dict, x: torch.Tensor, work: _Workspace
                      ) -> torch.Tensor:
    h = torch.cat([_branch(p, "time_branch.", x, work),
                   _branch(p, "freq_branch.", x, work)], dim=2)  # (K, B, 960)
    # before both dense layers, as the module
    h = _dropout(h, model.dropout.p, model.training, work.generators)
    h = F.relu(_linear(p, "hidden.", h))  # (K, B, hidden)
    h = _dropout(h, model.dropout.p, model.training, work.generators)
    return _linear(p, "output.", h)


#: Stacked forwards by architecture: ``f(template, stacked_params, x (K, B, 1, M, N)) ->
#: logits (K, B, n_classes)``, numerically the module's forward for each fold.
STACKED_FORWARDS: dict[str, Callable] = {
    "time": _stacked_time,
    "frequency": _stacked_frequency,
    "timefreq": _stacked_timefreq,
    "timefreq-init": _stacked_timefreq,
}

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
    filters runs faster than a float32 one (``python -m bench.crossval --amp``). Otherwise
    None (the activations' dtype). Winners of the max-pool are picked on the bf16 products; the weights' gradient is taken
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


def supports(model: nn.Module) -> bool:
    """Whether the banded kernel can run ``model``'s architecture: time, frequency or
    timefreq with 1×n / m×1 filters."""
    return getattr(model, "arch", "") in STACKED_FORWARDS and _has_banded_filters(model)


def banded_forward(template: nn.Module, product_dtype: torch.dtype | None = None
                   ) -> Callable:
    """``forward(params, buffers, x) -> logits`` of the banded kernel for ``template``'s
    architecture, with its own workspace.

    Parameters
    ----------
    template : nn.Module
        A model of the architecture (see :func:`supports`); its ``training`` flag switches
        dropout.
    product_dtype : torch.dtype, optional
        dtype of the convolutions' matrix products (see :func:`amp_product_dtype`); None
        keeps the activations' dtype.

    Returns
    -------
    callable
        ``(params {name: (K, ...)}, buffers, x (K, B, 1, n_mels, frames), generators=None)
        -> (K, B, n_classes)``; with ``generators`` fold k's dropout masks come from
        ``generators[k]``, else from the global generator.
    """
    fast = STACKED_FORWARDS[template.arch]
    work = _Workspace(product_dtype)

    def forward(params: dict, buffers: dict, x: torch.Tensor,
                generators: list[torch.Generator] | None = None) -> torch.Tensor:
        work.generators = generators
        return fast(template, params, x, work)

    return forward
