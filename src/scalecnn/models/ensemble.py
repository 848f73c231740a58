"""The ensemble model: one standard network applied to a Gaussian image pyramid."""

from __future__ import annotations

import torch
from kornia.geometry import build_pyramid
from torch import nn

from scalecnn.models.registry import register_model
from scalecnn.models.standard import standard_net

PYRAMID_LEVELS = 3
"""Pyramid levels: the input plus two blur-and-halve steps (64, 32, 16 px)."""


class EnsembleNet(nn.Module):
    """Average of one network's logits over the levels of a Gaussian pyramid.

    Args:
        base_model: maps ``(B, C, h, w)`` to ``(B, classes)`` for every level size
            (the paper's attribute name, kept so its weights load).
        levels: pyramid levels (``kornia.geometry.build_pyramid(x, max_level=levels)``).

    Shapes:
        input ``(B, C, 64, 64)`` → logits ``(B, classes)``.
    """

    def __init__(self, base_model: nn.Module, levels: int = PYRAMID_LEVELS) -> None:
        super().__init__()
        self.base_model = base_model
        self.levels = levels

    def extra_repr(self) -> str:
        return f"levels={self.levels}"

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pyramid = build_pyramid(x, max_level=self.levels)
        return torch.stack([self.base_model(level) for level in pyramid]).mean(dim=0)


@register_model("ensemble")
def ensemble(
    kernel_size: int, interpolation: str, num_channels: int, num_classes: int, **_: object
) -> nn.Module:
    """Standard network with padding ``(k − 1)/2`` on a 3-level pyramid (``interpolation``
    is unused)."""
    base = standard_net(num_channels, num_classes, kernel_size, padding=(kernel_size - 1) // 2)
    return EnsembleNet(base)
