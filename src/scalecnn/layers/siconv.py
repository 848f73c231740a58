"""SiConv2d: the paper's scale-invariant convolution.

One base kernel ``weights (out, in, k, k)`` is rescaled to ``t_i = k + 2i`` for
every scale ``i < num_scales`` (see :mod:`scalecnn.layers.interpolation`) and
convolved with the same input; the responses are stacked on a new scale
dimension (dim 2).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from scalecnn.layers import fastpath
from scalecnn.layers.interpolation import check_interp_mode, interpolate_kernel


def expected_num_scales(height: int, width: int, kernel_size: int) -> int:
    """Number of scales whose largest kernel still fits the image: ``(min(H, W) − k) // 2 + 1``."""
    return (min(height, width) - kernel_size) // 2 + 1


class SiConv2d(nn.Module):
    """Scale-invariant 2-D convolution (Altstidl et al.).

    Args:
        in_channels: input channels ``C_in``.
        out_channels: output channels ``C_out``.
        num_scales: ``S``; must equal ``(min(H, W) − k) // 2 + 1`` for the input.
        kernel_size: base kernel size ``k``.
        stride: convolution stride.
        padding: ``False`` → valid convolution per scale, zero-padded back to the
            shape of scale 0; ``True`` → ``t_i // 2`` zero padding per scale.
        interp_mode: ``nearest``, ``bilinear``, ``bicubic`` or ``area``.
        method: ``direct`` (per-scale convolution, the definition), ``fft``
            (frequency-domain fast path) or ``auto`` (the switch ``siconv_fft`` of
            :mod:`scalecnn.layers.fastpath` decides; by default the faster for the shape).

    Shapes:
        input ``(B, C_in, H, W)`` → output ``(B, C_out, S, H', W')`` with
        ``H' = H − k + 1`` (``padding=False``, stride 1) or ``H' = H`` (``padding=True``,
        odd ``k``, stride 1).
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        num_scales: int,
        kernel_size: int,
        stride: int = 1,
        padding: bool = False,
        interp_mode: str = "nearest",
        method: str = "auto",
    ) -> None:
        super().__init__()
        fastpath.check_conv_method(method, "SiConv2d method")
        if num_scales < 1:
            raise ValueError(f"num_scales must be >= 1, got {num_scales}")
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.num_scales = num_scales
        self.kernel_size = kernel_size
        self.stride = stride
        self.padding = bool(padding)
        self.interp_mode = check_interp_mode(interp_mode)
        self.method = method
        self.weights = nn.Parameter(
            torch.empty(out_channels, in_channels, kernel_size, kernel_size)
        )
        self.bias = nn.Parameter(torch.empty(out_channels))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Uniform in ``±1/sqrt(in·k·k)`` for weights and bias, as in the paper."""
        bound = 1.0 / math.sqrt(self.in_channels * self.kernel_size * self.kernel_size)
        nn.init.uniform_(self.weights, -bound, bound)
        nn.init.uniform_(self.bias, -bound, bound)

    def extra_repr(self) -> str:
        return (
            f"{self.in_channels}, {self.out_channels}, num_scales={self.num_scales}, "
            f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}, "
            f"interp_mode={self.interp_mode!r}, method={self.method!r}"
        )

    def kernel_sizes(self) -> list[int]:
        """Kernel size of every scale: ``k + 2i``."""
        return [self.kernel_size + 2 * i for i in range(self.num_scales)]

    def scaled_kernels(self) -> list[torch.Tensor]:
        """The rescaled kernels of all scales, each ``(out, in, t_i, t_i)``."""
        return [interpolate_kernel(self.weights, t, self.interp_mode) for t in self.kernel_sizes()]

    def _check_input(self, x: torch.Tensor) -> None:
        if x.dim() != 4 or x.shape[1] != self.in_channels:
            raise ValueError(
                f"SiConv2d expects input (B, {self.in_channels}, H, W), got {tuple(x.shape)}"
            )
        expected = expected_num_scales(x.shape[-2], x.shape[-1], self.kernel_size)
        if expected != self.num_scales:
            raise ValueError(
                f"SiConv2d has num_scales={self.num_scales} but a {x.shape[-2]}x{x.shape[-1]} "
                f"input with kernel_size={self.kernel_size} needs "
                f"(min(H, W) - k) // 2 + 1 = {expected}"
            )

    def resolved_method(self, x: torch.Tensor) -> str:
        """The path used for input ``x``: the layer's forced one, else the one the switch
        ``siconv_fft`` forces (``on``: the FFT path for stride 1), else the faster one for
        its shape."""
        if self.method != "auto":
            return self.method
        switch = fastpath.mode("siconv_fft")
        if switch != "auto":
            return "fft" if switch == "on" and self.stride == 1 else "direct"
        from scalecnn.layers import fft as siconv_fft

        return "fft" if siconv_fft.is_faster(self, x) else "direct"

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self._check_input(x)
        if self.resolved_method(x) == "fft":
            from scalecnn.layers import fft as siconv_fft

            return siconv_fft.siconv2d_fft(self, x)
        return self.forward_direct(x)

    def forward_direct(self, x: torch.Tensor) -> torch.Tensor:
        """The definition: one convolution per scale, stacked on dim 2."""
        outputs = []
        out_h = out_w = None
        for i, kernel in enumerate(self.scaled_kernels()):
            t = kernel.shape[-1]
            if self.padding:
                y = F.conv2d(x, kernel, self.bias, stride=self.stride, padding=t // 2)
            else:
                y = F.conv2d(x, kernel, self.bias, stride=self.stride)
                if out_h is None:
                    out_h, out_w = y.shape[-2:]
                y = _pad_to(y, out_h, out_w) if i > 0 else y
            outputs.append(y)
        return torch.stack(outputs, dim=2)


def _pad_to(y: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """Zero-pad ``y (..., h, w)`` symmetrically (extra pixel at the end) to ``height × width``.

    With stride 1 scale ``i`` is padded by exactly ``i`` on every side.
    """
    dh, dw = height - y.shape[-2], width - y.shape[-1]
    return F.pad(y, (dw // 2, dw - dw // 2, dh // 2, dh - dh // 2))
