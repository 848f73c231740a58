#!/usr/bin/env python
"""The factorised (separable, spatial-domain) alternative to SiConv2d's FFT path.

Scale i's kernel is ``A_i W A_iᵀ · k²/t_i²`` (``A_i``: ``(t_i, k)``), so

    conv(x, A_i W A_iᵀ)[o] = Σ_{c,p,q} W[o,c,p,q] · (x_c ⋆ (a_ip ⊗ a_iq))

with ``a_ip`` the p-th column of ``A_i``: filter every input channel with the ``k``
columns of ``A_i`` along the width, then along the height (two separable
convolutions giving ``C·k²`` basis maps per scale), then mix ``C·k² → O`` with one
matmul. This script times that forward pass against the direct and FFT forward
passes at the paper's layer shapes, to document why the FFT path was chosen::

    python benchmarks/factorised.py [--threads 2] [--batch 16]
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
import torch.nn.functional as F

from scalecnn.layers import SiConv2d
from scalecnn.layers.fft import siconv2d_fft
from scalecnn.layers.interpolation import interpolation_matrix_1d


def factorised_forward(layer: SiConv2d, x: torch.Tensor) -> torch.Tensor:
    """SiConv2d forward (padding=False, stride 1) through separable basis filtering."""
    b, c, h, w = x.shape
    k, o = layer.kernel_size, layer.out_channels
    out_h, out_w = h - k + 1, w - k + 1
    mix = layer.weights.reshape(o, c * k * k)  # (O, C·k_p·k_q)
    outs = []
    for i, t in enumerate(layer.kernel_sizes()):
        a = interpolation_matrix_1d(k, t, layer.interp_mode).to(x) * (k / t)  # (t, k)
        rows = F.conv2d(x.reshape(b * c, 1, h, w), a.T.reshape(k, 1, 1, t))  # (BC, k_q, H, W')
        hh, ww = h, w - t + 1
        basis = F.conv2d(rows.reshape(b * c * k, 1, hh, ww), a.T.reshape(k, 1, t, 1))
        hh -= t - 1  # basis: (B·C·k_q, k_p, H', W')
        basis = basis.reshape(b, c, k, k, hh * ww).transpose(2, 3).reshape(b, c * k * k, -1)
        y = torch.matmul(mix, basis).reshape(b, o, hh, ww) + layer.bias.view(1, o, 1, 1)
        outs.append(F.pad(y, (i, out_w - ww - i, i, out_h - hh - i)))
    return torch.stack(outs, dim=2)


def _time(fn, repeats: int = 3) -> float:
    fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--batch", type=int, default=16)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    print(f"forward only, batch {args.batch}, {args.threads} threads, bicubic, k = 7")
    print(f"{'layer':<8} {'direct s':>9} {'factorised s':>12} {'fft s':>8} {'max rel. err':>12}")
    for name, cin, cout, size in (("layer1", 1, 16, 64), ("layer2", 16, 32, 58)):
        layer = SiConv2d(cin, cout, (size - 7) // 2 + 1, 7, interp_mode="bicubic")
        x = torch.randn(args.batch, cin, size, size)
        with torch.no_grad():
            ref = layer.forward_direct(x)
            err = (factorised_forward(layer, x) - ref).abs().max() / ref.abs().max()
            t_direct = _time(lambda layer=layer, x=x: layer.forward_direct(x), 1)
            t_fact = _time(lambda layer=layer, x=x: factorised_forward(layer, x), 1)
            t_fft = _time(lambda layer=layer, x=x: siconv2d_fft(layer, x))
        print(f"{name:<8} {t_direct:9.3f} {t_fact:12.3f} {t_fft:8.3f} {err.item():12.1e}")


if __name__ == "__main__":
    main()
