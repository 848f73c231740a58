"""Scale-equivariant steerable convolutions (SESN, Sosnovik et al. 2020).

Kernels are linear combinations of a fixed basis sampled at several scales:
with ``basis (F, S, K, K)`` and learnt coefficients ``weight (..., F)`` the
kernel of scale ``s`` is ``weight @ basis[:, s]``. The basis is a buffer, so
it travels with the module (``.to()``, ``state_dict``) but is not trained.
The basis itself comes from :mod:`scalecnn.bases`.
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from scalecnn.layers.fastpath import check_conv_method
from scalecnn.layers.fft import conv_nd


class _SteerableConv(nn.Module):
    """Common part of the steerable layers: basis buffer, coefficients, bias.

    Args:
        in_channels, out_channels: channels ``C_in``, ``C_out``.
        weight_shape: shape of ``weight`` without the trailing ``F``.
        basis: ``(F, S, K, K)``.
        stride, padding: of the 2-D convolutions (zero padding).
        bias: learnable bias ``(C_out,)`` (initialised to zero).
        method: how the 2-D convolutions run (:func:`~scalecnn.layers.fft.conv_nd`):
            ``auto`` (the switch ``conv_fft`` of :mod:`scalecnn.layers.fastpath`
            decides; by default the FFT path where faster: the 15×15 kernels on the CPU),
            ``direct`` or ``fft``; stride ≠ 1 always runs direct.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        weight_shape: tuple[int, ...],
        basis: torch.Tensor,
        stride: int,
        padding: int,
        bias: bool,
        method: str = "auto",
    ) -> None:
        super().__init__()
        self.method = check_conv_method(method)
        if basis.dim() != 4 or basis.shape[-1] != basis.shape[-2]:
            raise ValueError(
                f"basis must have shape (num_funcs, num_scales, K, K), got {tuple(basis.shape)}"
            )
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.stride = stride
        self.padding = padding
        basis = basis.detach().to(dtype=torch.get_default_dtype()).clone()
        self.register_buffer("basis", basis)
        self.weight = nn.Parameter(torch.empty(*weight_shape, self.num_funcs))
        self.bias = nn.Parameter(torch.empty(out_channels)) if bias else None
        self.reset_parameters()

    @property
    def num_funcs(self) -> int:
        return self.basis.shape[0]

    @property
    def num_scales(self) -> int:
        return self.basis.shape[1]

    @property
    def kernel_size(self) -> int:
        return self.basis.shape[-1]

    def reset_parameters(self) -> None:
        """``kaiming_uniform_(a=√5)`` for the coefficients, zeros for the bias."""
        nn.init.kaiming_uniform_(self.weight, a=math.sqrt(5))
        if self.bias is not None:
            nn.init.zeros_(self.bias)

    def extra_repr(self) -> str:
        return (
            f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
            f"num_funcs={self.num_funcs}, num_scales={self.num_scales}, stride={self.stride}, "
            f"padding={self.padding}, bias={self.bias is not None}"
        )

    def kernels(self) -> torch.Tensor:
        """Kernels of every scale: ``weight (..., F)`` → ``(..., S, K, K)``."""
        flat = self.weight @ self.basis.reshape(self.num_funcs, -1)
        return flat.reshape(*self.weight.shape[:-1], self.num_scales, self.kernel_size, -1)

    def _conv(self, x: torch.Tensor, kernel: torch.Tensor, groups: int = 1) -> torch.Tensor:
        """``F.conv2d(x, kernel, stride, padding, groups)`` by the layer's ``method``."""
        if self.stride != 1:
            return F.conv2d(x, kernel, stride=self.stride, padding=self.padding, groups=groups)
        return conv_nd(x, kernel, None, self.padding, groups, self.method)

    def _add_bias(self, y: torch.Tensor) -> torch.Tensor:
        return y if self.bias is None else y + self.bias.view(1, -1, 1, 1, 1)

    def _load_from_state_dict(
        self, state_dict: dict[str, Any], prefix: str, *args: Any, **kwargs: Any
    ) -> None:
        # the paper's checkpoints keep the basis in a sub-module: "<prefix>basis.basis"
        legacy = prefix + "basis.basis"
        if legacy in state_dict and prefix + "basis" not in state_dict:
            state_dict[prefix + "basis"] = state_dict.pop(legacy)
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)


