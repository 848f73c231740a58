"""Achieved throughput: FLOPs of each step's direct definition over its measured step time."""

from __future__ import annotations

import argparse
from collections.abc import Callable

import torch
from subjects import make_model, train_step
from timing import time_interleaved


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

    step = train_step(make_model(name, device, "direct", basis=basis), device)
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
    standard = train_step(make_model("standard", args.device), args.device)
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
        except Exception as err:
            print(f"{name:<18} skipped ({type(err).__name__}: {err})"[:100])
            continue
        if name == "standard":
            ratio = 1.0
        elif name in ratios:
            ratio = ratios[name]
        else:  # the models section did not run: time it round-robin with standard here
            step = train_step(make_model(name, args.device, basis=args.disco_basis), args.device)
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
