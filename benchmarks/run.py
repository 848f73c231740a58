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
* conv3d's ``AutoConv3d(16, 32, 7)`` on its ``(16, 16, 29, 58, 58)`` input, forward +
  backward, ``direct`` against ``fft`` (time and peak memory);
* the sum of the eleven paper models' step ratios (the study's relative compute;
  ``disco`` with the Hermite basis as a same-cost stand-in unless ``--disco-basis``),
  and every model with the FFT convolution layers (``AutoConv3d``, ``XuConv2d``,
  ``SESConv_*``) forced to ``method='direct'``, unless ``--quick``;
* achieved throughput: the FLOPs of each step's direct definition over its measured
  step time, against a float32 matmul's GFLOP/s;
* one epoch of ``scalecnn.training`` split into its parts (steps, validation,
  early-stopping record, checkpoint, slicing) on emoji-like synthetic data;
* threads: one process with 2 threads running two trainings in sequence against two
  single-threaded processes side by side, and 1- vs 2-thread bit-identity;
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
CONV3D_LAYER = {
    # conv3d's Conv3d on the stacked scales of its SiConv2d layer (batch 16)
    "name": "conv3d_layer",
    "kind": "conv3d",
    "cin": 16,
    "cout": 32,
    "k": 7,
    "input": (16, 16, 29, 58, 58),
}
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
    """The layer of ``spec`` with ``method`` and its input (seeded): a ``SiConv2d``
    (``LAYERS``) or, for ``kind == "conv3d"``, an ``AutoConv3d`` (``CONV3D_LAYER``)."""
    from scalecnn.layers import SiConv2d, expected_num_scales

    if spec.get("kind") == "conv3d":
        from scalecnn.layers.fft_conv import AutoConv3d

        torch.manual_seed(0)
        layer = AutoConv3d(spec["cin"], spec["cout"], spec["k"], method=method).to(device)
        x = torch.randn(*spec["input"], device=device, requires_grad=True)
        return layer, x
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


def compare_methods(spec: dict, args: argparse.Namespace) -> dict:
    """Forward + backward of layer ``spec`` with ``method='direct'`` and ``'fft'`` on the
    same weights and input, round-robin, and (unless ``--no-memory``) each method's
    peak memory in a fresh subprocess."""
    layer_d, x = _layer(spec, "direct", args.device)
    layer_f, _ = _layer(spec, "fft", args.device)
    layer_f.load_state_dict(layer_d.state_dict())
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


def _mb(v: int | None) -> str:
    return "n/a" if v is None else f"{v / 2**20:.0f}"


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
        layer, x = _layer(spec, "fft", args.device)
        auto = "fft" if siconv_fft.is_faster(layer, x) else "direct"
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
            f"{_mb(row['direct_peak_bytes']):>13} {_mb(row['fft_peak_bytes']):>10} {auto:>6}",
            flush=True,
        )
    return results


def bench_conv3d_layer(args: argparse.Namespace) -> dict:
    """conv3d's ``AutoConv3d(16, 32, 7)`` on its ``(16, 16, 29, 58, 58)`` input (with
    gradient), forward + backward, ``direct`` (``F.conv3d``) against ``fft``."""
    from scalecnn.layers.fft_conv import fft_is_faster

    spec = CONV3D_LAYER
    layer, x = _layer(spec, "fft", args.device)
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
        f"{row['speedup_cpu']:11.1f}x {_mb(row['direct_peak_bytes']):>13} "
        f"{_mb(row['fft_peak_bytes']):>10} {auto:>6}",
        flush=True,
    )
    return row


# --------------------------------------------------------------------------- models


FAST_KINDS = ("siconv", "conv")
"""Layers with a fast path and a ``method`` attribute: ``siconv`` (``SiConv2d``,
:mod:`scalecnn.layers.siconv_fft`) and ``conv`` (the FFT convolution of
:mod:`scalecnn.layers.fft_conv`: ``AutoConv3d``, ``XuConv2d``, ``SESConv_Z2_H`` and
``SESConv_H_H``)."""