class SESConv_Z2_H(_SteerableConv):  # noqa: N801  (the SESN name)
    """Steerable convolution from images to scale-space maps: Z² → (S × Z²).

    Args:
        in_channels: ``C_in``.
        out_channels: ``C_out``.
        basis: ``(F, S, K, K)``; registered as the buffer ``basis``.
        stride, padding: of the convolution (zero padding).
        bias: add a learnable bias (zeros at init).
        method: ``auto``, ``direct`` or ``fft`` (see :class:`_SteerableConv`).

    Parameters: ``weight (C_out, C_in, F)``, ``bias (C_out,)``.

    Shapes:
        input ``(B, C_in, H, W)`` → output ``(B, C_out, S, H', W')`` with
        ``H' = (H + 2·padding − K) // stride + 1``; scale ``s`` uses kernel
        ``weight @ basis[:, s]``.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        basis: torch.Tensor,
        stride: int = 1,
        padding: int = 0,
        bias: bool = True,
        method: str = "auto",
    ) -> None:
        super().__init__(
            in_channels,
            out_channels,
            (out_channels, in_channels),
            basis,
            stride,
            padding,
            bias,
            method,
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        k = self.kernel_size
        # (C_out, C_in, S, K, K) → (C_out·S, C_in, K, K): output channel o·S + s
        kernel = self.kernels().transpose(1, 2).reshape(-1, self.in_channels, k, k)
        y = self._conv(x, kernel)
        b, _, h, w = y.shape
        return self._add_bias(y.view(b, self.out_channels, self.num_scales, h, w))


class SESConv_H_H(_SteerableConv):  # noqa: N801  (the SESN name)
    """Steerable convolution between scale-space maps: (S × Z²) → (S × Z²).

    Output scale ``s`` is ``Σ_{i < scale_size} conv(x[:, :, s + i], kernel_{i, s})``
    over all input channels, where ``kernel_{i, s} = weight[:, :, i] @ basis[:, s]``
    and ``x`` is zero beyond the last scale. With ``scale_size = 1`` every scale
    slice is convolved with its own scale's kernel.

    Args:
        in_channels: ``C_in``.
        out_channels: ``C_out``.
        scale_size: extent of the kernel along the scale axis.
        basis: ``(F, S, K, K)``; registered as the buffer ``basis``.
        stride, padding: of the 2-D convolutions (zero padding).
        bias: add a learnable bias (zeros at init).
        method: ``auto``, ``direct`` or ``fft`` (see :class:`_SteerableConv`).

    Parameters: ``weight (C_out, C_in, scale_size, F)``, ``bias (C_out,)``.

    Shapes:
        input ``(B, C_in, S, H, W)`` → output ``(B, C_out, S, H', W')`` with
        ``H' = (H + 2·padding − K) // stride + 1``.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        scale_size: int,
        basis: torch.Tensor,
        stride: int = 1,
        padding: int = 0,
        bias: bool = True,
        method: str = "auto",
    ) -> None:
        if scale_size < 1:
            raise ValueError(f"scale_size must be >= 1, got {scale_size}")
        super().__init__(
            in_channels,
            out_channels,
            (out_channels, in_channels, scale_size),
            basis,
            stride,
            padding,
            bias,
            method,
        )
        self.scale_size = scale_size

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, scale_size={self.scale_size}"

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, s, h, w = x.shape
        if c != self.in_channels or s != self.num_scales:
            raise ValueError(
                f"SESConv_H_H expects (B, {self.in_channels}, {self.num_scales}, H, W), "
                f"got {tuple(x.shape)}"
            )
        k = self.kernel_size
        kernels = self.kernels()  # (C_out, C_in, scale_size, S, K, K)
        if self.scale_size > 1:
            x = F.pad(x, (0, 0, 0, 0, 0, self.scale_size - 1))
        out = None
        for i in range(self.scale_size):
            # scale slices side by side as groups: (B, S·C_in, H, W)
            x_i = x[:, :, i : i + s].transpose(1, 2).reshape(b, s * c, h, w)
            # (C_out, C_in, S, K, K) → (S·C_out, C_in, K, K): group s uses scale s's kernel
            kernel_i = kernels[:, :, i].permute(2, 0, 1, 3, 4).reshape(-1, c, k, k)
            y = self._conv(x_i, kernel_i, groups=s)
            out = y if out is None else out + y
        _, _, h2, w2 = out.shape
        out = out.view(b, s, self.out_channels, h2, w2).transpose(1, 2)
        return self._add_bias(out)
