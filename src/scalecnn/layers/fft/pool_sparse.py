"""The backward of SiConv2d + ScalePool from a sparse pooled gradient.

In pixel_pool, slice_pool and energy_pool the second stage's pooled output goes through a
ReLU and a global maximum, so its gradient is non-zero at no more than one position per
(image, output channel): 512 of 1.4 million values at batch 16. Each such entry
``(b, o, y, x)`` with value ``g`` belongs to one scale ``s`` (the pooling's choice: per
pixel, or per (image, channel)), where the output is the correlation of the input with
the interpolated kernel ``K_s = A_s W A_sᵀ · k²/t_s²`` (``t_s = k + 2s``). So

* ``grad_bias[o] += g``,
* ``grad_K_s[o, c] += g · x[b, c, patch]`` (the ``t_s × t_s`` input patch under the
  entry), then ``grad_W[o, c] += A_sᵀ grad_K_s[o, c] A_s · k²/t_s²``,
* ``grad_x[b, c, patch] += g · K_s[o, c]``,

a few million products (:func:`~scalecnn.layers.fft.sparse_grad.entry_grads` per scale)
instead of the transforms of every masked gradient map and two sets of channel mixing.
Entries on a scale's zero border (``padding=False``: outside its valid region) carry no
gradient, as in the frequency-domain backward. Both routes give the gradients of the same
function; they differ by float rounding.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from scalecnn.layers import fastpath
from scalecnn.layers.fft.plan import ConvConfig
from scalecnn.layers.fft.sparse_grad import entry_grads
from scalecnn.layers.interpolation import interpolation_matrix_1d

__all__ = ["sparse_pool_grads", "use_sparse_pool_backward"]


def use_sparse_pool_backward(
    gout: torch.Tensor,
    idx: torch.Tensor,
    in_channels: int,
    cfg: ConvConfig,
    mode: str,
    switch: str = "auto",
) -> bool:
    """Whether :func:`sparse_pool_grads` should compute this backward: never off the CPU or
    with ``switch`` (the mode of ``sparse_pool_backward``) ``off``, always on the CPU with
    ``on``; with ``auto`` when the non-zero entries of ``gout (B, O, H', W')`` are at most
    :data:`~scalecnn.layers.fastpath.SPARSE_MAX_DENSITY` of it and their products (each
    entry: ``in_channels`` × its chosen scale's ``t²``, from ``idx``) are within
    :data:`~scalecnn.layers.fastpath.SPARSE_POOL_WORK_LIMIT` of the pooling ``mode`` — or
    below :data:`~scalecnn.layers.fastpath.SPARSE_SMALL_WORK`.

    ``cfg``: the SiConv2d's configuration; ``idx`` as in :func:`sparse_pool_grads`.
    """
    if gout.device.type != "cpu" or switch == "off":
        return False
    if switch == "on":
        return True
    nonzero = gout != 0
    entries = int(nonzero.sum())
    if entries > gout.numel() * fastpath.SPARSE_MAX_DENSITY:
        return False
    sizes = cfg.k + 2 * (idx if idx.dim() == 4 else idx[:, :, None, None])
    work = in_channels * int((sizes.square() * nonzero).sum())
    limit = fastpath.SPARSE_POOL_WORK_LIMIT[mode]
    return work <= max(fastpath.SPARSE_SMALL_WORK, limit)


def _scale_of_entries(idx: torch.Tensor, entries: torch.Tensor) -> torch.Tensor:
    """The scale each entry ``(b, o, y, x)`` took: ``idx`` per pixel ``(B, O, H', W')`` or
    per (image, channel) ``(B, O)``."""
    if idx.dim() == 4:
        return idx[tuple(entries.T)].long()
    return idx[entries[:, 0], entries[:, 1]].long()


def sparse_pool_grads(
    cfg: ConvConfig,
    x: torch.Tensor,
    weights: torch.Tensor,
    gout: torch.Tensor,
    idx: torch.Tensor,
    needs: tuple[bool, bool, bool],
) -> tuple[torch.Tensor | None, torch.Tensor | None, torch.Tensor | None]:
    """Gradients of ``pool(SiConv2d(x))`` from the non-zero entries of ``gout``.

    Args:
        cfg: the SiConv2d's configuration (stride 1).
        x: ``(B, C, H, W)``.
        weights: ``(O, C, k, k)``.
        gout: ``(B, O, H', W')``, the gradient w.r.t. the pooled output.
        idx: the pooling's scale indices, ``(B, O, H', W')`` (pixel) or ``(B, O)``.
        needs: which of (x, weights, bias) need a gradient.

    Returns:
        ``(grad_x (B, C, H, W), grad_weights (O, C, k, k), grad_bias (O,))``, ``None``
        where not needed.
    """
    k, num_scales, mode, padding = cfg.k, cfg.num_scales, cfg.interp_mode, cfg.padding
    o, c = weights.shape[:2]
    oh, ow = gout.shape[-2:]
    entries = gout.nonzero()  # (n, 4): image, output channel, y, x
    scale = _scale_of_entries(idx, entries)
    if padding:
        pad = (k + 2 * (num_scales - 1)) // 2
        offset = (k + 2 * scale) // 2 - pad  # first input row of the patch: y − offset
    else:
        pad = 0
        offset = scale
        y, x_ = entries[:, 2], entries[:, 3]
        valid = (y >= scale) & (y < oh - scale) & (x_ >= scale) & (x_ < ow - scale)
        entries, scale, offset = entries[valid], scale[valid], offset[valid]
    values = gout[tuple(entries.T)]
    xp = F.pad(x, (pad,) * 4) if pad else x
    grad_xp = torch.zeros(xp.numel(), dtype=x.dtype, device=x.device) if needs[0] else None
    grad_w = torch.zeros_like(weights) if needs[1] else None
    corner = entries.clone()
    corner[:, 2:] -= offset[:, None]
    for s in torch.unique(scale).tolist():
        at = scale == s
        t = k + 2 * s
        a = interpolation_matrix_1d(k, t, mode).to(weights)  # (t, k)
        factor = (k * k) / (t * t)
        kernel = torch.einsum("ti,ocij,uj->octu", a, weights, a) * factor  # (O, C, t, t)
        _, grad_k = entry_grads(
            xp, kernel, 1, corner[at], values[at], (needs[0], needs[1]), grad_xp
        )
        if grad_k is not None:
            grad_w += torch.einsum("ti,octu,uj->ocij", a, grad_k, a) * factor
    grad_x = grad_b = None
    if grad_xp is not None:
        h, w = x.shape[-2:]
        grad_x = grad_xp.view(xp.shape)[..., pad : pad + h, pad : pad + w]
    if needs[2]:
        grad_b = torch.zeros(o, dtype=x.dtype, device=x.device)
        grad_b.index_add_(0, entries[:, 1], values)
    return grad_x, grad_w, grad_b
