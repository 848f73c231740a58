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
(:func:`use_sparse_backward`) and the graph's backward otherwise. Both give the
gradients of the same function; they differ by float rounding only.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F
from torch.autograd.function import once_differentiable

__all__ = ["SPARSE_WORK_LIMIT", "SparseAwareConv", "sparse_conv_grads", "use_sparse_backward"]

SPARSE_WORK_LIMIT = 1 << 24
"""Most products (non-zero gradient entries × input channels per group × kernel volume)
the sparse backward takes on; beyond it (a dense gradient) the FFT backward runs."""


def use_sparse_backward(grad: torch.Tensor, weight: torch.Tensor) -> bool:
    """Whether :func:`sparse_conv_grads` should compute this backward: on the CPU (its
    ``index_add_`` is deterministic there) when the non-zero entries of ``grad``
    ``(B, O, *M)``, times ``C/groups`` and the kernel volume of ``weight``, stay within
    :data:`SPARSE_WORK_LIMIT`."""
    if grad.device.type != "cpu":
        return False
    per_entry = weight[0].numel()  # C/groups × kernel volume
    return int(torch.count_nonzero(grad)) * per_entry <= SPARSE_WORK_LIMIT


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
    c, (o, cg) = x.shape[1], weight.shape[:2]
    kernel = weight.shape[2:]
    volume = weight[0, 0].numel()
    xp = F.pad(x, [q for p in reversed(padding) for q in (p, p)])
    spatial = xp.shape[2:]
    points = xp[0, 0].numel()

    entries = grad.nonzero()  # (n, 2 + dims): image, output channel, position
    values = grad[tuple(entries.T)]  # (n,)
    image, out_ch = entries[:, 0], entries[:, 1]
    first_in = (out_ch // (o // groups)) * cg  # first input channel of the entry's group
    channels = first_in[:, None] + torch.arange(cg, device=x.device)  # (n, C/g)
    where = _padded_positions(spatial, kernel, entries[:, 2:])  # (n, K)
    index = ((image[:, None] * c + channels) * points)[:, :, None] + where[
        :, None, :
    ]  # (n, C/g, K)

    grad_x = grad_w = grad_b = None
    if needs[0]:
        spread = values[:, None, None] * weight.reshape(o, cg, volume)[out_ch]  # (n, C/g, K)
        flat = torch.zeros(xp.numel(), dtype=grad.dtype, device=grad.device)
        flat.index_add_(0, index.reshape(-1), spread.reshape(-1))
        crop = tuple(slice(p, p + n) for p, n in zip(padding, x.shape[2:], strict=True))
        grad_x = flat.view(xp.shape)[(slice(None), slice(None), *crop)]
    if needs[1]:
        patches = xp.reshape(-1)[index]  # (n, C/g, K)
        grad_w = torch.zeros(o, cg, volume, dtype=grad.dtype, device=grad.device)
        grad_w.index_add_(0, out_ch, values[:, None, None] * patches)
        grad_w = grad_w.view(weight.shape)
    if needs[2]:
        grad_b = torch.zeros(o, dtype=grad.dtype, device=grad.device).index_add_(0, out_ch, values)
    return grad_x, grad_w, grad_b


ConvFn = Callable[[torch.Tensor, torch.Tensor, "torch.Tensor | None"], torch.Tensor]


class SparseAwareConv(torch.autograd.Function):
    """``conv(x, weight, bias)`` with a backward that picks the sparse route.

    ``apply(x, weight, bias, padding, groups, conv)``: ``conv`` is a stride-1
    correlation with this padding and groups (e.g. the FFT path). The forward runs it
    recording its own autograd graph; the backward uses :func:`sparse_conv_grads` when
    :func:`use_sparse_backward` says so and that graph otherwise. First-order
    gradients only.
    """

    @staticmethod
    def forward(ctx, x, weight, bias, padding, groups, conv: ConvFn):
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
        ctx.save_for_backward(x, weight)
        return y.detach()

    @staticmethod
    @once_differentiable
    def backward(ctx, grad):
        y, leaves = ctx.graph
        ctx.graph = None  # free the forward's graph whichever route runs
        x, weight = ctx.saved_tensors
        if use_sparse_backward(grad, weight):
            grads = sparse_conv_grads(grad, x, weight, ctx.padding, ctx.groups, ctx.needs)
            grads = tuple(
                None if g is None else g.to(t.dtype) for g, t in zip(grads, leaves, strict=True)
            )
        else:
            wanted = [t for t, need in zip(leaves, ctx.needs, strict=True) if need]
            found = iter(torch.autograd.grad(y, wanted, grad))
            grads = tuple(next(found) if need else None for need in ctx.needs)
        return (*grads, None, None, None)
