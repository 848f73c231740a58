"""Frequency-domain fast path of SiConv2d (placeholder until implemented)."""

from __future__ import annotations

import torch


def is_faster(layer, x: torch.Tensor) -> bool:  # noqa: ANN001
    """Whether the FFT path is expected to beat the direct one for this shape."""
    return False


def siconv2d_fft(layer, x: torch.Tensor) -> torch.Tensor:  # noqa: ANN001
    raise NotImplementedError("the FFT path of SiConv2d is not implemented yet")
