"""conv3d's ``AutoConv3d(16, 32, 7)``: ``direct`` against ``fft`` (time and peak memory)."""

from __future__ import annotations

import argparse

from memory import format_mb
from siconv_layers import compare_methods
from subjects import CONV3D_LAYER, make_layer


def bench_conv3d_layer(args: argparse.Namespace) -> dict:
    """conv3d's ``AutoConv3d(16, 32, 7)`` on its ``(16, 16, 29, 58, 58)`` input (with
    gradient), forward + backward, ``direct`` (``F.conv3d``) against ``fft``."""
    from scalecnn.layers.fft import fft_is_faster

    spec = CONV3D_LAYER
    layer, x = make_layer(spec, "fft", args.device)
    auto = "fft" if fft_is_faster(x, layer.weight) else "direct"
    row = {**compare_methods(spec, args), "auto_method": auto}
    shape = "x".join(str(v) for v in spec["input"])
    print(f"\n== conv3d layer AutoConv3d(16, 32, 7) on ({shape}), forward+backward ==")
    print(
        f"{'direct s':>9} {'fft s':>8} {'speed-up':>8} {'cpu speed-up':>12} "
        f"{'mem direct MB':>13} {'mem fft MB':>10} {'auto':>6}"
    )
    print(
        f"{row['direct_wall_s']:9.3f} {row['fft_wall_s']:8.3f} {row['speedup_wall']:7.1f}x "
        f"{row['speedup_cpu']:11.1f}x {format_mb(row['direct_peak_bytes']):>13} "
        f"{format_mb(row['fft_peak_bytes']):>10} {auto:>6}",
        flush=True,
    )
    return row
