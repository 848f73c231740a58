#!/usr/bin/env python
"""Benchmark SiConv2d's direct and fast (FFT) paths and every model's training step.

Usage::

    python benchmarks/run.py [--quick] [--json OUT] [--device cpu|cuda] [--threads 2]
                             [--workflow --workflow-cmd "snakemake --cores 2 --configfile ..."]

Measures, side by side in one run (warm-up first, then the median of repeats,
direct and fast interleaved so that drifting machine load hits both alike):

* every layer shape: forward + backward of ``SiConv2d`` with ``method='direct'``
  and ``method='fft'`` (wall time, process CPU time, their ratios) and the peak
  memory of one forward + backward;
* every registered model that builds with the default arguments: one training
  step (forward, cross-entropy, backward, Adam step; batch 16, 64×64) as a ratio
  to the ``standard`` model's step; SiConv2d models also with their layers
  forced to ``method='direct'`` (the "before"), unless ``--quick``;
* with ``--workflow``: the wall time of ``--workflow-cmd`` (run only when asked).

Peak memory on CPU is the peak resident set size of a fresh subprocess per
measurement: after a warm-up call, free heap is returned to the OS
(``malloc_trim``), the kernel's peak counter is reset (``/proc/self/clear_refs``)
and the reported number is ``VmHWM − VmRSS`` around one forward + backward,
i.e. the extra memory that call needed. tracemalloc does not see torch's
allocations and the profiler's memory view misses the allocator's own
overheads, which is why RSS is used. On CUDA it is
``torch.cuda.max_memory_allocated`` after ``reset_peak_memory_stats``.

The machine's load average is recorded before and after: on a shared machine
wall times of multi-threaded code degrade a lot when other processes compete for
the cores (OpenMP threads wait for descheduled peers); process CPU time is the
steadier number then.
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import json
import os
import platform
import shlex
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import torch
import torch.nn.functional as F

LAYERS = (
    # the paper's two SiConv2d layers (k = 7, bicubic, no padding)
    {"name": "layer1", "cin": 1, "cout": 16, "size": 64, "k": 7, "padding": False},
    {"name": "layer2", "cin": 16, "cout": 32, "size": 58, "k": 7, "padding": False},
)
EXTRA_LAYERS = (
    {"name": "layer1_pad", "cin": 1, "cout": 16, "size": 64, "k": 7, "padding": True},
    {"name": "layer2_pad", "cin": 16, "cout": 32, "size": 58, "k": 7, "padding": True},
    {"name": "layer2_k3", "cin": 16, "cout": 32, "size": 58, "k": 3, "padding": False},
    {"name": "small_k3", "cin": 4, "cout": 8, "size": 15, "k": 3, "padding": False},
)
BATCH = 16
NUM_CLASSES = 36
IMAGE = 64


# --------------------------------------------------------------------------- timing


def _sync(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


def time_interleaved(
    fns: dict[str, Callable[[], None]], device: str, warmup: int, repeats: int
) -> dict[str, dict[str, float]]:
    """Median wall and process-CPU seconds of each function, run round-robin."""
    for fn in fns.values():
        for _ in range(warmup):
            fn()
    _sync(device)
    walls: dict[str, list[float]] = {k: [] for k in fns}
    cpus: dict[str, list[float]] = {k: [] for k in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            _sync(device)
            c0, t0 = time.process_time(), time.perf_counter()
            fn()
            _sync(device)
            walls[name].append(time.perf_counter() - t0)
            cpus[name].append(time.process_time() - c0)
    return {
        k: {
            "wall_s": statistics.median(walls[k]),
            "cpu_s": statistics.median(cpus[k]),
            "wall_all_s": walls[k],
        }
        for k in fns
    }


# --------------------------------------------------------------------------- layers


def _layer(spec: dict, method: str, device: str):  # noqa: ANN202
    from scalecnn.layers import SiConv2d, expected_num_scales

    s = expected_num_scales(spec["size"], spec["size"], spec["k"])
    torch.manual_seed(0)
    layer = SiConv2d(
        spec["cin"],
        spec["cout"],
        s,
        spec["k"],
        padding=spec["padding"],
        interp_mode=spec.get("interp", "bicubic"),
        method=method,
    ).to(device)
    x = torch.randn(BATCH, spec["cin"], spec["size"], spec["size"], device=device)
    x.requires_grad_(spec["cin"] > 1)  # the first layer's input needs no gradient
    return layer, x


def _layer_step(layer, x):  # noqa: ANN001, ANN202
    grad = None

    def step() -> None:
        nonlocal grad
        y = layer(x)
        if grad is None:
            grad = torch.randn_like(y)
        y.backward(grad)
        layer.zero_grad(set_to_none=True)
        x.grad = None

    return step


def _rss_kb(field: str) -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise RuntimeError(f"{field} not in /proc/self/status")


def probe_memory(spec: dict, method: str, device: str) -> int:
    """Extra peak memory (bytes) of one forward + backward (run in a fresh process)."""
    layer, x = _layer(spec, method, device)
    step = _layer_step(layer, x)
    step()  # warm-up: plans, kernels, the gradient tensor
    if device == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        base = torch.cuda.memory_allocated()
        step()
        torch.cuda.synchronize()
        return torch.cuda.max_memory_allocated() - base
    with contextlib.suppress(OSError):  # return freed heap to the OS before the baseline
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")
    base = _rss_kb("VmRSS")
    step()
    return (_rss_kb("VmHWM") - base) * 1024


def memory_subprocess(spec: dict, method: str, args: argparse.Namespace) -> int | None:
    cmd = [
        sys.executable,
        __file__,
        "--device",
        args.device,
        "--threads",
        str(args.threads),
        "--probe-memory",
        json.dumps({"spec": spec, "method": method}),
    ]
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, check=True, timeout=900)
    except (subprocess.SubprocessError, OSError) as err:
        print(f"  memory probe failed for {spec['name']}/{method}: {err}", file=sys.stderr)
        return None
    return int(out.stdout.strip().splitlines()[-1])


def bench_layers(args: argparse.Namespace) -> list[dict]:
    from scalecnn.layers import siconv_fft

    specs = list(LAYERS) + ([] if args.quick else list(EXTRA_LAYERS))
    results = []
    print(f"\n== SiConv2d forward+backward, batch {BATCH} ==")
    print(
        f"{'layer':<11} {'direct s':>9} {'fft s':>8} {'speed-up':>8} {'cpu speed-up':>12} "
        f"{'mem direct MB':>13} {'mem fft MB':>10} {'auto':>6}"
    )
    for spec in specs:
        layer_d, x = _layer(spec, "direct", args.device)
        layer_f, _ = _layer(spec, "fft", args.device)
        layer_f.load_state_dict(layer_d.state_dict())
        auto = "fft" if siconv_fft.is_faster(layer_f, x) else "direct"
        t = time_interleaved(
            {"direct": _layer_step(layer_d, x), "fft": _layer_step(layer_f, x)},
            args.device,
            warmup=1,
            repeats=args.layer_repeats,
        )
        mem = {}
        if not args.no_memory:
            for method in ("direct", "fft"):
                mem[method] = memory_subprocess(spec, method, args)
        row = {
            **spec,
            "batch": BATCH,
            "num_scales": layer_d.num_scales,
            "auto_method": auto,
            "direct_wall_s": t["direct"]["wall_s"],
            "fft_wall_s": t["fft"]["wall_s"],
            "speedup_wall": t["direct"]["wall_s"] / t["fft"]["wall_s"],
            "direct_cpu_s": t["direct"]["cpu_s"],
            "fft_cpu_s": t["fft"]["cpu_s"],
            "speedup_cpu": t["direct"]["cpu_s"] / max(t["fft"]["cpu_s"], 1e-9),
            "direct_peak_bytes": mem.get("direct"),
            "fft_peak_bytes": mem.get("fft"),
        }
        results.append(row)

        def mb(v: int | None) -> str:
            return "n/a" if v is None else f"{v / 2**20:.0f}"

        print(
            f"{spec['name']:<11} {row['direct_wall_s']:9.3f} {row['fft_wall_s']:8.3f} "
            f"{row['speedup_wall']:7.1f}x {row['speedup_cpu']:11.1f}x "
            f"{mb(row['direct_peak_bytes']):>13} {mb(row['fft_peak_bytes']):>10} {auto:>6}",
            flush=True,
        )
    return results


# --------------------------------------------------------------------------- models


def _force_method(model: torch.nn.Module, method: str) -> int:
    from scalecnn.layers import SiConv2d

    n = 0
    for mod in model.modules():
        if isinstance(mod, SiConv2d):
            mod.method = method
            n += 1
    return n


def _train_step(model: torch.nn.Module, device: str) -> Callable[[], None]:
    torch.manual_seed(0)
    x = torch.randn(BATCH, 1, IMAGE, IMAGE, device=device)
    y = torch.randint(0, NUM_CLASSES, (BATCH,), device=device)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)

    def step() -> None:
        opt.zero_grad(set_to_none=True)
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        opt.step()

    return step


def _build(
    name: str, device: str, method: str = "auto", fuse_pool: bool | None = None
) -> torch.nn.Module:
    from scalecnn.models import build_model

    torch.manual_seed(0)
    model = build_model(
        name, kernel_size=7, interpolation="bicubic", num_channels=1, num_classes=NUM_CLASSES
    ).to(device)
    _force_method(model, method)
    if hasattr(model, "fuse_pool"):
        model.fuse_pool = fuse_pool
    return model


def _has_scale_pool(model: torch.nn.Module) -> bool:
    from scalecnn.layers import ScalePool

    return any(isinstance(m, ScalePool) for m in model.modules())


def bench_models(args: argparse.Namespace) -> list[dict]:
    from scalecnn.layers.siconv_pool import fuses_by_default
    from scalecnn.models import list_models

    names = args.models or list_models()
    steps: dict[str, Callable[[], None]] = {}
    rows: dict[str, dict] = {}
    for name in names:
        try:
            model = _build(name, args.device)
            step = _train_step(model, args.device)
            step()  # fails early for placeholders / missing extras
        except Exception as err:  # noqa: BLE001  (skip whatever is not buildable now)
            rows[name] = {"model": name, "skipped": f"{type(err).__name__}: {err}"[:200]}
            continue
        rows[name] = {"model": name, "siconv_layers": _force_method(model, "auto")}
        steps[name] = step
        if hasattr(model, "fuse_pool") and _has_scale_pool(model):
            # the FFT path with the pooling choice that the device does not default to
            fused = fuses_by_default(args.device)  # what fuse_pool=None picks
            rows[name]["default_pooling"] = "fused" if fused else "unfused"
            steps[name + ("@unfused" if fused else "@fused")] = _train_step(
                _build(name, args.device, fuse_pool=not fused), args.device
            )
        if rows[name]["siconv_layers"] and not args.quick:
            steps[name + "@direct"] = _train_step(_build(name, args.device, "direct"), args.device)

    print(f"\n== training step (forward + backward + Adam), batch {BATCH}, 64x64 ==")
    timed: dict[str, dict[str, float]] = {}
    # time each model separately (round-robin with standard so both see the same load)
    for key, step in steps.items():
        pair = {key: step}
        if key != "standard" and "standard" in steps:
            pair["standard"] = steps["standard"]
        slow = key.endswith("@direct")
        t = time_interleaved(
            pair,
            args.device,
            warmup=1,
            repeats=args.direct_model_repeats if slow else args.model_repeats,
        )
        timed[key] = t[key]
        if "standard" in t and key != "standard":
            timed[key]["standard_wall_s"] = t["standard"]["wall_s"]
            timed[key]["standard_cpu_s"] = t["standard"]["cpu_s"]
        else:
            timed[key]["standard_wall_s"] = t[key]["wall_s"]
            timed[key]["standard_cpu_s"] = t[key]["cpu_s"]

    print(
        f"{'model':<18} {'step s':>8} {'x standard':>10} {'cpu x std':>9} "
        f"{'fused s':>9} {'fused x std':>11} "
        f"{'unfused s':>9} {'unfused x std':>13} {'direct s':>9} {'direct x std':>12}"
    )
    out = []
    for name in names:
        row = rows[name]
        if "skipped" in row:
            print(f"{name:<18} skipped ({row['skipped'][:70]})")
            out.append(row)
            continue
        t = timed[name]
        row.update(
            step_wall_s=t["wall_s"],
            step_cpu_s=t["cpu_s"],
            standard_wall_s=t["standard_wall_s"],
            ratio_to_standard=t["wall_s"] / t["standard_wall_s"],
            cpu_ratio_to_standard=t["cpu_s"] / max(t["standard_cpu_s"], 1e-9),
        )
        line = (
            f"{name:<18} {t['wall_s']:8.3f} {row['ratio_to_standard']:9.1f}x "
            f"{row['cpu_ratio_to_standard']:8.1f}x"
        )
        widths = {"fused": 11, "unfused": 13, "direct": 12}
        for variant, width in widths.items():
            d = timed.get(f"{name}@{variant}")
            if d is None and row.get("default_pooling") == variant:
                d = t  # the default step is this variant
            if d is None:
                line += f" {'-':>9} {'-':>{width}}"
                continue
            row.update(
                {
                    f"{variant}_step_wall_s": d["wall_s"],
                    f"{variant}_step_cpu_s": d["cpu_s"],
                    f"{variant}_ratio_to_standard": d["wall_s"] / d["standard_wall_s"],
                }
            )
            line += f" {d['wall_s']:9.3f} {row[f'{variant}_ratio_to_standard']:{width - 1}.1f}x"
        print(line, flush=True)
        out.append(row)
    return out


# --------------------------------------------------------------------------- floor


def _transform_ops(spec: dict, device: str):  # noqa: ANN202
    """The FFT path's transforms of layer ``spec`` (a ``LAYERS`` entry): per scale,
    the inverse (forward pass) and forward (backward pass) 2-D transforms of all
    ``B·O`` maps, as ``siconv_fft`` does them."""
    from scalecnn.layers import expected_num_scales
    from scalecnn.layers.siconv_fft import next_fast_len

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


def _product_ops(spec: dict, device: str):  # noqa: ANN202
    """The three batched complex products per scale of layer ``spec`` (output, input
    gradient, weight gradient), one ``(B, C) @ (C, O)`` per frequency."""
    from scalecnn.layers import expected_num_scales
    from scalecnn.layers.siconv_fft import next_fast_len

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


def _kernel_spectrum_ops(spec: dict, device: str):  # noqa: ANN202
    """Per scale of layer ``spec``, what the FFT path does with kernel spectra in a
    training step: two formations (output, input gradient) and one adjoint (weight
    gradient), with ``siconv_fft``'s own functions and plan."""
    from scalecnn.layers import siconv_fft

    layer, x = _layer(spec, "fft", device)
    plan = siconv_fft._plan(layer, x.detach())
    wc = siconv_fft._complex_weights(layer.weights.detach(), plan.g_h.dtype)
    scales = plan.g_h.shape[0]
    grad = torch.randn(1, plan.nh, plan.fw, wc.shape[-1], dtype=wc.dtype, device=device)

    def spectra() -> None:
        for s in range(scales):
            siconv_fft._kernel_spectra(plan, wc, s, s + 1, conj=False)
            siconv_fft._kernel_spectra(plan, wc, s, s + 1, conj=True)
            siconv_fft._project(plan, grad, s, s + 1)

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

    layer1, x1 = _layer(LAYERS[0], "direct", dev)
    fns = {
        "standard_step": _train_step(_build("standard", dev), dev),
        "layer1_direct": _layer_step(layer1, x1),
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


# --------------------------------------------------------------------------- workflow


def bench_workflow(cmd: str) -> dict:
    print(f"\n== workflow: {cmd} ==")
    t0 = time.perf_counter()
    proc = subprocess.run(shlex.split(cmd), check=False)
    wall = time.perf_counter() - t0
    print(f"exit {proc.returncode}, {wall:.1f} s")
    return {"cmd": cmd, "returncode": proc.returncode, "wall_s": wall}


# --------------------------------------------------------------------------- main


def _loadavg() -> list[float] | None:
    try:
        return [float(v) for v in Path("/proc/loadavg").read_text().split()[:3]]
    except OSError:
        return None


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument(
        "--quick",
        action="store_true",
        help="paper layer shapes only, fewer repeats, no direct model steps",
    )
    p.add_argument("--json", type=Path, help="write all numbers to this JSON file")
    p.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    p.add_argument("--threads", type=int, default=2, help="torch.set_num_threads (CPU)")
    p.add_argument("--models", nargs="*", help="only these models (default: all registered)")
    p.add_argument("--skip-layers", action="store_true")
    p.add_argument("--skip-models", action="store_true")
    p.add_argument("--skip-floor", action="store_true", help="skip the FFT path's floor")
    p.add_argument("--no-memory", action="store_true", help="skip the peak-memory subprocesses")
    p.add_argument("--workflow", action="store_true", help="also time --workflow-cmd")
    p.add_argument("--workflow-cmd", default="snakemake --cores 2 --configfile config/quick.yaml")
    p.add_argument(
        "--no-tune-allocator",
        action="store_true",
        help="leave glibc's allocator settings alone (scalecnn train/evaluate tune them)",
    )
    p.add_argument("--probe-memory", help=argparse.SUPPRESS)
    args = p.parse_args(argv)

    if args.device == "cuda" and not torch.cuda.is_available():
        p.error("--device cuda but CUDA is not available")
    torch.set_num_threads(args.threads)
    if args.probe_memory:
        job = json.loads(args.probe_memory)
        print(probe_memory(job["spec"], job["method"], args.device))
        return 0
    if not args.no_tune_allocator:  # timings as in `scalecnn train` (not in memory probes)
        from scalecnn.device import tune_allocator

        tune_allocator()

    args.layer_repeats = 3 if args.quick else 5
    args.model_repeats = 5 if args.quick else 7
    args.direct_model_repeats = 3
    env = {
        "torch": torch.__version__,
        "python": platform.python_version(),
        "machine": platform.machine(),
        "cpu_count": os.cpu_count(),
        "threads": torch.get_num_threads(),
        "device": args.device,
        "cuda_device": torch.cuda.get_device_name() if args.device == "cuda" else None,
        "quick": args.quick,
        "tune_allocator": not args.no_tune_allocator,
        "loadavg_before": _loadavg(),
        "time": time.strftime("%Y-%m-%d %H:%M:%S"),
    }
    print(
        f"torch {env['torch']}, device {args.device}, {env['threads']} threads, "
        f"load average {env['loadavg_before']}"
    )
    result: dict = {"env": env}
    if not args.skip_layers:
        result["layers"] = bench_layers(args)
    if not args.skip_models:
        result["models"] = bench_models(args)
    if not args.skip_floor:
        result["floor"] = bench_floor(args)
    if args.workflow:
        result["workflow"] = bench_workflow(args.workflow_cmd)
    env["loadavg_after"] = _loadavg()
    print(f"\nload average after: {env['loadavg_after']}")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=2))
        print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
