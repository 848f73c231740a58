"""The spatial-domain path of the plain convolutions: the library's kernels, the faster
of them on the CPU, and the sparse backward.

``method='direct'`` of :func:`~scalecnn.layers.fft.conv_nd` (and :class:`FastConv2d`,
an ``nn.Conv2d`` that takes this path) computes ``F.conv2d``/``F.conv3d`` for stride 1:

* **forward**: oneDNN's convolution (what ``F.conv2d`` runs on the CPU), or NNPACK's
  (tiled FFT/Winograd, in every PyTorch CPU build for x86-64) where :func:`uses_nnpack`
  (the switch ``nnpack`` of :mod:`scalecnn.layers.fastpath`; under ``auto``
  :func:`nnpack_is_faster`): on an AVX2 CPU oneDNN falls off its fast kernels for
  mid-sized kernels, where NNPACK's tiles do not. The two differ by float rounding
  (≈10⁻⁶ of the output's range).
* **backward** (CPU, gradient recorded): the sparse route of
  :mod:`~scalecnn.layers.fft.sparse_grad` when the output's gradient is sparse — the
  second convolution of standard, xu and kanazawa feeds a maximum (over columns or
  scales) and a global maximum, so a few entries per (image, channel) get a gradient —
  and the library's backward (oneDNN) otherwise.

The measurements behind the choice: ``docs/fft_path.md``.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from functools import partial

import torch
import torch.nn.functional as F
from torch import nn

from scalecnn.layers import fastpath
from scalecnn.layers.fft.sparse_grad import sparse_aware

__all__ = ["FastConv2d", "direct_conv", "nnpack_applies", "nnpack_is_faster", "uses_nnpack"]


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


def _nnpack_takes(x: torch.Tensor, groups: int) -> bool:
    """Whether NNPACK's convolution accepts this input: float32 ``(B, C, H, W)`` on the CPU,
    one group."""
    return x.device.type == "cpu" and x.dim() == 4 and x.dtype == torch.float32 and groups == 1


def nnpack_applies(x: torch.Tensor, weight: torch.Tensor, groups: int = 1) -> bool:
    """Whether NNPACK can compute the stride-1 convolution of ``x (B, C, H, W)`` with
    ``weight (O, C/groups, kh, kw)``: float32 on the CPU, one group, NNPACK available."""
    return _nnpack_takes(x, groups) and _nnpack_ready()


def nnpack_is_faster(x: torch.Tensor, weight: torch.Tensor, groups: int = 1) -> bool:
    """Whether NNPACK's forward is expected to beat oneDNN's for ``x (B, C, H, W)`` and
    ``weight (O, C/groups, kh, kw)``.

    True where NNPACK applies, on a CPU whose capability is not in
    :data:`~scalecnn.layers.fastpath.NNPACK_SLOWER_ON` (AVX-512), the larger kernel side in
    :data:`~scalecnn.layers.fastpath.NNPACK_KERNEL_SIZES` and at least
    :data:`~scalecnn.layers.fastpath.NNPACK_MIN_INPUTS` input channels (or a kernel of at
    least :data:`~scalecnn.layers.fastpath.NNPACK_ANY_INPUTS_FROM`).
    """
    if not _nnpack_takes(x, groups):
        return False
    size = max(weight.shape[-2:])
    if size not in fastpath.NNPACK_KERNEL_SIZES:
        return False
    if weight.shape[1] < fastpath.NNPACK_MIN_INPUTS and size < fastpath.NNPACK_ANY_INPUTS_FROM:
        return False
    return _cpu_capability() not in fastpath.NNPACK_SLOWER_ON and _nnpack_ready()


def uses_nnpack(x: torch.Tensor, weight: torch.Tensor, groups: int = 1) -> bool:
    """Whether :func:`direct_conv` runs NNPACK's forward for these arguments: by the switch
    ``nnpack`` (``on``: wherever :func:`nnpack_applies`; ``off``: never; ``auto``:
    :func:`nnpack_is_faster`)."""
    switch = fastpath.mode("nnpack")
    if switch == "auto":
        return nnpack_is_faster(x, weight, groups)
    return switch == "on" and nnpack_applies(x, weight, groups)


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
    conv = _library_conv(padding, groups, uses_nnpack(x, weight, groups))
    if x.device.type != "cpu":
        return conv(x, weight, bias)
    return sparse_aware(conv, x, weight, bias, padding, groups)


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
