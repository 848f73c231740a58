"""The Xu et al. (2014) multi-column model with shared weights."""

from __future__ import annotations

from torch import nn

from scalecnn.layers.xu import XU_COLUMN_SIZES, ColumnMaxPool, XuConv2d
from scalecnn.models.registry import register_model
from scalecnn.models.two_stage import STAGE_CHANNELS, TwoStageNet


def xu_net(
    num_channels: int, num_classes: int, kernel_size: int, method: str = "auto"
) -> TwoStageNet:
    """``XuConv2d(C,16,k)`` (80 channels) → ReLU → ``XuConv2d(16,32,k, groups 5)``
    (160 channels, columns kept apart) → max over the 5 columns → ReLU → global max →
    ``Linear(32, classes)``.

    The column maximum sits before the ReLU as ``pool2``; maximum and ReLU commute,
    so this equals taking the maximum after the ReLU. ``method``: the XuConv2d layers'.
    """
    c1, c2 = STAGE_CHANNELS
    columns = len(XU_COLUMN_SIZES)
    return TwoStageNet(
        XuConv2d(num_channels, c1, kernel_size, method=method),
        XuConv2d(c1, c2, kernel_size, groups=columns, method=method),
        num_classes,
        pool2=ColumnMaxPool(columns),
    )


@register_model("xu")
def xu(
    kernel_size: int,
    interpolation: str,
    num_channels: int,
    num_classes: int,
    method: str = "auto",
    **_: object,
) -> nn.Module:
    """The xu model (``interpolation`` is unused)."""
    return xu_net(num_channels, num_classes, kernel_size, method)
