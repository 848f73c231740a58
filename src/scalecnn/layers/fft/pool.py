"""SiConv2d followed by ScalePool, fused on the FFT path.

``siconv_scale_pool(conv, pool, x)`` returns exactly ``pool(conv(x))`` (and sets
``pool.indices``), but on the frequency-domain path it never materialises the
``(B, O, S, H', W')`` tensor of all scales:

* **forward**: ``pixel`` and ``slice`` fold the chunks of scales into a running
  result (:mod:`scalecnn.layers.fft.pool_running`); ``energy`` chooses each
  ``(b, o)``'s scale from window sums of the input without any output map
  (:mod:`scalecnn.layers.fft.pool_energy`) and computes only that scale
  (:mod:`scalecnn.layers.fft.pool_chosen`).
* **backward**: the pooled gradient reaches only the chosen scale. ``pixel``:
  per chunk of scales the gradient masked to the pixels that chose each scale,
  then the same frequency-domain products as the unfused path. ``slice`` /
  ``energy``: one FFT per ``(b, o)`` instead of one per ``(b, o, scale)``. When the
  pooled gradient is sparse (a global maximum follows), on the CPU, from its non-zero
  entries in the spatial domain (:mod:`scalecnn.layers.fft.pool_sparse`).

When the layer takes its direct path (forced or chosen by
``SiConv2d.resolved_method``) this is plain ``pool(conv(x))``. Forward hooks
registered on ``conv`` or ``pool`` do not run on the fused path. What the fusion
saves, measured: ``docs/fft_path.md``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch

from scalecnn.layers import fastpath
from scalecnn.layers.fft.autograd import SpectralGrads
from scalecnn.layers.fft.chunks import chunk_budget
from scalecnn.layers.fft.plan import conv_config, plan_for
from scalecnn.layers.fft.pool_chosen import slice_backward
from scalecnn.layers.fft.pool_energy import energy_forward
from scalecnn.layers.fft.pool_running import pixel_backward, pooled_forward
from scalecnn.layers.fft.pool_sparse import sparse_pool_grads, use_sparse_pool_backward

if TYPE_CHECKING:
    from scalecnn.layers.pooling import ScalePool
    from scalecnn.layers.siconv import SiConv2d

__all__ = ["SiConvPoolFFT", "fuses_by_default", "siconv_scale_pool"]


def siconv_scale_pool(
    conv: SiConv2d, pool: ScalePool, x: torch.Tensor, fuse: bool | None = None
) -> torch.Tensor:
    """``pool(conv(x))``: ``(B, C, H, W)`` → ``(B, O, H', W')``; fused on the FFT path.

    Sets ``pool.indices`` like :class:`~scalecnn.layers.ScalePool` does
    (``(B, O, H', W')`` for ``pixel``, ``(B, O)`` for ``slice``/``energy``).

    ``fuse``: ``None`` leaves it to :func:`fuses_by_default`; ``True`` fuses on any
    device, ``False`` never.
    """
    conv._check_input(x)
    if fuse is None:
        fuse = fuses_by_default(x.device)
    if not fuse or conv.resolved_method(x) != "fft" or conv.stride != 1:
        return pool(conv(x))
    dtype = x.dtype
    work = dtype if dtype in (torch.float32, torch.float64) else torch.float32
    xw = x.to(work)
    plan = plan_for(conv, xw)
    with torch.autocast(x.device.type, enabled=False):
        out, idx = SiConvPoolFFT.apply(
            xw,
            conv.weights.to(work),
            conv.bias.to(work),
            plan,
            chunk_budget(x, conv.out_channels, conv.num_scales, plan.out_h, plan.out_w),
            pool.mode,
            conv_config(conv),
            fastpath.mode("sparse_pool_backward"),
        )
    pool.indices = idx
    return out.to(dtype)


def fuses_by_default(device: torch.device | str) -> bool:
    """Whether :func:`siconv_scale_pool` fuses on ``device`` when ``fuse`` is ``None``: as
    the switch ``fused_pool`` forces, else on the CPU only (on CUDA the fused path's loops
    over chunks of scales cost more kernel launches than the stacked tensor costs memory
    traffic)."""
    switch = fastpath.mode("fused_pool")
    if switch != "auto":
        return switch == "on"
    return torch.device(device).type == "cpu"


class SiConvPoolFFT(torch.autograd.Function):
    """``(x (B, C, H, W), weights, bias, plan, budget, mode, cfg, sparse)`` →
    ``(out (B, O, H', W'), indices)``; ``cfg`` the layer's
    :class:`~scalecnn.layers.fft.plan.ConvConfig`, ``sparse`` the mode of the switch
    ``sparse_pool_backward`` when the graph was recorded. First-order differentiable wrt
    ``x``, ``weights`` and ``bias``."""

    @staticmethod
    def forward(ctx, x, weights, bias, plan, budget, mode, cfg, sparse="auto"):
        if mode == "energy":
            out, idx, xf = energy_forward(plan, cfg, x, weights, bias)
        else:
            out, idx, xf = pooled_forward(plan, x, weights, bias, budget, mode)
        ctx.save_for_backward(x, weights, idx)
        ctx.plan, ctx.budget, ctx.xf, ctx.mode = plan, budget, xf, mode
        ctx.cfg, ctx.sparse = cfg, sparse
        ctx.mark_non_differentiable(idx)
        return out, idx

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, gout, _gidx):
        x, weights, idx = ctx.saved_tensors
        needs = ctx.needs_input_grad[:3]
        unused = (None,) * 5  # plan, budget, mode, cfg, sparse
        if use_sparse_pool_backward(gout, idx, x.shape[1], ctx.cfg, ctx.mode, ctx.sparse):
            return (*sparse_pool_grads(ctx.cfg, x, weights, gout, idx, needs), *unused)
        grads = SpectralGrads(x, weights, ctx.xf, needs)
        if ctx.mode == "pixel":
            pixel_backward(ctx.plan, grads, gout, idx, ctx.budget)
        else:
            slice_backward(ctx.plan, grads, gout, idx)
        return (*grads.results(ctx.plan, x, needs), *unused)
