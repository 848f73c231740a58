"""Model 13: the Riesz network (Barisin, Schladitz & Redenbach, arXiv 2305.04665).

Every layer applies the first- and second-order Riesz transforms to each input
channel (:class:`~scalecnn.layers.riesz.RieszLayer`: 5 transforms, computed with
the FFT), mixes them with learned 1×1 weights, then batch norm and ReLU. The
Riesz multipliers are homogeneous of degree 0, so every layer commutes with
rescaling: the network is scale equivariant in one pass, without scale channels,
and global pooling over space makes the logits scale invariant.

Defaults: the authors' classification network (their code release
github.com/tibaris/RieszNetworks, notebook ``RieszNet-MNISTLargescale.ipynb``, class
``RieszNetDeep``; docs/models.md, "gaussder and riesz: the authors' settings and
ours"): five Riesz layers of 12, 16, 24, 32 and 80 channels (:data:`WIDTHS`), orders 1
and 2, batch norm with affine parameters and ReLU after each, the image taken as
periodic, a linear classifier on the last layer's 80 features. Two departures: the
1×1 mixing has no bias (theirs has one, which the batch norm that follows cancels:
same function, 164 parameters fewer), and the features are the global maximum over
space (``spatial_pool="max"``) instead of the value at the central pixel
(``spatial_pool="centre"``, theirs: MNIST Large Scale digits are centred, STIR objects
are placed anywhere in the image). The previous defaults, four layers of 24, 32, 48,
48 channels, are ``widths=WIDTHS_4_LAYERS``.

Shapes (defaults): ``(B, C, 64, 64)`` → five layers ``(B, 12 | 16 | 24 | 32 | 80, 64,
64)`` → global max ``(B, 80)`` → ``Linear(80, classes)``. Internally the layers run on
the spatial-major layout ``(H, W, C, B)`` (see :class:`~scalecnn.layers.riesz.RieszLayer`),
so batch norm is applied there by :func:`batch_norm_spatial_major`.

Padding: ``periodic`` by default (as the authors). Mirroring or zero padding doubles
the FFT size in each direction and makes a training step several times slower; on an
object rescaled ×2 inside the canvas, zero padding halves the change of the logits
(0.05 instead of 0.09 with random weights, measured with the four-layer network),
mirroring does not help.

``feature_maps(x)`` returns the outputs of layer 3 (stage 1, ``(B, 24, 64, 64)``)
and of the last layer (stage 2, ``(B, 80, 64, 64)``), after batch norm and ReLU.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from scalecnn.layers.riesz import RieszLayer, from_spatial_major, to_spatial_major
from scalecnn.models.registry import register_model

WIDTHS = (12, 16, 24, 32, 80)
"""Output channels of the five Riesz layers (the authors' classification network)."""
WIDTHS_4_LAYERS = (24, 32, 48, 48)
"""The previous default: four layers, the widths of ``gaussder``."""
ORDERS = (1, 2)
"""Riesz orders of every layer: R_x, R_y, R_xx, R_xy, R_yy."""
SPATIAL_POOL = "max"
"""Features of the last layer: their global maximum over space."""
POOLS = ("max", "avg", "centre")
"""Spatial poolings: global max, global average, the value at the central pixel."""


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
        widths: output channels per layer (their number is the depth).
        orders: Riesz orders of every layer (1 and/or 2).
        padding: how the FFT sees the image border (``periodic``, ``symmetric``, ``zeros``).
        spatial_pool: how the last layer's maps become features: ``max`` (default) or
            ``avg`` over the image, or ``centre``, the value at pixel ``(H // 2, W // 2)``
            (the authors' read-out, for centred objects).
        stage1_layer: index of the layer whose output is stage 1 (default: the middle
            one, ``(len(widths) − 1) // 2``).
    """

    def __init__(
        self,
        num_channels: int,
        num_classes: int,
        widths: Sequence[int] = WIDTHS,
        orders: Sequence[int] = ORDERS,
        padding: str = "periodic",
        spatial_pool: str = SPATIAL_POOL,
        stage1_layer: int | None = None,
    ) -> None:
        super().__init__()
        if spatial_pool not in POOLS:
            raise ValueError(f"spatial_pool must be one of {POOLS}, got {spatial_pool!r}")
        self.spatial_pool = spatial_pool
        self.stage1_layer = (len(widths) - 1) // 2 if stage1_layer is None else stage1_layer
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
        if self.spatial_pool == "max":
            pooled = last.amax(dim=(0, 1))
        elif self.spatial_pool == "avg":
            pooled = last.mean(dim=(0, 1))
        else:
            pooled = last[last.shape[0] // 2, last.shape[1] // 2]
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
    ``widths=WIDTHS_4_LAYERS`` gives the previous four-layer default.
    """
    names = ("widths", "orders", "padding", "spatial_pool", "stage1_layer")
    return RieszNet(num_channels, num_classes, **{k: v for k, v in extra.items() if k in names})
