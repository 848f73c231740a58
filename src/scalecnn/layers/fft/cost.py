"""When the frequency domain pays: the choice of ``method='auto'`` under the switches'
``auto`` mode.

:func:`is_faster` (SiConv2d) compares cost models of the direct and the FFT path,
one for training and one for inference (:data:`~scalecnn.layers.fastpath.COSTS`).
:func:`fft_is_faster` (the plain convolutions of :mod:`scalecnn.layers.fft.conv`) is
a threshold on the kernel volume and the input channels per group. Both read their
constants from :mod:`scalecnn.layers.fastpath` at every call; the measurements behind
them: ``docs/fft_path.md``.
"""

from __future__ import annotations

import math

import torch

from scalecnn.layers import fastpath
from scalecnn.layers.fft.chunks import chunk_budget, scale_chunks
from scalecnn.layers.fft.plan import fft_sizes

__all__ = ["fft_is_faster", "is_faster"]


def is_faster(layer, x: torch.Tensor) -> bool:
    """Whether the FFT path is expected to beat the direct one for this layer and input.

    ``layer``: a SiConv2d; ``x``: its input ``(B, C, H, W)``. ``False`` for stride ≠ 1
    (unsupported). Otherwise compares cost estimates of both paths
    (:data:`~scalecnn.layers.fastpath.COSTS`) for training (grad mode on and a gradient
    needed) or inference: the paper's layers pick the FFT path, tiny layers (a few small
    scales) stay direct.
    """
    if layer.stride != 1 or x.dim() != 4:
        return False
    b, c, h, w = x.shape
    k, s, o = layer.kernel_size, layer.num_scales, layer.out_channels
    if min(h, w) < k + 2 * (s - 1):
        return False  # invalid input; let the direct path report it
    out_h, out_w = h - k + 1, w - k + 1
    macs = 0
    for i in range(s):
        t = k + 2 * i
        oh, ow = (h, w) if layer.padding else (out_h - 2 * i, out_w - 2 * i)
        macs += oh * ow * t * t
    training = torch.is_grad_enabled() and (
        x.requires_grad or layer.weights.requires_grad or layer.bias.requires_grad
    )
    cost = fastpath.COSTS["train" if training else "infer"]
    if training:
        direct = b * c * o * macs * (2 + int(x.requires_grad)) * cost["direct_mac"]
    else:
        per_mac = cost["direct_mac_few_channels"] if c < 4 else cost["direct_mac"]
        direct = b * c * o * macs * per_mac
    direct += s * cost["direct_scale"]
    nh, nw = fft_sizes(h, w, k, s, layer.padding)
    points, freqs = nh * nw, nh * (nw // 2 + 1)
    oh, ow = (h, w) if layer.padding else (out_h, out_w)
    chunks = len(scale_chunks(s, freqs * b * o * 8, chunk_budget(x, o, s, oh, ow)))
    fft = (
        b * o * s * points * math.log2(points) * cost["fft_point_log"]
        + b * c * o * s * freqs * cost["fft_product"]
        + cost["fft_fixed"]
        + chunks * cost["fft_chunk"]
    )
    return fft < direct


def fft_is_faster(x: torch.Tensor, weight: torch.Tensor) -> bool:
    """Whether :func:`~scalecnn.layers.fft.conv.fft_conv` is expected to beat the direct
    convolution of ``x (B, C, *N)`` with ``weight (O, C/groups, *K)``.

    On the CPU: kernels of at least
    :data:`~scalecnn.layers.fastpath.CPU_MIN_KERNEL_VOLUME` elements per (output, input)
    channel pair (11×11 and up in 2-D, 5×5×5 and up in 3-D) with at least
    :data:`~scalecnn.layers.fastpath.CPU_MIN_GROUP_INPUTS` input channels per group. On
    other devices the direct path (cuDNN), which has not been measured against this FFT
    path there.
    """
    if x.device.type != "cpu":
        return False
    few_inputs = weight.shape[1] < fastpath.CPU_MIN_GROUP_INPUTS
    return not few_inputs and math.prod(weight.shape[2:]) >= fastpath.CPU_MIN_KERNEL_VOLUME
