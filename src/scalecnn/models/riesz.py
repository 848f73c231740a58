"""Model 13: the Riesz network (Barisin, Schladitz & Redenbach, arXiv 2305.04665).

Every layer applies the first- and second-order Riesz transforms to each input
channel (:class:`~scalecnn.layers.riesz.RieszLayer`: 5 transforms, computed with
the FFT), mixes them with learned 1×1 weights, then batch norm and ReLU. The
Riesz multipliers are homogeneous of degree 0, so every layer commutes with
rescaling: the network is scale equivariant in one pass, without scale channels,
and global pooling over space makes the logits scale invariant.

Shapes (defaults): ``(B, C, 64, 64)`` → four layers ``(B, 24 | 32 | 48 | 48, 64, 64)``
→ global max ``(B, 48)`` → ``Linear(48, classes)``. Internally the layers run on the
spatial-major layout ``(H, W, C, B)`` (see :class:`~scalecnn.layers.riesz.RieszLayer`),
so batch norm is applied there by :func:`batch_norm_spatial_major`.

Padding: ``periodic`` by default. Mirroring or zero padding doubles the FFT size in
each direction and makes a training step about five times slower (measured: 25×
the standard CNN's instead of 5×); on an object rescaled ×2 inside the canvas, zero
padding halves the change of the logits (0.05 instead of 0.09 with random weights),
mirroring does not help.

``feature_maps(x)`` returns the outputs of layer 2 (stage 1, ``(B, 32, 64, 64)``)
and of the last layer (stage 2, ``(B, 48, 64, 64)``), after batch norm and ReLU.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from scalecnn.layers.riesz import RieszLayer, from_spatial_major, to_spatial_major
from scalecnn.models.registry import register_model

WIDTHS = (24, 32, 48, 48)
"""Output channels of the four Riesz layers."""
ORDERS = (1, 2)
POOLS = ("max", "avg")


def batch_norm_spatial_major(norm: nn.BatchNorm2d, x: torch.Tensor) -> torch.Tensor:
    """``norm`` applied to a spatial-major ``(H, W, C, B)`` tensor (same statistics and
    running-average updates as on ``(B, C, H, W)``)."""
    if norm.training or not norm.track_running_stats:
        # sums over the leading (contiguous-row) axis first: much faster than x.var(dim=…)
        n = x.numel() // x.shape[2]
        mean = x.sum(dim=(0, 1)).sum(dim=1) / n
        centred = x - mean[:, None]
        var = (centred * centred).sum(dim=(0, 1)).sum(dim=1) / n
        if norm.training and norm.track_running_stats:
            m = norm.momentum if norm.momentum is not None else 0.1
            with torch.no_grad():
                norm.running_mean.mul_(1 - m).add_(m * mean)
                norm.running_var.mul_(1 - m).add_(m * var * n / max(n - 1, 1))
                norm.num_batches_tracked.add_(1)
    else:
        mean, var = norm.running_mean, norm.running_var
    scale = torch.rsqrt(var + norm.eps)
    shift = -mean * scale
    if norm.affine:
        scale, shift = scale * norm.weight, shift * norm.weight + norm.bias
    return x * scale[:, None] + shift[:, None]


class RieszNet(nn.Module):
    """Riesz layers with batch norm and ReLU, global pooling, one linear layer.

    Args:
        num_channels: input channels (1 or 3).
        num_classes: logits.
        widths: output channels per layer.
        orders: Riesz orders of every layer (1 and/or 2).
        padding: how the FFT sees the image border (``periodic``, ``symmetric``, ``zeros``).
        spatial_pool: ``max`` (default) or ``avg`` over the image after the last layer.
        stage1_layer: index of the layer whose output is stage 1 (default: the middle one).
    """

    def __init__(
        self,
        num_channels: int,
        num_classes: int,
        widths: Sequence[int] = WIDTHS,
        orders: Sequence[int] = ORDERS,
        padding: str = "periodic",
        spatial_pool: str = "max",
        stage1_layer: int | None = None,
    ) -> None:
        super().__init__()
        if spatial_pool not in POOLS:
            raise ValueError(f"spatial_pool must be one of {POOLS}, got {spatial_pool!r}")
        self.spatial_pool = spatial_pool
        self.stage1_layer = len(widths) // 2 - 1 if stage1_layer is None else stage1_layer
        self.layers = nn.ModuleList()
        self.norms = nn.ModuleList()
        c = num_channels
        for w in widths:
            self.layers.append(RieszLayer(c, w, tuple(orders), padding))
            self.norms.append(nn.BatchNorm2d(w))
            c = w
        self.act = nn.ReLU()
        self.lin = nn.Linear(c, num_classes)

    def extra_repr(self) -> str:
        return f"spatial_pool={self.spatial_pool!r}, stage1_layer={self.stage1_layer}"

    def layer_outputs(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Every layer's output after batch norm and ReLU, spatial-major: ``[(H, W, C_k, B)]``.

        ``x`` is ``(B, C, H, W)``; the network runs in the ``(H, W, C, B)`` layout of
        :class:`~scalecnn.layers.riesz.RieszLayer`.
        """
        x = to_spatial_major(x)
        outputs = []
        for layer, norm in zip(self.layers, self.norms):
            x = self.act(batch_norm_spatial_major(norm, layer(x)))
            outputs.append(x)
        return outputs

    def feature_maps(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Outputs of layer ``stage1_layer`` and of the last layer, ``(B, C_k, H, W)``.

        These are the maps the equivariance error compares.
        """
        outputs = self.layer_outputs(x)
        return from_spatial_major(outputs[self.stage1_layer]), from_spatial_major(outputs[-1])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, C, H, W)`` → logits ``(B, num_classes)``."""
        last = self.layer_outputs(x)[-1]  # (H, W, C, B)
        pooled = last.amax(dim=(0, 1)) if self.spatial_pool == "max" else last.mean(dim=(0, 1))
        return self.lin(pooled.T)


@register_model("riesz", traced=True)
def riesz(
    kernel_size: int,
    interpolation: str,
    num_channels: int,
    num_classes: int,
    **extra: object,
) -> nn.Module:
    """The Riesz network (``kernel_size`` and ``interpolation`` are unused).

    ``extra`` may override :class:`RieszNet`'s options (``widths``, ``orders``,
    ``padding``, ``spatial_pool``, ``stage1_layer``); other keys are ignored.
    """
    names = ("widths", "orders", "padding", "spatial_pool", "stage1_layer")
    return RieszNet(num_channels, num_classes, **{k: v for k, v in extra.items() if k in names})
