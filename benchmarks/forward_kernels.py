"""Forward convolutions: oneDNN (ATen's ``F.conv2d``), NNPACK and the package's FFT path.

The thresholds of the switch ``nnpack`` (``scalecnn.layers.fastpath.NNPACK_*``) say where
NNPACK's forward beats oneDNN's; this section measures the three side by side on the
shapes of the models' plain convolutions, so that they can be checked on any CPU.
"""

from __future__ import annotations

import argparse

import torch
import torch.nn.functional as F
from subjects import BATCH
from timing import time_interleaved

SIZE = 64
"""Input height and width (the STIR images)."""

SHAPES: tuple[tuple[int, int, int], ...] = (
    (16, 32, 3),
    (16, 32, 7),
    (16, 32, 9),
    (16, 32, 11),
    (16, 32, 15),
    (1, 16, 7),
)
"""(input channels, output channels, kernel size) of the timed convolutions."""


def _ops(cin: int, cout: int, k: int, device: str) -> dict:
    """Forward-only calls of the three kernels on one random input and weight."""
    from scalecnn.layers.fft import fft_conv

    x = torch.randn(BATCH, cin, SIZE, SIZE, device=device)
    w = torch.randn(cout, cin, k, k, device=device)
    b = torch.randn(cout, device=device)
    ops = {
        "onednn": lambda: F.conv2d(x, w, b),
        "fft": lambda: fft_conv(x, w, b),
    }
    if device == "cpu" and torch._nnpack_available():
        ops["nnpack"] = lambda: torch._nnpack_spatial_convolution(x, w, b, [0, 0])
    return ops


def bench_forward_kernels(args: argparse.Namespace) -> list[dict]:
    """Median forward time (ms) of each kernel per shape, run round-robin, no gradient."""
    print(f"\n== forward convolutions, batch {BATCH}, {SIZE}x{SIZE} input (ms) ==")
    print(f"{'C -> O, k':<16} {'oneDNN':>9} {'NNPACK':>9} {'FFT':>9}")
    rows = []
    for cin, cout, k in SHAPES:
        with torch.no_grad():
            t = time_interleaved(
                _ops(cin, cout, k, args.device), args.device, warmup=1, repeats=args.layer_repeats
            )
        row = {"cin": cin, "cout": cout, "k": k}
        row.update({f"{name}_ms": 1e3 * v["wall_s"] for name, v in t.items()})
        rows.append(row)
        cells = [row.get(f"{name}_ms") for name in ("onednn", "nnpack", "fft")]
        print(
            f"{f'{cin} -> {cout}, {k}x{k}':<16} "
            + " ".join(f"{c:9.1f}" if c is not None else f"{'-':>9}" for c in cells),
            flush=True,
        )
    return rows
