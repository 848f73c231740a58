"""The backward of a convolution whose output gradient is sparse.

conv3d's ``Conv3d`` feeds a ReLU and a global maximum over (S, H, W), so the
gradient that reaches the convolution's output is non-zero at no more than one
position per (image, output channel) — 512 of its 32 million values at batch 16.
Through the FFT that backward costs two more sets of transforms and a second
channel mixing (more than the forward); from the non-zero entries it is a few
million multiply-adds:

* ``grad_bias[o] = Σ g[b, o, p]``,
* ``grad_weight[o, c, k] = Σ g[b, o, p] · x_pad[b, c, p + k]``,
* ``grad_x_pad[b, c, p + k] += Σ_o g[b, o, p] · weight[o, c, k]``,

sums over the non-zero entries ``(b, o, p)`` of ``g`` (``c`` within ``o``'s group,
``k`` over the kernel box, ``x_pad`` the zero-padded input, whose gradient is then
cropped). :class:`SparseAwareConv` runs any convolution function forward with its
autograd graph and, in the backward, takes this route when the gradient is sparse
(:func:`use_sparse_backward`, under the switch ``sparse_backward`` of
:mod:`scalecnn.layers.fastpath`) and the graph's backward otherwise. Both give the
gradients of the same function; they differ by float rounding only.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F
from torch.autograd.function import once_differentiable

from scalecnn.layers import fastpath

__all__ = [
    "SparseAwareConv",
    "entry_grads",
    "patch_index",
    "records_grad",
    "sparse_aware",
    "sparse_conv_grads",
    "use_sparse_backward",
]


def records_grad(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None) -> bool:
    """Whether autograd records a graph through a convolution of these tensors."""
    tensors = (x, weight) if bias is None else (x, weight, bias)
    return torch.is_grad_enabled() and any(t.requires_grad for t in tensors)


def use_sparse_backward(grad: torch.Tensor, weight: torch.Tensor, switch: str = "auto") -> bool:
    """Whether :func:`sparse_conv_grads` should compute this backward: never off the CPU
    (its ``index_add_`` is deterministic there) or with ``switch`` (the mode of
    ``sparse_backward``) ``off``, always on the CPU with ``on``; with ``auto`` when the
    non-zero entries of ``grad`` ``(B, O, *M)``, times ``C/groups`` and the kernel volume of
    ``weight``, stay within :data:`~scalecnn.layers.fastpath.SPARSE_WORK_LIMIT` and are at
    most :data:`~scalecnn.layers.fastpath.SPARSE_MAX_DENSITY` of ``grad`` (or their work is
    below :data:`~scalecnn.layers.fastpath.SPARSE_SMALL_WORK`)."""
    if grad.device.type != "cpu" or switch == "off":
        return False
    if switch == "on":
        return True
    entries = int(torch.count_nonzero(grad))
    work = entries * weight[0].numel()  # × C/groups × kernel volume
    sparse = entries <= grad.numel() * fastpath.SPARSE_MAX_DENSITY
    return work <= fastpath.SPARSE_SMALL_WORK or (sparse and work <= fastpath.SPARSE_WORK_LIMIT)


def _padded_positions(
    spatial: Sequence[int], kernel: Sequence[int], positions: torch.Tensor
) -> torch.Tensor:
    """Flat spatial index into the padded input of each (entry, kernel offset).

    ``spatial``: the padded input's spatial sizes; ``positions (n, dims)``: output
    positions → ``(n, prod(kernel))``.
    """
    grids = torch.meshgrid(
        *(torch.arange(k, device=positions.device) for k in kernel), indexing="ij"
    )
    offsets = torch.stack([g.reshape(-1) for g in grids], dim=1)  # (K, dims)
    coords = positions[:, None, :] + offsets  # (n, K, dims)
    flat = torch.zeros(coords.shape[:2], dtype=torch.long, device=positions.device)
    for d, size in enumerate(spatial):
        flat = flat * size + coords[..., d]
    return flat


def patch_index(
    xp_shape: Sequence[int],
    kernel: Sequence[int],
    image: torch.Tensor,
    corner: torch.Tensor,
    first_channel: torch.Tensor,
    channels: int,
) -> torch.Tensor:
    """Flat indices into ``xp (B, C, *N)`` of the patch under each entry: ``(n, channels, K)``.

    ``image (n,)``, ``corner (n, dims)`` (the patch's first position in ``xp``) and
    ``first_channel (n,)`` (its first input channel) per entry; ``K = prod(kernel)``.
    """
    c, spatial = xp_shape[1], xp_shape[2:]
    points = math.prod(spatial)
    where = _padded_positions(spatial, kernel, corner)  # (n, K)
    chans = first_channel[:, None] + torch.arange(channels, device=corner.device)  # (n, ch)
    return ((image[:, None] * c + chans) * points)[:, :, None] + where[:, None, :]


def entry_grads(
    xp: torch.Tensor,
    weight: torch.Tensor,
    groups: int,
    entries: torch.Tensor,
    values: torch.Tensor,
    needs: tuple[bool, bool],
    grad_xp: torch.Tensor | None = None,
) -> tuple[torch.Tensor | None, torch.Tensor | None]:
    """Gradients of a valid stride-1 correlation of ``xp`` from a few output entries.

    Args:
        xp: ``(B, C, *N)``, the (already padded) input.
        weight: ``(O, C/groups, *K)``.
        groups: channel groups.
        entries: ``(n, 2 + dims)``: image, output channel and output position (= the
            first input position of the patch under it) of each non-zero entry.
        values: ``(n,)`` the output gradient there.
        needs: which of (xp, weight) need a gradient.
        grad_xp: flat ``(xp.numel(),)`` buffer to add the input gradient to (new if
            ``None``).

    Returns:
        ``(grad_xp flat (xp.numel(),), grad_weight (O, C/groups, *K))``, ``None`` where not
        needed.
    """
    o, cg = weight.shape[:2]
    kernel = weight.shape[2:]
    volume = math.prod(kernel)
    image, out_ch = entries[:, 0], entries[:, 1]
    first_in = (out_ch // (o // groups)) * cg  # first input channel of the entry's group
    index = patch_index(xp.shape, kernel, image, entries[:, 2:], first_in, cg)  # (n, C/g, K)
    grad_w = None
    if needs[0]:
        spread = values[:, None, None] * weight.reshape(o, cg, volume)[out_ch]  # (n, C/g, K)
        if grad_xp is None:
            grad_xp = torch.zeros(xp.numel(), dtype=values.dtype, device=xp.device)
        grad_xp.index_add_(0, index.reshape(-1), spread.reshape(-1))
    if needs[1]:
        patches = xp.reshape(-1)[index]  # (n, C/g, K)
        grad_w = torch.zeros(o, cg, volume, dtype=values.dtype, device=xp.device)
        grad_w.index_add_(0, out_ch, values[:, None, None] * patches)
        grad_w = grad_w.view(weight.shape)
    return (grad_xp if needs[0] else None), grad_w


def sparse_conv_grads(
    grad: torch.Tensor,
    x: torch.Tensor,
    weight: torch.Tensor,
    padding: Sequence[int],
    groups: int,
    needs: tuple[bool, bool, bool],
) -> tuple[torch.Tensor | None, torch.Tensor | None, torch.Tensor | None]:
    """Gradients of a stride-1 correlation from the non-zero entries of its output gradient.

    Args:
        grad: ``(B, O, *M)``, the gradient w.r.t. the output ``y = conv(x, weight) + bias``.
        x: ``(B, C, *N)``.
        weight: ``(O, C/groups, *K)``.
        padding: zero padding per spatial dimension.
        groups: channel groups.
        needs: which of (x, weight, bias) need a gradient.

    Returns:
        ``(grad_x (B, C, *N), grad_weight (O, C/groups, *K), grad_bias (O,))``, ``None``
        where not needed.
    """
    xp = F.pad(x, [q for p in reversed(padding) for q in (p, p)])
    entries = grad.nonzero()  # (n, 2 + dims): image, output channel, position
    values = grad[tuple(entries.T)]  # (n,)
    flat, grad_w = entry_grads(xp, weight, groups, entries, values, needs[:2])
    grad_x = grad_b = None
    if flat is not None:
        crop = tuple(slice(p, p + n) for p, n in zip(padding, x.shape[2:], strict=True))
        grad_x = flat.view(xp.shape)[(slice(None), slice(None), *crop)]
    if needs[2]:
        o = weight.shape[0]
        grad_b = torch.zeros(o, dtype=grad.dtype, device=grad.device)
        grad_b.index_add_(0, entries[:, 1], values)
    return grad_x, grad_w, grad_b


ConvFn = Callable[[torch.Tensor, torch.Tensor, "torch.Tensor | None"], torch.Tensor]


def sparse_aware(
    conv: ConvFn,
    x: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor | None,
    padding: Sequence[int],
    groups: int,
) -> torch.Tensor:
    """``conv(x, weight, bias)``, through :class:`SparseAwareConv` when a gradient is
    recorded and the switch ``sparse_backward`` is not ``off`` (then its mode travels with
    the graph to the backward).

    ``conv``: a stride-1 correlation with this ``padding`` and ``groups``; shapes as
    ``F.conv2d``/``F.conv3d``: ``(B, C, *N)``, ``(O, C/groups, *K)`` → ``(B, O, *M)``.
    """
    switch = fastpath.mode("sparse_backward")
    if switch == "off" or not records_grad(x, weight, bias):
        return conv(x, weight, bias)
    return SparseAwareConv.apply(x, weight, bias, padding, groups, conv, switch)


class SparseAwareConv(torch.autograd.Function):
    """``conv(x, weight, bias)`` with a backward that picks the sparse route.

    ``apply(x, weight, bias, padding, groups, conv, switch)``: ``conv`` is a stride-1
    correlation with this padding and groups (e.g. the FFT path); ``switch`` the mode of
    ``sparse_backward`` when the graph was recorded. The forward runs it recording its own
    autograd graph; the backward uses :func:`sparse_conv_grads` when
    :func:`use_sparse_backward` says so and that graph otherwise. First-order gradients
    only.
    """

    @staticmethod
    def forward(ctx, x, weight, bias, padding, groups, conv: ConvFn, switch: str = "auto"):
        inputs = (x, weight, bias)
        needs = tuple(t is not None and need for t, need in zip(inputs, ctx.needs_input_grad))
        with torch.enable_grad():
            leaves = [
                None if t is None else t.detach().requires_grad_(need)
                for t, need in zip(inputs, needs, strict=True)
            ]
            y = conv(*leaves)
        ctx.graph = (y, leaves)
        ctx.padding, ctx.groups, ctx.needs = tuple(padding), groups, needs
        ctx.switch = switch
        ctx.save_for_backward(x, weight)
        return y.detach()

    @staticmethod
    @once_differentiable
    def backward(ctx, grad):
        y, leaves = ctx.graph
        ctx.graph = None  # free the forward's graph whichever route runs
        x, weight = ctx.saved_tensors
        if use_sparse_backward(grad, weight, ctx.switch):
            grads = sparse_conv_grads(grad, x, weight, ctx.padding, ctx.groups, ctx.needs)
            grads = tuple(
                None if g is None else g.to(t.dtype) for g, t in zip(grads, leaves, strict=True)
            )
        else:
            wanted = [t for t, need in zip(leaves, ctx.needs, strict=True) if need]
            found = iter(torch.autograd.grad(y, wanted, grad))
            grads = tuple(next(found) if need else None for need in ctx.needs)
        return (*grads, None, None, None, None)
