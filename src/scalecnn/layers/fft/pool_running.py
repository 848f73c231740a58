"""Pixel and slice pooling as running folds over the FFT path's chunks of scales.

The forward of ``pixel`` and ``slice`` pooling produces the scales chunk by chunk
and folds them into a running result of shape ``(B, O, H', W')`` instead of
stacking all scales: ``pixel`` keeps the running maximum and its scale per pixel;
``slice`` keeps, per ``(b, o)``, the best slice maximum so far and a copy of that
slice. A later scale replaces the running choice only when strictly better, so
ties go to the smallest scale, as with ``torch.max``/``argmax`` on the stacked
tensor. The backward of ``pixel`` pooling (:func:`pixel_backward`) sends each
chunk of scales the pooled gradient of the pixels it won.
"""

from __future__ import annotations

import torch

from scalecnn.layers.fft.autograd import SpectralGrads
from scalecnn.layers.fft.chunks import scale_chunks
from scalecnn.layers.fft.plan import FFTPlan
from scalecnn.layers.fft.transforms import (
    complex_weights,
    input_spectrum,
    output_chunks,
    rfft2_maps,
)

__all__ = ["fold_pixel", "fold_slice", "pixel_backward", "pooled_forward"]


def _state(y: torch.Tensor, dtype: torch.dtype | None = None) -> torch.Tensor:
    """An empty ``(B, O, H', W')`` tensor laid out in memory like one scale of ``y``.

    ``y (B, O, sc, H', W')`` comes out of the inverse FFT as a permuted view; running
    state with the same memory order keeps the elementwise updates vectorised.
    """
    b, o, _, h, w = y.shape
    order = sorted(range(4), key=lambda d: -y[:, :, 0].stride(d))
    sizes = [(b, o, h, w)[d] for d in order]
    flat = torch.empty(sizes, dtype=dtype or y.dtype, device=y.device)
    return flat.permute([order.index(d) for d in range(4)])


def _ring(t: torch.Tensor, r: int) -> list[torch.Tensor]:
    """Views of the pixels at distance exactly ``r`` from the border of ``t (..., H, W)``."""
    h, w = t.shape[-2:]
    top, bottom = t[..., r, r : w - r], t[..., h - 1 - r, r : w - r]
    left, right = t[..., r + 1 : h - 1 - r, r], t[..., r + 1 : h - 1 - r, w - 1 - r]
    return [top, bottom, left, right] if h - 1 - r > r else [top]


def _set_index_where(idx: torch.Tensor, cond: torch.Tensor, s: int) -> None:
    """``idx[cond] = s`` for a running index whose entries are all ``< s``.

    Written as ``idx = max(idx, s·cond)``: branch-free, much faster on the CPU than
    ``masked_fill_`` with an irregular mask.
    """
    torch.maximum(idx, cond.to(idx.dtype).mul_(s), out=idx)


def fold_pixel(state: dict, v: torch.Tensor, s: int, region: tuple) -> None:
    """Fold scale ``s`` into the running pixel maximum ``state['out']`` and its scale
    ``state['idx']`` (both ``(B, O, H', W')``).

    ``v (B, O, h, w)``: scale ``s``'s outputs on ``region`` (its valid rows/columns
    without padding, all with padding), zero elsewhere. Without padding a pixel at
    distance ``r`` from the border first meets a zero at scale ``r + 1`` (later zeros
    tie), so only that ring is compared with zero.
    """
    if s == 0:
        state["out"], state["idx"] = _state(v[:, :, None]), _state(v[:, :, None], torch.int16)
        state["out"].copy_(v)
        state["idx"].zero_()
        return
    run, idx = state["out"], state["idx"]
    ri, ii = run[region], idx[region]
    _set_index_where(ii, v > ri, s)
    torch.maximum(ri, v, out=ri)
    if region[-1].start > 0:
        for rr, ir in zip(_ring(run, s - 1), _ring(idx, s - 1), strict=True):
            _set_index_where(ir, rr < 0, s)
            rr.clamp_(min=0)


