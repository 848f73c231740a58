"""The spatial-transformer model: a standard network behind a learnt affine warp."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from scalecnn.models.registry import register_model
from scalecnn.models.standard import standard_net
from scalecnn.models.two_stage import IMAGE_SIZE

IDENTITY_THETA = (1.0, 0.0, 0.0, 0.0, 1.0, 0.0)


def localisation_net(num_channels: int, image_size: int = IMAGE_SIZE) -> nn.Sequential:
    """θ regressor ``(B, C, 64, 64)`` → ``(B, 6)``, initialised to the identity transform.

    ``Conv2d(C,16,3,pad 1) → MaxPool2d(2) → ReLU → Conv2d(16,16,3,pad 1) → MaxPool2d(2)
    → ReLU → Flatten → Linear(16·16·16, 16) → ReLU → Linear(16, 6)``; the last layer
    has zero weights and bias ``(1, 0, 0, 0, 1, 0)``.
    """
    side = image_size // 4
    net = nn.Sequential(
        nn.Conv2d(num_channels, 16, 3, padding=1),
        nn.MaxPool2d(2),
        nn.ReLU(),
        nn.Conv2d(16, 16, 3, padding=1),
        nn.MaxPool2d(2),
        nn.ReLU(),
        nn.Flatten(),
        nn.Linear(16 * side * side, 16),
        nn.ReLU(),
        nn.Linear(16, 6),
    )
    last = net[-1]
    with torch.no_grad():
        last.weight.zero_()
        last.bias.copy_(torch.tensor(IDENTITY_THETA))
    return net


class SpatialTransformNet(nn.Module):
    """``base_model(grid_sample(x, affine_grid(θ(x))))`` with θ from ``transform_model``.

    Args:
        base_model: classifier ``(B, C, 64, 64)`` → ``(B, classes)``.
        transform_model: θ regressor ``(B, C, 64, 64)`` → ``(B, 6)`` (row-major 2×3).

    Attribute names are the paper's, so its weights load.

    Shapes:
        input ``(B, C, 64, 64)`` → logits ``(B, classes)``.
    """

    def __init__(self, base_model: nn.Module, transform_model: nn.Module) -> None:
        super().__init__()
        self.base_model = base_model
        self.transform_model = transform_model

    def transform(self, x: torch.Tensor) -> torch.Tensor:
        """The warped input ``(B, C, H, W)`` (bilinear, zero padding, ``align_corners=False``)."""
        theta = self.transform_model(x).view(-1, 2, 3)
        grid = F.affine_grid(theta, list(x.shape), align_corners=False)
        return F.grid_sample(x, grid, align_corners=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.base_model(self.transform(x))


@register_model("spatial_transform")
def spatial_transform(
    kernel_size: int, interpolation: str, num_channels: int, num_classes: int, **_: object
) -> nn.Module:
    """Standard network behind a spatial transformer (``interpolation`` is unused)."""
    return SpatialTransformNet(
        standard_net(num_channels, num_classes, kernel_size), localisation_net(num_channels)
    )
