"""Shared timing helpers of the benchmarks: round-robin medians and the load average."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from pathlib import Path

import torch


def sync(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


def time_interleaved(
    fns: dict[str, Callable[[], None]], device: str, warmup: int, repeats: int
) -> dict[str, dict[str, float]]:
    """Median wall and process-CPU seconds of each function, run round-robin."""
    for fn in fns.values():
        for _ in range(warmup):
            fn()
    sync(device)
    walls: dict[str, list[float]] = {k: [] for k in fns}
    cpus: dict[str, list[float]] = {k: [] for k in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            sync(device)
            c0, t0 = time.process_time(), time.perf_counter()
            fn()
            sync(device)
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


def loadavg() -> list[float] | None:
    try:
        return [float(v) for v in Path("/proc/loadavg").read_text().split()[:3]]
    except OSError:
        return None
