"""The Black-box kernel: K folds' Black-box training steps with a hand-written backward.

:func:`tfcnn.parallel.train_folds_parallel` trains the musically motivated models through
autograd over the banded forward (:mod:`tfcnn.banded`). The Black-box model (32 filters of
12×8 → max-pool 4×1 → dropout → dense 200 → dropout → dense, 3.27 M weights, 3.27 M of
them in the 200-unit layer) is bound by other costs, which this kernel removes:

- the 200-unit layer is memory-bound at the paper's batch of 10 (a step reads its 13 MB of
  weights twice and autograd writes a 13 MB gradient that SGD then reads back): here its
  update is fused into the weights' gradient product, ``W += h^T (−lr · dz)``, one
  ``baddbmm_`` on the weights in place, so no gradient is stored;
- ``max_pool2d`` over 4×1 windows is slow on a CPU: here the pool is a view and a max over
  the window axis, taken before bias and ReLU (both commute with it: the bias is constant
  over a window, ReLU is monotonic), with ``max_pool2d``'s tie rule (the first maximum gets
  the gradient);
- the convolution's backward computes only the weights' gradient (the input is data);
- dropout masks come from :func:`tfcnn.banded.dropout_mask`.

A step of K stacked folds equals K steps of :func:`tfcnn.fold_training.train_fold` (plain
SGD on each fold's mean cross-entropy over its real patches; padded slots weigh 0) to float
rounding; dropout masks are drawn differently. On a CPU the convolutions run fold by fold
(each fold's 10-patch maps stay in cache; a grouped convolution over the folds measured
slower); elsewhere too, for one code path.

With ``product_dtype=torch.bfloat16`` (AMP) the convolution and the 200-unit layer's two
products multiply in bfloat16; weights, their updates and everything else stay float32.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from tfcnn.banded import dropout_mask

#: The stacked parameters a Black-box fold has (``torch.func.stack_module_state`` names).
PARAM_NAMES: tuple[str, ...] = ("conv.weight", "conv.bias", "hidden.weight", "hidden.bias",
                                "output.weight", "output.bias")


def supports(model: nn.Module) -> bool:
    """Whether this kernel can train ``model``: a Black-box model (any filter and pool)."""
    return getattr(model, "arch", "") == "blackbox" and \
        {name for name, _ in model.named_parameters()} == set(PARAM_NAMES)


class BlackBoxKernel:
    """Forward and training step of K stacked Black-box folds.

    Parameters
    ----------
    template : nn.Module
        A Black-box model: its pool, dropout and training flag (the forward drops units only
        in training mode, as the module).
    product_dtype : torch.dtype, optional
        dtype of the convolution's and the 200-unit layer's products (bfloat16 for AMP);
        None: float32.
    """

    def __init__(self, template: nn.Module, product_dtype: torch.dtype | None = None) -> None:
        self.template = template
        self.pool = tuple(template.pool)  # (rows, columns) of a pool window
        self.p = float(template.dropout.p)
        self.product_dtype = product_dtype
        self._grad_buffers: dict[tuple, torch.Tensor] = {}

    # ------------------------------------------------------------------ forward pieces
    def _conv(self, params: dict, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """Each fold's convolution, without bias: x (K, B, 1, M, N) → (K, B, F, H, W) float32,
        and each fold's input as multiplied (cast once, for the backward)."""
        weight = params["conv.weight"]  # (K, F, 1, kh, kw)
        dtype = self.product_dtype or x.dtype
        inputs = [x[k].to(dtype) for k in range(x.shape[0])]  # (B, 1, M, N) each
        maps = [F.conv2d(xk, weight[k].to(dtype)) for k, xk in enumerate(inputs)]
        # (B, F, H, W) each; one fold needs no stacking copy
        conv = maps[0].unsqueeze(0) if len(maps) == 1 else torch.stack(maps)
        return conv, inputs

    def _offsets(self, conv: torch.Tensor) -> list[torch.Tensor]:
        """Each pool-window offset of a conv map (K, B, F, H, W), as views (K, B, F, Hp, Wp),
        in ``max_pool2d``'s row-major order (the remainder is dropped: its floor).

        Elementwise work runs on these views, not on one broadcast 7-D view: a CPU runs a
        broadcast over the window axis (or a bool result) several times slower.
        """
        h, w = conv.shape[3:]
        ph, pw = self.pool
        hp, wp = h // ph, w // pw
        grid = conv[:, :, :, :hp * ph, :wp * pw].unflatten(4, (wp, pw)).unflatten(3, (hp, ph))
        return [grid[:, :, :, :, i, :, j] for i in range(ph) for j in range(pw)]

    @staticmethod
    def _window_max(offsets: list[torch.Tensor]) -> torch.Tensor:
        """The maximum of each window (K, B, F, Hp, Wp), NaN propagated as ``max_pool2d``."""
        pooled = offsets[0]
        for value in offsets[1:]:
            pooled = torch.maximum(pooled, value)
        return pooled

    def _dense(self, weight: torch.Tensor, bias: torch.Tensor, h: torch.Tensor
               ) -> tuple[torch.Tensor, torch.Tensor]:
        """Stacked ``nn.Linear``: h (K, B, in), weight (K, out, in) → (K, B, out), and the
        weight as multiplied (``(K, out, in)``; a bfloat16 copy under AMP, for the
        backward)."""
        if self.product_dtype is None:
            return torch.baddbmm(bias.unsqueeze(1), h, weight.transpose(1, 2)), weight
        cast = weight.transpose(1, 2).to(self.product_dtype)  # (K, in, out)
        product = torch.bmm(h.to(self.product_dtype), cast)
        return product.float() + bias.unsqueeze(1), cast.transpose(1, 2)

    @torch.no_grad()
    def forward(self, params: dict, buffers: dict, x: torch.Tensor) -> torch.Tensor:
        """Logits ``(K, B, n_classes)`` of x ``(K, B, 1, n_mels, frames)``; dropout only when
        the template is in training mode (masks from the global generator)."""
        return self._forward(params, x, self.template.training, None)["logits"]

    def _mask(self, shape: tuple[int, ...], device: torch.device,
              generators: list[torch.Generator] | None) -> torch.Tensor:
        """Dropout masks (K, ...) of ``shape``: fold k's from ``generators[k]`` (or all from
        the global generator)."""
        if generators is None:
            return dropout_mask(shape, self.p, device=device)
        return torch.stack([dropout_mask(shape[1:], self.p, device=device, generator=g)
                            for g in generators])

    def _forward(self, params: dict, x: torch.Tensor, training: bool,
                 generators: list[torch.Generator] | None) -> dict:
        conv, inputs = self._conv(params, x)  # (K, B, F, H, W)
        offsets = self._offsets(conv)  # (K, B, F, Hp, Wp) each, the products' dtype
        pooled = self._window_max(offsets)  # (K, B, F, Hp, Wp)
        k, b = pooled.shape[:2]
        h = F.relu(pooled.float() + params["conv.bias"][:, None, :, None, None]).view(k, b, -1)
        keep_in = keep_hidden = None
        if training and self.p > 0.0:
            keep_in = self._mask(tuple(h.shape), h.device, generators)  # (K, B, n_flat)
        h_in = h * keep_in if keep_in is not None else h
        z, hid_w = self._dense(params["hidden.weight"], params["hidden.bias"], h_in)
        # z (K, B, hidden)
        r = F.relu(z)
        if training and self.p > 0.0:
            keep_hidden = self._mask(tuple(r.shape), r.device, generators)
        r_in = r * keep_hidden if keep_hidden is not None else r
        logits = torch.baddbmm(params["output.bias"].unsqueeze(1), r_in,
                               params["output.weight"].transpose(1, 2))  # (K, B, n_classes)
        return dict(logits=logits, inputs=inputs, conv_shape=conv.shape, offsets=offsets,
                    pooled=pooled,
                    h=h, keep_in=keep_in, h_in=h_in, z=z, hid_w=hid_w, keep_hidden=keep_hidden,
                    r_in=r_in)

    # ------------------------------------------------------------------ training step
    @torch.no_grad()
    def train_step(self, params: dict, buffers: dict, x: torch.Tensor, y: torch.Tensor,
                   mask: torch.Tensor, lr: torch.Tensor,
                   generators: list[torch.Generator] | None = None
                   ) -> tuple[torch.Tensor, torch.Tensor]:
        """One SGD step of every stacked fold on its minibatch, in place on ``params``.

        Parameters
        ----------
        params : dict of torch.Tensor
            Stacked parameters ``{name: (K, ...)}`` (:data:`PARAM_NAMES`), updated in place;
            ``hidden.weight`` fastest stored (in, out)-major (``tfcnn.parallel``'s layout).
        buffers : dict
            Stacked buffers (the model has none).
        x : torch.Tensor, shape (K, B, 1, n_mels, frames)
        y : torch.Tensor, shape (K, B), int64
        mask : torch.Tensor, shape (K, B), float32
            1 for a real patch, 0 for a padded slot (weight 0 in the loss).
        lr : torch.Tensor, shape (K,)
            Each fold's learning rate this step (0: the fold stands still).
        generators : list of torch.Generator, optional
            Fold k's dropout masks come from ``generators[k]``; None: the global generator.

        Returns
        -------
        loss : torch.Tensor, shape (K,)
            Each fold's mean cross-entropy over its real patches (0 without any).
        correct : torch.Tensor, shape (K,)
            Real patches classified right.
        """
        training = self.template.training
        fwd = self._forward(params, x, training, generators)
        logits = fwd["logits"]  # (K, B, C)
        k, b, n_classes = logits.shape
        counts = mask.sum(dim=1)  # (K,)
        weight = mask / counts.clamp(min=1.0).unsqueeze(1)  # (K, B): mean over real patches
        log_p = torch.log_softmax(logits, dim=2)
        ce = -log_p.gather(2, y.unsqueeze(2)).squeeze(2)  # (K, B)
        loss = (ce * weight).sum(dim=1)
        correct = ((logits.argmax(dim=2) == y).to(mask.dtype) * mask).sum(dim=1)

        # d loss_k / d logits: (softmax - onehot) weighted by the patch's share of the mean
        d_logits = log_p.exp_()
        d_logits.scatter_add_(2, y.unsqueeze(2), torch.full((k, b, 1), -1.0,
                                                            device=logits.device))
        d_logits.mul_(weight.unsqueeze(2))  # (K, B, C)
        step = (-lr).view(k, 1, 1)  # SGD: p += (-lr) * grad

        # output layer (K, C, hidden): gradients first, then the update
        out_w = params["output.weight"]
        d_r = torch.bmm(d_logits, out_w)  # (K, B, hidden)
        out_w.baddbmm_(d_logits.transpose(1, 2) * step, fwd["r_in"])
        params["output.bias"].add_(d_logits.sum(dim=1) * step.view(k, 1))

        # hidden layer: dropout and ReLU, then its input's gradient before the fused update
        if fwd["keep_hidden"] is not None:
            d_r.mul_(fwd["keep_hidden"])
        d_z = d_r.mul_(fwd["z"] > 0)  # (K, B, hidden)
        hid_w = fwd["hid_w"]  # (K, hidden, n_flat), as the forward multiplied it
        d_h = torch.bmm(d_z.to(hid_w.dtype), hid_w).float()  # (K, B, n_flat)
        # W^T (n_flat, hidden) += h_in^T @ (-lr dz): the gradient never exists on its own
        params["hidden.weight"].transpose(1, 2).baddbmm_(fwd["h_in"].transpose(1, 2), d_z * step)
        params["hidden.bias"].add_(d_z.sum(dim=1) * step.view(k, 1))

        # dropout, ReLU and bias of the pooled map
        if fwd["keep_in"] is not None:
            d_h.mul_(fwd["keep_in"])
        d_pooled = d_h.mul_(fwd["h"] > 0).view(fwd["pooled"].shape)  # (K, B, F, Hp, Wp)
        params["conv.bias"].add_(d_pooled.sum(dim=(1, 3, 4)) * step.view(k, 1))

        # the pool sends each window's gradient to its first maximum
        d_conv = self._grad_map(fwd, d_pooled)  # (K, B, F, H, W)
        conv_w = params["conv.weight"]  # (K, F, 1, kh, kw)
        for fold, xk in enumerate(fwd["inputs"]):
            grad = torch.nn.grad.conv2d_weight(xk, tuple(conv_w.shape[1:]), d_conv[fold])
            conv_w[fold].add_(grad.float() * step[fold].view(1, 1, 1, 1))
        return loss, correct

    def _grad_map(self, fwd: dict, d_pooled: torch.Tensor) -> torch.Tensor:
        """The conv map's gradient (K, B, F, H, W): each window's pooled gradient at its first
        maximum (``max_pool2d``'s tie rule), 0 elsewhere; in the products' dtype.

        Offset by offset, a window's still unassigned gradient goes where the offset holds
        the maximum and is then taken out, so a tie (silent input) is counted once. A
        buffer reused from step to step (the cropped remainder stays 0).
        """
        shape, offsets, pooled = fwd["conv_shape"], fwd["offsets"], fwd["pooled"]
        key = (tuple(shape), pooled.dtype, pooled.device)
        grad = self._grad_buffers.get(key)
        if grad is None:
            grad = self._grad_buffers[key] = torch.zeros(shape, dtype=pooled.dtype,
                                                         device=pooled.device)
        at_max = torch.empty(d_pooled.shape, dtype=d_pooled.dtype, device=d_pooled.device)
        # (K, B, F, Hp, Wp): gradient not yet assigned, in the map's dtype (exact moves)
        left = d_pooled.to(grad.dtype, copy=True)
        targets = self._offsets(grad)
        for i, (value, target) in enumerate(zip(offsets, targets)):
            torch.eq(value, pooled, out=at_max)  # 1.0 at a maximum (float: fast on a CPU)
            torch.mul(at_max, left, out=target)
            if i + 1 < len(offsets):
                left.sub_(target)  # what this offset took
        return grad