def _fast_layers(model: torch.nn.Module, kinds: tuple[str, ...] = FAST_KINDS) -> list:
    from scalecnn.layers import SiConv2d
    from scalecnn.layers.fft_conv import AutoConv3d
    from scalecnn.layers.steerable import SESConv_H_H, SESConv_Z2_H
    from scalecnn.layers.xu import XuConv2d

    types = {"siconv": (SiConv2d,), "conv": (AutoConv3d, XuConv2d, SESConv_Z2_H, SESConv_H_H)}
    wanted = tuple(t for kind in kinds for t in types[kind])
    return [mod for mod in model.modules() if isinstance(mod, wanted)]


def _force_method(model: torch.nn.Module, method: str, kinds: tuple[str, ...] = FAST_KINDS) -> int:
    """Set ``method`` on the model's fast-path layers of ``kinds`` (``auto`` leaves them
    as built); returns how many there are."""
    layers = _fast_layers(model, kinds)
    if method != "auto":
        for mod in layers:
            mod.method = method
    return len(layers)


STAND_IN_BASIS = (
    "built with the Hermite basis of scalecnn.models.steerable as a stand-in for its "
    "trained basis: same shape (49, 4, 15, 15), same cost"
)


def _basis_kwargs(name: str, basis: str | None) -> tuple[dict, str | None]:
    """Extra ``build_model`` arguments of model ``name`` and a note: a model that needs a
    basis gets ``basis`` (a file) or, without one, the Hermite basis (same shape and cost)."""
    from scalecnn.models import get_spec

    if not get_spec(name).needs_basis:
        return {}, None
    if basis is not None:
        return {"basis": basis}, f"basis {basis}"
    from scalecnn.models import steerable as st

    stand_in = st.hermite_basis(
        st.KERNEL_SIZE, st.EFFECTIVE_SIZE, st.HERMITE_SCALES, st.HERMITE_MULT, st.MAX_ORDER
    )
    return {"basis": stand_in}, STAND_IN_BASIS


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
    name: str,
    device: str,
    method: str = "auto",
    fuse_pool: bool | None = None,
    kinds: tuple[str, ...] = FAST_KINDS,
    basis: str | None = None,
) -> torch.nn.Module:
    """Model ``name`` (seeded) with its fast-path layers of ``kinds`` set to ``method``."""
    from scalecnn.models import build_model

    extra, _ = _basis_kwargs(name, basis)
    torch.manual_seed(0)
    model = build_model(
        name,
        kernel_size=7,
        interpolation="bicubic",
        num_channels=1,
        num_classes=NUM_CLASSES,
        **extra,
    ).to(device)
    _force_method(model, method, kinds)
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
            model = _build(name, args.device, basis=args.disco_basis)
            step = _train_step(model, args.device)
            step()  # fails early for placeholders / missing extras
        except Exception as err:  # noqa: BLE001  (skip whatever is not buildable now)
            rows[name] = {"model": name, "skipped": f"{type(err).__name__}: {err}"[:200]}
            continue
        rows[name] = {
            "model": name,
            "siconv_layers": _force_method(model, "auto", ("siconv",)),
            "conv_layers": _force_method(model, "auto", ("conv",)),
        }
        note = _basis_kwargs(name, args.disco_basis)[1]
        if note:
            rows[name]["basis"] = note
        steps[name] = step
        if hasattr(model, "fuse_pool") and _has_scale_pool(model):
            # the FFT path with the pooling choice that the device does not default to
            fused = fuses_by_default(args.device)  # what fuse_pool=None picks
            rows[name]["default_pooling"] = "fused" if fused else "unfused"
            steps[name + ("@unfused" if fused else "@fused")] = _train_step(
                _build(name, args.device, fuse_pool=not fused), args.device
            )
        if rows[name]["siconv_layers"] and not args.quick:
            model = _build(name, args.device, "direct", kinds=("siconv",), basis=args.disco_basis)
            steps[name + "@direct"] = _train_step(model, args.device)
        if rows[name]["conv_layers"] and not args.quick:
            # the state before the FFT convolution path (SiConv2d layers as by default)
            model = _build(name, args.device, "direct", kinds=("conv",), basis=args.disco_basis)
            steps[name + "@conv_direct"] = _train_step(model, args.device)

    print(f"\n== training step (forward + backward + Adam), batch {BATCH}, 64x64 ==")
    timed: dict[str, dict[str, float]] = {}
    # time each model separately (round-robin with standard so both see the same load)
    for key, step in steps.items():
        pair = {key: step}
        if key != "standard" and "standard" in steps:
            pair["standard"] = steps["standard"]
        slow = key.endswith(("@direct", "@conv_direct"))
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
        f"{'unfused s':>9} {'unfused x std':>13} {'direct s':>9} {'direct x std':>12} "
        f"{'conv direct s':>13} {'conv dir x std':>14}"
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
        widths = {"fused": (9, 11), "unfused": (9, 13), "direct": (9, 12), "conv_direct": (13, 14)}
        for variant, (w_s, width) in widths.items():
            d = timed.get(f"{name}@{variant}")
            if d is None and row.get("default_pooling") == variant:
                d = t  # the default step is this variant
            if d is None:
                line += f" {'-':>{w_s}} {'-':>{width}}"
                continue
            row.update(
                {
                    f"{variant}_step_wall_s": d["wall_s"],
                    f"{variant}_step_cpu_s": d["cpu_s"],
                    f"{variant}_ratio_to_standard": d["wall_s"] / d["standard_wall_s"],
                }
            )
            line += f" {d['wall_s']:{w_s}.3f} {row[f'{variant}_ratio_to_standard']:{width - 1}.1f}x"
        print(line, flush=True)
        out.append(row)
    for row in out:
        if "basis" in row:
            print(f"{row['model']}: {row['basis']}")
    print(
        "(direct: SiConv2d layers forced to method='direct'; conv direct: the FFT convolution "
        "layers - AutoConv3d, XuConv2d, SESConv_* - forced to 'direct', the state before "
        "layers/fft_conv.py)"
    )
    return out


