"""Pooling over the scale dimension and global max pooling."""

from __future__ import annotations

import torch
from torch import nn

POOL_MODES = ("pixel", "slice", "energy")


class ScalePool(nn.Module):
    """Collapse the scale dimension: ``(B, C, S, H, W)`` → ``(B, C, H, W)``.

    Modes:
        ``pixel``: per pixel, the maximum over scales; ``indices`` ``(B, C, H, W)``.
        ``slice``: per (batch, channel), the scale slice holding the single largest
            activation over (S, H, W); ``indices`` ``(B, C)``.
        ``energy``: per (batch, channel), the scale slice with the largest sum over
            (H, W); ``indices`` ``(B, C)``.

    The chosen scale indices of the last call are kept in ``self.indices``
    (detached).
    """

    def __init__(self, mode: str = "pixel") -> None:
        super().__init__()
        if mode not in POOL_MODES:
            raise ValueError(f"unknown ScalePool mode {mode!r}; expected one of {POOL_MODES}")
        self.mode = mode
        self.indices: torch.Tensor | None = None

    def extra_repr(self) -> str:
        return f"mode={self.mode!r}"

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 5:
            raise ValueError(f"ScalePool expects (B, C, S, H, W), got shape {tuple(x.shape)}")
        if self.mode == "pixel":
            out, idx = x.max(dim=2)
            self.indices = idx.detach()
            return out
        b, c, s, h, w = x.shape
        if self.mode == "slice":
            flat_idx = x.detach().reshape(b, c, s * h * w).argmax(dim=2)
            idx = torch.div(flat_idx, h * w, rounding_mode="floor")
        else:
            idx = x.detach().sum(dim=(3, 4)).argmax(dim=2)
        self.indices = idx
        gather_idx = idx.view(b, c, 1, 1, 1).expand(b, c, 1, h, w)
        return x.gather(2, gather_idx).squeeze(2)


class GlobalMaxPool(nn.Module):
    """Maximum over every dimension after the channel one: ``(B, C, ...)`` → ``(B, C)``."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.flatten(2).amax(dim=2)
