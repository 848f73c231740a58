"""Peak memory of one forward + backward, measured in a fresh subprocess per layer and method.

On CPU: after a warm-up call, free heap is returned to the OS (``malloc_trim``), the
kernel's peak counter is reset (``/proc/self/clear_refs``) and the reported number is
``VmHWM − VmRSS`` around one more forward + backward. On CUDA:
``torch.cuda.max_memory_allocated`` after ``reset_peak_memory_stats``. The subprocess is
``run.py --probe-memory``.
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import json
import subprocess
import sys
from pathlib import Path

import torch
from subjects import layer_step, make_layer

RUN_PY = Path(__file__).with_name("run.py")


def _rss_kb(field: str) -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise RuntimeError(f"{field} not in /proc/self/status")


def probe_memory(spec: dict, method: str, device: str) -> int:
    """Extra peak memory (bytes) of one forward + backward (run in a fresh process)."""
    layer, x = make_layer(spec, method, device)
    step = layer_step(layer, x)
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
    """:func:`probe_memory` of layer ``spec`` and ``method`` in a fresh ``run.py --probe-memory``
    process; ``None`` if it fails."""
    cmd = [
        sys.executable,
        str(RUN_PY),
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


def format_mb(v: int | None) -> str:
    """Bytes as whole MiB (``n/a`` for ``None``)."""
    return "n/a" if v is None else f"{v / 2**20:.0f}"