def summarise_models(rows: list[dict]) -> dict:
    """Sum of the paper models' step ratios to standard: the study's relative compute
    (every model trains the same epochs on the same data), now and with the FFT
    convolution layers direct (their measured ``conv_direct`` step where there is one)."""
    from scalecnn.study import PAPER_MODELS

    by_name = {r["model"]: r for r in rows if "ratio_to_standard" in r}
    measured = [n for n in PAPER_MODELS if n in by_name]
    missing = [n for n in PAPER_MODELS if n not in by_name]
    now = sum(by_name[n]["ratio_to_standard"] for n in measured)
    now_cpu = sum(by_name[n]["cpu_ratio_to_standard"] for n in measured)
    conv_measured = all(
        "conv_direct_ratio_to_standard" in by_name[n]
        for n in measured
        if by_name[n].get("conv_layers")
    )
    before = sum(
        by_name[n].get("conv_direct_ratio_to_standard", by_name[n]["ratio_to_standard"])
        for n in measured
    )
    summary = {
        "models": measured,
        "missing": missing,
        "sum_ratio_to_standard": now,
        "sum_cpu_ratio_to_standard": now_cpu,
        "sum_ratio_conv_direct": before if conv_measured else None,
    }
    label = f"{len(measured)} paper models" + (
        f" (missing: {', '.join(missing)})" if missing else ""
    )
    line = f"sum over the {label}: {now:.1f}x standard (cpu {now_cpu:.1f}x)"
    if conv_measured and before != now:
        line += f"; with the FFT convolution layers direct: {before:.1f}x"
    print(line + "  -- the study's relative compute", flush=True)
    return summary


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


# --------------------------------------------------------------------------- throughput


def _matmul(device: str, n: int = 2048) -> Callable[[], None]:
    """A float32 ``torch.mm`` of two ``n × n`` matrices (``2·n³`` FLOPs)."""
    torch.manual_seed(0)
    a = torch.randn(n, n, device=device)
    b = torch.randn(n, n, device=device)
    return lambda: torch.mm(a, b)


def step_flops(name: str, device: str, basis: str | None) -> int:
    """FLOPs of one training step (forward + backward) of the model's *definition*: every
    fast-path layer forced to ``method='direct'``, counted by ``FlopCounterMode``
    (convolutions and matrix products; the Adam update and elementwise work are not
    counted)."""
    from torch.utils.flop_counter import FlopCounterMode

    step = _train_step(_build(name, device, "direct", basis=basis), device)
    with FlopCounterMode(display=False) as counter:
        step()
    return int(counter.get_total_flops())


