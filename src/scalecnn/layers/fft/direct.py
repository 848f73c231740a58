"""The spatial-domain path of the plain convolutions: the library's kernels, the faster
of them on the CPU, and the sparse backward.

``method='direct'`` of :func:`~scalecnn.layers.fft.conv_nd` (and :class:`FastConv2d`,
an ``nn.Conv2d`` that takes this path) computes ``F.conv2d``/``F.conv3d`` for stride 1:

* **forward**: oneDNN's convolution (what ``F.conv2d`` runs on the CPU), or NNPACK's
  (tiled FFT/Winograd, in every PyTorch CPU build for x86-64) where
  :func:`nnpack_is_faster`. On a 2-core AVX2 CPU, one thread, batch 16, 64×64, NNPACK's
  forward took 18 ms against oneDNN's 40–55 ms for a 7×7 kernel with 16 → 32 channels and
  23–44 ms against 190–260 ms for 9×9 and 11×11, where oneDNN falls off its fast kernels;
  oneDNN stayed faster for 3×3, for kernels from 13×13 up (NNPACK's 16×16 tiles) and for
  7×7 with fewer than 8 input channels (``benchmarks/README.md``). The two differ by float
  rounding (≈10⁻⁶ of the output's range).
* **backward** (CPU, gradient recorded): the sparse route of
  :mod:`~scalecnn.layers.fft.sparse_grad` when the output's gradient is sparse — the
  second convolution of standard, xu and kanazawa feeds a maximum (over columns or
  scales) and a global maximum, so a few entries per (image, channel) get a gradient —
  and the library's backward (oneDNN) otherwise.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from functools import partial

import torch
import torch.nn.functional as F
from torch import nn

from scalecnn.layers.fft.sparse_grad import SparseAwareConv, records_grad

__all__ = ["NNPACK_KERNEL_SIZES", "FastConv2d", "direct_conv", "nnpack_is_faster"]

NNPACK_KERNEL_SIZES = range(5, 12)
"""Kernel sizes (largest side) for which NNPACK's forward can beat oneDNN's."""
NNPACK_MIN_INPUTS = 8
"""Input channels per group below which oneDNN stays faster for kernels up to 7×7."""
NNPACK_ANY_INPUTS_FROM = 9
"""Kernel size from which NNPACK wins with any number of input channels."""


@functools.cache
def _nnpack_ready() -> bool:
    """Whether this PyTorch has NNPACK; the call also initialises it (without that, its
    convolution fails)."""
    available = getattr(torch, "_nnpack_available", None)
    return bool(available is not None and available())


@functools.cache
def _cpu_capability() -> str:
    """The vector instruction set PyTorch dispatches to (``AVX2``, ``AVX512``, …)."""
    return torch.backends.cpu.get_cpu_capability()


def nnpack_is_faster(x: torch.Tensor, weight: torch.Tensor, groups: int = 1) -> bool:
    """Whether NNPACK's forward is expected to beat oneDNN's for ``x (B, C, H, W)`` and
    ``weight (O, C/groups, kh, kw)``.

    True for a float32 2-D convolution on a CPU below AVX-512 (where it was measured;
    oneDNN is much faster with AVX-512), one group, the larger kernel side in
    :data:`NNPACK_KERNEL_SIZES` and at least :data:`NNPACK_MIN_INPUTS` input channels
    (or a kernel of at least :data:`NNPACK_ANY_INPUTS_FROM`), when NNPACK is available.
    """
    if x.device.type != "cpu" or x.dim() != 4 or x.dtype != torch.float32 or groups != 1:
        return False
    size = max(weight.shape[-2:])
    if size not in NNPACK_KERNEL_SIZES:
        return False
    if weight.shape[1] < NNPACK_MIN_INPUTS and size < NNPACK_ANY_INPUTS_FROM:
        return False
    return _cpu_capability() != "AVX512" and _nnpack_ready()


def _nnpack_conv(
    x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None, padding: Sequence[int]
) -> torch.Tensor:
    """``F.conv2d(x, weight, bias, padding=padding)`` by NNPACK (differentiable)."""
    if bias is None:
        bias = weight.new_zeros(weight.shape[0])
    return torch._nnpack_spatial_convolution(x.contiguous(), weight, bias, list(padding))


def _library_conv(padding: tuple[int, ...], groups: int, nnpack: bool) -> partial:
    """The forward function ``conv(x, weight, bias)`` of :func:`direct_conv`."""
    if nnpack:
        return partial(_nnpack_conv, padding=padding)
    return partial(F.conv3d if len(padding) == 3 else F.conv2d, padding=padding, groups=groups)


def direct_conv(
    x: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor | None = None,
    padding: int | Sequence[int] = 0,
    groups: int = 1,
) -> torch.Tensor:
    """``F.conv2d``/``F.conv3d(x, weight, bias, stride=1, padding, groups=groups)`` by the
    library's faster kernel, with the sparse backward on the CPU (module docstring).

    Shapes as ``F.conv2d``/``F.conv3d``: ``(B, C, *N)``, ``(O, C/groups, *K)`` →
    ``(B, O, *(N + 2·padding − K + 1))``.
    """
    dims = x.dim() - 2
    padding = (padding,) * dims if isinstance(padding, int) else tuple(int(p) for p in padding)
    conv = _library_conv(padding, groups, nnpack_is_faster(x, weight, groups))
    if x.device.type != "cpu" or not records_grad(x, weight, bias):
        return conv(x, weight, bias)
    return SparseAwareConv.apply(x, weight, bias, padding, groups, conv)


class FastConv2d(nn.Conv2d):
    """``nn.Conv2d`` computed by :func:`direct_conv` (stride 1, no dilation, zero numeric
    padding; anything else runs ``nn.Conv2d`` itself).

    Same parameters, initialisation and ``state_dict`` keys as ``nn.Conv2d``.

    Shapes: ``(B, C, H, W)`` → ``(B, O, H + 2p − kh + 1, W + 2p − kw + 1)``.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        plain = (
            self.stride != (1, 1)
            or self.dilation != (1, 1)
            or self.padding_mode != "zeros"
            or isinstance(self.padding, str)
        )
        if plain:
            return super().forward(x)
        return direct_conv(x, self.weight, self.bias, self.padding, self.groups)
