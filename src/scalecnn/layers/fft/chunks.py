"""Chunks of scales: how many scales' spectra one pass of the FFT path holds at once.

The FFT path never builds all scales' spectra together: it walks over chunks of
scales whose spectra fit a memory budget (why these budgets, with the measurements
behind them: ``docs/fft_path.md``).
"""

from __future__ import annotations

import torch

__all__ = [
    "CPU_CHUNK_BYTES",
    "CUDA_MIN_CHUNK_BYTES",
    "CUDA_STACK_FRACTION",
    "chunk_budget",
    "scale_chunks",
]

CPU_CHUNK_BYTES = 8 << 20
"""CPU: the largest temporary of a chunk (fresh large allocations are slow there)."""
CUDA_STACK_FRACTION = 4
"""CUDA: a chunk is this fraction of the direct path's stacked output."""
CUDA_MIN_CHUNK_BYTES = 4 << 20


def chunk_budget(
    x: torch.Tensor, out_channels: int, num_scales: int, out_h: int, out_w: int
) -> int:
    """Bytes of one chunk of scales' spectra for input ``x (B, C, H, W)``.

    CPU: a fixed :data:`CPU_CHUNK_BYTES`. CUDA: a fraction of the stacked output
    ``(B, O, S, H', W')`` that the direct path builds, so that the FFT path's peak
    memory stays at or below the direct path's (larger chunks are faster at more
    memory).
    """
    if x.device.type == "cpu":
        return CPU_CHUNK_BYTES
    stack = x.shape[0] * out_channels * num_scales * out_h * out_w * x.element_size()
    return max(CUDA_MIN_CHUNK_BYTES, stack // CUDA_STACK_FRACTION)


def scale_chunks(total: int, per_scale_bytes: int, budget: int) -> list[tuple[int, int]]:
    """Split scales ``0..total-1`` into balanced ``(s0, s1)`` chunks of about ``budget`` bytes."""
    sc = max(1, min(total, budget // max(1, per_scale_bytes)))
    n = -(-total // sc)
    sc = -(-total // n)
    return [(s, min(s + sc, total)) for s in range(0, total, sc)]