def fold_slice(state: dict, v: torch.Tensor, s: int, region: tuple) -> None:
    """Fold scale ``s`` (outputs ``v (B, O, h, w)`` on ``region``, zero elsewhere) into the
    running per-(b, o) choice of ``slice`` pooling: the best slice maximum
    ``state['best']`` and its scale ``state['idx']`` ``(B, O)``, the kept slice
    ``state['out']`` ``(B, O, H', W')``.

    Only ``region`` of the kept slice is written; the final ``mask[idx]`` zeroes the rest.
    (``energy`` pooling needs no running fold: it chooses before computing any output.)
    """
    score = v.amax(dim=(-2, -1))
    if region[-1].start > 0:
        score.clamp_(min=0)  # the zero border competes for the maximum
    if s == 0:
        state["out"] = _state(v[:, :, None])
        state["out"].copy_(v)
        state["best"], state["idx"] = score, torch.zeros_like(score, dtype=torch.int64)
        return
    better = score > state["best"]
    if not bool(better.any()):
        return
    state["best"] = torch.where(better, score, state["best"])
    state["idx"].masked_fill_(better, s)
    bs, os_ = better.nonzero(as_tuple=True)
    state["out"][region][bs, os_] = v[bs, os_]


def pooled_forward(
    plan: FFTPlan,
    x: torch.Tensor,
    weights: torch.Tensor,
    bias: torch.Tensor,
    budget: int,
    mode: str,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Running ``pixel``/``slice`` pooling over the scale chunks of ``x (B, C, H, W)``
    (``energy`` pooling: :mod:`~scalecnn.layers.fft.pool_energy`).

    Returns ``(out (B, O, H', W'), indices, input spectrum)``; indices ``(B, O, H', W')``
    for ``pixel``, ``(B, O)`` for ``slice``.
    """
    if mode not in ("pixel", "slice"):
        raise ValueError(f"running pooling is pixel or slice, got {mode!r}")
    b, c = x.shape[:2]
    o = weights.shape[0]
    s_total = plan.g_h.shape[0]
    xf = input_spectrum(x, plan)
    wc = complex_weights(weights, xf.dtype)
    chunks = scale_chunks(s_total, plan.nh * plan.fw * b * o * xf.element_size(), budget)
    border = plan.mask is not None
    oh, ow = plan.out_h, plan.out_w
    state: dict = {}
    for s0, s1, r, y in output_chunks(plan, xf, wc, bias, (b, c, o), chunks):
        for s in range(s0, s1):
            d = s - r if border else 0  # scale s is valid on [s, out − s) without padding
            v = y[:, :, s - s0, d : y.shape[-2] - d, d : y.shape[-1] - d]
            e = s if border else 0
            region = (..., slice(e, oh - e), slice(e, ow - e))
            if mode == "pixel":
                fold_pixel(state, v, s, region)
            else:
                fold_slice(state, v, s, region)
    out, idx = state["out"], state["idx"]
    if mode != "pixel" and border:
        out = out * plan.mask[idx]  # zero the chosen slice's padded border
    return out.contiguous(), idx.contiguous().long(), xf


def pixel_backward(
    plan: FFTPlan, grads: SpectralGrads, gout: torch.Tensor, idx: torch.Tensor, budget: int
) -> None:
    """Per chunk of scales: the pooled gradient ``gout (B, O, H', W')`` where that scale
    won (``idx``, same shape), then the products of
    :meth:`~scalecnn.layers.fft.autograd.SpectralGrads.add_scales`.

    Chunks run from the largest scale down, so each scale's valid region covers the
    previous one's and the reused buffer never holds stale values.
    """
    b, o = gout.shape[:2]
    nh, nw, oh, ow = plan.nh, plan.nw, plan.out_h, plan.out_w
    s_total = plan.g_h.shape[0]
    itemsize = torch.empty((), dtype=grads.xf.dtype).element_size()
    chunks = scale_chunks(s_total, nh * plan.fw * b * o * itemsize, budget)
    buf = gout.new_zeros(b, o, max(s1 - s0 for s0, s1 in chunks), nh, nw)
    idx = idx.to(torch.int16)
    border = plan.mask is not None
    for s0, s1 in reversed(chunks):
        for s in range(s0, s1):
            r = s if border else 0
            region = (..., slice(r, oh - r), slice(r, ow - r))
            torch.mul(gout[region], idx[region] == s, out=buf[:, :, s - s0][region])
        grads.add_scales(plan, rfft2_maps(buf[:, :, : s1 - s0]), s0, s1)
