"""KanazawaConv2d: locally scale-invariant convolution (Kanazawa et al. 2014).

The input is rescaled to several scales, one shared convolution is applied to
every rescaled copy, each response is rescaled back and the maximum over the
scales is taken.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from scalecnn.layers.fft.direct import direct_conv

KANAZAWA_SCALES: tuple[float, ...] = tuple(1.26**e for e in range(-2, 4))
"""The paper's scales ``1.26^e`` for ``e = −2 … 3``."""


def center_pad_crop(x: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """Zero-pad or crop the last two dimensions of ``x`` around the centre.

    Args:
        x: ``(..., h, w)``.
        height, width: target size.

    Returns:
        ``(..., height, width)``. A difference ``d`` is split as ``d // 2`` before
        and ``d − d // 2`` after (for cropping ``d < 0``, so the extra row or
        column is removed before the centre).
    """
    dh, dw = height - x.shape[-2], width - x.shape[-1]
    if dh == 0 and dw == 0:
        return x
    return F.pad(x, (dw // 2, dw - dw // 2, dh // 2, dh - dh // 2))


def rescale_same_size(
    x: torch.Tensor, scale: float, height: int | None = None, width: int | None = None
) -> torch.Tensor:
    """Bilinearly rescale ``x`` by ``scale`` and centre-pad/crop the result.

    Args:
        x: ``(B, C, H, W)``.
        scale: ``scale_factor`` of ``F.interpolate`` (bilinear, ``align_corners=True``);
            the rescaled map is ``floor(H·scale) × floor(W·scale)``.
        height, width: size of the result (default: ``H``, ``W``).

    Returns:
        ``(B, C, height, width)``; ``x`` itself (padded/cropped) for ``scale == 1``.
    """
    height = x.shape[-2] if height is None else height
    width = x.shape[-1] if width is None else width
    if scale != 1:
        x = F.interpolate(x, scale_factor=scale, mode="bilinear", align_corners=True)
    return center_pad_crop(x, height, width)


class KanazawaConv2d(nn.Conv2d):
    """Shared-weight convolution applied at several input scales, max-pooled over scales.

    For every scale ``s``: rescale the input by ``s`` (bilinear, ``align_corners=True``)
    and centre-pad/crop it to ``H × W``; convolve with the one shared kernel
    (no padding, with bias); rescale the response by ``1/s`` the same way,
    back to the convolution's output size ``(H − k + 1) × (W − k + 1)``. The
    output is the element-wise maximum over the scales.

    Args:
        in_channels: input channels ``C_in``.
        out_channels: output channels ``C_out``.
        kernel_size: kernel size ``k`` (square).
        scales: rescaling factors (default :data:`KANAZAWA_SCALES`).

    Parameters ``weight (C_out, C_in, k, k)`` and ``bias (C_out,)`` are those of
    ``nn.Conv2d`` (same names and initialisation as the paper's layer).

    Shapes:
        input ``(B, C_in, H, W)`` → output ``(B, C_out, H − k + 1, W − k + 1)``.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int,
        scales: Sequence[float] = KANAZAWA_SCALES,
    ) -> None:
        super().__init__(in_channels, out_channels, kernel_size)
        if len(scales) == 0 or any(s <= 0 for s in scales):
            raise ValueError(f"scales must be a non-empty list of positive numbers, got {scales}")
        self.scales = tuple(float(s) for s in scales)

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, scales={tuple(round(s, 4) for s in self.scales)}"

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b = x.shape[0]
        num = len(self.scales)
        # one batched convolution over all rescaled copies: (num·B, C_in, H, W)
        stacked = torch.cat([rescale_same_size(x, s) for s in self.scales], dim=0)
        # the sparse-aware backward: behind the maximum over scales and a global maximum
        # only a few entries per (image, channel) of the responses get a gradient
        responses = direct_conv(stacked, self.weight, self.bias).split(b, dim=0)
        out_h, out_w = responses[0].shape[-2:]
        restored = [
            rescale_same_size(y, 1.0 / s, out_h, out_w)
            for y, s in zip(responses, self.scales, strict=True)
        ]
        if num == 1:
            return restored[0]
        # max with indices: its backward scatters the gradient to the winning scale
        # (amax's would compare, count ties and divide over the whole stack)
        return torch.stack(restored, dim=0).max(dim=0).values
