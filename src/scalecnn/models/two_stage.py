"""The common skeleton of the paper's networks.

``conv1 → [pool1] → ReLU → conv2 → [pool2] → ReLU → global max → lin``: two
convolution stages (16 then 32 channels), optional scale pooling before each
ReLU, global max pooling over every dimension after the channel one and one
linear layer. Parameter names (``conv1.*``, ``conv2.*``, ``lin.*``) are the
paper's, so its trained weights load.
"""

from __future__ import annotations

import torch
from torch import nn

from scalecnn.layers import (
    GlobalMaxPool,
    ScalePool,
    SiConv2d,
    expected_num_scales,
    siconv_scale_pool,
)

STAGE_CHANNELS = (16, 32)
IMAGE_SIZE = 64


def stage_scales(kernel_size: int, image_size: int = IMAGE_SIZE) -> tuple[int, int]:
    """Numbers of scales ``(S1, S2)`` of two stacked SiConv2d stages without padding.

    Stage 1 sees the ``image_size``² input, stage 2 stage 1's
    ``(image_size − k + 1)``² output; each takes
    :func:`~scalecnn.layers.expected_num_scales` of its input: (29, 26) for k = 7
    on 64 × 64 images.
    """
    first = expected_num_scales(image_size, image_size, kernel_size)
    stage1_size = image_size - kernel_size + 1
    return first, expected_num_scales(stage1_size, stage1_size, kernel_size)


class TwoStageNet(nn.Module):
    """Two convolution stages, global max pooling, one linear layer.

    Args:
        conv1: stage-1 convolution, ``(B, C, 64, 64)`` → ``(B, 16, [S,] H1, W1)``.
        conv2: stage-2 convolution on stage 1's output.
        num_classes: logits.
        pool1, pool2: optional modules applied before each ReLU (scale pooling).
        features: channels entering the linear layer (32 by default).
        fuse_pool: compute a ``SiConv2d`` stage followed by a ``ScalePool`` with
            :func:`~scalecnn.layers.siconv_scale_pool` (same result, no stacked
            ``(B, C, S, H, W)`` tensor on the FFT path): ``None`` where that is
            faster (the CPU), ``True`` always. ``False`` calls the two modules one
            after the other (their forward hooks then run).

    ``feature_maps(x)`` returns the stage-1 and stage-2 maps after pooling and
    ReLU (e.g. ``(B, 16, 58, 58)`` and ``(B, 32, 52, 52)`` for k = 7).
    """

    def __init__(
        self,
        conv1: nn.Module,
        conv2: nn.Module,
        num_classes: int,
        pool1: nn.Module | None = None,
        pool2: nn.Module | None = None,
        features: int = STAGE_CHANNELS[1],
        fuse_pool: bool | None = None,
    ) -> None:
        super().__init__()
        self.fuse_pool = fuse_pool
        self.conv1 = conv1
        if pool1 is not None:
            self.pool1 = pool1
        self.act1 = nn.ReLU()
        self.conv2 = conv2
        if pool2 is not None:
            self.pool2 = pool2
        self.act2 = nn.ReLU()
        self.global_pool = GlobalMaxPool()
        self.lin = nn.Linear(features, num_classes)

    def _stage(self, x: torch.Tensor, index: int) -> torch.Tensor:
        conv = getattr(self, f"conv{index}")
        pool = getattr(self, f"pool{index}", None)
        fusable = isinstance(conv, SiConv2d) and isinstance(pool, ScalePool)
        if fusable and self.fuse_pool is not False:
            x = siconv_scale_pool(conv, pool, x, fuse=self.fuse_pool)
        else:
            x = conv(x)
            if pool is not None:
                x = pool(x)
        return getattr(self, f"act{index}")(x)

    def feature_maps(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Stage-1 and stage-2 feature maps (after pooling and ReLU, before global pooling)."""
        stage1 = self._stage(x, 1)
        stage2 = self._stage(stage1, 2)
        return stage1, stage2

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, C, 64, 64)`` → logits ``(B, num_classes)``."""
        _, stage2 = self.feature_maps(x)
        return self.lin(self.global_pool(stage2))