def bench_throughput(args: argparse.Namespace, model_rows: list[dict] | None) -> dict:
    """Effective GFLOP/s of every model's (default-path) training step: the FLOPs of its
    definition divided by its step time, against the machine's float32 matmul rate.

    The matmul and the standard step are timed round-robin here (so both see the same
    load); a model's step time is its ratio to standard (from the models table, where
    it was timed round-robin with standard, or timed so here) times this standard step.
    """
    from scalecnn.models import list_models

    n = 2048
    standard = _train_step(_build("standard", args.device), args.device)
    t = time_interleaved(
        {"matmul": _matmul(args.device, n), "standard": standard},
        args.device,
        warmup=2,
        repeats=max(10, args.model_repeats),
    )
    peak = {
        "n": n,
        "median_gflops": 2 * n**3 / t["matmul"]["wall_s"] / 1e9,
        "best_gflops": 2 * n**3 / min(t["matmul"]["wall_all_s"]) / 1e9,
    }
    std_wall = t["standard"]["wall_s"]
    ratios = {r["model"]: r["ratio_to_standard"] for r in model_rows or [] if "step_wall_s" in r}
    skipped = {r["model"] for r in model_rows or [] if "skipped" in r}
    print(
        f"\n== achieved throughput: FLOPs of each step's definition / step time ==\n"
        f"float32 matmul {n}x{n}: {peak['median_gflops']:.0f} GFLOP/s (median; best "
        f"{peak['best_gflops']:.0f}), {torch.get_num_threads()} threads; standard step "
        f"{std_wall:.3f} s, round-robin with it"
    )
    print(
        f"{'model':<18} {'GFLOP/step':>10} {'x standard':>10} {'step s':>8} "
        f"{'eff GFLOP/s':>11} {'% of matmul':>11}"
    )
    rows = []
    for name in args.models or list_models():
        if name in skipped:
            continue
        try:
            flops = step_flops(name, args.device, args.disco_basis)
        except Exception as err:  # noqa: BLE001  (as in the models table)
            print(f"{name:<18} skipped ({type(err).__name__}: {err})"[:100])
            continue
        if name == "standard":
            ratio = 1.0
        elif name in ratios:
            ratio = ratios[name]
        else:  # the models section did not run: time it round-robin with standard here
            step = _train_step(_build(name, args.device, basis=args.disco_basis), args.device)
            tm = time_interleaved(
                {name: step, "standard": standard}, args.device, 1, args.model_repeats
            )
            ratio = tm[name]["wall_s"] / tm["standard"]["wall_s"]
        wall = ratio * std_wall
        eff = flops / wall / 1e9
        row = {
            "model": name,
            "step_flops": flops,
            "ratio_to_standard": ratio,
            "step_wall_s": wall,
            "effective_gflops": eff,
            "percent_of_matmul": 100 * eff / peak["median_gflops"],
        }
        rows.append(row)
        print(
            f"{name:<18} {flops / 1e9:10.1f} {ratio:9.1f}x {wall:8.3f} {eff:11.0f} "
            f"{row['percent_of_matmul']:10.0f}%",
            flush=True,
        )
    print(
        "(FLOPs of the direct definition: convolutions and matrix products, fwd + bwd; "
        "over 100 %: the default path does less arithmetic than the definition)"
    )
    return {"matmul": peak, "standard_step_wall_s": std_wall, "models": rows}


# --------------------------------------------------------------------------- epoch


