"""Every registered model's training step as a ratio to ``standard``, and their sum."""

from __future__ import annotations

import argparse
from collections.abc import Callable

from subjects import (
    BATCH,
    basis_kwargs,
    force_method,
    has_scale_pool,
    make_model,
    plain_step,
    train_step,
)
from timing import time_interleaved


def bench_models(args: argparse.Namespace) -> list[dict]:
    from scalecnn.layers.fft import fuses_by_default
    from scalecnn.models import list_models

    names = args.models or list_models()
    steps: dict[str, Callable[[], None]] = {}
    rows: dict[str, dict] = {}
    for name in names:
        try:
            model = make_model(name, args.device, basis=args.disco_basis)
            step = train_step(model, args.device)
            step()  # fails early for placeholders / missing extras
        except Exception as err:
            rows[name] = {"model": name, "skipped": f"{type(err).__name__}: {err}"[:200]}
            continue
        rows[name] = {
            "model": name,
            "siconv_layers": force_method(model, "auto", ("siconv",)),
            "conv_layers": force_method(model, "auto", ("conv",)),
        }
        note = basis_kwargs(name, args.disco_basis)[1]
        if note:
            rows[name]["basis"] = note
        steps[name] = step
        if hasattr(model, "fuse_pool") and has_scale_pool(model):
            # the FFT path with the pooling choice that the device does not default to
            fused = fuses_by_default(args.device)  # what fuse_pool=None picks
            rows[name]["default_pooling"] = "fused" if fused else "unfused"
            steps[name + ("@unfused" if fused else "@fused")] = train_step(
                make_model(name, args.device, fuse_pool=not fused), args.device
            )
        if args.plain_library:
            model = make_model(name, args.device, basis=args.disco_basis)
            steps[name + "@plain"] = plain_step(train_step(model, args.device))
        if rows[name]["siconv_layers"] and not args.quick:
            model = make_model(
                name, args.device, "direct", kinds=("siconv",), basis=args.disco_basis
            )
            steps[name + "@direct"] = train_step(model, args.device)
        if rows[name]["conv_layers"] and not args.quick:
            # the state before the FFT convolution path (SiConv2d layers as by default)
            model = make_model(name, args.device, "direct", kinds=("conv",), basis=args.disco_basis)
            steps[name + "@conv_direct"] = train_step(model, args.device)

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
        f"{'conv direct s':>13} {'conv dir x std':>14} {'plain s':>8} {'plain x std':>11}"
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
        widths = {
            "fused": (9, 11),
            "unfused": (9, 13),
            "direct": (9, 12),
            "conv_direct": (13, 14),
            "plain": (8, 11),
        }
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
        "scalecnn.layers.fft.conv; plain: with --plain-library, the direct convolutions "
        "plain F.conv2d/F.conv3d and the pooled SiConv2d layers without their sparse "
        "backward, the state before scalecnn.layers.fft.direct and pool_sparse)"
    )
    return out


def summarise_models(rows: list[dict]) -> dict:
    """Sum of the paper models' step ratios to standard: the study's relative compute
    (every model trains the same epochs on the same data), now and with the FFT
    convolution layers direct (their measured ``conv_direct`` step where there is one);
    and the sum of their step times in seconds (standard's own step changes too)."""
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
    seconds = sum(by_name[n]["step_wall_s"] for n in measured)
    plain = [by_name[n].get("plain_step_wall_s") for n in measured]
    plain_seconds = sum(plain) if plain and None not in plain else None
    summary = {
        "models": measured,
        "missing": missing,
        "sum_step_wall_s": seconds,
        "sum_plain_step_wall_s": plain_seconds,
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
    # the ratios move with standard's own step; the seconds are what a study costs
    line = f"sum of their steps: {seconds:.3f} s"
    if plain_seconds is not None:
        line += f" (plain library: {plain_seconds:.3f} s, {plain_seconds / seconds:.2f}x)"
    print(line, flush=True)
    return summary
