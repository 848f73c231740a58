"""SiConv2d forward + backward, ``method='direct'`` against ``method='fft'``, per layer shape."""

from __future__ import annotations

import argparse

from memory import format_mb, memory_subprocess
from subjects import BATCH, EXTRA_LAYERS, LAYERS, layer_step, make_layer
from timing import time_interleaved


def compare_methods(spec: dict, args: argparse.Namespace) -> dict:
    """Forward + backward of layer ``spec`` with ``method='direct'`` and ``'fft'`` on the
    same weights and input, round-robin, and (unless ``--no-memory``) each method's
    peak memory in a fresh subprocess."""
    layer_d, x = make_layer(spec, "direct", args.device)
    layer_f, _ = make_layer(spec, "fft", args.device)
    layer_f.load_state_dict(layer_d.state_dict())
    t = time_interleaved(
        {"direct": layer_step(layer_d, x), "fft": layer_step(layer_f, x)},
        args.device,
        warmup=1,
        repeats=args.layer_repeats,
    )
    mem = {}
    if not args.no_memory:
        for method in ("direct", "fft"):
            mem[method] = memory_subprocess(spec, method, args)
    return {
        **spec,
        "direct_wall_s": t["direct"]["wall_s"],
        "fft_wall_s": t["fft"]["wall_s"],
        "speedup_wall": t["direct"]["wall_s"] / t["fft"]["wall_s"],
        "direct_cpu_s": t["direct"]["cpu_s"],
        "fft_cpu_s": t["fft"]["cpu_s"],
        "speedup_cpu": t["direct"]["cpu_s"] / max(t["fft"]["cpu_s"], 1e-9),
        "direct_peak_bytes": mem.get("direct"),
        "fft_peak_bytes": mem.get("fft"),
    }


def bench_layers(args: argparse.Namespace) -> list[dict]:
    from scalecnn.layers.fft import is_faster

    specs = list(LAYERS) + ([] if args.quick else list(EXTRA_LAYERS))
    results = []
    print(f"\n== SiConv2d forward+backward, batch {BATCH} ==")
    print(
        f"{'layer':<11} {'direct s':>9} {'fft s':>8} {'speed-up':>8} {'cpu speed-up':>12} "
        f"{'mem direct MB':>13} {'mem fft MB':>10} {'auto':>6}"
    )
    for spec in specs:
        layer, x = make_layer(spec, "fft", args.device)
        auto = "fft" if is_faster(layer, x) else "direct"
        row = {
            **compare_methods(spec, args),
            "batch": BATCH,
            "num_scales": layer.num_scales,
            "auto_method": auto,
        }
        results.append(row)
        print(
            f"{spec['name']:<11} {row['direct_wall_s']:9.3f} {row['fft_wall_s']:8.3f} "
            f"{row['speedup_wall']:7.1f}x {row['speedup_cpu']:11.1f}x "
            f"{format_mb(row['direct_peak_bytes']):>13} {format_mb(row['fft_peak_bytes']):>10} "
            f"{auto:>6}",
            flush=True,
        )
    return results