def bench_epoch(args: argparse.Namespace) -> dict:
    """One epoch of ``scalecnn.training`` split into its parts, with the module's own
    functions in ``train_run``'s order: the sample order, ``train_epoch`` (the steps),
    ``evaluate_split`` on the validation split, ``record_epoch`` (best-state copy and
    history row) and ``_save_checkpoint``. Data: emoji-like Mid2Rest (a synthetic STIR
    file with emoji's 36 classes and 1 instance: 576 training images, 36 steps at batch
    16) unless ``--epoch-data``. The first epoch is a warm-up and not reported."""
    import tempfile

    from scalecnn import training as tr
    from scalecnn.data import write_synthetic_stir

    device = torch.device(args.device)
    with tempfile.TemporaryDirectory(prefix="scalecnn_epoch_") as tmp:
        tmp = Path(tmp)
        data = args.epoch_data
        t0 = time.perf_counter()
        if data is None:
            data = write_synthetic_stir(tmp / "emoji_like.npz", num_classes=36, num_instances=1)
        write_s = time.perf_counter() - t0
        cfg = tr.RunConfig(model=args.epoch_model, data=str(data), evaluation=2, device=args.device)
        t0 = time.perf_counter()
        splits, channels, classes = tr.load_splits(cfg.data, cfg.evaluation, device)
        load_s = time.perf_counter() - t0
        tr.seed_everything(cfg.seed)
        model = tr.build_run_model(cfg, channels, classes).to(device)
        optimizer = torch.optim.Adam(model.parameters(), lr=cfg.lr)
        state = tr.TrainState()
        train = splits["train"]
        parts = ("order", "train_epoch", "validation", "record_epoch", "checkpoint")
        times: dict[str, list[float]] = {k: [] for k in parts}
        ckpt = tmp / tr.CHECKPOINT_NAME
        for epoch in range(1, args.epoch_epochs + 2):
            lap: dict[str, float] = {}
            t = time.perf_counter()
            order = tr.batch_order(len(train), epoch, cfg)
            lap["order"] = time.perf_counter() - t
            t = time.perf_counter()
            loss, acc = tr.train_epoch(model, optimizer, train, cfg.batch_size, order)
            lap["train_epoch"] = time.perf_counter() - t
            t = time.perf_counter()
            val_loss, val_acc, _ = tr.evaluate_split(model, splits["valid"], tr.EVAL_BATCH_SIZE)
            lap["validation"] = time.perf_counter() - t
            t = time.perf_counter()
            row = (epoch, loss, acc, lap["train_epoch"], val_loss, val_acc)
            tr.record_epoch(state, model, row)
            lap["record_epoch"] = time.perf_counter() - t
            t = time.perf_counter()
            tr._save_checkpoint(ckpt, model, optimizer, state, cfg)
            lap["checkpoint"] = time.perf_counter() - t
            if epoch > 1:  # epoch 1 warms up
                for k in parts:
                    times[k].append(lap[k])
        ckpt_bytes = ckpt.stat().st_size
        # inside train_epoch: the batch slicing alone and the loss/accuracy sums alone
        slicing = _time_slicing(train, cfg.batch_size)
        sums = _time_epoch_sums(model, train, cfg.batch_size)
    med = {k: statistics.median(v) for k, v in times.items()}
    med["slicing (in train_epoch)"] = slicing
    med["loss/acc sums (in train_epoch)"] = sums
    med["steps (train_epoch - slicing - sums)"] = med["train_epoch"] - slicing - sums
    epoch_s = sum(med[k] for k in parts)
    steps = -(-len(train) // cfg.batch_size)
    print(
        f"\n== one epoch of scalecnn.training: {cfg.model}, {len(train)} training / "
        f"{len(splits['valid'])} validation images ({steps} steps at batch {cfg.batch_size}), "
        f"median of {args.epoch_epochs} epochs after a warm-up =="
    )
    for k, v in med.items():
        indent = "  " if k not in parts else ""
        print(f"{indent + k:<40} {v:8.4f} s {100 * v / epoch_s:6.1f} %")
    print(f"{'epoch (sum of the parts)':<40} {epoch_s:8.4f} s")
    print(
        f"once per run: load_splits {load_s:.2f} s (synthetic file written in {write_s:.1f} s); "
        f"checkpoint {ckpt_bytes / 1e3:.0f} kB"
    )
    return {
        "model": cfg.model,
        "data": "synthetic emoji-like" if args.epoch_data is None else str(args.epoch_data),
        "train_images": len(train),
        "valid_images": len(splits["valid"]),
        "steps_per_epoch": steps,
        "epochs_timed": args.epoch_epochs,
        "parts_s": med,
        "epoch_s": epoch_s,
        "load_splits_s": load_s,
        "checkpoint_bytes": ckpt_bytes,
    }


def _time_slicing(data, batch_size: int, repeats: int = 20) -> float:  # noqa: ANN001
    """Seconds per epoch of ``train_epoch``'s batch slicing alone (fixed order)."""
    t = time.perf_counter()
    for _ in range(repeats):
        for start in range(0, len(data), batch_size):
            data.images[start : start + batch_size]
            data.labels[start : start + batch_size]
    return (time.perf_counter() - t) / repeats


def _time_epoch_sums(model, data, batch_size: int, repeats: int = 20) -> float:  # noqa: ANN001
    """Seconds per epoch of ``train_epoch``'s per-batch loss and accuracy sums alone."""
    with torch.no_grad():
        logits = model(data.images[:batch_size])
    y = data.labels[:batch_size]
    loss = F.cross_entropy(logits, y)
    t = time.perf_counter()
    for _ in range(repeats):
        total = torch.zeros((), dtype=torch.float64, device=y.device)
        correct = torch.zeros((), dtype=torch.int64, device=y.device)
        for _ in range(0, len(data), batch_size):
            total += loss.detach().double() * y.shape[0]
            correct += (logits.detach().argmax(dim=1) == y).sum()
        total.item(), correct.item()
    return (time.perf_counter() - t) / repeats


# --------------------------------------------------------------------------- threads


def thread_worker(job: dict, args: argparse.Namespace) -> dict:
    """Subprocess body of the threads section: ``job['trainings']`` trainings of
    ``job['steps']`` steps of ``job['model']`` one after the other with
    ``job['threads']`` threads. With ``job['wait']`` it prints ``ready`` after building
    and a warm-up step and starts only when a line arrives on stdin (so that concurrent
    workers start together). Returns start/end times and the last model's parameter
    checksum (SHA-256 of the raw bytes and the float64 sum)."""
    import hashlib

    torch.set_num_threads(job["threads"])
    _train_step(_build(job["model"], "cpu", basis=args.disco_basis), "cpu")()  # warm-up
    models = [_build(job["model"], "cpu", basis=args.disco_basis) for _ in range(job["trainings"])]
    steps = [_train_step(m, "cpu") for m in models]
    if job["wait"]:
        print("ready", flush=True)
        sys.stdin.readline()
    start = time.time()
    for step in steps:
        for _ in range(job["steps"]):
            step()
    end = time.time()
    digest = hashlib.sha256()
    total = 0.0
    for p in models[-1].parameters():
        digest.update(p.detach().contiguous().numpy().tobytes())
        total += p.detach().double().sum().item()
    return {"start": start, "end": end, "sha256": digest.hexdigest(), "sum": total}


def _start_worker(job: dict, args: argparse.Namespace) -> subprocess.Popen:
    cmd = [sys.executable, __file__, "--thread-worker", json.dumps(job)]
    if args.no_tune_allocator:
        cmd.append("--no-tune-allocator")
    if args.disco_basis:
        cmd += ["--disco-basis", args.disco_basis]
    env = dict(os.environ, OMP_NUM_THREADS=str(job["threads"]), MKL_NUM_THREADS=str(job["threads"]))
    return subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env)


