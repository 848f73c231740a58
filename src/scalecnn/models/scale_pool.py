"""The SiConv2d models: pixel_pool, slice_pool, energy_pool (one network, one pooling
argument) and conv3d."""

from __future__ import annotations

from torch import nn

from scalecnn.layers import ScalePool, SiConv2d
from scalecnn.layers.fft import AutoConv3d
from scalecnn.models.registry import ModelFactory, register_model
from scalecnn.models.two_stage import STAGE_CHANNELS, TwoStageNet, stage_scales


def scale_pool_net(
    num_channels: int,
    num_classes: int,
    kernel_size: int,
    interpolation: str,
    pool_mode: str,
    method: str = "auto",
) -> TwoStageNet:
    """``SiConv2d → ScalePool(mode) → ReLU`` twice, then global max and the linear layer.

    ``method``: the SiConv2d layers' (``auto``, ``direct`` or ``fft``).

    Shapes (k = 7): ``(B, C, 64, 64)`` → stage 1 ``(B, 16, 58, 58)`` (29 scales pooled)
    → stage 2 ``(B, 32, 52, 52)`` (26 scales pooled) → logits ``(B, classes)``.
    """
    s1, s2 = stage_scales(kernel_size)
    c1, c2 = STAGE_CHANNELS
    return TwoStageNet(
        SiConv2d(num_channels, c1, s1, kernel_size, interp_mode=interpolation, method=method),
        SiConv2d(c1, c2, s2, kernel_size, interp_mode=interpolation, method=method),
        num_classes,
        pool1=ScalePool(pool_mode),
        pool2=ScalePool(pool_mode),
    )


def _register_scale_pool_model(pool_mode: str, doc: str) -> ModelFactory:
    """Register ``<pool_mode>_pool``: :func:`scale_pool_net` with ``pool_mode``."""

    def factory(
        kernel_size: int,
        interpolation: str,
        num_channels: int,
        num_classes: int,
        method: str = "auto",
        **_: object,
    ) -> nn.Module:
        return scale_pool_net(
            num_channels, num_classes, kernel_size, interpolation, pool_mode, method
        )

    factory.__name__ = factory.__qualname__ = f"{pool_mode}_pool"
    factory.__doc__ = doc
    return register_model(f"{pool_mode}_pool", traced=True, scale_pools=True)(factory)


pixel_pool = _register_scale_pool_model(
    "pixel", ":func:`scale_pool_net` with pixel-wise maximum over scales."
)
slice_pool = _register_scale_pool_model(
    "slice", ":func:`scale_pool_net` keeping the scale slice of largest maximum."
)
energy_pool = _register_scale_pool_model(
    "energy", ":func:`scale_pool_net` keeping the scale slice of largest sum over (H, W)."
)


@register_model("conv3d")
def conv3d(
    kernel_size: int,
    interpolation: str,
    num_channels: int,
    num_classes: int,
    method: str = "auto",
    **_: object,
) -> nn.Module:
    """SiConv2d (no pooling) → ReLU → Conv3d(16, 32, (k, k, k)) over (S, H, W) → ReLU →
    global max over (S, H, W) → linear.

    Shapes (k = 7): ``(B, C, 64, 64)`` → stage 1 ``(B, 16, 29, 58, 58)`` → stage 2
    ``(B, 32, 23, 52, 52)`` → logits ``(B, classes)``.

    The Conv3d is an :class:`~scalecnn.layers.fft.AutoConv3d` (the FFT path on the
    CPU, same parameters and ``state_dict`` keys as ``nn.Conv3d``); ``method`` is both
    layers'."""
    s1, _s2 = stage_scales(kernel_size)
    c1, c2 = STAGE_CHANNELS
    return TwoStageNet(
        SiConv2d(num_channels, c1, s1, kernel_size, interp_mode=interpolation, method=method),
        AutoConv3d(c1, c2, (kernel_size, kernel_size, kernel_size), method=method),
        num_classes,
    )
