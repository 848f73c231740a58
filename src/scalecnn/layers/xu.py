"""XuConv2d: multi-column convolution with shared weights (Xu et al. 2014).

One base kernel is rescaled to every column size; the columns are stacked as
output channels of a single convolution. Stacking two such layers with
``groups`` equal to the number of columns keeps the columns apart (column
``g`` of layer 2 only sees column ``g`` of layer 1).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from scalecnn.layers.fastpath import check_conv_method
from scalecnn.layers.fft import conv_nd
from scalecnn.layers.kanazawa import center_pad_crop

XU_COLUMN_SIZES: tuple[int, ...] = (3, 5, 7, 9, 11)
"""The paper's column kernel sizes."""


class XuConv2d(nn.Module):
    """Shared-weight multi-column convolution.

    The base kernel ``weight (C_out, C_in, k, k)`` is centre zero-padded to
    ``T × T`` (``T = max(column_sizes)``; cropped if ``k > T``). For every
    column size ``t`` that padded kernel is interpolated to ``t × t`` —
    ``nearest`` if ``t > k`` (enlarging), bilinear with ``align_corners=True``
    if ``t < k`` (shrinking), unchanged if ``t == k`` — centre-padded back to
    ``T × T`` and multiplied, per ``(out, in)`` pair, by the ratio of the L1 norm
    over (H, W) of the padded base kernel to its own L1 norm. The column kernels
    are concatenated (column-major) as output channels and applied in one
    convolution with padding ``T // 2`` and no bias.

    Args:
        in_channels: input channels per group ``C_in``.
        out_channels: output channels per column ``C_out``.
        kernel_size: base kernel size ``k``.
        groups: groups of the convolution; the layer expects ``groups · C_in``
            input channels. Use the number of columns to keep columns apart.
        column_sizes: kernel size of every column (default :data:`XU_COLUMN_SIZES`).
        method: how the convolution runs (:func:`~scalecnn.layers.fft.conv_nd`):
            ``auto`` (the switches ``conv_fft`` and ``nnpack`` of
            :mod:`scalecnn.layers.fastpath` decide; by default the FFT path or NNPACK's
            forward where faster), ``direct`` or ``fft``.

    Shapes:
        input ``(B, groups · C_in, H, W)`` → output ``(B, n · C_out, H, W)`` for odd
        ``T`` with ``n = len(column_sizes)``; channel ``c · C_out + o`` is
        column ``c``'s output channel ``o``.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int,
        groups: int = 1,
        column_sizes: Sequence[int] = XU_COLUMN_SIZES,
        method: str = "auto",
    ) -> None:
        super().__init__()
        self.method = check_conv_method(method)
        self.column_sizes = tuple(int(t) for t in column_sizes)
        if not self.column_sizes or min(self.column_sizes) < 1:
            raise ValueError(f"column_sizes must be positive sizes, got {column_sizes}")
        if (len(self.column_sizes) * out_channels) % groups != 0:
            raise ValueError(
                f"groups={groups} must divide the {len(self.column_sizes) * out_channels} "
                "output channels (columns × out_channels)"
            )
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.kernel_size = kernel_size
        self.groups = groups
        self.padding = max(self.column_sizes) // 2
        self.weight = nn.Parameter(torch.empty(out_channels, in_channels, kernel_size, kernel_size))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """``nn.Conv2d``'s default: ``kaiming_uniform_(a=√5)``."""
        nn.init.kaiming_uniform_(self.weight, a=math.sqrt(5))

    @property
    def num_columns(self) -> int:
        return len(self.column_sizes)

    def extra_repr(self) -> str:
        return (
            f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
            f"groups={self.groups}, column_sizes={self.column_sizes}, padding={self.padding}"
        )

    def column_kernels(self) -> torch.Tensor:
        """The rescaled, renormalised kernels ``(n · C_out, C_in, T, T)``, column-major."""
        size = max(self.column_sizes)
        base = center_pad_crop(self.weight, size, size)
        base_norm = base.abs().sum(dim=(2, 3), keepdim=True)
        tiny = torch.finfo(base.dtype).tiny
        kernels = []
        for t in self.column_sizes:
            if t == self.kernel_size:
                scaled = base
            else:
                if t > self.kernel_size:
                    scaled = F.interpolate(base, size=(t, t), mode="nearest")
                else:
                    scaled = F.interpolate(base, size=(t, t), mode="bilinear", align_corners=True)
                scaled = center_pad_crop(scaled, size, size)
            scaled_norm = scaled.abs().sum(dim=(2, 3), keepdim=True)
            # an all-zero column kernel stays zero instead of becoming NaN
            kernels.append(scaled * (base_norm / scaled_norm.clamp_min(tiny)))
        return torch.cat(kernels, dim=0)

    def _columns_apart(self) -> bool:
        """Whether each column can run as its own convolution with its own ``t × t`` kernel:
        every group holds whole columns' inputs (``groups`` 1 or the number of columns) and
        every ``T − t`` is even (the centred ``t × t`` block then lies on the grid)."""
        size = max(self.column_sizes)
        return self.groups in (1, self.num_columns) and all(
            (size - t) % 2 == 0 for t in self.column_sizes
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Mathematically ``conv2d(x, column_kernels(), padding=T // 2, groups)``.

        Where the columns come apart (:meth:`_columns_apart`, as in the paper), every
        column is convolved with only the non-zero ``t × t`` centre of its kernel and
        padding ``t // 2``: Σ t² instead of n · T² multiply-adds per output (285 against
        605 for the paper's sizes), the same result up to float rounding.
        """
        kernels = self.column_kernels()
        if not self._columns_apart():
            return conv_nd(x, kernels, None, self.padding, self.groups, self.method)
        size, c_in, c_out = max(self.column_sizes), self.in_channels, self.out_channels
        outputs = []
        for col, t in enumerate(self.column_sizes):
            d = (size - t) // 2
            kernel = kernels[col * c_out : (col + 1) * c_out, :, d : d + t, d : d + t]
            x_col = x if self.groups == 1 else x[:, col * c_in : (col + 1) * c_in]
            outputs.append(conv_nd(x_col, kernel, None, self.padding - d, 1, self.method))
        return torch.cat(outputs, dim=1)


class ColumnMaxPool(nn.Module):
    """Maximum over the columns of a multi-column output.

    Shapes:
        input ``(B, n · C, H, W)`` (column-major channels, as :class:`XuConv2d`
        produces) → output ``(B, C, H, W)``.
    """

    def __init__(self, num_columns: int) -> None:
        super().__init__()
        self.num_columns = num_columns

    def extra_repr(self) -> str:
        return f"num_columns={self.num_columns}"

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x.shape
        if c % self.num_columns != 0:
            raise ValueError(f"{c} channels do not split into {self.num_columns} columns")
        # max with indices: its backward scatters the gradient to the winning column
        # (amax's would compare, count ties and divide over the whole input)
        return x.reshape(b, self.num_columns, c // self.num_columns, h, w).max(dim=1).values