def _run_workers(jobs: list[dict], args: argparse.Namespace) -> list[dict]:
    """Start the workers, wait until all are ready, release them together, collect."""
    procs = [_start_worker(job, args) for job in jobs]
    for proc in procs:
        if proc.stdout.readline().strip() != "ready":
            raise RuntimeError("thread worker failed before its start")
    for proc in procs:
        proc.stdin.write("go\n")
        proc.stdin.flush()
    results = []
    for proc in procs:
        out, _ = proc.communicate(timeout=3600)
        if proc.returncode:
            raise RuntimeError(f"thread worker exited with {proc.returncode}")
        results.append(json.loads(out.strip().splitlines()[-1]))
    return results


def bench_threads(args: argparse.Namespace) -> dict:
    """(a) one process with 2 threads running two trainings of N steps one after the
    other against (b) two single-threaded processes running one training each at the
    same time; and whether K steps end bit-identical with 1 and with 2 threads."""
    n, k = args.thread_steps, args.thread_check_steps
    print(f"\n== threads: 2 trainings of {n} steps, 1 process x 2 threads vs 2 x 1 thread ==")
    print(
        f"{'model':<18} {'2 threads, seq s':>16} {'2 procs x 1 s':>13} {'throughput (b)/(a)':>18}"
    )
    out: dict = {"steps": n, "check_steps": k, "models": []}
    for name in args.thread_models:
        job = {"model": name, "steps": n, "wait": True}
        seq = _run_workers([{**job, "threads": 2, "trainings": 2}], args)[0]
        par = _run_workers([{**job, "threads": 1, "trainings": 1}] * 2, args)
        wall_a = seq["end"] - seq["start"]
        wall_b = max(r["end"] for r in par) - min(r["start"] for r in par)
        row = {
            "model": name,
            "one_process_two_threads_wall_s": wall_a,
            "two_processes_one_thread_wall_s": wall_b,
            "throughput_ratio": wall_a / wall_b,
        }
        out["models"].append(row)
        print(
            f"{name:<18} {wall_a:16.2f} {wall_b:13.2f} {row['throughput_ratio']:17.2f}x", flush=True
        )
    print(f"determinism: parameter SHA-256 after {k} steps (seed 0), each run alone")
    for name in args.thread_models:
        runs = {}
        for threads in (1, 1, 2, 2):
            job = {"model": name, "steps": k, "threads": threads, "trainings": 1, "wait": True}
            runs.setdefault(threads, []).append(_run_workers([job], args)[0])
        same = {t: len({r["sha256"] for r in rs}) == 1 for t, rs in runs.items()}
        across = runs[1][0]["sha256"] == runs[2][0]["sha256"]
        diff = abs(runs[1][0]["sum"] - runs[2][0]["sum"])
        check = {
            "model": name,
            "bit_identical_1_thread_repeat": same[1],
            "bit_identical_2_threads_repeat": same[2],
            "bit_identical_1_vs_2_threads": across,
            "param_sum_1_thread": runs[1][0]["sum"],
            "param_sum_2_threads": runs[2][0]["sum"],
        }
        out.setdefault("determinism", []).append(check)
        print(
            f"{name:<18} 1 thread repeat identical: {same[1]}; 2 threads repeat identical: "
            f"{same[2]}; 1 vs 2 threads identical: {across} (|sum difference| {diff:.3g})",
            flush=True,
        )
    return out


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
    p.add_argument(
        "--disco-basis",
        help="disco's basis file (default: the Hermite basis as a same-cost stand-in)",
    )
    p.add_argument(
        "--skip-conv3d-layer", action="store_true", help="skip conv3d's AutoConv3d direct vs fft"
    )
    p.add_argument(
        "--skip-throughput", action="store_true", help="skip the effective GFLOP/s table"
    )
    p.add_argument("--skip-epoch", action="store_true", help="skip the epoch split into parts")
    p.add_argument("--epoch-model", default="standard", help="model of the epoch section")
    p.add_argument("--epoch-epochs", type=int, default=3, help="epochs timed after a warm-up")
    p.add_argument("--epoch-data", help="STIR file of the epoch section (default: synthetic)")
    p.add_argument("--skip-threads", action="store_true", help="skip the threads section")
    p.add_argument("--thread-models", nargs="+", default=["standard"])
    p.add_argument("--thread-steps", type=int, default=50, help="steps per training (threads)")
    p.add_argument(
        "--thread-check-steps", type=int, default=10, help="steps of the determinism check"
    )
    p.add_argument("--probe-memory", help=argparse.SUPPRESS)
    p.add_argument("--thread-worker", help=argparse.SUPPRESS)
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
    if args.thread_worker:
        print(json.dumps(thread_worker(json.loads(args.thread_worker), args)))
        return 0

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
    if not args.skip_conv3d_layer:
        result["conv3d_layer"] = bench_conv3d_layer(args)
    if not args.skip_models:
        result["models"] = bench_models(args)
        result["models_sum"] = summarise_models(result["models"])
    if not args.skip_throughput:
        result["throughput"] = bench_throughput(args, result.get("models"))
    if not args.skip_floor:
        result["floor"] = bench_floor(args)
    if not args.skip_epoch:
        result["epoch"] = bench_epoch(args)
    if not args.skip_threads and args.device == "cpu":
        result["threads"] = bench_threads(args)
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
