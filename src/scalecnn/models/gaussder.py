"""Model 12: the Gaussian derivative network (GaussDerNet).

Lindeberg (J. Math. Imaging Vis. 2022) and Perzanowski & Lindeberg (arXiv
2409.11140, J. Math. Imaging Vis. 2025): layers of learned combinations of
scale-normalised Gaussian derivatives
(:class:`~scalecnn.layers.gaussian_derivative.GaussianDerivativeLayer`), each
followed by batch norm and ReLU, applied in ``S`` scale channels that share all
weights. Scale channel ``i`` starts at ``σ0_i = σ_base · ratio^i`` and layer ``k``
uses ``σ_{k,i} = σ0_i · growth^k`` (or ``σ0_i · layer_scales[k]``; pixels of the
input image). Magnifying the image by ``ratio`` moves every response one scale
channel up (scale covariance); pooling over space and over the scale channels
makes the logits scale invariant over the range the channels cover.

Defaults (docs/models.md, "gaussder and riesz: the authors' settings and ours"):
the extensions Perzanowski & Lindeberg report as improving scale generalisation,
average pooling over the scale channels (:data:`SCALE_POOL`) with scale-channel
dropout in training (:data:`SCALE_DROPOUT`), and spatial max pooling after the last
layer (:data:`SPATIAL_POOL`, for objects that are not centred, as in STIR). Depth,
widths, the scale channels and σ growth are ours (the paper's STIR values could not
be established). The previous defaults, max pooling over the scale channels and no
dropout, are ``scale_pool="max", scale_dropout=0.0`` (:data:`MAX_POOL_VARIANT`).

Scale-channel dropout: in training each scale channel of each sample is dropped
with probability ``p`` (at least one is kept); dropped channels are left out of the
pooling over scale channels (the average runs over the kept channels; no
``1/(1 − p)`` rescaling, so max and average pooling see values on the same scale as
in evaluation). Evaluation uses every channel.

Multi-resolution computation: the output of layer ``k`` in channel ``i`` is sampled
with spacing ``h_{k,i}``, the largest power of two with ``σ_{k,i} / h_{k,i} ≥ 1``, at
most ``max_spacing`` (default 2: every map with σ ≥ 2 px lives on the even pixels; the
derivatives are computed on the input's grid, then subsampled). Where two channels
differ by a factor two in σ and in spacing, a ×2 rescaling maps one discrete
computation onto the other. The coarsest spacing is kept at 2 because the spatial
max over a coarser grid misses the peaks (measured: logits of rescaled objects change
two to three times more with spacings up to 8). ``multiresolution=False`` keeps every
map at full resolution (the plain discretisation, about five times slower).

Shapes (defaults, 64² input): ``(B, C, 64, 64)`` → in channel ``i``, four layers
``(B, 24 | 32 | 48 | 48, 64/h, 64/h)`` with ``h`` 1 or 2 → spatial max per channel
``(S, B, 48)`` → average over the 5 channels (kept ones in training) ``(B, 48)`` →
``Linear(48, classes)``. Each channel is pooled over space on its own grid before the
pooling over channels (the grids differ); for max pooling over both the order would
not matter.

``feature_maps(x)`` returns the outputs of layer 2 (stage 1) and of the last layer
(stage 2), each channel's map brought to the input grid by bilinear interpolation
and pooled over the scale channels (all of them, with the model's scale pooling):
``(B, 32, 64, 64)`` and ``(B, 48, 64, 64)``, the maps that are equivariant (not
merely covariant) under rescaling, as the scale-pooled stage maps of the pixel_pool
model.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from scalecnn.layers.gaussian_derivative import GaussianDerivativeLayer
from scalecnn.models.registry import register_model

WIDTHS = (24, 32, 48, 48)
"""Output channels of the four Gaussian derivative layers."""
SCALE_RATIO = math.sqrt(2)
"""Ratio between the initial scales of adjacent scale channels."""
NUM_SCALES = 5
"""Scale channels: σ0 = 1, √2, 2, 2√2, 4 (a factor 4, as the object sizes 17 … 64)."""
SIGMA_BASE = 1.0
GROWTH = math.sqrt(2)
"""Factor by which σ grows from one layer to the next."""
ORDERS = (1, 2)
"""Derivative orders of every layer: ∂x, ∂y, ∂xx, ∂xy, ∂yy."""
SCALE_POOL = "avg"
"""Pooling over the scale channels (Perzanowski & Lindeberg: average pooling over
scales may generalise better than max pooling)."""
SCALE_DROPOUT = 0.2
"""Probability of dropping a scale channel in training (scale-channel dropout; the
paper's value for STIR could not be established: ours, about one of the five)."""
SPATIAL_POOL = "max"
"""Pooling over space after the last layer (spatial max pooling: objects need not be
centred)."""
MAX_POOL_VARIANT: dict[str, object] = {"scale_pool": "max", "scale_dropout": 0.0}
"""Options giving the previous defaults: max over the scale channels, no dropout."""
MAX_SPACING = 2
"""Coarsest grid spacing of the multi-resolution computation (pixels)."""
POOLS = ("max", "avg")


def grid_spacing(sigma: float, previous: int = 1) -> int:
    """Largest power of two ``h ≥ previous`` with ``sigma / h ≥ 1`` (at least ``previous``)."""
    h = 2 ** max(0, math.floor(math.log2(sigma) + 1e-9))
    return max(h, previous)


def upsample(x: torch.Tensor, spacing: int, size: tuple[int, int]) -> torch.Tensor:
    """Bilinear interpolation of samples at ``0, h, 2h …`` back to every pixel of ``size``.

    ``(B, C, ceil(H/h), ceil(W/h))`` → ``(B, C, H, W)``; beyond the last sample the map
    is extended by replication.
    """
    if spacing == 1:
        return x
    padded = F.pad(x, (0, 1, 0, 1), mode="replicate")
    n_y, n_x = padded.shape[-2:]
    full = (spacing * (n_y - 1) + 1, spacing * (n_x - 1) + 1)
    out = F.interpolate(padded, size=full, mode="bilinear", align_corners=True)
    return out[..., : size[0], : size[1]]


def joint_batch_norm(
    norm: nn.BatchNorm2d, xs: list[torch.Tensor], weights: list[float]
) -> list[torch.Tensor]:
    """Batch norm with statistics shared by maps of different sizes.

    Each map ``(B, C, h_i, w_i)`` counts its pixels with weight ``weights[i]`` (its grid
    spacing squared: the input pixels it stands for), so the statistics approximate
    those of full-resolution maps. Eval mode uses the running statistics.
    """
    if not norm.training and norm.track_running_stats:
        return [
            F.batch_norm(
                x, norm.running_mean, norm.running_var, norm.weight, norm.bias, False, 0.0, norm.eps
            )
            for x in xs
        ]
    count = sum(w * x[:, 0].numel() for x, w in zip(xs, weights))
    mean = sum(w * x.sum(dim=(0, 2, 3)) for x, w in zip(xs, weights)) / count
    var = sum(w * ((x - mean[:, None, None]) ** 2).sum(dim=(0, 2, 3)) for x, w in zip(xs, weights))
    var = var / count
    if norm.track_running_stats:
        with torch.no_grad():
            m = norm.momentum if norm.momentum is not None else 0.1
            norm.running_mean.mul_(1 - m).add_(m * mean)
            norm.running_var.mul_(1 - m).add_(m * var * count / max(count - 1, 1))
            norm.num_batches_tracked.add_(1)
    scale = torch.rsqrt(var + norm.eps)
    if norm.affine:
        shift = norm.bias - mean * scale * norm.weight
        scale = scale * norm.weight
    else:
        shift = -mean * scale
    return [x * scale[:, None, None] + shift[:, None, None] for x in xs]


class GaussDerNet(nn.Module):
    """Scale-channel Gaussian derivative network with shared weights.

    Args:
        num_channels: input channels (1 or 3).
        num_classes: logits.
        widths: output channels per layer (their number is the depth).
        sigma0: initial scale of each scale channel (σ of the first layer with the
            default ``layer_scales``, in pixels; default ``SIGMA_BASE · SCALE_RATIO^i``,
            ``i < NUM_SCALES``).
        growth: σ factor from one layer to the next.
        layer_scales: σ of layer ``k`` relative to ``sigma0`` (one factor per layer;
            default ``growth^k``), for σ that do not grow geometrically.
        orders: derivative orders of every layer (subset of 0 … 3).
        scale_pool: ``avg`` (default) or ``max`` over the scale channels.
        spatial_pool: ``max`` (default) or ``avg`` over each channel's last map.
        scale_dropout: in training, the probability of dropping each scale channel of
            each sample from the pooling over scale channels (at least one is kept);
            0 disables it. Default :data:`SCALE_DROPOUT`.
        stage1_layer: index of the layer whose output is stage 1 (default: the middle
            one, ``(len(widths) − 1) // 2``).
        multiresolution: subsample coarse scale channels (see module docs).
        max_spacing: coarsest grid spacing of the multi-resolution computation.
    """

    def __init__(
        self,
        num_channels: int,
        num_classes: int,
        widths: Sequence[int] = WIDTHS,
        sigma0: Sequence[float] | None = None,
        growth: float = GROWTH,
        orders: Sequence[int] = ORDERS,
        scale_pool: str = SCALE_POOL,
        spatial_pool: str = SPATIAL_POOL,
        scale_dropout: float = SCALE_DROPOUT,
        stage1_layer: int | None = None,
        multiresolution: bool = True,
        max_spacing: int = MAX_SPACING,
        layer_scales: Sequence[float] | None = None,
    ) -> None:
        super().__init__()
        if scale_pool not in POOLS or spatial_pool not in POOLS:
            raise ValueError(f"pooling must be one of {POOLS}")
        if not 0.0 <= scale_dropout < 1.0:
            raise ValueError(f"scale_dropout must be in [0, 1), got {scale_dropout}")
        if sigma0 is None:
            sigma0 = [SIGMA_BASE * SCALE_RATIO**i for i in range(NUM_SCALES)]
        if layer_scales is None:
            layer_scales = [growth**k for k in range(len(widths))]
        if len(layer_scales) != len(widths) or min(layer_scales) <= 0:
            raise ValueError("layer_scales needs one positive factor per layer")
        self.sigma0 = tuple(float(s) for s in sigma0)
        self.growth = float(growth)
        self.layer_scales = tuple(float(f) for f in layer_scales)
        self.scale_pool, self.spatial_pool = scale_pool, spatial_pool
        self.scale_dropout = float(scale_dropout)
        self.stage1_layer = (len(widths) - 1) // 2 if stage1_layer is None else stage1_layer
        self.sigmas = [[s * f for s in self.sigma0] for f in self.layer_scales]
        """``sigmas[k][i]``: σ of layer ``k`` in scale channel ``i`` (input pixels)."""
        self.spacings: list[list[int]] = []
        """``spacings[k][i]``: grid spacing of layer ``k``'s output in scale channel ``i``."""
        previous = [1] * self.num_scales
        for row in self.sigmas:
            previous = [
                min(grid_spacing(s, p), max_spacing) if multiresolution else 1
                for s, p in zip(row, previous)
            ]
            self.spacings.append(previous)
        self.layers = nn.ModuleList()
        self.norms = nn.ModuleList()
        c = num_channels
        for w in widths:
            self.layers.append(GaussianDerivativeLayer(c, w, orders, bias=False))
            self.norms.append(nn.BatchNorm2d(w))
            c = w
        self.act = nn.ReLU()
        self.lin = nn.Linear(c, num_classes)

    @property
    def num_scales(self) -> int:
        return len(self.sigma0)

    def extra_repr(self) -> str:
        sig = ", ".join(f"{s:.3g}" for s in self.sigma0)
        fac = ", ".join(f"{f:.3g}" for f in self.layer_scales)
        return (
            f"sigma0=({sig}), layer_scales=({fac}), spacings={self.spacings}, "
            f"scale_pool={self.scale_pool!r}, spatial_pool={self.spatial_pool!r}, "
            f"scale_dropout={self.scale_dropout}"
        )

    def scale_channels(self, x: torch.Tensor) -> list[list[torch.Tensor]]:
        """Every layer's output per scale channel: ``[k][i]`` is ``(B, C_k, H/h, W/h)``."""
        ys = [x] * self.num_scales
        previous = [1] * self.num_scales
        outputs = []
        for k, (layer, norm) in enumerate(zip(self.layers, self.norms)):
            zs = [
                layer(y, self.sigmas[k][i] / previous[i], self.spacings[k][i] // previous[i])
                for i, y in enumerate(ys)
            ]
            zs = joint_batch_norm(norm, zs, [h * h for h in self.spacings[k]])
            ys = [self.act(z) for z in zs]
            previous = self.spacings[k]
            outputs.append(ys)
        return outputs

    def pool_scales(self, ys: torch.Tensor, keep: torch.Tensor | None = None) -> torch.Tensor:
        """Pool ``(S, B, …)`` over the scale channels → ``(B, …)``.

        ``keep`` ``(S, B)`` (bool, at least one ``True`` per sample) restricts the pooling
        to the kept scale channels: the maximum or the average over those only, so that
        dropped channels do not contribute and nothing is rescaled.
        """
        if keep is None:
            return ys.amax(dim=0) if self.scale_pool == "max" else ys.mean(dim=0)
        mask = keep.to(ys.dtype).view(*keep.shape, *([1] * (ys.dim() - 2)))
        if self.scale_pool == "max":  # responses are ≥ 0 after the ReLU
            return (ys * mask).amax(dim=0)
        return (ys * mask).sum(dim=0) / mask.sum(dim=0)

    def scale_keep_mask(self, b: int, device: torch.device) -> torch.Tensor | None:
        """Scale-channel dropout mask ``(S, B)`` (bool) for a batch of ``b``, or ``None``
        (keep all: evaluation, or ``scale_dropout`` 0).

        Channel ``i`` of sample ``j`` is kept where ``torch.rand(S, B)[i, j] ≥ p``; a
        sample with no channel kept keeps one drawn uniformly.
        """
        if not (self.training and self.scale_dropout > 0):
            return None
        keep = torch.rand(self.num_scales, b, device=device) >= self.scale_dropout
        none_kept = ~keep.any(dim=0)
        if none_kept.any():  # keep one random channel where all were dropped
            pick = torch.randint(self.num_scales, (b,), device=device)
            keep[pick[none_kept], none_kept.nonzero().squeeze(1)] = True
        return keep

    def stage_map(
        self, outputs: list[list[torch.Tensor]], k: int, size: tuple[int, int]
    ) -> torch.Tensor:
        """Layer ``k``'s maps on the input grid, pooled over scale channels: ``(B, C_k, H, W)``."""
        maps = [upsample(y, h, size) for y, h in zip(outputs[k], self.spacings[k])]
        return self.pool_scales(torch.stack(maps))

    def feature_maps(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Stage maps of layer ``stage1_layer`` and of the last layer: ``(B, C_k, H, W)``.

        These are the maps the equivariance error compares.
        """
        outputs = self.scale_channels(x)
        size = tuple(x.shape[-2:])
        return self.stage_map(outputs, self.stage1_layer, size), self.stage_map(outputs, -1, size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, C, H, W)`` → logits ``(B, num_classes)``."""
        last = self.scale_channels(x)[-1]
        if self.spatial_pool == "max":
            pooled = torch.stack([y.flatten(2).amax(dim=2) for y in last])  # (S, B, C)
        else:
            pooled = torch.stack([y.flatten(2).mean(dim=2) for y in last])
        features = self.pool_scales(pooled, self.scale_keep_mask(x.shape[0], x.device))
        return self.lin(features)


@register_model("gaussder", traced=True)
def gaussder(
    kernel_size: int,
    interpolation: str,
    num_channels: int,
    num_classes: int,
    **extra: object,
) -> nn.Module:
    """The Gaussian derivative network (``kernel_size`` and ``interpolation`` are unused).

    ``extra`` may override :class:`GaussDerNet`'s options (``widths``, ``sigma0``,
    ``growth``, ``layer_scales``, ``orders``, ``scale_pool``, ``spatial_pool``,
    ``scale_dropout``, ``stage1_layer``, ``multiresolution``, ``max_spacing``); other
    keys (e.g. ``basis``) are ignored. ``**MAX_POOL_VARIANT`` gives the previous
    defaults (max over the scale channels, no scale-channel dropout).
    """
    names = (
        "widths",
        "sigma0",
        "growth",
        "layer_scales",
        "orders",
        "scale_pool",
        "spatial_pool",
        "scale_dropout",
        "stage1_layer",
        "multiresolution",
        "max_spacing",
    )
    return GaussDerNet(num_channels, num_classes, **{k: v for k, v in extra.items() if k in names})
