"""The SiConv2d models: pixel_pool, slice_pool, energy_pool (one class, one pooling
argument) and conv3d."""

from __future__ import annotations

import functools

from torch import nn

from scalecnn.layers import POOL_MODES, ScalePool, SiConv2d
from scalecnn.layers.fft_conv import AutoConv3d
from scalecnn.models.registry import register_model
from scalecnn.models.two_stage import STAGE_CHANNELS, TwoStageNet, compute_params


def scale_pool_net(
    num_channels: int, num_classes: int, kernel_size: int, interpolation: str, pool_mode: str
) -> TwoStageNet:
    """``SiConv2d → ScalePool(mode) → ReLU`` twice, then global max and the linear layer."""
    s1, s2 = compute_params(kernel_size)
    c1, c2 = STAGE_CHANNELS
    return TwoStageNet(
        SiConv2d(num_channels, c1, s1, kernel_size, interp_mode=interpolation),
        SiConv2d(c1, c2, s2, kernel_size, interp_mode=interpolation),
        num_classes,
        pool1=ScalePool(pool_mode),
        pool2=ScalePool(pool_mode),
    )


def _build_scale_pool(
    kernel_size: int,
    interpolation: str,
    num_channels: int,
    num_classes: int,
    pool_mode: str,
    **_: object,
) -> nn.Module:
    return scale_pool_net(num_channels, num_classes, kernel_size, interpolation, pool_mode)


for _mode in POOL_MODES:
    register_model(f"{_mode}_pool", traced=True, scale_pools=True)(
        functools.partial(_build_scale_pool, pool_mode=_mode)
    )


@register_model("conv3d")
def build_conv3d(
    kernel_size: int, interpolation: str, num_channels: int, num_classes: int, **_: object
) -> nn.Module:
    """SiConv2d (no pooling) → ReLU → Conv3d(16, 32, (k, k, k)) over (S, H, W) → ReLU →
    global max over (S, H, W) → linear.

    The Conv3d is an :class:`~scalecnn.layers.fft_conv.AutoConv3d` (the FFT path on the
    CPU, same parameters and ``state_dict`` keys as ``nn.Conv3d``)."""
    s1, _s2 = compute_params(kernel_size)
    c1, c2 = STAGE_CHANNELS
    return TwoStageNet(
        SiConv2d(num_channels, c1, s1, kernel_size, interp_mode=interpolation),
        AutoConv3d(c1, c2, (kernel_size, kernel_size, kernel_size)),
        num_classes,
    )
