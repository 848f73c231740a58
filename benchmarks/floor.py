"""The floor of the FFT path: its unavoidable transforms, products and kernel spectra alone."""

from __future__ import annotations

import argparse

import torch
from subjects import BATCH, LAYERS, layer_step, make_layer, make_model, train_step
from timing import time_interleaved


def _transform_ops(spec: dict, device: str):
    """The FFT path's transforms of layer ``spec`` (a ``LAYERS`` entry): per scale,
    the inverse (forward pass) and forward (backward pass) 2-D transforms of all
    ``B·O`` maps, as the FFT path (``scalecnn.layers.fft``) does them."""
    from scalecnn.layers import expected_num_scales
    from scalecnn.layers.fft import next_fast_len

    size, k, maps = spec["size"], spec["k"], BATCH * spec["cout"]
    scales, out, n = expected_num_scales(size, size, k), size - k + 1, next_fast_len(size)
    freq = torch.randn(n, n // 2 + 1, maps, dtype=torch.complex64, device=device)
    grad = torch.randn(maps, n, n, device=device)

    def inverse() -> None:
        for s in range(scales):
            y = torch.fft.ifft(freq, dim=0, norm="forward")[s : out - s]
            torch.fft.irfft(y, n=n, dim=1, norm="forward")

    def forward() -> None:
        for _ in range(scales):
            torch.fft.rfft2(grad)

    return inverse, forward


def _product_ops(spec: dict, device: str):
    """The three batched complex products per scale of layer ``spec`` (output, input
    gradient, weight gradient), one ``(B, C) @ (C, O)`` per frequency."""
    from scalecnn.layers import expected_num_scales
    from scalecnn.layers.fft import next_fast_len

    n = next_fast_len(spec["size"])
    freqs, c, o = n * (n // 2 + 1), spec["cin"], spec["cout"]
    scales = expected_num_scales(spec["size"], spec["size"], spec["k"])
    xs = torch.randn(freqs, BATCH, c, dtype=torch.complex64, device=device)
    ks = torch.randn(freqs, c, o, dtype=torch.complex64, device=device)
    gs = torch.randn(freqs, BATCH, o, dtype=torch.complex64, device=device)

    def products() -> None:
        for _ in range(scales):
            torch.bmm(xs, ks)
            torch.bmm(gs, ks.transpose(1, 2))
            torch.bmm(gs.transpose(1, 2), xs)

    return products


def _kernel_spectrum_ops(spec: dict, device: str):
    """Per scale of layer ``spec``, what the FFT path does with kernel spectra in a
    training step: two formations (output, input gradient) and one adjoint (weight
    gradient), with the FFT path's own functions and plan."""
    from scalecnn.layers.fft.plan import plan_for
    from scalecnn.layers.fft.transforms import (
        complex_weights,
        kernel_spectra,
        kernel_spectra_adjoint,
    )

    layer, x = make_layer(spec, "fft", device)
    plan = plan_for(layer, x.detach())
    wc = complex_weights(layer.weights.detach(), plan.g_h.dtype)
    scales = plan.g_h.shape[0]
    grad = torch.randn(1, plan.nh, plan.fw, wc.shape[-1], dtype=wc.dtype, device=device)

    def spectra() -> None:
        for s in range(scales):
            kernel_spectra(plan, wc, s, s + 1, conj=False)
            kernel_spectra(plan, wc, s, s + 1, conj=True)
            kernel_spectra_adjoint(plan, grad, s, s + 1)

    return spectra


def bench_floor(args: argparse.Namespace) -> dict:
    """Lower bounds of the FFT path from its unavoidable parts, measured side by side.

    A pixel_pool step needs, per layer and scale, the inverse transforms of all
    ``B·O`` output maps (the per-pixel maximum reads every map) and the forward
    transforms of all ``B·O`` masked gradient maps; layer 2 also needs three batched
    complex products per scale (output, input gradient, weight gradient). Timed alone
    at the paper's shapes, with nothing else (no kernel spectra, masks, running
    maximum or copies), their sum bounds what this algorithm can reach with torch's
    FFT on this machine; layer 2's kernel spectra (two formations and one adjoint
    per scale, which the algorithm cannot skip either) give a second, tighter
    bound. Layer 1's transforms alone likewise bound its speed-up.
    """
    dev = args.device
    l1_inv, l1_fwd = _transform_ops(LAYERS[0], dev)
    l2_inv, l2_fwd = _transform_ops(LAYERS[1], dev)
    products = _product_ops(LAYERS[1], dev)
    spectra = _kernel_spectrum_ops(LAYERS[1], dev)

    layer1, x1 = make_layer(LAYERS[0], "direct", dev)
    fns = {
        "standard_step": train_step(make_model("standard", dev), dev),
        "layer1_direct": layer_step(layer1, x1),
        "layer1_transforms": lambda: (l1_inv(), l1_fwd()),
        "layer2_transforms": lambda: (l2_inv(), l2_fwd()),
        "layer2_products": products,
        "layer2_kernel_spectra": spectra,
    }
    t = time_interleaved(fns, dev, warmup=1, repeats=args.model_repeats)
    wall = {k: v["wall_s"] for k, v in t.items()}
    pixel = wall["layer1_transforms"] + wall["layer2_transforms"] + wall["layer2_products"]
    with_spectra = pixel + wall["layer2_kernel_spectra"]
    row = {
        **{f"{k}_wall_s": v for k, v in wall.items()},
        "pixel_floor_wall_s": pixel,
        "pixel_floor_ratio_to_standard": pixel / wall["standard_step"],
        "pixel_floor_with_spectra_wall_s": with_spectra,
        "pixel_floor_with_spectra_ratio_to_standard": with_spectra / wall["standard_step"],
        "layer1_max_speedup": wall["layer1_direct"] / wall["layer1_transforms"],
    }
    print(f"\n== floor of the FFT path (its transforms and products alone), batch {BATCH} ==")
    for key, value in wall.items():
        print(f"{key:<22} {value:8.3f} s")
    print(
        f"pixel_pool step >= {pixel:.3f} s = {row['pixel_floor_ratio_to_standard']:.1f}x standard "
        f"(with layer 2's kernel spectra >= {with_spectra:.3f} s = "
        f"{row['pixel_floor_with_spectra_ratio_to_standard']:.1f}x); "
        f"layer 1 speed-up <= {row['layer1_max_speedup']:.1f}x direct",
        flush=True,
    )
    return row
